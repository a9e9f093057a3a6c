//! Waiting for an ECS deployment to reach a steady state, without ever hanging: each
//! observation (`ecs:DescribeServices`, the service's tasks from `ecs:DescribeTasks`,
//! `elasticloadbalancing:DescribeTargetHealth`) is judged, progress is reported when it changes,
//! and the first sign of failure — a circuit-breaker rollback, a task of the new deployment that
//! stopped, an unhealthy target of the new deployment — ends the wait with the reason AWS gives.
//! So does the timeout.
//!
//! Only the new deployment is judged: its tasks are those ECS started for it (`startedBy` is the
//! deployment's ID), its targets those at its tasks' addresses. ECS keeps stopped tasks for about
//! an hour, and a redeploy after a rollback reuses the task definition, so a stopped task of the
//! same task definition may belong to an earlier deployment; and the old deployment's targets
//! may fail their checks while they drain.

use std::time::Duration;

use serde::Deserialize;

/// `ecs:DescribeServices` → `services[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Service {
    /// Service name.
    pub service_name: String,
    /// Tasks wanted.
    pub desired_count: u32,
    /// Tasks running.
    pub running_count: u32,
    /// Tasks starting.
    pub pending_count: u32,
    /// Deployments: the PRIMARY one (newest) and ACTIVE ones being replaced.
    pub deployments: Vec<Deployment>,
}

/// One deployment of a service.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Deployment {
    /// `ecs-svc/…`.
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    /// Task definition ARN.
    pub task_definition: String,
    /// Tasks wanted in this deployment.
    pub desired_count: u32,
    /// Tasks running in this deployment.
    pub running_count: u32,
    /// Tasks that failed to start or stopped unexpectedly in this deployment.
    pub failed_tasks: u32,
    /// IN_PROGRESS, COMPLETED or FAILED (rolling updates with the circuit breaker).
    pub rollout_state: Option<String>,
    /// Why the rollout is in its state.
    pub rollout_state_reason: Option<String>,
}

/// `ecs:DescribeTasks` → `tasks[]` (the tasks of the service, running and stopped).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Task {
    /// Task ARN.
    pub task_arn: String,
    /// Task definition ARN.
    pub task_definition_arn: String,
    /// The ID of the deployment that started it, for a task a service started.
    pub started_by: Option<String>,
    /// RUNNING, STOPPED, ….
    pub last_status: String,
    /// Its elastic network interface (awsvpc), with the task's address.
    pub attachments: Vec<Attachment>,
    /// e.g. `Essential container in task exited`.
    pub stopped_reason: Option<String>,
    /// e.g. `EssentialContainerExited`, `TaskFailedToStart`.
    pub stop_code: Option<String>,
    /// The containers, with their own reasons and exit codes.
    pub containers: Vec<Container>,
}

/// An attachment of a task.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attachment {
    /// `ElasticNetworkInterface` for awsvpc tasks.
    #[serde(rename = "type")]
    pub kind: String,
    /// `name`/`value` pairs such as `privateIPv4Address`.
    pub details: Vec<KeyValuePair>,
}

/// A `name`/`value` pair.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyValuePair {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

impl Task {
    /// The task's private IPv4 address, the ID of its target in an `ip` target group.
    pub fn private_ip(&self) -> Option<&str> {
        self.attachments
            .iter()
            .filter(|a| a.kind == "ElasticNetworkInterface")
            .flat_map(|a| &a.details)
            .find(|d| d.name == "privateIPv4Address")
            .map(|d| d.value.as_str())
    }
}

/// A container of a task.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    /// Container name.
    pub name: String,
    /// e.g. `CannotPullContainerError: …`.
    pub reason: Option<String>,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
}

/// `elasticloadbalancing:DescribeTargetHealth` → `TargetHealthDescriptions[]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetHealthDescription {
    /// The target.
    pub target: Target,
    /// Its health.
    pub target_health: TargetHealth,
}

/// A registered target.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Target {
    /// The task's IP address.
    pub id: String,
    /// Port.
    pub port: Option<u16>,
}

/// A target's health.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetHealth {
    /// initial, healthy, unhealthy, unused, draining, unavailable, ….
    pub state: String,
    /// e.g. `Target.ResponseCodeMismatch`.
    pub reason: Option<String>,
    /// AWS's explanation.
    pub description: Option<String>,
}

/// One look at the deployment.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// The service.
    pub service: Service,
    /// Its tasks, running and stopped.
    pub tasks: Vec<Task>,
    /// Its target group's targets.
    pub targets: Vec<TargetHealthDescription>,
}

