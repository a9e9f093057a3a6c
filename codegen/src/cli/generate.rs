//! `svcgen generate`: writes the generated files, or with `--check` lists the ones that drifted.

use std::path::Path;
use std::process::ExitCode;

use svcgen::render::Output;

/// Regenerates the project in `dir`; exit 1 when `--check` finds drift, 2 when the project
/// does not generate or cannot be written.
pub(super) fn run(dir: &Path, templates: Option<&Path>, check: bool) -> ExitCode {
    let output = match svcgen::generate(dir, templates) {
        Ok(output) => output,
        Err(svcgen::GenerateError::Model(diagnostics)) => {
            let count = diagnostics.problems.len();
            for problem in diagnostics.problems {
                super::report(problem);
            }
            eprintln!("error: {count} problem(s) in the proto annotations; nothing was written");
            return super::input_error();
        }
        Err(error) => {
            super::report(error);
            eprintln!("error: nothing was written");
            return super::input_error();
        }
    };
    if check {
        self::check(dir, &output)
    } else {
        write(dir, &output)
    }
}

/// `--check`: lists what is missing, stale or extra.
fn check(dir: &Path, output: &Output) -> ExitCode {
    let drift = svcgen::output::check(dir, output);
    if drift.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("generated files are out of date in {}:", dir.display());
    for d in &drift {
        eprintln!("  {d}");
    }
    eprintln!("fix: svcgen generate {}", dir.display());
    super::failed()
}

/// Writes the files and lists what changed, then the stubs no RPC uses any more.
fn write(dir: &Path, output: &Output) -> ExitCode {
    let report = match svcgen::output::write(dir, output) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return super::input_error();
        }
    };
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
    for path in svcgen::output::unused_stubs(dir, output) {
        eprintln!(
            "note: {} no longer serves an RPC (it was removed or has an operation now); delete it once its code is not needed",
            path.display()
        );
    }
    ExitCode::SUCCESS
}
