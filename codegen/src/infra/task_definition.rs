//! The task definition: one type, serialized as `deploy/task-definition.json` (the
//! `RegisterTaskDefinition` input), registered by `svcgen deploy` and compared with the
//! revision ECS has.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Table, Target};
use crate::config::Config;

/// `RegisterTaskDefinition` input (`aws ecs register-task-definition --cli-input-json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    /// The family (the resource name: the service's, with the environment).
    pub family: String,
    /// `awsvpc`.
    pub network_mode: String,
    /// `FARGATE`.
    pub requires_compatibilities: Vec<String>,
    /// CPU units.
    pub cpu: String,
    /// MiB.
    pub memory: String,
    /// CPU architecture and OS.
    pub runtime_platform: RuntimePlatform,
    /// The tasks' role.
    pub task_role_arn: String,
    /// The execution role.
    pub execution_role_arn: String,
    /// The one container.
    pub container_definitions: Vec<Container>,
}

/// `runtimePlatform`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePlatform {
    /// `X86_64` or `ARM64`.
    pub cpu_architecture: String,
    /// `LINUX`.
    pub operating_system_family: String,
}

/// A container definition, with the fields svcgen sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The service's name.
    pub name: String,
    /// The image URI.
    pub image: String,
    /// `true`.
    pub essential: bool,
    /// The gRPC port.
    pub port_mappings: Vec<PortMapping>,
    /// What the service reads at start.
    pub environment: Vec<NameValue>,
    /// The probe inside the image.
    pub health_check: HealthCheck,
    /// awslogs.
    pub log_configuration: LogConfiguration,
    /// The non-root user.
    pub user: String,
    /// `true`.
    pub readonly_root_filesystem: bool,
    /// Seconds between SIGTERM and SIGKILL.
    pub stop_timeout: u32,
}

/// A port mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// `grpc`.
    pub name: String,
    /// The port.
    pub container_port: u16,
    /// `tcp`.
    pub protocol: String,
    /// `grpc`.
    pub app_protocol: String,
}

/// An environment variable.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NameValue {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// The container health check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// `CMD` and the probe's command line.
    pub command: Vec<String>,
    /// Seconds between checks.
    pub interval: u32,
    /// Seconds before a check fails.
    pub timeout: u32,
    /// Failures before the container is unhealthy.
    pub retries: u32,
    /// Grace period after start.
    pub start_period: u32,
}

/// The log driver and its options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    /// `awslogs`.
    pub log_driver: String,
    /// `awslogs-group`, `awslogs-region`, `awslogs-stream-prefix`.
    pub options: BTreeMap<String, String>,
}

/// The non-root user of the image (distroless's `nonroot`).
pub(crate) const USER: &str = "65532:65532";

/// The image placeholder of the generated task definition.
const IMAGE: &str = "${IMAGE}";

/// The health-check command inside the image.
pub(crate) fn probe_command(binary: &str, port: u16) -> Vec<String> {
    vec![
        format!("/{binary}"),
        "health-probe".to_owned(),
        format!("-addr=127.0.0.1:{port}"),
    ]
}

fn variable(name: &str, value: impl Into<String>) -> NameValue {
    NameValue {
        name: name.to_owned(),
        value: value.into(),
    }
}