#[derive(Deserialize)]
struct Services {
    services: Vec<Service>,
}

#[derive(Deserialize)]
struct Tasks {
    tasks: Vec<Task>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetHealthDescriptions {
    target_health_descriptions: Vec<TargetHealthDescription>,
}

/// Why describe responses do not make an observation.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// A response is not the JSON the AWS API returns.
    #[error("{response} response: {error}")]
    Json {
        /// `DescribeServices`, `DescribeTasks` or `DescribeTargetHealth`.
        response: &'static str,
        /// What serde found.
        error: serde_json::Error,
    },
    /// `DescribeServices` returned no service.
    #[error("DescribeServices returned no service")]
    NoService,
}

fn parse<'a, T: Deserialize<'a>>(
    response: &'static str,
    json: &'a str,
) -> Result<T, ResponseError> {
    serde_json::from_str(json).map_err(|error| ResponseError::Json { response, error })
}

impl Observation {
    /// Builds an observation from the three responses' JSON bodies, as the AWS APIs return
    /// them.
    pub fn from_responses(
        describe_services: &str,
        describe_tasks: &str,
        describe_target_health: &str,
    ) -> Result<Self, ResponseError> {
        let services: Services = parse("DescribeServices", describe_services)?;
        let tasks: Tasks = parse("DescribeTasks", describe_tasks)?;
        let targets: TargetHealthDescriptions =
            parse("DescribeTargetHealth", describe_target_health)?;
        Ok(Self {
            service: services
                .services
                .into_iter()
                .next()
                .ok_or(ResponseError::NoService)?,
            tasks: tasks.tasks,
            targets: targets.target_health_descriptions,
        })
    }
}

/// What an observation says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The new deployment is complete: all tasks running, all targets healthy.
    Steady,
    /// Still rolling out; the text says how far.
    InProgress(String),
    /// It will not get there; the text is AWS's reason.
    Failed(String),
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Judges one observation of the deployment of `task_definition` (the ARN just registered).
pub fn judge(observation: &Observation, task_definition: &str) -> Verdict {
    let service = &observation.service;
    // The primary one when ECS lists two of the same task definition.
    let Some(ours) = service
        .deployments
        .iter()
        .filter(|d| d.task_definition == task_definition)
        .max_by_key(|d| d.status == "PRIMARY")
    else {
        return Verdict::Failed(deployment_gone(service, task_definition));
    };
    let tasks: Vec<&Task> = observation
        .tasks
        .iter()
        .filter(|t| t.started_by.as_deref() == Some(ours.id.as_str()))
        .collect();
    let addresses: Vec<&str> = tasks
        .iter()
        .filter(|t| t.last_status != "STOPPED")
        .filter_map(|t| t.private_ip())
        .collect();
    let targets: Vec<&TargetHealthDescription> = observation
        .targets
        .iter()
        .filter(|t| addresses.contains(&t.target.id.as_str()))
        .collect();
    if let Some(reason) = failure(ours, &tasks, &targets) {
        return Verdict::Failed(reason);
    }
    progress(service, ours, &targets)
}

/// Why the deployment of `task_definition` is no longer among the service's deployments.
fn deployment_gone(service: &Service, task_definition: &str) -> String {
    match service.deployments.iter().find(|d| d.status == "PRIMARY") {
        Some(p) => format!(
            "ECS rolled the service back to {}: the deployment of {} is gone",
            short(&p.task_definition),
            short(task_definition)
        ),
        None => format!(
            "the service has no deployment of {}",
            short(task_definition)
        ),
    }
}

/// The first sign that the rollout failed: ECS says so, a task of ours stopped, or one of our
/// targets is unhealthy.
fn failure(
    ours: &Deployment,
    tasks: &[&Task],
    targets: &[&TargetHealthDescription],
) -> Option<String> {
    if ours.rollout_state.as_deref() == Some("FAILED") {
        return Some(format!(
            "deployment {} failed: {}",
            ours.id,
            ours.rollout_state_reason
                .as_deref()
                .unwrap_or("no reason given")
        ));
    }
    if let Some(task) = tasks.iter().find(|t| t.last_status == "STOPPED") {
        return Some(stopped_task(task));
    }
    let target = targets
        .iter()
        .find(|t| t.target_health.state == "unhealthy")?;
    let health = &target.target_health;
    Some(format!(
        "target {}{} is unhealthy: {} ({})",
        target.target.id,
        target
            .target
            .port
            .map(|p| format!(":{p}"))
            .unwrap_or_default(),
        health.reason.as_deref().unwrap_or("no reason code"),
        health.description.as_deref().unwrap_or("no description")
    ))
}

