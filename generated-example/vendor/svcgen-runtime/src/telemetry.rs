//! Metrics of every call and store request, aggregated per interval and written to stdout as
//! CloudWatch Embedded Metric Format (EMF): on ECS the awslogs driver carries the lines to
//! CloudWatch Logs, which turns them into metrics with no collector. One document per RPC, per
//! RPC and code, per table and operation, and one for the server, each interval (not one per
//! call), and a last one when the server stops, so a stopping task's final interval is kept.
//! The names, units and dimensions are [`svcgen_contract::metrics`], which the generated
//! dashboard and alarms read too.
//!
//! Store requests are measured by [`Measured`], a [`Store`] around each table's store: duration,
//! outcome, the SDK's retries and the capacity DynamoDB reports consumed (`ReturnConsumedCapacity`;
//! the embedded store estimates it by DynamoDB's rounding rules from item sizes). Each request is
//! also added to the call it was made for, which the access log line lists.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use svcgen_contract::metrics::{self as names, Metric};

use crate::entity::ItemKey;
use crate::item::Item;
use crate::store::{
    Expected, ItemUpdate, Query, QueryPage, ReadItem, Store, StoreError, TransactWrite,
};

/// Where metrics go (`METRICS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsOutput {
    /// Embedded Metric Format lines on stdout.
    Emf,
    /// OpenTelemetry metrics over OTLP/gRPC (needs the `otlp` feature and an endpoint).
    Otlp,
    /// Nowhere.
    Off,
}

impl std::str::FromStr for MetricsOutput {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        match value {
            "emf" => Ok(Self::Emf),
            "otlp" => Ok(Self::Otlp),
            "off" => Ok(Self::Off),
            _ => Err(()),
        }
    }
}

/// The `Rpc` of calls to a method the service does not declare (a client probing random
/// paths), so the metrics' cardinality stays that of the service's methods.
const OTHER_RPC: &str = "other";

/// Where a server's metrics go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// Aggregated here, written as EMF.
    Emf,
    /// Recorded on OpenTelemetry's instruments.
    #[cfg(feature = "otlp")]
    Otlp(crate::otlp::Instruments),
    Off,
}

/// The metrics of one server, shared by the access log layer, the stores and the emitter.
#[derive(Debug)]
pub(crate) struct Metrics {
    service: String,
    /// Whether EMF aggregates are kept (`METRICS=emf`).
    enabled: bool,
    /// The OpenTelemetry instruments everything is recorded on instead (`METRICS=otlp`).
    #[cfg(feature = "otlp")]
    otlp: Option<crate::otlp::Instruments>,
    /// The declared methods, `package.Service/Method`.
    methods: HashSet<String>,
    rpcs: Mutex<HashMap<String, RpcStats>>,
    stores: Mutex<HashMap<(Arc<str>, &'static str), StoreStats>>,
    in_flight: Gauge,
    connections: Gauge,
}

#[derive(Debug, Default)]
struct RpcStats {
    /// Calls per gRPC code (0 to 16).
    codes: [u64; 17],
    latency: Distribution,
}

#[derive(Debug, Default)]
struct StoreStats {
    calls: u64,
    errors: u64,
    throttles: u64,
    retries: u64,
    read: f64,
    write: f64,
    latency: Distribution,
}

/// A count of things open now and the most open at once since the last interval.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicU64,
    peak: AtomicU64,
}

