//! `ArchiveProject`, hand-written: the proto marks it custom. svcgen wrote this stub
//! once, when the RPC appeared, and never touches it again. `store` offers the store
//! operations the proto declares for it (`custom: { uses: ["Entity.get", …] }`).

use tonic::{Request, Response, Status};

use crate::generated;
use crate::handler::Handler;

impl generated::ArchiveProjectRpc for Handler {
    async fn archive_project(
        &self,
        store: &generated::ArchiveProjectStore,
        request: Request<generated::acme::projects::v1::ArchiveProjectRequest>,
    ) -> Result<Response<generated::acme::projects::v1::Project>, Status> {
        let _ = (store, request);
        Err(Status::unimplemented("not implemented yet"))
    }
}
