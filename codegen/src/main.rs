//! The `svcgen` command line.

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
    /// Regenerates every generated file of a project; hand-written files are never touched.
    ///
    /// Example: svcgen generate generated-example
    Generate {
        /// Writes nothing; exits 1 and lists the files that are missing, stale or extra.
        #[arg(long)]
        check: bool,
        /// Project directory (holds svcgen.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// DynamoDB tables of a project.
    #[cfg(feature = "aws")]
    Table {
        #[command(subcommand)]
        command: TableCommand,
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
        Command::Generate { check, dir } => generate(&dir, check),
        #[cfg(feature = "aws")]
        Command::Table {
            command: TableCommand::Create { dir },
        } => create_tables(&dir),
    }
}

#[cfg(feature = "aws")]
fn create_tables(dir: &std::path::Path) -> ExitCode {
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
    match runtime.block_on(svcgen::table::create(&specs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
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

fn generate(dir: &std::path::Path, check: bool) -> ExitCode {
    let output = match svcgen::generate(dir) {
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
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