impl Gauge {
    fn up(&self) {
        let now = self.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn down(&self) {
        self.now.fetch_sub(1, Ordering::Relaxed);
    }

    /// The peak since the last call; the next interval's starts at what is open now.
    fn take_peak(&self) -> u64 {
        let peak = self.peak.swap(0, Ordering::Relaxed);
        self.peak
            .fetch_max(self.now.load(Ordering::Relaxed), Ordering::Relaxed);
        peak
    }
}

impl Metrics {
    /// Metrics published with the `Service` dimension `service`, of the methods the encoded
    /// `FileDescriptorSet`s declare, going to `sink`.
    pub(crate) fn new(
        service: impl Into<String>,
        descriptor_sets: &[&[u8]],
        sink: Sink,
    ) -> Arc<Self> {
        let mut methods = HashSet::new();
        for set in descriptor_sets {
            let Ok(set) = <prost_types::FileDescriptorSet as prost::Message>::decode(*set) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let name = match file.package() {
                        "" => service.name().to_owned(),
                        package => format!("{package}.{}", service.name()),
                    };
                    for method in &service.method {
                        methods.insert(format!("{name}/{}", method.name()));
                    }
                }
            }
        }
        #[cfg(feature = "otlp")]
        let (enabled, otlp) = match sink {
            Sink::Emf => (true, None),
            Sink::Otlp(instruments) => (false, Some(instruments)),
            Sink::Off => (false, None),
        };
        #[cfg(not(feature = "otlp"))]
        let enabled = matches!(sink, Sink::Emf);
        Arc::new(Self {
            service: service.into(),
            enabled,
            #[cfg(feature = "otlp")]
            otlp,
            methods,
            rpcs: Mutex::default(),
            stores: Mutex::default(),
            in_flight: Gauge::default(),
            connections: Gauge::default(),
        })
    }

    /// The name of the RPC at `path` (`/package.Service/Method`): `package.Service/Method` when
    /// the service declares it, else `other`.
    pub(crate) fn rpc_name<'a>(&self, path: &'a str) -> &'a str {
        let rpc = path.strip_prefix('/').unwrap_or(path);
        if self.methods.contains(rpc) {
            rpc
        } else {
            OTHER_RPC
        }
    }

    pub(crate) fn call_started(&self) {
        if self.enabled {
            self.in_flight.up();
        }
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp {
            otlp.in_flight.add(1, &[]);
        }
    }

    /// A call to `rpc` (its path, `/package.Service/Method`) answered `code` after `duration`.
    pub(crate) fn call_finished(&self, rpc: &str, code: tonic::Code, duration: Duration) {
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp {
            otlp.in_flight.add(-1, &[]);
            otlp.call(self.rpc_name(rpc), code, duration);
        }
        if !self.enabled {
            return;
        }
        self.in_flight.down();
        let rpc = self.rpc_name(rpc);
        let mut rpcs = self.rpcs.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = match rpcs.get_mut(rpc) {
            Some(stats) => stats,
            None => rpcs.entry(rpc.to_owned()).or_default(),
        };
        let code = usize::try_from(code as i32).unwrap_or(2).min(16);
        stats.codes[code] += 1;
        stats.latency.record(duration);
    }

    fn store_call(&self, call: &StoreCall) {
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp {
            otlp.store_call(call);
        }
        if !self.enabled {
            return;
        }
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = stores
            .entry((call.table.clone(), call.operation))
            .or_default();
        stats.calls += 1;
        stats.errors += u64::from(call.error_type().is_some());
        stats.throttles += u64::from(call.throttled());
        stats.retries += u64::from(call.retries);
        stats.read += call.read;
        stats.write += call.write;
        stats.latency.record(call.duration);
    }

    /// Takes the interval's aggregates as EMF documents (one JSON text each).
    fn take_documents(&self) -> Vec<String> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let rpcs = std::mem::take(&mut *self.rpcs.lock().unwrap_or_else(PoisonError::into_inner));
        let stores =
            std::mem::take(&mut *self.stores.lock().unwrap_or_else(PoisonError::into_inner));
        let document = |metrics: &[Metric], mut values: Map<String, Value>| {
            values.insert(names::SERVICE.to_owned(), self.service.clone().into());
            emf_document(timestamp, metrics, values).to_string()
        };
        let mut documents = Vec::new();
        let mut rpcs: Vec<_> = rpcs.into_iter().collect();
        rpcs.sort_by(|a, b| a.0.cmp(&b.0));
        for (rpc, stats) in rpcs {
            let calls: u64 = stats.codes.iter().sum();
            let (mut server, mut client) = (0, 0);
            for (code, &count) in (0..).zip(&stats.codes) {
                match names::server_error(code) {
                    Some(true) => server += count,
                    Some(false) => client += count,
                    None => {}
                }
                if count > 0 {
                    let values = Map::from_iter([
                        (names::RPC.to_owned(), rpc.clone().into()),
                        (names::CODE.to_owned(), code_name(code).into()),
                        (names::CALLS_BY_CODE.name.to_owned(), count.into()),
                    ]);
                    documents.push(document(&[names::CALLS_BY_CODE], values));
                }
            }
            let values = Map::from_iter([
                (names::RPC.to_owned(), rpc.into()),
                (names::CALLS.name.to_owned(), calls.into()),
                (names::SERVER_ERRORS.name.to_owned(), server.into()),
                (names::CLIENT_ERRORS.name.to_owned(), client.into()),
                (names::LATENCY.name.to_owned(), stats.latency.to_emf()),
            ]);
            let metrics = [
                names::CALLS,
                names::SERVER_ERRORS,
                names::CLIENT_ERRORS,
                names::LATENCY,
            ];
            // Per-code documents first, so a reader sees the RPC's totals last.
            documents.push(document(&metrics, values));
        }
        let mut stores: Vec<_> = stores.into_iter().collect();
        stores.sort_by(|a, b| a.0.cmp(&b.0));
        for ((table, operation), stats) in stores {
            let values = Map::from_iter([
                (names::TABLE.to_owned(), table.as_ref().into()),
                (names::OPERATION.to_owned(), operation.into()),
                (names::STORE_CALLS.name.to_owned(), stats.calls.into()),
                (names::STORE_ERRORS.name.to_owned(), stats.errors.into()),
                (
                    names::STORE_THROTTLES.name.to_owned(),
                    stats.throttles.into(),
                ),
                (names::STORE_RETRIES.name.to_owned(), stats.retries.into()),
                (names::STORE_LATENCY.name.to_owned(), stats.latency.to_emf()),
                (names::READ_CAPACITY.name.to_owned(), stats.read.into()),
                (names::WRITE_CAPACITY.name.to_owned(), stats.write.into()),
            ]);
            let metrics = [
                names::STORE_CALLS,
                names::STORE_ERRORS,
                names::STORE_THROTTLES,
                names::STORE_RETRIES,
                names::STORE_LATENCY,
                names::READ_CAPACITY,
                names::WRITE_CAPACITY,
            ];
            documents.push(document(&metrics, values));
        }
        let values = Map::from_iter([
            (
                names::CALLS_IN_FLIGHT.name.to_owned(),
                self.in_flight.take_peak().into(),
            ),
            (
                names::CONNECTIONS.name.to_owned(),
                self.connections.take_peak().into(),
            ),
        ]);
        documents.push(document(
            &[names::CALLS_IN_FLIGHT, names::CONNECTIONS],
            values,
        ));
        documents
    }

    /// Writes the interval's documents to stdout, a line each.
    pub(crate) fn emit(&self) {
        let documents = self.take_documents();
        let mut out = std::io::stdout().lock();
        for document in documents {
            // stdout closed: nothing to report to.
            let _ = writeln!(out, "{document}");
        }
        let _ = out.flush();
    }

    /// Emits every `interval` for as long as the process runs.
    pub(crate) async fn run(self: Arc<Self>, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.emit();
        }
    }
}

