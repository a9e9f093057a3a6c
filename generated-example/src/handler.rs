//! Hand-written behaviour of task-svc: request checks (override the `check_*` methods of
//! the handler traits) and the RPCs the proto marks custom. svcgen wrote this file once and
//! never touches it again.

use crate::generated;

/// The service's hand-written state and behaviour.
#[derive(Clone, Copy, Debug, Default)]
pub struct Handler;

impl generated::TaskServiceHandler for Handler {}
