//! One structured log event per call, when its response ends: the RPC, its gRPC code, the
//! duration, the request id (the caller's `x-request-id`, else a new UUID v7, returned in the
//! response headers either way), the W3C trace id of an incoming `traceparent`, and the peer.
//! The call runs in a span carrying the RPC and the request id, so every event logged while
//! handling it — an internal error's included — names the call it belongs to. The line lists
//! the store requests the call made, with the capacity they consumed, and every call (logged
//! or not) counts in the service's metrics ([`crate::telemetry`]).
//!
//! `ACCESS_LOG` chooses: `all` (default), `errors` (calls not answered OK), `off`, or a sample
//! rate such as `0.1` (that share of OK calls, every error). Health and reflection calls (the
//! load balancer's checks every few seconds) are not logged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use http::HeaderValue;
use http_body::Frame;
use tonic::body::Body;
use tracing::Instrument as _;

use crate::telemetry::{CallRecord, Metrics, StoreCall};

/// The header carrying the request id, in requests and responses.
pub const REQUEST_ID: &str = "x-request-id";
/// [`REQUEST_ID`], parsed once rather than on every lookup.
const REQUEST_ID_HEADER: http::HeaderName = http::HeaderName::from_static(REQUEST_ID);
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// Which calls are logged (`ACCESS_LOG`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AccessLog {
    /// None.
    Off,
    /// Calls not answered OK.
    Errors,
    /// Every call.
    All,
    /// Every call not answered OK, and this share (0 to 1) of the others.
    Sample(f64),
}

impl std::str::FromStr for AccessLog {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        match value {
            "off" => Ok(Self::Off),
            "errors" => Ok(Self::Errors),
            "all" => Ok(Self::All),
            rate => match rate.parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(Self::Sample(rate)),
                _ => Err(()),
            },
        }
    }
}

/// The [`tower::Layer`] of the access log.
#[derive(Clone, Debug)]
pub(crate) struct AccessLogLayer {
    mode: AccessLog,
    /// OK calls seen, for sampling.
    seen: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl AccessLogLayer {
    pub(crate) fn new(mode: AccessLog, metrics: Arc<Metrics>) -> Self {
        Self {
            mode,
            seen: Arc::new(AtomicU64::new(0)),
            metrics,
        }
    }

    /// Whether the next OK call is in the sample: the n-th is when n × rate crosses an
    /// integer, so exactly that share is logged, evenly spread.
    #[allow(clippy::cast_precision_loss)] // counts beyond 2^52 calls only blur the spacing
    fn sampled(&self, rate: f64) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * rate).floor() > (n * rate).floor()
    }
}

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLogService {
            inner,
            layer: self.clone(),
        }
    }
}

