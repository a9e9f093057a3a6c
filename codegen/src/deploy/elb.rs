//! Elastic Load Balancing: the shared HTTPS listener (checked before any change), the service's
//! gRPC target group and its listener rule (step 7).

use aws_sdk_elasticloadbalancingv2::types as elb;

use super::compare::{self, signed};
use super::{AwsError, Clients, DeployError, Failure, InputError, Plan, Settings};
use crate::infra::{DEREGISTRATION_DELAY, TargetGroup};

/// The model's health check on a `CreateTargetGroup` or `ModifyTargetGroup` request (two
/// builder types with the same setters).
macro_rules! health_check {
    ($request:expr, $wanted:expr) => {
        $request
            .health_check_protocol(elb::ProtocolEnum::Http)
            .health_check_path($wanted.health_check_path)
            .health_check_interval_seconds(signed($wanted.health_check_interval))
            .health_check_timeout_seconds(signed($wanted.health_check_timeout))
            .healthy_threshold_count(signed($wanted.healthy_threshold))
            .unhealthy_threshold_count(signed($wanted.unhealthy_threshold))
            .matcher(elb::Matcher::builder().grpc_code($wanted.matcher).build())
    };
}

/// The HTTPS listener the rule goes on, and its load balancer.
pub(super) struct Listener {
    pub(super) dns_name: String,
    /// Its rules, as they were before the deployment.
    pub(super) rules: Vec<elb::Rule>,
}

/// Checks that `[aws] listener_arn` is an HTTPS listener of a load balancer in `[aws] vpc_id`
/// and that the rule's priority is free (or the service's own).
pub(super) async fn listener(aws: &Clients, settings: &Settings) -> Result<Listener, InputError> {
    let network = &settings.network;
    let listeners = aws
        .elb
        .describe_listeners()
        .listener_arns(&network.listener_arn)
        .send()
        .await
        .map_err(|e| {
            InputError::ListenerLookup(AwsError::call("elasticloadbalancing:DescribeListeners", e))
        })?;
    let listener = listeners
        .listeners()
        .first()
        .ok_or_else(|| InputError::NoListener {
            arn: network.listener_arn.clone(),
        })?;
    if listener.protocol() != Some(&elb::ProtocolEnum::Https) {
        return Err(InputError::ListenerProtocol {
            protocol: listener.protocol().map(|p| p.as_str().to_owned()),
        });
    }
    let balancers = aws
        .elb
        .describe_load_balancers()
        .set_load_balancer_arns(listener.load_balancer_arn().map(|a| vec![a.to_owned()]))
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:DescribeLoadBalancers", e))?;
    let balancer = balancers
        .load_balancers()
        .first()
        .ok_or(InputError::NoLoadBalancer)?;
    if balancer.vpc_id() != Some(network.vpc_id.as_str()) {
        return Err(InputError::OtherVpc {
            vpc_id: network.vpc_id.clone(),
            balancer_vpc: balancer.vpc_id().map(str::to_owned),
        });
    }
    let priority = settings.infra.listener_rule.priority;
    let ours = settings.infra.target_group.name.as_str();
    let rules = aws
        .elb
        .describe_rules()
        .listener_arn(&network.listener_arn)
        .page_size(400)
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:DescribeRules", e))?;
    let theirs = |r: &&elb::Rule| {
        !compare::forwarded_groups(r).any(|arn| compare::target_group_name(arn) == Some(ours))
    };
    let wanted = &settings.infra.listener_rule;
    let mut others = rules.rules().iter().filter(theirs);
    if let Some(taken) = others
        .clone()
        .find(|r| r.priority() == Some(priority.to_string().as_str()))
    {
        return Err(InputError::PriorityTaken {
            priority,
            rule: taken.rule_arn().map(str::to_owned),
        });
    }
    // Of two rules matching a request, the one with the lower priority takes it: another
    // environment's rule on the same paths and host would take this one's calls, or lose its own.
    if let Some(overlapping) = others.find(|r| compare::rule_overlaps(r, wanted)) {
        return Err(InputError::RouteTaken {
            paths: wanted.path_patterns.join(", "),
            host: wanted.host.clone(),
            rule: overlapping.rule_arn().map(str::to_owned),
        });
    }
    Ok(Listener {
        dns_name: balancer.dns_name().unwrap_or_default().to_owned(),
        rules: rules.rules().to_vec(),
    })
}

/// The target group named `name`, if it exists.
pub(super) async fn find_target_group(
    aws: &Clients,
    name: &str,
) -> Result<Option<elb::TargetGroup>, AwsError> {
    match aws.elb.describe_target_groups().names(name).send().await {
        Ok(out) => Ok(out.target_groups().first().cloned()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_target_group_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::call(
            "elasticloadbalancing:DescribeTargetGroups",
            e,
        )),
    }
}

