//! `WatchProject`, hand-written: the proto marks it custom. svcgen wrote this stub
//! once, when the RPC appeared, and never touches it again. `store` offers the store
//! operations the proto declares for it (`custom: { uses: ["Entity.get", …] }`).
//! The response is a stream: return any `Stream` of results, boxed, e.g. the receiving end of
//! `generated::response_channel` with a task that sends, spawned with
//! `generated::spawn_in_call` (its store requests then count in the call's log line and trace).
//! A stream still running when the server's drain is about to time out is ended with
//! UNAVAILABLE, so clients retry.

use tonic::{Request, Response, Status};

use crate::generated::{self, ResponseStream};
use crate::handler::Handler;

impl generated::WatchProjectRpc for Handler {
    async fn watch_project(
        &self,
        store: generated::WatchProjectStore,
        request: Request<generated::acme::projects::v1::GetProjectRequest>,
    ) -> Result<Response<ResponseStream<generated::acme::projects::v1::Project>>, Status> {
        let _ = (store, request);
        Err(Status::unimplemented("not implemented yet"))
    }
}
