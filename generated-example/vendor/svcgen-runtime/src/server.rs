//! Server bootstrap shared by every generated service: configuration from the environment,
//! logging, the store, grpc.health.v1, server reflection (v1 and v1alpha) and a graceful drain
//! on SIGTERM/SIGINT.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_check_response::ServingStatus;
use tracing_subscriber::filter::Targets;

use crate::policy::Policy;
use crate::store::{LocalDatabase, Store, StoreError, TableSchema};
use svcgen_contract::tables::SHARED_TABLE_VARIABLE;

/// What the generated code tells the bootstrap about the service.
#[derive(Debug)]
pub struct ServiceDefinition {
    /// The binary's name, e.g. `task-svc`.
    pub name: &'static str,
    /// Full names of the gRPC services, e.g. `tasks.TaskService`.
    pub services: &'static [&'static str],
    /// Encoded `FileDescriptorSet` of the service's protos, for reflection.
    pub file_descriptor_set: &'static [u8],
    /// Tables the service's entities live in.
    pub tables: &'static [TableSchema],
}

/// Settings read from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `LISTEN_ADDR`, default `0.0.0.0:50051`.
    pub listen_addr: SocketAddr,
    /// `DATA_DIR`, default `./data`: where the embedded store keeps its file.
    pub data_dir: PathBuf,
    /// `SHUTDOWN_TIMEOUT_SECS`, default 25: how long in-flight calls may take to finish after
    /// SIGTERM (below ECS's default 30 s stop timeout).
    pub shutdown_timeout: Duration,
    /// `SHUTDOWN_DELAY_SECS`, default 0: how long the service keeps answering, NOT_SERVING,
    /// after SIGTERM before it stops accepting calls (for clients that watch health; ECS already
    /// deregisters the task from its target group and Cloud Map before stopping it).
    pub shutdown_delay: Duration,
    /// `TABLE_NAME` (one logical table) or `TABLE_NAME_<LOGICAL>` (per table): when set, the
    /// service stores its data in DynamoDB instead of the embedded store.
    pub dynamodb_tables: Vec<(String, String)>,
    /// `MAX_CONCURRENT_CALLS_PER_CONNECTION`, default unlimited (0): calls one connection may
    /// have in progress; further calls wait.
    pub max_concurrent_calls_per_connection: Option<usize>,
    /// `MAX_CONCURRENT_STREAMS`, default unlimited (0): the HTTP/2 streams a client may open on
    /// one connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: Option<u32>,
    /// `ACCESS_LOG`: which calls get a log line (`all`, `errors`, `off`, or a sample rate such
    /// as `0.1`; see [`crate::access_log`]).
    pub access_log: crate::access_log::AccessLog,
    /// `METRICS`: `emf` (CloudWatch Embedded Metric Format on stdout; the default unless stdout
    /// is a terminal or an OTLP endpoint is set), `otlp` (the default with an endpoint) or `off`.
    pub metrics: crate::MetricsOutput,
    /// `METRICS_INTERVAL_SECS`, default 60: how long metrics are aggregated before they are
    /// written (and once more when the server stops).
    pub metrics_interval: Duration,
    /// `OTEL_SERVICE_NAME`, default the binary's name: the metrics' `Service` dimension (the
    /// task definition sets the deployed service's name).
    pub service_name: Option<String>,
    /// `SVCGEN_TASK_POLICY`, unset by default: a task role policy document the service enforces
    /// on its own store calls (see [`crate::policy`]).
    pub task_policy: Option<Arc<Policy>>,
}

