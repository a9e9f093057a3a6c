//! The comparisons on responses shaped like AWS's, built through the SDK's types: a resource
//! as AWS describes it when it matches the model (with the fields AWS adds of its own), then
//! with each setting svcgen manages changed.

use std::path::Path;

use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2::types as elb;

use super::*;
use crate::infra::{Infrastructure, Target};

fn example() -> Infrastructure {
    example_with(|_| {})
}

/// The example's infrastructure with its configuration changed by `adjust`.
fn example_with(adjust: impl FnOnce(&mut crate::config::Config)) -> Infrastructure {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated-example");
    let mut project = crate::load(&dir).expect("the example loads");
    adjust(&mut project.config);
    let target = Target {
        partition: "aws",
        region: "eu-west-1",
        account: "123456789012",
    };
    Infrastructure::new(&project.config, &project.model, target)
}

/// The revision as DescribeTaskDefinition returns it for the model's registration: what svcgen
/// sent, plus what ECS fills in (container `cpu` 0, empty mount points and volumes, the
/// revision, status, compatibilities, `registeredAt`, …) and the environment in another order.
fn described_task_definition(wanted: &TaskDefinition) -> ecs::TaskDefinition {
    let containers = crate::deploy::ecs::container_definitions(wanted)
        .expect("the model's containers build")
        .into_iter()
        .map(|c| {
            let mut environment = c.environment().to_vec();
            environment.reverse();
            let mut c = c;
            c.environment = Some(environment);
            c.cpu = 0;
            c.mount_points = Some(Vec::new());
            c.volumes_from = Some(Vec::new());
            c.system_controls = Some(Vec::new());
            c
        })
        .collect();
    ecs::TaskDefinition::builder()
        .task_definition_arn(format!(
            "arn:aws:ecs:eu-west-1:123456789012:task-definition/{}:3",
            wanted.family
        ))
        .family(&wanted.family)
        .revision(3)
        .status(ecs::TaskDefinitionStatus::Active)
        .network_mode(ecs::NetworkMode::Awsvpc)
        .requires_compatibilities(ecs::Compatibility::Fargate)
        .compatibilities(ecs::Compatibility::Ec2)
        .compatibilities(ecs::Compatibility::Fargate)
        .cpu(&wanted.cpu)
        .memory(&wanted.memory)
        .runtime_platform(
            ecs::RuntimePlatform::builder()
                .cpu_architecture(ecs::CpuArchitecture::X8664)
                .operating_system_family(ecs::OsFamily::Linux)
                .build(),
        )
        .task_role_arn(&wanted.task_role_arn)
        .execution_role_arn(&wanted.execution_role_arn)
        .set_container_definitions(Some(containers))
        .requires_attributes(
            ecs::Attribute::builder()
                .name("com.amazonaws.ecs.capability.logging-driver.awslogs")
                .build()
                .expect("named"),
        )
        .build()
}

#[test]
fn a_task_definition_ecs_describes_as_registered_has_no_differences() {
    let wanted = example().task_definition;
    let described = registered_task_definition(&described_task_definition(&wanted));
    assert_eq!(wanted.differences(&described), Vec::<&str>::new());
}

#[test]
fn a_task_definition_differs_in_each_setting_svcgen_manages() {
    let wanted = example().task_definition;
    let mut changed = described_task_definition(&wanted);
    changed.memory = Some("2048".into());
    let containers = changed.container_definitions.as_mut().expect("containers");
    containers[0].image = Some("elsewhere:v2".into());
    containers[0].stop_timeout = Some(30);
    containers[0].readonly_root_filesystem = Some(false);
    containers[0]
        .environment
        .as_mut()
        .expect("environment")
        .retain(|v| v.name() != Some("SHUTDOWN_DELAY_SECS"));
    if let Some(health) = containers[0].health_check.as_mut() {
        health.start_period = Some(0);
    }
    let described = registered_task_definition(&changed);
    assert_eq!(
        wanted.differences(&described),
        [
            "memory",
            "image",
            "environment",
            "healthCheck",
            "readonlyRootFilesystem",
            "stopTimeout"
        ]
    );
}

