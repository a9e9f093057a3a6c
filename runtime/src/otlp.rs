//! Traces and metrics over OTLP/gRPC, configured by OpenTelemetry's standard environment:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) turns export on; `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_*` and `OTEL_METRIC_EXPORT_INTERVAL` are read by
//! OpenTelemetry's SDK and exporter themselves; `OTEL_SDK_DISABLED=true` and
//! `OTEL_TRACES_EXPORTER=none` turn it off.
//!
//! Each call's `rpc` span (see [`crate::access_log`]) becomes a server span named and attributed
//! by the semantic conventions for gRPC, its parent the caller's W3C `traceparent`; each store
//! request a client span under it ([`store_span`]); spans a handler opens with `tracing` become
//! its children. Metrics follow the conventions too (`rpc.server.call.duration`,
//! `db.client.operation.duration`) when `METRICS=otlp`, the default with an endpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::server::ConfigError;
use crate::telemetry::{StoreCall, StoreSystem};

/// Whether spans are exported: the per-call and per-request spans are only made then.
static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported.
pub(crate) fn tracing() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Records that [`Otlp::layer`] is installed (and spans are exported from now on).
pub(crate) fn set_tracing() {
    TRACING.store(true, Ordering::Relaxed);
}

/// The exporters the environment asks for, running until [`Otlp::shutdown`].
pub(crate) struct Otlp {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

/// What OpenTelemetry exports.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

impl Signal {
    /// As the variables name it (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    fn name(self) -> &'static str {
        match self {
            Self::Traces => "TRACES",
            Self::Metrics => "METRICS",
        }
    }
}

/// `variable`'s value, unless unset or blank.
fn value(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Whether the environment asks for `signal` over OTLP: an endpoint is set (the general one or
/// the signal's), `OTEL_SDK_DISABLED` is not `true`, and `OTEL_<SIGNAL>_EXPORTER` is unset or
/// lists `otlp` (`none`, or only exporters not built in such as `console`, turns it off). Values
/// are case-insensitive, as the specification says.
pub(crate) fn configured(signal: Signal) -> bool {
    let disabled =
        value("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let exporter = value(&format!("OTEL_{}_EXPORTER", signal.name()))
        .is_none_or(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("otlp")));
    let endpoint = value("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || value(&format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.name())).is_some();
    !disabled && exporter && endpoint
}

/// Only OTLP over gRPC is built in: any other protocol (the signal's variable first, then the
/// general one) is refused rather than sent to a port that would not understand it.
fn check_protocol(signal: Signal) -> Result<(), ConfigError> {
    let variables = [
        format!("OTEL_EXPORTER_OTLP_{}_PROTOCOL", signal.name()),
        "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
    ];
    match variables
        .into_iter()
        .find_map(|v| value(&v).map(|value| (v, value)))
    {
        Some((variable, value)) if !value.trim().eq_ignore_ascii_case("grpc") => {
            Err(ConfigError::Otlp(format!(
                "{variable}={value:?}: only `grpc` (OTLP over gRPC, port 4317) is supported"
            )))
        }
        _ => Ok(()),
    }
}

impl Otlp {
    /// Starts the exporters the environment asks for: traces when [`configured`], metrics
    /// when `metrics`. Must run inside the tokio runtime (the gRPC channels live on it).
    /// `service` names the resource when neither `OTEL_SERVICE_NAME` nor
    /// `OTEL_RESOURCE_ATTRIBUTES` does.
    pub(crate) fn start(service: &str, metrics: bool) -> Result<Self, ConfigError> {
        let mut resource = opentelemetry_sdk::Resource::builder();
        let named = value("OTEL_SERVICE_NAME").is_some()
            || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| {
                a.split(',')
                    .any(|kv| kv.trim().starts_with("service.name="))
            });
        if !named {
            resource = resource.with_service_name(service.to_owned());
        }
        let resource = resource.build();
        let tracer = if configured(Signal::Traces) {
            check_protocol(Signal::Traces)?;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .map_err(|e| ConfigError::Otlp(e.to_string()))?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource.clone())
                    .build(),
            )
        } else {
            None
        };
        let meter = if metrics {
            check_protocol(Signal::Metrics)?;
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .build()
                .map_err(|e| ConfigError::Otlp(e.to_string()))?;
            Some(
                SdkMeterProvider::builder()
                    .with_periodic_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        } else {
            None
        };
        Ok(Self { tracer, meter })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans, when traces are exported.
    pub(crate) fn layer<S>(&self) -> Option<impl tracing_subscriber::Layer<S> + Send + Sync>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
    {
        use tracing_subscriber::Layer as _;
        let tracer = self.tracer.as_ref()?.tracer("svcgen");
        // Spans of the libraries under the service (and the exporter's own) would trace the
        // tracing; the access line is already the server span. Targets match by prefix: the
        // `::` keeps a crate such as `hyperdrive` exported.
        let quiet = tracing_subscriber::filter::LevelFilter::OFF;
        let filter = [
            "opentelemetry",
            "h2::",
            "hyper::",
            "hyper_util::",
            "tonic::",
            "tower::",
            "aws_smithy_",
            "aws_sdk_",
            "aws_config::",
            "aws_runtime::",
            crate::access_log::TARGET,
        ]
        .into_iter()
        .fold(
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO),
            |filter, target| filter.with_target(target, quiet),
        );
        // Only the attributes the spans are given: no source locations, threads or timings.
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                .with_filter(filter),
        )
    }

    /// Instruments for the service's metrics, when metrics are exported.
    pub(crate) fn instruments(&self) -> Option<Instruments> {
        self.meter.as_ref().map(|meter| {
            Instruments::new(&opentelemetry::metrics::MeterProvider::meter(
                meter, "svcgen",
            ))
        })
    }

    /// Exports what is buffered and stops, spans and metrics at once, waiting at most
    /// `timeout` for both (a stopping task has seconds left before SIGKILL). Blocks: call it
    /// off the runtime's worker threads (the exports run on it).
    pub(crate) fn shutdown(self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let (done, finished) = std::sync::mpsc::channel();
        let mut pending = 0;
        if let Some(tracer) = self.tracer {
            let done = done.clone();
            pending += 1;
            std::thread::spawn(move || done.send(("spans", tracer.shutdown_with_timeout(timeout))));
        }
        if let Some(meter) = self.meter {
            pending += 1;
            // The SDK waits up to 5 s for its reader whatever the timeout: the deadline is ours.
            std::thread::spawn(move || done.send(("metrics", meter.shutdown())));
        }
        for _ in 0..pending {
            match finished
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            {
                Ok((_, Ok(()))) => {}
                Ok((what, Err(error))) => {
                    tracing::warn!(%error, "exporting the last {what} failed")
                }
                Err(_) => {
                    tracing::warn!(
                        ?timeout,
                        "exporting the last spans and metrics did not finish in time"
                    );
                    return;
                }
            }
        }
    }
}