/// Step 7: the gRPC target group. Returns its ARN (none after a dry run that would create it).
pub(super) async fn target_group(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
) -> Result<Option<String>, DeployError> {
    let wanted = &settings.infra.target_group;
    let Some(existing) = find_target_group(aws, &wanted.name).await? else {
        return create_target_group(aws, plan, settings).await;
    };
    if let Some(setting) = compare::target_group_fixed(&existing, wanted, &settings.network.vpc_id)
    {
        return Err(Failure::TargetGroupFixed {
            name: wanted.name.clone(),
            setting,
        }
        .into());
    }
    let arn = existing
        .target_group_arn()
        .ok_or(AwsError::Unexpected {
            operation: "elasticloadbalancing:DescribeTargetGroups",
            returned: "no ARN",
        })?
        .to_owned();
    let changed = compare::health_check_differences(&existing, wanted);
    if !changed.is_empty()
        && plan.change(format!(
            "update the health check of {} ({})",
            wanted.name,
            changed.join(", ")
        ))
    {
        let modify = aws.elb.modify_target_group().target_group_arn(&arn);
        health_check!(modify, wanted)
            .send()
            .await
            .map_err(|e| AwsError::call("elasticloadbalancing:ModifyTargetGroup", e))?;
    }
    let attributes = aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(&arn)
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:DescribeTargetGroupAttributes", e))?;
    if !compare::deregistration_delay_matches(attributes.attributes(), wanted)
        && plan.change(format!(
            "set the deregistration delay of {} to {} s",
            wanted.name, wanted.deregistration_delay
        ))
    {
        set_deregistration_delay(aws, &arn, wanted).await?;
    }
    Ok(Some(arn))
}

/// Step 7: creates the target group (in a dry run, only plans it).
async fn create_target_group(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
) -> Result<Option<String>, DeployError> {
    let wanted = &settings.infra.target_group;
    if !plan.change(format!(
        "create target group {} (gRPC, port {}, health check {})",
        wanted.name, wanted.port, wanted.health_check_path
    )) {
        return Ok(None);
    }
    let create = aws
        .elb
        .create_target_group()
        .name(&wanted.name)
        .protocol(elb::ProtocolEnum::Http)
        .protocol_version("GRPC")
        .port(i32::from(wanted.port))
        .vpc_id(&settings.network.vpc_id)
        .target_type(elb::TargetTypeEnum::Ip)
        .health_check_enabled(true);
    let created = health_check!(create, wanted)
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:CreateTargetGroup", e))?;
    let arn = created
        .target_groups()
        .first()
        .and_then(|t| t.target_group_arn())
        .ok_or(AwsError::Unexpected {
            operation: "elasticloadbalancing:CreateTargetGroup",
            returned: "no ARN",
        })?
        .to_owned();
    set_deregistration_delay(aws, &arn, wanted).await?;
    Ok(Some(arn))
}

async fn set_deregistration_delay(
    aws: &Clients,
    arn: &str,
    wanted: &TargetGroup,
) -> Result<(), AwsError> {
    aws.elb
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            elb::TargetGroupAttribute::builder()
                .key(DEREGISTRATION_DELAY)
                .value(wanted.deregistration_delay.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:ModifyTargetGroupAttributes", e))?;
    Ok(())
}

/// Step 7: the listener rule sending the service's paths to the target group.
pub(super) async fn listener_rule(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    listener: &Listener,
    target_group: Option<&str>,
) -> Result<(), DeployError> {
    let rule = &settings.infra.listener_rule;
    let priority = signed(rule.priority);
    let wanted = &rule.path_patterns;
    let ours = target_group.and_then(|tg| {
        listener
            .rules
            .iter()
            .find(|r| compare::forwarded_groups(r).any(|arn| arn == tg))
    });
    let conditions = compare::rule_conditions(rule);
    let routes = match &rule.host {
        Some(host) => format!("{} on {host}", wanted.join(", ")),
        None => wanted.join(", "),
    };
    // A rule holding the priority that is not ours was refused before any change.
    let Some(current) = ours else {
        if plan.change(format!("create rule {routes} at priority {priority}"))
            && let Some(target_group) = target_group
        {
            aws.elb
                .create_rule()
                .listener_arn(&settings.network.listener_arn)
                .priority(priority)
                .set_conditions(Some(conditions))
                .actions(
                    elb::Action::builder()
                        .r#type(elb::ActionTypeEnum::Forward)
                        .target_group_arn(target_group)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| AwsError::call("elasticloadbalancing:CreateRule", e))?;
        }
        return Ok(());
    };
    let arn = current.rule_arn().unwrap_or_default();
    if !compare::rule_conditions_match(current, rule)
        && plan.change(format!("set the rule's conditions to {routes}"))
    {
        aws.elb
            .modify_rule()
            .rule_arn(arn)
            .set_conditions(Some(conditions))
            .send()
            .await
            .map_err(|e| AwsError::call("elasticloadbalancing:ModifyRule", e))?;
    }
    if current.priority() != Some(priority.to_string().as_str())
        && plan.change(format!("move the rule to priority {priority}"))
    {
        aws.elb
            .set_rule_priorities()
            .rule_priorities(
                elb::RulePriorityPair::builder()
                    .rule_arn(arn)
                    .priority(priority)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::call("elasticloadbalancing:SetRulePriorities", e))?;
    }
    Ok(())
}
