//! Why `svcgen deploy` or `svcgen status` stopped: unusable input, found before any change
//! ([`InputError`], exit 2), or a failure once the work began ([`Failure`], exit 1). Each
//! variant carries what a caller can act on; its message is the one the command prints.

use std::path::PathBuf;

use crate::output::Drift;

/// Why a deployment (or `svcgen status`) stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Unusable input, found before any mutating call: nothing was changed (exit 2).
    #[error(transparent)]
    Input(#[from] InputError),
    /// AWS refused, the image did not build or the rollout failed (exit 1).
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// An AWS call failed once the work began: a failure, not a problem with the input.
impl From<AwsError> for DeployError {
    fn from(error: AwsError) -> Self {
        Self::Failed(Failure::Aws(error))
    }
}

impl From<aws_sdk_ecs::error::BuildError> for DeployError {
    fn from(error: aws_sdk_ecs::error::BuildError) -> Self {
        Self::Failed(Failure::Request(error))
    }
}

impl From<crate::table::TableError> for DeployError {
    fn from(error: crate::table::TableError) -> Self {
        Self::Failed(Failure::Table(error))
    }
}

/// An AWS call that failed, or answered without what svcgen needs.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The call failed; the message is the SDK error's whole chain (service code included).
    #[error("{operation} failed: {}", aws_sdk_ecs::error::DisplayErrorContext(.error.as_ref()))]
    Call {
        /// The operation, e.g. `ecs:DescribeServices`.
        operation: &'static str,
        /// The SDK's error.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The call succeeded but its answer lacks what svcgen needs.
    #[error("{operation} returned {returned}")]
    Unexpected {
        /// The operation, e.g. `ecs:RegisterTaskDefinition`.
        operation: &'static str,
        /// What came back, e.g. `no ARN`.
        returned: &'static str,
    },
}

impl AwsError {
    /// A failed call of `operation`.
    pub(super) fn call(
        operation: &'static str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Call {
            operation,
            error: Box::new(error),
        }
    }
}

