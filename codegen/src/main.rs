//! The `svcgen` command line.

use std::path::{Path, PathBuf};
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
        /// Depend on svcgen-runtime from this checkout directory (default: the checkout svcgen was
        /// built from, when it still exists; otherwise the crates.io version).
        #[arg(long, value_name = "DIR")]
        runtime_path: Option<PathBuf>,
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
    /// `reserved`; changed field types or reused numbers; renamed fields. Stored data: changed
    /// key or index templates, entities moved to another table or no longer entities, changed TTL
    /// or version fields, renamed or retyped stored fields, renamed physical tables, new
    /// indexes that need a backfill. Infrastructure: renamed service, changed port (target
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
    /// ECS service; then waits for a steady state and prints a command that calls the service.
    /// Settings come from svcgen.toml [aws] (region, vpc_id, subnets, security_groups,
    /// listener_arn, cluster) and [deploy]; credentials and AWS_ENDPOINT_URL from the standard
    /// AWS chain. Exit 2: bad input, found before any change; exit 1: AWS refused or the rollout
    /// failed.
    ///
    /// Example: svcgen deploy --dry-run generated-example
    #[cfg(feature = "aws")]
    Deploy {
        /// Deploy this image instead of building one.
        #[arg(long, value_name = "URI")]
        image: Option<String>,
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
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::New {
            name,
            dir,
            templates,
            runtime_path,
        } => new(&name, dir, templates, runtime_path),
        Command::Generate {
            check,
            templates,
            dir,
        } => generate(&dir, templates.as_deref(), check),
        Command::Breaking {
            against,
            allow,
            dir,
        } => breaking(&dir, &against, &allow),
        Command::Templates {
            command: TemplatesCommand::Export { dir },
        } => match svcgen::templates::export(&dir) {
            Ok(paths) => {
                eprintln!("wrote {} templates to {}", paths.len(), dir.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                report(error);
                ExitCode::from(2)
            }
        },
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "svcgen", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        #[cfg(feature = "aws")]
        Command::Table {
            command: TableCommand::Create { dir },
        } => create_tables(&dir),
        #[cfg(feature = "aws")]
        Command::Deploy {
            image,
            region,
            dry_run,
            no_wait,
            timeout,
            dir,
        } => {
            let options = svcgen::deploy::Options {
                dir,
                image,
                region,
                dry_run,
                wait: !no_wait,
                timeout: std::time::Duration::from_secs(timeout),
            };
            on_runtime(async move { svcgen::deploy::deploy(&options).await })
        }
        #[cfg(feature = "aws")]
        Command::Status { region, dir } => {
            on_runtime(async move { svcgen::deploy::status(&dir, region.as_deref()).await })
        }
    }
}

/// Runs an AWS command; exit 2 for bad input (nothing was changed), 1 for a failure.
#[cfg(feature = "aws")]
fn on_runtime(
    task: impl std::future::Future<Output = Result<(), svcgen::deploy::DeployError>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(svcgen::deploy::DeployError::Input(error)) => {
            eprintln!("error: {error}");
            eprintln!("nothing was changed");
            ExitCode::from(2)
        }
        Err(svcgen::deploy::DeployError::Failed(error)) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "aws")]
fn create_tables(dir: &Path) -> ExitCode {
    let project = match svcgen::load(dir) {
        Ok(project) => project,
        Err(error) => {
            report(error);
            return ExitCode::from(2);
        }
    };
    let specs = svcgen::table::specs(&project, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    });
    on_runtime(async move {
        svcgen::table::create(&specs)
            .await
            .map_err(svcgen::deploy::DeployError::from)
    })
}

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