/// Why the environment does not configure the service (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable holds a value that does not parse.
    #[error("{variable}={value:?} is not valid")]
    Invalid {
        /// The variable, e.g. `LISTEN_ADDR`.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// Some tables have a DynamoDB table name and others do not.
    #[error("DynamoDB table names are missing: set {}", .missing.join(", "))]
    MissingTables {
        /// The variables to set.
        missing: Vec<&'static str>,
    },
    /// `TABLE_NAME` is set, but the service has several tables.
    #[error(
        "TABLE_NAME is ambiguous with {} tables: set {}",
        .variables.len(),
        .variables.join(", ")
    )]
    AmbiguousTable {
        /// The per-table variables to set instead.
        variables: Vec<&'static str>,
    },
    /// `SVCGEN_TASK_POLICY` names a policy document that cannot be read.
    #[error("SVCGEN_TASK_POLICY: {0}")]
    Policy(String),
    /// A health check added in `main.rs` has no name (the server's own status) or no interval.
    #[error("health check {0:?}: give it a name and an interval above zero")]
    HealthCheck(String),
    /// Two services or health checks added in `main.rs` share a name.
    #[error(
        "`{0}` is served or checked twice: give each added service and health check its own name"
    )]
    DuplicateName(String),
    /// OpenTelemetry export is asked for but cannot start.
    #[error("OpenTelemetry export: {0}")]
    Otlp(String),
    /// DynamoDB tables are configured, but the runtime was built without DynamoDB.
    #[error("TABLE_NAME is set, but svcgen-runtime was built without its `dynamodb` feature")]
    NoDynamoDb,
}

impl Config {
    /// Reads the configuration; the error names the variable and the value it could not use.
    pub fn from_env() -> Result<Self, ConfigError> {
        fn var<T: std::str::FromStr>(
            variable: &'static str,
            default: &str,
        ) -> Result<T, ConfigError> {
            let value = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
            value
                .parse()
                .map_err(|_| ConfigError::Invalid { variable, value })
        }
        Ok(Self {
            listen_addr: var("LISTEN_ADDR", "0.0.0.0:50051")?,
            data_dir: var("DATA_DIR", "./data")?,
            shutdown_timeout: Duration::from_secs(var("SHUTDOWN_TIMEOUT_SECS", "25")?),
            shutdown_delay: Duration::from_secs(var("SHUTDOWN_DELAY_SECS", "0")?),
            dynamodb_tables: Vec::new(),
            max_concurrent_calls_per_connection: Some(var(
                "MAX_CONCURRENT_CALLS_PER_CONNECTION",
                "0",
            )?)
            .filter(|n| *n > 0),
            max_concurrent_streams: Some(var("MAX_CONCURRENT_STREAMS", "0")?).filter(|n| *n > 0),
            access_log: var("ACCESS_LOG", "all")?,
            metrics: var(
                "METRICS",
                if otlp_metrics_configured() {
                    "otlp"
                } else if std::io::stdout().is_terminal() {
                    "off"
                } else {
                    "emf"
                },
            )?,
            metrics_interval: match var("METRICS_INTERVAL_SECS", "60")? {
                secs @ 1..=86_400 => Duration::from_secs(secs),
                secs => {
                    return Err(ConfigError::Invalid {
                        variable: "METRICS_INTERVAL_SECS",
                        value: secs.to_string(),
                    });
                }
            },
            service_name: std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|name| !name.is_empty()),
            task_policy: match std::env::var_os("SVCGEN_TASK_POLICY").filter(|p| !p.is_empty()) {
                Some(path) => Some(Arc::new(
                    Policy::load(std::path::Path::new(&path)).map_err(ConfigError::Policy)?,
                )),
                None => None,
            },
        })
    }

    /// Reads the DynamoDB table names of `tables` from the environment: all or none.
    pub fn with_dynamodb_tables(mut self, tables: &[TableSchema]) -> Result<Self, ConfigError> {
        let shared = std::env::var(SHARED_TABLE_VARIABLE)
            .ok()
            .filter(|v| !v.is_empty());
        let mut names = Vec::new();
        for table in tables {
            let variable = table.variable;
            match (
                std::env::var(variable).ok().filter(|v| !v.is_empty()),
                &shared,
            ) {
                (Some(name), _) => names.push((table.name.to_owned(), name)),
                (None, Some(name)) if tables.len() == 1 => {
                    names.push((table.name.to_owned(), name.clone()))
                }
                (None, _) => {}
            }
        }
        if !names.is_empty() && names.len() != tables.len() {
            let missing = tables
                .iter()
                .filter(|t| !names.iter().any(|(n, _)| n == t.name))
                .map(|t| t.variable)
                .collect();
            return Err(ConfigError::MissingTables { missing });
        }
        if names.is_empty() && shared.is_some() && tables.len() > 1 {
            return Err(ConfigError::AmbiguousTable {
                variables: tables.iter().map(|t| t.variable).collect(),
            });
        }
        self.dynamodb_tables = names;
        Ok(self)
    }
}

