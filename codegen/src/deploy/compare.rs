//! Pure comparisons of what AWS describes (the SDK's types) with the [`Infrastructure`] model:
//! what differs, by the API's field names. Nothing here calls AWS; the tests build AWS's
//! responses through the SDK's own types, with every field AWS returns (an emulator that omits
//! a field does not make it equal).
//!
//! [`Infrastructure`]: crate::infra::Infrastructure

use aws_sdk_cloudwatch::types as cw;
use aws_sdk_ecs::error::BuildError;
use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2::types as elb;
use aws_sdk_servicediscovery::types as sd;
use serde_json::Value;

use crate::infra::monitoring::{Alarm, Monitoring};
use crate::infra::{
    Container, ContainerDependency, DEREGISTRATION_DELAY, Discovery, HealthCheck, ListenerRule,
    LogConfiguration, NameValue, PortMapping, RuntimePlatform, Service, TargetGroup,
    TaskDefinition,
};

fn text(s: Option<&str>) -> String {
    s.unwrap_or_default().to_owned()
}

fn unsigned(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or_default()
}

/// A value of the model as the SDK takes it.
pub(super) fn signed(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The revision ECS has, read back into the model's type (fields svcgen does not set, which
/// ECS fills with defaults, are not read).
pub(super) fn registered_task_definition(registered: &ecs::TaskDefinition) -> TaskDefinition {
    TaskDefinition {
        family: text(registered.family()),
        network_mode: registered
            .network_mode()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        requires_compatibilities: registered
            .requires_compatibilities()
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        cpu: text(registered.cpu()),
        memory: text(registered.memory()),
        runtime_platform: RuntimePlatform {
            cpu_architecture: registered
                .runtime_platform()
                .and_then(|p| p.cpu_architecture())
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            operating_system_family: registered
                .runtime_platform()
                .and_then(|p| p.operating_system_family())
                .map(|f| f.as_str().to_owned())
                .unwrap_or_default(),
        },
        task_role_arn: text(registered.task_role_arn()),
        execution_role_arn: text(registered.execution_role_arn()),
        container_definitions: registered
            .container_definitions()
            .iter()
            .map(registered_container)
            .collect(),
    }
}

fn registered_container(c: &ecs::ContainerDefinition) -> Container {
    Container {
        name: text(c.name()),
        image: text(c.image()),
        essential: c.essential().unwrap_or(false),
        command: c.command().to_vec(),
        depends_on: c
            .depends_on()
            .iter()
            .map(|d| ContainerDependency {
                container_name: d.container_name().to_owned(),
                condition: d.condition().as_str().to_owned(),
            })
            .collect(),
        port_mappings: c
            .port_mappings()
            .iter()
            .map(|p| PortMapping {
                name: text(p.name()),
                container_port: p
                    .container_port()
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or_default(),
                protocol: p
                    .protocol()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                app_protocol: p
                    .app_protocol()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            })
            .collect(),
        environment: c
            .environment()
            .iter()
            .map(|v| NameValue {
                name: text(v.name()),
                value: text(v.value()),
            })
            .collect(),
        health_check: HealthCheck {
            command: c
                .health_check()
                .map(|h| h.command().to_vec())
                .unwrap_or_default(),
            interval: unsigned(c.health_check().and_then(|h| h.interval())),
            timeout: unsigned(c.health_check().and_then(|h| h.timeout())),
            retries: unsigned(c.health_check().and_then(|h| h.retries())),
            start_period: unsigned(c.health_check().and_then(|h| h.start_period())),
        },
        log_configuration: LogConfiguration {
            log_driver: c
                .log_configuration()
                .map(|l| l.log_driver().as_str().to_owned())
                .unwrap_or_default(),
            options: c
                .log_configuration()
                .and_then(|l| l.options())
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        },
        user: text(c.user()),
        readonly_root_filesystem: c.readonly_root_filesystem().unwrap_or(false),
        stop_timeout: unsigned(c.stop_timeout()),
    }
}

/// The ECS service as `CreateService` / `UpdateService` take it: the model's settings, the
/// `[aws]` network and the resources it points at (none for what a dry run would create).
#[derive(Clone, Debug)]
pub(super) struct ServiceSettings {
    pub(super) network: ecs::NetworkConfiguration,
    pub(super) load_balancers: Vec<ecs::LoadBalancer>,
    pub(super) registries: Vec<ecs::ServiceRegistry>,
    pub(super) deployment: ecs::DeploymentConfiguration,
    pub(super) grace: i32,
    pub(super) desired: i32,
}

/// The resources the ECS service points at (none for what a dry run would create).
pub(super) struct ServiceResources<'a> {
    pub(super) task_definition: Option<&'a str>,
    pub(super) target_group: Option<&'a str>,
    pub(super) registry: Option<&'a str>,
}

