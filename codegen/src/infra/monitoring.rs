//! The service's CloudWatch dashboard and alarms, built from the model over the metrics the
//! runtime emits ([`svcgen_contract::metrics`]) and the load balancer's own.

use serde::Serialize;
use serde_json::{Value, json};
use svcgen_contract::metrics::{self as names, Metric};

use crate::config::AlarmsConfig;
use crate::model::Model;

/// Stands for the target group's full name (`targetgroup/<name>/<id>`, the `TargetGroup`
/// dimension of the load balancer's metrics) until it exists.
pub const TARGET_GROUP_FULL_NAME: &str = "${TARGET_GROUP_FULL_NAME}";
/// Stands for the load balancer's full name (`app/<name>/<id>`), read from the listener's ARN.
pub const LOAD_BALANCER_FULL_NAME: &str = "${LOAD_BALANCER_FULL_NAME}";

/// The dashboard and the alarms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Monitoring {
    /// The dashboard's name (the service's).
    pub dashboard_name: String,
    /// The dashboard's body, as `PutDashboard` takes it (JSON text).
    pub dashboard_body: String,
    /// The alarms.
    pub alarms: Vec<Alarm>,
    /// The SNS topic they notify.
    pub topic: Option<String>,
}

/// One CloudWatch alarm over metric data queries (one returns the value compared).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alarm {
    /// The template's resource name.
    pub resource: &'static str,
    /// What its name adds to the service's (`latency-p99`), naming its file too.
    pub suffix: &'static str,
    /// Its name.
    pub name: String,
    /// What it means.
    pub description: String,
    /// `GreaterThanThreshold`.
    pub comparison: &'static str,
    /// The threshold.
    pub threshold: f64,
    /// Periods evaluated…
    pub evaluation_periods: u32,
    /// …of which this many must breach.
    pub datapoints_to_alarm: u32,
    /// Periods without data count as `notBreaching`.
    pub treat_missing_data: &'static str,
    /// The queries; the last returns the alarm's value.
    pub queries: Vec<AlarmQuery>,
}

/// A metric data query of an alarm: a metric's statistic, or an expression over other queries.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmQuery {
    /// Its id (`m1`, `e1`).
    pub id: &'static str,
    /// The metric, or `None` for an expression.
    pub metric: Option<MetricStat>,
    /// The expression, for an expression.
    pub expression: Option<String>,
    /// Its label.
    pub label: String,
    /// Whether it is the value the alarm compares.
    pub return_data: bool,
}

/// A statistic of one metric over a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricStat {
    /// Its namespace.
    pub namespace: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Its dimensions.
    pub dimensions: Vec<(&'static str, String)>,
    /// `Sum`, `Maximum`, `p99`.
    pub stat: &'static str,
    /// Seconds.
    pub period: u32,
}

const PERIOD: u32 = 60;
const ALB: &str = "AWS/ApplicationELB";

