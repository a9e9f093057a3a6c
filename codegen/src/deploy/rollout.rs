//! Step 10 and `svcgen status`'s view of the service: one look at the service, its tasks and its
//! targets through the SDK, in the shapes `svcgen-rollout` judges; and the wait for a steady
//! state built on it.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2::types as elb;
use svcgen_rollout::wait;

use super::progress::{Event, Progress};
use super::{AwsError, Clients, DeployError, Failure, Settings};

/// One look at the service as `svcgen-rollout` judges it, and as ECS describes it.
pub(super) struct Observed {
    /// The service, its tasks and its targets in the judge's shapes.
    pub(super) judged: wait::Observation,
    /// The service (none when it does not exist).
    pub(super) service: Option<ecs::Service>,
    /// Its tasks, running and stopped.
    pub(super) tasks: Vec<ecs::Task>,
}

/// One look at the service, its tasks (running and stopped: the judge picks the new
/// deployment's by `startedBy`) and its targets.
pub(super) async fn observe(
    aws: &Clients,
    settings: &Settings,
    target_group: &str,
) -> Result<Observed, AwsError> {
    let described = aws
        .ecs
        .describe_services()
        .cluster(&settings.infra.cluster.name)
        .services(&settings.infra.service.name)
        .send()
        .await
        .map_err(|e| AwsError::call("ecs:DescribeServices", e))?;
    let service = described.services().first().cloned();
    let mut arns = std::collections::BTreeSet::new();
    for status in [ecs::DesiredStatus::Running, ecs::DesiredStatus::Stopped] {
        let mut pages = aws
            .ecs
            .list_tasks()
            .cluster(&settings.infra.cluster.name)
            .service_name(&settings.infra.service.name)
            .desired_status(status)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::call("ecs:ListTasks", e))?;
            arns.extend(page.task_arns().iter().cloned());
        }
    }
    let arns: Vec<String> = arns.into_iter().collect();
    let mut tasks = Vec::new();
    // DescribeTasks takes at most 100 tasks a call.
    for chunk in arns.chunks(100) {
        let described = aws
            .ecs
            .describe_tasks()
            .cluster(&settings.infra.cluster.name)
            .set_tasks(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::call("ecs:DescribeTasks", e))?;
        tasks.extend(described.tasks().iter().cloned());
    }
    let health = aws
        .elb
        .describe_target_health()
        .target_group_arn(target_group)
        .send()
        .await
        .map_err(|e| AwsError::call("elasticloadbalancing:DescribeTargetHealth", e))?;
    let judged = wait::Observation {
        service: service.as_ref().map(judged_service).unwrap_or_default(),
        tasks: tasks.iter().map(judged_task).collect(),
        targets: health
            .target_health_descriptions()
            .iter()
            .map(judged_target)
            .collect(),
    };
    Ok(Observed {
        judged,
        service,
        tasks,
    })
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn text(s: Option<&str>) -> String {
    s.unwrap_or_default().to_owned()
}

fn judged_service(s: &ecs::Service) -> wait::Service {
    wait::Service {
        service_name: text(s.service_name()),
        desired_count: count(s.desired_count()),
        running_count: count(s.running_count()),
        pending_count: count(s.pending_count()),
        deployments: s
            .deployments()
            .iter()
            .map(|d| wait::Deployment {
                id: text(d.id()),
                status: text(d.status()),
                task_definition: text(d.task_definition()),
                desired_count: count(d.desired_count()),
                running_count: count(d.running_count()),
                failed_tasks: count(d.failed_tasks()),
                rollout_state: d.rollout_state().map(|r| r.as_str().to_owned()),
                rollout_state_reason: d.rollout_state_reason().map(str::to_owned),
            })
            .collect(),
    }
}

