//! grpc.health.v1 with the answer load balancers need: `Check` fails with UNAVAILABLE while a
//! service is NOT_SERVING, because an ALB's gRPC health check judges only the status code (a
//! NOT_SERVING body with status OK would keep a draining task in rotation). `Watch` streams
//! every status, NOT_SERVING included, as the protocol describes.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The message `Check` fails with while a service is not serving.
pub const NOT_SERVING: &str = "NOT_SERVING";

type Statuses = BTreeMap<String, ServingStatus>;

/// Sets the serving status of services (`""` is the server as a whole).
#[derive(Clone, Debug)]
pub struct HealthReporter {
    statuses: watch::Sender<Statuses>,
    draining: Arc<AtomicBool>,
}

impl HealthReporter {
    /// Sets `service` to `status`; once the server drains, every status stays NOT_SERVING.
    pub fn set(&self, service: &str, status: ServingStatus) {
        self.statuses.send_modify(|statuses| {
            let status = if self.draining.load(Ordering::SeqCst) {
                ServingStatus::NotServing
            } else {
                status
            };
            statuses.insert(service.to_owned(), status);
        });
    }

    /// Turns every service NOT_SERVING for good: the server is draining.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.statuses.send_modify(|statuses| {
            statuses
                .values_mut()
                .for_each(|status| *status = ServingStatus::NotServing);
        });
    }
}

/// The gRPC service answering `grpc.health.v1.Health`.
#[derive(Debug)]
pub struct HealthService {
    statuses: watch::Receiver<Statuses>,
}

/// A reporter and the service it feeds; every service starts unknown.
pub fn health() -> (HealthReporter, HealthServer<HealthService>) {
    let (sender, receiver) = watch::channel(Statuses::new());
    (
        HealthReporter {
            statuses: sender,
            draining: Arc::default(),
        },
        HealthServer::new(HealthService { statuses: receiver }),
    )
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        let status = self.statuses.borrow().get(&service).copied();
        match status {
            Some(ServingStatus::Serving) => Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })),
            Some(_) => Err(Status::unavailable(NOT_SERVING)),
            None => Err(Status::not_found(format!("unknown service `{service}`"))),
        }
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let service = request.into_inner().service;
        let mut last = None;
        let stream = tokio_stream::wrappers::WatchStream::new(self.statuses.clone()).filter_map(
            move |statuses| {
                let status = statuses
                    .get(&service)
                    .copied()
                    .unwrap_or(ServingStatus::ServiceUnknown);
                // Only changes are sent after the first message.
                (last.replace(status) != Some(status)).then_some(Ok(HealthCheckResponse {
                    status: status as i32,
                }))
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
