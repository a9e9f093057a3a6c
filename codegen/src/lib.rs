//! svcgen: one annotated `.proto` → a production gRPC service for ECS Fargate.
//!
//! The pipeline: [`compile`] (protox) → [`model::build`] (the typed IR, validated, with located
//! [`diagnostic`]s) → [`render::render`] (pure: path → bytes) → [`output`] (write or check).
//! [`generate`] runs the first three for a project directory. Identifier rules are [`naming`]'s;
//! contracts shared with the derive macros and the runtime come from `svcgen_contract`. The
//! commands (`new`, `breaking`, `table create`, `deploy`) return results and reports; only the
//! binary prints.

pub mod breaking;
pub mod compile;
pub mod config;
pub mod cost;
#[cfg(feature = "aws")]
pub mod deploy;
pub mod diagnostic;
pub mod infra;
pub mod model;
pub mod naming;
pub mod new;
pub mod output;
pub mod render;
#[cfg(feature = "aws")]
pub mod table;
pub mod templates;

use std::path::{Path, PathBuf};

/// Why a project could not be generated.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum GenerateError {
    /// `svcgen.toml` is missing or invalid.
    #[error("{}: {problem}", .path.display())]
    #[diagnostic(code(svcgen::config), help("see the README's svcgen.toml reference"))]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong. Part of the message rather than a `source`, which miette would print
        /// a second time.
        problem: config::ConfigError,
    },
    /// protox rejected a proto (syntax, imports, types).
    #[error(transparent)]
    #[diagnostic(transparent)]
    Proto(#[from] protox::Error),
    /// The annotations are invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Model(#[from] diagnostic::Diagnostics),
    /// A template (usually an override) cannot be loaded or rendered.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Template(#[from] templates::TemplateError),
    /// A bug: the generator produced something it cannot format.
    #[error("internal generator error: {0}")]
    Render(#[from] render::RenderError),
}

/// A project's inputs, compiled and validated.
pub struct Project {
    /// `svcgen.toml`.
    pub config: config::Config,
    /// The compiled protos.
    pub compiled: compile::Compiled,
    /// The validated model.
    pub model: model::Model,
}

/// Reads, compiles and validates the project in `dir`.
pub fn load(dir: &Path) -> Result<Project, GenerateError> {
    let config_path = dir.join(config::FILE_NAME);
    let invalid = |problem| GenerateError::Config {
        path: config_path.clone(),
        problem,
    };
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| invalid(config::ConfigError::Read(e)))?;
    let config = config::Config::parse(&text).map_err(invalid)?;
    let compiled = compile::compile(
        &config.proto_root(dir),
        &config.proto.root,
        &config.proto.files,
    )?;
    let model = model::build(&compiled)?;
    infra::Infrastructure::check(&config, &model).map_err(invalid)?;
    Ok(Project {
        config,
        compiled,
        model,
    })
}

/// Reads the project in `dir` as [`load`] does, its configuration for `environment`
/// (`[environments.NAME]`) when one is named.
pub fn load_environment(dir: &Path, environment: Option<&str>) -> Result<Project, GenerateError> {
    let mut project = load(dir)?;
    if let Some(name) = environment {
        project.config =
            project
                .config
                .for_environment(name)
                .map_err(|problem| GenerateError::Config {
                    path: dir.join(config::FILE_NAME),
                    problem,
                })?;
    }
    Ok(project)
}

/// Compiles, validates and renders the project in `dir`. Templates come from
/// `templates_dir` when given, else from `[generate] templates` in `svcgen.toml`, else the
/// embedded ones.
pub fn generate(dir: &Path, templates_dir: Option<&Path>) -> Result<render::Output, GenerateError> {
    render_project(&load(dir)?, dir, templates_dir)
}

/// Renders a loaded project (see [`generate`]).
pub fn render_project(
    project: &Project,
    dir: &Path,
    templates_dir: Option<&Path>,
) -> Result<render::Output, GenerateError> {
    let configured = project
        .config
        .generate
        .templates
        .as_ref()
        .map(|t| dir.join(t));
    let templates = templates::Templates::load(templates_dir.or(configured.as_deref()))?;
    let options = render::Options {
        templates: &templates,
    };
    render::render(&project.config, &project.compiled, &project.model, &options)
}
