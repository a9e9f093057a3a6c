//! Infrastructure artifacts for ECS Fargate (a project's `Dockerfile`, `.dockerignore` and
//! `deploy/**`), all rendered from the [`Infrastructure`] model: the task definition and IAM
//! policies as JSON (ARNs with placeholders), the Dockerfile and the CloudFormation template
//! from templates (ARNs with CloudFormation's pseudo parameters).

use serde::Serialize;
use svcgen_contract::attributes;

use crate::GenerateError;
use crate::config::Config;
use crate::infra::{Container, Infrastructure, PolicyDocument, Target, monitoring};
use crate::model::Model;
use crate::templates::Templates;

use crate::infra::{USER, pascal_case, probe_command};

/// Pretty JSON with a trailing newline.
pub(super) fn json(value: &impl Serialize) -> Result<Vec<u8>, GenerateError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(super::RenderError::Json)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A string as a CloudFormation YAML value: `!Ref X` for exactly `${X}`, `!Sub "…"` when it
/// names pseudo parameters, else quoted.
fn cfn(value: &str) -> String {
    let quoted = quoted(value);
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(reference) if !reference.contains(['$', '{', '}']) => format!("!Ref {reference}"),
        _ if value.contains("${") => format!("!Sub {quoted}"),
        _ => quoted,
    }
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
    /// The model, with ARNs in CloudFormation's pseudo parameters.
    infra: &'a Infrastructure,
    /// The service's container (`container`, `environment`, `log_options`).
    #[serde(flatten)]
    service: ContainerVars<'a>,
    /// The collector's container, when `[deploy.observability]` runs one.
    collector: Option<ContainerVars<'a>>,
    /// `[deploy.cloud_map]` callers admitted to the tasks' security group.
    cloud_map: &'a crate::config::CloudMapConfig,
    tables: Vec<TableVars>,
    roles: Vec<RoleVars<'a>>,
    trust_statements: Vec<StatementVars>,
    /// The Rust target the Dockerfile builds.
    rust_target: &'static str,
    /// Whether the runtime is vendored (the Dockerfile copies `vendor/` and `.cargo/`).
    vendored: bool,
    /// The dashboard's body as a YAML string (for `!Sub`).
    dashboard_body: String,
    /// The alarms, values as YAML.
    alarms: Vec<AlarmVars<'a>>,
}

/// A container of the task definition with its values as YAML.
#[derive(Serialize)]
struct ContainerVars<'a> {
    container: &'a Container,
    /// Its environment, values as YAML.
    environment: Vec<(String, String)>,
    /// Its log driver's options, values as YAML.
    log_options: Vec<(String, String)>,
}

