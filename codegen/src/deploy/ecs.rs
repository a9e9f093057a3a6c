//! ECS: the cluster (step 4), the task definition (step 5) and the service (step 9), each
//! described, compared with the model (through [`compare`]) and created or updated.

use aws_sdk_ecs::error::BuildError;
use aws_sdk_ecs::types as ecs;

use super::compare::{self, ServiceResources, ServiceSettings, signed};
use super::{AwsError, Clients, DeployError, Failure, Plan, Settings};
use crate::infra::{Cluster, TaskDefinition};

const FARGATE: &str = "FARGATE";

/// Step 4: the cluster with the Fargate capacity provider. Returns whether it exists (after a
/// dry run: whether it existed).
pub(super) async fn cluster(
    aws: &Clients,
    plan: &mut Plan<'_>,
    cluster: &Cluster,
) -> Result<bool, DeployError> {
    let strategy = ecs::CapacityProviderStrategyItem::builder()
        .capacity_provider(FARGATE)
        .weight(1)
        .build()?;
    let insights = cluster.container_insights_setting();
    let insights_setting = ecs::ClusterSetting::builder()
        .name(ecs::ClusterSettingName::ContainerInsights)
        .value(insights)
        .build();
    // ECS returns a cluster's settings only when asked for them.
    let described = aws
        .ecs
        .describe_clusters()
        .clusters(&cluster.name)
        .include(ecs::ClusterField::Settings)
        .send()
        .await
        .map_err(|e| AwsError::call("ecs:DescribeClusters", e))?;
    let active = described
        .clusters()
        .iter()
        .find(|c| c.status() == Some("ACTIVE"));
    let Some(current) = active else {
        if plan.change(format!(
            "create cluster {} (FARGATE capacity provider, Container Insights {insights})",
            cluster.name
        )) {
            aws.ecs
                .create_cluster()
                .cluster_name(&cluster.name)
                .capacity_providers(FARGATE)
                .default_capacity_provider_strategy(strategy)
                .settings(insights_setting)
                .send()
                .await
                .map_err(|e| AwsError::call("ecs:CreateCluster", e))?;
            return Ok(true);
        }
        return Ok(false);
    };
    // A shared cluster, named in `[aws] cluster`, keeps the settings its owners chose.
    if cluster.own
        && !compare::container_insights_is(current, cluster.container_insights)
        && plan.change(format!("turn Container Insights {insights}"))
    {
        aws.ecs
            .update_cluster_settings()
            .cluster(&cluster.name)
            .settings(insights_setting)
            .send()
            .await
            .map_err(|e| AwsError::call("ecs:UpdateClusterSettings", e))?;
    }
    let providers = current.capacity_providers();
    if !providers.iter().any(|p| p == FARGATE) && plan.change("add the FARGATE capacity provider") {
        let mut all = providers.to_vec();
        all.push(FARGATE.to_owned());
        aws.ecs
            .put_cluster_capacity_providers()
            .cluster(&cluster.name)
            .set_capacity_providers(Some(all))
            .default_capacity_provider_strategy(strategy)
            .send()
            .await
            .map_err(|e| AwsError::call("ecs:PutClusterCapacityProviders", e))?;
    }
    Ok(true)
}

/// Step 5: the latest revision of the family when it equals the model's definition, else a
/// new revision. Returns its ARN (none after a dry run that would register one).
pub(super) async fn task_definition(
    aws: &Clients,
    plan: &mut Plan<'_>,
    wanted: &TaskDefinition,
) -> Result<Option<String>, DeployError> {
    let described = aws
        .ecs
        .describe_task_definition()
        .task_definition(&wanted.family)
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
            let differences = wanted.differences(&compare::registered_task_definition(latest));
            if differences.is_empty() {
                return Ok(latest.task_definition_arn().map(str::to_owned));
            }
            format!(
                "register revision {} ({} changed)",
                latest.revision() + 1,
                differences.join(", ")
            )
        }
        None => format!("register the first revision of {}", wanted.family),
    };
    if plan.change(what) {
        return Ok(Some(register(aws, wanted).await?));
    }
    Ok(None)
}

