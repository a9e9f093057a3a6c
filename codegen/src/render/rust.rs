//! Rust output helpers: identifiers as prost names them, type paths, and formatting through
//! `syn` + `prettyplease` with the `@generated` header.

use proc_macro2::TokenStream;

/// Rust keywords prost escapes as raw identifiers.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// The Rust identifier prost gives proto field `name`.
pub(super) fn field_ident(name: &str) -> syn::Ident {
    let snake = heck::ToSnakeCase::to_snake_case(name);
    match snake.as_str() {
        "self" | "super" | "crate" => quote::format_ident!("{snake}_"),
        s if KEYWORDS.contains(&s) => syn::Ident::new_raw(s, proc_macro2::Span::call_site()),
        s => quote::format_ident!("{s}"),
    }
}

/// A type path relative to `src/generated/` as seen from a sibling module.
pub(super) fn type_path(path: &str) -> syn::Type {
    type_path_in("super", path)
}

/// A type path relative to `src/generated/`, which is `module` where it is used.
pub(super) fn type_path_in(module: &str, path: &str) -> syn::Type {
    let text = if path == "()" || path.starts_with("::") {
        path.to_owned()
    } else {
        format!("{module}::{path}")
    };
    syn::parse_str(&text).unwrap_or_else(|_| syn::parse_quote!(()))
}

/// Formats a generated Rust file: parsed (so a generator bug cannot emit invalid Rust
/// silently), pretty-printed, headed by `header`.
pub(super) fn format(header: &str, tokens: TokenStream) -> Result<String, String> {
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| format!("generated Rust does not parse: {e}"))?;
    Ok(format!(
        "{header}{}",
        space_items(&prettyplease::unparse(&file))
    ))
}

/// prettyplease drops blank lines; this puts one between consecutive items (and after the
/// module docs and imports) so the output reads like hand-written code.
fn space_items(code: &str) -> String {
    const ITEM_STARTS: &[&str] = &[
        "///",
        "#[",
        "pub ",
        "impl",
        "fn ",
        "async fn ",
        "const ",
        "use ",
        "mod ",
        "struct ",
        "trait ",
    ];
    let mut out = String::with_capacity(code.len() + code.len() / 16);
    let mut previous: Option<&str> = None;
    for line in code.lines() {
        if let Some(prev) = previous {
            let indent = |l: &str| l.len() - l.trim_start().len();
            let (p, l) = (prev.trim_start(), line.trim_start());
            let prev_ends_item = p == "}" || p == "};" || p.ends_with(';') || p.starts_with("//!");
            let starts_item = ITEM_STARTS.iter().any(|s| l.starts_with(s));
            let is_import = |l: &str| l.starts_with("use ") || l.starts_with("pub use ");
            let both_imports = is_import(p) && is_import(l);
            let after_inner_docs = p.starts_with("//!") && l.starts_with("//!");
            if prev_ends_item
                && starts_item
                && !both_imports
                && !after_inner_docs
                && indent(prev) == indent(line)
            {
                out.push('\n');
            }
        }
        out.push_str(line);
        out.push('\n');
        previous = Some(line);
    }
    out
}

/// `///` doc attributes from a proto comment.
pub(super) fn docs(text: &str) -> TokenStream {
    text.lines()
        .map(|line| {
            let line = format!(" {line}");
            quote::quote!(#[doc = #line])
        })
        .collect()
}