/// The stores of a service's tables, handed to the generated code that builds its routes.
pub struct Stores {
    tables: Vec<(String, Arc<dyn Store>)>,
}

impl Stores {
    /// Embedded stores for `tables`, in one database file under `data_dir`.
    pub fn local(
        data_dir: &std::path::Path,
        name: &str,
        tables: &[TableSchema],
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Internal(format!("creating {}: {e}", data_dir.display())))?;
        let db = LocalDatabase::open(&data_dir.join(format!("{name}.redb")))?;
        let tables = tables
            .iter()
            .map(|schema| {
                Ok((
                    schema.name.to_owned(),
                    Arc::new(db.table(schema)?) as Arc<dyn Store>,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self { tables })
    }

    /// DynamoDB tables `(logical, physical)` laid out as `schemas` say, through the standard
    /// AWS configuration chain (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for local servers).
    #[cfg(feature = "dynamodb")]
    pub async fn dynamodb(tables: &[(String, String)], schemas: &[TableSchema]) -> Self {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(crate::store::http_client())
            .load()
            .await;
        // Counting each request's attempts: the retries in the metrics.
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .interceptor(crate::telemetry::CountAttempts)
                .build(),
        );
        let tables = tables
            .iter()
            .map(|(logical, physical)| {
                let indexes = schemas
                    .iter()
                    .find(|s| s.name == logical)
                    .map_or(&[][..], |s| s.indexes);
                let store =
                    crate::store::DynamoStore::new(client.clone(), physical).with_indexes(indexes);
                (logical.clone(), Arc::new(store) as Arc<dyn Store>)
            })
            .collect();
        Self { tables }
    }

    /// Every store replaced by what `wrap` makes of it and its logical table's name.
    fn wrap(self, wrap: impl Fn(&str, Arc<dyn Store>) -> Arc<dyn Store>) -> Self {
        let tables = self
            .tables
            .into_iter()
            .map(|(logical, store)| {
                let store = wrap(&logical, store);
                (logical, store)
            })
            .collect();
        Self { tables }
    }

    /// The store of the table named `name`.
    pub fn table(&self, name: &str) -> Arc<dyn Store> {
        self.tables
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, store)| store.clone())
            .unwrap_or_else(|| Arc::new(MissingTable(name.to_owned())))
    }
}

/// A table the service was not configured with: every call fails with an internal error.
struct MissingTable(String);

#[async_trait::async_trait]
impl Store for MissingTable {
    async fn create(&self, _: crate::Item) -> Result<(), StoreError> {
        Err(self.error())
    }
    async fn get(&self, _: &crate::ItemKey) -> Result<Option<crate::Item>, StoreError> {
        Err(self.error())
    }
    async fn update(
        &self,
        _: &crate::ItemKey,
        _: crate::store::ItemUpdate,
    ) -> Result<crate::Item, StoreError> {
        Err(self.error())
    }
    async fn delete(
        &self,
        _: &crate::ItemKey,
        _: crate::store::Expected,
    ) -> Result<crate::Item, StoreError> {
        Err(self.error())
    }
    async fn query(&self, _: crate::store::Query) -> Result<crate::store::QueryPage, StoreError> {
        Err(self.error())
    }
    async fn transact(&self, _: Vec<crate::store::TransactWrite>) -> Result<(), StoreError> {
        Err(self.error())
    }
    async fn batch_get(
        &self,
        _: &[crate::ItemKey],
    ) -> Result<Vec<Option<crate::Item>>, StoreError> {
        Err(self.error())
    }
}

impl MissingTable {
    fn error(&self) -> StoreError {
        StoreError::Internal(format!("no store for table `{}`", self.0))
    }
}

/// Whether the environment asks for OTLP metrics (an endpoint and nothing turning them off);
/// never without the `otlp` feature.
fn otlp_metrics_configured() -> bool {
    #[cfg(feature = "otlp")]
    return crate::otlp::configured(crate::otlp::Signal::Metrics);
    #[cfg(not(feature = "otlp"))]
    return false;
}