#[test]
fn a_task_definition_with_the_collector_compares_both_containers() {
    let traced = example_with(|config| {
        config.deploy.observability.collector = crate::config::Collector::Adot;
    });
    let wanted = traced.task_definition;
    let described = described_task_definition(&wanted);
    let containers = described.container_definitions();
    assert_eq!(
        containers[0].depends_on()[0].container_name(),
        "otel-collector"
    );
    assert_eq!(containers[1].command(), ["--config=/etc/ecs/ecs-xray.yaml"]);
    assert_eq!(
        wanted.differences(&registered_task_definition(&described)),
        Vec::<&str>::new()
    );
    // The revision registered before the collector was enabled, and the other way round.
    let plain = example().task_definition;
    let registered_plain = registered_task_definition(&described_task_definition(&plain));
    assert_eq!(
        wanted.differences(&registered_plain),
        ["containerDefinitions"]
    );
    assert_eq!(
        plain.differences(&registered_task_definition(&described)),
        ["containerDefinitions"]
    );
    let mut changed = described.clone();
    let containers = changed.container_definitions.as_mut().expect("containers");
    containers[1].image =
        Some("public.ecr.aws/aws-observability/aws-otel-collector:v0.50.0".into());
    assert_eq!(
        wanted.differences(&registered_task_definition(&changed)),
        ["image"]
    );
    let mut changed = described;
    let containers = changed.container_definitions.as_mut().expect("containers");
    containers[0].depends_on = None;
    containers[1].command = None;
    assert_eq!(
        wanted.differences(&registered_task_definition(&changed)),
        ["dependsOn", "command"]
    );
}

fn wanted_service() -> ServiceSettings {
    let infra = example();
    let resources = ServiceResources {
        task_definition: Some("td:1"),
        target_group: Some("tg"),
        registry: Some("sd"),
    };
    let network = (
        ["subnet-b".to_owned(), "subnet-a".to_owned()],
        ["sg-a".to_owned()],
    );
    ServiceSettings::new(&infra.service, (&network.0, &network.1), &resources)
        .expect("the settings build")
}

/// The service as ECS describes it when it matches `wanted` (every field ECS returns for a
/// Fargate service behind a load balancer, the subnets in ECS's order).
fn described_service(wanted: &ServiceSettings) -> ecs::builders::ServiceBuilder {
    let network = ecs::NetworkConfiguration::builder()
        .awsvpc_configuration(
            ecs::AwsVpcConfiguration::builder()
                .subnets("subnet-b")
                .subnets("subnet-a")
                .security_groups("sg-a")
                .assign_public_ip(ecs::AssignPublicIp::Disabled)
                .build()
                .expect("subnets set"),
        )
        .build();
    ecs::Service::builder()
        .service_name("task-svc")
        .status("ACTIVE")
        .task_definition("td:1")
        .desired_count(wanted.desired)
        .running_count(wanted.desired)
        .launch_type(ecs::LaunchType::Fargate)
        .network_configuration(network)
        .set_load_balancers(Some(wanted.load_balancers.clone()))
        .set_service_registries(Some(wanted.registries.clone()))
        .deployment_configuration(wanted.deployment.clone())
        .health_check_grace_period_seconds(wanted.grace)
}

#[test]
fn service_differences_see_the_circuit_breaker_and_the_grace_period() {
    let wanted = wanted_service();
    assert_eq!(wanted.grace, 30);
    assert!(
        service_differences(&described_service(&wanted).build(), &wanted, Some("td:1")).is_empty()
    );
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
    let changed = described_service(&wanted)
        .deployment_configuration(without_rollback)
        .health_check_grace_period_seconds(0)
        .desired_count(1)
        .build();
    assert_eq!(
        service_differences(&changed, &wanted, Some("td:2")),
        [
            "taskDefinition",
            "desiredCount",
            "deploymentConfiguration",
            "healthCheckGracePeriodSeconds"
        ]
    );
    // A description lacking them (as API emulators return it) is not a match.
    let mut partial = described_service(&wanted).build();
    partial.deployment_configuration = None;
    partial.health_check_grace_period_seconds = None;
    assert_eq!(
        service_differences(&partial, &wanted, Some("td:1")),
        ["deploymentConfiguration", "healthCheckGracePeriodSeconds"]
    );
}

