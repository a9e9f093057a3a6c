//! The embedded handlebars templates, and the files svcgen writes once and then leaves to the
//! user: `Cargo.toml`, `src/main.rs`, and `src/handler.rs` with a stub for every hand-written
//! RPC.

use std::path::PathBuf;

use handlebars::Handlebars;
use serde::Serialize;

use super::service::handler_trait;
use crate::config::Config;
use crate::model::{Model, Operation};

/// Templates compiled into svcgen: (name, text).
pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (
        "Cargo.toml.hbs",
        include_str!("../../../templates/Cargo.toml.hbs"),
    ),
    (
        "main.rs.hbs",
        include_str!("../../../templates/main.rs.hbs"),
    ),
    (
        "handler.rs.hbs",
        include_str!("../../../templates/handler.rs.hbs"),
    ),
    (
        "Dockerfile.hbs",
        include_str!("../../../templates/Dockerfile.hbs"),
    ),
    (
        "dockerignore.hbs",
        include_str!("../../../templates/dockerignore.hbs"),
    ),
    (
        "cloudformation.yaml.hbs",
        include_str!("../../../templates/cloudformation.yaml.hbs"),
    ),
];

/// Every embedded template, strict and unescaped.
pub(super) fn templates() -> Result<Handlebars<'static>, String> {
    let mut templates = Handlebars::new();
    templates.set_strict_mode(true);
    templates.register_escape_fn(handlebars::no_escape);
    for (name, text) in TEMPLATES {
        templates
            .register_template_string(name, *text)
            .map_err(|e| format!("template {name}: {e}"))?;
    }
    Ok(templates)
}

#[derive(Serialize)]
struct ScaffoldVars<'a> {
    name: &'a str,
    protos: &'a str,
}

pub(super) fn render(
    config: &Config,
    protos: &str,
    model: &Model,
    templates: &Handlebars<'_>,
) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let vars = ScaffoldVars {
        name: &config.service.name,
        protos,
    };
    let render = |name: &str| {
        templates
            .render(name, &vars)
            .map_err(|e| format!("template {name}: {e}"))
    };
    let handler = templates
        .render("handler.rs.hbs", &handler_vars(config, model))
        .map_err(|e| format!("template handler.rs.hbs: {e}"))?;
    Ok(vec![
        (
            PathBuf::from("Cargo.toml"),
            render("Cargo.toml.hbs")?.into_bytes(),
        ),
        (
            PathBuf::from("src/main.rs"),
            render("main.rs.hbs")?.into_bytes(),
        ),
        (PathBuf::from("src/handler.rs"), handler.into_bytes()),
    ])
}

#[derive(Serialize)]
struct HandlerVars {
    name: String,
    has_custom: bool,
    services: Vec<ServiceVars>,
}

#[derive(Serialize)]
struct ServiceVars {
    handler_trait: String,
    methods: Vec<MethodVars>,
}

#[derive(Serialize)]
struct MethodVars {
    rust_name: String,
    input: String,
    output: String,
}

fn handler_vars(config: &Config, model: &Model) -> HandlerVars {
    // Paths are relative to src/generated/, which src/handler.rs imports as `generated`.
    let in_generated = |path: &str| {
        if path == "()" || path.starts_with("::") {
            path.to_owned()
        } else {
            format!("generated::{path}")
        }
    };
    let services: Vec<ServiceVars> = model
        .services
        .iter()
        .map(|service| ServiceVars {
            handler_trait: handler_trait(service).to_string(),
            methods: service
                .methods
                .iter()
                .filter(|m| matches!(m.operation, Operation::Custom))
                .map(|m| MethodVars {
                    rust_name: m.rust_name.clone(),
                    input: in_generated(&m.input),
                    output: in_generated(&m.output),
                })
                .collect(),
        })
        .collect();
    HandlerVars {
        name: config.service.name.clone(),
        has_custom: services.iter().any(|s| !s.methods.is_empty()),
        services,
    }
}
