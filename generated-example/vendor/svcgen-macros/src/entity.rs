//! `#[derive(Entity)]`: keys from `#[entity(...)]` templates, plus `Attributes`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{DeriveInput, LitStr};

use crate::attributes::{self, MessageField, combine};
use crate::prost_field::{Kind, Shape};
use svcgen_contract::entity_attr;
use svcgen_contract::key_template::SEPARATOR_HELP;
use svcgen_contract::key_type::KEY_TYPES;
use svcgen_contract::{KeyTemplate, KeyType, Segment};

#[derive(Default)]
struct EntityAttr {
    table: Option<LitStr>,
    pk: Option<LitStr>,
    sk: Option<LitStr>,
    indexes: Vec<(LitStr, Option<LitStr>, Option<LitStr>)>,
    version: Option<LitStr>,
    ttl: Option<LitStr>,
    generated_id: Option<LitStr>,
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<DeriveInput>(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Vec::new();
    let fields = attributes::message_fields(&input).unwrap_or_else(|e| {
        errors.extend(e);
        Vec::new()
    });
    let attr = parse_entity_attr(&input, &mut errors);
    if !errors.is_empty() {
        return combine(errors).to_compile_error();
    }
    let entity = Generator {
        name: input.ident.to_string(),
        fields: &fields,
        errors: Vec::new(),
    };
    match entity.generate(&input.ident, &attr) {
        Ok(tokens) => {
            let attributes = attributes::attributes_impl(&input.ident, &fields);
            quote!(#attributes #tokens)
        }
        Err(errors) => combine(errors).to_compile_error(),
    }
}

fn parse_entity_attr(input: &DeriveInput, errors: &mut Vec<syn::Error>) -> EntityAttr {
    let mut out = EntityAttr::default();
    let attrs: Vec<_> = input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident(entity_attr::ATTRIBUTE))
        .collect();
    if attrs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.ident,
            "missing #[entity(table = \"...\", pk = \"...\", sk = \"...\")]",
        ));
        return out;
    }
    for attr in attrs {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            let slot = match key.as_str() {
                entity_attr::TABLE => &mut out.table,
                entity_attr::PK => &mut out.pk,
                entity_attr::SK => &mut out.sk,
                entity_attr::VERSION => &mut out.version,
                entity_attr::TTL => &mut out.ttl,
                entity_attr::GENERATED_ID => &mut out.generated_id,
                entity_attr::INDEX => {
                    let (mut name, mut pk, mut sk) = (None, None, None);
                    meta.parse_nested_meta(|inner| {
                        let slot = if inner.path.is_ident(entity_attr::INDEX_NAME) {
                            &mut name
                        } else if inner.path.is_ident(entity_attr::PK) {
                            &mut pk
                        } else if inner.path.is_ident(entity_attr::SK) {
                            &mut sk
                        } else {
                            return Err(inner.error("expected `name`, `pk` or `sk`"));
                        };
                        *slot = Some(inner.value()?.parse()?);
                        Ok(())
                    })?;
                    let name: LitStr = name.ok_or_else(|| meta.error("index needs `name = \"...\"`"))?;
                    out.indexes.push((name, pk, sk));
                    return Ok(());
                }
                _ => {
                    return Err(meta.error(
                        "unknown entity option; expected table, pk, sk, index(...), version, ttl or generated_id",
                    ));
                }
            };
            *slot = Some(meta.value()?.parse()?);
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    for (name, what) in [
        (&out.table, entity_attr::TABLE),
        (&out.pk, entity_attr::PK),
        (&out.sk, entity_attr::SK),
    ] {
        if name.is_none() {
            errors.push(syn::Error::new_spanned(
                &input.ident,
                format!("#[entity] needs `{what} = \"...\"`"),
            ));
        }
    }
    out
}

/// The index parts of an `Entity` impl.
#[derive(Default)]
struct Indexes {
    schemas: Vec<TokenStream>,
    partitions: Vec<TokenStream>,
    keys: Vec<TokenStream>,
}