/// The target group as DescribeTargetGroups returns it for the model's settings.
fn described_target_group(wanted: &TargetGroup) -> elb::builders::TargetGroupBuilder {
    elb::TargetGroup::builder()
        .target_group_arn(format!(
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{}/73e2d6bc24d8a067",
            wanted.name
        ))
        .target_group_name(&wanted.name)
        .protocol(elb::ProtocolEnum::Http)
        .protocol_version("GRPC")
        .port(i32::from(wanted.port))
        .vpc_id("vpc-1")
        .health_check_protocol(elb::ProtocolEnum::Http)
        .health_check_port("traffic-port")
        .health_check_enabled(true)
        .health_check_path(wanted.health_check_path)
        .health_check_interval_seconds(signed(wanted.health_check_interval))
        .health_check_timeout_seconds(signed(wanted.health_check_timeout))
        .healthy_threshold_count(signed(wanted.healthy_threshold))
        .unhealthy_threshold_count(signed(wanted.unhealthy_threshold))
        .matcher(elb::Matcher::builder().grpc_code(wanted.matcher).build())
        .target_type(elb::TargetTypeEnum::Ip)
        .ip_address_type(elb::TargetGroupIpAddressTypeEnum::Ipv4)
}

#[test]
fn target_group_settings_are_compared_as_elb_returns_them() {
    let wanted = example().target_group;
    let matching = described_target_group(&wanted).build();
    assert_eq!(target_group_fixed(&matching, &wanted, "vpc-1"), None);
    assert!(health_check_differences(&matching, &wanted).is_empty());
    assert_eq!(target_group_fixed(&matching, &wanted, "vpc-2"), Some("VPC"));
    let http1 = described_target_group(&wanted)
        .protocol_version("HTTP1")
        .build();
    assert_eq!(
        target_group_fixed(&http1, &wanted, "vpc-1"),
        Some("protocol version")
    );
    let changed = described_target_group(&wanted)
        .health_check_interval_seconds(30)
        .healthy_threshold_count(5)
        .matcher(elb::Matcher::builder().grpc_code("0-99").build())
        .build();
    assert_eq!(
        health_check_differences(&changed, &wanted),
        ["interval", "healthy threshold", "matcher"]
    );
    let attribute = |key: &str, value: &str| {
        elb::TargetGroupAttribute::builder()
            .key(key)
            .value(value)
            .build()
    };
    let attributes = [
        attribute("stickiness.enabled", "false"),
        attribute(DEREGISTRATION_DELAY, "20"),
    ];
    assert!(deregistration_delay_matches(&attributes, &wanted));
    assert!(!deregistration_delay_matches(
        &[attribute(DEREGISTRATION_DELAY, "300")],
        &wanted
    ));
    assert!(!deregistration_delay_matches(&[], &wanted));
}

