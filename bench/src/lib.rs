//! The task service's messages, client and server trait as plain tonic/prost generates them:
//! what the load generator calls and what the hand-written baseline implements.

#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod tasks {
    tonic::include_proto!("tasks");
}
