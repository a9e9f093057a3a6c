//! IAM (step 3): a role assumable by ECS tasks with exactly svcgen's inline policy; what else is
//! on the role (inline or attached) is removed and named.

use super::compare::policy;
use super::{AwsError, Clients, DeployError, Failure, Plan};
use crate::infra::{PolicyDocument, Role};

fn is_no_such_entity<E>(error: &aws_sdk_iam::error::SdkError<E>) -> bool
where
    E: aws_sdk_iam::error::ProvideErrorMetadata,
{
    error.as_service_error().and_then(|e| e.code()) == Some("NoSuchEntity")
}

/// Step 3: a role assumable by ECS tasks (`trust`) with its one inline policy.
pub(super) async fn role(
    aws: &Clients,
    plan: &mut Plan<'_>,
    role: &Role,
    trust: &PolicyDocument,
) -> Result<(), DeployError> {
    let (name, policy_name) = (role.name.as_str(), role.policy_name);
    let wanted_trust = serde_json::to_value(trust).map_err(Failure::PolicyNotJson)?;
    let wanted = serde_json::to_value(&role.policy).map_err(Failure::PolicyNotJson)?;
    let (trust, document) = (wanted_trust.to_string(), wanted.to_string());
    let exists = match aws.iam.get_role().role_name(name).send().await {
        Ok(out) => {
            let current = out
                .role()
                .and_then(|r| r.assume_role_policy_document())
                .and_then(policy);
            if current.as_ref() != Some(&wanted_trust)
                && plan.change(format!("update the trust policy of role {name}"))
            {
                aws.iam
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(&trust)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("iam:UpdateAssumeRolePolicy", e))?;
            }
            true
        }
        Err(e) if is_no_such_entity(&e) => {
            if plan.change(format!("create role {name}")) {
                aws.iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(&trust)
                    .description(&role.description)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("iam:CreateRole", e))?;
            }
            false
        }
        Err(e) => return Err(AwsError::call("iam:GetRole", e).into()),
    };
    let current = if exists {
        match aws
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(policy_name)
            .send()
            .await
        {
            Ok(out) => policy(out.policy_document()),
            Err(e) if is_no_such_entity(&e) => None,
            Err(e) => return Err(AwsError::call("iam:GetRolePolicy", e).into()),
        }
    } else {
        None
    };
    if current.as_ref() != Some(&wanted) {
        let verb = if current.is_some() {
            "update"
        } else {
            "attach"
        };
        if plan.change(format!("{verb} policy {policy_name} of role {name}")) {
            aws.iam
                .put_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .policy_document(&document)
                .send()
                .await
                .map_err(|e| AwsError::call("iam:PutRolePolicy", e))?;
        }
    }
    if exists {
        foreign_policies(aws, plan, name, policy_name).await?;
    }
    Ok(())
}

/// Policies on role `name` that svcgen did not put there (inline ones other than `ours`, any
/// attached managed policy): they would widen the role beyond the generated policy, so they are
/// removed, and the step says which.
async fn foreign_policies(
    aws: &Clients,
    plan: &mut Plan<'_>,
    name: &str,
    ours: &str,
) -> Result<(), DeployError> {
    let inline: Vec<String> = aws
        .iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| AwsError::call("iam:ListRolePolicies", e))?
        .policy_names()
        .iter()
        .filter(|p| *p != ours)
        .cloned()
        .collect();
    let attached: Vec<String> = aws
        .iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| AwsError::call("iam:ListAttachedRolePolicies", e))?
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect();
    if inline.is_empty() && attached.is_empty() {
        return Ok(());
    }
    let listed: Vec<&str> = inline.iter().chain(&attached).map(String::as_str).collect();
    if !plan.change(format!(
        "remove what svcgen did not put on role {name} (least privilege): {}",
        listed.join(", ")
    )) {
        return Ok(());
    }
    for policy_name in &inline {
        aws.iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(policy_name)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:DeleteRolePolicy", e))?;
    }
    for arn in &attached {
        aws.iam
            .detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::call("iam:DetachRolePolicy", e))?;
    }
    Ok(())
}