/// Logs each call when its response ends.
#[derive(Clone, Debug)]
pub(crate) struct AccessLogService<S> {
    inner: S,
    layer: AccessLogLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for AccessLogService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().to_owned();
        if rpc.starts_with("/grpc.health.") || rpc.starts_with("/grpc.reflection.") {
            return Box::pin(self.inner.call(request));
        }
        let request_id = request
            .headers()
            .get(&REQUEST_ID_HEADER)
            .filter(|v| (1..=128).contains(&v.len()))
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(new_request_id, str::to_owned);
        let header = HeaderValue::from_str(&request_id).ok();
        if let Some(header) = &header {
            // Handlers read the id as the caller sent it, or as the server made it.
            request
                .headers_mut()
                .insert(REQUEST_ID_HEADER, header.clone());
        }
        let peer = request
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr());
        // Exported, the span is the call's server span, and its trace the log line's.
        #[cfg(feature = "otlp")]
        let exported = crate::otlp::tracing().then(|| {
            let name = self.layer.metrics.rpc_name(&rpc);
            crate::otlp::server_span(&rpc, name, request.headers(), &request_id, peer)
        });
        #[cfg(not(feature = "otlp"))]
        let exported: Option<tracing::Span> = None;
        let (span, trace_id) = match &exported {
            #[cfg(feature = "otlp")]
            Some(span) => (span.clone(), crate::otlp::trace_id(span)),
            _ => (
                tracing::info_span!("rpc", rpc = %rpc, request_id = %request_id),
                request
                    .headers()
                    .get(&TRACEPARENT)
                    .and_then(|v| v.to_str().ok())
                    .and_then(trace_id),
            ),
        };
        self.layer.metrics.call_started();
        let mut call = Call {
            rpc,
            request_id,
            trace_id,
            peer,
            started: Instant::now(),
            record: Arc::default(),
            layer: self.layer.clone(),
            finished: false,
            #[cfg(feature = "otlp")]
            span: exported,
        };
        let response = crate::telemetry::recording(
            call.record.clone(),
            self.inner.call(request).instrument(span),
        );
        // Dropped before it answers (the client went away, the drain ended it), `call` logs
        // itself CANCELLED.
        Box::pin(async move {
            let mut response = response.await?;
            if let Some(mut header) = header {
                // Never indexed by HPACK: a value used once would only evict the connection's
                // reusable entries (content-type, grpc-status) from its table.
                header.set_sensitive(true);
                response.headers_mut().insert(REQUEST_ID_HEADER, header);
            }
            // An error without a message body (trailers-only) carries its status in the headers.
            if let Some(code) = grpc_status(response.headers()) {
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(LoggedBody {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// A new UUID v7: the time, then random bits from a fast per-thread generator. A request id
/// must be unique, not unguessable, so it costs no system call (the OS's random source does).
/// Ids made in the same millisecond are not ordered among themselves.
fn new_request_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    let mut random = [0; 10];
    fastrand::fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random)
        .into_uuid()
        .to_string()
}

/// `00-<trace id>-<parent id>-<flags>` → the trace id, unless it is malformed or all zeros.
fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (version, id) = (parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (hex(version, 2) && version != "ff" && hex(id, 32) && id.bytes().any(|b| b != b'0'))
        .then(|| id.to_owned())
}

fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let status = headers
        .get(&GRPC_STATUS)?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(status))
}

/// A call whose response has not ended yet.
struct Call {
    rpc: String,
    request_id: String,
    trace_id: Option<String>,
    peer: Option<std::net::SocketAddr>,
    started: Instant,
    /// The store requests made for it.
    record: Arc<CallRecord>,
    layer: AccessLogLayer,
    finished: bool,
    /// The exported server span, kept open until the response ends.
    #[cfg(feature = "otlp")]
    span: Option<tracing::Span>,
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

impl Call {
    /// Counts and logs the call as answered `code`, once.
    fn finish(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let duration = self.started.elapsed();
        self.layer.metrics.call_finished(&self.rpc, code, duration);
        #[cfg(feature = "otlp")]
        if let Some(span) = &self.span {
            crate::otlp::finish_server_span(span, code);
        }
        let logged = match self.layer.mode {
            AccessLog::Off => false,
            AccessLog::Errors => code != tonic::Code::Ok,
            AccessLog::All => true,
            AccessLog::Sample(rate) => code != tonic::Code::Ok || self.layer.sampled(rate),
        };
        if !logged {
            return;
        }
        let store = self.record.take();
        let (read, write) = store
            .iter()
            .fold((0.0, 0.0), |(r, w), call| (r + call.read, w + call.write));
        let some = |units: f64| (!store.is_empty()).then_some(units);
        tracing::info!(
            target: "svcgen::access",
            rpc = %self.rpc,
            code = ?code,
            duration_ms = duration.as_secs_f64() * 1000.0,
            request_id = %self.request_id,
            trace_id = self.trace_id.as_deref(),
            peer = self.peer.map(|p| p.to_string()),
            store_calls = store.len(),
            read_capacity = some(read),
            write_capacity = some(write),
            store = (!store.is_empty()).then(|| describe(&store)),
            "call"
        );
    }
}

/// `GetItem tasks 1 RCU 0.41 ms, PutItem tasks 2 WCU 3.05 ms`.
fn describe(calls: &[StoreCall]) -> String {
    let described: Vec<String> = calls
        .iter()
        .map(|call| {
            let mut text = format!("{} {}", call.operation, call.table);
            if call.read > 0.0 {
                text.push_str(&format!(" {} RCU", call.read));
            }
            if call.write > 0.0 {
                text.push_str(&format!(" {} WCU", call.write));
            }
            text.push_str(&format!(" {:.2} ms", call.duration.as_secs_f64() * 1000.0));
            text
        })
        .collect();
    described.join(", ")
}

/// The response body, logging the call when its trailers (with the gRPC status) pass, when it
/// ends without them, or when it is dropped first (the client went away: CANCELLED, as the
/// dropped [`Call`] logs itself).
struct LoggedBody {
    inner: Body,
    call: Option<Call>,
}

impl LoggedBody {
    fn finish(&mut self, code: tonic::Code) {
        if let Some(mut call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        // A streaming response makes its store requests while it is polled.
        let polled = match self.call.as_ref().map(|call| call.record.clone()) {
            Some(record) => {
                let inner = &mut self.inner;
                crate::telemetry::recording_sync(record, || Pin::new(inner).poll_frame(cx))
            }
            None => Pin::new(&mut self.inner).poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(tonic::Code::Internal),
            Poll::Ready(None) => self.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Sink;

    #[test]
    fn the_mode_and_the_trace_id_are_read_as_documented() {
        assert_eq!("all".parse(), Ok(AccessLog::All));
        assert_eq!("errors".parse(), Ok(AccessLog::Errors));
        assert_eq!("off".parse(), Ok(AccessLog::Off));
        assert_eq!("0.25".parse(), Ok(AccessLog::Sample(0.25)));
        assert_eq!("1.5".parse::<AccessLog>(), Err(()));
        assert_eq!("some".parse::<AccessLog>(), Err(()));
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_id(&format!("00-{id}-00f067aa0ba902b7-01")).as_deref(),
            Some(id)
        );
        assert_eq!(
            trace_id(&format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32))),
            None
        );
        assert_eq!(
            trace_id("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id(&format!("ff-{id}-00f067aa0ba902b7-01")), None);
        assert_eq!(trace_id("garbage"), None);
    }

    #[test]
    fn request_ids_are_distinct_uuid_v7s() {
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(uuid.get_version(), Some(uuid::Version::SortRand));
        }
    }

    #[test]
    fn a_sample_rate_logs_that_share_of_ok_calls() {
        let layer = AccessLogLayer::new(AccessLog::Sample(0.25), Metrics::new("s", &[], Sink::Emf));
        let logged: Vec<bool> = (0..100).map(|_| layer.sampled(0.25)).collect();
        assert_eq!(logged.iter().filter(|l| **l).count(), 25);
        assert_eq!(&logged[..4], [false, false, false, true]);
        let none = AccessLogLayer::new(AccessLog::Sample(0.0), Metrics::new("s", &[], Sink::Emf));
        assert!((0..100).all(|_| !none.sampled(0.0)));
    }
}