struct Generator<'a> {
    name: String,
    fields: &'a [MessageField],
    errors: Vec<syn::Error>,
}

impl Generator<'_> {
    fn field(&mut self, name: &str, at: Span) -> Option<&MessageField> {
        let found = self.fields.iter().find(|f| f.name == name);
        if found.is_none() {
            self.errors.push(syn::Error::new(
                at,
                format!("`{}` has no field `{name}`", self.name),
            ));
        }
        found
    }

    /// An expression of type `Result<String, MissingKeyField>` rendering `template`.
    fn key_expr(&mut self, template: &LitStr) -> (TokenStream, String, Vec<String>) {
        let text = template.value();
        let parsed = match KeyTemplate::parse(&text) {
            Ok(parsed) => parsed,
            Err(e) => {
                let message = format!("{e} in key template `{text}`");
                self.errors.push(syn::Error::new(template.span(), message));
                return (TokenStream::new(), String::new(), Vec::new());
            }
        };
        // The generator reports this with a located diagnostic; this catches hand-written derives.
        if let Err(e) = parsed.check_unambiguous() {
            let message = format!("{e} in key template `{text}`; {SEPARATOR_HELP}");
            self.errors.push(syn::Error::new(template.span(), message));
        }
        let rt = quote!(::svcgen_runtime::codegen);
        let entity = &self.name.clone();
        let mut steps = Vec::new();
        let mut names = Vec::new();
        for segment in parsed.segments() {
            match segment {
                Segment::Literal(text) => steps.push(quote!(key.push_str(#text);)),
                Segment::Field(name) => {
                    names.push(name.to_owned());
                    let Some(field) = self.field(name, template.span()) else {
                        continue;
                    };
                    let ident = &field.ident;
                    let step = match (&field.prost.kind, &field.prost.shape) {
                        // A message key field is a google.protobuf.Timestamp (the generator checks
                        // it; any other message type fails to compile here).
                        (Kind::Scalar(t), Shape::Plain) if KeyType::of_scalar(t).is_some() => {
                            quote!(#rt::key_field(&mut key, &self.#ident, #entity, #name)?;)
                        }
                        (Kind::Message, Shape::Optional) => {
                            quote!(#rt::key_field(&mut key, &self.#ident, #entity, #name)?;)
                        }
                        (Kind::Enum(path), Shape::Plain) => quote! {
                            #rt::enum_key_field(&mut key, self.#ident, #path::try_from(self.#ident).ok().map(|e| e.as_str_name()), #entity, #name)?;
                        },
                        _ => {
                            let message = format!(
                                "field `{name}` of type `{}` cannot be part of a key; key fields must be {KEY_TYPES}",
                                field.prost.type_name()
                            );
                            self.errors.push(syn::Error::new(template.span(), message));
                            continue;
                        }
                    };
                    steps.push(step);
                }
            }
        }
        let expr = quote! {
            (|| -> ::core::result::Result<::std::string::String, #rt::MissingKeyField> {
                let mut key = ::std::string::String::new();
                #(#steps)*
                ::core::result::Result::Ok(key)
            })()
        };
        (expr, parsed.literal_prefix().to_owned(), names)
    }

    fn generate(
        mut self,
        ident: &syn::Ident,
        attr: &EntityAttr,
    ) -> Result<TokenStream, Vec<syn::Error>> {
        let rt = quote!(::svcgen_runtime::codegen);
        let (Some(table), Some(pk), Some(sk)) = (&attr.table, &attr.pk, &attr.sk) else {
            // parse_entity_attr reported the missing option already.
            return Err(self.errors);
        };
        let (pk_expr, _, mut key_fields) = self.key_expr(pk);
        let (sk_expr, sk_prefix, sk_fields) = self.key_expr(sk);
        for field in sk_fields {
            if !key_fields.contains(&field) {
                key_fields.push(field);
            }
        }

        let Indexes {
            schemas: index_schemas,
            partitions: index_partitions,
            keys: index_keys,
        } = self.indexes(&attr.indexes);
        let version = attr
            .version
            .as_ref()
            .and_then(|lit| self.version_methods(lit));
        let ttl = attr.ttl.as_ref().and_then(|lit| self.ttl_method(lit));
        let assign_id = attr
            .generated_id
            .as_ref()
            .and_then(|lit| self.assign_id_method(lit));
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let name = &self.name;
        let optional = |lit: &Option<LitStr>| match lit {
            Some(lit) => quote!(::core::option::Option::Some(#lit)),
            None => quote!(::core::option::Option::None),
        };
        let version_field = optional(&attr.version);
        let ttl_field = optional(&attr.ttl);
        let field_names = self.field_name_methods();
        Ok(quote! {
            impl #rt::Entity for #ident {
                const SCHEMA: #rt::EntitySchema = #rt::EntitySchema {
                    name: #name,
                    table: #table,
                    sort_key_prefix: #sk_prefix,
                    indexes: &[#(#index_schemas),*],
                    version_field: #version_field,
                    ttl_field: #ttl_field,
                    key_fields: &[#(#key_fields),*],
                };
                #field_names
                fn key(&self) -> ::core::result::Result<#rt::ItemKey, #rt::MissingKeyField> {
                    ::core::result::Result::Ok(#rt::ItemKey { pk: #pk_expr?, sk: #sk_expr? })
                }
                fn partition_key(&self, index: ::core::option::Option<&str>)
                    -> ::core::option::Option<::core::result::Result<::std::string::String, #rt::MissingKeyField>>
                {
                    match index {
                        ::core::option::Option::None => ::core::option::Option::Some(#pk_expr),
                        #(#index_partitions)*
                        ::core::option::Option::Some(_) => ::core::option::Option::None,
                    }
                }
                fn index_keys(&self) -> ::std::vec::Vec<(&'static str, #rt::ItemKey)> {
                    #[allow(unused_mut)]
                    let mut keys = ::std::vec::Vec::new();
                    #(#index_keys)*
                    keys
                }
                #version
                #ttl
                #assign_id
            }
        })
    }

    /// The index parts of the `Entity` impl: schemas, `partition_key` arms and `index_keys`
    /// statements.
    fn indexes(&mut self, indexes: &[(LitStr, Option<LitStr>, Option<LitStr>)]) -> Indexes {
        let rt = quote!(::svcgen_runtime::codegen);
        let mut out = Indexes::default();
        for (name, pk, sk) in indexes {
            let (Some(pk), Some(sk)) = (pk, sk) else {
                self.errors.push(syn::Error::new(
                    name.span(),
                    "index needs both `pk` and `sk` templates",
                ));
                continue;
            };
            let (ipk, _, mut fields) = self.key_expr(pk);
            let (isk, prefix, sk_fields) = self.key_expr(sk);
            fields.extend(sk_fields);
            out.schemas.push(quote!(#rt::IndexSchema { name: #name, sort_key_prefix: #prefix, fields: &[#(#fields),*] }));
            out.partitions.push(
                quote!(::core::option::Option::Some(#name) => ::core::option::Option::Some(#ipk),),
            );
            out.keys.push(quote! {
                if let (::core::result::Result::Ok(pk), ::core::result::Result::Ok(sk)) = (#ipk, #isk) {
                    keys.push((#name, #rt::ItemKey { pk, sk }));
                }
            });
        }
        out
    }

    /// `field_names` (oneofs expanded into their members) and, with oneofs, `oneof_members`.
    fn field_name_methods(&self) -> TokenStream {
        let rt = quote!(::svcgen_runtime::codegen);
        let field_names = self.fields.iter().map(|f| {
            let name = &f.name;
            match &f.prost.shape {
                Shape::Oneof(ty) => {
                    quote!(names.extend_from_slice(<#ty as #rt::OneofAttributes>::FIELDS);)
                }
                _ => quote!(names.push(#name);),
            }
        });
        let oneofs: Vec<TokenStream> = self
            .fields
            .iter()
            .filter_map(|f| match &f.prost.shape {
                Shape::Oneof(ty) => Some(quote!(<#ty as #rt::OneofAttributes>::FIELDS)),
                _ => None,
            })
            .collect();
        let oneof_members = (!oneofs.is_empty()).then(|| {
            quote! {
                fn oneof_members() -> ::std::vec::Vec<&'static [&'static str]> {
                    ::std::vec![#(#oneofs),*]
                }
            }
        });
        quote! {
            fn field_names() -> ::std::vec::Vec<&'static str> {
                let mut names = ::std::vec::Vec::new();
                #(#field_names)*
                names
            }
            #oneof_members
        }
    }

    fn version_methods(&mut self, lit: &LitStr) -> Option<TokenStream> {
        let field = self.field(&lit.value(), lit.span())?;
        let ident = &field.ident;
        match (&field.prost.kind, &field.prost.shape) {
            (Kind::Scalar(t), Shape::Plain) if t == "uint64" => Some(quote! {
                fn version(&self) -> u64 { self.#ident }
                fn set_version(&mut self, version: u64) { self.#ident = version; }
            }),
            (Kind::Scalar(t), Shape::Plain) if t == "int64" => Some(quote! {
                fn version(&self) -> u64 { u64::try_from(self.#ident).unwrap_or(0) }
                fn set_version(&mut self, version: u64) { self.#ident = i64::try_from(version).unwrap_or(i64::MAX); }
            }),
            _ => {
                let message = format!(
                    "version field `{}` has type `{}`; it must be uint64 or int64",
                    field.name,
                    field.prost.type_name()
                );
                self.errors.push(syn::Error::new(lit.span(), message));
                None
            }
        }
    }

    fn ttl_method(&mut self, lit: &LitStr) -> Option<TokenStream> {
        let rt = quote!(::svcgen_runtime::codegen);
        let field = self.field(&lit.value(), lit.span())?;
        let ident = &field.ident;
        let body = match (&field.prost.kind, &field.prost.shape) {
            (Kind::Message, Shape::Optional) => quote!(#rt::timestamp_seconds(&self.#ident)),
            (Kind::Scalar(t), Shape::Plain) if t == "int64" => {
                quote!((self.#ident != 0).then_some(self.#ident))
            }
            (Kind::Scalar(t), Shape::Plain) if t == "uint64" => {
                quote!((self.#ident != 0).then(|| i64::try_from(self.#ident).unwrap_or(i64::MAX)))
            }
            _ => {
                let message = format!(
                    "TTL field `{}` has type `{}`; it must be google.protobuf.Timestamp or int64/uint64 epoch seconds",
                    field.name,
                    field.prost.type_name()
                );
                self.errors.push(syn::Error::new(lit.span(), message));
                return None;
            }
        };
        Some(quote!(fn expires_at(&self) -> ::core::option::Option<i64> { #body }))
    }

    fn assign_id_method(&mut self, lit: &LitStr) -> Option<TokenStream> {
        let rt = quote!(::svcgen_runtime::codegen);
        let field = self.field(&lit.value(), lit.span())?;
        let ident = &field.ident;
        if !matches!((&field.prost.kind, &field.prost.shape), (Kind::Scalar(t), Shape::Plain) if t == "string")
        {
            let message = format!(
                "generated ID field `{}` has type `{}`; it must be string",
                field.name,
                field.prost.type_name()
            );
            self.errors.push(syn::Error::new(lit.span(), message));
            return None;
        }
        Some(quote! {
            fn assign_id(&mut self) {
                if self.#ident.is_empty() {
                    self.#ident = #rt::new_id();
                }
            }
        })
    }
}
