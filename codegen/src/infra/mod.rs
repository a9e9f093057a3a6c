//! The infrastructure of a project as one desired-state model: every AWS resource svcgen
//! creates, with its name and settings, derived once from `svcgen.toml` and the model. The
//! generated artifacts (`deploy/**`, the CloudFormation template), `svcgen deploy`, `svcgen
//! status`, `svcgen table create` and `svcgen breaking` all read it; none of them derives a name
//! or a setting of its own.
//!
//! ARNs depend on where the service runs ([`Target`]): the JSON artifacts are built for
//! placeholders (`${AWS_ACCOUNT_ID}`, filled in at deploy time), the template for
//! CloudFormation's pseudo parameters, `svcgen deploy` for the caller's account.

mod iam;
pub mod monitoring;
mod task_definition;

pub(crate) use iam::pascal_case;
pub use iam::{Condition, PolicyDocument, Statement};
pub use monitoring::Monitoring;
pub use task_definition::{
    Container, ContainerDependency, HealthCheck, LogConfiguration, NameValue, PortMapping,
    RuntimePlatform, TaskDefinition,
};
pub(crate) use task_definition::{USER, probe_command};

use serde::Serialize;
use svcgen_contract::tables;

use crate::config::{Collector, Config, DnsRecordType};
use crate::model::Model;

/// Where the resources live: the parts of every ARN that are not names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target<'a> {
    /// `aws`, `aws-cn` or `aws-us-gov`: IAM refuses another partition's ARNs.
    pub partition: &'a str,
    /// The region, e.g. `eu-west-1`.
    pub region: &'a str,
    /// The account ID.
    pub account: &'a str,
}

impl Target<'static> {
    /// The placeholders of the generated JSON artifacts, substituted at deploy time (by
    /// `svcgen deploy`, or e.g. `envsubst`).
    pub const PLACEHOLDERS: Self = Self {
        partition: "${AWS_PARTITION}",
        region: "${AWS_REGION}",
        account: "${AWS_ACCOUNT_ID}",
    };

    /// CloudFormation's pseudo parameters (the template wraps such values in `!Sub`).
    pub const CLOUDFORMATION: Self = Self {
        partition: "${AWS::Partition}",
        region: "${AWS::Region}",
        account: "${AWS::AccountId}",
    };
}

impl Target<'_> {
    /// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }

    /// An IAM ARN (IAM is global: no region).
    fn iam_arn(&self, resource: &str) -> String {
        format!("arn:{}:iam::{}:{resource}", self.partition, self.account)
    }
}

/// Everything svcgen creates for one service in one environment.
#[derive(Clone, Debug, Serialize)]
pub struct Infrastructure {
    /// The name every resource is named after: the service name, with `-<environment>` in an
    /// environment.
    pub name: String,
    /// The service's binary and container name (`[service] name`).
    pub binary: String,
    /// The ECR repository.
    pub repository: Repository,
    /// The DynamoDB tables.
    pub tables: Vec<Table>,
    /// The tasks' role: the DynamoDB actions of the RPCs (and X-Ray's, with a collector).
    pub task_role: Role,
    /// The execution role: pull the image, write the logs.
    pub execution_role: Role,
    /// Who may assume both roles.
    pub trust_policy: PolicyDocument,
    /// The ECS cluster.
    pub cluster: Cluster,
    /// The log group the containers write to.
    pub log_group: LogGroup,
    /// The task definition, as `RegisterTaskDefinition` takes it (image `${IMAGE}` until
    /// deploy sets it).
    pub task_definition: TaskDefinition,
    /// The ALB target group (gRPC).
    pub target_group: TargetGroup,
    /// The rule on the shared HTTPS listener.
    pub listener_rule: ListenerRule,
    /// Cloud Map.
    pub discovery: Discovery,
    /// The ECS service.
    pub service: Service,
    /// The CloudWatch dashboard and alarms.
    pub monitoring: Monitoring,
}

