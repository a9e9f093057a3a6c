//! One function per resource: describe, compare with the generated definition, and create or
//! update through [`Plan::change`] (which says no in a dry run).

use std::time::{Duration, Instant};

use aws_sdk_ecs::error::BuildError;
use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2::types as elb;
use aws_sdk_servicediscovery::types as sd;
use serde_json::Value;

use super::image::{Engine, Login};
use super::task_definition::Spec;
use super::{AwsError, Clients, DeployError, Failure, InputError, Plan, Settings};
use crate::table::{TableError, TableSpec};

/// Who the credentials belong to (also proves they work).
pub(super) struct Caller {
    /// The account ID.
    pub(super) account: String,
    /// The partition of every ARN in it: `aws`, `aws-cn` or `aws-us-gov`.
    pub(super) partition: String,
}

/// The caller's account and partition (from its ARN, `arn:PARTITION:…`).
pub(super) async fn caller(aws: &Clients) -> Result<Caller, InputError> {
    let identity = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| InputError::Credentials(AwsError::call("sts:GetCallerIdentity", e)))?;
    let account = identity.account().ok_or(AwsError::Unexpected {
        operation: "sts:GetCallerIdentity",
        returned: "no account",
    })?;
    let partition = identity
        .arn()
        .and_then(partition)
        .ok_or(AwsError::Unexpected {
            operation: "sts:GetCallerIdentity",
            returned: "no ARN of the form arn:PARTITION:…",
        })?;
    Ok(Caller {
        account: account.to_owned(),
        partition: partition.to_owned(),
    })
}

/// The partition of an ARN: `arn:PARTITION:service:…`.
fn partition(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.next())
        .flatten()
        .filter(|p| !p.is_empty() && parts.next().is_some())
}

/// The HTTPS listener the rule goes on, and its load balancer.
pub(super) struct Listener {
    pub(super) dns_name: String,
    /// Its rules, as they were before the deployment.
    pub(super) rules: Vec<elb::Rule>,
}

/// Checks that `[aws] listener_arn` is an HTTPS listener of a load balancer in `[aws] vpc_id`.
pub(super) async fn listener(aws: &Clients, settings: &Settings) -> Result<Listener, InputError> {
    let listeners = aws
        .elb
        .describe_listeners()
        .listener_arns(&settings.listener_arn)
        .send()
        .await
        .map_err(|e| {
            InputError::ListenerLookup(AwsError::call("elasticloadbalancing:DescribeListeners", e))
        })?;
    let listener = listeners
        .listeners()
        .first()
        .ok_or_else(|| InputError::NoListener {
            arn: settings.listener_arn.clone(),
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
    if balancer.vpc_id() != Some(settings.vpc_id.as_str()) {
        return Err(InputError::OtherVpc {
            vpc_id: settings.vpc_id.clone(),
            balancer_vpc: balancer.vpc_id().map(str::to_owned),
        });
    }
    let priority = settings.config.deploy.listener_rule_priority;
    let rules = aws
        .elb
        .describe_rules()
        .listener_arn(&settings.listener_arn)
        .page_size(400)
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:DescribeRules", e))?;
    if let Some(taken) = rules.rules().iter().find(|r| {
        r.priority() == Some(priority.to_string().as_str())
            && !forwarded_groups(r)
                .any(|arn| target_group_name(arn) == Some(settings.target_group()))
    }) {
        return Err(InputError::PriorityTaken {
            priority,
            rule: taken.rule_arn().map(str::to_owned),
        });
    }
    Ok(Listener {
        dns_name: balancer.dns_name().unwrap_or_default().to_owned(),
        rules: rules.rules().to_vec(),
    })
}

/// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID` → NAME.
fn target_group_name(arn: &str) -> Option<&str> {
    arn.split_once(":targetgroup/")?.1.split('/').next()
}

/// Step 1: the ECR repository, scanning on push. Returns its URI.
pub(super) async fn repository(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    account: &str,
) -> Result<String, DeployError> {
    use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};
    let name = &settings.name;
    let scanning = ImageScanningConfiguration::builder()
        .scan_on_push(true)
        .build();
    let described = aws
        .ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await;
    let existing = match described {
        Ok(out) => out.repositories().first().cloned(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_repository_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(AwsError::call("ecr:DescribeRepositories", e).into()),
    };
    // Registries in China end in amazonaws.com.cn.
    let suffix = if settings.region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let uri = format!("{account}.dkr.ecr.{}.{suffix}/{name}", settings.region);
    let uri = match existing {
        Some(repository) => {
            let scans = repository
                .image_scanning_configuration()
                .is_some_and(|s| s.scan_on_push());
            if !scans && plan.change(format!("turn on scan on push for repository {name}")) {
                aws.ecr
                    .put_image_scanning_configuration()
                    .repository_name(name)
                    .image_scanning_configuration(scanning)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("ecr:PutImageScanningConfiguration", e))?;
            }
            repository.repository_uri().unwrap_or(&uri).to_owned()
        }
        None => {
            if plan.change(format!("create repository {name} (scan on push)")) {
                let created = aws
                    .ecr
                    .create_repository()
                    .repository_name(name)
                    .image_scanning_configuration(scanning)
                    .image_tag_mutability(ImageTagMutability::Mutable)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("ecr:CreateRepository", e))?;
                match created.repository().and_then(|r| r.repository_uri()) {
                    Some(created) => created.to_owned(),
                    None => uri,
                }
            } else {
                // A dry run: the repository does not exist, so neither does its policy.
                plan.change(format!(
                    "expire all but the newest {} images of repository {name}",
                    settings.config.deploy.keep_images
                ));
                return Ok(uri);
            }
        }
    };
    lifecycle_policy(aws, plan, settings).await?;
    Ok(uri)
}