#[test]
fn listener_rules_are_read_in_both_shapes_elb_returns() {
    let forward = elb::Action::builder()
        .r#type(elb::ActionTypeEnum::Forward)
        .forward_config(
            elb::ForwardActionConfig::builder()
                .target_groups(
                    elb::TargetGroupTuple::builder()
                        .target_group_arn(
                            "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/task-svc/1",
                        )
                        .build(),
                )
                .build(),
        )
        .build();
    let rule = elb::Rule::builder()
        .priority("100")
        .conditions(
            elb::RuleCondition::builder()
                .field("path-pattern")
                .values("/b.B/*")
                .values("/a.A/*")
                .build(),
        )
        .actions(forward)
        .build();
    assert_eq!(path_patterns(&rule), ["/a.A/*", "/b.B/*"]);
    let groups: Vec<&str> = forwarded_groups(&rule).collect();
    assert_eq!(groups.len(), 1);
    assert_eq!(target_group_name(groups[0]), Some("task-svc"));
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

#[test]
fn policies_iam_returns_url_encoded_equal_the_model() {
    let role = example().task_role;
    let text = serde_json::to_string(&role.policy).expect("JSON");
    let encoded: String = text
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let wanted = serde_json::to_value(&role.policy).expect("JSON");
    assert_eq!(policy(&encoded), Some(wanted.clone()));
    assert_eq!(policy(&text), Some(wanted));
    assert_eq!(policy("%7B%22Version"), None);
}

fn rule(paths: &[&str], hosts: &[&str]) -> elb::Rule {
    let mut rule = elb::Rule::builder().priority("100").conditions(
        elb::RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                elb::PathPatternConditionConfig::builder()
                    .set_values(Some(paths.iter().map(|p| (*p).to_owned()).collect()))
                    .build(),
            )
            .build(),
    );
    if !hosts.is_empty() {
        rule = rule.conditions(
            elb::RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    elb::HostHeaderConditionConfig::builder()
                        .set_values(Some(hosts.iter().map(|h| (*h).to_owned()).collect()))
                        .build(),
                )
                .build(),
        );
    }
    rule.build()
}

#[test]
fn rules_of_other_environments_conflict_unless_hosts_and_priorities_keep_them_apart() {
    let mut wanted = example().listener_rule;
    assert_eq!(wanted.priority, 100);
    let paths = ["/tasks.TaskService/*"];
    let at = |priority: &str, rule: elb::Rule| {
        let mut rule = rule;
        rule.priority = Some(priority.to_owned());
        rule
    };
    // Both for any host: whichever comes first takes every call.
    assert!(rule_overlaps(&at("90", rule(&paths, &[])), &wanted));
    assert!(rule_overlaps(&at("110", rule(&paths, &[])), &wanted));
    assert!(!rule_overlaps(
        &at("90", rule(&["/other.Other/*"], &[])),
        &wanted
    ));
    // Ours for any host is fine after a rule for one host, not before it.
    assert!(!rule_overlaps(
        &at("90", rule(&paths, &["a.example.com"])),
        &wanted
    ));
    assert!(rule_overlaps(
        &at("110", rule(&paths, &["a.example.com"])),
        &wanted
    ));
    wanted.host = Some("tasks.staging.example.com".into());
    // Ours for one host is fine before a rule for any host, not after it.
    assert!(!rule_overlaps(&at("110", rule(&paths, &[])), &wanted));
    assert!(rule_overlaps(&at("90", rule(&paths, &[])), &wanted));
    assert!(rule_overlaps(
        &at("110", rule(&paths, &["tasks.staging.example.com"])),
        &wanted
    ));
    assert!(!rule_overlaps(
        &at("90", rule(&paths, &["tasks.example.com"])),
        &wanted
    ));
    let default = elb::Rule::builder().is_default(true).build();
    assert!(!rule_overlaps(&default, &wanted));
    // ELB's wildcards and its case-blind host matching.
    assert!(rule_overlaps(
        &at("90", rule(&["/*"], &["*.example.com"])),
        &wanted
    ));
    assert!(rule_overlaps(
        &at("110", rule(&["/tasks.*"], &["TASKS.staging.example.com"])),
        &wanted
    ));
    assert!(rule_overlaps(
        &at(
            "110",
            rule(
                &["/tasks.TaskService/Get?ask"],
                &["tasks.staging.example.com"]
            )
        ),
        &wanted
    ));
    assert!(!rule_overlaps(
        &at("90", rule(&["/*"], &["*.example.org"])),
        &wanted
    ));
    // Host names in the older `Values` shape are read too.
    let legacy = elb::Rule::builder()
        .priority("110")
        .conditions(
            elb::RuleCondition::builder()
                .field("path-pattern")
                .values("/*")
                .build(),
        )
        .conditions(
            elb::RuleCondition::builder()
                .field("host-header")
                .values("tasks.staging.example.com")
                .build(),
        )
        .build();
    assert_eq!(host_headers(&legacy), ["tasks.staging.example.com"]);
    assert!(rule_overlaps(&legacy, &wanted));

    // The rule svcgen creates has exactly the model's conditions; a host added or taken away
    // is a difference.
    let created = elb::Rule::builder()
        .set_conditions(Some(rule_conditions(&wanted)))
        .build();
    assert!(rule_conditions_match(&created, &wanted));
    assert!(!rule_conditions_match(&rule(&paths, &[]), &wanted));
    wanted.host = None;
    assert!(rule_conditions_match(&rule(&paths, &[]), &wanted));
    assert!(!rule_conditions_match(&created, &wanted));
}

