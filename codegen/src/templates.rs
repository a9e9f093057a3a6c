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

/// A template that cannot be loaded, rendered or exported; the message names the file (and
/// the line, when there is one).
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A file in the override directory names no template (a typo would change nothing).
    #[error("{}: not a svcgen template; the templates are: {}", .path.display(), template_names())]
    NotATemplate {
        /// The file.
        path: PathBuf,
    },
    /// An override cannot be read.
    #[error("{}: cannot read: {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The override directory cannot be listed.
    #[error("{}: cannot read templates: {error}", .dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A template does not parse.
    #[error("{origin}{}: {reason}", line_column(.position))]
    Syntax {
        /// The override's path, or `NAME (embedded)`.
        origin: String,
        /// Line and column, when handlebars knows them.
        position: Option<(usize, usize)>,
        /// What is wrong.
        reason: String,
    },
    /// A template does not render, e.g. it names an unknown variable.
    #[error("{origin}{}: {reason}", line_column(.position))]
    Render {
        /// The override's path, or `NAME (embedded)`.
        origin: String,
        /// Line and column, when handlebars knows them.
        position: Option<(usize, usize)>,
        /// What is wrong.
        reason: String,
    },
    /// `svcgen templates export` would overwrite a file.
    #[error("{}: already exists; export into an empty directory", .path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Listing, creating or writing failed.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// Every variant has the same code and help: the fix is always in the override.
impl miette::Diagnostic for TemplateError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("svcgen::template"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(
            "compare the override with the embedded template (`svcgen templates export DIR`); the README lists each template's variables",
        ))
    }
}

/// `:LINE:COLUMN`, or nothing.
fn line_column(position: &Option<(usize, usize)>) -> String {
    position
        .map(|(line, column)| format!(":{line}:{column}"))
        .unwrap_or_default()
}

fn template_names() -> String {
    EMBEDDED
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

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
                    None => return Err(TemplateError::NotATemplate { path }),
                }
            }
        }
        for (name, text) in EMBEDDED {
            let text = match overridden.get(name) {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|error| TemplateError::Read {
                        path: path.clone(),
                        error,
                    })?
                }
                None => (*text).to_owned(),
            };
            registry
                .register_template_string(name, text)
                .map_err(|e| TemplateError::Syntax {
                    origin: origin(&overridden, name),
                    position: e.pos(),
                    reason: e.reason().to_string(),
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
            let reason = match e.reason() {
                handlebars::RenderErrorReason::MissingVariable(Some(variable)) => {
                    format!("unknown variable `{variable}`")
                }
                reason => reason.to_string(),
            };
            TemplateError::Render {
                origin: origin(&self.overridden, name),
                position: e
                    .line_no
                    .map(|line| (line, e.column_no.unwrap_or_default())),
                reason,
            }
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
        let entries = std::fs::read_dir(&current).map_err(|error| TemplateError::ReadDir {
            dir: current.clone(),
            error,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|error| TemplateError::Io {
                    path: current.clone(),
                    error,
                })?
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
        return Err(TemplateError::Exists {
            path: existing.clone(),
        });
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |error| TemplateError::Io { path, error }
    };
    for (path, text) in &targets {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(path, text).map_err(io(path))?;
    }
    Ok(targets.into_iter().map(|(path, _)| path).collect())
}
