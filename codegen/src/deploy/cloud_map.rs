//! Cloud Map (step 6): the private DNS namespace in the VPC and the service's records in it.
//! Cloud Map's changes are asynchronous operations, each waited for with a bound.

use std::time::{Duration, Instant};

use aws_sdk_servicediscovery::types as sd;

use super::compare;
use super::{AwsError, Clients, DeployError, Failure, Plan, Settings};

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
    let record = compare::dns_record(&settings.infra.discovery)?;
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
    let discovery = &settings.infra.discovery;
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
        .find(|n| n.name() == Some(discovery.namespace.as_str()))
    {
        return Ok(namespace.id().map(str::to_owned));
    }
    if !plan.change(format!(
        "create private DNS namespace {} in {}",
        discovery.namespace, settings.network.vpc_id
    )) {
        return Ok(None);
    }
    let created = aws
        .discovery
        .create_private_dns_namespace()
        .name(&discovery.namespace)
        .vpc(&settings.network.vpc_id)
        .creator_request_id(format!(
            "svcgen-{}-{}",
            settings.infra.name, discovery.namespace
        ))
        .send()
        .await
        .map_err(|e| AwsError::call("servicediscovery:CreatePrivateDnsNamespace", e))?;
    let id = created.operation_id().unwrap_or_default();
    Ok(Some(
        operation(aws, id, sd::OperationTargetType::Namespace).await?,
    ))
}

/// The discovery service of the namespace, if it exists, as GetService describes it.
async fn find_discovery_service(
    aws: &Clients,
    settings: &Settings,
    namespace: &str,
) -> Result<Option<sd::Service>, DeployError> {
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
    let named = services
        .iter()
        .flat_map(|page| page.services())
        .filter(|s| s.name() == Some(settings.infra.discovery.service.as_str()));
    // The summaries do not name their namespace; the filter is not taken on trust (an API
    // emulator ignores it, and a service of the same name in another environment's
    // namespace must not be taken for this one's).
    for summary in named {
        let described = aws
            .discovery
            .get_service()
            .id(summary.id().unwrap_or_default())
            .send()
            .await
            .map_err(|e| AwsError::call("servicediscovery:GetService", e))?;
        if let Some(service) = described.service
            && service.namespace_id() == Some(namespace)
        {
            return Ok(Some(service));
        }
    }
    Ok(None)
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
        settings.infra.discovery.service,
        record.r#type().as_str(),
        record.ttl()
    );
    let (true, Some(namespace)) = (plan.change(what), namespace) else {
        return Ok(None);
    };
    let created = aws
        .discovery
        .create_service()
        .name(&settings.infra.discovery.service)
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
    existing: &sd::Service,
    record: sd::DnsRecord,
) -> Result<(), DeployError> {
    let records = existing
        .dns_config()
        .map(|c| c.dns_records())
        .unwrap_or_default();
    if records == [record.clone()]
        || !plan.change(format!(
            "set the DNS records of {} to {} with TTL {} s",
            settings.infra.discovery.service,
            record.r#type().as_str(),
            record.ttl()
        ))
    {
        return Ok(());
    }
    let updated = aws
        .discovery
        .update_service()
        .id(existing.id().unwrap_or_default())
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