#[test]
fn the_load_balancers_dimensions_come_from_the_arns() {
    assert_eq!(
        target_group_full_name(
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/task-svc/73e2d6bc24d8a067"
        )
        .as_deref(),
        Some("targetgroup/task-svc/73e2d6bc24d8a067")
    );
    assert_eq!(
        target_group_full_name("arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/task-svc"),
        None
    );
    assert_eq!(
        target_group_full_name("arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/b/c"),
        None
    );
    assert_eq!(
        load_balancer_full_name(
            "arn:aws-cn:elasticloadbalancing:cn-north-1:123456789012:listener/app/edge/50dc6c495c0c9188/f2f7dc8efc522ab2"
        )
        .as_deref(),
        Some("app/edge/50dc6c495c0c9188")
    );
    for not_an_alb_listener in [
        "arn:aws:elasticloadbalancing:eu-west-1:1:listener/net/edge/50dc6c495c0c9188/f2f7dc8efc522ab2",
        "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/edge/50dc6c495c0c9188",
        "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/edge//f2f7dc8efc522ab2",
        "arn:aws:elasticloadbalancing:eu-west-1:1:listener-rule/app/edge/5/f/1",
    ] {
        assert_eq!(load_balancer_full_name(not_an_alb_listener), None);
    }
}

#[test]
fn dashboards_are_compared_as_json_values() {
    let wanted = example().monitoring.dashboard_body;
    let value: Value = serde_json::from_str(&wanted).expect("JSON");
    let pretty = serde_json::to_string_pretty(&value).expect("JSON");
    assert_ne!(pretty, wanted);
    assert!(dashboard_matches(&pretty, &wanted));
    let mut changed = value;
    changed["widgets"][2]["properties"]["title"] = "p95 latency".into();
    assert!(!dashboard_matches(&changed.to_string(), &wanted));
    assert!(!dashboard_matches("", &wanted));
}

const TARGET_GROUP: &str = "targetgroup/task-svc/73e2d6bc24d8a067";
const LOAD_BALANCER: &str = "app/edge/50dc6c495c0c9188";
const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:on-call";

fn monitoring() -> crate::infra::Monitoring {
    example()
        .monitoring
        .for_load_balancer(TARGET_GROUP, LOAD_BALANCER)
}

