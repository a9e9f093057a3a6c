//! The environment variables that name a service's DynamoDB tables. The generator writes them
//! into the task definition and the generated code; the runtime reads them.

/// Names the one DynamoDB table of a service with a single logical table.
pub const SHARED_TABLE_VARIABLE: &str = "TABLE_NAME";

/// The variable naming the physical table of logical table `logical`: `TABLE_NAME_<LOGICAL>`,
/// upper case, other characters as `_`. Always accepted; a service with one logical table
/// also accepts [`SHARED_TABLE_VARIABLE`].
pub fn table_variable(logical: &str) -> String {
    let suffix: String = logical
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{SHARED_TABLE_VARIABLE}_{suffix}")
}

/// The variable a deployment sets for logical table `logical` of a service with
/// `table_count` logical tables: `TABLE_NAME` for a single table, else [`table_variable`].
pub fn deployed_table_variable(logical: &str, table_count: usize) -> String {
    if table_count == 1 {
        SHARED_TABLE_VARIABLE.to_owned()
    } else {
        table_variable(logical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_logical_table() {
        assert_eq!(table_variable("tasks"), "TABLE_NAME_TASKS");
        assert_eq!(table_variable("audit-log.v2"), "TABLE_NAME_AUDIT_LOG_V2");
        assert_eq!(deployed_table_variable("tasks", 1), "TABLE_NAME");
        assert_eq!(deployed_table_variable("tasks", 2), "TABLE_NAME_TASKS");
    }
}