pub(super) fn task_definition(
    config: &Config,
    (family, binary): (&str, &str),
    (task_role, execution_role): (&str, &str),
    log_group: &str,
    tables: &[Table],
    target: Target<'_>,
) -> TaskDefinition {
    let deploy = &config.deploy;
    let mut environment = vec![
        variable("LISTEN_ADDR", format!("0.0.0.0:{}", deploy.port)),
        variable("AWS_REGION", target.region),
        variable(
            "SHUTDOWN_TIMEOUT_SECS",
            deploy.shutdown_timeout().to_string(),
        ),
        variable("SHUTDOWN_DELAY_SECS", deploy.shutdown_delay().to_string()),
        variable("RUST_LOG", "info"),
        // The `Service` dimension of the metrics, which the dashboard and alarms select.
        variable("OTEL_SERVICE_NAME", family),
    ];
    environment.extend(tables.iter().map(|t| variable(&t.variable, &t.physical)));
    let mut command = vec!["CMD".to_owned()];
    command.extend(probe_command(binary, deploy.port));
    TaskDefinition {
        family: family.to_owned(),
        network_mode: "awsvpc".into(),
        requires_compatibilities: vec!["FARGATE".into()],
        cpu: deploy.cpu.to_string(),
        memory: deploy.memory.to_string(),
        runtime_platform: RuntimePlatform {
            cpu_architecture: deploy.architecture.ecs().into(),
            operating_system_family: "LINUX".into(),
        },
        task_role_arn: task_role.to_owned(),
        execution_role_arn: execution_role.to_owned(),
        container_definitions: vec![Container {
            name: binary.to_owned(),
            image: IMAGE.to_owned(),
            essential: true,
            port_mappings: vec![PortMapping {
                name: "grpc".into(),
                container_port: deploy.port,
                protocol: "tcp".into(),
                app_protocol: "grpc".into(),
            }],
            environment,
            health_check: HealthCheck {
                command,
                interval: deploy.health_check.interval,
                timeout: deploy.health_check.timeout,
                retries: deploy.health_check.retries,
                start_period: deploy.health_check.start_period,
            },
            log_configuration: LogConfiguration {
                log_driver: "awslogs".into(),
                options: BTreeMap::from([
                    ("awslogs-group".to_owned(), log_group.to_owned()),
                    ("awslogs-region".to_owned(), target.region.to_owned()),
                    ("awslogs-stream-prefix".to_owned(), binary.to_owned()),
                ]),
            },
            user: USER.into(),
            readonly_root_filesystem: true,
            stop_timeout: deploy.stop_timeout,
        }],
    }
}

impl TaskDefinition {
    /// The fields that differ from `other` (e.g. the revision ECS has, read back into this
    /// type), by their names in the API, for the progress line. The order of environment
    /// variables is not a difference: ECS does not keep it.
    pub fn differences(&self, other: &Self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let mut compare = |name, differs: bool| {
            if differs && !fields.contains(&name) {
                fields.push(name);
            }
        };
        compare("family", self.family != other.family);
        compare("networkMode", self.network_mode != other.network_mode);
        compare(
            "requiresCompatibilities",
            self.requires_compatibilities != other.requires_compatibilities,
        );
        compare("cpu", self.cpu != other.cpu);
        compare("memory", self.memory != other.memory);
        compare(
            "runtimePlatform",
            self.runtime_platform != other.runtime_platform,
        );
        compare("taskRoleArn", self.task_role_arn != other.task_role_arn);
        compare(
            "executionRoleArn",
            self.execution_role_arn != other.execution_role_arn,
        );
        let (ours, theirs) = (&self.container_definitions, &other.container_definitions);
        if ours.len() != theirs.len() {
            compare("containerDefinitions", true);
            return fields;
        }
        let sorted = |c: &Container| {
            let mut environment = c.environment.clone();
            environment.sort();
            environment
        };
        for (a, b) in ours.iter().zip(theirs) {
            compare("container name", a.name != b.name);
            compare("image", a.image != b.image);
            compare("essential", a.essential != b.essential);
            compare("portMappings", a.port_mappings != b.port_mappings);
            compare("environment", sorted(a) != sorted(b));
            compare("healthCheck", a.health_check != b.health_check);
            compare(
                "logConfiguration",
                a.log_configuration != b.log_configuration,
            );
            compare("user", a.user != b.user);
            compare(
                "readonlyRootFilesystem",
                a.readonly_root_filesystem != b.readonly_root_filesystem,
            );
            compare("stopTimeout", a.stop_timeout != b.stop_timeout);
        }
        fields
    }
}