impl Monitoring {
    /// The dashboard and alarms of service `name` (the `Service` dimension its tasks publish)
    /// with `tables` (physical names), in `region`.
    pub fn new(
        name: &str,
        model: &Model,
        tables: &[String],
        region: &str,
        alarms: &AlarmsConfig,
    ) -> Self {
        let service = || vec![(names::SERVICE, name.to_owned())];
        let own = |metric: Metric, stat| MetricStat {
            namespace: names::NAMESPACE,
            name: metric.name,
            dimensions: service(),
            stat,
            period: PERIOD,
        };
        let balancer = |metric, stat| MetricStat {
            namespace: ALB,
            name: metric,
            dimensions: vec![
                ("TargetGroup", TARGET_GROUP_FULL_NAME.to_owned()),
                ("LoadBalancer", LOAD_BALANCER_FULL_NAME.to_owned()),
            ],
            stat,
            period: PERIOD,
        };
        let query = |id, metric: MetricStat, return_data| AlarmQuery {
            id,
            label: format!("{} {}", metric.name, metric.stat),
            metric: Some(metric),
            expression: None,
            return_data,
        };
        let alarm = |resource, suffix, description: String, threshold, queries| Alarm {
            resource,
            suffix,
            name: format!("{name}-{suffix}"),
            description,
            comparison: "GreaterThanThreshold",
            threshold,
            evaluation_periods: 5,
            datapoints_to_alarm: 3,
            treat_missing_data: "notBreaching",
            queries,
        };
        let server_errors = alarm(
            "ServerErrorsAlarm",
            "server-errors",
            format!(
                "More than {}% of {name}'s calls failed with a server error (INTERNAL, UNAVAILABLE, ...) in 3 of 5 minutes of at least 10 calls.",
                alarms.server_error_percent
            ),
            alarms.server_error_percent,
            vec![
                query("errors", own(names::SERVER_ERRORS, "Sum"), false),
                query("calls", own(names::CALLS, "Sum"), false),
                AlarmQuery {
                    id: "rate",
                    metric: None,
                    // Below 10 calls a minute a single failure would be 10 % or more.
                    expression: Some("IF(calls >= 10, 100 * errors / calls, 0)".into()),
                    label: "server errors (% of calls)".into(),
                    return_data: true,
                },
            ],
        );
        let latency = alarm(
            "LatencyAlarm",
            "latency-p99",
            format!(
                "{name}'s 99th-percentile latency was above {} ms in 3 of 5 minutes.",
                alarms.latency_p99_ms
            ),
            f64::from(alarms.latency_p99_ms),
            vec![query("p99", own(names::LATENCY, "p99"), true)],
        );
        let throttles = alarm(
            "StoreThrottlesAlarm",
            "store-throttles",
            format!("DynamoDB refused {name}'s requests for throughput in 3 of 5 minutes."),
            0.0,
            vec![query("throttles", own(names::STORE_THROTTLES, "Sum"), true)],
        );
        let unhealthy = alarm(
            "UnhealthyHostsAlarm",
            "unhealthy-hosts",
            format!("The load balancer found tasks of {name} unhealthy in 3 of 5 minutes."),
            0.0,
            vec![query(
                "unhealthy",
                balancer("UnHealthyHostCount", "Maximum"),
                true,
            )],
        );
        Self {
            dashboard_name: name.to_owned(),
            dashboard_body: dashboard(name, model, tables, region).to_string(),
            alarms: vec![server_errors, latency, throttles, unhealthy],
            topic: alarms.topic.clone(),
        }
    }

    /// The dashboard and alarms of the load balancer's target group `targetgroup/<name>/<id>`
    /// and load balancer `app/<name>/<id>`: [`TARGET_GROUP_FULL_NAME`] and
    /// [`LOAD_BALANCER_FULL_NAME`] replaced by them (names of letters, digits, `-` and `/`,
    /// which JSON text holds as they are).
    pub fn for_load_balancer(&self, target_group: &str, load_balancer: &str) -> Self {
        let fill = |text: &str| {
            text.replace(TARGET_GROUP_FULL_NAME, target_group)
                .replace(LOAD_BALANCER_FULL_NAME, load_balancer)
        };
        let mut filled = self.clone();
        filled.dashboard_body = fill(&self.dashboard_body);
        let metrics = filled
            .alarms
            .iter_mut()
            .flat_map(|alarm| &mut alarm.queries)
            .filter_map(|query| query.metric.as_mut());
        for (_, value) in metrics.flat_map(|metric| &mut metric.dimensions) {
            *value = fill(value);
        }
        filled
    }
}

