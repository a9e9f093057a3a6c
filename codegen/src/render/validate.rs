//! The field-rule checks in `src/generated/service.rs`: one function per message with rules,
//! which clears output-only fields and records every violation of the message and of the
//! messages inside it; and the calls that run them before an RPC's hooks.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::model::options::FieldRules;
use crate::model::{
    Entity, Method, Model, Operation, ValidatedField, ValidatedMessage, ValueKind, ValueShape,
};
use crate::naming::{self, field_ident};

/// `validate_<package>_<message>`.
fn function(full_name: &str) -> syn::Ident {
    format_ident!("validate_{}", naming::snake(&full_name.replace('.', "_")))
}

/// The check functions of the messages with rules that RPCs check (see [`request_checks`]),
/// and of the messages inside them.
pub(super) fn functions(model: &Model) -> TokenStream {
    let mut queue: Vec<&str> = Vec::new();
    for method in model.methods().filter(|m| !m.client_streaming) {
        let skipped = update_field(method);
        if let Some(request) = model.validated(&method.input_name)
            && request
                .fields
                .iter()
                .any(|f| Some(f.name.as_str()) != skipped)
        {
            queue.push(&request.full_name);
        }
        if let Operation::Update { entity, .. } = &method.operation {
            queue.push(&model.entity(*entity).full_name);
        }
    }
    let mut called: Vec<&ValidatedMessage> = Vec::new();
    while let Some(name) = queue.pop() {
        let Some(message) = model.validated(name) else {
            continue;
        };
        if called.iter().any(|m| m.full_name == name) {
            continue;
        }
        called.push(message);
        queue.extend(message.fields.iter().filter_map(|f| match &f.kind {
            ValueKind::Message {
                full_name,
                checked: true,
            } => Some(full_name.as_str()),
            _ => None,
        }));
    }
    called.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    let functions = called.into_iter().map(message_function);
    quote!(#(#functions)*)
}

/// The entity field of an update's request, checked under the mask rather than with the rest.
fn update_field(method: &Method) -> Option<&str> {
    match &method.operation {
        Operation::Update { field, .. } => Some(field),
        _ => None,
    }
}

fn message_function(message: &ValidatedMessage) -> TokenStream {
    let name = function(&message.full_name);
    let rust = message.rust.tokens(&quote!(super));
    let doc = format!(
        " Checks the field rules of `{}` (`svcgen.field`), and clears its output-only fields.",
        message.full_name
    );
    let checks = message.fields.iter().map(field_checks);
    // A message whose rules only clear output-only fields (or are checked in update masks)
    // looks at neither.
    let unused = (!message.fields.iter().any(inspects)).then(|| quote!(let _ = (path, fields, v);));
    quote! {
        #[doc = #doc]
        fn #name(message: &mut #rust, path: &str, fields: rt::Fields<'_>, v: &mut rt::Violations) {
            #unused
            #(#checks)*
        }
    }
}

/// Whether checking the field looks at its value (`immutable` is checked in update masks, and
/// output-only fields are only cleared).
fn inspects(field: &ValidatedField) -> bool {
    let rules = FieldRules {
        immutable: false,
        ..field.rules.clone()
    };
    !rules.output_only
        && (rules != FieldRules::default()
            || matches!(field.kind, ValueKind::Message { checked: true, .. }))
}