/// Logs as JSON unless stderr is a terminal. `RUST_LOG` filters by target and level
/// (`warn`, `info,aws_smithy_runtime=debug`; default `info`); a value that is not such a list is
/// reported, and `info` used.
pub fn init_tracing() {
    install_tracing(None);
}

/// [`init_tracing`], with spans exported by `otlp` when it exports traces (`RUST_LOG` filters
/// the log lines only then: a call's span is exported whatever the log level). When another
/// subscriber is already installed, it stays, and nothing is exported or written around it.
fn install_tracing(#[allow(unused_variables)] otlp: Option<&OtlpExport>) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (filter, unreadable) = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let json_access_lines = !std::io::stderr().is_terminal()
        && filter.would_enable(crate::access_log::TARGET, &tracing::Level::INFO);
    #[cfg(feature = "otlp")]
    let exported = otlp.and_then(crate::otlp::Otlp::layer);
    #[cfg(not(feature = "otlp"))]
    let exported: Option<tracing_subscriber::layer::Identity> = None;
    let exporting = exported.is_some();
    let installed = match exported {
        Some(exported) => tracing_subscriber::registry()
            .with(log_lines().with_filter(filter))
            .with(exported)
            .try_init(),
        None => tracing_subscriber::registry()
            .with(filter)
            .with(log_lines())
            .try_init(),
    };
    if installed.is_ok() {
        crate::access_log::write_json_lines(json_access_lines);
        #[cfg(feature = "otlp")]
        if exporting {
            crate::otlp::set_tracing();
        }
    }
    #[cfg(not(feature = "otlp"))]
    let _ = exporting;
    if let Some(error) = unreadable {
        tracing::warn!(%error, "RUST_LOG is not a list of `target=level` directives; logging at info");
    }
}

/// The log lines on stderr: JSON, or a compact human line on a terminal.
fn log_lines<S>() -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer as _;
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        layer.boxed()
    } else {
        layer.json().flatten_event(true).boxed()
    }
}

#[cfg(feature = "otlp")]
type OtlpExport = crate::otlp::Otlp;
/// Nothing is exported without the `otlp` feature.
#[cfg(not(feature = "otlp"))]
type OtlpExport = std::convert::Infallible;

/// The filter `RUST_LOG` asks for (unset or blank: `info`), and why it could not be read.
/// Directives are comma-separated; blanks around them and empty ones are ignored.
fn log_filter(value: Option<&str>) -> (Targets, Option<String>) {
    let default = || Targets::new().with_default(tracing::Level::INFO);
    let directives: Vec<&str> = value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return (default(), None);
    }
    if let Some(spaced) = directives.iter().find(|d| d.contains(char::is_whitespace)) {
        return (default(), Some(format!("`{spaced}` contains a blank")));
    }
    match directives.join(",").parse() {
        Ok(filter) => (filter, None),
        Err(error) => (default(), Some(error.to_string())),
    }
}

/// A service's server as `main.rs` composes it before it runs: the generated routes plus tower
/// layers and interceptors (auth, rate limits), more tonic services (an admin API, a streaming
/// service) and health checks of its own. Health (`grpc.health.v1`) and reflection are added
/// outside the layers, so load balancer health checks and tools need no credentials.
pub struct Server {
    definition: &'static ServiceDefinition,
    routes: Box<dyn FnOnce(&Stores) -> Routes + Send>,
    /// Services added by hand: their names and how each is added to the routes.
    services: Vec<(&'static str, AddService)>,
    /// Layers, outermost first.
    layers: Vec<Box<dyn FnOnce(axum::Router) -> axum::Router + Send>>,
    descriptor_sets: Vec<&'static [u8]>,
    health_checks: Vec<HealthCheck>,
}

type AddService = Box<dyn FnOnce(Routes) -> Routes + Send>;
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

struct HealthCheck {
    name: String,
    interval: Duration,
    check: Box<dyn Fn() -> BoxFuture<Result<(), String>> + Send + Sync>,
}

impl Server {
    /// The server of `definition`, whose routes the generated code builds over the stores.
    pub fn new(
        definition: &'static ServiceDefinition,
        routes: impl FnOnce(&Stores) -> Routes + Send + 'static,
    ) -> Self {
        Self {
            definition,
            routes: Box::new(routes),
            services: Vec::new(),
            layers: Vec::new(),
            descriptor_sets: Vec::new(),
            health_checks: Vec::new(),
        }
    }

