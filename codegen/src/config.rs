//! `svcgen.toml`: where the protos are and what the service is called.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The parsed `svcgen.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[service]`
    pub service: ServiceConfig,
    /// `[proto]`
    pub proto: ProtoConfig,
    /// `[tables]`: physical DynamoDB table name per logical table (default: the logical name;
    /// `TABLE_NAME_<LOGICAL>` or, with one table, `TABLE_NAME` override it).
    #[serde(default)]
    pub tables: std::collections::BTreeMap<String, String>,
    /// `[deploy]`: ECS Fargate settings.
    #[serde(default)]
    pub deploy: DeployConfig,
    /// `[generate]`: how `svcgen generate` renders.
    #[serde(default)]
    pub generate: GenerateConfig,
    /// `[aws]`: the account's existing network and load balancer, for `svcgen deploy`.
    #[serde(default)]
    pub aws: AwsConfig,
    /// `[runtime]`: where the project's `svcgen-runtime` comes from.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// `[environments.NAME]`: settings of each environment (`svcgen deploy --env NAME`) over
    /// `[aws]`, `[deploy]` and `[tables]`.
    #[serde(default)]
    pub environments: std::collections::BTreeMap<String, EnvironmentConfig>,
    /// The environment this configuration is for (set by [`Config::for_environment`]).
    #[serde(skip)]
    pub environment: Option<Environment>,
}

/// `[environments.NAME]`: what differs in one environment. `aws` and `deploy` take any key of
/// `[aws]` and `[deploy]` (tables such as `[environments.NAME.deploy.cloud_map]` merge key by
/// key); `tables` names the environment's physical tables.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// Over `[aws]`.
    #[serde(default)]
    pub aws: toml::Table,
    /// Over `[deploy]`.
    #[serde(default)]
    pub deploy: toml::Table,
    /// Physical table per logical table (default: the table's name without the environment,
    /// then `-NAME`).
    #[serde(default)]
    pub tables: std::collections::BTreeMap<String, String>,
}

/// The environment a configuration was resolved for.
#[derive(Clone, Debug)]
pub struct Environment {
    /// Its name, e.g. `staging`.
    pub name: String,
    /// Its own `[environments.NAME.tables]`.
    pub tables: std::collections::BTreeMap<String, String>,
}

/// `[runtime]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// `"vendor"` (default): svcgen writes the runtime it generated against under `vendor/`;
    /// `"crates-io"`: the published crate.
    #[serde(default)]
    pub source: RuntimeSource,
}

impl RuntimeConfig {
    /// Whether svcgen writes the runtime into the project (`vendor/`, `.cargo/config.toml`).
    pub fn vendored(&self) -> bool {
        self.source == RuntimeSource::Vendor
    }
}

/// Where `svcgen-runtime` comes from.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeSource {
    /// Written into the project by `svcgen generate`, exactly the generator's version.
    #[default]
    Vendor,
    /// The published crate, as the project's `Cargo.toml` names it.
    CratesIo,
}

/// `[aws]`: where `svcgen deploy` puts the service. Only `svcgen deploy` and `svcgen status`
/// read it, and they name any missing setting before making a call.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region (else `--region`, else the standard AWS chain: `AWS_REGION`, the profile).
    pub region: Option<String>,
    /// VPC of the load balancer and the tasks (the Cloud Map namespace is created in it).
    pub vpc_id: Option<String>,
    /// Private subnets the tasks run in.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Security groups of the tasks (allow the load balancer's group on the container port).
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// ARN of the load balancer's existing HTTPS listener.
    pub listener_arn: Option<String>,
    /// ECS cluster (default: the service name).
    pub cluster: Option<String>,
}

/// `[generate]`
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Directory of template overrides, relative to the project (`--templates` replaces it).
    pub templates: Option<PathBuf>,
}

/// `[deploy]`: how the service runs on ECS Fargate. Every value has a default tuned for a
/// small gRPC service; the README explains the resulting timings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployConfig {
    /// Task CPU units (256, 512, 1024, …).
    pub cpu: u32,
    /// Task memory in MiB.
    pub memory: u32,
    /// Number of tasks.
    pub desired_count: u32,
    /// Container port.
    pub port: u16,
    /// CloudWatch log retention in days.
    pub log_retention_days: u32,
    /// Seconds ECS waits after SIGTERM before SIGKILL: the service keeps serving for the DNS
    /// TTL (clients may still resolve a stopped task's address), then drains within 5 s less
    /// than what is left.
    pub stop_timeout: u32,
    /// Container health check (the probe inside the image).
    pub health_check: HealthCheckConfig,
    /// ALB target group.
    pub target_group: TargetGroupConfig,
    /// Priority of the listener rule on the shared HTTPS listener.
    pub listener_rule_priority: u32,
    /// Cloud Map service discovery.
    pub cloud_map: CloudMapConfig,
    /// CPU architecture of the tasks: the image's target and the task definition's platform.
    pub architecture: Architecture,
    /// Images the ECR repository keeps (older ones expire: storage is billed).
    pub keep_images: u32,
    /// CloudWatch Container Insights on the cluster (billed per metric; off by default).
    pub container_insights: bool,
    /// The host name clients call the service by through the load balancer (its certificate
    /// must cover it): the listener rule matches it, so environments can share one listener.
    pub domain: Option<String>,
    /// The CloudWatch alarms' thresholds and where they notify.
    pub alarms: AlarmsConfig,
    /// Traces: an optional collector beside the service.
    pub observability: ObservabilityConfig,
}

