//! `svcgen status`: the deployed service, its deployments, tasks and target health, read from
//! AWS (no mutating call) into a [`StatusReport`] that displays as the command's output.

use std::fmt;

use svcgen_rollout::wait;

use super::{Clients, DeployError, Failure, Settings, rollout};

/// What `svcgen status` shows; displays as one line per item.
#[derive(Clone, Debug)]
pub struct StatusReport {
    /// The service.
    pub service: String,
    /// Its cluster.
    pub cluster: String,
    /// Its region.
    pub region: String,
    /// Tasks running.
    pub running: i32,
    /// Tasks wanted.
    pub desired: i32,
    /// Tasks starting.
    pub pending: i32,
    /// The service's task definition ARN.
    pub task_definition: Option<String>,
    /// The deployments: the newest (PRIMARY) and those being replaced.
    pub deployments: Vec<wait::Deployment>,
    /// The tasks ECS lists for the service.
    pub tasks: Vec<TaskStatus>,
    /// Stopped tasks, with their reasons.
    pub stopped_tasks: Vec<wait::Task>,
    /// The target group's targets and their health.
    pub targets: Vec<wait::TargetHealthDescription>,
}

/// A task of the service.
#[derive(Clone, Debug)]
pub struct TaskStatus {
    /// Its ARN.
    pub arn: String,
    /// RUNNING, PENDING, ….
    pub last_status: Option<String>,
    /// The container health ECS reports.
    pub health: Option<String>,
    /// Its task definition ARN.
    pub task_definition: String,
}

/// The last segment of an ARN: `…/task-svc:7` → `task-svc:7`.
fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "service {} (cluster {}, {}): {} running / {} desired, {} pending, task definition {}",
            self.service,
            self.cluster,
            self.region,
            self.running,
            self.desired,
            self.pending,
            short(self.task_definition.as_deref().unwrap_or("none"))
        )?;
        for d in &self.deployments {
            writeln!(
                f,
                "  deployment {} {}: {} {}/{} running, {} failed tasks{}",
                d.id,
                d.status,
                short(&d.task_definition),
                d.running_count,
                d.desired_count,
                d.failed_tasks,
                d.rollout_state
                    .as_deref()
                    .map(|s| format!(", rollout {s}"))
                    .unwrap_or_default()
            )?;
        }
        for task in &self.tasks {
            writeln!(
                f,
                "  task {} {} health {} ({})",
                short(&task.arn),
                task.last_status.as_deref().unwrap_or("unknown"),
                task.health.as_deref().unwrap_or("unknown"),
                short(&task.task_definition)
            )?;
        }
        for task in &self.stopped_tasks {
            writeln!(
                f,
                "  stopped task {}: {}",
                short(&task.task_arn),
                task.stopped_reason.as_deref().unwrap_or("no reason given")
            )?;
        }
        if self.targets.is_empty() {
            writeln!(f, "  targets: none registered")?;
        }
        for t in &self.targets {
            writeln!(
                f,
                "  target {}{} {}{}",
                t.target.id,
                t.target.port.map(|p| format!(":{p}")).unwrap_or_default(),
                t.target_health.state,
                t.target_health
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

/// Reads the service's state; a service that is not deployed is a failure naming what is
/// missing (target group, cluster or service).
pub(super) async fn status(
    aws: &Clients,
    settings: &Settings,
) -> Result<StatusReport, DeployError> {
    let target_group = deployed_target_group(aws, settings).await?;
    let described = aws
        .ecs
        .describe_services()
        .cluster(&settings.infra.cluster.name)
        .services(&settings.infra.service.name)
        .send()
        .await;
    if let Err(e) = &described
        && e.as_service_error()
            .is_some_and(|e| e.is_cluster_not_found_exception())
    {
        return Err(Failure::NoCluster {
            cluster: settings.infra.cluster.name.clone(),
            region: settings.region.clone(),
        }
        .into());
    }
    let observed = rollout::observe(aws, settings, &target_group).await?;
    let Some(service) = observed.service.filter(|s| s.status() == Some("ACTIVE")) else {
        return Err(Failure::NoService {
            service: settings.infra.service.name.clone(),
            cluster: settings.infra.cluster.name.clone(),
        }
        .into());
    };
    Ok(StatusReport {
        service: settings.infra.service.name.clone(),
        cluster: settings.infra.cluster.name.clone(),
        region: settings.region.clone(),
        running: service.running_count(),
        desired: service.desired_count(),
        pending: service.pending_count(),
        task_definition: service.task_definition().map(str::to_owned),
        deployments: observed.judged.service.deployments,
        // The tasks ListTasks names by default: those meant to run.
        tasks: observed
            .tasks
            .iter()
            .filter(|task| task.desired_status() == Some("RUNNING"))
            .map(|task| TaskStatus {
                arn: task.task_arn().unwrap_or_default().to_owned(),
                last_status: task.last_status().map(str::to_owned),
                health: task.health_status().map(|h| h.as_str().to_owned()),
                task_definition: task.task_definition_arn().unwrap_or_default().to_owned(),
            })
            .collect(),
        stopped_tasks: observed
            .judged
            .tasks
            .into_iter()
            .filter(|t| t.last_status == "STOPPED")
            .collect(),
        targets: observed.judged.targets,
    })
}

/// The ARN of the service's target group; a failure when there is none.
async fn deployed_target_group(aws: &Clients, settings: &Settings) -> Result<String, DeployError> {
    let target_group = super::elb::find_target_group(aws, &settings.infra.target_group.name)
        .await?
        .and_then(|t| t.target_group_arn().map(str::to_owned));
    target_group.ok_or_else(|| {
        Failure::NoTargetGroup {
            target_group: settings.infra.target_group.name.clone(),
            service: settings.infra.service.name.clone(),
            region: settings.region.clone(),
        }
        .into()
    })
}