/// The ECR repository.
#[derive(Clone, Debug, Serialize)]
pub struct Repository {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// The lifecycle policy, as JSON text.
    pub lifecycle_policy: String,
    /// How many images the lifecycle policy keeps.
    pub keep_images: u32,
}

/// A DynamoDB table in svcgen's layout (`pk`/`sk`, `<index>pk`/`<index>sk`, TTL on `ttl`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Logical name (from the entity annotations).
    pub logical: String,
    /// Physical name.
    pub physical: String,
    /// The environment variable the service reads the physical name from.
    pub variable: String,
    /// Global secondary indexes.
    pub indexes: Vec<String>,
}

/// An IAM role with one inline policy.
#[derive(Clone, Debug, Serialize)]
pub struct Role {
    /// Its name.
    pub name: String,
    /// Its ARN.
    pub arn: String,
    /// A sentence for IAM's description.
    pub description: String,
    /// The inline policy's name.
    pub policy_name: &'static str,
    /// The inline policy.
    pub policy: PolicyDocument,
}

/// The ECS cluster.
#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    /// Its name: `[aws] cluster`, else the service's.
    pub name: String,
    /// Whether it is the service's own (svcgen sets its Container Insights) rather than a
    /// shared one named in `[aws] cluster` (whose owners choose).
    pub own: bool,
    /// Container Insights on or off.
    pub container_insights: bool,
}

impl Cluster {
    /// ECS's value of the `containerInsights` setting.
    pub fn container_insights_setting(&self) -> &'static str {
        if self.container_insights {
            "enabled"
        } else {
            "disabled"
        }
    }
}

/// The CloudWatch log group.
#[derive(Clone, Debug, Serialize)]
pub struct LogGroup {
    /// Its name, `/ecs/<name>`.
    pub name: String,
    /// Its ARN (the execution role's policy: `…:log-group:NAME:*`).
    pub arn: String,
    /// Days CloudWatch keeps the logs.
    pub retention_days: u32,
}

/// The ALB target group: gRPC to the tasks' IPs, healthy when `grpc.health.v1.Health/Check`
/// answers OK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetGroup {
    /// Its name (at most 32 characters).
    pub name: String,
    /// The container port.
    pub port: u16,
    /// The health check's path.
    pub health_check_path: &'static str,
    /// The gRPC codes that count as healthy.
    pub matcher: &'static str,
    /// Seconds between health checks.
    pub health_check_interval: u32,
    /// Seconds before a check fails.
    pub health_check_timeout: u32,
    /// Passing checks before a target receives traffic.
    pub healthy_threshold: u32,
    /// Failing checks before a target is taken out.
    pub unhealthy_threshold: u32,
    /// Seconds a deregistering target keeps its in-flight calls.
    pub deregistration_delay: u32,
}

/// The values an ALB rule condition matches at most.
const MAX_RULE_PATHS: usize = 3;

/// The gRPC health service's paths.
pub const HEALTH_PATHS: &str = "/grpc.health.v1.Health/*";

/// The attribute of a target group's deregistration delay.
pub const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

/// The rule on the shared HTTPS listener that forwards the service's paths.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListenerRule {
    /// Its priority on the listener.
    pub priority: u32,
    /// `/<package>.<Service>/*` of every service, sorted (with a domain, the health service's
    /// too).
    pub path_patterns: Vec<String>,
    /// The host name the rule matches too (`[deploy] domain`), if any.
    pub host: Option<String>,
}

/// Cloud Map: a private DNS namespace and the service's records in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// The namespace, by default `<name>.local`.
    pub namespace: String,
    /// The service's name in it.
    pub service: String,
    /// A or SRV.
    pub record_type: DnsRecordType,
    /// The records' TTL in seconds.
    pub ttl: u32,
}

impl Discovery {
    /// The name clients resolve, `<service>.<namespace>`.
    pub fn dns_name(&self) -> String {
        format!("{}.{}", self.service, self.namespace)
    }
}

