//! CloudWatch (step 8): the service's dashboard and its alarms, over its own metrics and its
//! target group's.

use super::compare;
use super::{AwsError, Clients, DeployError, Plan, Settings};
use crate::infra::monitoring::{Alarm, Monitoring, TARGET_GROUP_FULL_NAME};

/// Step 8: the dashboard and the alarms of the target group `target_group` (an ARN; none when
/// a dry run would create it). Returns the alarms named like the service's that it does not
/// make, which are left alone.
pub(super) async fn monitoring(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    target_group: Option<&str>,
) -> Result<Vec<String>, DeployError> {
    let target_group = match target_group {
        Some(arn) => compare::target_group_full_name(arn).ok_or(AwsError::Unexpected {
            operation: "elasticloadbalancing:DescribeTargetGroups",
            returned: "a target group ARN without targetgroup/NAME/ID",
        })?,
        // A dry run that would create the group: whatever exists differs from it.
        None => TARGET_GROUP_FULL_NAME.to_owned(),
    };
    let wanted = settings
        .infra
        .monitoring
        .for_load_balancer(&target_group, &settings.network.load_balancer);
    dashboard(aws, plan, &wanted).await?;
    alarms(aws, plan, &wanted, &settings.infra.name).await
}

/// The dashboard, put when it is missing or its body differs.
async fn dashboard(
    aws: &Clients,
    plan: &mut Plan<'_>,
    wanted: &Monitoring,
) -> Result<(), DeployError> {
    let name = &wanted.dashboard_name;
    let current = match aws
        .cloudwatch
        .get_dashboard()
        .dashboard_name(name)
        .send()
        .await
    {
        Ok(out) => Some(out.dashboard_body().unwrap_or_default().to_owned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_dashboard_not_found_error()) =>
        {
            None
        }
        Err(e) => return Err(AwsError::call("cloudwatch:GetDashboard", e).into()),
    };
    let change = match current {
        None => format!("create dashboard {name}"),
        Some(body) if compare::dashboard_matches(&body, &wanted.dashboard_body) => return Ok(()),
        Some(_) => format!("update dashboard {name}"),
    };
    if plan.change(change) {
        aws.cloudwatch
            .put_dashboard()
            .dashboard_name(name)
            .dashboard_body(&wanted.dashboard_body)
            .send()
            .await
            .map_err(|e| AwsError::call("cloudwatch:PutDashboard", e))?;
    }
    Ok(())
}

/// The alarms, each put when it is missing or differs. Returns the other alarms named
/// `<name>-…` that watch the service.
async fn alarms(
    aws: &Clients,
    plan: &mut Plan<'_>,
    wanted: &Monitoring,
    name: &str,
) -> Result<Vec<String>, DeployError> {
    let pages = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{name}-"))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("cloudwatch:DescribeAlarms", e))?;
    let described: Vec<_> = pages
        .iter()
        .flat_map(|page| page.metric_alarms())
        .cloned()
        .collect();
    let topic = wanted.topic.as_deref();
    for alarm in &wanted.alarms {
        let current = described
            .iter()
            .find(|a| a.alarm_name() == Some(alarm.name.as_str()));
        let change = match current {
            None => format!("create alarm {}", alarm.name),
            Some(current) => {
                let differences = compare::alarm_differences(current, alarm, topic);
                if differences.is_empty() {
                    continue;
                }
                format!("update alarm {} ({})", alarm.name, differences.join(", "))
            }
        };
        if plan.change(change) {
            put_alarm(aws, alarm, topic).await?;
        }
    }
    let others = compare::other_alarms(&described, wanted, name);
    Ok(others.into_iter().map(str::to_owned).collect())
}

/// `PutMetricAlarm` with the model's alarm: creates it, or replaces its whole configuration
/// (actions enabled again, insufficient-data actions removed: svcgen owns its alarms).
async fn put_alarm(aws: &Clients, alarm: &Alarm, topic: Option<&str>) -> Result<(), AwsError> {
    // Without a topic, no actions (as the generated input: PutMetricAlarm replaces them).
    let actions = topic.map(|topic| vec![topic.to_owned()]);
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&alarm.name)
        .alarm_description(&alarm.description)
        .comparison_operator(alarm.comparison.into())
        .threshold(alarm.threshold)
        .evaluation_periods(compare::signed(alarm.evaluation_periods))
        .datapoints_to_alarm(compare::signed(alarm.datapoints_to_alarm))
        .treat_missing_data(alarm.treat_missing_data)
        .set_metrics(Some(compare::alarm_queries(alarm)))
        .set_alarm_actions(actions.clone())
        .set_ok_actions(actions)
        .actions_enabled(true)
        .send()
        .await
        .map_err(|e| AwsError::call("cloudwatch:PutMetricAlarm", e))?;
    Ok(())
}