/// Unusable input: the project, its `[aws]` settings, the options, the credentials or the
/// listener. Found before any mutating call.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The project does not load or render.
    #[error(transparent)]
    Project(#[from] crate::GenerateError),
    /// The checked-in generated files differ from what svcgen generates.
    #[error(
        "generated files are out of date ({}): run `svcgen generate {}` first, so what is deployed is what is checked in",
        .drift.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        .dir.display()
    )]
    Stale {
        /// The project directory.
        dir: PathBuf,
        /// How the files differ.
        drift: Vec<Drift>,
    },
    /// A required `[aws]` setting is missing.
    #[error("svcgen.toml [aws] {key} is not set: {what} (e.g. {key} = {example})")]
    Unset {
        /// The setting.
        key: &'static str,
        /// What it is.
        what: &'static str,
        /// An example value, as TOML.
        example: &'static str,
    },
    /// An `[aws]` id without its prefix (`vpc-`, `subnet-`, `sg-`).
    #[error("svcgen.toml [aws] {key}: {value:?} is not an id starting with {prefix:?}")]
    NotAnId {
        /// The setting.
        key: &'static str,
        /// The value.
        value: String,
        /// The prefix its ids start with.
        prefix: &'static str,
    },
    /// `[aws] listener_arn` is not an ALB listener ARN.
    #[error(
        "svcgen.toml [aws] listener_arn = {arn:?} is not the ARN of an Application Load Balancer listener (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/…)"
    )]
    NotAListenerArn {
        /// The value.
        arn: String,
    },
    /// No region from `--region`, `[aws] region` or the environment.
    #[error("no region: set [aws] region in svcgen.toml, pass --region or set AWS_REGION")]
    NoRegion,
    /// The region is not one svcgen knows.
    #[error(
        "region {region:?} (from --region, svcgen.toml [aws] region or AWS_REGION) is not an AWS region; known regions: {}",
        super::REGIONS.join(", ")
    )]
    UnknownRegion {
        /// The region given.
        region: String,
    },
    /// The listener is in another region than the deployment.
    #[error("svcgen.toml [aws] listener_arn is in another region than {region}: {arn}")]
    ListenerRegion {
        /// The deployment's region.
        region: String,
        /// The listener's ARN.
        arn: String,
    },
    /// `--image` is not an image URI.
    #[error("--image {image:?} is not an image URI")]
    ImageUri {
        /// The value given.
        image: String,
    },
    /// No container engine to build the image with.
    #[error(
        "no container engine (docker, podman or buildah) on PATH to build the image: install one, or deploy an existing image with --image URI"
    )]
    NoEngine,
    /// The project has no git revision to tag the image with.
    #[error(
        "{} is not in a git repository with a commit: the image is tagged with the source revision; commit, or pass --image URI",
        .dir.display()
    )]
    NoRevision {
        /// The project directory.
        dir: PathBuf,
    },
    /// The credentials do not work.
    #[error(
        "{0} (credentials come from the standard AWS chain: AWS_PROFILE, AWS_ACCESS_KEY_ID, SSO, …)"
    )]
    Credentials(AwsError),
    /// The listener cannot be described.
    #[error("svcgen.toml [aws] listener_arn: {0}")]
    ListenerLookup(AwsError),
    /// There is no listener with that ARN.
    #[error("svcgen.toml [aws] listener_arn: no listener {arn}")]
    NoListener {
        /// The ARN.
        arn: String,
    },
    /// The listener is not HTTPS.
    #[error(
        "svcgen.toml [aws] listener_arn: the listener's protocol is {}; an ALB routes gRPC only on an HTTPS listener",
        .protocol.as_deref().unwrap_or("unknown")
    )]
    ListenerProtocol {
        /// Its protocol, when AWS named one.
        protocol: Option<String>,
    },
    /// The listener's load balancer cannot be found.
    #[error("the listener's load balancer was not found")]
    NoLoadBalancer,
    /// The load balancer is in another VPC than `[aws] vpc_id`.
    #[error(
        "svcgen.toml [aws] vpc_id = {vpc_id:?}, but the listener's load balancer is in {}",
        .balancer_vpc.as_deref().unwrap_or("no VPC")
    )]
    OtherVpc {
        /// `[aws] vpc_id`.
        vpc_id: String,
        /// The load balancer's VPC, when AWS named one.
        balancer_vpc: Option<String>,
    },
    /// Another rule holds the listener rule's priority.
    #[error(
        "svcgen.toml [deploy] listener_rule_priority = {priority} is taken on the listener by {}: choose a free priority",
        .rule.as_deref().unwrap_or("another rule")
    )]
    PriorityTaken {
        /// `[deploy] listener_rule_priority`.
        priority: u32,
        /// The ARN of the rule holding it, when AWS named it.
        rule: Option<String>,
    },
    /// Another service's rule on the listener matches the same calls.
    #[error(
        "{} on the listener already routes {paths}{}: on a shared listener, give each service and environment its own [deploy] domain (in [environments.NAME.deploy] for an environment), so its rule matches its host name, and put a rule for one host before a rule for any host",
        .rule.as_deref().unwrap_or("another rule"),
        .host.as_deref().map(|h| format!(" for {h}")).unwrap_or_default()
    )]
    RouteTaken {
        /// The service's path patterns.
        paths: String,
        /// Its host name, if any.
        host: Option<String>,
        /// The ARN of the rule, when AWS named it.
        rule: Option<String>,
    },
    /// `svcgen verify` without a domain to call.
    #[error(
        "svcgen.toml [deploy] domain is not set: the host name the listener's certificate covers, which svcgen verify calls (e.g. domain = \"tasks.example.com\")"
    )]
    NoDomain,
    /// Looking at the account or the listener failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Why a deployment (or `svcgen status`) failed once the input was accepted.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// An SDK request could not be built from the generated settings.
    #[error(transparent)]
    Request(#[from] aws_sdk_ecs::error::BuildError),
    /// A policy document of the model could not be written as JSON (a bug).
    #[error("a policy document could not be written as JSON: {0}")]
    PolicyNotJson(serde_json::Error),
    /// A table could not be checked or created.
    #[error(transparent)]
    Table(#[from] crate::table::TableError),
    /// A table exists with another layout, which svcgen does not change.
    #[error("{difference}: svcgen does not change the keys of a table that holds data")]
    TableLayout {
        /// How the table differs.
        difference: String,
    },
    /// The image did not build or push.
    #[error(transparent)]
    Image(#[from] super::image::EngineError),
    /// A Cloud Map operation failed.
    #[error("Cloud Map operation {operation} failed: {reason}")]
    CloudMap {
        /// The operation id.
        operation: String,
        /// Cloud Map's reason.
        reason: String,
    },
    /// A Cloud Map operation did not finish in time.
    #[error("Cloud Map operation {operation} did not finish within 60 s")]
    CloudMapTimeout {
        /// The operation id.
        operation: String,
    },
    /// The target group exists with a setting that cannot change in place.
    #[error(
        "target group {name} exists with another {setting}, which cannot change in place: delete it (after moving its listener rules) or rename the service"
    )]
    TargetGroupFixed {
        /// The target group.
        name: String,
        /// The setting, e.g. `port`.
        setting: &'static str,
    },
    /// The service did not answer through the load balancer.
    #[error("verification failed: {0}")]
    Verify(#[from] super::verify::VerifyError),
    /// The rollout failed or timed out.
    #[error(transparent)]
    Rollout(#[from] svcgen_rollout::wait::RolloutError),
    /// `svcgen status`: the service's target group does not exist.
    #[error(
        "target group {target_group} not found: {service} is not deployed in {region} (run `svcgen deploy`)"
    )]
    NoTargetGroup {
        /// The target group.
        target_group: String,
        /// The service.
        service: String,
        /// The region.
        region: String,
    },
    /// `svcgen status`: the cluster does not exist.
    #[error("cluster {cluster} not found in {region} (run `svcgen deploy`)")]
    NoCluster {
        /// The cluster.
        cluster: String,
        /// The region.
        region: String,
    },
    /// `svcgen status`: the service does not exist in the cluster.
    #[error("service {service} not found in cluster {cluster} (run `svcgen deploy`)")]
    NoService {
        /// The service.
        service: String,
        /// The cluster.
        cluster: String,
    },
}