/// The collector image `[deploy.observability] collector_image` names by default (pinned).
pub const DEFAULT_COLLECTOR_IMAGE: &str =
    "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0";

/// `[deploy.observability]`: where the service's traces go on ECS.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObservabilityConfig {
    /// `none` (default): no traces are exported; `adot`: an AWS Distro for OpenTelemetry
    /// collector in each task receives the service's traces and sends them to X-Ray.
    pub collector: Collector,
    /// The share of calls traced when the caller sent no sampling decision (0 to 1).
    pub trace_sample_rate: f64,
    /// The collector's image, fully qualified (registry, repository, tag or digest).
    pub collector_image: String,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            collector: Collector::None,
            trace_sample_rate: 0.05,
            collector_image: DEFAULT_COLLECTOR_IMAGE.into(),
        }
    }
}

/// The collector that runs beside the service.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Collector {
    /// None: the service exports no traces.
    #[default]
    None,
    /// The AWS Distro for OpenTelemetry collector, sending traces to X-Ray.
    Adot,
}

/// `[deploy.alarms]`: when the generated alarms fire and whom they tell.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmsConfig {
    /// The SNS topic the alarms notify (ARN); none by default (the alarms still change state).
    pub topic: Option<String>,
    /// The service's 99th-percentile latency, in ms, above which it alarms.
    pub latency_p99_ms: u32,
    /// The share of calls, in percent, failing with a server error above which it alarms.
    pub server_error_percent: f64,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        Self {
            topic: None,
            latency_p99_ms: 1000,
            server_error_percent: 1.0,
        }
    }
}

/// The CPU architecture the service is built for and runs on.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Architecture {
    /// Intel/AMD.
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    /// Graviton (the cheaper Fargate option).
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// The Rust target the image's binary is built for (static, musl).
    pub fn rust_target(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64-unknown-linux-musl",
            Self::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    /// The image platform, as docker, podman and buildah take it in `--platform`.
    pub fn platform(self) -> &'static str {
        match self {
            Self::X86_64 => "linux/amd64",
            Self::Arm64 => "linux/arm64",
        }
    }

    /// ECS's `runtimePlatform.cpuArchitecture`.
    pub fn ecs(self) -> &'static str {
        match self {
            Self::X86_64 => "X86_64",
            Self::Arm64 => "ARM64",
        }
    }
}

impl Default for DeployConfig {
    fn default() -> Self {
        Self {
            cpu: 512,
            memory: 1024,
            desired_count: 2,
            port: 50051,
            log_retention_days: 30,
            stop_timeout: 60,
            health_check: HealthCheckConfig::default(),
            target_group: TargetGroupConfig::default(),
            listener_rule_priority: 100,
            cloud_map: CloudMapConfig::default(),
            architecture: Architecture::default(),
            keep_images: 20,
            container_insights: false,
            domain: None,
            alarms: AlarmsConfig::default(),
            observability: ObservabilityConfig::default(),
        }
    }
}

/// `[deploy.health_check]`: the container health check, in seconds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Seconds between checks.
    pub interval: u32,
    /// Seconds before a check fails.
    pub timeout: u32,
    /// Failures before the container is unhealthy.
    pub retries: u32,
    /// Grace period after start.
    pub start_period: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            interval: 15,
            timeout: 5,
            retries: 3,
            start_period: 30,
        }
    }
}

/// `[deploy.target_group]`: the ALB's gRPC health checks and draining, in seconds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TargetGroupConfig {
    /// Seconds between ALB health checks (AWS default 30).
    pub health_check_interval: u32,
    /// Seconds before an ALB health check fails (AWS default 5).
    pub health_check_timeout: u32,
    /// Passing checks before a target receives traffic (AWS default 5).
    pub healthy_threshold: u32,
    /// Failing checks before a target is taken out (AWS default 2).
    pub unhealthy_threshold: u32,
    /// Seconds a deregistering target keeps in-flight requests (AWS default 300).
    pub deregistration_delay: u32,
}

impl Default for TargetGroupConfig {
    fn default() -> Self {
        Self {
            health_check_interval: 10,
            health_check_timeout: 5,
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            deregistration_delay: 20,
        }
    }
}

/// The Cloud Map records' TTL when `[deploy.cloud_map] dns_ttl` does not set one.
pub const DEFAULT_DNS_TTL: u32 = 30;

/// `[deploy.cloud_map]`: private DNS for service-to-service calls.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudMapConfig {
    /// Namespace (default `<service name>.local`).
    pub namespace: Option<String>,
    /// Service name in the namespace (default: the last segment of the proto package).
    pub service: Option<String>,
    /// TTL of the records in seconds (default 30). After SIGTERM the task keeps serving this
    /// long, since resolvers may hand out its address until then.
    pub dns_ttl: Option<u32>,
    /// Security groups of the callers in the VPC that reach the service through its Cloud Map
    /// name (the tasks' security group admits them on the container port).
    pub caller_security_groups: Vec<String>,
    /// Address ranges of such callers.
    pub caller_cidrs: Vec<String>,
    /// `A` (default): one record per task's IP; `SRV`: records that also carry the port.
    pub record_type: DnsRecordType,
}

