//! CloudWatch Logs (step 5): the log group the containers write to, with its retention.

use super::compare::signed;
use super::{AwsError, Clients, DeployError, Plan};
use crate::infra::LogGroup;

/// Step 5: the log group, with the configured retention.
pub(super) async fn log_group(
    aws: &Clients,
    plan: &mut Plan<'_>,
    log_group: &LogGroup,
) -> Result<(), DeployError> {
    let name = log_group.name.as_str();
    let days = signed(log_group.retention_days);
    let described = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .map_err(|e| AwsError::call("logs:DescribeLogGroups", e))?;
    let existing = described
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name));
    let retention_needed = match existing {
        Some(group) => group.retention_in_days() != Some(days),
        None => {
            if plan.change(format!("create log group {name}")) {
                aws.logs
                    .create_log_group()
                    .log_group_name(name)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("logs:CreateLogGroup", e))?;
            }
            true
        }
    };
    if retention_needed && plan.change(format!("keep its logs {days} days")) {
        aws.logs
            .put_retention_policy()
            .log_group_name(name)
            .retention_in_days(days)
            .send()
            .await
            .map_err(|e| AwsError::call("logs:PutRetentionPolicy", e))?;
    }
    Ok(())
}
