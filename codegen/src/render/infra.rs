//! Infrastructure artifacts for ECS Fargate (a project's `Dockerfile`, `.dockerignore` and
//! `deploy/**`), derived from the model and `[deploy]`: the task definition and IAM policies as
//! typed JSON, the Dockerfile and the CloudFormation template from templates. Permissions are
//! computed from the RPCs: each operation adds exactly the DynamoDB action it performs, on the
//! table or on the index it queries.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use svcgen_contract::{attributes, tables};

use crate::GenerateError;
use crate::config::Config;
use crate::model::{AccessOperation, Model, Operation};
use crate::templates::Templates;

/// The DynamoDB permissions of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(super) struct TableAccess {
    /// Physical table name.
    pub(super) table: String,
    /// Actions on the table itself, e.g. `dynamodb:GetItem`.
    pub(super) actions: BTreeSet<String>,
    /// Indexes queried.
    pub(super) queried_indexes: BTreeSet<String>,
}

/// Permissions per logical table, from the operations of every RPC.
pub(super) fn table_access(config: &Config, model: &Model) -> BTreeMap<String, TableAccess> {
    let mut access: BTreeMap<String, TableAccess> = BTreeMap::new();
    // (entity, action, index queried) of every operation, declared hand-written ones included.
    let operations = model.methods().flat_map(|method| match &method.operation {
        Operation::Create { entity, .. } => vec![(*entity, "PutItem", None)],
        Operation::Get { entity } => vec![(*entity, "GetItem", None)],
        Operation::Update { entity, .. } => vec![(*entity, "UpdateItem", None)],
        Operation::Delete { entity, .. } => vec![(*entity, "DeleteItem", None)],
        Operation::List { entity, index, .. } => vec![(*entity, "Query", index.clone())],
        Operation::Custom { uses } => uses
            .iter()
            .map(|access| match &access.operation {
                AccessOperation::Create => (access.entity, "PutItem", None),
                AccessOperation::Get => (access.entity, "GetItem", None),
                AccessOperation::Update => (access.entity, "UpdateItem", None),
                AccessOperation::Delete => (access.entity, "DeleteItem", None),
                AccessOperation::Check => (access.entity, "ConditionCheckItem", None),
                AccessOperation::BatchGet => (access.entity, "BatchGetItem", None),
                AccessOperation::List { index, .. } => (access.entity, "Query", index.clone()),
            })
            .collect(),
    });
    for (entity, action, index) in operations {
        let logical = &model.entity(entity).table;
        let entry = access
            .entry(logical.clone())
            .or_insert_with(|| TableAccess {
                table: config.physical_table(logical).to_owned(),
                ..TableAccess::default()
            });
        match index {
            Some(index) => {
                entry.queried_indexes.insert(index);
            }
            None => {
                entry.actions.insert(format!("dynamodb:{action}"));
            }
        }
    }
    access
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PolicyDocument {
    pub(super) version: &'static str,
    pub(super) statement: Vec<Statement>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Statement {
    pub(super) sid: String,
    pub(super) effect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) principal: Option<BTreeMap<&'static str, &'static str>>,
    pub(super) action: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) resource: Vec<String>,
    /// Operator → condition key → value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) condition: BTreeMap<&'static str, BTreeMap<&'static str, String>>,
}

fn allow(sid: impl Into<String>, actions: &[&str], resources: Vec<String>) -> Statement {
    Statement {
        sid: sid.into(),
        effect: "Allow",
        principal: None,
        action: actions.iter().map(|a| (*a).to_owned()).collect(),
        resource: resources,
        condition: BTreeMap::new(),
    }
}

/// `(environment variable, physical table)` for every logical table: `TABLE_NAME` for a single
/// table, `TABLE_NAME_<LOGICAL>` each otherwise — what the generated service reads.
fn table_names(config: &Config, model: &Model) -> Vec<(String, String)> {
    model
        .tables
        .keys()
        .map(|logical| {
            (
                tables::deployed_table_variable(logical, model.tables.len()),
                config.physical_table(logical).to_owned(),
            )
        })
        .collect()
}

/// Placeholders in the JSON artifacts, substituted at deploy time (e.g. with `envsubst`). The
/// partition is `aws`, `aws-cn` or `aws-us-gov`: IAM refuses another partition's ARNs.
const PARTITION: &str = "${AWS_PARTITION}";
const REGION: &str = "${AWS_REGION}";
const ACCOUNT: &str = "${AWS_ACCOUNT_ID}";