/// The alarm as DescribeAlarms returns it after svcgen's PutMetricAlarm: the queries svcgen
/// sent (in another order, a metric's dimensions too), actions enabled, no insufficient-data
/// actions, plus what CloudWatch adds of its own (ARN, state, timestamps, no single metric).
fn described_alarm(wanted: &Alarm, topic: Option<&str>) -> cw::builders::MetricAlarmBuilder {
    let mut queries = alarm_queries(wanted);
    queries.reverse();
    for query in &mut queries {
        let metric = query.metric_stat.as_mut().and_then(|s| s.metric.as_mut());
        if let Some(dimensions) = metric.and_then(|m| m.dimensions.as_mut()) {
            dimensions.reverse();
        }
    }
    let actions: Vec<String> = topic.map(str::to_owned).into_iter().collect();
    let now = aws_sdk_cloudwatch::primitives::DateTime::from_secs(1_767_225_600);
    cw::MetricAlarm::builder()
        .alarm_name(&wanted.name)
        .alarm_arn(format!(
            "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{}",
            wanted.name
        ))
        .alarm_description(&wanted.description)
        .alarm_configuration_updated_timestamp(now)
        .actions_enabled(true)
        .set_ok_actions(Some(actions.clone()))
        .set_alarm_actions(Some(actions))
        .set_insufficient_data_actions(Some(Vec::new()))
        .state_value(cw::StateValue::InsufficientData)
        .state_reason("Unchecked: Initial alarm creation")
        .state_updated_timestamp(now)
        .state_transitioned_timestamp(now)
        .set_dimensions(Some(Vec::new()))
        .evaluation_periods(signed(wanted.evaluation_periods))
        .datapoints_to_alarm(signed(wanted.datapoints_to_alarm))
        .threshold(wanted.threshold)
        .comparison_operator(wanted.comparison.into())
        .treat_missing_data(wanted.treat_missing_data)
        .set_metrics(Some(queries))
}

#[test]
fn alarms_cloudwatch_describes_as_put_have_no_differences() {
    let monitoring = monitoring();
    assert_eq!(monitoring.alarms.len(), 4);
    for alarm in &monitoring.alarms {
        for topic in [None, Some(TOPIC)] {
            let described = described_alarm(alarm, topic).build();
            assert_eq!(
                alarm_differences(&described, alarm, topic),
                Vec::<&str>::new(),
                "{}",
                alarm.name
            );
        }
    }
    // The latency alarm written out as CloudWatch returns it, not through alarm_queries.
    let latency = &monitoring.alarms[1];
    let query = cw::MetricDataQuery::builder()
        .id("p99")
        .label("Latency p99")
        .return_data(true)
        .metric_stat(
            cw::MetricStat::builder()
                .metric(
                    cw::Metric::builder()
                        .namespace("svcgen")
                        .metric_name("Latency")
                        .dimensions(
                            cw::Dimension::builder()
                                .name("Service")
                                .value("task-svc")
                                .build(),
                        )
                        .build(),
                )
                .period(60)
                .stat("p99")
                .build(),
        )
        .build();
    let described = described_alarm(latency, None)
        .set_metrics(Some(vec![query]))
        .build();
    assert!(alarm_differences(&described, latency, None).is_empty());
    // CloudWatch's state does not make it differ: svcgen does not set it.
    let alarming = described_alarm(latency, None)
        .state_value(cw::StateValue::Alarm)
        .state_reason("Threshold Crossed: 3 out of the last 5 datapoints were greater")
        .build();
    assert!(alarm_differences(&alarming, latency, None).is_empty());
    // Described without ActionsEnabled, actions are enabled (CloudWatch's default).
    let mut omitted = described_alarm(latency, Some(TOPIC)).build();
    omitted.actions_enabled = None;
    omitted.insufficient_data_actions = None;
    assert!(alarm_differences(&omitted, latency, Some(TOPIC)).is_empty());
}