impl ServiceSettings {
    pub(super) fn new(
        service: &Service,
        (subnets, security_groups): (&[String], &[String]),
        resources: &ServiceResources<'_>,
    ) -> Result<Self, BuildError> {
        let port = i32::from(service.container_port);
        let mut subnets = subnets.to_vec();
        subnets.sort();
        let mut groups = security_groups.to_vec();
        groups.sort();
        let named = service.registry_names_container;
        Ok(Self {
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
                    .container_name(&service.container_name)
                    .container_port(port)
                    .build(),
            ],
            registries: vec![
                ecs::ServiceRegistry::builder()
                    .set_registry_arn(resources.registry.map(str::to_owned))
                    .set_container_name(named.then(|| service.container_name.clone()))
                    .set_container_port(named.then_some(port))
                    .build(),
            ],
            deployment: ecs::DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    ecs::DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .minimum_healthy_percent(signed(service.minimum_healthy_percent))
                .maximum_percent(signed(service.maximum_percent))
                .build(),
            grace: signed(service.health_check_grace_period),
            desired: signed(service.desired_count),
        })
    }
}

/// What differs between the service ECS describes and the wanted settings.
pub(super) fn service_differences(
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
    differing(&checks)
}

fn differing(checks: &[(&'static str, bool)]) -> Vec<&'static str> {
    checks
        .iter()
        .filter(|(_, same)| !same)
        .map(|(field, _)| *field)
        .collect()
}

/// The first setting of an existing target group that cannot be changed and differs (the
/// group would have to be replaced).
pub(super) fn target_group_fixed(
    existing: &elb::TargetGroup,
    wanted: &TargetGroup,
    vpc_id: &str,
) -> Option<&'static str> {
    differing(&[
        ("port", existing.port() == Some(i32::from(wanted.port))),
        (
            "protocol version",
            existing.protocol_version() == Some("GRPC"),
        ),
        (
            "target type",
            existing.target_type() == Some(&elb::TargetTypeEnum::Ip),
        ),
        ("VPC", existing.vpc_id() == Some(vpc_id)),
    ])
    .first()
    .copied()
}

/// The health-check settings of an existing target group that differ from the model's.
pub(super) fn health_check_differences(
    existing: &elb::TargetGroup,
    wanted: &TargetGroup,
) -> Vec<&'static str> {
    differing(&[
        (
            "health check path",
            existing.health_check_path() == Some(wanted.health_check_path),
        ),
        (
            "interval",
            existing.health_check_interval_seconds() == Some(signed(wanted.health_check_interval)),
        ),
        (
            "timeout",
            existing.health_check_timeout_seconds() == Some(signed(wanted.health_check_timeout)),
        ),
        (
            "healthy threshold",
            existing.healthy_threshold_count() == Some(signed(wanted.healthy_threshold)),
        ),
        (
            "unhealthy threshold",
            existing.unhealthy_threshold_count() == Some(signed(wanted.unhealthy_threshold)),
        ),
        (
            "matcher",
            existing.matcher().and_then(|m| m.grpc_code()) == Some(wanted.matcher),
        ),
    ])
}

/// Whether the target group's attributes hold the model's deregistration delay.
pub(super) fn deregistration_delay_matches(
    attributes: &[elb::TargetGroupAttribute],
    wanted: &TargetGroup,
) -> bool {
    let delay = wanted.deregistration_delay.to_string();
    attributes
        .iter()
        .find(|a| a.key() == Some(DEREGISTRATION_DELAY))
        .and_then(|a| a.value())
        == Some(delay.as_str())
}

/// The values of a rule's `field` condition, sorted. ELB returns them in the condition's
/// config (`PathPatternConfig`, `HostHeaderConfig`), older rules in `Values`.
fn condition_values(rule: &elb::Rule, field: &str) -> Vec<String> {
    let mut values: Vec<String> = rule
        .conditions()
        .iter()
        .filter(|c| c.field() == Some(field))
        .flat_map(|c| {
            let configured = match field {
                "path-pattern" => c.path_pattern_config().map(|p| p.values()),
                _ => c.host_header_config().map(|h| h.values()),
            };
            match configured {
                Some(values) if !values.is_empty() => values.to_vec(),
                _ => c.values().to_vec(),
            }
        })
        .collect();
    values.sort();
    values
}

/// A rule's path patterns, sorted.
pub(super) fn path_patterns(rule: &elb::Rule) -> Vec<String> {
    condition_values(rule, "path-pattern")
}

/// A rule's host names (its `host-header` condition), lower-cased (ELB matches them without
/// regard to case) and sorted.
pub(super) fn host_headers(rule: &elb::Rule) -> Vec<String> {
    let mut hosts: Vec<String> = condition_values(rule, "host-header")
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    hosts.sort();
    hosts
}

/// Whether `text` matches ELB's wildcard `pattern` (`*` any run of characters, `?` one).
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            wildcard_match(rest, text) || (!text.is_empty() && wildcard_match(pattern, &text[1..]))
        }
        (Some((b'?', rest)), Some((_, text))) => wildcard_match(rest, text),
        (Some((p, rest)), Some((t, text))) if p == t => wildcard_match(rest, text),
        _ => false,
    }
}