    /// Wraps every RPC of the service and of the services added with
    /// [`add_service`](Self::add_service) in a tower layer (e.g. authentication, rate
    /// limiting); the first layer added sees a call first. Health and reflection stay outside.
    pub fn layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response:
            axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.layers
            .push(Box::new(move |router| router.layer(layer)));
        self
    }

    /// Runs `interceptor` (tonic's: it sees the metadata and extensions, may add extensions
    /// or refuse the call with a status) before every call a [`layer`](Self::layer) would see.
    pub fn interceptor<F>(self, interceptor: F) -> Self
    where
        F: tonic::service::Interceptor + Clone + Send + Sync + 'static,
    {
        self.layer(tonic::service::InterceptorLayer::new(interceptor))
    }

    /// Serves another tonic service beside the generated one (unary or streaming), inside the
    /// layers, with the same health status and drain. For reflection to list it, add its
    /// descriptor set with [`file_descriptor_set`](Self::file_descriptor_set).
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.services
            .push((S::NAME, Box::new(move |routes| routes.add_service(service))));
        self
    }

    /// Adds an encoded `FileDescriptorSet` to what server reflection describes.
    pub fn file_descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded);
        self
    }

    /// Reports `check`'s outcome as the health of `name` (`grpc.health.v1.Health/Check` with
    /// that service name), run every `interval` and given as long to answer; an error's text
    /// is logged when the status changes. The load balancer checks the server as a whole, so
    /// a failing dependency does not take every task out of rotation; clients and operators
    /// ask for `name`. Every status turns NOT_SERVING when the server drains.
    pub fn health_check<F, Fut>(
        mut self,
        name: impl Into<String>,
        interval: Duration,
        check: F,
    ) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.health_checks.push(HealthCheck {
            name: name.into(),
            interval,
            check: Box::new(move || Box::pin(check())),
        });
        self
    }

    /// Runs the service until SIGTERM or SIGINT, then drains: health turns NOT_SERVING, no new
    /// connections are accepted, in-flight calls finish (bounded by the shutdown timeout;
    /// streams still running shortly before it ends are ended with UNAVAILABLE). Exit code 0
    /// after a clean drain, 1 when the service failed, 2 for bad configuration.
    ///
    /// With the first argument `health-probe`, probes a running service instead (see
    /// [`crate::probe`]), so the binary is its own container health check.
    pub async fn serve(self) -> ExitCode {
        let mut args = std::env::args().skip(1);
        if args.next().as_deref() == Some(crate::probe::SUBCOMMAND) {
            return crate::probe::run(args).await;
        }
        let config = Config::from_env()
            .and_then(|c| c.with_dynamodb_tables(self.definition.tables))
            .and_then(|c| self.check_names().map(|()| c));
        // Exporters start before logging, whose spans they may export.
        let otlp = config
            .as_ref()
            .ok()
            .map(|config| start_otlp(self.definition.name, config))
            .transpose()
            .map(Option::flatten);
        install_tracing(otlp.as_ref().ok().and_then(Option::as_ref));
        let (config, otlp) = match (config, otlp) {
            (Ok(config), Ok(otlp)) => (config, otlp),
            (Err(message), _) | (_, Err(message)) => {
                tracing::error!(%message, "invalid configuration");
                return ExitCode::from(2);
            }
        };
        #[cfg(not(feature = "otlp"))]
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|v| !v.is_empty()) {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but svcgen-runtime was built without its \
                 `otlp` feature: nothing is exported"
            );
        }
        if config.metrics == crate::MetricsOutput::Otlp && std::env::var_os("METRICS").is_none() {
            tracing::info!(
                "metrics go over OTLP (the default with an OTLP endpoint); the generated \
                 CloudWatch dashboard and alarms read EMF metrics: set METRICS=emf to keep them"
            );
        }
        let emf = config.metrics == crate::MetricsOutput::Emf;
        let sink = match (&config.metrics, &otlp) {
            (crate::MetricsOutput::Emf, _) => crate::telemetry::Sink::Emf,
            #[cfg(feature = "otlp")]
            (crate::MetricsOutput::Otlp, Some(otlp)) => otlp
                .instruments()
                .map_or(crate::telemetry::Sink::Off, crate::telemetry::Sink::Otlp),
            _ => crate::telemetry::Sink::Off,
        };
        let mut descriptor_sets = vec![self.definition.file_descriptor_set];
        descriptor_sets.extend(&self.descriptor_sets);
        let metrics = crate::telemetry::Metrics::new(
            config
                .service_name
                .clone()
                .unwrap_or_else(|| self.definition.name.to_owned()),
            &descriptor_sets,
            sink,
        );
        let emitter = emf.then(|| tokio::spawn(metrics.clone().run(config.metrics_interval)));
        let served = serve(self, &config, metrics.clone()).await;
        if let Some(emitter) = emitter {
            // The last interval, however the server stopped, once the emitter has stopped.
            emitter.abort();
            let _ = emitter.await;
            metrics.emit();
        }
        #[cfg(feature = "otlp")]
        if let Some(otlp) = otlp {
            // The last spans and metrics, off the runtime's threads (the export blocks on them).
            let _ = tokio::task::spawn_blocking(move || otlp.shutdown(OTLP_FLUSH_TIMEOUT)).await;
        }
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                tracing::error!(%message, "service failed");
                ExitCode::FAILURE
            }
        }
    }

    /// Every service and health check name appears once (a duplicate route would panic), and
    /// no check takes the server's own status (`""`, what the load balancer reads).
    fn check_names(&self) -> Result<(), ConfigError> {
        if let Some(check) = self
            .health_checks
            .iter()
            .find(|c| c.name.is_empty() || c.interval.is_zero())
        {
            return Err(ConfigError::HealthCheck(check.name.clone()));
        }
        let mut names: Vec<&str> = self.definition.services.to_vec();
        names.extend(self.services.iter().map(|(name, _)| *name));
        names.extend(self.health_checks.iter().map(|c| c.name.as_str()));
        names.sort_unstable();
        match names.windows(2).find(|pair| pair[0] == pair[1]) {
            Some(pair) => Err(ConfigError::DuplicateName(pair[0].to_owned())),
            None => Ok(()),
        }
    }
}

