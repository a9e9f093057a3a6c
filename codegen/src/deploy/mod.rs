//! `svcgen deploy` and `svcgen status`: the ECS deployment checklist as one idempotent command.
//!
//! Every resource is described first and compared with the generated definition; it is
//! created when missing, updated when it differs and left alone when equal, so a second run
//! with nothing changed makes no mutating call. All input is checked, and the listener and
//! credentials are looked at, before the first mutating call. `--dry-run` stops at "would".
//! Nothing here prints: [`deploy`] reports each step to a [`Progress`] as it is done and
//! returns a [`Summary`]; [`status`] returns a [`StatusReport`]; both fail with a
//! [`DeployError`].

mod cloud_map;
mod compare;
mod dynamodb;
mod ecr;
mod ecs;
mod elb;
mod error;
mod iam;
mod identity;
mod image;
mod logs;
mod monitoring;
mod progress;
mod rollout;
mod status;
mod verify;

pub use error::{AwsError, DeployError, Failure, InputError};
pub use image::EngineError;
pub use progress::{Event, NotVerified, NotWaited, Outcome, Progress, STEPS, StepLine, Summary};
pub use status::{StatusReport, TaskStatus};
pub use verify::{Verified, VerifyError};

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Architecture;
use crate::infra::{Infrastructure, Target};

/// What `svcgen deploy` was asked to do.
pub struct Options {
    /// Project directory.
    pub dir: PathBuf,
    /// An existing image to deploy instead of building one.
    pub image: Option<String>,
    /// The environment (`[environments.NAME]`), if any.
    pub environment: Option<String>,
    /// Region (over `[aws] region` and the standard chain).
    pub region: Option<String>,
    /// Describe and compare only.
    pub dry_run: bool,
    /// Wait for a steady state after a rollout.
    pub wait: bool,
    /// How long to wait.
    pub timeout: Duration,
    /// Call the service through the load balancer at the end.
    pub verify: bool,
    /// Connect there (`HOST:PORT`) instead of the domain's address.
    pub verify_address: Option<String>,
}

/// The regions svcgen knows (commercial, China, GovCloud, European Sovereign Cloud).
const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eusc-de-east-1",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Everything a deployment needs, checked.
struct Settings {
    dir: PathBuf,
    region: String,
    network: Network,
    architecture: Architecture,
    /// The project, for the model of its infrastructure in the caller's account.
    project: crate::Project,
    /// What to create: built for the generated artifacts' placeholders until the caller's
    /// account is known (names do not depend on it).
    infra: Infrastructure,
}

/// Reads the project and its `[aws]` settings in `environment`; every problem names the
/// setting to fix.
fn settings(
    dir: &Path,
    environment: Option<&str>,
    region: Option<&str>,
    deploying: bool,
) -> Result<Settings, DeployError> {
    let mut project = crate::load(dir).map_err(InputError::from)?;
    if deploying {
        let output = crate::render_project(&project, dir, None).map_err(InputError::from)?;
        let drift = crate::output::check(dir, &output);
        if !drift.is_empty() {
            return Err(InputError::Stale {
                dir: dir.to_owned(),
                drift,
            }
            .into());
        }
    }
    if let Some(name) = environment {
        project.config = project
            .config
            .for_environment(name)
            .map_err(|problem| crate::GenerateError::Config {
                path: dir.join(crate::config::FILE_NAME),
                problem,
            })
            .map_err(InputError::from)?;
    }
    let config = &project.config;
    let network = network(&config.aws)?;
    let region = deployment_region(region, &config.aws, &network.listener_arn)?;
    Ok(Settings {
        dir: dir.to_owned(),
        region,
        network,
        architecture: config.deploy.architecture,
        infra: Infrastructure::generated(config, &project.model),
        project,
    })
}

/// The `[aws]` network settings, each present and well-formed.
struct Network {
    vpc_id: String,
    subnets: Vec<String>,
    security_groups: Vec<String>,
    listener_arn: String,
    /// The listener's load balancer, `app/<name>/<id>` (its metrics' `LoadBalancer` dimension).
    load_balancer: String,
}

