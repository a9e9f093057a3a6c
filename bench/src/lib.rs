//! What the benchmark's binaries share with the hand-written DynamoDB service: the task
//! service's messages, client and server trait as plain tonic/prost generates them, reading a
//! create request and a page size, and serving (see the `tasks-handwritten` crate).

pub use tasks_handwritten::{new_task, page_size, serve, tasks};

/// Serves HTTP/1 and HTTP/2 on `LISTEN_ADDR` (default `default_addr`), each connection with the
/// service `connection` makes for it, until SIGTERM or SIGINT. Prints `serving <addr>` on
/// stderr once it accepts connections.
pub async fn serve_http<S, B>(
    default_addr: &str,
    connection: impl Fn() -> S,
) -> Result<(), Box<dyn std::error::Error>>
where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<B>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let addr: std::net::SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| default_addr.to_owned())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("serving {addr}");
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = terminate.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        // A failed accept (a connection reset before it was accepted, no file descriptors
        // left) loses that connection, not the server.
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("accept: {error}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = connection();
        tokio::spawn(async move {
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}