/// One EMF document: the `_aws` metadata with one directive for `metrics` (which share their
/// dimension sets), and `values`, holding every dimension and metric value.
fn emf_document(timestamp: u64, metrics: &[Metric], mut values: Map<String, Value>) -> Value {
    let dimensions = metrics.first().map_or(&[][..], |m| m.dimensions);
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({ "Name": m.name, "Unit": m.unit.as_str() }))
        .collect();
    values.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": names::NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(values)
}

/// tonic's name of gRPC code `code`.
fn code_name(code: i32) -> String {
    format!("{:?}", tonic::Code::from_i32(code))
}

/// Latencies (ms) in 100 buckets growing by 20 % from 0.01 ms, with exact count, sum, minimum
/// and maximum: EMF's histogram form (`Values`, `Counts`; CloudWatch drops a metric with more
/// than 100 values), from which CloudWatch computes percentiles within ±10 %.
#[derive(Debug, Clone)]
struct Distribution {
    buckets: Box<[u64; BUCKETS]>,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

const BUCKETS: usize = 100;
const LOWEST_MS: f64 = 0.01;
const GROWTH: f64 = 1.2;

impl Default for Distribution {
    fn default() -> Self {
        Self {
            buckets: Box::new([0; BUCKETS]),
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: 0.0,
        }
    }
}

impl Distribution {
    fn record(&mut self, duration: Duration) {
        let ms = duration.as_secs_f64() * 1000.0;
        self.buckets[bucket(ms)] += 1;
        self.count += 1;
        self.sum += ms;
        self.min = self.min.min(ms);
        self.max = self.max.max(ms);
    }

