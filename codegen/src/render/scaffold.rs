//! The files svcgen writes once and then leaves to the user: `Cargo.toml`, `src/main.rs`,
//! `src/handler.rs`, and one `src/rpc/<rpc>.rs` stub per hand-written RPC, written when the RPC
//! first appears.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::Config;
use crate::model::{Method, Model, Operation};
use crate::naming;
use crate::templates::{TemplateError, Templates};

#[derive(Serialize)]
struct ProjectVars<'a> {
    name: &'a str,
    protos: &'a str,
    /// Whether svcgen writes the runtime under `vendor/`.
    vendored: bool,
    /// `<Service>Handler` per service.
    services: Vec<String>,
}

#[derive(Serialize)]
struct RpcVars {
    method: String,
    /// The store handle's type, e.g. `ArchiveTaskStore`.
    store: String,
    rpc_trait: String,
    rust_name: String,
    input: String,
    output: String,
    client_streaming: bool,
    server_streaming: bool,
}

/// The hand-written RPCs of `model`.
pub(super) fn custom_methods(model: &Model) -> impl Iterator<Item = &Method> {
    model
        .services
        .iter()
        .flat_map(|s| &s.methods)
        .filter(|m| matches!(m.operation, Operation::Custom { .. }))
}

pub(super) fn render(
    config: &Config,
    protos: &str,
    model: &Model,
    templates: &Templates,
) -> Result<Vec<(PathBuf, Vec<u8>)>, TemplateError> {
    let vars = ProjectVars {
        name: &config.service.name,
        protos,
        vendored: config.runtime.vendored(),
        services: model
            .services
            .iter()
            .map(|s| naming::handler_trait(&s.name).to_string())
            .collect(),
    };
    let mut files = vec![
        (
            "Cargo.toml".to_owned(),
            templates.render("Cargo.toml.hbs", &vars)?,
        ),
        (
            "src/main.rs".to_owned(),
            templates.render("main.rs.hbs", &vars)?,
        ),
        (
            "src/handler.rs".to_owned(),
            templates.render("handler.rs.hbs", &vars)?,
        ),
    ];
    for method in custom_methods(model) {
        // The stubs import src/generated/ as `generated`.
        let vars = RpcVars {
            method: method.name.clone(),
            store: naming::store_struct(&method.name).to_string(),
            rpc_trait: naming::rpc_trait(&method.name).to_string(),
            rust_name: naming::snake(&method.name),
            input: method.input.to_text("generated"),
            output: method.output.to_text("generated"),
            client_streaming: method.client_streaming,
            server_streaming: method.server_streaming,
        };
        files.push((
            naming::rpc_file(&method.name),
            templates.render("rpc.rs.hbs", &vars)?,
        ));
    }
    Ok(files
        .into_iter()
        .map(|(path, text)| (PathBuf::from(path), text.into_bytes()))
        .collect())
}