fn sid(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The task role's policy: exactly the actions the RPCs perform, on the tables and indexes
/// they touch.
pub(super) fn task_role_policy(access: &BTreeMap<String, TableAccess>) -> PolicyDocument {
    let mut statement = Vec::new();
    for access in access.values() {
        let table_arn = format!(
            "arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{}",
            access.table
        );
        if !access.actions.is_empty() {
            let actions: Vec<&str> = access.actions.iter().map(String::as_str).collect();
            statement.push(allow(
                format!("{}Table", sid(&access.table)),
                &actions,
                vec![table_arn.clone()],
            ));
        }
        if !access.queried_indexes.is_empty() {
            let arns = access
                .queried_indexes
                .iter()
                .map(|i| format!("{table_arn}/index/{i}"))
                .collect();
            statement.push(allow(
                format!("{}Indexes", sid(&access.table)),
                &["dynamodb:Query"],
                arns,
            ));
        }
    }
    PolicyDocument {
        version: "2012-10-17",
        statement,
    }
}

/// The execution role's policy: pull this repository's image, write this log group.
pub(super) fn execution_role_policy(name: &str) -> PolicyDocument {
    PolicyDocument {
        version: "2012-10-17",
        statement: vec![
            // ECR authorizes per registry; this action has no resource-level permissions.
            allow(
                "EcrAuthorization",
                &["ecr:GetAuthorizationToken"],
                vec!["*".to_owned()],
            ),
            allow(
                "PullImage",
                &[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                vec![format!(
                    "arn:{PARTITION}:ecr:{REGION}:{ACCOUNT}:repository/{name}"
                )],
            ),
            allow(
                "WriteLogs",
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                vec![format!(
                    "arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{}:*",
                    log_group(name)
                )],
            ),
        ],
    }
}

/// Who may assume the task and execution roles: ECS tasks of this account and region only
/// (`aws:SourceAccount`, `aws:SourceArn`: AWS's guard against the confused deputy).
pub(super) fn trust_policy() -> PolicyDocument {
    PolicyDocument {
        version: "2012-10-17",
        statement: vec![Statement {
            sid: "EcsTasks".to_owned(),
            effect: "Allow",
            principal: Some(BTreeMap::from([("Service", "ecs-tasks.amazonaws.com")])),
            action: vec!["sts:AssumeRole".to_owned()],
            resource: Vec::new(),
            condition: BTreeMap::from([
                (
                    "ArnLike",
                    BTreeMap::from([(
                        "aws:SourceArn",
                        format!("arn:{PARTITION}:ecs:{REGION}:{ACCOUNT}:*"),
                    )]),
                ),
                (
                    "StringEquals",
                    BTreeMap::from([("aws:SourceAccount", ACCOUNT.to_owned())]),
                ),
            ]),
        }],
    }
}

/// The ECR lifecycle policy keeping the newest `keep` images, as JSON text.
pub(crate) fn lifecycle_policy(keep: u32) -> String {
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

pub(super) fn log_group(name: &str) -> String {
    format!("/ecs/{name}")
}

/// `RegisterTaskDefinition` input (`aws ecs register-task-definition --cli-input-json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TaskDefinition {
    family: String,
    network_mode: &'static str,
    requires_compatibilities: [&'static str; 1],
    cpu: String,
    memory: String,
    runtime_platform: RuntimePlatform,
    task_role_arn: String,
    execution_role_arn: String,
    container_definitions: Vec<ContainerDefinition>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimePlatform {
    cpu_architecture: &'static str,
    operating_system_family: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerDefinition {
    name: String,
    image: &'static str,
    essential: bool,
    port_mappings: Vec<PortMapping>,
    environment: Vec<NameValue>,
    health_check: HealthCheck,
    log_configuration: LogConfiguration,
    user: &'static str,
    readonly_root_filesystem: bool,
    stop_timeout: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PortMapping {
    name: &'static str,
    container_port: u16,
    protocol: &'static str,
    app_protocol: &'static str,
}

#[derive(Serialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthCheck {
    command: Vec<String>,
    interval: u32,
    timeout: u32,
    retries: u32,
    start_period: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogConfiguration {
    log_driver: &'static str,
    options: BTreeMap<&'static str, String>,
}

/// The non-root user of the image (distroless's `nonroot`).
pub(super) const USER: &str = "65532:65532";

/// The health-check command inside the image.
pub(super) fn probe_command(name: &str, port: u16) -> Vec<String> {
    vec![
        format!("/{name}"),
        "health-probe".to_owned(),
        format!("-addr=127.0.0.1:{port}"),
    ]
}

pub(super) fn task_definition(config: &Config, model: &Model) -> TaskDefinition {
    let name = &config.service.name;
    let deploy = &config.deploy;
    let mut environment = vec![
        NameValue {
            name: "LISTEN_ADDR".into(),
            value: format!("0.0.0.0:{}", deploy.port),
        },
        NameValue {
            name: "AWS_REGION".into(),
            value: REGION.into(),
        },
        NameValue {
            name: "SHUTDOWN_TIMEOUT_SECS".into(),
            value: deploy.shutdown_timeout().to_string(),
        },
        NameValue {
            name: "SHUTDOWN_DELAY_SECS".into(),
            value: deploy.shutdown_delay().to_string(),
        },
        NameValue {
            name: "RUST_LOG".into(),
            value: "info".into(),
        },
    ];
    for (variable, table) in table_names(config, model) {
        environment.push(NameValue {
            name: variable,
            value: table,
        });
    }
    let mut command = vec!["CMD".to_owned()];
    command.extend(probe_command(name, deploy.port));
    TaskDefinition {
        family: name.clone(),
        network_mode: "awsvpc",
        requires_compatibilities: ["FARGATE"],
        cpu: deploy.cpu.to_string(),
        memory: deploy.memory.to_string(),
        runtime_platform: RuntimePlatform {
            cpu_architecture: deploy.architecture.ecs(),
            operating_system_family: "LINUX",
        },
        task_role_arn: format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{name}-task"),
        execution_role_arn: format!("arn:{PARTITION}:iam::{ACCOUNT}:role/{name}-execution"),
        container_definitions: vec![ContainerDefinition {
            name: name.clone(),
            image: "${IMAGE}",
            essential: true,
            port_mappings: vec![PortMapping {
                name: "grpc",
                container_port: deploy.port,
                protocol: "tcp",
                app_protocol: "grpc",
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
                log_driver: "awslogs",
                options: BTreeMap::from([
                    ("awslogs-group", log_group(name)),
                    ("awslogs-region", REGION.to_owned()),
                    ("awslogs-stream-prefix", name.clone()),
                ]),
            },
            user: USER,
            readonly_root_filesystem: true,
            stop_timeout: deploy.stop_timeout,
        }],
    }
}

/// The Cloud Map namespace: `[deploy.cloud_map] namespace`, by default `<service>.local`.
pub(crate) fn namespace(config: &Config) -> String {
    config
        .deploy
        .cloud_map
        .namespace
        .clone()
        .unwrap_or_else(|| format!("{}.local", config.service.name))
}

/// The Cloud Map service name: `[deploy.cloud_map] service`, by default the last segment of
/// the proto package that is not a version (`acme.projects.v1` → `projects`).
pub(crate) fn discovery_service(config: &Config, model: &Model) -> String {
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

/// Pretty JSON with a trailing newline.
pub(super) fn json(value: &impl Serialize) -> Result<Vec<u8>, GenerateError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(super::RenderError::Json)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[derive(Serialize)]
struct DeployVars<'a> {
    marker: &'static str,
    sources: &'a str,
    name: &'a str,
    port: u16,
    user: &'static str,
    health_check: &'a crate::config::HealthCheckConfig,
    probe: Vec<String>,
    deploy: &'a crate::config::DeployConfig,
    log_group: String,
    shutdown_timeout: u32,
    shutdown_delay: u32,
    tables: Vec<TableVars>,
    task_statements: Vec<StatementVars>,
    path_patterns: Vec<String>,
    namespace: String,
    discovery_service: String,
    dns_ttl: u32,
    dns_record_type: crate::config::DnsRecordType,
    srv: bool,
    /// ECS's name of the CPU architecture.
    cpu_architecture: &'static str,
    /// The Rust target the Dockerfile builds.
    rust_target: &'static str,
    /// Whether the runtime is vendored (the Dockerfile copies `vendor/` and `.cargo/`).
    vendored: bool,
    /// The ECR lifecycle policy, as JSON text.
    lifecycle_policy: String,
    /// `enabled` or `disabled`.
    container_insights: &'static str,
}

#[derive(Serialize)]
struct TableVars {
    resource: String,
    table: String,
    variable: String,
    attributes: Vec<String>,
    indexes: Vec<String>,
}

#[derive(Serialize)]
struct StatementVars {
    sid: String,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// The CloudFormation resource name of a logical table.
fn table_resource(logical: &str) -> String {
    format!("Table{}", sid(logical))
}

/// The template's view of each table: resource, physical name, variable and key attributes.
fn table_vars(config: &Config, model: &Model) -> Vec<TableVars> {
    model
        .tables
        .iter()
        .zip(table_names(config, model))
        .map(|((logical, indexes), (variable, table))| TableVars {
            resource: table_resource(logical),
            table,
            variable,
            attributes: [attributes::PARTITION_KEY, attributes::SORT_KEY]
                .map(str::to_owned)
                .into_iter()
                .chain(indexes.iter().flat_map(|i| {
                    let (pk, sk) = attributes::index_key_attributes(i);
                    [pk, sk]
                }))
                .collect(),
            indexes: indexes.clone(),
        })
        .collect()
}

/// The task role's statements in the CloudFormation template (ARNs from the table resources).
fn task_statements(access: &BTreeMap<String, TableAccess>) -> Vec<StatementVars> {
    let mut statements = Vec::new();
    for (logical, access) in access {
        let table = table_resource(logical);
        if !access.actions.is_empty() {
            statements.push(StatementVars {
                sid: format!("{}Table", sid(&access.table)),
                actions: access.actions.iter().cloned().collect(),
                resources: vec![format!("!GetAtt {table}.Arn")],
            });
        }
        if !access.queried_indexes.is_empty() {
            statements.push(StatementVars {
                sid: format!("{}Indexes", sid(&access.table)),
                actions: vec!["dynamodb:Query".to_owned()],
                resources: access
                    .queried_indexes
                    .iter()
                    .map(|i| format!("!Sub \"${{{table}.Arn}}/index/{i}\""))
                    .collect(),
            });
        }
    }
    statements
}

/// Renders `Dockerfile`, `.dockerignore`, `deploy/cloudformation.yaml` and the JSON artifacts.
pub(super) fn render(
    config: &Config,
    model: &Model,
    sources: &str,
    templates: &Templates,
) -> Result<Vec<(&'static str, Vec<u8>)>, GenerateError> {
    let name = &config.service.name;
    let deploy = &config.deploy;
    let access = table_access(config, model);
    let vars = DeployVars {
        marker: super::MARKER,
        sources,
        name,
        port: deploy.port,
        user: USER,
        health_check: &deploy.health_check,
        probe: probe_command(name, deploy.port),
        deploy,
        log_group: log_group(name),
        shutdown_timeout: deploy.shutdown_timeout(),
        shutdown_delay: deploy.shutdown_delay(),
        tables: table_vars(config, model),
        task_statements: task_statements(&access),
        path_patterns: model
            .services
            .iter()
            .map(|s| format!("/{}/*", s.full_name))
            .collect(),
        namespace: namespace(config),
        discovery_service: discovery_service(config, model),
        dns_ttl: deploy.dns_ttl(),
        dns_record_type: deploy.cloud_map.record_type,
        srv: deploy.cloud_map.record_type == crate::config::DnsRecordType::Srv,
        cpu_architecture: deploy.architecture.ecs(),
        rust_target: deploy.architecture.rust_target(),
        vendored: config.runtime.vendored(),
        lifecycle_policy: lifecycle_policy(deploy.keep_images),
        container_insights: deploy.container_insights_setting(),
    };
    let render = |template: &str| templates.render(template, &vars).map(String::into_bytes);
    Ok(vec![
        ("Dockerfile", render("Dockerfile.hbs")?),
        (".dockerignore", render("dockerignore.hbs")?),
        (
            "deploy/cloudformation.yaml",
            render("cloudformation.yaml.hbs")?,
        ),
        (
            "deploy/task-definition.json",
            json(&task_definition(config, model))?,
        ),
        (
            "deploy/iam/task-role-policy.json",
            json(&task_role_policy(&access))?,
        ),
        (
            "deploy/iam/execution-role-policy.json",
            json(&execution_role_policy(name))?,
        ),
        ("deploy/iam/trust-policy.json", json(&trust_policy())?),
    ])
}