impl<'a> ContainerVars<'a> {
    fn new(container: &'a Container) -> Self {
        Self {
            container,
            environment: container
                .environment
                .iter()
                .map(|v| (v.name.clone(), cfn(&v.value)))
                .collect(),
            log_options: container
                .log_configuration
                .options
                .iter()
                .map(|(key, value)| (key.clone(), cfn(value)))
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct AlarmVars<'a> {
    alarm: &'a crate::infra::monitoring::Alarm,
    description: String,
    queries: Vec<QueryVars<'a>>,
}

#[derive(Serialize)]
struct QueryVars<'a> {
    query: &'a crate::infra::monitoring::AlarmQuery,
    label: String,
    expression: Option<String>,
    /// The metric's dimensions, values as YAML.
    dimensions: Vec<(&'static str, String)>,
}

/// A dimension value of an alarm as YAML: the load balancer's names from the stack (the load
/// balancer's, `app/<name>/<id>`, from the listener's ARN).
fn dimension_value(value: &str) -> String {
    match value {
        monitoring::TARGET_GROUP_FULL_NAME => "!GetAtt TargetGroup.TargetGroupFullName".into(),
        monitoring::LOAD_BALANCER_FULL_NAME => r#"!Join ["/", [!Select [1, !Split ["/", !Ref HttpsListenerArn]], !Select [2, !Split ["/", !Ref HttpsListenerArn]], !Select [3, !Split ["/", !Ref HttpsListenerArn]]]]"#.into(),
        other => quoted(other),
    }
}

/// A string as a double-quoted YAML (JSON) scalar.
fn quoted(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

fn alarms(monitoring: &crate::infra::Monitoring) -> Vec<AlarmVars<'_>> {
    monitoring
        .alarms
        .iter()
        .map(|alarm| AlarmVars {
            alarm,
            description: quoted(&alarm.description),
            queries: alarm
                .queries
                .iter()
                .map(|query| QueryVars {
                    query,
                    label: quoted(&query.label),
                    expression: query.expression.as_deref().map(quoted),
                    dimensions: query
                        .metric
                        .iter()
                        .flat_map(|m| &m.dimensions)
                        .map(|(name, value)| (*name, dimension_value(value)))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

#[derive(Serialize)]
struct TableVars {
    resource: String,
    table: String,
    attributes: Vec<String>,
    indexes: Vec<String>,
}

#[derive(Serialize)]
struct RoleVars<'a> {
    resource: &'static str,
    description: &'a str,
    policy_name: &'static str,
    statements: Vec<StatementVars>,
}

/// A policy statement with its values as YAML.
#[derive(Serialize)]
struct StatementVars {
    sid: String,
    principal_service: Option<&'static str>,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<ConditionVars>,
}

#[derive(Serialize)]
struct ConditionVars {
    operator: &'static str,
    key: &'static str,
    value: String,
}

fn statements(policy: &PolicyDocument) -> Vec<StatementVars> {
    policy
        .statement
        .iter()
        .map(|s| StatementVars {
            sid: s.sid.clone(),
            principal_service: s.principal.as_ref().and_then(|p| p.get("Service").copied()),
            actions: s.action.clone(),
            resources: s.resource.iter().map(|r| cfn(r)).collect(),
            conditions: s
                .condition
                .iter()
                .flat_map(|(operator, values)| {
                    values.iter().map(|(key, value)| ConditionVars {
                        operator,
                        key,
                        value: cfn(value),
                    })
                })
                .collect(),
        })
        .collect()
}

/// The CloudFormation resource name of a logical table.
fn table_resource(logical: &str) -> String {
    format!("Table{}", pascal_case(logical))
}

/// Renders `Dockerfile`, `.dockerignore`, `deploy/cloudformation.yaml` and the JSON artifacts.
pub(super) fn render(
    config: &Config,
    model: &Model,
    sources: &str,
    templates: &Templates,
) -> Result<Vec<(String, Vec<u8>)>, GenerateError> {
    let generated = Infrastructure::generated(config, model);
    let stack = Infrastructure::new(config, model, Target::CLOUDFORMATION);
    // The model's task definition has the service's container first, then the collector's.
    let containers = &stack.task_definition.container_definitions;
    let deploy = &config.deploy;
    let vars = DeployVars {
        marker: super::MARKER,
        sources,
        name: &stack.binary,
        port: deploy.port,
        user: USER,
        health_check: &deploy.health_check,
        probe: probe_command(&stack.binary, deploy.port),
        infra: &stack,
        service: ContainerVars::new(&containers[0]),
        collector: containers.get(1).map(ContainerVars::new),
        cloud_map: &deploy.cloud_map,
        tables: stack
            .tables
            .iter()
            .map(|t| TableVars {
                resource: table_resource(&t.logical),
                table: t.physical.clone(),
                attributes: [attributes::PARTITION_KEY, attributes::SORT_KEY]
                    .map(str::to_owned)
                    .into_iter()
                    .chain(t.indexes.iter().flat_map(|i| {
                        let (pk, sk) = attributes::index_key_attributes(i);
                        [pk, sk]
                    }))
                    .collect(),
                indexes: t.indexes.clone(),
            })
            .collect(),
        roles: vec![
            RoleVars {
                resource: "TaskRole",
                description: &stack.task_role.description,
                policy_name: stack.task_role.policy_name,
                statements: statements(&stack.task_role.policy),
            },
            RoleVars {
                resource: "ExecutionRole",
                description: &stack.execution_role.description,
                policy_name: stack.execution_role.policy_name,
                statements: statements(&stack.execution_role.policy),
            },
        ],
        trust_statements: statements(&stack.trust_policy),
        rust_target: deploy.architecture.rust_target(),
        vendored: config.runtime.vendored(),
        dashboard_body: quoted(&stack.monitoring.dashboard_body),
        alarms: alarms(&stack.monitoring),
    };
    let render = |template: &str| templates.render(template, &vars).map(String::into_bytes);
    let files = vec![
        ("Dockerfile", render("Dockerfile.hbs")?),
        (".dockerignore", render("dockerignore.hbs")?),
        (
            "deploy/cloudformation.yaml",
            render("cloudformation.yaml.hbs")?,
        ),
        (
            "deploy/task-definition.json",
            json(&generated.task_definition)?,
        ),
        (
            "deploy/iam/task-role-policy.json",
            json(&generated.task_role.policy)?,
        ),
        (
            "deploy/iam/execution-role-policy.json",
            json(&generated.execution_role.policy)?,
        ),
        (
            "deploy/iam/trust-policy.json",
            json(&generated.trust_policy)?,
        ),
    ];
    let mut files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .map(|(path, bytes)| (path.to_owned(), bytes))
        .collect();
    let monitoring = &generated.monitoring;
    let dashboard: serde_json::Value =
        serde_json::from_str(&monitoring.dashboard_body).map_err(super::RenderError::Json)?;
    files.push(("deploy/monitoring/dashboard.json".into(), json(&dashboard)?));
    for alarm in &monitoring.alarms {
        let input = alarm.put_metric_alarm_input(monitoring.topic.as_deref());
        let path = format!("deploy/monitoring/{}.json", alarm.suffix);
        files.push((path, json(&input)?));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::cfn;

    #[test]
    fn values_with_pseudo_parameters_become_intrinsic_functions() {
        assert_eq!(cfn("${AWS::Region}"), "!Ref AWS::Region");
        assert_eq!(
            cfn("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*"),
            "!Sub \"arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:*\""
        );
        assert_eq!(cfn("*"), "\"*\"");
        assert_eq!(cfn("0.0.0.0:50051"), "\"0.0.0.0:50051\"");
    }
}
