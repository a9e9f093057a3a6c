//! Hand-written behaviour of projects-svc: request checks (override the `check_*` methods of
//! the handler traits) and the RPCs the proto marks custom. svcgen wrote this file once and
//! never touches it again.

use tonic::{Request, Response, Status};

use crate::generated::{self, Repositories};

/// The service's hand-written state and behaviour.
#[derive(Clone, Copy, Debug, Default)]
pub struct Handler;

impl generated::ProjectServiceHandler for Handler {
    async fn archive_project(
        &self,
        repositories: &Repositories,
        request: Request<generated::acme::projects::v1::ArchiveProjectRequest>,
    ) -> Result<Response<generated::acme::projects::v1::Project>, Status> {
        let _ = (repositories, request);
        Err(Status::unimplemented("not implemented yet"))
    }
}