    #[allow(clippy::cast_precision_loss)] // bucket indexes are below 100
    fn to_emf(&self) -> Value {
        let (mut values, mut counts) = (Vec::new(), Vec::new());
        for (index, &count) in self.buckets.iter().enumerate() {
            if count > 0 {
                // The bucket's geometric middle, within what was seen.
                let middle = LOWEST_MS * GROWTH.powf(index as f64 + 0.5);
                values.push(middle.clamp(self.min, self.max));
                counts.push(count);
            }
        }
        let min = if self.count == 0 { 0.0 } else { self.min };
        json!({
            "Values": values,
            "Counts": counts,
            "Max": self.max,
            "Min": min,
            "Count": self.count,
            "Sum": self.sum,
        })
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped to 0..BUCKETS
fn bucket(ms: f64) -> usize {
    let index = ((ms / LOWEST_MS).ln() / GROWTH.ln()).floor();
    if index.is_nan() || index < 0.0 {
        0
    } else {
        (index as usize).min(BUCKETS - 1)
    }
}

/// What a backend reports about the store request in progress (see [`consumed`]).
#[derive(Clone, Copy, Debug, Default)]
struct Report {
    read: f64,
    write: f64,
    executions: u32,
    attempts: u32,
    throttled: bool,
}

tokio::task_local! {
    static REQUEST: Cell<Report>;
    static CALL: Arc<CallRecord>;
}

fn report(change: impl FnOnce(&mut Report)) {
    let _ = REQUEST.try_with(|cell| {
        let mut report = cell.get();
        change(&mut report);
        cell.set(report);
    });
}

/// The store request in progress consumed these capacity units.
pub(crate) fn consumed(read: f64, write: f64) {
    report(|r| {
        r.read += read;
        r.write += write;
    });
}

/// The store request in progress was refused for throughput.
#[cfg(feature = "dynamodb")]
pub(crate) fn throttled() {
    report(|r| r.throttled = true);
}

/// DynamoDB's read capacity units for reading `bytes` with a strongly consistent read (half for
/// an eventually consistent one): one per 4 KB started, at least one.
#[allow(clippy::cast_precision_loss)] // item sizes are at most 400 KB
pub(crate) fn read_units(bytes: usize) -> f64 {
    bytes.div_ceil(4096).max(1) as f64
}

/// DynamoDB's write capacity units for writing `bytes`: one per 1 KB started, at least one.
#[allow(clippy::cast_precision_loss)] // item sizes are at most 400 KB
pub(crate) fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Counts the AWS SDK's executions and attempts of the store request in progress: the attempts
/// beyond one per execution are its retries.
#[cfg(feature = "dynamodb")]
#[derive(Debug)]
pub(crate) struct CountAttempts;

#[cfg(feature = "dynamodb")]
impl aws_sdk_dynamodb::config::Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "svcgen::CountAttempts"
    }

