#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
pub struct Item {
    #[prost(string, tag = "1")]
    pub id: String,
}

fn main() {}
