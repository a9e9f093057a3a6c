//! `CreateProjectWithOwner`, hand-written: the proto marks it custom. svcgen wrote this stub
//! once, when the RPC appeared, and never touches it again. `store` offers the store
//! operations the proto declares for it (`custom: { uses: ["Entity.get", …] }`).

use tonic::{Request, Response, Status};

use crate::generated;
use crate::handler::Handler;

impl generated::CreateProjectWithOwnerRpc for Handler {
    async fn create_project_with_owner(
        &self,
        store: &generated::CreateProjectWithOwnerStore,
        request: Request<generated::acme::projects::v1::CreateProjectRequest>,
    ) -> Result<Response<generated::acme::projects::v1::Project>, Status> {
        let _ = (store, request);
        Err(Status::unimplemented("not implemented yet"))
    }
}