/// Checks the `[aws]` network settings: set, and ids and ARN of the right kind.
fn network(aws: &crate::config::AwsConfig) -> Result<Network, InputError> {
    let vpc_id = aws.vpc_id.clone().ok_or(InputError::Unset {
        key: "vpc_id",
        what: "the VPC of the load balancer and the tasks",
        example: "\"vpc-0123456789abcdef0\"",
    })?;
    if aws.subnets.is_empty() {
        return Err(InputError::Unset {
            key: "subnets",
            what: "the private subnets the tasks run in",
            example: "[\"subnet-0123456789abcdef0\"]",
        });
    }
    if aws.security_groups.is_empty() {
        return Err(InputError::Unset {
            key: "security_groups",
            what: "the tasks' security groups (allow the load balancer's group on the container port)",
            example: "[\"sg-0123456789abcdef0\"]",
        });
    }
    let listener_arn = aws.listener_arn.clone().ok_or(InputError::Unset {
        key: "listener_arn",
        what: "the ARN of the load balancer's HTTPS listener",
        example: "\"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/edge/50dc6c495c0c9188/f2f7dc8efc522ab2\"",
    })?;
    for (key, values, prefix) in [
        ("vpc_id", std::slice::from_ref(&vpc_id), "vpc-"),
        ("subnets", aws.subnets.as_slice(), "subnet-"),
        ("security_groups", aws.security_groups.as_slice(), "sg-"),
    ] {
        if let Some(bad) = values.iter().find(|v| !v.starts_with(prefix)) {
            return Err(InputError::NotAnId {
                key,
                value: bad.clone(),
                prefix,
            });
        }
    }
    let load_balancer = listener_arn
        .starts_with("arn:")
        .then(|| compare::load_balancer_full_name(&listener_arn))
        .flatten();
    let Some(load_balancer) = load_balancer else {
        return Err(InputError::NotAListenerArn { arn: listener_arn });
    };
    Ok(Network {
        vpc_id,
        subnets: aws.subnets.clone(),
        security_groups: aws.security_groups.clone(),
        listener_arn,
        load_balancer,
    })
}

/// The region: `--region`, else `[aws] region`, else the environment; known to svcgen and the
/// listener's.
fn deployment_region(
    option: Option<&str>,
    aws: &crate::config::AwsConfig,
    listener_arn: &str,
) -> Result<String, InputError> {
    let region = option
        .map(str::to_owned)
        .or_else(|| aws.region.clone())
        .or_else(|| {
            ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
        })
        .ok_or(InputError::NoRegion)?;
    if !REGIONS.contains(&region.as_str()) {
        return Err(InputError::UnknownRegion { region });
    }
    if listener_arn.split(':').nth(3) != Some(region.as_str()) {
        return Err(InputError::ListenerRegion {
            region,
            arn: listener_arn.to_owned(),
        });
    }
    Ok(region)
}

/// One client per AWS service, from the standard configuration chain (`AWS_ENDPOINT_URL`
/// included).
struct Clients {
    sts: aws_sdk_sts::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    ecr: aws_sdk_ecr::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    iam: aws_sdk_iam::Client,
    ecs: aws_sdk_ecs::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    discovery: aws_sdk_servicediscovery::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
}

async fn clients(region: &str) -> Clients {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await;
    Clients {
        sts: aws_sdk_sts::Client::new(&config),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        ecr: aws_sdk_ecr::Client::new(&config),
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        iam: aws_sdk_iam::Client::new(&config),
        ecs: aws_sdk_ecs::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
        discovery: aws_sdk_servicediscovery::Client::new(&config),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
    }
}

/// The changes of a run: each step records what it changes (or would change, in a dry run);
/// when a step is done, its line goes to the progress.
struct Plan<'p> {
    dry_run: bool,
    step: Vec<String>,
    total: usize,
    progress: &'p mut dyn Progress,
}

impl Plan<'_> {
    /// Records a change; true when it is to be made (not a dry run).
    fn change(&mut self, what: impl Into<String>) -> bool {
        self.step.push(what.into());
        self.total += 1;
        !self.dry_run
    }

    /// Reports step `number` done and starts the next step; true when the step changed (or
    /// would change) something.
    fn done(&mut self, number: usize, subject: String) -> bool {
        let changes = std::mem::take(&mut self.step);
        let changed = !changes.is_empty();
        let outcome = if !changed {
            Outcome::Unchanged
        } else if self.dry_run {
            Outcome::WouldChange(changes)
        } else {
            Outcome::Changed(changes)
        };
        self.progress.event(&Event::Step(StepLine {
            number,
            subject,
            outcome,
        }));
        changed
    }
}

/// Where the image comes from.
enum Source {
    /// `--image URI`.
    Given(String),
    /// Built from the project with an engine, tagged with the source revision.
    Build { engine: image::Engine, tag: String },
}