/// The DNS records Cloud Map keeps for the tasks.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum DnsRecordType {
    /// Address records.
    #[default]
    A,
    /// Service records (address and port).
    #[serde(rename = "SRV")]
    Srv,
}

impl std::fmt::Display for DnsRecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::A => "A",
            Self::Srv => "SRV",
        })
    }
}

/// `[service]`: naming.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Crate, binary and deployment name, e.g. `task-svc`.
    pub name: String,
}

/// `[proto]`: the inputs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtoConfig {
    /// Import root, relative to the project directory (default `proto`).
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Files to generate from, relative to `root`.
    pub files: Vec<String>,
}

fn default_root() -> PathBuf {
    PathBuf::from("proto")
}

/// 2 to 32 lower-case letters, digits and single '-' between them, starting with a letter:
/// valid as a crate, binary, ECS family, DNS label and every AWS name svcgen derives from it (a
/// target group's name has at most 32 characters, an ECR repository's at least 2 and no `--`,
/// `<name>-execution` fits IAM's 64).
pub fn valid_service_name(name: &str) -> bool {
    (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// File name of the project configuration.
pub const FILE_NAME: &str = "svcgen.toml";

/// Why `svcgen.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    /// Not TOML, or not the shape of `svcgen.toml`; the message carries the TOML location.
    #[error(transparent)]
    Syntax(#[from] toml::de::Error),
    /// `[service] name` cannot name a crate, binary and ECS family.
    #[error(
        "service.name = {name:?} must be 2 to 32 lower-case letters, digits and single '-' between them, starting with a letter (it names the crate, binary, ECS family, target group and ECR repository)"
    )]
    ServiceName {
        /// The name given.
        name: String,
    },
    /// A section could not be written back as TOML to merge an environment over it (a bug).
    #[error("cannot merge an environment's settings: {0}")]
    Merge(String),
    /// `[proto] files` lists nothing.
    #[error("proto.files is empty: list the .proto files to generate from")]
    NoProtoFiles,
    /// `[environments.NAME]` with a name that cannot be part of AWS names.
    #[error(
        "environments.{name}: an environment's name is lower-case letters and digits, starting with a letter, and `{service}-{name}` must be a valid service name (at most 32 characters: it names the target group)"
    )]
    EnvironmentName {
        /// The environment.
        name: String,
        /// `[service] name`.
        service: String,
    },
    /// A setting of `[environments.NAME]` is wrong.
    #[error("environments.{name}: {problem}")]
    InEnvironment {
        /// The environment.
        name: String,
        /// What is wrong with its merged settings.
        problem: Box<ConfigError>,
    },
    /// `--env NAME` names no `[environments.NAME]`.
    #[error("no [environments.{name}] in svcgen.toml{}", if .known.is_empty() { String::new() } else { format!(" (environments: {})", .known.join(", ")) })]
    UnknownEnvironment {
        /// The name given.
        name: String,
        /// The environments svcgen.toml declares.
        known: Vec<String>,
    },
    /// A setting AWS would refuse; found before anything is generated or created.
    #[error("{setting} = {value}: {reason}")]
    Refused {
        /// The setting, e.g. `deploy.memory`.
        setting: &'static str,
        /// Its value.
        value: String,
        /// What AWS accepts.
        reason: String,
    },
}