/// The dashboard: per-RPC rate, error rates by class, per-RPC p99 latency, DynamoDB capacity
/// and throttles, the load balancer's healthy and unhealthy hosts.
fn dashboard(name: &str, model: &Model, tables: &[String], region: &str) -> Value {
    let rpcs: Vec<String> = model
        .services
        .iter()
        .flat_map(|s| {
            s.methods
                .iter()
                .map(move |m| format!("{}/{}", s.full_name, m.name))
        })
        .collect();
    let own = |metric: Metric, extra: &[(&str, &str)], options: Value| {
        let mut line = vec![
            json!(names::NAMESPACE),
            json!(metric.name),
            json!(names::SERVICE),
            json!(name),
        ];
        for (key, value) in extra {
            line.extend([json!(key), json!(value)]);
        }
        line.push(options);
        Value::Array(line)
    };
    let per_rpc = |metric: Metric, stat: &str| -> Vec<Value> {
        rpcs.iter()
            .map(|rpc| {
                own(
                    metric,
                    &[(names::RPC, rpc)],
                    json!({ "stat": stat, "label": rpc }),
                )
            })
            .collect()
    };
    let hidden = |id: &str| json!({ "stat": "Sum", "id": id, "visible": false });
    let error_rates = vec![
        own(names::CALLS, &[], hidden("calls")),
        own(names::SERVER_ERRORS, &[], hidden("server")),
        own(names::CLIENT_ERRORS, &[], hidden("client")),
        json!([{ "expression": "100 * server / calls", "label": "server errors (%)" }]),
        json!([{ "expression": "100 * client / calls", "label": "client errors (%)" }]),
    ];
    let mut capacity: Vec<Value> = [names::READ_CAPACITY, names::WRITE_CAPACITY]
        .into_iter()
        .map(|metric| own(metric, &[], json!({ "stat": "Sum" })))
        .collect();
    for table in tables {
        for metric in ["ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"] {
            capacity.push(json!(["AWS/DynamoDB", metric, "TableName", table, { "stat": "Sum" }]));
        }
    }
    let store_trouble = [
        names::STORE_THROTTLES,
        names::STORE_RETRIES,
        names::STORE_ERRORS,
    ]
    .into_iter()
    .map(|metric| own(metric, &[], json!({ "stat": "Sum" })))
    .collect();
    let hosts = ["HealthyHostCount", "UnHealthyHostCount"]
        .into_iter()
        .map(|metric| {
            json!([ALB, metric, "TargetGroup", TARGET_GROUP_FULL_NAME, "LoadBalancer", LOAD_BALANCER_FULL_NAME, { "stat": "Maximum" }])
        })
        .collect();
    let widgets: Vec<(&str, Vec<Value>)> = vec![
        ("Calls per RPC (per minute)", per_rpc(names::CALLS, "Sum")),
        ("Errors by class (% of calls)", error_rates),
        ("p99 latency per RPC (ms)", per_rpc(names::LATENCY, "p99")),
        // DynamoDB's table metrics leave out what its indexes consume; svcgen's count it.
        ("DynamoDB capacity units (svcgen: with indexes)", capacity),
        ("DynamoDB throttles, retries, failures", store_trouble),
        ("Load balancer targets", hosts),
    ];
    let widgets: Vec<Value> = widgets
        .into_iter()
        .enumerate()
        .map(|(index, (title, metrics))| {
            json!({
                "type": "metric",
                "x": (index % 2) * 12,
                "y": (index / 2) * 6,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": region,
                    "view": "timeSeries",
                    "period": PERIOD,
                    "metrics": metrics,
                },
            })
        })
        .collect();
    json!({ "widgets": widgets })
}

