//! `ImportProjects`, hand-written: the proto marks it custom. svcgen wrote this stub
//! once, when the RPC appeared, and never touches it again. `store` offers the store
//! operations the proto declares for it (`custom: { uses: ["Entity.get", …] }`).

use tonic::{Request, Response, Status, Streaming};

use crate::generated;
use crate::handler::Handler;

impl generated::ImportProjectsRpc for Handler {
    async fn import_projects(
        &self,
        store: &generated::ImportProjectsStore,
        request: Request<Streaming<generated::acme::projects::v1::CreateProjectRequest>>,
    ) -> Result<Response<generated::acme::projects::v1::ImportProjectsResponse>, Status> {
        let _ = (store, request);
        Err(Status::unimplemented("not implemented yet"))
    }
}
