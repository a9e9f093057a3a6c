// Two template errors and a wrongly typed version field: all three are reported together.
#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
#[entity(table = "t", pk = "OWNER#{nobody}", sk = "ITEM#{score}", version = "title")]
pub struct Item {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(float, tag = "2")]
    pub score: f32,
}

fn main() {}