/// Whether two ELB patterns can match one request: either matches the other read as text
/// (the other's wildcards as the characters they could stand for).
fn patterns_meet(a: &str, b: &str) -> bool {
    wildcard_match(a.as_bytes(), b.as_bytes()) || wildcard_match(b.as_bytes(), a.as_bytes())
}

/// The conditions the model's rule has, as ELB takes them.
pub(super) fn rule_conditions(wanted: &ListenerRule) -> Vec<elb::RuleCondition> {
    let paths = elb::RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            elb::PathPatternConditionConfig::builder()
                .set_values(Some(wanted.path_patterns.clone()))
                .build(),
        )
        .build();
    let host = wanted.host.as_ref().map(|host| {
        elb::RuleCondition::builder()
            .field("host-header")
            .host_header_config(
                elb::HostHeaderConditionConfig::builder()
                    .values(host)
                    .build(),
            )
            .build()
    });
    std::iter::once(paths).chain(host).collect()
}

/// Whether `rule` has exactly the model's conditions.
pub(super) fn rule_conditions_match(rule: &elb::Rule, wanted: &ListenerRule) -> bool {
    let host = wanted.host.as_ref().map(|h| h.to_ascii_lowercase());
    path_patterns(rule) == wanted.path_patterns
        && host_headers(rule) == host.into_iter().collect::<Vec<_>>()
        && rule
            .conditions()
            .iter()
            .all(|c| matches!(c.field(), Some("path-pattern" | "host-header")))
}

/// Whether `rule` (another service's) and the model's rule would take each other's calls. Of
/// two rules that match a request, the one with the lower priority number takes it: a rule on
/// one of the same paths conflicts when both match the same host (or both any host), or when
/// the one for any host comes first.
pub(super) fn rule_overlaps(rule: &elb::Rule, wanted: &ListenerRule) -> bool {
    let same_paths = path_patterns(rule).iter().any(|theirs| {
        wanted
            .path_patterns
            .iter()
            .any(|ours| patterns_meet(theirs, ours))
    });
    if rule.is_default() == Some(true) || !same_paths {
        return false;
    }
    let hosts = host_headers(rule);
    let theirs_first = rule
        .priority()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p < wanted.priority);
    match (&wanted.host, hosts.is_empty()) {
        (None, true) => true,
        (Some(host), false) => {
            let host = host.to_ascii_lowercase();
            hosts.iter().any(|theirs| patterns_meet(theirs, &host))
        }
        // Ours is for one host, theirs for any: theirs must not come first.
        (Some(_), true) => theirs_first,
        // Ours is for any host: it must not come before theirs.
        (None, false) => !theirs_first,
    }
}

