//! The deployment wait on describe responses in the shapes AWS returns them (written from the
//! ECS and ELBv2 API references: there is no AWS account here), one file per situation.

use std::time::Duration;

use svcgen_rollout::wait::{Observation, RolloutError, Step, Verdict, Watcher, judge};

const OURS: &str = "arn:aws:ecs:eu-central-1:123456789012:task-definition/task-svc:7";

fn observation(name: &str) -> Observation {
    let path = format!("{}/tests/responses/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    let responses: serde_json::Value = serde_json::from_str(&text).expect("json");
    Observation::from_responses(
        &responses["DescribeServices"].to_string(),
        &responses["DescribeTasks"].to_string(),
        &responses["DescribeTargetHealth"].to_string(),
    )
    .expect("parses")
}

fn failure(name: &str) -> String {
    match judge(&observation(name), OURS) {
        Verdict::Failed(reason) => reason,
        other => panic!("{name}: expected a failure, got {other:?}"),
    }
}

#[test]
fn a_rollout_reports_progress_when_it_changes_and_ends_steady() {
    let mut watcher = Watcher::new(OURS, Duration::from_secs(600));
    let sequence = [
        "in_progress_starting",
        "in_progress_starting",
        "in_progress_draining",
        "steady",
    ];
    let steps: Vec<Step> = sequence
        .iter()
        .enumerate()
        .map(|(i, name)| watcher.step(&observation(name), Duration::from_secs(15 * i as u64)))
        .collect();
    assert_eq!(
        steps,
        [
            Step::Continue(Some(
                "tasks 0/2 running (2 pending), targets: 1 initial".to_owned()
            )),
            Step::Continue(None),
            Step::Continue(Some(
                "tasks 2/2 running (0 pending), targets: 2 healthy".to_owned()
            )),
            Step::Done(Ok(())),
        ]
    );
}

#[test]
fn a_deployment_is_gone_only_after_ecs_showed_it() {
    let mut watcher = Watcher::new(OURS, Duration::from_secs(600));
    let second = Duration::from_secs(1);
    assert_eq!(
        watcher.step(&observation("rolled_back"), second),
        Step::Continue(Some(
            "waiting for ECS to start the deployment of task-svc:7".to_owned()
        ))
    );
    assert!(matches!(
        watcher.step(&observation("in_progress_starting"), 2 * second),
        Step::Continue(Some(_))
    ));
    assert_eq!(
        watcher.step(&observation("rolled_back"), 3 * second),
        Step::Done(Err(RolloutError::Failed {
            reason:
                "ECS rolled the service back to task-svc:6: the deployment of task-svc:7 is gone"
                    .to_owned()
        }))
    );
}

#[test]
fn old_tasks_stopped_by_the_rollout_are_not_failures() {
    // Every in-progress fixture holds a task of the previous task definition stopped by
    // scale-in ("Scaling activity initiated by ...").
    for name in ["in_progress_starting", "in_progress_draining", "steady"] {
        let verdict = judge(&observation(name), OURS);
        assert!(
            !matches!(verdict, Verdict::Failed(_)),
            "{name}: {verdict:?}"
        );
    }
}

#[test]
fn only_the_new_deployment_is_judged() {
    // A redeploy of task-svc:7 after a rolled-back one: ECS still lists the stopped task of the
    // failed deployment, same task definition, started by ecs-svc/2222.
    assert_eq!(
        judge(&observation("redeploy_after_rollback"), OURS),
        Verdict::InProgress("tasks 0/2 running (2 pending), targets: 1 initial".to_owned())
    );
    // The old deployment's target fails its checks while it drains; ours are healthy.
    assert_eq!(
        judge(&observation("old_target_unhealthy"), OURS),
        Verdict::InProgress("tasks 2/2 running (0 pending), targets: 2 healthy".to_owned())
    );
}

#[test]
fn a_circuit_breaker_rollback_fails_with_its_reason() {
    assert_eq!(
        failure("circuit_breaker_rollback"),
        "deployment ecs-svc/2222 failed: ECS deployment circuit breaker: tasks failed to start."
    );
    assert_eq!(
        failure("rolled_back"),
        "ECS rolled the service back to task-svc:6: the deployment of task-svc:7 is gone"
    );
}

#[test]
fn a_stopped_task_of_the_new_deployment_fails_with_the_stopped_reason() {
    let reason = failure("task_failed_to_start");
    assert!(
        reason.starts_with("task 9f8e stopped: CannotPullContainerError: pull image manifest"),
        "{reason}"
    );
    assert!(
        reason.ends_with(
            "; container task-svc: CannotPullContainerError: pull image manifest has been retried 7 time(s)"
        ),
        "{reason}"
    );
    assert_eq!(
        failure("container_exited"),
        "task 7c6d stopped: Essential container in task exited; container task-svc exited with 2"
    );
}

#[test]
fn an_unhealthy_target_fails_with_the_reason_code() {
    assert_eq!(
        failure("unhealthy_target"),
        "target 10.0.1.23:50051 is unhealthy: Target.ResponseCodeMismatch (Health checks failed with these codes: [14])"
    );
}

#[test]
fn the_timeout_ends_the_wait_with_the_last_progress() {
    let mut watcher = Watcher::new(OURS, Duration::from_secs(60));
    let starting = observation("in_progress_starting");
    assert!(matches!(
        watcher.step(&starting, Duration::from_secs(59)),
        Step::Continue(_)
    ));
    let step = watcher.step(&starting, Duration::from_secs(60));
    let Step::Done(Err(error @ RolloutError::TimedOut { .. })) = step else {
        panic!("expected a timeout, got {step:?}");
    };
    assert_eq!(
        error.to_string(),
        "no steady state after 60 s (--timeout): tasks 0/2 running (2 pending), targets: 1 initial"
    );
}

#[test]
fn malformed_responses_are_errors_not_panics() {
    assert!(
        Observation::from_responses(
            "{}",
            "{\"tasks\": []}",
            "{\"TargetHealthDescriptions\": []}"
        )
        .is_err()
    );
    assert!(
        Observation::from_responses(
            "{\"services\": []}",
            "{\"tasks\": []}",
            "{\"TargetHealthDescriptions\": []}"
        )
        .expect_err("no service")
        .to_string()
        .contains("no service")
    );
    assert!(Observation::from_responses("not json", "", "").is_err());
}
