#[derive(Clone, PartialEq, Default, svcgen_runtime::Attributes)]
pub struct Loose {
    pub a: String,
    pub b: u32,
}

fn main() {}
