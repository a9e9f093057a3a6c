//! The task role's policy, enforced by the service itself: with `SVCGEN_TASK_POLICY` naming a
//! policy document (the `deploy/iam/task-role-policy.json` svcgen generates, or the role's
//! policy as AWS returns it), every store call the policy does not allow fails before it
//! reaches the store, as it would on AWS with AccessDenied (an internal error for the client,
//! the denied action in the log). A permission the code needs but the policy lacks then shows
//! on a laptop, on the embedded store, instead of in production.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::entity::ItemKey;
use crate::item::Item;
use crate::store::{
    Expected, ItemUpdate, Query, QueryPage, ReadItem, Store, StoreError, TransactWrite,
};

/// The Allow and Deny statements of an IAM policy document.
#[derive(Debug)]
pub struct Policy {
    path: PathBuf,
    statements: Vec<Statement>,
}

#[derive(Debug)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

impl Policy {
    /// Reads the policy document at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::parse(path, &text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(path: &Path, text: &str) -> Result<Self, String> {
        let mut document: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        // `aws iam get-role-policy` wraps the document in its answer.
        if let Some(inner) = document.get_mut("PolicyDocument") {
            document = inner.take();
        }
        let statements = match &document["Statement"] {
            Value::Array(statements) => statements.iter().collect(),
            statement @ Value::Object(_) => vec![statement],
            _ => return Err("no Statement".to_owned()),
        };
        let strings = |value: &Value, key: &str| -> Result<Vec<String>, String> {
            match value {
                Value::String(one) => Ok(vec![one.clone()]),
                Value::Array(many) => many
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("{key} holds a value that is not a string")),
                _ => Err(format!(
                    "a statement has no {key} (NotAction and NotResource are not supported)"
                )),
            }
        };
        let statements = statements
            .into_iter()
            .map(|statement| {
                if statement.get("Condition").is_some() {
                    return Err(
                        "a statement has a Condition, which this check cannot evaluate".to_owned(),
                    );
                }
                Ok(Statement {
                    allow: match statement["Effect"].as_str() {
                        Some("Allow") => true,
                        Some("Deny") => false,
                        _ => {
                            return Err("a statement's Effect is neither Allow nor Deny".to_owned());
                        }
                    },
                    actions: strings(&statement["Action"], "Action")?,
                    resources: strings(&statement["Resource"], "Resource")?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            path: path.to_owned(),
            statements,
        })
    }

    /// Whether `action` (e.g. `dynamodb:GetItem`) on `resource` (the part of an ARN after its
    /// account, e.g. `table/main/index/gsi1`) is allowed: an Allow matches and no Deny does.
    /// Partition, region and account are not compared (locally there are none).
    fn allows(&self, action: &str, resource: &str) -> bool {
        let matches = |s: &&Statement| {
            s.actions
                .iter()
                .any(|a| wildcard(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && s.resources
                    .iter()
                    .any(|r| wildcard(&arn_resource(r), &format!("dynamodb:{resource}")))
        };
        let mut matching = self.statements.iter().filter(matches);
        matching.clone().any(|s| s.allow) && !matching.any(|s| !s.allow)
    }

    /// The store `inner`, refusing what the policy does not allow on table `table` (the name the
    /// policy's ARNs use).
    pub fn enforce(self: &Arc<Self>, inner: Arc<dyn Store>, table: &str) -> Arc<dyn Store> {
        Arc::new(Enforced {
            inner,
            policy: self.clone(),
            table: format!("table/{table}"),
        })
    }
}

/// `service:resource` of an ARN pattern (a pattern that is no ARN, such as `*`, stays as it is).
fn arn_resource(arn: &str) -> String {
    match arn.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        [_, _, service, _, _, resource] => format!("{service}:{resource}"),
        _ => arn.to_owned(),
    }
}

/// IAM's wildcards: `*` any run of characters, `?` one; `${…}` (a placeholder svcgen fills at
/// deploy time) like `*`.
fn wildcard(pattern: &str, value: &str) -> bool {
    let mut pattern = pattern.to_owned();
    while let Some(start) = pattern.find("${") {
        let Some(end) = pattern[start..].find('}') else {
            break;
        };
        pattern.replace_range(start..start + end + 1, "*");
    }
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    // matched[j]: the pattern so far matches v[..j].
    let mut matched = vec![false; v.len() + 1];
    matched[0] = true;
    for c in &p {
        let mut next = vec![false; v.len() + 1];
        for j in 0..=v.len() {
            next[j] = match c {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && v[j - 1] == *c,
            };
        }
        matched = next;
    }
    matched[v.len()]
}

/// A store that asks the policy first.
struct Enforced {
    inner: Arc<dyn Store>,
    policy: Arc<Policy>,
    /// `table/<name>`.
    table: String,
}

impl Enforced {
    fn check(&self, action: &str, index: Option<&str>) -> Result<(), StoreError> {
        let resource = match index {
            Some(index) => format!("{}/index/{index}", self.table),
            None => self.table.clone(),
        };
        let action = format!("dynamodb:{action}");
        if self.policy.allows(&action, &resource) {
            return Ok(());
        }
        Err(StoreError::Internal(format!(
            "AccessDenied: {action} on {resource} is not allowed by the task role's policy ({})",
            self.policy.path.display()
        )))
    }
}

#[async_trait]
impl Store for Enforced {
    async fn create(&self, item: Item) -> Result<(), StoreError> {
        self.check("PutItem", None)?;
        self.inner.create(item).await
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.check("GetItem", None)?;
        self.inner.get(key).await
    }

    async fn update(&self, key: &ItemKey, update: ItemUpdate) -> Result<Item, StoreError> {
        self.check("UpdateItem", None)?;
        self.inner.update(key, update).await
    }

    async fn delete(&self, key: &ItemKey, expected: Expected) -> Result<Item, StoreError> {
        self.check("DeleteItem", None)?;
        self.inner.delete(key, expected).await
    }

    async fn query(&self, query: Query) -> Result<QueryPage, StoreError> {
        self.check("Query", query.index.as_deref())?;
        self.inner.query(query).await
    }

    async fn transact(&self, writes: Vec<TransactWrite>) -> Result<(), StoreError> {
        // AWS authorizes each write of a TransactWriteItems as its own action.
        for write in &writes {
            self.check(
                match write {
                    TransactWrite::Create(_) => "PutItem",
                    TransactWrite::Update { .. } => "UpdateItem",
                    TransactWrite::Delete { .. } => "DeleteItem",
                    TransactWrite::Check { .. } => "ConditionCheckItem",
                },
                None,
            )?;
        }
        self.inner.transact(writes).await
    }

    async fn batch_get(&self, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError> {
        self.check("BatchGetItem", None)?;
        self.inner.batch_get(keys).await
    }

    async fn get_with(&self, key: &ItemKey, read: &mut ReadItem<'_>) -> Result<bool, StoreError> {
        self.check("GetItem", None)?;
        self.inner.get_with(key, read).await
    }

    async fn query_with(
        &self,
        query: Query,
        read: &mut ReadItem<'_>,
    ) -> Result<Option<Item>, StoreError> {
        self.check("Query", query.index.as_deref())?;
        self.inner.query_with(query, read).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATED: &str = r#"{
      "Version": "2012-10-17",
      "Statement": [
        { "Sid": "MainTable", "Effect": "Allow",
          "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
          "Resource": ["arn:${AWS_PARTITION}:dynamodb:${AWS_REGION}:${AWS_ACCOUNT_ID}:table/main"] },
        { "Sid": "MainIndexes", "Effect": "Allow", "Action": "dynamodb:Query",
          "Resource": "arn:${AWS_PARTITION}:dynamodb:${AWS_REGION}:${AWS_ACCOUNT_ID}:table/main/index/gsi1" }
      ]
    }"#;

    #[test]
    fn the_generated_policy_allows_what_it_names_and_nothing_else() {
        let policy = Policy::parse(Path::new("p.json"), GENERATED).expect("parses");
        assert!(policy.allows("dynamodb:GetItem", "table/main"));
        assert!(policy.allows("dynamodb:Query", "table/main/index/gsi1"));
        assert!(!policy.allows("dynamodb:DeleteItem", "table/main"));
        assert!(
            !policy.allows("dynamodb:Query", "table/main"),
            "the table itself is not queried"
        );
        assert!(!policy.allows("dynamodb:Query", "table/main/index/gsi2"));
        assert!(!policy.allows("dynamodb:GetItem", "table/mainly"));
    }

    #[test]
    fn wildcards_and_denies_as_iam_reads_them() {
        let policy = Policy::parse(
            Path::new("p.json"),
            r#"{"Statement": [
              {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:aws:dynamodb:eu-west-1:123456789012:table/main*"},
              {"Effect": "Deny", "Action": "dynamodb:Delete?tem", "Resource": "*"}
            ]}"#,
        )
        .expect("parses");
        assert!(policy.allows("dynamodb:UpdateItem", "table/main/index/gsi1"));
        let fetched =
            format!(r#"{{"RoleName": "r", "PolicyName": "p", "PolicyDocument": {GENERATED}}}"#);
        let fetched =
            Policy::parse(Path::new("p.json"), &fetched).expect("get-role-policy's answer");
        assert!(fetched.allows("dynamodb:GetItem", "table/main"));
        assert!(
            !policy.allows("dynamodb:DeleteItem", "table/main"),
            "a Deny wins"
        );
        assert!(!policy.allows("dynamodb:GetItem", "table/other"));
        assert!(wildcard("a*b?d", "aXXbcd") && !wildcard("a*b?d", "abd"));
    }

    #[test]
    fn documents_it_cannot_read_are_refused() {
        for bad in [
            "{}",
            "not json",
            r#"{"Statement": [{"Effect": "Allow", "NotAction": "x", "Resource": "*"}]}"#,
            r#"{"Statement": [{"Effect": "Maybe", "Action": "x", "Resource": "*"}]}"#,
            r#"{"Statement": [{"Effect": "Allow", "Action": "x", "Resource": "*", "Condition": {}}]}"#,
        ] {
            assert!(Policy::parse(Path::new("p.json"), bad).is_err(), "{bad}");
        }
    }
}
