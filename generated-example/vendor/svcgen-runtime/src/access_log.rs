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
use std::io::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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

/// The target of the access lines.
pub(crate) const TARGET: &str = "svcgen::access";

/// Set when the log lines are JSON and `RUST_LOG` lets [`TARGET`]'s lines through.
static JSON_LINES: AtomicBool = AtomicBool::new(false);

/// Tells the layers made from now on that the log lines are JSON and include the access
/// lines, which they then write themselves, as the log lines' formatter would (see
/// [`Call::json_line`]). Decided once, where logging is set up: asking `tracing` per call
/// whether the line is enabled leaves per-layer filter state behind that disables the next
/// span of the thread for the OpenTelemetry layer.
pub(crate) fn write_json_lines(enabled: bool) {
    JSON_LINES.store(enabled, Ordering::Relaxed);
}

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
    /// Whether the layer writes its JSON lines itself (see [`write_json_lines`]).
    json_lines: bool,
    /// OK calls seen, for sampling.
    seen: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl AccessLogLayer {
    pub(crate) fn new(mode: AccessLog, metrics: Arc<Metrics>) -> Self {
        Self {
            mode,
            json_lines: JSON_LINES.load(Ordering::Relaxed),
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
        let traceparent = || {
            request
                .headers()
                .get(&TRACEPARENT)
                .and_then(|v| v.to_str().ok())
                .and_then(trace_id)
        };
        // Exported, the span is the call's server span, and its trace the log line's.
        #[cfg(feature = "otlp")]
        let exported = crate::otlp::tracing().then(|| {
            let name = self.layer.metrics.rpc_name(&rpc);
            crate::otlp::server_span(&rpc, name, request.headers(), &request_id, peer)
        });
        #[cfg(not(feature = "otlp"))]
        let exported: Option<(tracing::Span, Option<String>, bool)> = None;
        let (span, trace_id, traced) = match exported {
            Some((span, trace_id, sampled)) => (span, trace_id.or_else(traceparent), sampled),
            None => (
                tracing::info_span!("rpc", rpc = %rpc, request_id = %request_id),
                traceparent(),
                false,
            ),
        };
        self.layer.metrics.call_started();
        let mut call = Call {
            rpc,
            request_id,
            trace_id,
            peer,
            started: Instant::now(),
            record: Arc::new(CallRecord::new(traced)),
            layer: self.layer.clone(),
            finished: false,
            span: span.clone(),
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
    /// The call's span: the handler runs in it, and the response body is polled in it (a
    /// stream's store requests are its children; an exported span ends with the response).
    span: tracing::Span,
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
        if self.record.traced() {
            crate::otlp::finish_server_span(&self.span, code);
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
        if self.layer.json_lines {
            let line = self.json_line(code, duration, &store);
            // stderr closed: nothing to report to.
            let _ = std::io::stderr().write_all(&line);
        } else {
            self.event(code, duration, &store);
        }
    }

    /// The call's event, through `tracing` (on a terminal, or where `RUST_LOG` decides).
    fn event(&self, code: tonic::Code, duration: Duration, store: &[StoreCall]) {
        let (read, write) = store
            .iter()
            .fold((0.0, 0.0), |(r, w), call| (r + call.read, w + call.write));
        let some = |units: f64| (!store.is_empty()).then_some(units);
        tracing::info!(
            target: TARGET,
            rpc = %self.rpc,
            code = ?code,
            duration_ms = duration.as_secs_f64() * 1000.0,
            request_id = %self.request_id,
            trace_id = self.trace_id.as_deref(),
            peer = self.peer.map(|p| p.to_string()),
            store_calls = store.len(),
            read_capacity = some(read),
            write_capacity = some(write),
            store = (!store.is_empty()).then(|| describe(store)),
            "call"
        );
    }
}

impl Call {
    /// The call's event as the JSON log lines write events (the same keys, in the same order,
    /// as tracing-subscriber's formatter), made here: formatting it through `tracing`'s field
    /// visitors took a short call's telemetry most of its cost.
    fn json_line(&self, code: tonic::Code, duration: Duration, store: &[StoreCall]) -> Vec<u8> {
        fn field(line: &mut Vec<u8>, key: &str, value: &impl serde::Serialize) {
            line.extend_from_slice(b",\"");
            line.extend_from_slice(key.as_bytes());
            line.extend_from_slice(b"\":");
            // Strings and numbers into a Vec: nothing can fail.
            let _ = serde_json::to_writer(&mut *line, value);
        }
        let mut timestamp = String::with_capacity(32);
        let _ = tracing_subscriber::fmt::time::FormatTime::format_time(
            &tracing_subscriber::fmt::time::SystemTime,
            &mut tracing_subscriber::fmt::format::Writer::new(&mut timestamp),
        );
        let mut line = Vec::with_capacity(384);
        let _ = write!(
            line,
            "{{\"timestamp\":\"{timestamp}\",\"level\":\"INFO\",\"message\":\"call\""
        );
        field(&mut line, "rpc", &self.rpc);
        let _ = write!(line, ",\"code\":\"{code:?}\"");
        field(&mut line, "duration_ms", &(duration.as_secs_f64() * 1000.0));
        field(&mut line, "request_id", &self.request_id);
        if let Some(trace_id) = &self.trace_id {
            field(&mut line, "trace_id", trace_id);
        }
        if let Some(peer) = self.peer {
            let _ = write!(line, ",\"peer\":\"{peer}\"");
        }
        field(&mut line, "store_calls", &store.len());
        if !store.is_empty() {
            let (read, write) = store
                .iter()
                .fold((0.0, 0.0), |(r, w), call| (r + call.read, w + call.write));
            field(&mut line, "read_capacity", &read);
            field(&mut line, "write_capacity", &write);
            field(&mut line, "store", &describe(store));
        }
        let _ = writeln!(line, ",\"target\":\"{TARGET}\"}}");
        line
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
        // A streaming response makes its store requests while it is polled, in the call's span.
        let this = &mut *self;
        let polled = match &this.call {
            Some(call) => {
                let _entered = call.span.enter();
                let inner = &mut this.inner;
                crate::telemetry::recording_sync(call.record.clone(), || {
                    Pin::new(inner).poll_frame(cx)
                })
            }
            None => Pin::new(&mut this.inner).poll_frame(cx),
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

    /// What tracing-subscriber's JSON formatter, set up as the service sets it up, writes for
    /// the call's event.
    fn through_tracing(
        call: &Call,
        code: tonic::Code,
        duration: Duration,
        store: &[StoreCall],
    ) -> Vec<u8> {
        use tracing_subscriber::layer::SubscriberExt as _;
        #[derive(Clone, Default)]
        struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().map_or(Ok(0), |mut v| {
                    v.extend_from_slice(bytes);
                    Ok(bytes.len())
                })
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || call.event(code, duration, store));
        captured.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The object with its keys in the order they are written, and its timestamp apart.
    fn fields(line: &[u8]) -> (Vec<(String, serde_json::Value)>, String) {
        let object: std::collections::HashMap<String, serde_json::Value> =
            serde_json::from_slice(line).unwrap_or_default();
        let text = String::from_utf8_lossy(line);
        let mut fields: Vec<(usize, String, serde_json::Value)> = object
            .into_iter()
            .map(|(key, value)| {
                (
                    text.find(&format!("\"{key}\":")).unwrap_or(usize::MAX),
                    key,
                    value,
                )
            })
            .collect();
        fields.sort_by_key(|(at, ..)| *at);
        let mut timestamp = String::new();
        let fields = fields
            .into_iter()
            .filter_map(|(_, key, value)| match (key.as_str(), value) {
                ("timestamp", serde_json::Value::String(at)) => {
                    timestamp = at;
                    None
                }
                (_, value) => Some((key, value)),
            })
            .collect();
        (fields, timestamp)
    }

    #[test]
    fn the_json_line_is_the_line_tracing_would_write() {
        let layer = AccessLogLayer::new(AccessLog::All, Metrics::new("s", &[], Sink::Off));
        let mut call = Call {
            rpc: "/tasks.TaskService/GetTask".into(),
            request_id: r#"a"b\c"#.into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            peer: "[::1]:4000".parse().ok(),
            started: Instant::now(),
            record: Arc::default(),
            layer,
            finished: true,
            span: tracing::Span::none(),
        };
        let store = [StoreCall::test("GetItem", "tasks", 0.5, 0.0)];
        let timestamp =
            regex_lite::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$").expect("a regex");
        for (code, duration, store) in [
            (
                tonic::Code::NotFound,
                Duration::from_micros(1537),
                &store[..],
            ),
            (tonic::Code::Ok, Duration::ZERO, &[][..]),
        ] {
            let ours = call.json_line(code, duration, store);
            assert_eq!(ours.last(), Some(&b'\n'));
            let theirs = through_tracing(&call, code, duration, store);
            let ((ours, our_time), (theirs, their_time)) = (fields(&ours), fields(&theirs));
            assert!(ours.len() >= 8, "{ours:?}");
            assert_eq!(ours, theirs);
            assert!(timestamp.is_match(&our_time), "{our_time}");
            assert!(timestamp.is_match(&their_time), "{their_time}");
            call.trace_id = None;
            call.peer = None;
        }
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
