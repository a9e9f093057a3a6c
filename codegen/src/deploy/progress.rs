//! What `svcgen deploy` reports while it runs, and what it returns at the end. A deployment
//! takes minutes, so each step is reported through [`Progress`] when it is done rather than
//! at the end; every [`Event`] and the [`Summary`] display as the line the command prints.

use std::fmt;
use std::time::Duration;

/// The number of steps, shown as `[n/STEPS]`.
pub const STEPS: usize = 11;

/// Receives `svcgen deploy`'s events as they happen; the command line prints each one.
pub trait Progress {
    /// Called once per event, in order.
    fn event(&mut self, event: &Event);
}

impl<F: FnMut(&Event)> Progress for F {
    fn event(&mut self, event: &Event) {
        self(event);
    }
}

/// One thing `svcgen deploy` reports; each displays as one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The input, the credentials and the listener were checked: where the service goes.
    Start {
        /// The service.
        service: String,
        /// The region.
        region: String,
        /// The account the credentials belong to.
        account: String,
        /// The ECS cluster.
        cluster: String,
        /// Whether nothing is changed.
        dry_run: bool,
    },
    /// `--image` names an image outside the service's repository, which the execution role
    /// pulls only if it is public or its repository allows the role (a warning, not progress).
    ForeignImage {
        /// The service's repository.
        repository: String,
        /// The image given.
        image: String,
    },
    /// A step is done (steps 1 to 9).
    Step(StepLine),
    /// Step 10: the rollout progressed.
    Waiting {
        /// How far it is.
        progress: String,
    },
    /// Step 10: the rollout reached a steady state.
    Steady {
        /// Tasks running.
        running: u32,
        /// The task definition rolled out (`family:revision`).
        task_definition: String,
        /// How long the wait took.
        waited: Duration,
    },
    /// Step 10: the rollout was not waited for.
    NotWaited(NotWaited),
    /// Step 11: the service answered through the load balancer.
    Verified {
        /// What it answered, and the command that calls it.
        verified: super::Verified,
    },
    /// Step 11: the service was not called.
    NotVerified {
        /// Why not.
        why: NotVerified,
        /// The command that calls it.
        command: String,
    },
}

impl Event {
    /// Whether this is a warning rather than progress (printed to stderr).
    pub fn is_warning(&self) -> bool {
        matches!(self, Self::ForeignImage { .. })
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Start {
                service,
                region,
                account,
                cluster,
                dry_run,
            } => write!(
                f,
                "deploying {service} to {region} (account {account}, cluster {cluster}){}",
                if *dry_run {
                    ", dry run: no changes are made"
                } else {
                    ""
                }
            ),
            Self::ForeignImage { repository, image } => write!(
                f,
                "note: the execution role pulls only from {repository}; {image} must be public or allow the role in its repository policy"
            ),
            Self::Step(line) => line.fmt(f),
            Self::Waiting { progress } => write!(f, "[10/{STEPS}] waiting: {progress}"),
            Self::Steady {
                running,
                task_definition,
                waited,
            } => write!(
                f,
                "[10/{STEPS}] steady state: {running} tasks of {task_definition} running, targets healthy ({} s)",
                waited.as_secs()
            ),
            Self::NotWaited(why) => write!(f, "[10/{STEPS}] steady state: {why}"),
            Self::Verified { verified } => write!(
                f,
                "[11/{STEPS}] verified: {verified}; call it: {}",
                verified.command
            ),
            Self::NotVerified { why, command } => {
                write!(f, "[11/{STEPS}] not verified ({why}); call it: {command}")
            }
        }
    }
}

/// A step done: `[n/STEPS] subject: what changed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepLine {
    /// The step, from 1.
    pub number: usize,
    /// The resources of the step, e.g. `ECS cluster task-svc`.
    pub subject: String,
    /// What the step changed.
    pub outcome: Outcome,
}

impl fmt::Display for StepLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}/{STEPS}] {}: ", self.number, self.subject)?;
        match &self.outcome {
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Changed(changes) => f.write_str(&changes.join("; ")),
            Outcome::WouldChange(changes) => {
                let would: Vec<String> = changes.iter().map(|c| format!("would {c}")).collect();
                f.write_str(&would.join("; "))
            }
        }
    }
}

/// What a step changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every resource of the step matched the generated definition.
    Unchanged,
    /// These changes were made.
    Changed(Vec<String>),
    /// A dry run: these changes would be made.
    WouldChange(Vec<String>),
}

/// Why step 10 did not wait for a steady state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotWaited {
    /// `--dry-run`.
    DryRun,
    /// The service did not change.
    NothingToRollOut,
    /// `--no-wait`.
    NoWait,
}

impl fmt::Display for NotWaited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DryRun => "not waited for (dry run)",
            Self::NothingToRollOut => "nothing to roll out",
            Self::NoWait => "not waited for (--no-wait); `svcgen status` shows the rollout",
        })
    }
}

/// Why step 11 did not call the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotVerified {
    /// `--dry-run`.
    DryRun,
    /// `--no-verify`.
    NoVerify,
    /// `--no-wait`: the new tasks may not serve yet.
    NoWait,
    /// No `[deploy] domain`: the listener's certificate cannot cover the load balancer's name.
    NoDomain,
}

impl fmt::Display for NotVerified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DryRun => "dry run",
            Self::NoVerify => "--no-verify",
            Self::NoWait => "--no-wait: `svcgen verify` calls it once the rollout is done",
            Self::NoDomain => {
                "no [deploy] domain: set the host name the listener's certificate covers"
            }
        })
    }
}

/// What a deployment did; displays as its last line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Changes made (or, in a dry run, that would be made).
    pub changes: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            write!(
                f,
                "dry run: {} change(s) would be made; nothing was changed",
                self.changes
            )
        } else if self.changes == 0 {
            f.write_str("nothing changed: every resource matches the generated definitions")
        } else {
            write!(f, "deployed: {} change(s) made", self.changes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_say_what_changed_or_would_change() {
        let line = |outcome| StepLine {
            number: 4,
            subject: "ECS cluster task-svc".to_owned(),
            outcome,
        };
        let changes = vec!["create cluster".to_owned(), "add a provider".to_owned()];
        assert_eq!(
            line(Outcome::Unchanged).to_string(),
            "[4/11] ECS cluster task-svc: unchanged"
        );
        assert_eq!(
            line(Outcome::Changed(changes.clone())).to_string(),
            "[4/11] ECS cluster task-svc: create cluster; add a provider"
        );
        assert_eq!(
            line(Outcome::WouldChange(changes)).to_string(),
            "[4/11] ECS cluster task-svc: would create cluster; would add a provider"
        );
    }
}