/// The ECS service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Its name.
    pub name: String,
    /// Tasks wanted.
    pub desired_count: u32,
    /// Seconds ECS ignores the load balancer's health checks after a task starts.
    pub health_check_grace_period: u32,
    /// The container the load balancer and Cloud Map send to.
    pub container_name: String,
    /// The container port.
    pub container_port: u16,
    /// Whether the Cloud Map registry names the container and port (SRV records).
    pub registry_names_container: bool,
    /// A deployment keeps this share of the tasks healthy…
    pub minimum_healthy_percent: u32,
    /// …and runs at most this share.
    pub maximum_percent: u32,
}

impl Infrastructure {
    /// The infrastructure of `config` + `model` in `target`.
    pub fn new(config: &Config, model: &Model, target: Target<'_>) -> Self {
        let binary = config.service.name.clone();
        let name = config.resource_name();
        let deploy = &config.deploy;
        let tables = model
            .tables
            .iter()
            .map(|(logical, indexes)| Table {
                logical: logical.clone(),
                physical: config.physical_table(logical),
                variable: tables::deployed_table_variable(logical, model.tables.len()),
                indexes: indexes.clone(),
            })
            .collect::<Vec<_>>();
        let repository = Repository {
            arn: target.arn("ecr", &format!("repository/{name}")),
            lifecycle_policy: lifecycle_policy(deploy.keep_images),
            keep_images: deploy.keep_images,
            name: name.clone(),
        };
        let log_group_name = format!("/ecs/{name}");
        let log_group = LogGroup {
            arn: target.arn("logs", &format!("log-group:{log_group_name}:*")),
            name: log_group_name,
            retention_days: deploy.log_retention_days,
        };
        let grants = iam::table_grants(model, &tables, target);
        let role = |suffix: &str, description: String, policy_name, policy| {
            let name = format!("{name}-{suffix}");
            Role {
                arn: target.iam_arn(&format!("role/{name}")),
                name,
                description,
                policy_name,
                policy,
            }
        };
        let task_role = role(
            "task",
            format!("{name} tasks: exactly the DynamoDB actions its RPCs perform"),
            "dynamodb",
            iam::task_role_policy(&grants, deploy.observability.collector == Collector::Adot),
        );
        let execution_role = role(
            "execution",
            format!("{name} task execution: pull this repository's image, write this log group"),
            "pull-and-log",
            iam::execution_role_policy(&repository.arn, &log_group.arn),
        );
        let cluster = Cluster {
            own: config.aws.cluster.is_none(),
            name: config.aws.cluster.clone().unwrap_or_else(|| name.clone()),
            container_insights: deploy.container_insights,
        };
        let task_definition = task_definition::task_definition(
            config,
            (&name, &binary),
            (&task_role.arn, &execution_role.arn),
            &log_group.name,
            &tables,
            target,
        );
        let mut path_patterns: Vec<String> = model
            .services
            .iter()
            .map(|s| format!("/{}/*", s.full_name))
            .collect();
        // The domain is the service's own: its health is reachable there too (`svcgen verify`).
        if deploy.domain.is_some() {
            path_patterns.push(HEALTH_PATHS.to_owned());
        }
        path_patterns.sort();
        let target_group = &deploy.target_group;
        let physical_tables: Vec<String> = tables.iter().map(|t| t.physical.clone()).collect();
        Self {
            monitoring: Monitoring::new(
                &name,
                model,
                &physical_tables,
                target.region,
                &deploy.alarms,
            ),
            trust_policy: iam::trust_policy(target),
            repository,
            tables,
            task_role,
            execution_role,
            cluster,
            log_group,
            task_definition,
            target_group: TargetGroup {
                name: name.clone(),
                port: deploy.port,
                health_check_path: "/grpc.health.v1.Health/Check",
                matcher: "0",
                health_check_interval: target_group.health_check_interval,
                health_check_timeout: target_group.health_check_timeout,
                healthy_threshold: target_group.healthy_threshold,
                unhealthy_threshold: target_group.unhealthy_threshold,
                deregistration_delay: target_group.deregistration_delay,
            },
            listener_rule: ListenerRule {
                priority: deploy.listener_rule_priority,
                path_patterns,
                host: deploy.domain.clone(),
            },
            discovery: Discovery {
                namespace: config.namespace(),
                service: discovery_service(config, model),
                record_type: deploy.cloud_map.record_type,
                ttl: deploy.dns_ttl(),
            },
            service: Service {
                name: name.clone(),
                desired_count: deploy.desired_count,
                health_check_grace_period: deploy.health_check.start_period,
                container_name: binary.clone(),
                container_port: deploy.port,
                registry_names_container: deploy.cloud_map.record_type == DnsRecordType::Srv,
                minimum_healthy_percent: 100,
                maximum_percent: 200,
            },
            name,
            binary,
        }
    }