/// How long the last export of spans and metrics (at once) may take when the service stops:
/// within the 5 s the task definition leaves between the drain and SIGKILL.
#[cfg(feature = "otlp")]
const OTLP_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// The OpenTelemetry exporters `config` asks for, if any.
fn start_otlp(service: &str, config: &Config) -> Result<Option<OtlpExport>, ConfigError> {
    let metrics = config.metrics == crate::MetricsOutput::Otlp;
    #[cfg(feature = "otlp")]
    {
        use crate::otlp::{Signal, configured};
        if metrics && !configured(Signal::Metrics) {
            return Err(ConfigError::Otlp(
                "METRICS=otlp needs OTEL_EXPORTER_OTLP_ENDPOINT (or \
                 OTEL_EXPORTER_OTLP_METRICS_ENDPOINT), with OTEL_SDK_DISABLED not `true` and \
                 OTEL_METRICS_EXPORTER unset or `otlp`"
                    .to_owned(),
            ));
        }
        if !metrics && !configured(Signal::Traces) {
            return Ok(None);
        }
        crate::otlp::Otlp::start(service, metrics).map(Some)
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = service;
        if metrics {
            return Err(ConfigError::Otlp(
                "METRICS=otlp, but svcgen-runtime was built without its `otlp` feature".to_owned(),
            ));
        }
        Ok(None)
    }
}

/// Why a service stopped serving (exit code 1).
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reflection: {0}")]
    Reflection(tonic_reflection::server::Error),
    #[error("binding {address}: {error}")]
    Bind {
        address: SocketAddr,
        error: std::io::Error,
    },
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Transport(tonic::transport::Error),
    #[error("in-flight calls did not finish within {0:?}; exiting anyway")]
    Drain(Duration),
}