/// Why a task stopped, with each container's reason or non-zero exit code.
fn stopped_task(task: &Task) -> String {
    let mut reason = format!(
        "task {} stopped: {}",
        short(&task.task_arn),
        task.stopped_reason.as_deref().unwrap_or("no reason given")
    );
    for container in &task.containers {
        if let Some(why) = &container.reason {
            reason.push_str(&format!("; container {}: {why}", container.name));
        } else if let Some(code) = container.exit_code.filter(|c| *c != 0) {
            reason.push_str(&format!(
                "; container {} exited with {code}",
                container.name
            ));
        }
    }
    reason
}

/// Steady when our deployment is primary, rolled out, running every task and every task is a
/// healthy target; else how far it got (counting our targets only).
fn progress(service: &Service, ours: &Deployment, targets: &[&TargetHealthDescription]) -> Verdict {
    let mut states: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for target in targets {
        *states
            .entry(target.target_health.state.as_str())
            .or_default() += 1;
    }
    let healthy = states.get("healthy").copied().unwrap_or(0);
    let desired = usize::try_from(ours.desired_count).unwrap_or(usize::MAX);
    let rolled_out = match ours.rollout_state.as_deref() {
        Some(state) => state == "COMPLETED",
        None => service.deployments.len() == 1,
    };
    if ours.status == "PRIMARY"
        && rolled_out
        && ours.running_count == ours.desired_count
        && healthy >= desired
    {
        return Verdict::Steady;
    }
    let target_summary = states
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect::<Vec<_>>()
        .join(", ");
    Verdict::InProgress(format!(
        "tasks {}/{} running ({} pending), targets: {}",
        ours.running_count,
        ours.desired_count,
        service.pending_count,
        if target_summary.is_empty() {
            "none of this deployment's yet".to_owned()
        } else {
            target_summary
        }
    ))
}

/// What the waiting loop does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Look again after the poll interval; print the line if there is one (progress changed).
    Continue(Option<String>),
    /// Stop: `Ok` on a steady state, `Err` with the reason otherwise.
    Done(Result<(), RolloutError>),
}

/// Why a rollout will not reach a steady state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    /// It failed; the reason is AWS's (a rollback, a stopped task, an unhealthy target).
    #[error("{reason}")]
    Failed {
        /// What AWS says.
        reason: String,
    },
    /// The timeout passed before a steady state.
    #[error("no steady state after {} s (--timeout): {progress}", .timeout.as_secs())]
    TimedOut {
        /// The time limit.
        timeout: Duration,
        /// The last progress seen.
        progress: String,
    },
}

/// The state of one wait: the deployment watched, its time limit, whether ECS has shown the
/// deployment yet and the last progress shown.
#[derive(Debug)]
pub struct Watcher {
    task_definition: String,
    timeout: Duration,
    seen: bool,
    last: Option<String>,
}

impl Watcher {
    /// Waits for the deployment of `task_definition` for at most `timeout`.
    pub fn new(task_definition: impl Into<String>, timeout: Duration) -> Self {
        Self {
            task_definition: task_definition.into(),
            timeout,
            seen: false,
            last: None,
        }
    }

    /// Judges `observation`, taken `elapsed` after the wait began.
    ///
    /// A deployment missing before ECS ever showed it is not a rollback yet: DescribeServices
    /// may lag behind UpdateService, so that waits (within the timeout) too.
    pub fn step(&mut self, observation: &Observation, elapsed: Duration) -> Step {
        let present = observation
            .service
            .deployments
            .iter()
            .any(|d| d.task_definition == self.task_definition);
        self.seen |= present;
        let verdict = if present || self.seen {
            judge(observation, &self.task_definition)
        } else {
            Verdict::InProgress(format!(
                "waiting for ECS to start the deployment of {}",
                short(&self.task_definition)
            ))
        };
        match verdict {
            Verdict::Steady => Step::Done(Ok(())),
            Verdict::Failed(reason) => Step::Done(Err(RolloutError::Failed { reason })),
            Verdict::InProgress(progress) if elapsed >= self.timeout => {
                Step::Done(Err(RolloutError::TimedOut {
                    timeout: self.timeout,
                    progress,
                }))
            }
            Verdict::InProgress(progress) => {
                let changed = self.last.as_deref() != Some(progress.as_str());
                self.last = Some(progress.clone());
                Step::Continue(changed.then_some(progress))
            }
        }
    }
}
