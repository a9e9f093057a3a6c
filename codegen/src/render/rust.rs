//! Rust output helpers: formatting through `syn` + `prettyplease` with the `@generated` header,
//! and doc comments. Identifiers and type paths are `crate::naming`'s.

use proc_macro2::TokenStream;

use super::RenderError;

/// Formats a generated Rust file: parsed (so a generator bug cannot emit invalid Rust
/// silently), pretty-printed, headed by `header`.
pub(super) fn format(header: &str, tokens: TokenStream) -> Result<String, RenderError> {
    let file: syn::File = syn::parse2(tokens).map_err(|source| RenderError::Unparsable {
        what: "generated Rust".to_owned(),
        source,
    })?;
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