/// Fargate's task sizes (Linux): CPU units → (lowest memory, highest, step), in MiB. 256 CPU
/// units take 512, 1024 or 2048 MiB only (the step leaves out 1536).
const FARGATE_SIZES: [(u32, u32, u32, u32); 7] = [
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

/// The retention periods CloudWatch Logs accepts, in days.
const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// `base` with the keys of `over` (TOML tables merge key by key).
fn merged<T>(base: &T, over: &toml::Table) -> Result<T, ConfigError>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    fn merge(base: &mut toml::Table, over: &toml::Table) {
        for (key, value) in over {
            match (base.get_mut(key), value) {
                (Some(toml::Value::Table(base)), toml::Value::Table(over)) => merge(base, over),
                _ => {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let mut table = toml::Table::try_from(base).map_err(|e| ConfigError::Merge(e.to_string()))?;
    merge(&mut table, over);
    Ok(table.try_into()?)
}

/// `value` within `range`, else the error naming `setting`.
fn within(
    setting: &'static str,
    value: u32,
    range: std::ops::RangeInclusive<u32>,
    what: &str,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::Refused {
        setting,
        value: value.to_string(),
        reason: format!("{what} must be {} to {}", range.start(), range.end()),
    })
}

/// A host name ALB's host-header condition and a certificate can match: at least two labels
/// of letters, digits and inner hyphens.
fn valid_domain(domain: &str) -> bool {
    domain.len() <= 253
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// `a.b.c.d/n`, an IPv4 range.
fn valid_cidr(cidr: &str) -> bool {
    cidr.split_once('/').is_some_and(|(address, bits)| {
        address.parse::<std::net::Ipv4Addr>().is_ok()
            && !bits.is_empty()
            && bits.bytes().all(|b| b.is_ascii_digit())
            && bits.parse::<u8>().is_ok_and(|b| b <= 32)
    })
}

/// `registry/repository:tag`, `registry/repository@sha256:…` or both, at most 255 characters
/// (ECS's limit): the registry a host name (or `localhost`) with an optional port, the
/// repository lower-case path components. Such an image depends neither on the engine's
/// default registry nor on whatever `latest` is.
fn fully_qualified_image(image: &str) -> bool {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let (name, tag) = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (rest, None),
    };
    let valid_digest = digest.is_none_or(|digest| {
        digest.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    });
    let valid_tag = tag.is_none_or(|tag| {
        (1..=128).contains(&tag.len())
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    });
    let Some((registry, repository)) = name.split_once('/') else {
        return false;
    };
    let (host, port) = match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let valid_port = port.is_none_or(|port| {
        port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    let valid_repository = repository.split('/').all(|component| {
        component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric())
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    });
    image.len() <= 255
        && (tag.is_some() || digest.is_some())
        && valid_tag
        && valid_digest
        && (host == "localhost" || valid_domain(host))
        && valid_port
        && valid_repository
}

impl DeployConfig {
    /// ECS's value of the `containerInsights` cluster setting for `container_insights`.
    pub fn container_insights_setting(&self) -> &'static str {
        if self.container_insights {
            "enabled"
        } else {
            "disabled"
        }
    }

    /// The Cloud Map records' TTL in seconds.
    pub fn dns_ttl(&self) -> u32 {
        self.cloud_map.dns_ttl.unwrap_or(DEFAULT_DNS_TTL)
    }

    /// Seconds the service keeps serving after SIGTERM: resolvers may hand out a stopped task's
    /// address for the records' TTL.
    pub fn shutdown_delay(&self) -> u32 {
        self.dns_ttl()
    }

    /// Seconds in-flight calls get to finish after the delay: what is left of the stop
    /// timeout, less 5 s so the process exits before ECS kills it.
    pub fn shutdown_timeout(&self) -> u32 {
        self.stop_timeout
            .saturating_sub(self.shutdown_delay())
            .saturating_sub(5)
    }

    /// Every value AWS would refuse, named before anything is created: Fargate's task sizes,
    /// CloudWatch's retention periods, the ranges of ECS and Elastic Load Balancing.
    fn check(&self) -> Result<(), ConfigError> {
        match FARGATE_SIZES.iter().find(|(cpu, ..)| *cpu == self.cpu) {
            None => {
                let cpus: Vec<String> = FARGATE_SIZES.iter().map(|s| s.0.to_string()).collect();
                return Err(ConfigError::Refused {
                    setting: "deploy.cpu",
                    value: self.cpu.to_string(),
                    reason: format!("Fargate tasks have {} CPU units", cpus.join(", ")),
                });
            }
            Some((cpu, low, high, step)) => {
                let fits = (*low..=*high).contains(&self.memory)
                    && (self.memory - low).is_multiple_of(*step)
                    && !(*cpu == 256 && self.memory == 1536);
                if !fits {
                    let sizes = if *cpu == 256 {
                        "512, 1024 or 2048 MiB".to_owned()
                    } else {
                        format!("{low} to {high} MiB in steps of {step}")
                    };
                    return Err(ConfigError::Refused {
                        setting: "deploy.memory",
                        value: self.memory.to_string(),
                        reason: format!("with cpu = {cpu}, Fargate takes {sizes}"),
                    });
                }
            }
        }
        if !LOG_RETENTION_DAYS.contains(&self.log_retention_days) {
            let days: Vec<String> = LOG_RETENTION_DAYS.iter().map(u32::to_string).collect();
            return Err(ConfigError::Refused {
                setting: "deploy.log_retention_days",
                value: self.log_retention_days.to_string(),
                reason: format!("CloudWatch Logs keeps logs for {} days", days.join(", ")),
            });
        }
        within(
            "deploy.listener_rule_priority",
            self.listener_rule_priority,
            1..=50_000,
            "a listener rule's priority",
        )?;
        // Fargate waits at most 120 s; the service serves for the DNS TTL, then drains (at least
        // 5 s) and exits 5 s before the stop timeout.
        within(
            "deploy.stop_timeout",
            self.stop_timeout,
            6..=120,
            "Fargate's stop timeout (seconds)",
        )?;
        within(
            "deploy.cloud_map.dns_ttl",
            self.dns_ttl(),
            0..=110,
            "the records' TTL (a stopping task serves that long, within Fargate's 120 s)",
        )?;
        if self.stop_timeout < self.shutdown_delay() + 10 {
            return Err(ConfigError::Refused {
                setting: "deploy.stop_timeout",
                value: self.stop_timeout.to_string(),
                reason: format!(
                    "must leave time to drain after the DNS TTL the task keeps serving (deploy.cloud_map.dns_ttl = {}): at least {}",
                    self.shutdown_delay(),
                    self.shutdown_delay() + 10
                ),
            });
        }
        for group in &self.cloud_map.caller_security_groups {
            let id = group.strip_prefix("sg-").unwrap_or_default();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ConfigError::Refused {
                    setting: "deploy.cloud_map.caller_security_groups",
                    value: format!("{group:?}"),
                    reason: "a security group ID looks like sg-0123456789abcdef0".into(),
                });
            }
        }
        for cidr in &self.cloud_map.caller_cidrs {
            if !valid_cidr(cidr) {
                return Err(ConfigError::Refused {
                    setting: "deploy.cloud_map.caller_cidrs",
                    value: format!("{cidr:?}"),
                    reason: "an IPv4 range looks like 10.0.0.0/16".into(),
                });
            }
        }
        if let Some(domain) = &self.domain
            && !valid_domain(domain)
        {
            return Err(ConfigError::Refused {
                setting: "deploy.domain",
                value: format!("{domain:?}"),
                reason: "a host name looks like tasks.example.com (letters, digits and '-' in labels of at most 63 characters, at most 253 in all)".into(),
            });
        }
        within(
            "deploy.port",
            u32::from(self.port),
            1..=65_535,
            "the container port",
        )?;
        let alarms = &self.alarms;
        if let Some(topic) = &alarms.topic {
            let parts: Vec<&str> = topic.split(':').collect();
            if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5].is_empty() {
                return Err(ConfigError::Refused {
                    setting: "deploy.alarms.topic",
                    value: format!("{topic:?}"),
                    reason:
                        "an SNS topic's ARN looks like arn:aws:sns:us-east-1:123456789012:alarms"
                            .into(),
                });
            }
        }
        within(
            "deploy.alarms.latency_p99_ms",
            alarms.latency_p99_ms,
            1..=900_000,
            "a latency threshold in milliseconds",
        )?;
        if !(alarms.server_error_percent > 0.0 && alarms.server_error_percent <= 100.0) {
            return Err(ConfigError::Refused {
                setting: "deploy.alarms.server_error_percent",
                value: alarms.server_error_percent.to_string(),
                reason: "a share of calls above 0 and at most 100 (percent)".into(),
            });
        }
        let observability = &self.observability;
        if !(0.0..=1.0).contains(&observability.trace_sample_rate) {
            return Err(ConfigError::Refused {
                setting: "deploy.observability.trace_sample_rate",
                value: observability.trace_sample_rate.to_string(),
                reason: "a share of calls from 0 to 1 (0.05: one call in twenty)".into(),
            });
        }
        if !fully_qualified_image(&observability.collector_image) {
            return Err(ConfigError::Refused {
                setting: "deploy.observability.collector_image",
                value: format!("{:?}", observability.collector_image),
                reason: format!(
                    "a fully qualified image names its registry and a tag or digest, e.g. {DEFAULT_COLLECTOR_IMAGE}"
                ),
            });
        }
        within(
            "deploy.keep_images",
            self.keep_images,
            1..=1000,
            "the number of images kept",
        )?;
        let health = &self.health_check;
        within(
            "deploy.health_check.interval",
            health.interval,
            5..=300,
            "ECS's health check interval",
        )?;
        within(
            "deploy.health_check.timeout",
            health.timeout,
            2..=60,
            "ECS's health check timeout",
        )?;
        within(
            "deploy.health_check.retries",
            health.retries,
            1..=10,
            "ECS's health check retries",
        )?;
        within(
            "deploy.health_check.start_period",
            health.start_period,
            0..=300,
            "ECS's health check start period",
        )?;
        let group = &self.target_group;
        within(
            "deploy.target_group.health_check_interval",
            group.health_check_interval,
            5..=300,
            "a target group's health check interval",
        )?;
        within(
            "deploy.target_group.health_check_timeout",
            group.health_check_timeout,
            2..=120,
            "a target group's health check timeout",
        )?;
        if group.health_check_timeout >= group.health_check_interval {
            return Err(ConfigError::Refused {
                setting: "deploy.target_group.health_check_timeout",
                value: group.health_check_timeout.to_string(),
                reason: format!(
                    "must be less than deploy.target_group.health_check_interval ({})",
                    group.health_check_interval
                ),
            });
        }
        within(
            "deploy.target_group.healthy_threshold",
            group.healthy_threshold,
            2..=10,
            "a target group's healthy threshold",
        )?;
        within(
            "deploy.target_group.unhealthy_threshold",
            group.unhealthy_threshold,
            2..=10,
            "a target group's unhealthy threshold",
        )?;
        within(
            "deploy.target_group.deregistration_delay",
            group.deregistration_delay,
            0..=3600,
            "a target group's deregistration delay",
        )?;
        Ok(())
    }
}