/// The model's containers as the SDK's request types.
pub(super) fn container_definitions(
    definition: &TaskDefinition,
) -> Result<Vec<ecs::ContainerDefinition>, BuildError> {
    definition
        .container_definitions
        .iter()
        .map(|c| {
            let health = &c.health_check;
            let ports = c.port_mappings.iter().map(|p| {
                ecs::PortMapping::builder()
                    .name(&p.name)
                    .container_port(i32::from(p.container_port))
                    .protocol(p.protocol.as_str().into())
                    .app_protocol(p.app_protocol.as_str().into())
                    .build()
            });
            let environment = c.environment.iter().map(|v| {
                ecs::KeyValuePair::builder()
                    .name(&v.name)
                    .value(&v.value)
                    .build()
            });
            let depends_on = c
                .depends_on
                .iter()
                .map(|d| {
                    ecs::ContainerDependency::builder()
                        .container_name(&d.container_name)
                        .condition(d.condition.as_str().into())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ecs::ContainerDefinition::builder()
                .name(&c.name)
                .image(&c.image)
                .essential(c.essential)
                .set_command((!c.command.is_empty()).then(|| c.command.clone()))
                .set_depends_on((!depends_on.is_empty()).then_some(depends_on))
                .set_port_mappings(Some(ports.collect()))
                .set_environment(Some(environment.collect()))
                .health_check(
                    ecs::HealthCheck::builder()
                        .set_command(Some(health.command.clone()))
                        .interval(signed(health.interval))
                        .timeout(signed(health.timeout))
                        .retries(signed(health.retries))
                        .start_period(signed(health.start_period))
                        .build()?,
                )
                .log_configuration(
                    ecs::LogConfiguration::builder()
                        .log_driver(c.log_configuration.log_driver.as_str().into())
                        .set_options(Some(
                            c.log_configuration.options.clone().into_iter().collect(),
                        ))
                        .build()?,
                )
                .user(&c.user)
                .readonly_root_filesystem(c.readonly_root_filesystem)
                .stop_timeout(signed(c.stop_timeout))
                .build())
        })
        .collect()
}

/// Registers `definition` as a new revision; returns its ARN.
async fn register(aws: &Clients, definition: &TaskDefinition) -> Result<String, Failure> {
    let platform = &definition.runtime_platform;
    let registered = aws
        .ecs
        .register_task_definition()
        .family(&definition.family)
        .network_mode(definition.network_mode.as_str().into())
        .set_requires_compatibilities(Some(
            definition
                .requires_compatibilities
                .iter()
                .map(|c| c.as_str().into())
                .collect(),
        ))
        .cpu(&definition.cpu)
        .memory(&definition.memory)
        .runtime_platform(
            ecs::RuntimePlatform::builder()
                .cpu_architecture(platform.cpu_architecture.as_str().into())
                .operating_system_family(platform.operating_system_family.as_str().into())
                .build(),
        )
        .task_role_arn(&definition.task_role_arn)
        .execution_role_arn(&definition.execution_role_arn)
        .set_container_definitions(Some(container_definitions(definition)?))
        .send()
        .await
        .map_err(|e| AwsError::call("ecs:RegisterTaskDefinition", e))?;
    let arn = registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or(AwsError::Unexpected {
            operation: "ecs:RegisterTaskDefinition",
            returned: "no ARN",
        })?;
    Ok(arn.to_owned())
}

/// Step 9: the ECS service, created or updated to the model's settings.
pub(super) async fn service(
    aws: &Clients,
    plan: &mut Plan<'_>,
    settings: &Settings,
    cluster_exists: bool,
    resources: &ServiceResources<'_>,
) -> Result<(), DeployError> {
    let infra = &settings.infra;
    let (cluster, name) = (&infra.cluster.name, &infra.service.name);
    let network = &settings.network;
    let wanted = ServiceSettings::new(
        &infra.service,
        (&network.subnets, &network.security_groups),
        resources,
    )?;
    let current = if cluster_exists {
        let described = aws
            .ecs
            .describe_services()
            .cluster(cluster)
            .services(name)
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
            "create service {name} ({} tasks in {} subnets, behind the target group, in Cloud Map, circuit breaker with rollback)",
            wanted.desired,
            network.subnets.len()
        );
        if plan.change(what) {
            aws.ecs
                .create_service()
                .cluster(cluster)
                .service_name(name)
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
    let differences = compare::service_differences(&current, &wanted, resources.task_definition);
    if !differences.is_empty()
        && plan.change(format!(
            "update service {name} ({})",
            differences.join(", ")
        ))
    {
        aws.ecs
            .update_service()
            .cluster(cluster)
            .service(name)
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
