//! Hand-written behaviour of task-svc: the service's state and its request hooks
//! (override the `prepare_*` methods, which see the call's context and may fill
//! server-owned fields, and the `check_*` methods of the handler traits). Each RPC the proto
//! marks custom lives in its own file under `src/rpc/`. svcgen wrote this file once and
//! never touches it again.

use crate::generated;

/// The service's hand-written state and behaviour.
#[derive(Clone, Copy, Debug, Default)]
pub struct Handler;

impl generated::TaskServiceHandler for Handler {}