/// The target groups a rule forwards to.
pub(super) fn forwarded_groups(rule: &elb::Rule) -> impl Iterator<Item = &str> {
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

/// `arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID` → NAME.
pub(super) fn target_group_name(arn: &str) -> Option<&str> {
    arn.split_once(":targetgroup/")?.1.split('/').next()
}

/// `arn:…:targetgroup/NAME/ID` → `targetgroup/NAME/ID`, the `TargetGroup` dimension of the load
/// balancer's metrics.
pub(super) fn target_group_full_name(arn: &str) -> Option<String> {
    let (name, id) = arn.split_once(":targetgroup/")?.1.split_once('/')?;
    let valid = |part: &str| !part.is_empty() && !part.contains('/');
    (valid(name) && valid(id)).then(|| format!("targetgroup/{name}/{id}"))
}

/// `arn:…:listener/app/NAME/ID/LISTENER` → `app/NAME/ID`, the `LoadBalancer` dimension of the
/// load balancer's metrics (the load balancer of an ALB listener).
pub(super) fn load_balancer_full_name(listener_arn: &str) -> Option<String> {
    let resource = listener_arn.split_once(":listener/")?.1;
    match resource.split('/').collect::<Vec<_>>()[..] {
        ["app", name, id, listener] if [name, id, listener].iter().all(|p| !p.is_empty()) => {
            Some(format!("app/{name}/{id}"))
        }
        _ => None,
    }
}

/// Whether the dashboard body CloudWatch returns is the model's, compared as JSON values (not
/// text: spacing and the order of keys do not matter).
pub(super) fn dashboard_matches(current: &str, wanted: &str) -> bool {
    match (
        serde_json::from_str::<Value>(current),
        serde_json::from_str::<Value>(wanted),
    ) {
        (Ok(current), Ok(wanted)) => current == wanted,
        _ => false,
    }
}

/// The model's alarm queries as `PutMetricAlarm` takes them.
pub(super) fn alarm_queries(alarm: &Alarm) -> Vec<cw::MetricDataQuery> {
    alarm
        .queries
        .iter()
        .map(|query| {
            let metric_stat = query.metric.as_ref().map(|metric| {
                let dimensions = metric
                    .dimensions
                    .iter()
                    .map(|(name, value)| cw::Dimension::builder().name(*name).value(value).build())
                    .collect();
                cw::MetricStat::builder()
                    .metric(
                        cw::Metric::builder()
                            .namespace(metric.namespace)
                            .metric_name(metric.name)
                            .set_dimensions(Some(dimensions))
                            .build(),
                    )
                    .period(signed(metric.period))
                    .stat(metric.stat)
                    .build()
            });
            cw::MetricDataQuery::builder()
                .id(query.id)
                .label(&query.label)
                .return_data(query.return_data)
                .set_expression(query.expression.clone())
                .set_metric_stat(metric_stat)
                .build()
        })
        .collect()
}

/// A query as the model sets it: its id, label, whether it returns the alarm's value, and its
/// expression or metric (namespace, name, dimensions sorted, period, statistic). What svcgen
/// does not set (a query's `Period` and `AccountId`, a metric's `Unit`) is left out.
type QueryKey<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    bool,
    Option<&'a str>,
    Option<MetricKey<'a>>,
);
type MetricKey<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Vec<(Option<&'a str>, Option<&'a str>)>,
    Option<i32>,
    Option<&'a str>,
);

fn query_key(query: &cw::MetricDataQuery) -> QueryKey<'_> {
    let metric = query.metric_stat().map(|stat| {
        let metric = stat.metric();
        let mut dimensions: Vec<_> = metric
            .map(|m| m.dimensions())
            .unwrap_or_default()
            .iter()
            .map(|d| (d.name(), d.value()))
            .collect();
        dimensions.sort();
        (
            metric.and_then(|m| m.namespace()),
            metric.and_then(|m| m.metric_name()),
            dimensions,
            stat.period(),
            stat.stat(),
        )
    });
    (
        query.id(),
        query.label(),
        // Omitted, ReturnData is true (CloudWatch's documented default).
        query.return_data().unwrap_or(true),
        query.expression(),
        metric,
    )
}

/// Sorted: the queries of an alarm are a set (each named by its id), in any order.
fn query_keys(queries: &[cw::MetricDataQuery]) -> Vec<QueryKey<'_>> {
    let mut keys: Vec<_> = queries.iter().map(query_key).collect();
    keys.sort();
    keys
}