/// The repository's lifecycle policy: keep the newest `[deploy] keep_images` images.
async fn lifecycle_policy(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
) -> Result<(), DeployError> {
    let (name, keep) = (&settings.name, settings.config.deploy.keep_images);
    let wanted = crate::render::infra::lifecycle_policy(keep);
    let current = match aws
        .ecr
        .get_lifecycle_policy()
        .repository_name(name)
        .send()
        .await
    {
        Ok(out) => out.lifecycle_policy_text().and_then(policy),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_lifecycle_policy_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(AwsError::call("ecr:GetLifecyclePolicy", e).into()),
    };
    if current != policy(&wanted)
        && plan.change(format!(
            "expire all but the newest {keep} images of repository {name}"
        ))
    {
        aws.ecr
            .put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(wanted)
            .send()
            .await
            .map_err(|e| AwsError::call("ecr:PutLifecyclePolicy", e))?;
    }
    Ok(())
}

/// Step 1: the image `repository:tag`, built and pushed unless the tag is in ECR already.
pub(super) async fn image(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    repository: &str,
    engine: &Engine,
    tag: &str,
) -> Result<String, DeployError> {
    use aws_sdk_ecr::types::ImageIdentifier;
    let image = format!("{repository}:{tag}");
    let found = aws
        .ecr
        .describe_images()
        .repository_name(&settings.name)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    let present = match found {
        Ok(out) => !out.image_details().is_empty(),
        Err(e)
            if e.as_service_error().is_some_and(|e| {
                e.is_image_not_found_exception() || e.is_repository_not_found_exception()
            }) =>
        {
            false
        }
        Err(e) => return Err(AwsError::call("ecr:DescribeImages", e).into()),
    };
    if !present && plan.change(format!("build and push {image} with {}", engine.name)) {
        let token = aws
            .ecr
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| AwsError::call("ecr:GetAuthorizationToken", e))?;
        let data = token
            .authorization_data()
            .first()
            .ok_or(AwsError::Unexpected {
                operation: "ecr:GetAuthorizationToken",
                returned: "no credentials",
            })?;
        let registry = repository.split('/').next().unwrap_or(repository);
        let login = Login::from_token(registry, data.authorization_token().unwrap_or_default())?;
        engine
            .build_and_push(
                &settings.dir,
                settings.config.deploy.architecture.platform(),
                repository,
                tag,
                &login,
            )
            .map_err(Failure::from)?;
    }
    Ok(image)
}

/// Step 2: a table with svcgen's layout.
pub(super) async fn table(
    aws: &Clients,
    plan: &mut Plan<'_>,
    table: &TableSpec,
) -> Result<(), DeployError> {
    use svcgen_runtime::store::TableState;
    let indexes: Vec<&str> = table.indexes.iter().map(String::as_str).collect();
    let state = svcgen_runtime::store::check_table(&aws.dynamodb, &table.physical, &indexes)
        .await
        .map_err(|error| TableError {
            table: table.physical.clone(),
            error,
        })?;
    match state {
        TableState::Matches => Ok(()),
        TableState::Differs(difference) => Err(Failure::TableLayout { difference }.into()),
        TableState::WithoutTtl => {
            if plan.change(format!("enable TTL on ttl of table {}", table.physical)) {
                svcgen_runtime::store::enable_ttl(&aws.dynamodb, &table.physical)
                    .await
                    .map_err(|error| TableError {
                        table: table.physical.clone(),
                        error,
                    })?;
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
                    .map_err(|error| TableError {
                        table: table.physical.clone(),
                        error,
                    })?;
            }
            Ok(())
        }
    }
}

/// IAM returns policy documents URL-encoded.
fn policy(document: &str) -> Option<Value> {
    serde_json::from_str(document)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(document)?).ok())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn is_no_such_entity<E>(error: &aws_sdk_iam::error::SdkError<E>) -> bool
where
    E: aws_sdk_iam::error::ProvideErrorMetadata,
{
    error.as_service_error().and_then(|e| e.code()) == Some("NoSuchEntity")
}