impl Config {
    /// Parses `svcgen.toml` text; syntax errors carry the TOML location.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text)?;
        if !valid_service_name(&config.service.name) {
            return Err(ConfigError::ServiceName {
                name: config.service.name,
            });
        }
        if config.proto.files.is_empty() {
            return Err(ConfigError::NoProtoFiles);
        }
        config.deploy.check()?;
        for name in config.environments.keys() {
            config.for_environment(name)?;
        }
        Ok(config)
    }

    /// This configuration in environment `name`: its `[environments.NAME]` settings over the
    /// others, and the environment in the name of every resource (see `infra`).
    pub fn for_environment(&self, name: &str) -> Result<Self, ConfigError> {
        let Some(environment) = self.environments.get(name) else {
            return Err(ConfigError::UnknownEnvironment {
                name: name.to_owned(),
                known: self.environments.keys().cloned().collect(),
            });
        };
        let service = &self.service.name;
        let valid_name = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !valid_name || !valid_service_name(&format!("{service}-{name}")) {
            return Err(ConfigError::EnvironmentName {
                name: name.to_owned(),
                service: service.clone(),
            });
        }
        let in_environment = |problem: ConfigError| ConfigError::InEnvironment {
            name: name.to_owned(),
            problem: Box::new(problem),
        };
        let mut config = self.clone();
        config.aws = merged(&self.aws, &environment.aws).map_err(in_environment)?;
        config.deploy = merged(&self.deploy, &environment.deploy).map_err(in_environment)?;
        let own_namespace = environment
            .deploy
            .get("cloud_map")
            .and_then(|c| c.get("namespace"))
            .is_some();
        if own_namespace && config.namespace() == self.namespace() {
            return Err(in_environment(ConfigError::Refused {
                setting: "deploy.cloud_map.namespace",
                value: format!("{:?}", config.namespace()),
                reason: "is the namespace of the default environment: an environment's services would register in it (leave it unset for <namespace's first label>-NAME)".into(),
            }));
        }
        if !own_namespace {
            // `task-svc.local` → `task-svc-staging.local`: a namespace of its own beside the
            // inherited one (Cloud Map refuses one inside another in the same VPC).
            let inherited = self.namespace();
            let (first, rest) = inherited.split_once('.').unwrap_or((&inherited, "local"));
            config.deploy.cloud_map.namespace = Some(format!("{first}-{name}.{rest}"));
        }
        config.deploy.check().map_err(in_environment)?;
        config.environment = Some(Environment {
            name: name.to_owned(),
            tables: environment.tables.clone(),
        });
        Ok(config)
    }

    /// The name of every resource svcgen creates: the service's, with `-<environment>` in an
    /// environment.
    pub fn resource_name(&self) -> String {
        match &self.environment {
            Some(environment) => format!("{}-{}", self.service.name, environment.name),
            None => self.service.name.clone(),
        }
    }

    /// The Cloud Map namespace: `[deploy.cloud_map] namespace`, by default `<service>.local`.
    pub fn namespace(&self) -> String {
        self.deploy
            .cloud_map
            .namespace
            .clone()
            .unwrap_or_else(|| format!("{}.local", self.service.name))
    }

    /// The physical DynamoDB table name of logical table `logical`: its `[tables]` entry, else
    /// the logical name; in an environment, its `[environments.NAME.tables]` entry, else that
    /// name with `-NAME`.
    pub fn physical_table(&self, logical: &str) -> String {
        let base = self.tables.get(logical).map_or(logical, String::as_str);
        match &self.environment {
            Some(environment) => environment
                .tables
                .get(logical)
                .cloned()
                .unwrap_or_else(|| format!("{base}-{}", environment.name)),
            None => base.to_owned(),
        }
    }

    /// The import root as a path from the project directory.
    pub fn proto_root(&self, project: &Path) -> PathBuf {
        project.join(&self.proto.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(deploy: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!(
            "[service]\nname = \"demo\"\n[proto]\nfiles = [\"a.proto\"]\n[deploy]\n{deploy}\n"
        ))
    }

    fn refused(deploy: &str) -> (&'static str, String) {
        match config(deploy) {
            Err(ConfigError::Refused {
                setting, reason, ..
            }) => (setting, reason),
            other => panic!("{deploy}: {other:?}"),
        }
    }

    #[test]
    fn settings_aws_would_refuse_are_named_before_anything_happens() {
        assert!(config("").is_ok(), "the defaults are valid");
        assert!(config("cpu = 256\nmemory = 2048").is_ok());
        assert_eq!(refused("cpu = 256\nmemory = 1536").0, "deploy.memory");
        assert!(config("cpu = 8192\nmemory = 20480").is_ok());
        assert_eq!(refused("cpu = 300").0, "deploy.cpu");
        let (setting, reason) = refused("cpu = 512\nmemory = 3000");
        assert_eq!(setting, "deploy.memory");
        assert!(
            reason.contains("1024 to 4096 MiB in steps of 1024"),
            "{reason}"
        );
        assert_eq!(refused("cpu = 8192\nmemory = 18432").0, "deploy.memory");
        assert_eq!(
            refused("log_retention_days = 10").0,
            "deploy.log_retention_days"
        );
        assert_eq!(
            refused("listener_rule_priority = 0").0,
            "deploy.listener_rule_priority"
        );
        assert_eq!(
            refused("listener_rule_priority = 50001").0,
            "deploy.listener_rule_priority"
        );
        assert_eq!(refused("stop_timeout = 121").0, "deploy.stop_timeout");
        // A stopping task serves for the DNS TTL (30 s by default), then needs time to drain.
        let (setting, reason) = refused("stop_timeout = 30");
        assert_eq!(setting, "deploy.stop_timeout");
        assert!(reason.ends_with("at least 40"), "{reason}");
        let short_ttl =
            config("stop_timeout = 30\n[deploy.cloud_map]\ndns_ttl = 10").expect("valid");
        assert_eq!(
            (
                short_ttl.deploy.shutdown_delay(),
                short_ttl.deploy.shutdown_timeout()
            ),
            (10, 15)
        );
        assert_eq!(
            refused("[deploy.cloud_map]\ncaller_security_groups = [\"web\"]").0,
            "deploy.cloud_map.caller_security_groups"
        );
        assert_eq!(
            refused("[deploy.cloud_map]\ncaller_cidrs = [\"10.0.0.0/33\"]").0,
            "deploy.cloud_map.caller_cidrs"
        );
        assert!(config("[deploy.cloud_map]\ncaller_cidrs = [\"10.0.0.0/16\"]").is_ok());
        assert_eq!(
            refused("[deploy.cloud_map]\ncaller_cidrs = [\"10.0.0.0/+16\"]").0,
            "deploy.cloud_map.caller_cidrs"
        );
        assert_eq!(
            refused("[deploy.cloud_map]\ncaller_security_groups = [\"sg-\"]").0,
            "deploy.cloud_map.caller_security_groups"
        );
        // A TTL past what Fargate's stop timeout can hold is refused, not overflowed.
        assert_eq!(
            refused("[deploy.cloud_map]\ndns_ttl = 4294967295").0,
            "deploy.cloud_map.dns_ttl"
        );
        assert_eq!(refused("keep_images = 0").0, "deploy.keep_images");
        assert!(config("domain = \"tasks.staging.example.com\"").is_ok());
        for domain in [
            "localhost",
            "*.example.com",
            "a..b",
            "-a.example.com",
            "a_b.example.com",
        ] {
            assert_eq!(
                refused(&format!("domain = \"{domain}\"")).0,
                "deploy.domain",
                "{domain}"
            );
        }
        assert_eq!(
            refused("[deploy.target_group]\nhealth_check_interval = 5\nhealth_check_timeout = 5").0,
            "deploy.target_group.health_check_timeout"
        );
        assert_eq!(
            refused("[deploy.health_check]\nretries = 11").0,
            "deploy.health_check.retries"
        );
    }

    #[test]
    fn each_architecture_names_one_cpu_for_the_image_the_binary_and_ecs() {
        for architecture in [Architecture::X86_64, Architecture::Arm64] {
            // Docker calls the CPUs amd64 and arm64, Rust x86_64 and aarch64, ECS X86_64 and ARM64.
            let (docker, rust) = match architecture.ecs() {
                "X86_64" => ("linux/amd64", "x86_64-"),
                "ARM64" => ("linux/arm64", "aarch64-"),
                other => panic!("ECS has no CPU architecture {other}"),
            };
            assert_eq!(architecture.platform(), docker);
            assert!(architecture.rust_target().starts_with(rust));
            assert!(architecture.rust_target().ends_with("-unknown-linux-musl"));
        }
    }

    fn environments(environments: &str) -> Result<Config, ConfigError> {
        Config::parse(&format!(
            "[service]\nname = \"demo\"\n[proto]\nfiles = [\"a.proto\"]\n[tables]\nmain = \"main-prod\"\n[deploy]\ndesired_count = 4\n[deploy.cloud_map]\ndns_ttl = 20\n{environments}\n"
        ))
    }

    #[test]
    fn an_environment_overrides_settings_key_by_key_and_names_its_resources() {
        let config = environments(
            "[environments.staging.deploy]\ndesired_count = 1\n[environments.staging.deploy.cloud_map]\nrecord_type = \"SRV\"\n[environments.staging.aws]\ncluster = \"shared\"\n[environments.staging.tables]\nother = \"other-staging-x\"\n[environments.prod]",
        )
        .expect("valid");
        let staging = config.for_environment("staging").expect("declared");
        assert_eq!(staging.resource_name(), "demo-staging");
        assert_eq!(staging.deploy.desired_count, 1);
        // Merged key by key: the TTL of [deploy.cloud_map] stays, the record type changes.
        assert_eq!(staging.deploy.dns_ttl(), 20);
        assert_eq!(staging.deploy.cloud_map.record_type, DnsRecordType::Srv);
        assert_eq!(staging.aws.cluster.as_deref(), Some("shared"));
        assert_eq!(staging.namespace(), "demo-staging.local");
        assert_eq!(staging.physical_table("main"), "main-prod-staging");
        assert_eq!(staging.physical_table("other"), "other-staging-x");
        assert_eq!(staging.physical_table("third"), "third-staging");
        // The base configuration is unchanged.
        assert_eq!(config.resource_name(), "demo");
        assert_eq!(config.physical_table("main"), "main-prod");
        assert_eq!(config.namespace(), "demo.local");
        let prod = config.for_environment("prod").expect("declared");
        assert_eq!(prod.deploy.desired_count, 4);
        match config.for_environment("qa") {
            Err(ConfigError::UnknownEnvironment { known, .. }) => {
                assert_eq!(known, ["prod", "staging"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn environment_settings_aws_would_refuse_are_named_with_their_environment() {
        let error =
            environments("[environments.staging.deploy]\nmemory = 3000").expect_err("refused");
        assert_eq!(
            error.to_string(),
            "environments.staging: deploy.memory = 3000: with cpu = 512, Fargate takes 1024 to 4096 MiB in steps of 1024"
        );
        let unknown =
            environments("[environments.staging.deploy]\nmemroy = 2048").expect_err("refused");
        assert!(
            unknown.to_string().starts_with("environments.staging: ")
                && unknown.to_string().contains("memroy"),
            "{unknown}"
        );
        let shared =
            environments("[environments.staging.deploy.cloud_map]\nnamespace = \"demo.local\"")
                .expect_err("refused");
        assert!(
            shared
                .to_string()
                .starts_with("environments.staging: deploy.cloud_map.namespace = \"demo.local\""),
            "{shared}"
        );
        for name in ["Staging", "st-aging", "1st", &"x".repeat(28)] {
            let refused = environments(&format!("[environments.\"{name}\"]"));
            assert!(
                matches!(refused, Err(ConfigError::EnvironmentName { .. })),
                "{name}: {refused:?}"
            );
        }
        assert!(environments(&format!("[environments.{}]", "x".repeat(27))).is_ok());
    }

    #[test]
    fn observability_settings_are_checked_and_merged_per_environment() {
        let default = config("").expect("valid");
        assert_eq!(default.deploy.observability.collector, Collector::None);
        assert_eq!(default.deploy.observability.trace_sample_rate, 0.05);
        let adot = config("[deploy.observability]\ncollector = \"adot\"\ntrace_sample_rate = 1")
            .expect("valid");
        assert_eq!(adot.deploy.observability.collector, Collector::Adot);
        assert_eq!(adot.deploy.observability.trace_sample_rate, 1.0);
        for rate in ["-0.01", "1.5", "nan", "inf"] {
            let (setting, reason) = refused(&format!(
                "[deploy.observability]\ntrace_sample_rate = {rate}"
            ));
            assert_eq!(setting, "deploy.observability.trace_sample_rate", "{rate}");
            assert!(reason.contains("from 0 to 1"), "{reason}");
        }
        // An unknown collector is a syntax error at its key, naming the ones there are.
        let unknown = config("[deploy.observability]\ncollector = \"jaeger\"")
            .expect_err("refused")
            .to_string();
        assert!(
            unknown.contains("collector = \"jaeger\"") && unknown.contains("`adot`"),
            "{unknown}"
        );
        let image = |image: &str| {
            config(&format!(
                "[deploy.observability]\ncollector_image = \"{image}\""
            ))
        };
        let digest = format!("sha256:{}", "0a".repeat(32));
        for accepted in [
            DEFAULT_COLLECTOR_IMAGE.to_owned(),
            format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/otel/collector@{digest}"),
            format!("public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0@{digest}"),
            "localhost:5000/collector:dev".to_owned(),
        ] {
            assert!(image(&accepted).is_ok(), "{accepted}");
        }
        for refused in [
            "aws-otel-collector:v0.49.0".to_owned(),
            // Docker Hub's short form: which registry depends on the engine.
            "amazon/aws-otel-collector:v0.49.0".to_owned(),
            // No tag: whatever `latest` is when the task starts.
            "public.ecr.aws/aws-observability/aws-otel-collector".to_owned(),
            "public.ecr.aws/aws-observability/AWS-otel-collector:v1".to_owned(),
            "public.ecr.aws/aws-observability/aws-otel-collector:".to_owned(),
            "public.ecr.aws/aws-observability/aws-otel-collector@sha256:0a".to_owned(),
            "public.ecr.aws:0/aws-otel-collector:v1".to_owned(),
            format!("public.ecr.aws/{}:v1", "a".repeat(250)),
        ] {
            match image(&refused) {
                Err(ConfigError::Refused { setting, .. }) => {
                    assert_eq!(setting, "deploy.observability.collector_image", "{refused}");
                }
                other => panic!("{refused}: {other:?}"),
            }
        }

        // `[environments.NAME.deploy.observability]` merges key by key.
        let config = environments(
            "[deploy.observability]\ntrace_sample_rate = 0.2\n[environments.staging.deploy.observability]\ncollector = \"adot\"\n[environments.prod]",
        )
        .expect("valid");
        let staging = config.for_environment("staging").expect("declared");
        assert_eq!(staging.deploy.observability.collector, Collector::Adot);
        assert_eq!(staging.deploy.observability.trace_sample_rate, 0.2);
        assert_eq!(
            staging.deploy.observability.collector_image,
            DEFAULT_COLLECTOR_IMAGE
        );
        assert_eq!(config.deploy.observability.collector, Collector::None);
        let prod = config.for_environment("prod").expect("declared");
        assert_eq!(prod.deploy.observability.collector, Collector::None);
        let error =
            environments("[environments.staging.deploy.observability]\ntrace_sample_rate = 2")
                .expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("environments.staging: deploy.observability.trace_sample_rate = 2: "),
            "{error}"
        );
        let unknown =
            environments("[environments.staging.deploy.observability]\ncollector = \"jaeger\"")
                .expect_err("refused")
                .to_string();
        assert!(
            unknown.starts_with("environments.staging: ")
                && unknown.contains("jaeger")
                && unknown.contains("observability.collector"),
            "{unknown}"
        );
    }

    #[test]
    fn service_names_that_cannot_name_aws_resources_are_refused() {
        for refused in ["a", "a--b", "ab-", &"a".repeat(33)] {
            assert!(!valid_service_name(refused), "{refused}");
        }
    }
}