/// Serves until a signal, then drains. One function from bind to drain: the server future,
/// the health reporter and the stop channels are shared by every phase.
async fn serve(
    server: Server,
    config: &Config,
    metrics: Arc<crate::telemetry::Metrics>,
) -> Result<(), ServeError> {
    let definition = server.definition;
    let stores = if config.dynamodb_tables.is_empty() {
        Stores::local(&config.data_dir, definition.name, definition.tables)?
    } else {
        dynamodb_stores(&config.dynamodb_tables, definition.tables).await?
    };
    // The name of a logical table's DynamoDB table: as configured, else svcgen.toml's. The
    // metrics and the policy's ARNs use it.
    let physical = |logical: &str| {
        let configured = config.dynamodb_tables.iter().find(|(l, _)| l == logical);
        let schema = definition.tables.iter().find(|t| t.name == logical);
        match (configured, schema) {
            (Some((_, physical)), _) => physical.clone(),
            (None, Some(schema)) => schema.physical.to_owned(),
            (None, None) => logical.to_owned(),
        }
    };
    let system = if config.dynamodb_tables.is_empty() {
        crate::telemetry::StoreSystem::Local
    } else {
        crate::telemetry::StoreSystem::DynamoDb
    };
    let mut stores = stores.wrap(|logical, store| {
        Arc::new(crate::telemetry::Measured::new(
            store,
            system,
            &physical(logical),
            metrics.clone(),
        ))
    });
    if let Some(policy) = &config.task_policy {
        tracing::info!("enforcing the task role policy in SVCGEN_TASK_POLICY on every store call");
        stores = stores.wrap(|logical, store| policy.enforce(store, &physical(logical)));
    }
    let mut routes = (server.routes)(&stores);
    let mut names: Vec<&str> = definition.services.to_vec();
    for (name, add) in server.services {
        routes = add(routes);
        names.push(name);
    }
    let mut router = routes.into_axum_router();
    for layer in server.layers.into_iter().rev() {
        router = layer(router);
    }

    let (health, health_service) = crate::health::health();
    let reflection = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(definition.file_descriptor_set)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        server.descriptor_sets.iter().fold(builder, |builder, set| {
            builder.register_encoded_file_descriptor_set(set)
        })
    };
    let reflection_v1 = reflection().build_v1().map_err(ServeError::Reflection)?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(ServeError::Reflection)?;

    // Handlers first: a SIGTERM right after start-up must drain, not kill.
    let shutdown = shutdown_signal();
    let listener = TcpListener::bind(config.listen_addr)
        .await
        .map_err(|error| ServeError::Bind {
            address: config.listen_addr,
            error,
        })?;
    let local_addr = listener.local_addr().map_err(ServeError::Io)?;

    health.set("", ServingStatus::Serving);
    for name in &names {
        health.set(name, ServingStatus::Serving);
    }
    for check in server.health_checks {
        health.set(&check.name, ServingStatus::NotServing);
        tokio::spawn(run_health_check(check, health.clone()));
    }
    tracing::info!(address = %local_addr, service = definition.name, "serving");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (end_streams, drain) = crate::drain::Drain::channel();
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(config.max_concurrent_streams)
        .layer(
            tower::ServiceBuilder::new()
                .layer(crate::access_log::AccessLogLayer::new(
                    config.access_log,
                    metrics.clone(),
                ))
                .map_response(oversized_is_resource_exhausted as fn(_) -> _)
                .map_request(move |mut request: http::Request<tonic::body::Body>| {
                    request.extensions_mut().insert(drain.clone());
                    request
                })
                .layer(crate::deadline::DeadlineLayer),
        );
    if let Some(limit) = config.max_concurrent_calls_per_connection {
        builder = builder.concurrency_limit_per_connection(limit);
    }
    let server = builder
        .add_routes(Routes::from(router))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // tonic sets TCP_NODELAY only on listeners it binds itself; without it, responses
        // larger than one segment wait ~40 ms for delayed ACKs (Nagle).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .map(move |accepted| {
                    accepted.map(|stream| crate::telemetry::Counted::new(stream, metrics.clone()))
                }),
            async {
                let _ = stop_rx.await;
            },
        );
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => return result.map_err(ServeError::Transport),
        signal = shutdown => tracing::info!(signal, "shutting down: draining in-flight calls"),
    }
    health.drain();
    if !config.shutdown_delay.is_zero() {
        tracing::info!(delay = ?config.shutdown_delay, "answering NOT_SERVING before draining");
        tokio::select! {
            result = &mut server => return result.map_err(ServeError::Transport),
            () = tokio::time::sleep(config.shutdown_delay) => {}
        }
    }
    let _ = stop_tx.send(());
    // Streams get the drain timeout less a second to end on their own; then they are ended,
    // and their clients told to retry, so the drain can still finish in time.
    let stream_grace = config
        .shutdown_timeout
        .saturating_sub(Duration::from_secs(1))
        .max(config.shutdown_timeout / 2);
    tokio::spawn(async move {
        tokio::time::sleep(stream_grace).await;
        end_streams.send_replace(true);
    });
    let drained = tokio::time::timeout(config.shutdown_timeout, &mut server);
    match drained.await {
        Ok(result) => {
            result.map_err(ServeError::Transport)?;
            tracing::info!("drained; exiting");
            Ok(())
        }
        Err(_) => Err(ServeError::Drain(config.shutdown_timeout)),
    }
}