    fn read_before_execution(
        &self,
        _: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        report(|r| r.executions += 1);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        report(|r| r.attempts += 1);
        Ok(())
    }
}

/// One store request, as measured.
#[derive(Clone, Debug)]
pub(crate) struct StoreCall {
    /// Read by the OpenTelemetry export.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) system: StoreSystem,
    pub(crate) operation: &'static str,
    pub(crate) table: Arc<str>,
    pub(crate) duration: Duration,
    pub(crate) read: f64,
    pub(crate) write: f64,
    pub(crate) retries: u32,
    outcome: Outcome,
}

impl StoreCall {
    /// A successful request, as tests need one.
    #[cfg(test)]
    pub(crate) fn test(operation: &'static str, table: &str, read: f64, write: f64) -> Self {
        Self {
            system: StoreSystem::Local,
            operation,
            table: table.into(),
            duration: Duration::from_micros(300),
            read,
            write,
            retries: 0,
            outcome: Outcome::Ok,
        }
    }

    pub(crate) fn throttled(&self) -> bool {
        self.outcome == Outcome::Throttled
    }

    /// How the request failed (`error.type`), unless it succeeded or a condition refused it.
    pub(crate) fn error_type(&self) -> Option<&'static str> {
        match self.outcome {
            Outcome::Ok | Outcome::Refused => None,
            Outcome::Throttled => Some("throttled"),
            Outcome::Failed => Some("failed"),
        }
    }
}

/// The backend of a store, as the database conventions name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreSystem {
    DynamoDb,
    Local,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// A condition or limit refused it (an existing item, a stale version, a bad key).
    Refused,
    Throttled,
    Failed,
}

/// The store requests made for one call.
#[derive(Debug, Default)]
pub(crate) struct CallRecord {
    calls: Mutex<Vec<StoreCall>>,
    /// Whether the call's spans are exported (its trace sampled): its store requests get spans.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    traced: bool,
}

impl CallRecord {
    pub(crate) fn new(traced: bool) -> Self {
        Self {
            calls: Mutex::default(),
            traced,
        }
    }

    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn traced(&self) -> bool {
        self.traced
    }

    pub(crate) fn take(&self) -> Vec<StoreCall> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Runs `call` with `record` collecting the store requests it makes.
pub(crate) fn recording<F: Future>(
    record: Arc<CallRecord>,
    call: F,
) -> impl Future<Output = F::Output> {
    CALL.scope(record, call)
}

/// Spawns `task` as part of the call being handled: its store requests count in the call's
/// log line (and, exported, are children of the call's span), as do the spans it opens. A
/// streaming RPC's task that feeds [`crate::response_channel`] is spawned with it; outside a
/// call it is `tokio::spawn`.
pub fn spawn_in_call<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = tracing::Instrument::instrument(task, tracing::Span::current());
    match CALL.try_with(Arc::clone) {
        Ok(record) => tokio::spawn(CALL.scope(record, task)),
        Err(_) => tokio::spawn(task),
    }
}

/// Runs `poll` with `record` collecting the store requests it makes.
pub(crate) fn recording_sync<R>(record: Arc<CallRecord>, poll: impl FnOnce() -> R) -> R {
    CALL.sync_scope(record, poll)
}

/// A table's store, measured.
pub(crate) struct Measured {
    inner: Arc<dyn Store>,
    system: StoreSystem,
    table: Arc<str>,
    metrics: Arc<Metrics>,
}

