//! The handlebars templates behind every text file svcgen writes. They are compiled into svcgen
//! and can be replaced file by file from a directory (`--templates DIR`, or `[generate]
//! templates` in `svcgen.toml`); `svcgen templates export DIR` writes the embedded ones out to
//! start from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde::Serialize;

/// Templates compiled into svcgen: (file name, text).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "Cargo.toml.hbs",
        include_str!("../../templates/Cargo.toml.hbs"),
    ),
    ("main.rs.hbs", include_str!("../../templates/main.rs.hbs")),
    (
        "handler.rs.hbs",
        include_str!("../../templates/handler.rs.hbs"),
    ),
    ("rpc.rs.hbs", include_str!("../../templates/rpc.rs.hbs")),
    (
        "Dockerfile.hbs",
        include_str!("../../templates/Dockerfile.hbs"),
    ),
    (
        "dockerignore.hbs",
        include_str!("../../templates/dockerignore.hbs"),
    ),
    (
        "cloudformation.yaml.hbs",
        include_str!("../../templates/cloudformation.yaml.hbs"),
    ),
    (
        "new/svcgen.toml.hbs",
        include_str!("../../templates/new/svcgen.toml.hbs"),
    ),
    (
        "new/service.proto.hbs",
        include_str!("../../templates/new/service.proto.hbs"),
    ),
    (
        "new/README.md.hbs",
        include_str!("../../templates/new/README.md.hbs"),
    ),
    (
        "new/gitignore.hbs",
        include_str!("../../templates/new/gitignore.hbs"),
    ),
];

/// A template that cannot be loaded or rendered; the message names the file and line.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{0}")]
#[diagnostic(
    code(svcgen::template),
    help(
        "compare the override with the embedded template (`svcgen templates export DIR`); the README lists each template's variables"
    )
)]
pub struct TemplateError(pub String);

/// The templates in use: the embedded ones, some possibly replaced from a directory.
pub struct Templates {
    registry: Handlebars<'static>,
    /// Where each overridden template came from, for error messages.
    overridden: BTreeMap<&'static str, PathBuf>,
}

impl Templates {
    /// The embedded templates, each replaced by the file of the same name under `dir` when
    /// there is one. A file that does not name a template is an error (a typo would otherwise
    /// silently change nothing).
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        let mut overridden = BTreeMap::new();
        if let Some(dir) = dir {
            for path in files_under(dir)? {
                let name = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                match EMBEDDED.iter().find(|(n, _)| *n == name) {
                    Some((n, _)) => {
                        overridden.insert(*n, path);
                    }
                    None => {
                        return Err(TemplateError(format!(
                            "{}: not a svcgen template; the templates are: {}",
                            path.display(),
                            EMBEDDED
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
        }
        for (name, text) in EMBEDDED {
            let text = match overridden.get(name) {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| TemplateError(format!("{}: cannot read: {e}", path.display())))?,
                None => (*text).to_owned(),
            };
            registry.register_template_string(name, text).map_err(|e| {
                let origin = origin(&overridden, name);
                TemplateError(match e.pos() {
                    Some((line, column)) => {
                        format!("{origin}:{line}:{column}: {}", e.reason())
                    }
                    None => format!("{origin}: {}", e.reason()),
                })
            })?;
        }
        Ok(Self {
            registry,
            overridden,
        })
    }

    /// Renders template `name` with `data`.
    pub fn render(&self, name: &str, data: &impl Serialize) -> Result<String, TemplateError> {
        self.registry.render(name, data).map_err(|e| {
            let origin = origin(&self.overridden, name);
            let reason = match e.reason() {
                handlebars::RenderErrorReason::MissingVariable(Some(variable)) => {
                    format!("unknown variable `{variable}`")
                }
                reason => reason.to_string(),
            };
            TemplateError(match e.line_no {
                Some(line) => format!(
                    "{origin}:{line}:{}: {reason}",
                    e.column_no.unwrap_or_default()
                ),
                None => format!("{origin}: {reason}"),
            })
        })
    }
}

fn origin(overridden: &BTreeMap<&'static str, PathBuf>, name: &str) -> String {
    match overridden.get(name) {
        Some(path) => path.display().to_string(),
        None => format!("{name} (embedded)"),
    }
}

/// Regular files under `dir`, recursively, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| {
            TemplateError(format!("{}: cannot read templates: {e}", current.display()))
        })?;
        for entry in entries {
            let path = entry
                .map_err(|e| TemplateError(format!("{}: {e}", current.display())))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Writes every embedded template under `dir` (creating it); refuses to overwrite a file.
/// Returns the paths written.
pub fn export(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let targets: Vec<(PathBuf, &str)> = EMBEDDED
        .iter()
        .map(|(name, text)| (dir.join(name), *text))
        .collect();
    if let Some((existing, _)) = targets.iter().find(|(path, _)| path.exists()) {
        return Err(TemplateError(format!(
            "{}: already exists; export into an empty directory",
            existing.display()
        )));
    }
    for (path, text) in &targets {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| TemplateError(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(path, text)
            .map_err(|e| TemplateError(format!("{}: {e}", path.display())))?;
    }
    Ok(targets.into_iter().map(|(path, _)| path).collect())
}