fn judged_task(t: &ecs::Task) -> wait::Task {
    wait::Task {
        task_arn: text(t.task_arn()),
        task_definition_arn: text(t.task_definition_arn()),
        started_by: t.started_by().map(str::to_owned),
        last_status: text(t.last_status()),
        attachments: t
            .attachments()
            .iter()
            .map(|a| wait::Attachment {
                kind: text(a.r#type()),
                details: a
                    .details()
                    .iter()
                    .map(|d| wait::KeyValuePair {
                        name: text(d.name()),
                        value: text(d.value()),
                    })
                    .collect(),
            })
            .collect(),
        stopped_reason: t.stopped_reason().map(str::to_owned),
        stop_code: t.stop_code().map(|c| c.as_str().to_owned()),
        containers: t
            .containers()
            .iter()
            .map(|c| wait::Container {
                name: text(c.name()),
                reason: c.reason().map(str::to_owned),
                exit_code: c.exit_code(),
            })
            .collect(),
    }
}

fn judged_target(d: &elb::TargetHealthDescription) -> wait::TargetHealthDescription {
    let health = d.target_health();
    wait::TargetHealthDescription {
        target: wait::Target {
            id: text(d.target().and_then(|t| t.id())),
            port: d
                .target()
                .and_then(|t| t.port())
                .and_then(|p| u16::try_from(p).ok()),
        },
        target_health: wait::TargetHealth {
            state: health
                .and_then(|h| h.state())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            reason: health
                .and_then(|h| h.reason())
                .map(|r| r.as_str().to_owned()),
            description: health.and_then(|h| h.description()).map(str::to_owned),
        },
    }
}

/// Seconds between looks at a rollout.
const POLL: Duration = Duration::from_secs(5);

/// Step 10: waits for the new task definition to run everywhere with healthy targets; stops
/// at the first failure with AWS's reason, or at the timeout. Progress goes to `progress`
/// when it changes.
pub(super) async fn wait(
    aws: &Clients,
    settings: &Settings,
    (task_definition, target_group): (&str, &str),
    timeout: Duration,
    progress: &mut dyn Progress,
) -> Result<(), DeployError> {
    let started = Instant::now();
    let mut watcher = wait::Watcher::new(task_definition, timeout);
    loop {
        let observation = observe(aws, settings, target_group).await?.judged;
        match watcher.step(&observation, started.elapsed()) {
            wait::Step::Done(Ok(())) => {
                progress.event(&Event::Steady {
                    running: observation.service.running_count,
                    task_definition: task_definition
                        .rsplit('/')
                        .next()
                        .unwrap_or(task_definition)
                        .to_owned(),
                    waited: started.elapsed(),
                });
                return Ok(());
            }
            wait::Step::Done(Err(error)) => return Err(Failure::Rollout(error).into()),
            wait::Step::Continue(Some(line)) => {
                progress.event(&Event::Waiting { progress: line });
            }
            wait::Step::Continue(None) => {}
        }
        let left = timeout.saturating_sub(started.elapsed());
        tokio::time::sleep(POLL.min(left)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK_DEFINITION: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/task-svc:7";

    fn deployment(id: &str, status: &str) -> ecs::Deployment {
        ecs::Deployment::builder()
            .id(id)
            .status(status)
            .task_definition(TASK_DEFINITION)
            .desired_count(1)
            .running_count(1)
            .rollout_state(ecs::DeploymentRolloutState::InProgress)
            .build()
    }

    fn task(id: &str, started_by: &str, status: &str, address: &str) -> ecs::Task {
        let detail =
            |name: &str, value: &str| ecs::KeyValuePair::builder().name(name).value(value).build();
        ecs::Task::builder()
            .task_arn(format!(
                "arn:aws:ecs:eu-west-1:123456789012:task/task-svc/{id}"
            ))
            .task_definition_arn(TASK_DEFINITION)
            .started_by(started_by)
            .last_status(status)
            .stopped_reason("Essential container in task exited")
            .attachments(
                ecs::Attachment::builder()
                    .r#type("ElasticNetworkInterface")
                    .details(detail("networkInterfaceId", "eni-1"))
                    .details(detail("privateIPv4Address", address))
                    .build(),
            )
            .build()
    }

    fn target(address: &str, state: elb::TargetHealthStateEnum) -> elb::TargetHealthDescription {
        elb::TargetHealthDescription::builder()
            .target(
                elb::TargetDescription::builder()
                    .id(address)
                    .port(50051)
                    .build(),
            )
            .target_health(elb::TargetHealth::builder().state(state).build())
            .build()
    }

    fn observation(
        tasks: &[ecs::Task],
        targets: &[elb::TargetHealthDescription],
    ) -> wait::Observation {
        let service = ecs::Service::builder()
            .service_name("task-svc")
            .desired_count(1)
            .running_count(1)
            .deployments(deployment("ecs-svc/2", "PRIMARY"))
            .build();
        wait::Observation {
            service: judged_service(&service),
            tasks: tasks.iter().map(judged_task).collect(),
            targets: targets.iter().map(judged_target).collect(),
        }
    }

    #[test]
    fn the_sdks_tasks_and_targets_are_judged_by_deployment() {
        use elb::TargetHealthStateEnum::{Healthy, Unhealthy};
        // The stopped task and the unhealthy target belong to the rolled-back deployment
        // ecs-svc/1 of the same task definition; ecs-svc/2 is healthy.
        let earlier = [
            task("a", "ecs-svc/1", "STOPPED", "10.0.1.5"),
            task("b", "ecs-svc/2", "RUNNING", "10.0.1.6"),
        ];
        let targets = [target("10.0.1.5", Unhealthy), target("10.0.1.6", Healthy)];
        assert_eq!(
            wait::judge(&observation(&earlier, &targets), TASK_DEFINITION),
            wait::Verdict::InProgress("tasks 1/1 running (0 pending), targets: 1 healthy".into())
        );
        // Its own task stopping fails it.
        let stopped = [task("c", "ecs-svc/2", "STOPPED", "10.0.1.7")];
        assert_eq!(
            wait::judge(&observation(&stopped, &targets), TASK_DEFINITION),
            wait::Verdict::Failed("task c stopped: Essential container in task exited".into())
        );
        // And its own target being unhealthy.
        let unhealthy = [target("10.0.1.6", Unhealthy)];
        let verdict = wait::judge(&observation(&earlier, &unhealthy), TASK_DEFINITION);
        assert!(
            matches!(&verdict, wait::Verdict::Failed(reason) if reason.starts_with("target 10.0.1.6:50051 is unhealthy")),
            "{verdict:?}"
        );
    }
}
