//! `svcgen table create`: the tables of the model, created (or confirmed) on DynamoDB or any
//! DynamoDB-API endpoint, with the layout the runtime expects.

use svcgen_contract::tables;
use svcgen_runtime::store::TableOutcome;

use crate::Project;
use crate::infra::{Infrastructure, Table};

/// The project's tables with their physical names: `TABLE_NAME_<LOGICAL>`, else `TABLE_NAME`
/// when there is one table, else the model's (`[tables]` in svcgen.toml, else the logical
/// name). The variables are the ones the generated service reads.
pub fn specs(project: &Project, env: impl Fn(&str) -> Option<String>) -> Vec<Table> {
    let mut list = Infrastructure::generated(&project.config, &project.model).tables;
    let single = list.len() == 1;
    for table in &mut list {
        if let Some(physical) = env(&tables::table_variable(&table.logical))
            .or_else(|| single.then(|| env(tables::SHARED_TABLE_VARIABLE)).flatten())
        {
            table.physical = physical;
        }
    }
    list
}

/// A table that could not be checked or created.
#[derive(Debug, thiserror::Error)]
#[error("table {table}: {error}")]
pub struct TableError {
    /// The physical table name.
    pub table: String,
    /// What the store said.
    pub error: svcgen_runtime::StoreError,
}

/// A table `svcgen table create` created, or found with the same layout; displays as the
/// command's line for it.
#[derive(Clone, Debug)]
pub struct TableReport<'a> {
    /// The table.
    pub spec: &'a Table,
    /// Whether it was created.
    pub outcome: TableOutcome,
}

impl std::fmt::Display for TableReport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.outcome {
            TableOutcome::Created => "created",
            TableOutcome::Exists => "exists with the same layout:",
            TableOutcome::TtlEnabled => "enabled TTL on `ttl` of existing",
        };
        let indexes = if self.spec.indexes.is_empty() {
            "none".to_owned()
        } else {
            self.spec.indexes.join(", ")
        };
        write!(
            f,
            "{what} table {} (logical `{}`, indexes: {indexes})",
            self.spec.physical, self.spec.logical
        )
    }
}

/// Creates every table (standard AWS configuration: `AWS_REGION`, credentials,
/// `AWS_ENDPOINT_URL`); each table is reported to `report` as soon as it is done.
pub async fn create(
    specs: &[Table],
    mut report: impl FnMut(&TableReport<'_>),
) -> Result<(), TableError> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    for spec in specs {
        let indexes: Vec<&str> = spec.indexes.iter().map(String::as_str).collect();
        let outcome = svcgen_runtime::store::ensure_table(&client, &spec.physical, &indexes)
            .await
            .map_err(|error| TableError {
                table: spec.physical.clone(),
                error,
            })?;
        report(&TableReport { spec, outcome });
    }
    Ok(())
}