fn field_checks(field: &ValidatedField) -> TokenStream {
    let name = field.name.as_str();
    let ident = field_ident(name);
    let rules = &field.rules;
    if rules.output_only {
        return quote! { message.#ident = Default::default(); };
    }
    if !inspects(field) {
        return TokenStream::new();
    }
    let mut checks = Vec::new();
    if rules.required {
        let present = match (field.shape, &field.kind) {
            (ValueShape::Optional, _) => quote!(message.#ident.is_some()),
            (ValueShape::Repeated | ValueShape::Map, _)
            | (_, ValueKind::String | ValueKind::Bytes) => quote!(!message.#ident.is_empty()),
            (_, ValueKind::Bool) => quote!(message.#ident),
            (_, ValueKind::Float) => quote!(message.#ident != 0.0),
            _ => quote!(message.#ident != 0),
        };
        checks.push(quote! { v.required(path, #name, #present); });
    }
    let value_checks = value_checks(field);
    // (binding, body): checks that run on the value of an optional field when it is set.
    let mut bound_checks = None;
    if !value_checks.is_empty() {
        match field.shape {
            ValueShape::Optional => {
                bound_checks = Some((
                    quote!(Some(value) = &message.#ident),
                    quote!(#(#value_checks)*),
                ));
            }
            _ => checks.push(quote! {
                let value = &message.#ident;
                #(#value_checks)*
            }),
        }
    }
    if let (Some(_), _) | (_, Some(_)) = (rules.min_items, rules.max_items) {
        let (min, max) = (
            bound(rules.min_items.map(count)),
            bound(rules.max_items.map(count)),
        );
        checks.push(quote! { v.items(path, #name, message.#ident.len(), #min, #max); });
    }
    if let (ValueKind::Enum { values }, ValueShape::Repeated | ValueShape::Map) =
        (&field.kind, field.shape)
        && rules.defined_only
    {
        let defined = defined_pattern(values);
        let elements = if field.shape == ValueShape::Map {
            quote!(values())
        } else {
            quote!(iter())
        };
        checks.push(quote! {
            v.defined(path, #name, message.#ident.#elements.all(|value| matches!(*value, #defined)));
        });
    }
    if let ValueKind::Message {
        full_name,
        checked: true,
    } = &field.kind
    {
        let check = function(full_name);
        checks.push(match field.shape {
            ValueShape::Repeated => quote! {
                for (i, value) in message.#ident.iter_mut().enumerate() {
                    #check(value, &format!("{}[{i}]", rt::join(path, #name)), rt::Fields::All, v);
                }
            },
            ValueShape::Map => quote! {
                for (key, value) in message.#ident.iter_mut() {
                    #check(value, &format!("{}[{key:?}]", rt::join(path, #name)), rt::Fields::All, v);
                }
            },
            ValueShape::Singular | ValueShape::Optional => {
                let body = quote! { #check(value, &rt::join(path, #name), rt::Fields::All, v); };
                bound_checks = Some((quote!(Some(value) = message.#ident.as_mut()), body));
                TokenStream::new()
            }
        });
    }
    // One `if` per field: clippy (and a reader) would collapse nested ones.
    match (bound_checks, checks.iter().all(TokenStream::is_empty)) {
        (Some((binding, body)), true) => quote! {
            if fields.has(#name) && let #binding {
                #body
            }
        },
        (Some((binding, body)), false) => quote! {
            if fields.has(#name) {
                #(#checks)*
                if let #binding {
                    #body
                }
            }
        },
        (None, _) => quote! {
            if fields.has(#name) {
                #(#checks)*
            }
        },
    }
}

/// The checks of one value (`value`, a reference) of a singular or optional field.
fn value_checks(field: &ValidatedField) -> Vec<TokenStream> {
    if !matches!(field.shape, ValueShape::Singular | ValueShape::Optional) {
        return Vec::new();
    }
    let name = field.name.as_str();
    let rules = &field.rules;
    let mut checks = Vec::new();
    if rules.has_string_rules() {
        let (min_len, max_len) = (
            bound(rules.min_len.map(count)),
            bound(rules.max_len.map(count)),
        );
        let pattern = if rules.pattern.is_empty() {
            quote!(None)
        } else {
            let source = &rules.pattern;
            quote!(Some(rt::Pattern::new(#source)))
        };
        let (email, uuid) = (rules.email, rules.uuid);
        checks.push(quote! {
            static RULES: rt::StringRules = rt::StringRules {
                min_len: #min_len,
                max_len: #max_len,
                pattern: #pattern,
                email: #email,
                uuid: #uuid,
            };
            v.string(path, #name, value, &RULES);
        });
    }
    if rules.min.is_some() || rules.max.is_some() {
        let literal = |n: f64| match field.kind {
            ValueKind::Float => Literal::f64_unsuffixed(n),
            // Whole and within the type's range: checked when the model was built.
            _ => Literal::i128_unsuffixed(n as i128),
        };
        let min = bound(rules.min.map(literal));
        let max = bound(rules.max.map(literal));
        checks.push(quote! { v.range(path, #name, *value, #min, #max); });
    }
    if let ValueKind::Enum { values } = &field.kind
        && rules.defined_only
    {
        let defined = defined_pattern(values);
        checks.push(quote! { v.defined(path, #name, matches!(*value, #defined)); });
    }
    checks
}

/// A count as an unsuffixed literal (`usize` in the runtime's API).
fn count(n: u32) -> Literal {
    Literal::u32_unsuffixed(n)
}

/// The pattern of an enum's defined numbers, runs written as ranges (`0..=2 | 5`).
fn defined_pattern(values: &[i32]) -> TokenStream {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for n in sorted {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(n) => *end = n,
            _ => runs.push((n, n)),
        }
    }
    let alternatives = runs.into_iter().map(|(start, end)| {
        let (a, b) = (Literal::i32_unsuffixed(start), Literal::i32_unsuffixed(end));
        if start == end {
            quote!(#a)
        } else {
            quote!(#a..=#b)
        }
    });
    quote!(#(#alternatives)|*)
}

fn bound<T: quote::ToTokens>(value: Option<T>) -> TokenStream {
    match value {
        Some(value) => quote!(Some(#value)),
        None => quote!(None),
    }
}

/// The statements that check an RPC's request before its hooks run: the request's rules and,
/// for an update, its mask (output-only fields dropped from it, immutable ones refused, an
/// empty mask spelled out so that neither is written) and the entity's rules for the fields
/// the mask names. Empty when there is nothing to check.
/// `request` is the expression of the `&mut` request message.
pub(super) fn request_checks(model: &Model, method: &Method, request: TokenStream) -> TokenStream {
    let skipped = update_field(method);
    let request = model
        .validated(&method.input_name)
        // An update's entity is checked below, under its mask; often nothing else is left.
        .filter(|message| {
            message
                .fields
                .iter()
                .any(|f| Some(f.name.as_str()) != skipped)
        })
        .map(|message| {
            let check = function(&message.full_name);
            let fields = match skipped {
                Some(field) => quote!(rt::Fields::Skip(#field)),
                None => quote!(rt::Fields::All),
            };
            quote! { #check(#request, "", #fields, v); }
        });
    let update = match &method.operation {
        Operation::Update {
            entity,
            field,
            mask_field,
        } => update_checks(model, model.entity(*entity), field, mask_field),
        _ => None,
    };
    if request.is_none() && update.is_none() {
        return TokenStream::new();
    }
    quote! {
        rt::Violations::check(|v| {
            #request
            #update
        })?;
    }
}

fn update_checks(
    model: &Model,
    entity: &Entity,
    field: &str,
    mask_field: &str,
) -> Option<TokenStream> {
    let rules = model.validated(&entity.full_name)?;
    let with = |pick: fn(&ValidatedField) -> bool| -> Vec<&str> {
        rules
            .fields
            .iter()
            .filter(|f| pick(f))
            .map(|f| f.name.as_str())
            .collect()
    };
    let output_only = with(|f| f.rules.output_only);
    let immutable = with(|f| f.rules.immutable);
    let keys = entity.key_fields();
    let mutable: Vec<&str> = rules
        .field_names
        .iter()
        .map(String::as_str)
        .filter(|f| {
            !keys.contains(f)
                && Some(*f) != entity.version_field()
                && !output_only.contains(f)
                && !immutable.contains(f)
        })
        .collect();
    let mask_ident = field_ident(mask_field);
    let entity_ident = field_ident(field);
    let check = function(&rules.full_name);
    let mask = if output_only.is_empty() && immutable.is_empty() {
        quote! {
            let mask = request.#mask_ident.as_ref().map_or(&[][..], |m| &m.paths[..]);
            let fields = if mask.is_empty() { rt::Fields::All } else { rt::Fields::Only(mask) };
        }
    } else {
        let immutable_paths = (!immutable.is_empty()).then(|| {
            quote! {
                for path in mask.iter().filter(|p| [#(#immutable),*].contains(&p.as_str())) {
                    v.add("", #mask_field, format!("`{path}` is immutable: it cannot change after create"));
                }
            }
        });
        let expand = if mutable.is_empty() {
            quote! {
                v.add("", #mask_field, "nothing can be updated: every field is part of the key, output-only or immutable");
            }
        } else {
            quote! {
                // Every mutable field: not the key, the version, output-only or immutable ones.
                *mask = [#(#mutable),*].map(String::from).to_vec();
            }
        };
        let output_only_paths = (!output_only.is_empty()).then(|| {
            quote! { mask.retain(|path| ![#(#output_only),*].contains(&path.as_str())); }
        });
        let empty = match output_only_paths {
            Some(retain) => quote! {
                let named = !mask.is_empty();
                #retain
                if named && mask.is_empty() {
                    v.add("", #mask_field, "names only output-only fields: there is nothing to update");
                } else if mask.is_empty() {
                    #expand
                }
            },
            None => quote! {
                if mask.is_empty() {
                    #expand
                }
            },
        };
        quote! {
            let mask = &mut request.#mask_ident.get_or_insert_with(Default::default).paths;
            #empty
            #immutable_paths
            let fields = rt::Fields::Only(mask);
        }
    };
    Some(quote! {
        #mask
        if let Some(entity) = request.#entity_ident.as_mut() {
            #check(entity, #field, fields, v);
        }
    })
}
