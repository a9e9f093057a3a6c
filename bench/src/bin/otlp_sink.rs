//! An OTLP/gRPC collector that keeps nothing: it answers every export (traces, metrics) with an
//! empty success, so that the benchmark measures what exporting costs the service, not what a
//! collector does with it. `GET /stats` answers, as JSON, the exports received by path, their
//! bytes and the spans they carried (so a run whose exporter dropped spans shows it).
//!
//! Environment: `LISTEN_ADDR` (default 127.0.0.1:4317). Prints `serving <addr>` on stderr when
//! it starts; SIGTERM/SIGINT stop it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::{BodyExt as _, Either, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response};

/// Exports received, their bytes and the spans in them, by path.
type Received = Mutex<BTreeMap<String, [u64; 3]>>;

/// `ExportTraceServiceRequest`, as far as counting its spans needs (OTLP's field numbers).
#[derive(prost::Message)]
struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(prost::Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(prost::Message)]
struct ScopeSpans {
    /// The spans, undecoded.
    #[prost(bytes = "vec", repeated, tag = "2")]
    spans: Vec<Vec<u8>>,
}

/// The spans of a gRPC-framed, uncompressed trace export (0 for anything else).
fn spans(body: &[u8]) -> u64 {
    let message = body.get(5..).unwrap_or_default();
    let request =
        <ExportTraceServiceRequest as prost::Message>::decode(message).unwrap_or_default();
    let spans: usize = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    u64::try_from(spans).unwrap_or(u64::MAX)
}

type Reply = Either<
    Full<Bytes>,
    StreamBody<tokio_stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
>;

async fn serve(received: Arc<Received>, request: Request<Incoming>) -> Response<Reply> {
    if request.method() == hyper::Method::GET {
        let stats: BTreeMap<String, serde_json::Value> = received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(path, [exports, bytes, spans])| {
                let counts =
                    serde_json::json!({"exports": exports, "bytes": bytes, "spans": spans});
                (path.clone(), counts)
            })
            .collect();
        let body = serde_json::to_vec(&stats).unwrap_or_default();
        return Response::new(Either::Left(Full::new(Bytes::from(body))));
    }
    let path = request.uri().path().to_owned();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes())
        .unwrap_or_default();
    let spans = if path.ends_with("TraceService/Export") {
        spans(&body)
    } else {
        0
    };
    {
        let mut received = received.lock().unwrap_or_else(PoisonError::into_inner);
        let [exports, bytes, counted] = received.entry(path).or_default();
        *exports += 1;
        *bytes += u64::try_from(body.len()).unwrap_or(u64::MAX);
        *counted += spans;
    }
    // One empty message (the Export*ServiceResponse without partial success), then OK.
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
    let frames = vec![
        Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))),
        Ok(Frame::trailers(trailers)),
    ];
    let mut response = Response::new(Either::Right(StreamBody::new(tokio_stream::iter(frames))));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/grpc"),
    );
    response
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let received = Arc::new(Received::default());
    svcgen_bench::serve_http("127.0.0.1:4317", || {
        let received = received.clone();
        hyper::service::service_fn(move |request| {
            let received = received.clone();
            async move { Ok::<_, Infallible>(serve(received, request).await) }
        })
    })
    .await
}