impl Measured {
    /// `inner`, a `system` store of DynamoDB table `table` (the name the metrics give).
    pub(crate) fn new(
        inner: Arc<dyn Store>,
        system: StoreSystem,
        table: &str,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner,
            system,
            table: table.into(),
            metrics,
        }
    }

    async fn measure<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        #[cfg(feature = "otlp")]
        let span = CALL
            .try_with(|record| record.traced)
            .unwrap_or(false)
            .then(|| crate::otlp::store_span(self.system, operation, &self.table));
        #[cfg(feature = "otlp")]
        let request = tracing::Instrument::instrument(
            request,
            span.clone().unwrap_or_else(tracing::Span::none),
        );
        let started = Instant::now();
        let (result, report) = REQUEST
            .scope(Cell::new(Report::default()), async {
                let result = request.await;
                (result, REQUEST.try_with(Cell::get).unwrap_or_default())
            })
            .await;
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(StoreError::Unavailable(_)) if report.throttled => Outcome::Throttled,
            Err(StoreError::Unavailable(_) | StoreError::Internal(_)) => Outcome::Failed,
            Err(_) => Outcome::Refused,
        };
        let call = StoreCall {
            system: self.system,
            operation,
            table: self.table.clone(),
            duration: started.elapsed(),
            read: report.read,
            write: report.write,
            retries: report.attempts.saturating_sub(report.executions),
            outcome,
        };
        #[cfg(feature = "otlp")]
        if let Some(span) = &span {
            crate::otlp::finish_store_span(span, &call);
        }
        self.metrics.store_call(&call);
        let _ = CALL.try_with(|record| {
            record
                .calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(call);
        });
        result
    }
}

#[async_trait]
impl Store for Measured {
    async fn create(&self, item: Item) -> Result<(), StoreError> {
        self.measure("PutItem", self.inner.create(item)).await
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.measure("GetItem", self.inner.get(key)).await
    }

    async fn update(&self, key: &ItemKey, update: ItemUpdate) -> Result<Item, StoreError> {
        self.measure("UpdateItem", self.inner.update(key, update))
            .await
    }

    async fn delete(&self, key: &ItemKey, expected: Expected) -> Result<Item, StoreError> {
        self.measure("DeleteItem", self.inner.delete(key, expected))
            .await
    }

    async fn query(&self, query: Query) -> Result<QueryPage, StoreError> {
        self.measure("Query", self.inner.query(query)).await
    }

    async fn transact(&self, writes: Vec<TransactWrite>) -> Result<(), StoreError> {
        self.measure("TransactWriteItems", self.inner.transact(writes))
            .await
    }

