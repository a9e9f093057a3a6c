//! The generated `deploy/task-definition.json`, read back as the `RegisterTaskDefinition`
//! request it describes, and compared with the revision ECS has.

use std::collections::BTreeMap;

use aws_sdk_ecs::error::BuildError;
use aws_sdk_ecs::types as ecs;
use serde::Deserialize;

use super::{AwsError, Failure};

/// The fields svcgen generates. Unknown fields are an error, so the generator and this reader
/// cannot drift apart silently.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Spec {
    pub(super) family: String,
    network_mode: String,
    requires_compatibilities: Vec<String>,
    cpu: String,
    memory: String,
    runtime_platform: Platform,
    task_role_arn: String,
    execution_role_arn: String,
    pub(super) container_definitions: Vec<Container>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Platform {
    cpu_architecture: String,
    operating_system_family: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Container {
    pub(super) name: String,
    pub(super) image: String,
    essential: bool,
    port_mappings: Vec<Port>,
    environment: Vec<Variable>,
    health_check: HealthCheck,
    log_configuration: Log,
    user: String,
    readonly_root_filesystem: bool,
    stop_timeout: i32,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Port {
    name: String,
    container_port: i32,
    protocol: String,
    app_protocol: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct Variable {
    name: String,
    value: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HealthCheck {
    command: Vec<String>,
    interval: i32,
    timeout: i32,
    retries: i32,
    start_period: i32,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Log {
    log_driver: String,
    options: BTreeMap<String, String>,
}

/// `arn:aws:iam::ACCOUNT:role/PATH/NAME` → NAME.
fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl Container {
    /// A container definition as ECS has it, in the shape svcgen generates.
    fn from_ecs(c: &ecs::ContainerDefinition) -> Self {
        let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
        Container {
            name: text(c.name()),
            image: text(c.image()),
            essential: c.essential().unwrap_or(false),
            port_mappings: c
                .port_mappings()
                .iter()
                .map(|p| Port {
                    name: text(p.name()),
                    container_port: p.container_port().unwrap_or_default(),
                    protocol: p
                        .protocol()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    app_protocol: p
                        .app_protocol()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                })
                .collect(),
            environment: c
                .environment()
                .iter()
                .map(|v| Variable {
                    name: text(v.name()),
                    value: text(v.value()),
                })
                .collect(),
            health_check: c
                .health_check()
                .map(|h| HealthCheck {
                    command: h.command().to_vec(),
                    interval: h.interval().unwrap_or_default(),
                    timeout: h.timeout().unwrap_or_default(),
                    retries: h.retries().unwrap_or_default(),
                    start_period: h.start_period().unwrap_or_default(),
                })
                .unwrap_or_else(|| HealthCheck {
                    command: Vec::new(),
                    interval: 0,
                    timeout: 0,
                    retries: 0,
                    start_period: 0,
                }),
            log_configuration: Log {
                log_driver: c
                    .log_configuration()
                    .map(|l| l.log_driver().as_str().to_owned())
                    .unwrap_or_default(),
                options: c
                    .log_configuration()
                    .and_then(|l| l.options())
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            },
            user: text(c.user()),
            readonly_root_filesystem: c.readonly_root_filesystem().unwrap_or(false),
            stop_timeout: c.stop_timeout().unwrap_or_default(),
        }
    }
}

impl Spec {
    /// Parses the generated JSON after its `${…}` placeholders were filled in.
    pub(super) fn parse(json: &str) -> Result<Self, serde_json::Error> {
        let mut spec: Self = serde_json::from_str(json)?;
        spec.normalize();
        Ok(spec)
    }

    /// The names of the task role and the execution role.
    pub(super) fn roles(&self) -> (&str, &str) {
        (
            role_name(&self.task_role_arn),
            role_name(&self.execution_role_arn),
        )
    }

    /// The log group the first container writes to.
    pub(super) fn log_group(&self) -> Option<&str> {
        self.container_definitions
            .first()?
            .log_configuration
            .options
            .get("awslogs-group")
            .map(String::as_str)
    }

    /// ECS does not promise the order of environment variables.
    fn normalize(&mut self) {
        for container in &mut self.container_definitions {
            container.environment.sort();
        }
    }

    /// The revision ECS has, in the same shape (fields svcgen does not set are ignored).
    pub(super) fn from_ecs(registered: &ecs::TaskDefinition) -> Self {
        let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
        let mut spec = Self {
            family: text(registered.family()),
            network_mode: registered
                .network_mode()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
            requires_compatibilities: registered
                .requires_compatibilities()
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            cpu: text(registered.cpu()),
            memory: text(registered.memory()),
            runtime_platform: Platform {
                cpu_architecture: registered
                    .runtime_platform()
                    .and_then(|p| p.cpu_architecture())
                    .map(|a| a.as_str().to_owned())
                    .unwrap_or_default(),
                operating_system_family: registered
                    .runtime_platform()
                    .and_then(|p| p.operating_system_family())
                    .map(|f| f.as_str().to_owned())
                    .unwrap_or_default(),
            },
            task_role_arn: text(registered.task_role_arn()),
            execution_role_arn: text(registered.execution_role_arn()),
            container_definitions: registered
                .container_definitions()
                .iter()
                .map(Container::from_ecs)
                .collect(),
        };
        spec.normalize();
        spec
    }

    /// The fields that differ from `other`, by name, for the progress line.
    pub(super) fn differences(&self, other: &Self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        let mut compare = |name, differs: bool| {
            if differs {
                fields.push(name);
            }
        };
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
        } else {
            for (a, b) in ours.iter().zip(theirs) {
                compare("container name", a.name != b.name);
                compare("image", a.image != b.image);
                compare("essential", a.essential != b.essential);
                compare("portMappings", a.port_mappings != b.port_mappings);
                compare("environment", a.environment != b.environment);
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
        }
        fields
    }

    /// The container definitions as the SDK's request types.
    pub(super) fn ecs_containers(&self) -> Result<Vec<ecs::ContainerDefinition>, BuildError> {
        self.container_definitions
            .iter()
            .map(|c| {
                let health = &c.health_check;
                Ok(ecs::ContainerDefinition::builder()
                    .name(&c.name)
                    .image(&c.image)
                    .essential(c.essential)
                    .set_port_mappings(Some(
                        c.port_mappings
                            .iter()
                            .map(|p| {
                                ecs::PortMapping::builder()
                                    .name(&p.name)
                                    .container_port(p.container_port)
                                    .protocol(p.protocol.as_str().into())
                                    .app_protocol(p.app_protocol.as_str().into())
                                    .build()
                            })
                            .collect(),
                    ))
                    .set_environment(Some(
                        c.environment
                            .iter()
                            .map(|v| {
                                ecs::KeyValuePair::builder()
                                    .name(&v.name)
                                    .value(&v.value)
                                    .build()
                            })
                            .collect(),
                    ))
                    .health_check(
                        ecs::HealthCheck::builder()
                            .set_command(Some(health.command.clone()))
                            .interval(health.interval)
                            .timeout(health.timeout)
                            .retries(health.retries)
                            .start_period(health.start_period)
                            .build()?,
                    )
                    .log_configuration(
                        ecs::LogConfiguration::builder()
                            .log_driver(c.log_configuration.log_driver.as_str().into())
                            .set_options(Some(
                                c.log_configuration
                                    .options
                                    .iter()
                                    .map(|(k, v)| (k.clone(), v.clone()))
                                    .collect(),
                            ))
                            .build()?,
                    )
                    .user(&c.user)
                    .readonly_root_filesystem(c.readonly_root_filesystem)
                    .stop_timeout(c.stop_timeout)
                    .build())
            })
            .collect()
    }

    /// Registers this definition as a new revision; returns its ARN.
    pub(super) async fn register(&self, client: &aws_sdk_ecs::Client) -> Result<String, Failure> {
        let registered = client
            .register_task_definition()
            .family(&self.family)
            .network_mode(self.network_mode.as_str().into())
            .set_requires_compatibilities(Some(
                self.requires_compatibilities
                    .iter()
                    .map(|c| c.as_str().into())
                    .collect(),
            ))
            .cpu(&self.cpu)
            .memory(&self.memory)
            .runtime_platform(
                ecs::RuntimePlatform::builder()
                    .cpu_architecture(self.runtime_platform.cpu_architecture.as_str().into())
                    .operating_system_family(
                        self.runtime_platform
                            .operating_system_family
                            .as_str()
                            .into(),
                    )
                    .build(),
            )
            .task_role_arn(&self.task_role_arn)
            .execution_role_arn(&self.execution_role_arn)
            .set_container_definitions(Some(self.ecs_containers()?))
            .send()
            .await
            .map_err(|e| AwsError::call("ecs:RegisterTaskDefinition", e))?;
        let arn = registered
            .task_definition()
            .and_then(|t| t.task_definition_arn())
            .ok_or(AwsError::Unexpected {
                operation: "ecs:RegisterTaskDefinition",
                returned: "no ARN",
            })?;
        Ok(arn.to_owned())
    }
}
