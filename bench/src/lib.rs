//! What the benchmark's binaries share with the hand-written DynamoDB service: the task
//! service's messages, client and server trait as plain tonic/prost generates them, reading a
//! create request and a page size, and serving (see the `tasks-handwritten` crate).

pub use tasks_handwritten::{new_task, page_size, serve, tasks};