/// `--image URI` when given (and plausible), else a container engine and the source revision.
fn image_source(image: Option<&str>, dir: &Path) -> Result<Source, InputError> {
    match image {
        Some(image) if image.is_empty() || image.contains(char::is_whitespace) => {
            Err(InputError::ImageUri {
                image: image.to_owned(),
            })
        }
        Some(image) => Ok(Source::Given(image.to_owned())),
        None => {
            let engine = image::find_engine().ok_or(InputError::NoEngine)?;
            let tag = image::revision(dir)?;
            Ok(Source::Build { engine, tag })
        }
    }
}

/// `svcgen deploy`: checks the input, the credentials and the listener, then runs the eleven
/// steps, reporting each to `progress` when it is done. Returns what changed (or would).
pub async fn deploy(
    options: &Options,
    progress: &mut dyn Progress,
) -> Result<Summary, DeployError> {
    let mut settings = settings(
        &options.dir,
        options.environment.as_deref(),
        options.region.as_deref(),
        true,
    )?;
    let source = image_source(options.image.as_deref(), &settings.dir)?;
    let aws = clients(&settings.region).await;
    let caller = identity::caller(&aws).await?;
    let target = Target {
        partition: &caller.partition,
        region: &settings.region,
        account: &caller.account,
    };
    settings.infra = Infrastructure::new(&settings.project.config, &settings.project.model, target);
    let listener = elb::listener(&aws, &settings).await?;
    progress.event(&Event::Start {
        service: settings.infra.service.name.clone(),
        region: settings.region.clone(),
        account: caller.account.clone(),
        cluster: settings.infra.cluster.name.clone(),
        dry_run: options.dry_run,
    });
    let mut plan = Plan {
        dry_run: options.dry_run,
        step: Vec::new(),
        total: 0,
        progress,
    };
    let deployment = Deployment {
        aws: &aws,
        settings: &settings,
        account: &caller.account,
        listener: &listener,
    };
    let rollout = deployment.apply(&mut plan, &source).await?;
    deployment.settle(&mut plan, &rollout, options).await?;
    let list = verify::list_call(&settings.project);
    let domain = settings.infra.listener_rule.host.as_deref();
    // The load balancer's own name when there is no domain: no certificate covers it.
    let host = domain.unwrap_or(&listener.dns_name);
    let command = verify::command(&settings.dir, &settings.project.config, host, list.as_ref());
    let not_verified = if options.dry_run {
        Some(NotVerified::DryRun)
    } else if !options.verify {
        Some(NotVerified::NoVerify)
    } else if !options.wait {
        Some(NotVerified::NoWait)
    } else {
        None
    };
    match (not_verified, domain) {
        (None, Some(domain)) => {
            let address = options.verify_address.as_deref();
            let verified = verify::verify(domain, address, list.as_ref(), command)
                .await
                .map_err(Failure::Verify)?;
            plan.progress.event(&Event::Verified { verified });
        }
        (why, _) => plan.progress.event(&Event::NotVerified {
            why: why.unwrap_or(NotVerified::NoDomain),
            command,
        }),
    }
    Ok(Summary {
        dry_run: options.dry_run,
        changes: plan.total,
    })
}

/// A deployment under way: what steps 1 to 10 work with.
struct Deployment<'a> {
    aws: &'a Clients,
    settings: &'a Settings,
    account: &'a str,
    listener: &'a elb::Listener,
}

/// What steps 1 to 9 leave for the wait: the ARNs (none when a dry run would create them) and
/// whether the service changed.
struct Rollout {
    task_definition: Option<String>,
    target_group: Option<String>,
    rolled_out: bool,
}

