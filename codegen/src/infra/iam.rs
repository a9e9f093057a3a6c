//! The roles' policy documents. The task role's is computed from the RPCs: each operation adds
//! exactly the DynamoDB action it performs, on the table or on the index it queries.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Table, Target};
use crate::model::{AccessOperation, Model, Operation};

/// An IAM policy document, serialized as IAM takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    /// `2012-10-17`.
    pub version: &'static str,
    /// The statements.
    pub statement: Vec<Statement>,
}

/// Operator → condition key → value, e.g. `StringEquals` → `aws:SourceAccount` → the account.
pub type Condition = BTreeMap<&'static str, BTreeMap<&'static str, String>>;

/// One statement of a policy document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    /// Its id, unique in the document.
    pub sid: String,
    /// `Allow`.
    pub effect: &'static str,
    /// Who (trust policies only): `Service` → the service principal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<BTreeMap<&'static str, &'static str>>,
    /// The actions.
    pub action: Vec<String>,
    /// The resources (none in trust policies).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<String>,
    /// The conditions.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: Condition,
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

const VERSION: &str = "2012-10-17";

/// The DynamoDB permissions on one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TableGrant {
    /// The physical table.
    table: String,
    /// Its ARN.
    arn: String,
    /// Actions on the table itself, e.g. `dynamodb:GetItem`.
    actions: BTreeSet<String>,
    /// Indexes queried.
    queried_indexes: BTreeSet<String>,
}

/// The permissions of every RPC's operations (declared hand-written ones included), per table,
/// in the order of `tables`.
pub(super) fn table_grants(model: &Model, tables: &[Table], target: Target<'_>) -> Vec<TableGrant> {
    let mut grants: BTreeMap<&str, TableGrant> = BTreeMap::new();
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
        let logical = model.entity(entity).table.as_str();
        let Some(table) = tables.iter().find(|t| t.logical == logical) else {
            continue;
        };
        let grant = grants.entry(logical).or_insert_with(|| TableGrant {
            table: table.physical.clone(),
            arn: target.arn("dynamodb", &format!("table/{}", table.physical)),
            actions: BTreeSet::new(),
            queried_indexes: BTreeSet::new(),
        });
        match index {
            Some(index) => {
                grant.queried_indexes.insert(index);
            }
            None => {
                grant.actions.insert(format!("dynamodb:{action}"));
            }
        }
    }
    grants.into_values().collect()
}

/// `tasks-prod` → `TasksProd`: statement ids and resource names from names.
pub(crate) fn pascal_case(name: &str) -> String {
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

/// The X-Ray action of the collector beside the service: send segments. Its configuration
/// (the image's `/etc/ecs/ecs-xray.yaml`) exports with `awsxray` alone, without telemetry
/// records or remote sampling (the service samples itself, `OTEL_TRACES_SAMPLER`). X-Ray has
/// no resource-level permissions for it.
const TRACES: [&str; 1] = ["xray:PutTraceSegments"];

/// The task role's policy: exactly the actions the RPCs perform, on the tables and indexes
/// they touch, and with a collector (`traces`) X-Ray's.
pub(super) fn task_role_policy(grants: &[TableGrant], traces: bool) -> PolicyDocument {
    let mut statement = Vec::new();
    for grant in grants {
        if !grant.actions.is_empty() {
            let actions: Vec<&str> = grant.actions.iter().map(String::as_str).collect();
            statement.push(allow(
                format!("{}Table", pascal_case(&grant.table)),
                &actions,
                vec![grant.arn.clone()],
            ));
        }
        if !grant.queried_indexes.is_empty() {
            let arns = grant
                .queried_indexes
                .iter()
                .map(|i| format!("{}/index/{i}", grant.arn))
                .collect();
            statement.push(allow(
                format!("{}Indexes", pascal_case(&grant.table)),
                &["dynamodb:Query"],
                arns,
            ));
        }
    }
    if traces {
        statement.push(allow("Traces", &TRACES, vec!["*".to_owned()]));
    }
    PolicyDocument {
        version: VERSION,
        statement,
    }
}

/// The execution role's policy: pull this repository's image, write this log group.
pub(super) fn execution_role_policy(repository: &str, log_group: &str) -> PolicyDocument {
    PolicyDocument {
        version: VERSION,
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
                vec![repository.to_owned()],
            ),
            allow(
                "WriteLogs",
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                vec![log_group.to_owned()],
            ),
        ],
    }
}

/// Who may assume the task and execution roles: ECS tasks of this account and region only
/// (`aws:SourceAccount`, `aws:SourceArn`: AWS's guard against the confused deputy).
pub(super) fn trust_policy(target: Target<'_>) -> PolicyDocument {
    PolicyDocument {
        version: VERSION,
        statement: vec![Statement {
            sid: "EcsTasks".to_owned(),
            effect: "Allow",
            principal: Some(BTreeMap::from([("Service", "ecs-tasks.amazonaws.com")])),
            action: vec!["sts:AssumeRole".to_owned()],
            resource: Vec::new(),
            condition: BTreeMap::from([
                (
                    "ArnLike",
                    BTreeMap::from([("aws:SourceArn", target.arn("ecs", "*"))]),
                ),
                (
                    "StringEquals",
                    BTreeMap::from([("aws:SourceAccount", target.account.to_owned())]),
                ),
            ]),
        }],
    }
}