/// svcgen owns the alarms it names, and its PutMetricAlarm replaces their whole configuration
/// with actions enabled and no insufficient-data actions: what an operator changed there is a
/// difference the next deploy puts back, not one it would undo unannounced when it puts the
/// alarm for another reason.
#[test]
fn alarms_with_actions_disabled_or_insufficient_data_actions_differ() {
    let monitoring = monitoring();
    let latency = &monitoring.alarms[1];
    for topic in [None, Some(TOPIC)] {
        // `aws cloudwatch disable-alarm-actions`, whatever the alarm's state.
        let disabled = described_alarm(latency, topic)
            .actions_enabled(false)
            .build();
        assert_eq!(
            alarm_differences(&disabled, latency, topic),
            ["ActionsEnabled"]
        );
        let alarming = described_alarm(latency, topic)
            .state_value(cw::StateValue::Alarm)
            .actions_enabled(false)
            .build();
        assert_eq!(
            alarm_differences(&alarming, latency, topic),
            ["ActionsEnabled"]
        );
        // Insufficient-data actions, to svcgen's topic or another.
        for notified in [TOPIC, "arn:aws:sns:eu-west-1:123456789012:elsewhere"] {
            let insufficient = described_alarm(latency, topic)
                .insufficient_data_actions(notified)
                .build();
            assert_eq!(
                alarm_differences(&insufficient, latency, topic),
                ["InsufficientDataActions"]
            );
        }
    }
    // Both, with another change: each named, in PutMetricAlarm's terms.
    let changed = described_alarm(latency, None)
        .threshold(500.0)
        .actions_enabled(false)
        .insufficient_data_actions(TOPIC)
        .build();
    assert_eq!(
        alarm_differences(&changed, latency, None),
        ["Threshold", "ActionsEnabled", "InsufficientDataActions"]
    );
}

#[test]
fn alarms_differ_in_each_setting_svcgen_manages() {
    let monitoring = monitoring();
    let (server_errors, latency, unhealthy) = (
        &monitoring.alarms[0],
        &monitoring.alarms[1],
        &monitoring.alarms[3],
    );
    let changed = described_alarm(latency, None).threshold(500.0).build();
    assert_eq!(alarm_differences(&changed, latency, None), ["Threshold"]);

    // A query: its statistic, its expression, a dimension, a label, which one returns data.
    let queries = |alarm: &Alarm, change: &dyn Fn(&mut cw::MetricDataQuery)| {
        let mut queries = alarm_queries(alarm);
        queries.iter_mut().for_each(change);
        queries
    };
    let p95 = queries(latency, &|q| {
        if let Some(stat) = q.metric_stat.as_mut() {
            stat.stat = Some("p95".into());
        }
    });
    let expression = queries(server_errors, &|q| {
        if q.expression.is_some() {
            q.expression = Some("100 * errors / calls".into());
        }
    });
    let other_group = queries(unhealthy, &|q| {
        let metric = q.metric_stat.as_mut().and_then(|s| s.metric.as_mut());
        for dimension in metric
            .and_then(|m| m.dimensions.as_mut())
            .into_iter()
            .flatten()
        {
            if dimension.name.as_deref() == Some("TargetGroup") {
                dimension.value = Some("targetgroup/task-svc/0000000000000000".into());
            }
        }
    });
    let unlabelled = queries(latency, &|q| q.label = None);
    let all_returned = queries(server_errors, &|q| q.return_data = Some(true));
    for (alarm, queries) in [
        (latency, p95),
        (server_errors, expression),
        (unhealthy, other_group),
        (latency, unlabelled),
        (server_errors, all_returned),
    ] {
        let changed = described_alarm(alarm, None)
            .set_metrics(Some(queries))
            .build();
        assert_eq!(alarm_differences(&changed, alarm, None), ["Metrics"]);
    }
    let one_query_less = alarm_queries(server_errors)[1..].to_vec();
    let changed = described_alarm(server_errors, None)
        .set_metrics(Some(one_query_less))
        .build();
    assert_eq!(
        alarm_differences(&changed, server_errors, None),
        ["Metrics"]
    );

    // The topic: another, none, or one where there was none.
    let other = "arn:aws:sns:eu-west-1:123456789012:elsewhere";
    for (described, wanted) in [
        (Some(other), Some(TOPIC)),
        (Some(TOPIC), None),
        (None, Some(TOPIC)),
    ] {
        let changed = described_alarm(latency, described).build();
        assert_eq!(
            alarm_differences(&changed, latency, wanted),
            ["AlarmActions", "OKActions"]
        );
    }
    let changed = described_alarm(latency, None)
        .alarm_description("old")
        .comparison_operator(cw::ComparisonOperator::GreaterThanOrEqualToThreshold)
        .evaluation_periods(3)
        .build();
    assert_eq!(
        alarm_differences(&changed, latency, None),
        [
            "AlarmDescription",
            "ComparisonOperator",
            "EvaluationPeriods"
        ]
    );
}