    /// What AWS would refuse in the infrastructure of `config` + `model`, in every environment:
    /// an ALB rule condition matches at most three values (and a rule five wildcards), so the
    /// listener rule routes at most three paths.
    pub fn check(config: &Config, model: &Model) -> Result<(), crate::config::ConfigError> {
        let environments = config
            .environments
            .keys()
            .map(|name| config.for_environment(name))
            .collect::<Result<Vec<_>, _>>()?;
        for config in std::iter::once(config).chain(&environments) {
            let rule = Self::generated(config, model).listener_rule;
            if rule.path_patterns.len() > MAX_RULE_PATHS {
                let refused = crate::config::ConfigError::Refused {
                    setting: "deploy.domain",
                    value: format!("{:?}", rule.host.unwrap_or_default()),
                    reason: format!(
                        "the listener rule would route {} paths ({}), and an ALB rule condition matches at most {MAX_RULE_PATHS}: a domain routes the health service too, so leave it unset or split the services",
                        rule.path_patterns.len(),
                        rule.path_patterns.join(", ")
                    ),
                };
                return Err(match &config.environment {
                    Some(environment) => crate::config::ConfigError::InEnvironment {
                        name: environment.name.clone(),
                        problem: Box::new(refused),
                    },
                    None => refused,
                });
            }
        }
        Ok(())
    }

    /// The infrastructure as the generated artifacts describe it (ARNs with placeholders).
    pub fn generated(config: &Config, model: &Model) -> Self {
        Self::new(config, model, Target::PLACEHOLDERS)
    }
}

/// The ECR lifecycle policy keeping the newest `keep` images, as JSON text.
fn lifecycle_policy(keep: u32) -> String {
    serde_json::json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the newest {keep} images"),
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": keep,
            },
            "action": { "type": "expire" },
        }]
    })
    .to_string()
}

