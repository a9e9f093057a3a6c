#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
#[entity(table = "t", pk = "OWNER#{owner", sk = "ITEM#{id}")]
pub struct Item {
    #[prost(string, tag = "1")]
    pub owner: String,
    #[prost(string, tag = "2")]
    pub id: String,
}

fn main() {}