/// W3C trace context from request headers.
struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// A call's server span: named `package.Service/Method`, attributed by the gRPC conventions,
/// the child of the caller's `traceparent` when it sends one.
/// Returns the span, its trace id in hex and whether it is sampled: an unsampled call's spans
/// are not exported, so it gets no attributes and no store spans (a sampled share of calls then
/// costs little more than none).
pub(crate) fn server_span(
    path: &str,
    name: &str,
    headers: &http::HeaderMap,
    request_id: &str,
    peer: Option<std::net::SocketAddr>,
) -> (tracing::Span, Option<String>, bool) {
    let span = tracing::info_span!(
        "rpc",
        otel.name = name,
        otel.kind = "server",
        rpc = %path,
        request_id = %request_id,
    );
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    // Fails when the span is not exported (disabled, or no OpenTelemetry layer): then its
    // parent does not matter.
    let _ = span.set_parent(parent);
    let context = {
        use opentelemetry::trace::TraceContextExt as _;
        span.context().span().span_context().clone()
    };
    let trace_id = context.is_valid().then(|| context.trace_id().to_string());
    if !context.is_sampled() {
        return (span, trace_id, false);
    }
    let full = path.trim_start_matches('/');
    let (service, method) = full.split_once('/').unwrap_or((full, ""));
    span.set_attribute("rpc.system", "grpc");
    span.set_attribute("rpc.service", service.to_owned());
    span.set_attribute("rpc.method", method.to_owned());
    span.set_attribute("svcgen.request_id", request_id.to_owned());
    if let Some(peer) = peer {
        span.set_attribute("network.peer.address", peer.ip().to_string());
        span.set_attribute("network.peer.port", i64::from(peer.port()));
    }
    (span, trace_id, true)
}

/// Records the call's gRPC code on its server span; server errors mark it failed.
pub(crate) fn finish_server_span(span: &tracing::Span, code: tonic::Code) {
    span.set_attribute("rpc.grpc.status_code", i64::from(code as i32));
    if svcgen_contract::metrics::server_error(code as i32) == Some(true) {
        span.set_status(Status::error(format!("{code:?}")));
    }
}

/// The client span of one store request, under the current call's span: `DynamoDB.GetItem`
/// with the AWS SDK's conventions on DynamoDB, `LocalStore.GetItem` on the embedded store.
pub(crate) fn store_span(
    system: StoreSystem,
    operation: &'static str,
    table: &str,
) -> tracing::Span {
    let span = tracing::info_span!(
        "store",
        otel.name = format!("{}.{operation}", system.span_prefix()),
        otel.kind = "client",
    );
    span.set_attribute("db.system.name", system.name());
    span.set_attribute("db.operation.name", operation);
    span.set_attribute("db.collection.name", table.to_owned());
    if system == StoreSystem::DynamoDb {
        span.set_attribute("rpc.system", "aws-api");
        span.set_attribute("rpc.service", "DynamoDB");
        span.set_attribute("rpc.method", operation);
        span.set_attribute(
            "aws.dynamodb.table_names",
            opentelemetry::Value::Array(
                vec![opentelemetry::StringValue::from(table.to_owned())].into(),
            ),
        );
    }
    span
}

