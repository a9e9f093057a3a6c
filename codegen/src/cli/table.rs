//! `svcgen table create`: creates the project's DynamoDB tables and prints one line per table.

use std::path::Path;
use std::process::ExitCode;

/// Creates (or confirms) the tables of the project in `dir`; exit 2 when the project does not
/// load, 1 when a table cannot be created.
pub(super) fn create(dir: &Path, environment: Option<&str>) -> ExitCode {
    let project = match svcgen::load_environment(dir, environment) {
        Ok(project) => project,
        Err(error) => {
            super::report(error);
            return super::input_error();
        }
    };
    let specs = svcgen::table::specs(&project, |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    });
    let created = super::deploy::block_on(svcgen::table::create(&specs, |table| {
        println!("{table}");
    }));
    match created {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(error)) => {
            eprintln!("error: {error}");
            super::failed()
        }
        None => super::failed(),
    }
}
