//! `svcgen new`: creates a project and prints what it wrote and where it stands.

use std::path::PathBuf;
use std::process::ExitCode;

/// Creates project `name` in `dir` (default `./NAME`); exit 2 when nothing could be written.
pub(super) fn run(name: &str, dir: Option<PathBuf>, templates: Option<PathBuf>) -> ExitCode {
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let request = svcgen::new::NewProject {
        name,
        dir: &dir,
        templates: templates.as_deref(),
    };
    let files = match svcgen::new::create(&request) {
        Ok(files) => files,
        Err(error) => {
            super::report(error);
            eprintln!("error: nothing was written");
            return super::input_error();
        }
    };
    for file in &files {
        eprintln!("wrote   {}", dir.join(file).display());
    }
    eprintln!(
        "svcgen-runtime {}: written under {} (commit it with Cargo.lock)",
        env!("CARGO_PKG_VERSION"),
        dir.join("vendor").display()
    );
    if let Some(workspace) = svcgen::new::enclosing_workspace(&dir) {
        eprintln!(
            "note: {} is inside the cargo workspace of {}; add it to that workspace's `exclude` before building (as a member it would not use its own Cargo.lock)",
            dir.display(),
            workspace.display()
        );
    }
    eprintln!("next: cd {} && cargo run", dir.display());
    ExitCode::SUCCESS
}
