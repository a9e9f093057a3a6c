//! `svcgen new`: a project that builds and runs as it is — inputs from the `new/` templates,
//! then every generated and scaffold file, assembled in a temporary directory next to the
//! target and moved into place only when all of it succeeded.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::GenerateError;
use crate::templates::Templates;

/// Why a project could not be created. Nothing is left behind in any case.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum NewError {
    /// The name is not a valid service name.
    #[error(
        "`{0}` is not a valid service name: use 2 to 32 lower-case letters, digits and single '-' between them, starting with a letter"
    )]
    #[diagnostic(code(svcgen::new::name))]
    Name(String),
    /// The target directory exists and is not empty.
    #[error("{0} exists and is not empty; svcgen new only writes into a new or empty directory")]
    #[diagnostic(
        code(svcgen::new::exists),
        help(
            "choose another directory with --dir, or run `svcgen generate` in an existing project"
        )
    )]
    NotEmpty(PathBuf),
    /// Rendering or validating the new project failed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Generate(#[from] GenerateError),
    /// Writing the generated files failed.
    #[error(transparent)]
    Write(#[from] crate::output::WriteError),
    /// I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NewError + '_ {
    move |source| NewError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What `svcgen new` is asked to do.
pub struct NewProject<'a> {
    /// The service name (crate, binary, ECS family).
    pub name: &'a str,
    /// Where the project goes; must not exist or be empty.
    pub dir: &'a Path,
    /// Template overrides.
    pub templates: Option<&'a Path>,
}

#[derive(Serialize)]
struct InputVars<'a> {
    name: &'a str,
    package: String,
    proto_file: String,
    service: String,
    table: String,
    discovery_name: String,
}

fn input_vars(name: &str) -> InputVars<'_> {
    let stem = name
        .strip_suffix("-svc")
        .or_else(|| name.strip_suffix("-service"))
        .unwrap_or(name);
    let module = stem.replace('-', "_");
    InputVars {
        name,
        package: format!("{module}.v1"),
        proto_file: format!("{module}/v1/{module}.proto"),
        service: format!("{}Service", crate::naming::camel(stem)),
        table: module.clone(),
        discovery_name: stem.to_owned(),
    }
}

/// Creates the project; returns the files written, relative to `dir`.
pub fn create(request: &NewProject<'_>) -> Result<Vec<PathBuf>, NewError> {
    if !crate::config::valid_service_name(request.name) {
        return Err(NewError::Name(request.name.to_owned()));
    }
    let target = request.dir;
    if target.exists() {
        let empty = target.is_dir()
            && std::fs::read_dir(target)
                .map_err(io(target))?
                .next()
                .is_none();
        if !empty {
            return Err(NewError::NotEmpty(target.to_owned()));
        }
    }
    let templates = Templates::load(request.templates).map_err(GenerateError::from)?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".svcgen-new-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let written = assemble(staging.path(), request.name, &templates)?;
    if target.exists() {
        std::fs::remove_dir(target).map_err(io(target))?;
    }
    std::fs::rename(staging.path(), target).map_err(io(target))?;
    // The staging directory is gone; nothing left for its guard to remove.
    let _ = staging.keep();
    Ok(written)
}

/// Writes the inputs, then generates the project from them, all under `dir`.
fn assemble(dir: &Path, name: &str, templates: &Templates) -> Result<Vec<PathBuf>, NewError> {
    let vars = input_vars(name);
    let inputs = [
        ("svcgen.toml".to_owned(), "new/svcgen.toml.hbs"),
        (
            format!("proto/{}", vars.proto_file),
            "new/service.proto.hbs",
        ),
        ("README.md".to_owned(), "new/README.md.hbs"),
        (".gitignore".to_owned(), "new/gitignore.hbs"),
    ];
    let mut written = Vec::new();
    for (path, template) in inputs {
        let text = templates
            .render(template, &vars)
            .map_err(GenerateError::from)?;
        let target = dir.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&target, text).map_err(io(&target))?;
        written.push(PathBuf::from(path));
    }
    let project = crate::load(dir)?;
    let options = crate::render::Options { templates };
    let output =
        crate::render::render(&project.config, &project.compiled, &project.model, &options)?;
    let report = crate::output::write(dir, &output)?;
    written.extend(report.written);
    written.sort();
    Ok(written)
}

/// The nearest ancestor of `dir` whose Cargo.toml declares a workspace: a project created
/// inside it must be listed in its `members` (or `exclude`) before cargo builds it.
pub fn enclosing_workspace(dir: &Path) -> Option<PathBuf> {
    let dir = std::path::absolute(dir).ok()?;
    dir.ancestors().skip(1).find_map(|ancestor| {
        let manifest = ancestor.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).ok()?;
        text.lines()
            .any(|l| l.trim() == "[workspace]")
            .then_some(manifest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_named_after_the_service() {
        let vars = input_vars("order-svc");
        assert_eq!(vars.package, "order.v1");
        assert_eq!(vars.proto_file, "order/v1/order.proto");
        assert_eq!(vars.service, "OrderService");
        let vars = input_vars("billing-events");
        assert_eq!(vars.package, "billing_events.v1");
        assert_eq!(vars.proto_file, "billing_events/v1/billing_events.proto");
        assert_eq!(vars.service, "BillingEventsService");
    }

    #[test]
    fn names_are_checked() {
        use crate::config::valid_service_name;
        assert!(valid_service_name("demo"));
        assert!(valid_service_name("task-svc2"));
        for bad in [
            "", "d", "Demo", "1demo", "de_mo", "-demo", "demo-", "de--mo", "de mo",
        ] {
            assert!(!valid_service_name(bad), "{bad}");
        }
    }
}