impl Deployment<'_> {
    /// Steps 1 to 9, each reported when it is done.
    async fn apply(&self, plan: &mut Plan<'_>, source: &Source) -> Result<Rollout, DeployError> {
        let (aws, settings, infra) = (self.aws, self.settings, &self.settings.infra);
        let image = self.image(plan, source).await?;
        plan.done(1, format!("ECR repository and image {image}"));

        for table in &infra.tables {
            dynamodb::table(aws, plan, table).await?;
        }
        let tables: Vec<&str> = infra.tables.iter().map(|t| t.physical.as_str()).collect();
        plan.done(2, format!("DynamoDB table {}", tables.join(", ")));

        for role in [&infra.task_role, &infra.execution_role] {
            iam::role(aws, plan, role, &infra.trust_policy).await?;
        }
        let roles = (&infra.task_role.name, &infra.execution_role.name);
        plan.done(3, format!("IAM roles {} and {}", roles.0, roles.1));

        let cluster_exists = ecs::cluster(aws, plan, &infra.cluster).await?;
        plan.done(4, format!("ECS cluster {}", infra.cluster.name));

        logs::log_group(aws, plan, &infra.log_group).await?;
        let definition = infra.task_definition.with_image(&infra.binary, &image);
        let task_definition = ecs::task_definition(aws, plan, &definition).await?;
        plan.done(5, format!("task definition {}", definition.family));

        let registry = cloud_map::discovery(aws, plan, settings).await?;
        plan.done(6, format!("Cloud Map {}", infra.discovery.dns_name()));

        let target_group = elb::target_group(aws, plan, settings).await?;
        let target = target_group.as_deref();
        elb::listener_rule(aws, plan, settings, self.listener, target).await?;
        let paths = infra.listener_rule.path_patterns.join(", ");
        let group = &infra.target_group.name;
        plan.done(7, format!("target group {group} and listener rule {paths}"));

        let others = monitoring::monitoring(aws, plan, settings, target).await?;
        let (dashboard, alarms) = (
            &infra.monitoring.dashboard_name,
            infra.monitoring.alarms.len(),
        );
        let mut subject = format!("CloudWatch dashboard {dashboard} and {alarms} alarms");
        if !others.is_empty() {
            subject.push_str(&format!(
                " (not generated, left in place: {}; svcgen deletes no alarm)",
                others.join(", ")
            ));
        }
        plan.done(8, subject);

        let resources = compare::ServiceResources {
            task_definition: task_definition.as_deref(),
            target_group: target_group.as_deref(),
            registry: registry.as_deref(),
        };
        ecs::service(aws, plan, settings, cluster_exists, &resources).await?;
        let rolled_out = plan.done(9, format!("ECS service {}", infra.service.name));
        Ok(Rollout {
            task_definition,
            target_group,
            rolled_out,
        })
    }

    /// Step 1: the repository, and the image built and pushed unless it is there. Returns the
    /// image.
    async fn image(&self, plan: &mut Plan<'_>, source: &Source) -> Result<String, DeployError> {
        let (aws, settings) = (self.aws, self.settings);
        let repository = ecr::repository(aws, plan, settings, self.account).await?;
        match source {
            Source::Given(image) => {
                if !image.starts_with(&format!("{repository}:")) {
                    plan.progress.event(&Event::ForeignImage {
                        repository,
                        image: image.clone(),
                    });
                }
                Ok(image.clone())
            }
            Source::Build { engine, tag } => {
                ecr::image(aws, plan, settings, &repository, engine, tag).await
            }
        }
    }

    /// Step 10: waits for a steady state when the service changed and waiting was asked for.
    async fn settle(
        &self,
        plan: &mut Plan<'_>,
        rollout: &Rollout,
        options: &Options,
    ) -> Result<(), DeployError> {
        match (&rollout.task_definition, &rollout.target_group) {
            (Some(task_definition), Some(target_group))
                if rollout.rolled_out && options.wait && !options.dry_run =>
            {
                let arns = (task_definition.as_str(), target_group.as_str());
                rollout::wait(
                    self.aws,
                    self.settings,
                    arns,
                    options.timeout,
                    plan.progress,
                )
                .await
            }
            _ => {
                let why = if options.dry_run {
                    NotWaited::DryRun
                } else if !rollout.rolled_out {
                    NotWaited::NothingToRollOut
                } else {
                    NotWaited::NoWait
                };
                plan.progress.event(&Event::NotWaited(why));
                Ok(())
            }
        }
    }
}

/// `svcgen verify`: calls the service in `environment` through the load balancer at its
/// `[deploy] domain` (connecting to `address` when given).
pub async fn verify(
    dir: &Path,
    environment: Option<&str>,
    address: Option<&str>,
) -> Result<Verified, DeployError> {
    let project = crate::load_environment(dir, environment).map_err(InputError::from)?;
    let infra = Infrastructure::generated(&project.config, &project.model);
    let domain = infra
        .listener_rule
        .host
        .as_deref()
        .ok_or(InputError::NoDomain)?;
    let list = verify::list_call(&project);
    let command = verify::command(dir, &project.config, domain, list.as_ref());
    Ok(verify::verify(domain, address, list.as_ref(), command)
        .await
        .map_err(Failure::Verify)?)
}

/// `svcgen status`: the service, its deployments and tasks, and the target health.
pub async fn status(
    dir: &Path,
    environment: Option<&str>,
    region: Option<&str>,
) -> Result<StatusReport, DeployError> {
    let settings = settings(dir, environment, region, false)?;
    let aws = clients(&settings.region).await;
    status::status(&aws, &settings).await
}
