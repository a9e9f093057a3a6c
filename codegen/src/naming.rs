//! Identifier rules, in one place: how proto names become Rust names (prost's conventions for
//! modules, types and fields, raw identifiers for keywords) and the names svcgen derives from
//! them (repository fields, check hooks, hand-written RPC traits and files).
//!
//! The model stores proto names and type references; renderers turn them into tokens here, so
//! no Rust path is ever kept as text and parsed back.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use proc_macro2::TokenStream;
use prost_reflect::MessageDescriptor;
use quote::{format_ident, quote};

/// Rust keywords prost escapes as raw identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// `snake_case` of a proto name, as prost and svcgen spell functions, fields and modules.
pub fn snake(name: &str) -> String {
    name.to_snake_case()
}

/// `UpperCamelCase` of a proto name, as prost spells types.
pub fn camel(name: &str) -> String {
    name.to_upper_camel_case()
}

/// `SHOUTY_SNAKE_CASE`, for constants.
pub fn shouty(name: &str) -> String {
    name.to_shouty_snake_case()
}

/// The Rust identifier prost gives a proto field or package segment `name`: snake case,
/// keywords as raw identifiers, `self`/`super`/`crate` with a trailing `_`.
pub fn field_ident(name: &str) -> syn::Ident {
    let snake = snake(name);
    match snake.as_str() {
        "self" | "super" | "crate" => format_ident!("{snake}_"),
        s if KEYWORDS.contains(&s) => syn::Ident::new_raw(s, proc_macro2::Span::call_site()),
        s => format_ident!("{s}"),
    }
}

/// A type prost generates, located by its proto package and its Rust path inside the
/// package's module (`["project", "Visibility"]` for oneof `visibility` of `Project`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TypeRef {
    /// Proto package.
    pub package: String,
    /// Rust path within the package module.
    pub path: Vec<String>,
}

impl TypeRef {
    /// The struct prost generates for `message`.
    pub fn message(message: &MessageDescriptor) -> Self {
        let mut path = Vec::new();
        let mut parent = message.parent_message();
        while let Some(p) = parent {
            path.insert(0, snake(p.name()));
            parent = p.parent_message();
        }
        path.push(camel(message.name()));
        Self {
            package: message.package_name().to_owned(),
            path,
        }
    }

    /// The enum prost generates for oneof `oneof` of `message`.
    pub fn oneof(message: &MessageDescriptor, oneof: &str) -> Self {
        let mut type_ref = Self::message(message);
        if let Some(last) = type_ref.path.last_mut() {
            *last = snake(last);
        }
        type_ref.path.push(camel(oneof));
        type_ref
    }

    /// The path from `src/generated/`, as text (`tasks::Task`).
    pub fn to_path_string(&self) -> String {
        module_path(&self.package)
            .into_iter()
            .map(|s| field_ident(&s).to_string())
            .chain(self.path.iter().cloned())
            .collect::<Vec<_>>()
            .join("::")
    }

    /// The path as tokens, from `base` (the tokens naming `src/generated/`, e.g. `super`).
    pub fn tokens(&self, base: &TokenStream) -> TokenStream {
        let modules = module_path(&self.package)
            .into_iter()
            .map(|s| field_ident(&s));
        let path = self.path.iter().map(|s| format_ident!("{s}"));
        quote!(#base #(:: #modules)* #(:: #path)*)
    }
}

/// A request or response type as the generated code names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RustType {
    /// `google.protobuf.Empty`, which tonic services take and return as `()`.
    Unit,
    /// Another well-known type: `::prost_types::<name>`.
    WellKnown(String),
    /// A message of the project's protos.
    Generated(TypeRef),
}

impl RustType {
    /// The type of `message` in generated code.
    pub fn of(message: &MessageDescriptor) -> Self {
        match message.full_name() {
            "google.protobuf.Empty" => Self::Unit,
            name if name.starts_with("google.protobuf.") => {
                Self::WellKnown(message.name().to_owned())
            }
            _ => Self::Generated(TypeRef::message(message)),
        }
    }