fn breaking(dir: &Path, against: &str, allow: &[String]) -> ExitCode {
    let new = match svcgen::load(dir) {
        Ok(project) => project,
        Err(error) => {
            report(error);
            return ExitCode::from(2);
        }
    };
    let scratch = match tempfile::tempdir() {
        Ok(scratch) => scratch,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let old_dir = match svcgen::breaking::old_project_dir(dir, against, scratch.path()) {
        Ok(old_dir) => old_dir,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let old = match svcgen::load(&old_dir) {
        Ok(project) => project,
        Err(error) => {
            report(error);
            eprintln!("error: the version at `{against}` does not load");
            return ExitCode::from(2);
        }
    };
    let label = if Path::new(against).is_dir() {
        String::new()
    } else {
        format!("{against}:")
    };
    let findings = svcgen::breaking::compare(
        &svcgen::breaking::Side {
            project: &old,
            dir: &old_dir,
            label: &label,
        },
        &svcgen::breaking::Side {
            project: &new,
            dir,
            label: "",
        },
    );
    let (allowed, breaking): (Vec<_>, Vec<_>) = findings
        .iter()
        .partition(|f| allow.iter().any(|a| f.allowed_by(a)));
    for finding in &breaking {
        eprintln!(
            "{}: {} [{}] {}\n  {}\n  help: {} (or, if intended: --allow {}:{})",
            finding.location,
            finding.category,
            finding.rule,
            finding.subject,
            finding.message,
            finding.help,
            finding.rule,
            finding.subject
        );
    }
    for finding in &allowed {
        eprintln!(
            "allowed: {} [{}] {}",
            finding.location, finding.rule, finding.subject
        );
    }
    if breaking.is_empty() {
        eprintln!(
            "no breaking changes against {against} ({} allowed)",
            allowed.len()
        );
        return ExitCode::SUCCESS;
    }
    let count = |category| breaking.iter().filter(|f| f.category == category).count();
    eprintln!(
        "{} breaking change(s) against {against}: {} for clients, {} for stored data, {} for infrastructure",
        breaking.len(),
        count(svcgen::breaking::Category::Client),
        count(svcgen::breaking::Category::StoredData),
        count(svcgen::breaking::Category::Infrastructure)
    );
    ExitCode::from(1)
}

fn new(
    name: &str,
    dir: Option<PathBuf>,
    templates: Option<PathBuf>,
    runtime_path: Option<PathBuf>,
) -> ExitCode {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    // By default a project depends on the checkout svcgen was built from, while it exists:
    // svcgen-runtime is not published yet.
    let runtime_path = runtime_path.or_else(|| {
        std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime"))
            .ok()
            .filter(|checkout| checkout.join("Cargo.toml").is_file())
    });
    let request = svcgen::new::NewProject {
        name,
        dir: &dir,
        templates: templates.as_deref(),
        runtime_path: runtime_path.as_deref(),
    };
    match svcgen::new::create(&request) {
        Ok(files) => {
            for file in &files {
                eprintln!("wrote   {}", dir.join(file).display());
            }
            match &runtime_path {
                Some(path) => eprintln!(
                    "svcgen-runtime: path dependency on {} (replace it with a version once svcgen-runtime is published)",
                    path.display()
                ),
                None => eprintln!("svcgen-runtime: version 0.1 from crates.io"),
            }
            if let Some(workspace) = svcgen::new::enclosing_workspace(&dir) {
                eprintln!(
                    "note: {} is inside the cargo workspace of {}; add it to that workspace's `members` (or `exclude`) before building",
                    dir.display(),
                    workspace.display()
                );
            }
            eprintln!("next: cd {} && cargo run", dir.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            report(error);
            eprintln!("error: nothing was written");
            ExitCode::from(2)
        }
    }
}

fn generate(dir: &Path, templates: Option<&Path>, check: bool) -> ExitCode {
    let output = match svcgen::generate(dir, templates) {
        Ok(output) => output,
        Err(svcgen::GenerateError::Model(diagnostics)) => {
            let count = diagnostics.problems.len();
            for problem in diagnostics.problems {
                report(problem);
            }
            eprintln!("error: {count} problem(s) in the proto annotations; nothing was written");
            return ExitCode::from(2);
        }
        Err(error) => {
            report(error);
            eprintln!("error: nothing was written");
            return ExitCode::from(2);
        }
    };
    if check {
        let drift = svcgen::output::check(dir, &output);
        if drift.is_empty() {
            return ExitCode::SUCCESS;
        }
        eprintln!("generated files are out of date in {}:", dir.display());
        for d in &drift {
            eprintln!("  {d}");
        }
        eprintln!("fix: svcgen generate {}", dir.display());
        return ExitCode::from(1);
    }
    match svcgen::output::write(dir, &output) {
        Ok(report) => {
            for path in &report.written {
                eprintln!("wrote   {}", path.display());
            }
            for path in &report.removed {
                eprintln!("removed {}", path.display());
            }
            eprintln!(
                "{}: {} written, {} removed, {} unchanged",
                dir.display(),
                report.written.len(),
                report.removed.len(),
                report.unchanged
            );
            for path in svcgen::output::unused_stubs(dir, &output) {
                eprintln!(
                    "note: {} no longer serves an RPC (it was removed or has an operation now); delete it once its code is not needed",
                    path.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