/// Step 3: a role assumable by ECS tasks with one inline policy.
pub(super) async fn role(
    aws: &Clients,
    plan: &mut Plan<'_>,
    name: &str,
    trust: &str,
    (policy_name, document): (&str, &str),
) -> Result<(), DeployError> {
    let wanted_trust = policy(trust).ok_or(Failure::PolicyNotJson { policy: "trust" })?;
    let wanted = policy(document).ok_or(Failure::PolicyNotJson { policy: "role" })?;
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
                    .policy_document(trust)
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
                    .assume_role_policy_document(trust)
                    .description("svcgen: ECS task role")
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
                .policy_document(document)
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

const FARGATE: &str = "FARGATE";

/// Step 4: the cluster with the Fargate capacity provider. Returns whether it exists (after a
/// dry run: whether it existed).
pub(super) async fn cluster(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
) -> Result<bool, DeployError> {
    let strategy = ecs::CapacityProviderStrategyItem::builder()
        .capacity_provider(FARGATE)
        .weight(1)
        .build()?;
    let wanted_insights = settings.config.deploy.container_insights;
    let insights = settings.config.deploy.container_insights_setting();
    // The service's own cluster (named after it) follows the setting; a shared one, named in
    // `[aws] cluster`, keeps the settings its owners chose.
    let own_cluster = settings.cluster == settings.name;
    let insights_setting = ecs::ClusterSetting::builder()
        .name(ecs::ClusterSettingName::ContainerInsights)
        .value(insights)
        .build();
    // ECS returns a cluster's settings only when asked for them.
    let described = aws
        .ecs
        .describe_clusters()
        .clusters(&settings.cluster)
        .include(ecs::ClusterField::Settings)
        .send()
        .await
        .map_err(|e| AwsError::call("ecs:DescribeClusters", e))?;
    let active = described
        .clusters()
        .iter()
        .find(|c| c.status() == Some("ACTIVE"));
    match active {
        Some(cluster) => {
            if own_cluster
                && !container_insights_is(cluster, wanted_insights)
                && plan.change(format!("turn Container Insights {insights}"))
            {
                aws.ecs
                    .update_cluster_settings()
                    .cluster(&settings.cluster)
                    .settings(insights_setting)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("ecs:UpdateClusterSettings", e))?;
            }
            let providers = cluster.capacity_providers();
            if !providers.iter().any(|p| p == FARGATE)
                && plan.change("add the FARGATE capacity provider")
            {
                let mut all = providers.to_vec();
                all.push(FARGATE.to_owned());
                aws.ecs
                    .put_cluster_capacity_providers()
                    .cluster(&settings.cluster)
                    .set_capacity_providers(Some(all))
                    .default_capacity_provider_strategy(strategy)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("ecs:PutClusterCapacityProviders", e))?;
            }
            Ok(true)
        }
        None => {
            if plan.change(format!(
                "create cluster {} (FARGATE capacity provider, Container Insights {insights})",
                settings.cluster
            )) {
                aws.ecs
                    .create_cluster()
                    .cluster_name(&settings.cluster)
                    .capacity_providers(FARGATE)
                    .default_capacity_provider_strategy(strategy)
                    .settings(insights_setting)
                    .send()
                    .await
                    .map_err(|e| AwsError::call("ecs:CreateCluster", e))?;
                return Ok(true);
            }
            Ok(false)
        }
    }
}

/// Whether `cluster` (described with its settings) has Container Insights on (`enabled`, or
/// `enhanced` observability) or off, as `enabled` says. A cluster without the setting follows
/// the account's default, which svcgen cannot see: not a match.
fn container_insights_is(cluster: &ecs::Cluster, enabled: bool) -> bool {
    cluster.settings().iter().any(|s| {
        s.name() == Some(&ecs::ClusterSettingName::ContainerInsights)
            && match s.value() {
                Some("enabled" | "enhanced") => enabled,
                Some("disabled") => !enabled,
                _ => false,
            }
    })
}

