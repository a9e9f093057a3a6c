//! Client and server code for `proto/tasks.proto`, plain tonic + prost (no svcgen), compiled
//! with protox.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    println!("cargo:rerun-if-changed={protos}");
    let descriptors = protox::compile(["tasks.proto"], [protos])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
