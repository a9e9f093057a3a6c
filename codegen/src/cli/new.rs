//! `svcgen new`: creates a project and prints what it wrote and where it stands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Creates project `name` in `dir` (default `./NAME`); exit 2 when nothing could be written.
pub(super) fn run(
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
