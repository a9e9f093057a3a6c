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
#[derive(Clone, Debug, Default, Deserialize)]
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
    /// Seconds ECS waits after SIGTERM before SIGKILL (the service drains within 5 s less).
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
            stop_timeout: 30,
            health_check: HealthCheckConfig::default(),
            target_group: TargetGroupConfig::default(),
            listener_rule_priority: 100,
            cloud_map: CloudMapConfig::default(),
            architecture: Architecture::default(),
            keep_images: 20,
            container_insights: false,
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

/// `[deploy.cloud_map]`: private DNS for service-to-service calls.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudMapConfig {
    /// Namespace (default `<service name>.local`).
    pub namespace: Option<String>,
    /// Service name in the namespace (default: the last segment of the proto package).
    pub service: Option<String>,
    /// TTL of the records in seconds (default 30).
    pub dns_ttl: Option<u32>,
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

/// Lower-case letters, digits and '-', starting with a letter: valid as a crate, binary, ECS
/// family and DNS name.
pub fn valid_service_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
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
        "service.name = {name:?} must be lower-case letters, digits and '-', starting with a letter (it names the crate, binary and ECS family)"
    )]
    ServiceName {
        /// The name given.
        name: String,
    },
    /// `[proto] files` lists nothing.
    #[error("proto.files is empty: list the .proto files to generate from")]
    NoProtoFiles,
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
        Ok(config)
    }

    /// The physical DynamoDB table name of logical table `logical`: its `[tables]` entry, else
    /// the logical name.
    pub fn physical_table<'a>(&'a self, logical: &'a str) -> &'a str {
        self.tables.get(logical).map_or(logical, String::as_str)
    }

    /// The import root as a path from the project directory.
    pub fn proto_root(&self, project: &Path) -> PathBuf {
        project.join(&self.proto.root)
    }
}
