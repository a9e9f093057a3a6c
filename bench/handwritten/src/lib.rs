//! The task service's messages, client and server trait as plain tonic/prost generates them
//! (what the load generator calls and the hand-written services implement), and what those
//! services share: reading a create request and a page size, and serving.

use tonic::Status;

#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
pub mod tasks {
    tonic::include_proto!("tasks");
}

/// The task a `CreateTask` stores: `task` and its `project_id` required, a new UUID v7 id
/// unless the caller chose one, version 1.
pub fn new_task(request: tasks::CreateTaskRequest) -> Result<tasks::Task, Status> {
    let mut task = request
        .task
        .ok_or_else(|| Status::invalid_argument("`task` is required"))?;
    if task.project_id.is_empty() {
        return Err(Status::invalid_argument("`project_id` is required"));
    }
    if task.id.is_empty() {
        task.id = uuid::Uuid::now_v7().to_string();
    }
    task.version = 1;
    Ok(task)
}

/// A request's `page_size`: 0 is 20, at most 1000, negative is invalid.
pub fn page_size(requested: i32) -> Result<usize, Status> {
    match requested {
        0 => Ok(20),
        n if n < 0 => Err(Status::invalid_argument("page_size must not be negative")),
        n => Ok(usize::try_from(n.min(1000)).unwrap_or(1000)),
    }
}

/// Serves `service` with gRPC health checking on `LISTEN_ADDR` (default 127.0.0.1:50051),
/// printing `serving <addr>` on stderr, until SIGTERM or SIGINT.
pub async fn serve<S: tasks::task_service_server::TaskService>(
    service: S,
) -> Result<(), Box<dyn std::error::Error>> {
    use tasks::task_service_server::TaskServiceServer;
    let addr: std::net::SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:50051".to_owned())
        .parse()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<TaskServiceServer<S>>().await;
    eprintln!("serving {addr}");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(TaskServiceServer::new(service))
        .serve_with_shutdown(addr, async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await?;
    Ok(())
}
