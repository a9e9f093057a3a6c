//! The `svcgen` command line: clap's definitions of every command and the dispatch to one
//! module per command (as sqlx-cli does). The library returns values, reports and typed
//! errors; only this layer prints them and chooses the exit code: 0 ok, 1 a check failed or
//! AWS refused, 2 a usage or input error.

mod breaking;
mod completions;
mod cost;
#[cfg(feature = "aws")]
mod deploy;
mod generate;
mod new;
#[cfg(feature = "aws")]
mod table;
mod templates;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Generates a production gRPC service for ECS Fargate from one annotated .proto.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a new service project that builds and runs as it is.
    ///
    /// Writes svcgen.toml, a commented proto with an example entity and RPCs, Cargo.toml,
    /// src/main.rs, src/handler.rs, a README and every generated file. Refuses a directory that
    /// exists and is not empty.
    ///
    /// Example: svcgen new order-svc && cd order-svc && cargo run
    New {
        /// Service name: lower-case letters, digits and '-' (names the crate, binary and ECS family).
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Replace embedded templates with the files of the same name in DIR.
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
    },
    /// Regenerates every generated file of a project; hand-written files are never touched.
    ///
    /// Example: svcgen generate generated-example
    Generate {
        /// Writes nothing; exits 1 and lists the files that are missing, stale or extra.
        #[arg(long)]
        check: bool,
        /// Replace embedded templates with the files of the same name in DIR (default: svcgen.toml
        /// [generate] templates).
        #[arg(long, value_name = "DIR")]
        templates: Option<PathBuf>,
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Reports changes that break clients, orphan stored data or replace infrastructure,
    /// compared with an earlier version of the project. Exits 1 when something breaks.
    ///
    /// Client: removed RPCs, services, messages, enum values; removed fields without
    /// `reserved`; changed field types or reused numbers; renamed fields or enum values. Stored
    /// data: changed key or index templates, entities moved to another table or no longer
    /// entities, changed TTL or version fields, renamed or retyped stored fields, renamed values
    /// of stored enums, renamed physical tables, new indexes that need a backfill. Infrastructure: renamed service, changed port (target
    /// group), Cloud Map namespace, service name or record type.
    ///
    /// Example: svcgen breaking --against origin/main .
    Breaking {
        /// The earlier version: a git revision of the repository holding DIR, or a project
        /// directory.
        #[arg(long, value_name = "REF|DIR")]
        against: String,
        /// An intended change, not counted: RULE (e.g. index-added) or RULE:SUBJECT as printed.
        #[arg(long, value_name = "RULE[:SUBJECT]")]
        allow: Vec<String>,
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// What one call of each RPC costs in DynamoDB requests and capacity units.
    ///
    /// Estimated from the model by DynamoDB's rounding (a read unit per 4 KB read, strongly
    /// consistent; half on an index; a write unit per 1 KB written, and again per index the
    /// item is in), for the item sizes given (default 1 KB each), a list RPC reading a full
    /// default page. With --from-log, measured: the per-call log lines of the calls answered OK
    /// in a run (the service's stderr), averaged per RPC.
    ///
    /// Example: svcgen cost --item-bytes Task=2500 generated-example
    Cost {
        /// An entity's typical stored item size in bytes (its attribute names and values as
        /// DynamoDB counts them), e.g. Task=2500.
        #[arg(long, value_name = "ENTITY=BYTES", value_parser = cost::item_bytes)]
        item_bytes: Vec<(String, usize)>,
        /// Measure instead: a file of the service's JSON log lines.
        #[arg(long, value_name = "FILE")]
        from_log: Option<PathBuf>,
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// The embedded templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// DynamoDB tables of a project.
    #[cfg(feature = "aws")]
    Table {
        #[command(subcommand)]
        command: TableCommand,
    },
    /// Deploys the project to ECS Fargate: each resource is created if missing, updated if it
    /// differs from the generated definition and left alone if equal.
    ///
    /// Steps: ECR repository and image (built and pushed with docker, podman or buildah, tagged
    /// with the git revision; or --image), DynamoDB tables, IAM roles, ECS cluster, log group
    /// and task definition, Cloud Map namespace and service, target group and listener rule,
    /// CloudWatch dashboard and alarms, ECS service; then waits for a steady state and prints a
    /// command that calls the service.
    /// Settings come from svcgen.toml [aws] (region, vpc_id, subnets, security_groups,
    /// listener_arn, cluster) and [deploy], with --env NAME those of [environments.NAME] over
    /// them; credentials and AWS_ENDPOINT_URL from the standard AWS chain. Exit 2: bad input, found before any change; exit 1: AWS refused or the rollout
    /// failed.
    ///
    /// Example: svcgen deploy --dry-run generated-example
    #[cfg(feature = "aws")]
    Deploy {
        /// Deploy this image instead of building one.
        #[arg(long, value_name = "URI")]
        image: Option<String>,
        /// Environment: `[environments.NAME]` in svcgen.toml, in the name of every resource.
        #[arg(long = "env", value_name = "NAME")]
        environment: Option<String>,
        /// AWS region (default: svcgen.toml [aws] region, then AWS_REGION).
        #[arg(long)]
        region: Option<String>,
        /// Describe and compare only; print what would change.
        #[arg(long)]
        dry_run: bool,
        /// Do not wait for the rollout (`svcgen status` shows it).
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting for a steady state after this many seconds (exit 1).
        #[arg(long, value_name = "SECONDS", default_value_t = 900)]
        timeout: u64,
        /// Do not call the service through the load balancer at the end.
        #[arg(long)]
        no_verify: bool,
        /// Verify by connecting to HOST:PORT instead of the domain's address (TLS and the
        /// host header still use the domain), e.g. before its DNS record exists.
        #[arg(long, value_name = "HOST:PORT")]
        verify_address: Option<String>,
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Shows the deployed service: deployments, tasks and target health.
    ///
    /// Example: svcgen status generated-example
    #[cfg(feature = "aws")]
    Status {
        /// AWS region (default: svcgen.toml [aws] region, then AWS_REGION).
        #[arg(long)]
        region: Option<String>,
        /// Environment: `[environments.NAME]` in svcgen.toml, in the name of every resource.
        #[arg(long = "env", value_name = "NAME")]
        environment: Option<String>,
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Calls the deployed service through the load balancer, as a client would: TLS to
    /// [deploy] domain (certificates from the system's roots, or SSL_CERT_FILE), gRPC health
    /// Check, then the first list RPC with the fields its key needs. Exit 1 when a call fails,
    /// 2 when there is no domain.
    ///
    /// Example: svcgen verify --env staging
    #[cfg(feature = "aws")]
    Verify {
        /// Environment: `[environments.NAME]` in svcgen.toml.
        #[arg(long = "env", value_name = "NAME")]
        environment: Option<String>,
        /// Connect to HOST:PORT instead of the domain's address (TLS and the host header still
        /// use the domain).
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<String>,
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Prints a shell completion script.
    ///
    /// Example: svcgen completions bash > ~/.local/share/bash-completion/completions/svcgen
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Writes every embedded template into DIR, to start overrides from.
    ///
    /// Example: svcgen templates export svcgen-templates
    Export {
        /// Target directory; existing template files are not overwritten.
        dir: PathBuf,
    },
}

#[cfg(feature = "aws")]
#[derive(Subcommand)]
enum TableCommand {
    /// Creates the project's tables, or confirms they exist with the same layout.
    ///
    /// Uses the standard AWS environment (AWS_REGION, credentials, AWS_ENDPOINT_URL for local
    /// servers); table names from TABLE_NAME_<LOGICAL>, TABLE_NAME or svcgen.toml [tables].
    ///
    /// Example: AWS_ENDPOINT_URL=http://127.0.0.1:8000 TABLE_NAME=tasks svcgen table create generated-example
    Create {
        /// Environment: `[environments.NAME]` in svcgen.toml, in the name of every resource.
        #[arg(long = "env", value_name = "NAME")]
        environment: Option<String>,
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

/// Parses the command line and runs the command; returns its exit code.
pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::New {
            name,
            dir,
            templates,
        } => new::run(&name, dir, templates),
        Command::Generate {
            check,
            templates,
            dir,
        } => generate::run(&dir, templates.as_deref(), check),
        Command::Breaking {
            against,
            allow,
            dir,
        } => breaking::run(&dir, &against, &allow),
        Command::Cost {
            item_bytes,
            from_log,
            dir,
        } => cost::run(&dir, &item_bytes, from_log.as_deref()),
        Command::Templates {
            command: TemplatesCommand::Export { dir },
        } => templates::export(&dir),
        Command::Completions { shell } => completions::run(shell),
        #[cfg(feature = "aws")]
        Command::Table {
            command: TableCommand::Create { environment, dir },
        } => table::create(&dir, environment.as_deref()),
        #[cfg(feature = "aws")]
        Command::Deploy {
            image,
            environment,
            region,
            dry_run,
            no_wait,
            timeout,
            no_verify,
            verify_address,
            dir,
        } => deploy::deploy(svcgen::deploy::Options {
            dir,
            image,
            environment,
            region,
            dry_run,
            wait: !no_wait,
            timeout: std::time::Duration::from_secs(timeout),
            verify: !no_verify,
            verify_address,
        }),
        #[cfg(feature = "aws")]
        Command::Verify {
            environment,
            address,
            dir,
        } => deploy::verify(&dir, environment.as_deref(), address.as_deref()),
        #[cfg(feature = "aws")]
        Command::Status {
            region,
            environment,
            dir,
        } => deploy::status(&dir, environment.as_deref(), region.as_deref()),
    }
}

/// Exit code 1: a check failed (stale files, breaking changes) or AWS refused.
fn failed() -> ExitCode {
    ExitCode::FAILURE
}

/// Exit code 2: a usage or input error; nothing was changed.
fn input_error() -> ExitCode {
    ExitCode::from(2)
}

/// Prints a diagnostic to stderr as miette renders it (without colours when stderr is not a
/// terminal).
fn report(error: impl miette::Diagnostic + Send + Sync + 'static) {
    use std::io::IsTerminal as _;
    let theme = if std::io::stderr().is_terminal() {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let mut text = String::new();
    let handler = miette::GraphicalReportHandler::new_themed(theme);
    if handler.render_report(&mut text, &error).is_err() {
        text = error.to_string();
    }
    eprintln!("{text}");
}