#[test]
fn fields_cloudwatch_omits_count_as_their_documented_defaults() {
    let monitoring = monitoring();
    let (server_errors, latency) = (&monitoring.alarms[0], &monitoring.alarms[1]);
    // Without DatapointsToAlarm an alarm is N out of N; without TreatMissingData, missing data
    // is `missing`. svcgen's are 3 out of 5, `notBreaching`.
    let mut omitted = described_alarm(latency, None).build();
    omitted.datapoints_to_alarm = None;
    omitted.treat_missing_data = None;
    assert_eq!(
        alarm_differences(&omitted, latency, None),
        ["DatapointsToAlarm", "TreatMissingData"]
    );
    let mut n_of_n = latency.clone();
    n_of_n.datapoints_to_alarm = n_of_n.evaluation_periods;
    n_of_n.treat_missing_data = "missing";
    assert!(alarm_differences(&omitted, &n_of_n, None).is_empty());
    // A query without ReturnData returns data: the one that does matches, the others do not.
    let returns = alarm_queries(latency)
        .into_iter()
        .map(|mut q| {
            q.return_data = None;
            q
        })
        .collect();
    let described = described_alarm(latency, None)
        .set_metrics(Some(returns))
        .build();
    assert!(alarm_differences(&described, latency, None).is_empty());
    let mut queries = alarm_queries(server_errors);
    queries[0].return_data = None;
    let described = described_alarm(server_errors, None)
        .set_metrics(Some(queries))
        .build();
    assert_eq!(
        alarm_differences(&described, server_errors, None),
        ["Metrics"]
    );
}

#[test]
fn alarms_named_like_the_services_are_reported_only_when_they_watch_it() {
    let monitoring = monitoring();
    let watching = |name: &str, dimension: &str, value: &str| {
        let metric = cw::Metric::builder()
            .namespace("svcgen")
            .metric_name("Calls")
            .dimensions(
                cw::Dimension::builder()
                    .name(dimension)
                    .value(value)
                    .build(),
            )
            .build();
        let query = cw::MetricDataQuery::builder()
            .id("m")
            .metric_stat(
                cw::MetricStat::builder()
                    .metric(metric)
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .build();
        cw::MetricAlarm::builder()
            .alarm_name(name)
            .metrics(query)
            .build()
    };
    let mut described: Vec<cw::MetricAlarm> = monitoring
        .alarms
        .iter()
        .map(|a| described_alarm(a, None).build())
        .collect();
    described.extend([
        // An alarm svcgen no longer generates, on the service's metrics.
        watching("task-svc-calls", "Service", "task-svc"),
        // Another environment's.
        watching(
            "task-svc-staging-latency-p99",
            "Service",
            "task-svc-staging",
        ),
        // Only the load balancer, which other services share.
        watching("task-svc-balancer", "LoadBalancer", LOAD_BALANCER),
        // Not named like the service's.
        watching("billing-calls", "Service", "task-svc"),
    ]);
    // A single-metric alarm on the service's target group.
    described.push(
        cw::MetricAlarm::builder()
            .alarm_name("task-svc-unhealthy")
            .namespace("AWS/ApplicationELB")
            .metric_name("UnHealthyHostCount")
            .dimensions(
                cw::Dimension::builder()
                    .name("TargetGroup")
                    .value(TARGET_GROUP)
                    .build(),
            )
            .build(),
    );
    assert_eq!(
        other_alarms(&described, &monitoring, "task-svc"),
        ["task-svc-calls", "task-svc-unhealthy"]
    );
    assert!(other_alarms(&described[..4], &monitoring, "task-svc").is_empty());
}