impl Alarm {
    /// The alarm as `PutMetricAlarm`'s input (`aws cloudwatch put-metric-alarm
    /// --cli-input-json`), notifying `topic` when there is one.
    pub fn put_metric_alarm_input(&self, topic: Option<&str>) -> Value {
        let queries: Vec<Value> = self
            .queries
            .iter()
            .map(|query| {
                let mut value = json!({
                    "Id": query.id,
                    "Label": query.label,
                    "ReturnData": query.return_data,
                });
                if let Some(expression) = &query.expression {
                    value["Expression"] = json!(expression);
                }
                if let Some(metric) = &query.metric {
                    let dimensions: Vec<Value> = metric
                        .dimensions
                        .iter()
                        .map(|(name, value)| json!({ "Name": name, "Value": value }))
                        .collect();
                    value["MetricStat"] = json!({
                        "Metric": {
                            "Namespace": metric.namespace,
                            "MetricName": metric.name,
                            "Dimensions": dimensions,
                        },
                        "Period": metric.period,
                        "Stat": metric.stat,
                    });
                }
                value
            })
            .collect();
        let mut input = json!({
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "ComparisonOperator": self.comparison,
            "Threshold": self.threshold,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.datapoints_to_alarm,
            "TreatMissingData": self.treat_missing_data,
            "Metrics": queries,
        });
        if let Some(topic) = topic {
            input["AlarmActions"] = json!([topic]);
            input["OKActions"] = json!([topic]);
        }
        input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every svcgen metric the dashboard and alarms read, as (name, dimension names): each must
    /// be a metric of the contract, published under exactly that dimension set.
    #[test]
    fn the_dashboard_and_alarms_read_only_what_the_service_emits() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated-example");
        let project = crate::load(&dir).expect("the example loads");
        let monitoring = Monitoring::new(
            "task-svc",
            &project.model,
            &["tasks".to_owned()],
            "us-east-1",
            &AlarmsConfig::default(),
        );
        let mut read: Vec<(String, Vec<String>)> = Vec::new();
        let body: Value = serde_json::from_str(&monitoring.dashboard_body).expect("JSON");
        for widget in body["widgets"].as_array().expect("widgets") {
            for line in widget["properties"]["metrics"].as_array().expect("metrics") {
                let line = line.as_array().expect("a metric line");
                if line[0] != names::NAMESPACE {
                    continue;
                }
                let strings: Vec<String> = line
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                let dimensions = strings[2..].iter().step_by(2).cloned().collect();
                read.push((strings[1].clone(), dimensions));
            }
        }
        for alarm in &monitoring.alarms {
            for metric in alarm.queries.iter().filter_map(|q| q.metric.as_ref()) {
                if metric.namespace == names::NAMESPACE {
                    let dimensions = metric.dimensions.iter().map(|d| d.0.to_owned()).collect();
                    read.push((metric.name.to_owned(), dimensions));
                }
            }
        }
        assert!(read.len() > 10, "{read:?}");
        for (name, dimensions) in &read {
            let metric = names::ALL.iter().find(|m| m.name == name);
            assert!(
                metric.is_some_and(|m| m.dimensions.iter().any(|set| set == dimensions)),
                "{name} {dimensions:?} is not emitted"
            );
        }
        // Each RPC of the model has its own line of calls and of latency.
        let rpcs = read.iter().filter(|(n, d)| n == "Calls" && d.len() == 2);
        assert_eq!(rpcs.count(), 5);
    }

    #[test]
    fn the_load_balancers_names_replace_both_placeholders_everywhere() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated-example");
        let project = crate::load(&dir).expect("the example loads");
        let alarms = AlarmsConfig::default();
        let monitoring = Monitoring::new("task-svc", &project.model, &[], "eu-west-1", &alarms);
        let (group, balancer) = (
            "targetgroup/task-svc/73e2d6bc24d8a067",
            "app/edge/50dc6c495c0c9188",
        );
        let filled = monitoring.for_load_balancer(group, balancer);
        let text = serde_json::to_string(&filled).expect("JSON");
        assert!(!text.contains("${"), "{text}");
        let body: Value = serde_json::from_str(&filled.dashboard_body).expect("JSON");
        let hosts = body["widgets"][5]["properties"]["metrics"][1].clone();
        assert_eq!(
            hosts,
            json!([ALB, "UnHealthyHostCount", "TargetGroup", group, "LoadBalancer", balancer, { "stat": "Maximum" }])
        );
        let unhealthy = &filled.alarms[3].queries[0];
        let metric = unhealthy.metric.as_ref().expect("a metric");
        assert_eq!(
            metric.dimensions,
            [
                ("TargetGroup", group.to_owned()),
                ("LoadBalancer", balancer.to_owned())
            ]
        );
        // Nothing else changes.
        let mut back = filled.clone();
        back.dashboard_body = monitoring.dashboard_body.clone();
        back.alarms[3] = monitoring.alarms[3].clone();
        assert_eq!(back, monitoring);
    }
}