/// Step 5: the log group the task definition names, with the configured retention.
pub(super) async fn log_group(
    aws: &Clients,
    plan: &mut Plan<'_>,
    name: &str,
    retention_days: u32,
) -> Result<(), DeployError> {
    let days = i32::try_from(retention_days).unwrap_or(i32::MAX);
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

/// Step 5: the latest revision of the family when it equals the generated definition, else a
/// new revision. Returns its ARN (none after a dry run that would register one).
pub(super) async fn task_definition(
    aws: &Clients,
    plan: &mut Plan<'_>,
    spec: &Spec,
) -> Result<Option<String>, DeployError> {
    let described = aws
        .ecs
        .describe_task_definition()
        .task_definition(&spec.family)
        .send()
        .await;
    let latest = match described {
        Ok(out) => out.task_definition().cloned(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_client_exception()) =>
        {
            None
        }
        Err(e) => return Err(AwsError::call("ecs:DescribeTaskDefinition", e).into()),
    };
    let what = match &latest {
        Some(latest) => {
            let differences = spec.differences(&Spec::from_ecs(latest));
            if differences.is_empty() {
                return Ok(latest.task_definition_arn().map(str::to_owned));
            }
            format!(
                "register revision {} ({} changed)",
                latest.revision() + 1,
                differences.join(", ")
            )
        }
        None => format!("register the first revision of {}", spec.family),
    };
    if plan.change(what) {
        return Ok(Some(spec.register(&aws.ecs).await?));
    }
    Ok(None)
}

/// Waits for a Cloud Map operation (they are asynchronous) for at most a minute; returns the
/// id of the namespace or service it acted on.
async fn operation(
    aws: &Clients,
    id: &str,
    kind: sd::OperationTargetType,
) -> Result<String, Failure> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = aws
            .discovery
            .get_operation()
            .operation_id(id)
            .send()
            .await
            .map_err(|e| AwsError::call("servicediscovery:GetOperation", e))?;
        let operation = out.operation().ok_or(AwsError::Unexpected {
            operation: "servicediscovery:GetOperation",
            returned: "nothing",
        })?;
        match operation.status() {
            Some(sd::OperationStatus::Success) => {
                return Ok(operation
                    .targets()
                    .and_then(|t| t.get(&kind))
                    .cloned()
                    .unwrap_or_default());
            }
            Some(sd::OperationStatus::Fail) => {
                return Err(Failure::CloudMap {
                    operation: id.to_owned(),
                    reason: operation
                        .error_message()
                        .unwrap_or("no reason given")
                        .to_owned(),
                });
            }
            _ if Instant::now() >= deadline => {
                return Err(Failure::CloudMapTimeout {
                    operation: id.to_owned(),
                });
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// Step 6: the private DNS namespace in the VPC and the discovery service. Returns the
/// service's ARN (the ECS service's registry).
pub(super) async fn discovery(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
) -> Result<Option<String>, DeployError> {
    let cloud_map = &settings.config.deploy.cloud_map;
    let record = sd::DnsRecord::builder()
        .r#type(cloud_map.record_type.to_string().as_str().into())
        .ttl(i64::from(settings.config.deploy.dns_ttl()))
        .build()?;
    let namespace = namespace(aws, plan, settings).await?;
    let existing = match &namespace {
        Some(namespace) => find_discovery_service(aws, settings, namespace).await?,
        None => None,
    };
    let Some(existing) = existing else {
        return create_discovery_service(aws, plan, settings, namespace, record).await;
    };
    update_records(aws, plan, settings, &existing, record).await?;
    Ok(existing.arn().map(str::to_owned))
}

/// Step 6: the private DNS namespace, created when missing. Returns its id (none after a dry
/// run that would create it).
async fn namespace(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
) -> Result<Option<String>, DeployError> {
    let filter = sd::NamespaceFilter::builder()
        .name(sd::NamespaceFilterName::Type)
        .values("DNS_PRIVATE")
        .condition(sd::FilterCondition::Eq)
        .build()?;
    let namespaces = aws
        .discovery
        .list_namespaces()
        .filters(filter)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("servicediscovery:ListNamespaces", e))?;
    if let Some(namespace) = namespaces
        .iter()
        .flat_map(|page| page.namespaces())
        .find(|n| n.name() == Some(settings.namespace.as_str()))
    {
        return Ok(namespace.id().map(str::to_owned));
    }
    if !plan.change(format!(
        "create private DNS namespace {} in {}",
        settings.namespace, settings.vpc_id
    )) {
        return Ok(None);
    }
    let created = aws
        .discovery
        .create_private_dns_namespace()
        .name(&settings.namespace)
        .vpc(&settings.vpc_id)
        .creator_request_id(format!("svcgen-{}-{}", settings.name, settings.namespace))
        .send()
        .await
        .map_err(|e| AwsError::call("servicediscovery:CreatePrivateDnsNamespace", e))?;
    let id = created.operation_id().unwrap_or_default();
    Ok(Some(
        operation(aws, id, sd::OperationTargetType::Namespace).await?,
    ))
}

/// The discovery service of the namespace, if it exists.
async fn find_discovery_service(
    aws: &Clients,
    settings: &Settings,
    namespace: &str,
) -> Result<Option<sd::ServiceSummary>, DeployError> {
    let filter = sd::ServiceFilter::builder()
        .name(sd::ServiceFilterName::NamespaceId)
        .values(namespace)
        .condition(sd::FilterCondition::Eq)
        .build()?;
    let services = aws
        .discovery
        .list_services()
        .filters(filter)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::call("servicediscovery:ListServices", e))?;
    Ok(services
        .iter()
        .flat_map(|page| page.services())
        .find(|s| s.name() == Some(settings.discovery_service.as_str()))
        .cloned())
}

/// Step 6: creates the discovery service with `record` (in a dry run, only plans it).
async fn create_discovery_service(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    namespace: Option<String>,
    record: sd::DnsRecord,
) -> Result<Option<String>, DeployError> {
    let what = format!(
        "create discovery service {} ({} records, TTL {} s)",
        settings.discovery_service,
        record.r#type().as_str(),
        record.ttl()
    );
    let (true, Some(namespace)) = (plan.change(what), namespace) else {
        return Ok(None);
    };
    let created = aws
        .discovery
        .create_service()
        .name(&settings.discovery_service)
        .namespace_id(namespace)
        .dns_config(
            sd::DnsConfig::builder()
                .routing_policy(sd::RoutingPolicy::Multivalue)
                .dns_records(record)
                .build()?,
        )
        .health_check_custom_config(sd::HealthCheckCustomConfig::builder().build())
        .send()
        .await
        .map_err(|e| AwsError::call("servicediscovery:CreateService", e))?;
    Ok(created.service().and_then(|s| s.arn()).map(str::to_owned))
}

/// Step 6: sets the discovery service's DNS records to `record` when they differ.
async fn update_records(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    existing: &sd::ServiceSummary,
    record: sd::DnsRecord,
) -> Result<(), DeployError> {
    let id = existing.id().unwrap_or_default();
    let service = aws
        .discovery
        .get_service()
        .id(id)
        .send()
        .await
        .map_err(|e| AwsError::call("servicediscovery:GetService", e))?;
    let records = service
        .service()
        .and_then(|s| s.dns_config())
        .map(|c| c.dns_records())
        .unwrap_or_default();
    if records == [record.clone()]
        || !plan.change(format!(
            "set the DNS records of {} to {} with TTL {} s",
            settings.discovery_service,
            record.r#type().as_str(),
            record.ttl()
        ))
    {
        return Ok(());
    }
    let updated = aws
        .discovery
        .update_service()
        .id(id)
        .service(
            sd::ServiceChange::builder()
                .dns_config(sd::DnsConfigChange::builder().dns_records(record).build()?)
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::call("servicediscovery:UpdateService", e))?;
    operation(
        aws,
        updated.operation_id().unwrap_or_default(),
        sd::OperationTargetType::Service,
    )
    .await?;
    Ok(())
}

/// The health check the ALB runs: gRPC health, status OK only.
const HEALTH_PATH: &str = "/grpc.health.v1.Health/Check";

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
    let name = settings.target_group();
    let existing = find_target_group(aws, name).await?;
    let Some(existing) = existing else {
        return create_target_group(aws, plan, settings).await;
    };
    let port = i32::from(settings.config.deploy.port);
    let fixed = [
        ("port", existing.port() == Some(port)),
        (
            "protocol version",
            existing.protocol_version() == Some("GRPC"),
        ),
        (
            "target type",
            existing.target_type() == Some(&elb::TargetTypeEnum::Ip),
        ),
        ("VPC", existing.vpc_id() == Some(settings.vpc_id.as_str())),
    ];
    if let Some((setting, _)) = fixed.iter().find(|(_, same)| !same) {
        return Err(Failure::TargetGroupFixed {
            name: name.to_owned(),
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
    update_health_check(aws, plan, settings, (&existing, &arn)).await?;
    update_deregistration_delay(aws, plan, settings, &arn).await?;
    Ok(Some(arn))
}

/// An ALB setting as the SDK takes it.
fn as_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// Step 7: creates the target group (in a dry run, only plans it).
async fn create_target_group(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
) -> Result<Option<String>, DeployError> {
    let tg = &settings.config.deploy.target_group;
    let port = i32::from(settings.config.deploy.port);
    let name = settings.target_group();
    if !plan.change(format!(
        "create target group {name} (gRPC, port {port}, health check {HEALTH_PATH})"
    )) {
        return Ok(None);
    }
    let created = aws
        .elb
        .create_target_group()
        .name(name)
        .protocol(elb::ProtocolEnum::Http)
        .protocol_version("GRPC")
        .port(port)
        .vpc_id(&settings.vpc_id)
        .target_type(elb::TargetTypeEnum::Ip)
        .health_check_enabled(true)
        .health_check_protocol(elb::ProtocolEnum::Http)
        .health_check_path(HEALTH_PATH)
        .health_check_interval_seconds(as_i32(tg.health_check_interval))
        .health_check_timeout_seconds(as_i32(tg.health_check_timeout))
        .healthy_threshold_count(as_i32(tg.healthy_threshold))
        .unhealthy_threshold_count(as_i32(tg.unhealthy_threshold))
        .matcher(elb::Matcher::builder().grpc_code("0").build())
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
    set_deregistration_delay(aws, &arn, &tg.deregistration_delay.to_string()).await?;
    Ok(Some(arn))
}

/// Step 7: the target group's health check, updated when it differs from `[deploy.target_group]`.
async fn update_health_check(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    (existing, arn): (&elb::TargetGroup, &str),
) -> Result<(), AwsError> {
    let tg = &settings.config.deploy.target_group;
    let health = [
        (
            "health check path",
            existing.health_check_path() == Some(HEALTH_PATH),
        ),
        (
            "interval",
            existing.health_check_interval_seconds() == Some(as_i32(tg.health_check_interval)),
        ),
        (
            "timeout",
            existing.health_check_timeout_seconds() == Some(as_i32(tg.health_check_timeout)),
        ),
        (
            "healthy threshold",
            existing.healthy_threshold_count() == Some(as_i32(tg.healthy_threshold)),
        ),
        (
            "unhealthy threshold",
            existing.unhealthy_threshold_count() == Some(as_i32(tg.unhealthy_threshold)),
        ),
        (
            "matcher",
            existing.matcher().and_then(|m| m.grpc_code()) == Some("0"),
        ),
    ];
    let changed: Vec<&str> = health
        .iter()
        .filter(|(_, same)| !same)
        .map(|(what, _)| *what)
        .collect();
    if changed.is_empty()
        || !plan.change(format!(
            "update the health check of {} ({})",
            settings.target_group(),
            changed.join(", ")
        ))
    {
        return Ok(());
    }
    aws.elb
        .modify_target_group()
        .target_group_arn(arn)
        .health_check_protocol(elb::ProtocolEnum::Http)
        .health_check_path(HEALTH_PATH)
        .health_check_interval_seconds(as_i32(tg.health_check_interval))
        .health_check_timeout_seconds(as_i32(tg.health_check_timeout))
        .healthy_threshold_count(as_i32(tg.healthy_threshold))
        .unhealthy_threshold_count(as_i32(tg.unhealthy_threshold))
        .matcher(elb::Matcher::builder().grpc_code("0").build())
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:ModifyTargetGroup", e))?;
    Ok(())
}

/// Step 7: the target group's deregistration delay, set when it differs.
async fn update_deregistration_delay(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    arn: &str,
) -> Result<(), AwsError> {
    let delay = settings
        .config
        .deploy
        .target_group
        .deregistration_delay
        .to_string();
    let attributes = aws
        .elb
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:DescribeTargetGroupAttributes", e))?;
    let current = attributes
        .attributes()
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
        .and_then(|a| a.value());
    if current != Some(delay.as_str())
        && plan.change(format!(
            "set the deregistration delay of {} to {delay} s",
            settings.target_group()
        ))
    {
        set_deregistration_delay(aws, arn, &delay).await?;
    }
    Ok(())
}

const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";

async fn set_deregistration_delay(aws: &Clients, arn: &str, seconds: &str) -> Result<(), AwsError> {
    aws.elb
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            elb::TargetGroupAttribute::builder()
                .key(DEREGISTRATION_DELAY)
                .value(seconds)
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:ModifyTargetGroupAttributes", e))?;
    Ok(())
}

fn path_patterns(rule: &elb::Rule) -> Vec<String> {
    let mut patterns: Vec<String> = rule
        .conditions()
        .iter()
        .filter(|c| c.field() == Some("path-pattern"))
        .flat_map(|c| match c.path_pattern_config() {
            Some(config) if !config.values().is_empty() => config.values().to_vec(),
            _ => c.values().to_vec(),
        })
        .collect();
    patterns.sort();
    patterns
}

/// The target groups a rule forwards to.
fn forwarded_groups(rule: &elb::Rule) -> impl Iterator<Item = &str> {
    rule.actions().iter().flat_map(|a| {
        a.target_group_arn().into_iter().chain(
            a.forward_config()
                .map(|f| f.target_groups())
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t.target_group_arn()),
        )
    })
}

/// Step 7: the listener rule sending `/<package>.<Service>/*` to the target group.
pub(super) async fn listener_rule(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    listener: &Listener,
    target_group: Option<&str>,
) -> Result<(), DeployError> {
    let priority = settings.config.deploy.listener_rule_priority;
    let ours = target_group.and_then(|tg| {
        listener
            .rules
            .iter()
            .find(|r| forwarded_groups(r).any(|arn| arn == tg))
    });
    let mut wanted = settings.path_patterns.clone();
    wanted.sort();
    let condition = elb::RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            elb::PathPatternConditionConfig::builder()
                .set_values(Some(wanted.clone()))
                .build(),
        )
        .build();
    // A rule holding the priority that is not ours was refused before any change.
    let Some(rule) = ours else {
        if plan.change(format!(
            "create rule {} at priority {priority}",
            wanted.join(", ")
        )) && let Some(target_group) = target_group
        {
            aws.elb
                .create_rule()
                .listener_arn(&settings.listener_arn)
                .priority(i32::try_from(priority).unwrap_or(i32::MAX))
                .conditions(condition)
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
    let arn = rule.rule_arn().unwrap_or_default();
    if path_patterns(rule) != wanted
        && plan.change(format!("set the rule's paths to {}", wanted.join(", ")))
    {
        aws.elb
            .modify_rule()
            .rule_arn(arn)
            .conditions(condition)
            .send()
            .await
            .map_err(|e| AwsError::call("elasticloadbalancing:ModifyRule", e))?;
    }
    if rule.priority() != Some(priority.to_string().as_str())
        && plan.change(format!("move the rule to priority {priority}"))
    {
        aws.elb
            .set_rule_priorities()
            .rule_priorities(
                elb::RulePriorityPair::builder()
                    .rule_arn(arn)
                    .priority(i32::try_from(priority).unwrap_or(i32::MAX))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::call("elasticloadbalancing:SetRulePriorities", e))?;
    }
    Ok(())
}

/// The resources the ECS service points at (none for what a dry run would create).
pub(super) struct ServiceResources<'a> {
    pub(super) task_definition: Option<&'a str>,
    pub(super) target_group: Option<&'a str>,
    pub(super) registry: Option<&'a str>,
}

/// The service's settings as the SDK's types.
struct ServiceSettings {
    network: ecs::NetworkConfiguration,
    load_balancers: Vec<ecs::LoadBalancer>,
    registries: Vec<ecs::ServiceRegistry>,
    deployment: ecs::DeploymentConfiguration,
    grace: i32,
    desired: i32,
}

fn service_settings(
    settings: &Settings,
    resources: &ServiceResources<'_>,
) -> Result<ServiceSettings, BuildError> {
    let deploy = &settings.config.deploy;
    let port = i32::from(deploy.port);
    let mut subnets = settings.subnets.clone();
    subnets.sort();
    let mut groups = settings.security_groups.clone();
    groups.sort();
    let srv = deploy.cloud_map.record_type == crate::config::DnsRecordType::Srv;
    Ok(ServiceSettings {
        network: ecs::NetworkConfiguration::builder()
            .awsvpc_configuration(
                ecs::AwsVpcConfiguration::builder()
                    .set_subnets(Some(subnets))
                    .set_security_groups(Some(groups))
                    .assign_public_ip(ecs::AssignPublicIp::Disabled)
                    .build()?,
            )
            .build(),
        load_balancers: vec![
            ecs::LoadBalancer::builder()
                .set_target_group_arn(resources.target_group.map(str::to_owned))
                .container_name(&settings.name)
                .container_port(port)
                .build(),
        ],
        registries: vec![
            ecs::ServiceRegistry::builder()
                .set_registry_arn(resources.registry.map(str::to_owned))
                .set_container_name(srv.then(|| settings.name.clone()))
                .set_container_port(srv.then_some(port))
                .build(),
        ],
        deployment: ecs::DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                ecs::DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(true)
                    .build(),
            )
            .minimum_healthy_percent(100)
            .maximum_percent(200)
            .build(),
        grace: i32::try_from(deploy.health_check.start_period).unwrap_or(i32::MAX),
        desired: i32::try_from(deploy.desired_count).unwrap_or(i32::MAX),
    })
}

/// What differs between the running service and the settings.
fn service_differences(
    current: &ecs::Service,
    wanted: &ServiceSettings,
    task_definition: Option<&str>,
) -> Vec<&'static str> {
    let network = |n: Option<&ecs::NetworkConfiguration>| {
        n.and_then(|n| n.awsvpc_configuration()).map(|c| {
            let mut subnets = c.subnets().to_vec();
            subnets.sort();
            let mut groups = c.security_groups().to_vec();
            groups.sort();
            (
                subnets,
                groups,
                c.assign_public_ip()
                    .cloned()
                    .unwrap_or(ecs::AssignPublicIp::Disabled),
            )
        })
    };
    let breaker = |d: Option<&ecs::DeploymentConfiguration>| {
        d.map(|d| {
            (
                d.deployment_circuit_breaker()
                    .map(|b| (b.enable(), b.rollback())),
                d.minimum_healthy_percent(),
                d.maximum_percent(),
            )
        })
    };
    let mut differences = Vec::new();
    let checks = [
        (
            "taskDefinition",
            current.task_definition() == task_definition,
        ),
        ("desiredCount", current.desired_count() == wanted.desired),
        (
            "networkConfiguration",
            network(current.network_configuration()) == network(Some(&wanted.network)),
        ),
        (
            "loadBalancers",
            current.load_balancers() == wanted.load_balancers,
        ),
        (
            "serviceRegistries",
            current.service_registries() == wanted.registries,
        ),
        // ECS returns both for a service behind a load balancer; a description without them
        // (API emulators such as moto omit them) is not taken to match.
        (
            "deploymentConfiguration",
            breaker(current.deployment_configuration()) == breaker(Some(&wanted.deployment)),
        ),
        (
            "healthCheckGracePeriodSeconds",
            current.health_check_grace_period_seconds() == Some(wanted.grace),
        ),
    ];
    for (field, same) in checks {
        if !same {
            differences.push(field);
        }
    }
    differences
}

