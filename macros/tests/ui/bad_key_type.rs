#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
#[entity(table = "t", pk = "SENSOR#{sensor}", sk = "AT#{value}")]
pub struct Reading {
    #[prost(string, tag = "1")]
    pub sensor: String,
    #[prost(double, tag = "2")]
    pub value: f64,
}

fn main() {}