    async fn batch_get(&self, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError> {
        self.measure("BatchGetItem", self.inner.batch_get(keys))
            .await
    }

    async fn get_with(&self, key: &ItemKey, read: &mut ReadItem<'_>) -> Result<bool, StoreError> {
        self.measure("GetItem", self.inner.get_with(key, read))
            .await
    }

    async fn query_with(
        &self,
        query: Query,
        read: &mut ReadItem<'_>,
    ) -> Result<Option<Item>, StoreError> {
        self.measure("Query", self.inner.query_with(query, read))
            .await
    }
}

/// A client connection, counted in [`names::CONNECTIONS`] while it is open.
pub(crate) struct Counted<IO> {
    inner: IO,
    metrics: Arc<Metrics>,
}

impl<IO> Counted<IO> {
    pub(crate) fn new(inner: IO, metrics: Arc<Metrics>) -> Self {
        metrics.connections.up();
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &metrics.otlp {
            otlp.connections.add(1, &[]);
        }
        Self { inner, metrics }
    }
}

impl<IO> Drop for Counted<IO> {
    fn drop(&mut self) {
        self.metrics.connections.down();
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.metrics.otlp {
            otlp.connections.add(-1, &[]);
        }
    }
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Counted<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The encoded descriptor set of `package.service` with one method.
    fn descriptor(package: &str, service: &str, method: &str) -> Vec<u8> {
        let set = prost_types::FileDescriptorSet {
            file: vec![prost_types::FileDescriptorProto {
                package: Some(package.into()),
                service: vec![prost_types::ServiceDescriptorProto {
                    name: Some(service.into()),
                    method: vec![prost_types::MethodDescriptorProto {
                        name: Some(method.into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        prost::Message::encode_to_vec(&set)
    }

    #[test]
    fn a_distribution_keeps_exact_totals_and_at_most_100_values() {
        let mut latency = Distribution::default();
        for micros in [5, 900, 1000, 1100, 250_000_000] {
            latency.record(Duration::from_micros(micros));
        }
        let emf = latency.to_emf();
        assert_eq!(emf["Count"], 5);
        let near =
            |v: &Value, expected: f64| v.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9);
        assert!(near(&emf["Min"], 0.005));
        assert!(near(&emf["Max"], 250_000.0));
        let values = emf["Values"].as_array().map(Vec::len);
        assert_eq!(values, emf["Counts"].as_array().map(Vec::len));
        // 0.9, 1.0 and 1.1 ms share no more than two buckets; the extremes clamp to the ends.
        assert!(values.is_some_and(|n| (3..=4).contains(&n)));
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(f64::NAN), 0);
        assert_eq!(bucket(1e12), BUCKETS - 1);
        let empty = Distribution::default().to_emf();
        assert_eq!(empty["Count"], 0);
        assert_eq!(empty["Min"], 0.0);
    }

    #[test]
    fn documents_follow_the_contracts_names() {
        let metrics = Metrics::new(
            "task-svc",
            &[&descriptor("tasks", "TaskService", "GetTask")],
            Sink::Emf,
        );
        metrics.call_started();
        metrics.call_finished(
            "/tasks.TaskService/GetTask",
            tonic::Code::NotFound,
            Duration::from_millis(2),
        );
        let documents: Vec<Value> = metrics
            .take_documents()
            .iter()
            .map(|d| serde_json::from_str(d).unwrap_or_default())
            .collect();
        // NotFound, the RPC, the server.
        assert_eq!(documents.len(), 3);
        assert_eq!(documents[0]["Code"], "NotFound");
        assert_eq!(documents[1]["Rpc"], "tasks.TaskService/GetTask");
        assert_eq!(documents[1]["ClientErrors"], 1);
        assert_eq!(documents[1]["ServerErrors"], 0);
        let directive = &documents[1]["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], names::NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([["Service", "Rpc"], ["Service"]])
        );
        assert_eq!(documents[2]["CallsInFlight"], 1);
        // The next interval starts empty but for the server's gauges.
        assert_eq!(metrics.take_documents().len(), 1);
    }

    #[test]
    fn only_declared_methods_are_named_and_nothing_is_kept_when_off() {
        let encoded = descriptor("x", "S", "M");
        let metrics = Metrics::new("s", &[&encoded], Sink::Emf);
        for path in ["/x.S/M", "/x.S/Probe1", "/", "/x.S/Probe2"] {
            metrics.call_started();
            metrics.call_finished(path, tonic::Code::Unimplemented, Duration::ZERO);
        }
        let rpcs =
            std::mem::take(&mut *metrics.rpcs.lock().unwrap_or_else(PoisonError::into_inner));
        assert_eq!(rpcs.len(), 2);
        assert_eq!(rpcs[OTHER_RPC].codes[12], 3);
        assert_eq!(metrics.in_flight.now.load(Ordering::Relaxed), 0);
        let off = Metrics::new("s", &[&encoded], Sink::Off);
        off.call_started();
        off.call_finished("/x.S/M", tonic::Code::Ok, Duration::ZERO);
        let kept = off
            .rpcs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        assert_eq!(kept, 0);
    }

    #[test]
    fn capacity_units_round_as_dynamodb_does() {
        assert_eq!(read_units(0), 1.0);
        assert_eq!(read_units(4096), 1.0);
        assert_eq!(read_units(4097), 2.0);
        assert_eq!(write_units(1025), 2.0);
    }
}
