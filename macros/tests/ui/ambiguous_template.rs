#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
#[entity(table = "t", pk = "OWNER#{owner}", sk = "ITEM#{kind}{id}")]
pub struct Item {
    #[prost(string, tag = "1")]
    pub owner: String,
    #[prost(string, tag = "2")]
    pub kind: String,
    #[prost(string, tag = "3")]
    pub id: String,
}

#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
#[entity(table = "t", pk = "OWNER#{owner}-{region}", sk = "NOTE#{id}")]
pub struct Note {
    #[prost(string, tag = "1")]
    pub owner: String,
    #[prost(string, tag = "2")]
    pub region: String,
    #[prost(string, tag = "3")]
    pub id: String,
}

fn main() {}