/// What differs between the alarm CloudWatch describes and the model's (notifying `topic`),
/// by `PutMetricAlarm`'s field names. What CloudWatch adds of its own (ARN, state, timestamps)
/// is not compared. `PutMetricAlarm` replaces the whole configuration and svcgen's puts actions
/// enabled and no insufficient-data actions: actions disabled by hand (`DisableAlarmActions`)
/// or insufficient-data actions added are differences, which the next put undoes. A field the
/// model sets that the description omits counts as CloudWatch's documented default:
/// `ActionsEnabled` as true, `DatapointsToAlarm` as `EvaluationPeriods` (N out of N),
/// `TreatMissingData` as `missing`, a query's `ReturnData` as true.
pub(super) fn alarm_differences(
    current: &cw::MetricAlarm,
    wanted: &Alarm,
    topic: Option<&str>,
) -> Vec<&'static str> {
    let actions = |actions: &[String]| {
        let mut actions = actions.to_vec();
        actions.sort();
        actions
    };
    let topic: Vec<String> = topic.map(str::to_owned).into_iter().collect();
    let queries = alarm_queries(wanted);
    differing(&[
        (
            "AlarmDescription",
            current.alarm_description() == Some(wanted.description.as_str()),
        ),
        (
            "ComparisonOperator",
            current
                .comparison_operator()
                .map(cw::ComparisonOperator::as_str)
                == Some(wanted.comparison),
        ),
        ("Threshold", current.threshold() == Some(wanted.threshold)),
        (
            "EvaluationPeriods",
            current.evaluation_periods() == Some(signed(wanted.evaluation_periods)),
        ),
        (
            "DatapointsToAlarm",
            current
                .datapoints_to_alarm()
                .or(current.evaluation_periods())
                == Some(signed(wanted.datapoints_to_alarm)),
        ),
        (
            "TreatMissingData",
            current.treat_missing_data().unwrap_or("missing") == wanted.treat_missing_data,
        ),
        (
            "Metrics",
            query_keys(current.metrics()) == query_keys(&queries),
        ),
        ("ActionsEnabled", current.actions_enabled().unwrap_or(true)),
        ("AlarmActions", actions(current.alarm_actions()) == topic),
        ("OKActions", actions(current.ok_actions()) == topic),
        (
            "InsufficientDataActions",
            current.insufficient_data_actions().is_empty(),
        ),
    ])
}

/// The alarms named like the service's (`<name>-…`) that are not the model's but watch what its
/// alarms watch (a dimension of theirs other than the load balancer, which other services
/// share: the service's own metrics, its target group). svcgen leaves them to their owner;
/// another environment's alarms (`<name>-<environment>-…`) watch another service and target
/// group, and are not among them.
pub(super) fn other_alarms<'a>(
    described: &'a [cw::MetricAlarm],
    wanted: &Monitoring,
    name: &str,
) -> Vec<&'a str> {
    let watched: Vec<(&str, &str)> = wanted
        .alarms
        .iter()
        .flat_map(|alarm| &alarm.queries)
        .filter_map(|query| query.metric.as_ref())
        .flat_map(|metric| &metric.dimensions)
        .filter(|(dimension, _)| *dimension != "LoadBalancer")
        .map(|(dimension, value)| (*dimension, value.as_str()))
        .collect();
    let watches = |alarm: &cw::MetricAlarm| {
        let queried = alarm
            .metrics()
            .iter()
            .filter_map(|q| q.metric_stat()?.metric())
            .flat_map(|m| m.dimensions());
        alarm.dimensions().iter().chain(queried).any(|d| {
            watched
                .iter()
                .any(|w| (d.name(), d.value()) == (Some(w.0), Some(w.1)))
        })
    };
    let prefix = format!("{name}-");
    described
        .iter()
        .filter(|alarm| watches(alarm))
        .filter_map(|alarm| alarm.alarm_name())
        .filter(|alarm| {
            alarm.starts_with(&prefix) && !wanted.alarms.iter().any(|w| w.name == *alarm)
        })
        .collect()
}

/// The model's DNS record as Cloud Map takes it.
pub(super) fn dns_record(discovery: &Discovery) -> Result<sd::DnsRecord, BuildError> {
    sd::DnsRecord::builder()
        .r#type(discovery.record_type.to_string().as_str().into())
        .ttl(i64::from(discovery.ttl))
        .build()
}

/// Whether `cluster` (described with its settings) has Container Insights on (`enabled`, or
/// `enhanced` observability) or off, as `enabled` says. A cluster without the setting follows
/// the account's default, which svcgen cannot see: not a match.
pub(super) fn container_insights_is(cluster: &ecs::Cluster, enabled: bool) -> bool {
    cluster.settings().iter().any(|s| {
        s.name() == Some(&ecs::ClusterSettingName::ContainerInsights)
            && match s.value() {
                Some("enabled" | "enhanced") => enabled,
                Some("disabled") => !enabled,
                _ => false,
            }
    })
}

/// A policy document as IAM returns it (URL-encoded) or as svcgen writes it, parsed.
pub(super) fn policy(document: &str) -> Option<Value> {
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

/// The partition of an ARN: `arn:PARTITION:service:…`.
pub(super) fn partition(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.next())
        .flatten()
        .filter(|p| !p.is_empty() && parts.next().is_some())
}

#[cfg(test)]
mod tests;