/// Step 8: the ECS service, created or updated to the generated settings.
pub(super) async fn service(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    cluster_exists: bool,
    resources: &ServiceResources<'_>,
) -> Result<(), DeployError> {
    let wanted = service_settings(settings, resources)?;
    let current = if cluster_exists {
        let described = aws
            .ecs
            .describe_services()
            .cluster(&settings.cluster)
            .services(&settings.name)
            .send()
            .await
            .map_err(|e| AwsError::call("ecs:DescribeServices", e))?;
        described
            .services()
            .iter()
            .find(|s| s.status() == Some("ACTIVE"))
            .cloned()
    } else {
        None
    };
    let Some(current) = current else {
        let what = format!(
            "create service {} ({} tasks in {} subnets, behind the target group, in Cloud Map, circuit breaker with rollback)",
            settings.name,
            wanted.desired,
            settings.subnets.len()
        );
        if plan.change(what) {
            aws.ecs
                .create_service()
                .cluster(&settings.cluster)
                .service_name(&settings.name)
                .set_task_definition(resources.task_definition.map(str::to_owned))
                .desired_count(wanted.desired)
                .launch_type(ecs::LaunchType::Fargate)
                .network_configuration(wanted.network)
                .set_load_balancers(Some(wanted.load_balancers))
                .set_service_registries(Some(wanted.registries))
                .deployment_configuration(wanted.deployment)
                .health_check_grace_period_seconds(wanted.grace)
                .propagate_tags(ecs::PropagateTags::Service)
                .enable_ecs_managed_tags(true)
                .send()
                .await
                .map_err(|e| AwsError::call("ecs:CreateService", e))?;
        }
        return Ok(());
    };
    let differences = service_differences(&current, &wanted, resources.task_definition);
    if !differences.is_empty()
        && plan.change(format!(
            "update service {} ({})",
            settings.name,
            differences.join(", ")
        ))
    {
        aws.ecs
            .update_service()
            .cluster(&settings.cluster)
            .service(&settings.name)
            .set_task_definition(resources.task_definition.map(str::to_owned))
            .desired_count(wanted.desired)
            .network_configuration(wanted.network)
            .set_load_balancers(Some(wanted.load_balancers))
            .set_service_registries(Some(wanted.registries))
            .deployment_configuration(wanted.deployment)
            .health_check_grace_period_seconds(wanted.grace)
            .send()
            .await
            .map_err(|e| AwsError::call("ecs:UpdateService", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted_service() -> ServiceSettings {
        ServiceSettings {
            network: ecs::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    ecs::AwsVpcConfiguration::builder()
                        .subnets("subnet-a")
                        .security_groups("sg-a")
                        .assign_public_ip(ecs::AssignPublicIp::Disabled)
                        .build()
                        .expect("subnets set"),
                )
                .build(),
            load_balancers: vec![
                ecs::LoadBalancer::builder()
                    .target_group_arn("tg")
                    .container_name("task-svc")
                    .container_port(50051)
                    .build(),
            ],
            registries: vec![ecs::ServiceRegistry::builder().registry_arn("sd").build()],
            deployment: ecs::DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    ecs::DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .minimum_healthy_percent(100)
                .maximum_percent(200)
                .build(),
            grace: 30,
            desired: 2,
        }
    }

    /// The service as ECS describes it when it matches `wanted` (every field ECS returns for
    /// a Fargate service behind a load balancer).
    fn described(wanted: &ServiceSettings) -> ecs::builders::ServiceBuilder {
        ecs::Service::builder()
            .task_definition("td:1")
            .desired_count(wanted.desired)
            .network_configuration(wanted.network.clone())
            .set_load_balancers(Some(wanted.load_balancers.clone()))
            .set_service_registries(Some(wanted.registries.clone()))
            .deployment_configuration(wanted.deployment.clone())
            .health_check_grace_period_seconds(wanted.grace)
    }

    #[test]
    fn service_differences_see_the_circuit_breaker_and_the_grace_period() {
        let wanted = wanted_service();
        assert!(service_differences(&described(&wanted).build(), &wanted, Some("td:1")).is_empty());
        let without_rollback = ecs::DeploymentConfiguration::builder()
            .deployment_circuit_breaker(
                ecs::DeploymentCircuitBreaker::builder()
                    .enable(true)
                    .rollback(false)
                    .build(),
            )
            .minimum_healthy_percent(100)
            .maximum_percent(200)
            .build();
        let changed = described(&wanted)
            .deployment_configuration(without_rollback)
            .health_check_grace_period_seconds(0)
            .build();
        assert_eq!(
            service_differences(&changed, &wanted, Some("td:1")),
            ["deploymentConfiguration", "healthCheckGracePeriodSeconds"]
        );
        // A description lacking them (as API emulators return it) is not a match.
        let mut partial = described(&wanted).build();
        partial.deployment_configuration = None;
        partial.health_check_grace_period_seconds = None;
        assert_eq!(
            service_differences(&partial, &wanted, Some("td:1")),
            ["deploymentConfiguration", "healthCheckGracePeriodSeconds"]
        );
    }

    #[test]
    fn the_partition_comes_from_the_callers_arn() {
        assert_eq!(partition("arn:aws:iam::123456789012:user/ci"), Some("aws"));
        assert_eq!(
            partition("arn:aws-cn:sts::123456789012:assumed-role/deploy/x"),
            Some("aws-cn")
        );
        assert_eq!(
            partition("arn:aws-us-gov:iam::123456789012:root"),
            Some("aws-us-gov")
        );
        assert_eq!(partition("arn::iam::1:root"), None);
        assert_eq!(partition("not-an-arn"), None);
    }

    #[test]
    fn container_insights_is_read_from_the_cluster_settings() {
        let setting = |value: &str| {
            ecs::ClusterSetting::builder()
                .name(ecs::ClusterSettingName::ContainerInsights)
                .value(value)
                .build()
        };
        let enabled = ecs::Cluster::builder().settings(setting("enabled")).build();
        assert!(container_insights_is(&enabled, true));
        assert!(!container_insights_is(&enabled, false));
        let enhanced = ecs::Cluster::builder()
            .settings(setting("enhanced"))
            .build();
        assert!(container_insights_is(&enhanced, true));
        let disabled = ecs::Cluster::builder()
            .settings(setting("disabled"))
            .build();
        assert!(container_insights_is(&disabled, false));
        // Described without its settings, or never set: the account default, unknown here.
        let unknown = ecs::Cluster::builder().build();
        assert!(!container_insights_is(&unknown, false));
    }
}