/// Runs one health check every interval for as long as the server runs.
async fn run_health_check(check: HealthCheck, health: crate::health::HealthReporter) {
    let mut last = None;
    loop {
        let outcome = match tokio::time::timeout(check.interval, (check.check)()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {:?}", check.interval)),
        };
        let serving = outcome.is_ok();
        if last != Some(serving) {
            match &outcome {
                Ok(()) => tracing::info!(check = %check.name, "health check passes"),
                Err(error) => tracing::warn!(check = %check.name, %error, "health check fails"),
            }
        }
        last = Some(serving);
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        health.set(&check.name, status);
        tokio::time::sleep(check.interval).await;
    }
}

/// tonic answers a request larger than a service's decoding limit (4 MiB by default) with
/// OUT_OF_RANGE; gRPC's status code for it is RESOURCE_EXHAUSTED, which is what clients and
/// retry policies expect.
fn oversized_is_resource_exhausted(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let oversized = tonic::Status::from_header_map(response.headers()).is_some_and(|status| {
        status.code() == tonic::Code::OutOfRange
            && status
                .message()
                .starts_with("Error, decoded message length too large")
    });
    if oversized {
        response.headers_mut().insert(
            "grpc-status",
            http::HeaderValue::from(tonic::Code::ResourceExhausted as i32),
        );
    }
    response
}

#[cfg(feature = "dynamodb")]
async fn dynamodb_stores(
    tables: &[(String, String)],
    schemas: &[TableSchema],
) -> Result<Stores, ConfigError> {
    tracing::info!(?tables, "using DynamoDB");
    Ok(Stores::dynamodb(tables, schemas).await)
}

#[cfg(not(feature = "dynamodb"))]
async fn dynamodb_stores(_: &[(String, String)], _: &[TableSchema]) -> Result<Stores, ConfigError> {
    Err(ConfigError::NoDynamoDb)
}

/// Installs SIGTERM (what ECS sends) and SIGINT handlers now, and resolves with the name of
/// the first signal received.
fn shutdown_signal() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            // Without signal handlers the process can only be killed; serve until then.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_filter;

    #[test]
    fn rust_log_names_levels_per_target_and_a_bad_value_falls_back_to_info() {
        for unset in [None, Some(""), Some("  ")] {
            let (filter, error) = log_filter(unset);
            assert!(error.is_none());
            assert!(filter.would_enable("task_svc", &Level::INFO));
            assert!(!filter.would_enable("task_svc", &Level::DEBUG));
        }
        for written in [
            "warn,task_svc::handler=debug",
            " warn, task_svc::handler=debug,,",
        ] {
            let (filter, error) = log_filter(Some(written));
            assert!(error.is_none(), "{written}");
            assert!(filter.would_enable("task_svc::handler", &Level::DEBUG));
            assert!(!filter.would_enable("task_svc::handler", &Level::TRACE));
            assert!(!filter.would_enable("svcgen_runtime", &Level::INFO));
            assert!(filter.would_enable("svcgen_runtime", &Level::WARN));
        }
        for bad in ["task_svc=loud", "task_svc = debug"] {
            let (filter, error) = log_filter(Some(bad));
            assert!(error.is_some(), "{bad}");
            assert!(filter.would_enable("task_svc", &Level::INFO));
            assert!(!filter.would_enable("task_svc", &Level::DEBUG));
        }
    }
}
