//! The task definition: one type, serialized as `deploy/task-definition.json` (the
//! `RegisterTaskDefinition` input), registered by `svcgen deploy` and compared with the
//! revision ECS has.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Table, Target};
use crate::config::{Collector, Config};

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
    /// The service's container first, then the collector's when `[deploy.observability]`
    /// runs one.
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
    /// The service's name, or the collector's (`otel-collector`).
    pub name: String,
    /// The image URI.
    pub image: String,
    /// Whether the task stops when this container stops: the service's `true`, the
    /// collector's `false`.
    pub essential: bool,
    /// The arguments replacing the image's `CMD` (the collector's configuration); empty: the
    /// image's own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Containers ECS starts before this one and stops after it (the service's: the
    /// collector).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    /// The service's gRPC port; none for the collector (the service reaches it on
    /// `localhost`: containers of an awsvpc task share one network namespace).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    /// What the container reads at start.
    pub environment: Vec<NameValue>,
    /// The probe inside the image.
    pub health_check: HealthCheck,
    /// awslogs.
    pub log_configuration: LogConfiguration,
    /// The image's non-root user.
    pub user: String,
    /// `true`.
    pub readonly_root_filesystem: bool,
    /// Seconds between SIGTERM and SIGKILL.
    pub stop_timeout: u32,
}

/// A container another one depends on (`dependsOn`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    /// The container depended on.
    pub container_name: String,
    /// `START`: it has started (not necessarily healthy yet).
    pub condition: String,
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

/// The collector's container name.
pub(super) const COLLECTOR: &str = "otel-collector";

/// The user of the ADOT collector image (`aoc`).
const COLLECTOR_USER: &str = "4317:4317";

/// Where the service sends its spans: the collector's OTLP/gRPC receiver, in the same task.
const COLLECTOR_ENDPOINT: &str = "http://localhost:4317";

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
    let observability = &deploy.observability;
    let log_configuration = |stream_prefix: &str| LogConfiguration {
        log_driver: "awslogs".into(),
        options: BTreeMap::from([
            ("awslogs-group".to_owned(), log_group.to_owned()),
            ("awslogs-region".to_owned(), target.region.to_owned()),
            ("awslogs-stream-prefix".to_owned(), stream_prefix.to_owned()),
        ]),
    };
    // The ADOT image's bundled traces-only configuration (OTLP in on 4317 and 4318, X-Ray out
    // through the `awsxray` exporter: PutTraceSegments only) and its health check binary (the
    // health_check extension on 127.0.0.1:13133). The service depends on its start, so an image
    // that cannot be pulled fails the task's start; once started it is not essential: when it
    // stops, the service keeps serving (and logs that spans cannot be sent).
    let collector = (observability.collector == Collector::Adot).then(|| Container {
        name: COLLECTOR.to_owned(),
        image: observability.collector_image.clone(),
        essential: false,
        command: vec!["--config=/etc/ecs/ecs-xray.yaml".to_owned()],
        depends_on: Vec::new(),
        port_mappings: Vec::new(),
        environment: vec![variable("AWS_REGION", target.region)],
        health_check: HealthCheck {
            command: vec!["CMD".to_owned(), "/healthcheck".to_owned()],
            interval: 15,
            timeout: 5,
            retries: 3,
            start_period: 10,
        },
        log_configuration: log_configuration(COLLECTOR),
        user: COLLECTOR_USER.to_owned(),
        readonly_root_filesystem: true,
        stop_timeout: deploy.stop_timeout,
    });
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
    if collector.is_some() {
        environment.extend([
            variable("OTEL_EXPORTER_OTLP_ENDPOINT", COLLECTOR_ENDPOINT),
            variable("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            variable(
                "OTEL_TRACES_SAMPLER_ARG",
                observability.trace_sample_rate.to_string(),
            ),
            // With an endpoint the service would send its metrics over OTLP; the dashboard and
            // alarms read the EMF ones.
            variable("METRICS", "emf"),
        ]);
    }
    let mut command = vec!["CMD".to_owned()];
    command.extend(probe_command(binary, deploy.port));
    let service = Container {
        name: binary.to_owned(),
        image: IMAGE.to_owned(),
        essential: true,
        command: Vec::new(),
        // ECS starts the collector first and stops it after the service, so the spans the
        // service sends while it shuts down still arrive.
        depends_on: collector
            .iter()
            .map(|c| ContainerDependency {
                container_name: c.name.clone(),
                condition: "START".into(),
            })
            .collect(),
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
        log_configuration: log_configuration(binary),
        user: USER.into(),
        readonly_root_filesystem: true,
        stop_timeout: deploy.stop_timeout,
    };
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
        container_definitions: std::iter::once(service).chain(collector).collect(),
    }
}

impl TaskDefinition {
    /// This definition with container `name` (the service's) running `image`; a collector
    /// beside it keeps its own.
    pub fn with_image(&self, name: &str, image: &str) -> Self {
        let mut definition = self.clone();
        for container in &mut definition.container_definitions {
            if container.name == name {
                image.clone_into(&mut container.image);
            }
        }
        definition
    }

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
            compare("command", a.command != b.command);
            compare("dependsOn", a.depends_on != b.depends_on);
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