    /// The type as tokens; project messages are named from `base` (see [`TypeRef::tokens`]).
    pub fn tokens(&self, base: &TokenStream) -> TokenStream {
        match self {
            Self::Unit => quote!(()),
            Self::WellKnown(name) => {
                let name = format_ident!("{name}");
                quote!(::prost_types::#name)
            }
            Self::Generated(type_ref) => type_ref.tokens(base),
        }
    }

    /// The type as text, project messages prefixed with `base::` (for text templates).
    pub fn to_text(&self, base: &str) -> String {
        match self {
            Self::Unit => "()".to_owned(),
            Self::WellKnown(name) => format!("::prost_types::{name}"),
            Self::Generated(type_ref) => format!("{base}::{}", type_ref.to_path_string()),
        }
    }
}

/// `acme.tasks.v1` → `["acme", "tasks", "v1"]`: prost's module per package segment.
pub fn module_path(package: &str) -> Vec<String> {
    package
        .split('.')
        .filter(|s| !s.is_empty())
        .map(snake)
        .collect()
}

/// The module tonic generates a service's server in, from `base`:
/// `base::tasks::task_service_server`.
pub fn server_module(package: &str, service: &str, base: &TokenStream) -> TokenStream {
    let modules = module_path(package).into_iter().map(|s| field_ident(&s));
    let server = format_ident!("{}_server", snake(service));
    quote!(#base #(:: #modules)* :: #server)
}

/// The `Repositories` field and repository variable of an entity (`task` for `Task`).
pub fn entity_field(entity: &str) -> syn::Ident {
    field_ident(&snake(entity))
}

/// The repository type of an entity (`TaskRepository`).
pub fn repository_ident(entity: &str) -> syn::Ident {
    format_ident!("{entity}Repository")
}

/// The table schema constant of a logical table (`TASKS_TABLE`).
pub fn table_const(table: &str) -> syn::Ident {
    format_ident!("{}_TABLE", shouty(table))
}

/// A method's Rust name (`create_task`).
pub fn method_ident(rpc: &str) -> syn::Ident {
    format_ident!("{}", snake(rpc))
}

/// The prepare hook of an RPC (`prepare_create_task`).
pub fn prepare_ident(rpc: &str) -> syn::Ident {
    format_ident!("prepare_{}", snake(rpc))
}

/// The check hook of an RPC (`check_create_task`).
pub fn check_ident(rpc: &str) -> syn::Ident {
    format_ident!("check_{}", snake(rpc))
}

/// The trait a hand-written RPC is implemented through (`ArchiveTaskRpc`).
pub fn rpc_trait(rpc: &str) -> syn::Ident {
    format_ident!("{rpc}Rpc")
}

/// The store handle a hand-written RPC receives (`ArchiveTaskStore`).
pub fn store_struct(rpc: &str) -> syn::Ident {
    format_ident!("{rpc}Store")
}

/// One entity's part of a hand-written RPC's store handle (`ArchiveTaskTaskAccess`).
pub fn access_struct(rpc: &str, entity: &str) -> syn::Ident {
    format_ident!("{rpc}{entity}Access")
}

/// The file a hand-written RPC is implemented in, relative to the project
/// (`src/rpc/archive_task.rs`).
pub fn rpc_file(rpc: &str) -> String {
    format!("src/rpc/{}.rs", snake(rpc))
}

/// The handler trait of a service (`TaskServiceHandler`).
pub fn handler_trait(service: &str) -> syn::Ident {
    format_ident!("{service}Handler")
}

/// The tonic server trait of a service (`TaskService`).
pub fn service_trait(service: &str) -> syn::Ident {
    format_ident!("{service}")
}

/// The tonic server type of a service (`TaskServiceServer`).
pub fn server_type(service: &str) -> syn::Ident {
    format_ident!("{service}Server")
}

/// The struct implementing a service's tonic trait (`TaskServiceImpl`).
pub fn impl_struct(service: &str) -> syn::Ident {
    format_ident!("{service}Impl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_paths_follow_prost() {
        let task = TypeRef {
            package: "acme.tasks.v1".into(),
            path: vec!["project".into(), "Visibility".into()],
        };
        assert_eq!(
            task.to_path_string(),
            "acme::tasks::v1::project::Visibility"
        );
        assert_eq!(
            task.tokens(&quote!(super)).to_string(),
            "super :: acme :: tasks :: v1 :: project :: Visibility"
        );
        assert_eq!(
            RustType::WellKnown("Timestamp".into()).to_text("generated"),
            "::prost_types::Timestamp"
        );
        assert_eq!(RustType::Unit.tokens(&quote!(super)).to_string(), "()");
        assert_eq!(field_ident("type").to_string(), "r#type");
        assert_eq!(field_ident("self").to_string(), "self_");
        assert_eq!(
            server_module("tasks", "TaskService", &quote!(self)).to_string(),
            "self :: tasks :: task_service_server"
        );
    }
}
