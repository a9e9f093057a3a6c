//! `svcgen breaking`: loads the project and its earlier version, compares them and prints each
//! breaking change with its help, then a count by category.

use std::path::Path;
use std::process::ExitCode;

use svcgen::breaking::{Category, Finding, Side};

/// Compares the project in `dir` with `against` (a git revision or a directory); exit 1 when
/// something breaks that `allow` does not cover, 2 when either version does not load.
pub(super) fn run(dir: &Path, against: &str, allow: &[String]) -> ExitCode {
    let new = match svcgen::load(dir) {
        Ok(project) => project,
        Err(error) => {
            super::report(error);
            return super::input_error();
        }
    };
    let scratch = match tempfile::tempdir() {
        Ok(scratch) => scratch,
        Err(error) => {
            eprintln!("error: {error}");
            return super::input_error();
        }
    };
    let old_dir = match svcgen::breaking::old_project_dir(dir, against, scratch.path()) {
        Ok(old_dir) => old_dir,
        Err(error) => {
            eprintln!("error: {error}");
            return super::input_error();
        }
    };
    let old = match svcgen::load(&old_dir) {
        Ok(project) => project,
        Err(error) => {
            super::report(error);
            eprintln!("error: the version at `{against}` does not load");
            return super::input_error();
        }
    };
    // Locations in a directory are shown as they are; in a revision, after `REV:`.
    let label = if Path::new(against).is_dir() {
        String::new()
    } else {
        format!("{against}:")
    };
    let findings = svcgen::breaking::compare(
        &Side {
            project: &old,
            dir: &old_dir,
            label: &label,
        },
        &Side {
            project: &new,
            dir,
            label: "",
        },
    );
    print_findings(&findings, against, allow)
}

/// Prints the findings, the allowed ones apart, and the count by category.
fn print_findings(findings: &[Finding], against: &str, allow: &[String]) -> ExitCode {
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
        count(Category::Client),
        count(Category::StoredData),
        count(Category::Infrastructure)
    );
    super::failed()
}
