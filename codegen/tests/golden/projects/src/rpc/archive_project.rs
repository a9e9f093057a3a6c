//! `ArchiveProject`, hand-written: the proto marks it custom. svcgen wrote this stub
//! once, when the RPC appeared, and never touches it again.

use tonic::{Request, Response, Status};

use crate::generated::{self, Repositories};
use crate::handler::Handler;

impl generated::ArchiveProjectRpc for Handler {
    async fn archive_project(
        &self,
        repositories: &Repositories,
        request: Request<generated::acme::projects::v1::ArchiveProjectRequest>,
    ) -> Result<Response<generated::acme::projects::v1::Project>, Status> {
        let _ = (repositories, request);
        Err(Status::unimplemented("not implemented yet"))
    }
}
