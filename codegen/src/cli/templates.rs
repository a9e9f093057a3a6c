//! `svcgen templates export`: writes the embedded templates out, to start overrides from.

use std::path::Path;
use std::process::ExitCode;

/// Exports every template into `dir`; exit 2 when one exists already or cannot be written.
pub(super) fn export(dir: &Path) -> ExitCode {
    match svcgen::templates::export(dir) {
        Ok(paths) => {
            eprintln!("wrote {} templates to {}", paths.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            super::report(error);
            super::input_error()
        }
    }
}
