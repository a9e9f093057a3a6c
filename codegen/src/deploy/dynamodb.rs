//! DynamoDB (step 2): each table in svcgen's layout, created (or its TTL enabled) when missing;
//! a table of the same name with another layout stops the deployment.

use super::{Clients, DeployError, Failure, Plan};
use crate::infra::Table;
use crate::table::TableError;

/// Step 2: a table with svcgen's layout.
pub(super) async fn table(
    aws: &Clients,
    plan: &mut Plan<'_>,
    table: &Table,
) -> Result<(), DeployError> {
    use svcgen_runtime::store::TableState;
    let indexes: Vec<&str> = table.indexes.iter().map(String::as_str).collect();
    let failed = |error| TableError {
        table: table.physical.clone(),
        error,
    };
    let state = svcgen_runtime::store::check_table(&aws.dynamodb, &table.physical, &indexes)
        .await
        .map_err(failed)?;
    match state {
        TableState::Matches => Ok(()),
        TableState::Differs(difference) => Err(Failure::TableLayout { difference }.into()),
        TableState::WithoutTtl => {
            if plan.change(format!("enable TTL on ttl of table {}", table.physical)) {
                svcgen_runtime::store::enable_ttl(&aws.dynamodb, &table.physical)
                    .await
                    .map_err(failed)?;
            }
            Ok(())
        }
        TableState::Missing => {
            let what = format!(
                "create table {} (keys pk/sk, indexes: {}, TTL on ttl)",
                table.physical,
                if indexes.is_empty() {
                    "none".to_owned()
                } else {
                    indexes.join(", ")
                }
            );
            if plan.change(what) {
                svcgen_runtime::store::create_table(&aws.dynamodb, &table.physical, &indexes)
                    .await
                    .map_err(failed)?;
            }
            Ok(())
        }
    }
}
