//! Files svcgen writes once and then leaves to the user: `Cargo.toml` and `src/main.rs` from
//! handlebars templates, `src/handler.rs` with a stub for every hand-written RPC.

use std::path::PathBuf;

use handlebars::Handlebars;
use quote::{format_ident, quote};
use serde::Serialize;

use super::rust::{self, type_path_in};
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
];

#[derive(Serialize)]
struct ScaffoldVars<'a> {
    name: &'a str,
    protos: &'a str,
}

pub(super) fn render(
    config: &Config,
    protos: &str,
    model: &Model,
) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let mut templates = Handlebars::new();
    templates.set_strict_mode(true);
    templates.register_escape_fn(handlebars::no_escape);
    for (name, text) in TEMPLATES {
        templates
            .register_template_string(name, *text)
            .map_err(|e| format!("template {name}: {e}"))?;
    }
    let vars = ScaffoldVars {
        name: &config.service.name,
        protos,
    };
    let render = |name: &str| {
        templates
            .render(name, &vars)
            .map_err(|e| format!("template {name}: {e}"))
    };
    Ok(vec![
        (
            PathBuf::from("Cargo.toml"),
            render("Cargo.toml.hbs")?.into_bytes(),
        ),
        (
            PathBuf::from("src/main.rs"),
            render("main.rs.hbs")?.into_bytes(),
        ),
        (
            PathBuf::from("src/handler.rs"),
            handler(model)?.into_bytes(),
        ),
    ])
}

fn handler(model: &Model) -> Result<String, String> {
    let impls = model.services.iter().map(|service| {
        let handler = handler_trait(service);
        let methods = service.methods.iter().filter(|m| matches!(m.operation, Operation::Custom { .. })).map(|method| {
            let name = format_ident!("{}", method.rust_name);
            let input = type_path_in("generated", &method.input);
            let output = type_path_in("generated", &method.output);
            let message = format!("{} is not implemented yet", method.name);
            quote! {
                async fn #name(&self, repositories: &Repositories, request: Request<#input>) -> Result<Response<#output>, Status> {
                    let _ = (repositories, request);
                    Err(Status::unimplemented(#message))
                }
            }
        });
        quote! {
            impl generated::#handler for Handler {
                #(#methods)*
            }
        }
    });
    let has_custom = model
        .services
        .iter()
        .flat_map(|s| &s.methods)
        .any(|m| matches!(m.operation, Operation::Custom { .. }));
    let imports = if has_custom {
        quote! {
            use tonic::{Request, Response, Status};
            use crate::generated::{self, Repositories};
        }
    } else {
        quote!(
            use crate::generated;
        )
    };
    let code = quote! {
        //! Hand-written behaviour: request checks (override the `check_*` methods) and the RPCs
        //! the proto marks custom. svcgen wrote this file once and never touches it again.

        #imports

        /// The service's hand-written state and behaviour.
        #[derive(Clone, Copy, Debug, Default)]
        pub struct Handler;

        #(#impls)*
    };
    rust::format("", code)
}