/// Records what a store request consumed and how it ended on its span.
pub(crate) fn finish_store_span(span: &tracing::Span, call: &StoreCall) {
    if call.system == StoreSystem::DynamoDb {
        // DynamoDB's ConsumedCapacity, as the conventions carry it: JSON, one per table.
        let consumed = serde_json::json!({
            "TableName": call.table.as_ref(),
            "CapacityUnits": call.read + call.write,
            "ReadCapacityUnits": call.read,
            "WriteCapacityUnits": call.write,
        });
        span.set_attribute(
            "aws.dynamodb.consumed_capacity",
            opentelemetry::Value::Array(
                vec![opentelemetry::StringValue::from(consumed.to_string())].into(),
            ),
        );
    }
    if let Some(error) = call.error_type() {
        span.set_attribute("error.type", error);
        span.set_status(Status::error(error));
    }
}

impl StoreSystem {
    /// `db.system.name`.
    fn name(self) -> &'static str {
        match self {
            Self::DynamoDb => "aws.dynamodb",
            Self::Local => "svcgen.local",
        }
    }

    /// What a request's span name starts with: `DynamoDB.GetItem`.
    fn span_prefix(self) -> &'static str {
        match self {
            Self::DynamoDb => "DynamoDB",
            Self::Local => "LocalStore",
        }
    }
}

/// The service's metrics as OpenTelemetry instruments.
#[derive(Debug)]
pub(crate) struct Instruments {
    calls: Histogram<f64>,
    store_requests: Histogram<f64>,
    capacity: Counter<f64>,
    throttles: Counter<u64>,
    retries: Counter<u64>,
    pub(crate) in_flight: UpDownCounter<i64>,
    pub(crate) connections: UpDownCounter<i64>,
}

/// Seconds: the conventions' buckets, with sub-millisecond ones for an embedded store's calls.
const DURATION_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0,
];

impl Instruments {
    fn new(meter: &Meter) -> Self {
        Self {
            calls: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("Duration of calls, request headers to the end of the response")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            store_requests: meter
                .f64_histogram("db.client.operation.duration")
                .with_unit("s")
                .with_description("Duration of store requests, retries included")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            capacity: meter
                .f64_counter("svcgen.store.consumed_capacity")
                .with_unit("{capacity_unit}")
                .with_description(
                    "Capacity units the store reports consumed (estimated on the embedded store)",
                )
                .build(),
            throttles: meter
                .u64_counter("svcgen.store.throttles")
                .with_unit("{request}")
                .with_description("Store requests refused for throughput")
                .build(),
            retries: meter
                .u64_counter("svcgen.store.retries")
                .with_unit("{attempt}")
                .with_description("Attempts beyond the first of store requests")
                .build(),
            in_flight: meter
                .i64_up_down_counter("svcgen.server.calls_in_flight")
                .with_unit("{call}")
                .with_description("Calls in progress")
                .build(),
            connections: meter
                .i64_up_down_counter("svcgen.server.connections")
                .with_unit("{connection}")
                .with_description("Client connections open")
                .build(),
        }
    }

    /// A call of `rpc` (`package.Service/Method`, or `other`) answered `code`.
    pub(crate) fn call(&self, rpc: &str, code: tonic::Code, duration: Duration) {
        let (service, method) = rpc.split_once('/').unwrap_or((rpc, ""));
        self.calls.record(
            duration.as_secs_f64(),
            &[
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service.to_owned()),
                KeyValue::new("rpc.method", method.to_owned()),
                KeyValue::new("rpc.grpc.status_code", i64::from(code as i32)),
            ],
        );
    }

    /// One store request, as measured.
    pub(crate) fn store_call(&self, call: &StoreCall) {
        let mut attributes = vec![
            KeyValue::new("db.system.name", call.system.name()),
            KeyValue::new("db.operation.name", call.operation),
            KeyValue::new("db.collection.name", call.table.to_string()),
        ];
        self.retries.add(u64::from(call.retries), &attributes);
        self.throttles.add(u64::from(call.throttled()), &attributes);
        for (kind, units) in [("read", call.read), ("write", call.write)] {
            if units > 0.0 {
                let mut attributes = attributes.clone();
                attributes.push(KeyValue::new("svcgen.capacity", kind));
                self.capacity.add(units, &attributes);
            }
        }
        if let Some(error) = call.error_type() {
            attributes.push(KeyValue::new("error.type", error));
        }
        self.store_requests
            .record(call.duration.as_secs_f64(), &attributes);
    }
}
