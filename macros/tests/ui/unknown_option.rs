#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
#[entity(table = "t", pk = "ITEM#{id}", sk = "ITEM", colour = "red")]
pub struct Item {
    #[prost(string, tag = "1")]
    pub id: String,
}

fn main() {}