/// The Cloud Map service name: `[deploy.cloud_map] service`, by default the last segment of
/// the proto package that is not a version (`acme.projects.v1` → `projects`).
fn discovery_service(config: &Config, model: &Model) -> String {
    if let Some(service) = &config.deploy.cloud_map.service {
        return service.clone();
    }
    let is_version = |segment: &str| {
        segment.strip_prefix('v').is_some_and(|rest| {
            rest.starts_with(|c: char| c.is_ascii_digit())
                && rest.chars().all(|c| c.is_ascii_alphanumeric())
        })
    };
    model
        .services
        .first()
        .and_then(|s| s.full_name.rsplit_once('.'))
        .and_then(|(package, _)| package.rsplit('.').find(|s| !is_version(s)))
        .map_or_else(|| config.service.name.clone(), |s| s.replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::valid_service_name;

    /// AWS's documented rules for each name svcgen gives a resource.
    fn fits_aws_limits(infra: &Infrastructure) -> Result<(), String> {
        let lower_alnum = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        };
        let check = |ok: bool, what: &str, name: &str| {
            if ok {
                Ok(())
            } else {
                Err(format!("{what} {name:?}"))
            }
        };
        // Target group: 1-32 alphanumerics and hyphens, not beginning or ending with a hyphen.
        let group = &infra.target_group.name;
        check(
            group.len() <= 32
                && !group.starts_with('-')
                && !group.ends_with('-')
                && group.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "target group",
            group,
        )?;
        // ECR repository: 2-256, lower-case alphanumerics joined by one of . _ -.
        let repository = &infra.repository.name;
        check(
            (2..=256).contains(&repository.len())
                && repository.split(['.', '_', '-']).all(lower_alnum),
            "ECR repository",
            repository,
        )?;
        // IAM roles: 1-64 of [\w+=,.@-].
        for role in [&infra.task_role.name, &infra.execution_role.name] {
            check(
                role.len() <= 64
                    && role
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
                "IAM role",
                role,
            )?;
        }
        // ECS cluster, service and family: 1-255 letters, digits, hyphens, underscores.
        for name in [
            &infra.cluster.name,
            &infra.service.name,
            &infra.task_definition.family,
        ] {
            check(
                (1..=255).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "ECS name",
                name,
            )?;
        }
        // Log group: 1-512 of [.-_/#A-Za-z0-9].
        let log_group = &infra.log_group.name;
        check(
            log_group.len() <= 512
                && log_group
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c)),
            "log group",
            log_group,
        )?;
        // DynamoDB tables: 3-255 of [a-zA-Z0-9_.-].
        for table in &infra.tables {
            let name = &table.physical;
            check(
                (3..=255).contains(&name.len())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                "DynamoDB table",
                name,
            )?;
        }
        // Cloud Map: DNS names of labels of at most 63 characters, at most 253 in all.
        let dns = infra.discovery.dns_name();
        check(
            dns.len() <= 253
                && dns
                    .split('.')
                    .all(|label| (1..=63).contains(&label.len()) && !label.starts_with('-')),
            "Cloud Map name",
            &dns,
        )
    }

    #[test]
    fn a_collector_runs_beside_the_service_and_may_write_traces_only_when_configured() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated-example");
        let project = crate::load(&dir).expect("the example loads");
        let plain = Infrastructure::generated(&project.config, &project.model);
        let [service] = plain.task_definition.container_definitions.as_slice() else {
            panic!("one container without a collector");
        };
        assert!(service.depends_on.is_empty() && service.command.is_empty());
        let variables: Vec<&str> = service
            .environment
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert!(
            !variables.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT") && !variables.contains(&"METRICS")
        );
        assert!(
            plain
                .task_role
                .policy
                .statement
                .iter()
                .all(|s| s.action.iter().all(|a| a.starts_with("dynamodb:"))),
            "{:?}",
            plain.task_role.policy
        );

        let mut config = project.config.clone();
        config.deploy.observability.collector = Collector::Adot;
        config.deploy.observability.trace_sample_rate = 0.25;
        let traced = Infrastructure::generated(&config, &project.model);
        let [service, collector] = traced.task_definition.container_definitions.as_slice() else {
            panic!("the service's container, then the collector's");
        };
        assert_eq!(collector.name, task_definition::COLLECTOR);
        assert_eq!(collector.image, config.deploy.observability.collector_image);
        assert!(!collector.essential && collector.readonly_root_filesystem);
        assert_eq!(collector.command, ["--config=/etc/ecs/ecs-xray.yaml"]);
        assert!(collector.port_mappings.is_empty() && collector.depends_on.is_empty());
        assert_eq!(collector.user, "4317:4317");
        assert_eq!(collector.health_check.command, ["CMD", "/healthcheck"]);
        assert_eq!(
            collector.environment,
            [NameValue {
                name: "AWS_REGION".into(),
                value: "${AWS_REGION}".into()
            }]
        );
        assert_eq!(collector.stop_timeout, service.stop_timeout);
        let options = &collector.log_configuration.options;
        assert_eq!(
            options["awslogs-group"],
            service.log_configuration.options["awslogs-group"]
        );
        assert_eq!(options["awslogs-stream-prefix"], "otel-collector");
        assert_eq!(
            service.depends_on,
            [ContainerDependency {
                container_name: "otel-collector".into(),
                condition: "START".into()
            }]
        );
        let added: Vec<(&str, &str)> = service
            .environment
            .iter()
            .skip(
                plain.task_definition.container_definitions[0]
                    .environment
                    .len(),
            )
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            added,
            [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
                ("METRICS", "emf"),
            ]
        );
        // The task role gains the one X-Ray action the collector's exporter calls (no
        // resource-level permissions), nothing else.
        let statements = &traced.task_role.policy.statement;
        let (traces, tables) = statements.split_last().expect("statements");
        assert_eq!(tables, plain.task_role.policy.statement.as_slice());
        assert_eq!(
            (
                traces.sid.as_str(),
                traces.action.as_slice(),
                traces.resource.as_slice()
            ),
            (
                "Traces",
                ["xray:PutTraceSegments".to_owned()].as_slice(),
                ["*".to_owned()].as_slice()
            )
        );
        assert_eq!(traced.execution_role.policy, plain.execution_role.policy);
        // A sidecar added or removed is a difference; deploying an image leaves the collector's.
        assert_eq!(
            traced.task_definition.differences(&plain.task_definition),
            ["containerDefinitions"]
        );
        let deployed = traced.task_definition.with_image(&traced.binary, "repo:v2");
        let images: Vec<&str> = deployed
            .container_definitions
            .iter()
            .map(|c| c.image.as_str())
            .collect();
        assert_eq!(images, ["repo:v2", collector.image.as_str()]);
    }

    #[test]
    fn every_name_derived_from_a_valid_service_name_and_environment_fits_aws_limits() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated-example");
        let project = crate::load(&dir).expect("the example loads");
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n).unwrap_or(0)
        };
        let alphabet = b"ab9z-";
        let (mut valid, mut in_environments) = (0, 0);
        for _ in 0..4000 {
            let name: String = (0..1 + next(40))
                .map(|_| char::from(alphabet[next(5)]))
                .collect();
            if !valid_service_name(&name) {
                continue;
            }
            valid += 1;
            let mut config = project.config.clone();
            config.service.name = name.clone();
            let environment: String = (0..1 + next(30))
                .map(|_| char::from(b"kq7"[next(3)]))
                .collect();
            config
                .environments
                .insert(environment.clone(), Default::default());
            for variant in [
                Some(config.clone()),
                config.for_environment(&environment).ok(),
            ]
            .into_iter()
            .flatten()
            {
                in_environments += usize::from(variant.environment.is_some());
                let infra = Infrastructure::generated(&variant, &project.model);
                if let Err(broken) = fits_aws_limits(&infra) {
                    panic!("{name} (environment {environment}) names an invalid {broken}");
                }
                let environment = variant.environment.as_ref().map(|e| e.name.as_str());
                if let Some(environment) = environment {
                    // Every resource svcgen creates carries the environment.
                    for named in [
                        &infra.name,
                        &infra.repository.name,
                        &infra.task_role.name,
                        &infra.log_group.name,
                        &infra.cluster.name,
                        &infra.task_definition.family,
                        &infra.target_group.name,
                        &infra.discovery.namespace,
                        &infra.service.name,
                        &infra.tables[0].physical,
                    ] {
                        assert!(named.contains(environment), "{named} lacks {environment}");
                    }
                }
            }
        }
        assert!(valid > 200, "the sweep reaches valid names ({valid})");
        assert!(
            in_environments > 100,
            "the sweep reaches valid environments ({in_environments})"
        );
    }
}
