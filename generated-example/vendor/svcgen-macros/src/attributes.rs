//! `#[derive(Attributes)]`: a message's fields to and from item attributes.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields};

use crate::prost_field::{self, Kind, ProstField, Shape};

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let result = syn::parse2::<DeriveInput>(input).and_then(|input| match &input.data {
        Data::Struct(_) => struct_impl(&input),
        Data::Enum(data) => oneof_impl(&input.ident, data),
        Data::Union(_) => Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Attributes)] expects a prost message struct or oneof enum",
        )),
    });
    result.unwrap_or_else(|e| e.to_compile_error())
}

/// A struct field prost knows about.
pub(crate) struct MessageField {
    pub(crate) ident: syn::Ident,
    /// Attribute name: the proto field name.
    pub(crate) name: String,
    pub(crate) prost: ProstField,
}

/// The prost fields of a message struct, with every error collected.
pub(crate) fn message_fields(input: &DeriveInput) -> Result<Vec<MessageField>, Vec<syn::Error>> {
    let Data::Struct(data) = &input.data else {
        return Err(vec![syn::Error::new_spanned(
            &input.ident,
            "expected a prost message struct",
        )]);
    };
    let Fields::Named(named) = &data.fields else {
        return match &data.fields {
            Fields::Unit => Ok(Vec::new()),
            _ => Err(vec![syn::Error::new_spanned(
                &input.ident,
                "expected named fields",
            )]),
        };
    };
    let mut fields = Vec::new();
    let mut errors = Vec::new();
    for field in &named.named {
        let Some(ident) = field.ident.clone() else {
            continue;
        };
        match prost_field::parse(&field.attrs, false) {
            Ok(Some(prost)) => {
                let name = ident.to_string().trim_start_matches("r#").to_owned();
                fields.push(MessageField { ident, name, prost });
            }
            Ok(None) => errors.push(syn::Error::new_spanned(
                &ident,
                "field has no #[prost(...)] attribute; derive Attributes on prost-generated messages",
            )),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(fields)
    } else {
        Err(errors)
    }
}

fn struct_impl(input: &DeriveInput) -> syn::Result<TokenStream> {
    let fields = message_fields(input).map_err(combine)?;
    Ok(attributes_impl(&input.ident, &fields))
}

/// `impl Attributes` and `impl Value` for a message struct.
pub(crate) fn attributes_impl(ident: &syn::Ident, fields: &[MessageField]) -> TokenStream {
    let rt = quote!(::svcgen_runtime::codegen);
    let writes = fields.iter().map(write_field);
    // Read in attribute-name order, the order an item holds them in, so that one pass of the
    // cursor finds them all (the struct literal evaluates its fields in the order written).
    let mut in_name_order: Vec<&MessageField> = fields.iter().collect();
    in_name_order.sort_by(|a, b| a.name.cmp(&b.name));
    let cursor = fields
        .iter()
        .any(|f| !matches!(f.prost.shape, Shape::Oneof(_)))
        .then(|| quote!(let mut cursor = item.cursor();));
    let reads = in_name_order.into_iter().map(|f| {
        let ident = &f.ident;
        let read = read_field(f);
        quote!(#ident: #read)
    });
    quote! {
        impl #rt::Attributes for #ident {
            fn write_attributes(&self, item: &mut #rt::Item) {
                #(#writes)*
            }
            fn read_attributes(item: &#rt::ItemRef<'_>) -> ::core::result::Result<Self, #rt::DecodeError> {
                #cursor
                ::core::result::Result::Ok(Self { #(#reads,)* })
            }
        }
        impl #rt::Value for #ident {
            fn to_attribute(&self) -> #rt::AttributeValue {
                #rt::message_to_attribute(self)
            }
            fn from_attribute(value: &#rt::AttributeRef<'_>) -> ::core::result::Result<Self, #rt::DecodeError> {
                #rt::message_from_attribute(value)
            }
        }
    }
}

/// `(encode, decode)` closures for one element of `kind`.
fn element_codec(kind: &Kind) -> (TokenStream, TokenStream) {
    let rt = quote!(::svcgen_runtime::codegen);
    match kind {
        Kind::Scalar(_) | Kind::Message => (
            quote!(|v| #rt::Value::to_attribute(v)),
            quote!(|a: &#rt::AttributeRef<'_>| #rt::Value::from_attribute(a)),
        ),
        Kind::Enum(path) => (
            quote!(|v: &i32| #rt::enum_to_attribute(*v, #path::try_from(*v).ok().map(|e| e.as_str_name()))),
            quote!(|a: &#rt::AttributeRef<'_>| #rt::enum_from_attribute(a, |name| #path::from_str_name(name).map(|e| e as i32))),
        ),
    }
}

fn write_field(field: &MessageField) -> TokenStream {
    let rt = quote!(::svcgen_runtime::codegen);
    let MessageField { ident, name, prost } = field;
    let (encode, _) = element_codec(&prost.kind);
    let insert =
        |value: TokenStream| quote!(item.insert(::std::string::String::from(#name), #value););
    match &prost.shape {
        Shape::Plain => {
            let unset = match prost.kind {
                Kind::Enum(_) => quote!(self.#ident == 0),
                _ => quote!(#rt::Value::is_default(&self.#ident)),
            };
            let insert = insert(quote!((#encode)(&self.#ident)));
            quote!(if !(#unset) { #insert })
        }
        Shape::Optional => {
            let insert = insert(quote!((#encode)(value)));
            quote!(if let ::core::option::Option::Some(value) = &self.#ident { #insert })
        }
        Shape::Repeated => {
            let insert = insert(quote!(#rt::list_to_attribute(&self.#ident, #encode)));
            quote!(if !self.#ident.is_empty() { #insert })
        }
        Shape::Map { .. } => {
            let insert = insert(quote!(#rt::map_to_attribute(&self.#ident, #encode)));
            quote!(if !self.#ident.is_empty() { #insert })
        }
        Shape::Oneof(_) => quote! {
            if let ::core::option::Option::Some(value) = &self.#ident {
                #rt::OneofAttributes::write_oneof(value, item);
            }
        },
    }
}

fn read_field(field: &MessageField) -> TokenStream {
    let rt = quote!(::svcgen_runtime::codegen);
    let MessageField { name, prost, .. } = field;
    let (_, decode) = element_codec(&prost.kind);
    let (default, decode) = match &prost.shape {
        Shape::Plain => (quote!(::core::default::Default::default), decode),
        Shape::Optional => (
            quote!(|| ::core::option::Option::None),
            quote!(|a: &#rt::AttributeRef<'_>| (#decode)(a).map(::core::option::Option::Some)),
        ),
        Shape::Repeated => (
            quote!(::std::vec::Vec::new),
            quote!(|a: &#rt::AttributeRef<'_>| #rt::list_from_attribute(a, #decode)),
        ),
        Shape::Map { btree, .. } => {
            let read = if *btree {
                quote!(#rt::btree_map_from_attribute)
            } else {
                quote!(#rt::map_from_attribute)
            };
            (
                quote!(::core::default::Default::default),
                quote!(|a: &#rt::AttributeRef<'_>| #read(a, #decode)),
            )
        }
        Shape::Oneof(_) => return quote!(#rt::OneofAttributes::read_oneof(item)?),
    };
    quote!(#rt::read_attribute(cursor.seek(#name), #name, #default, #decode)?)
}

fn oneof_impl(ident: &syn::Ident, data: &syn::DataEnum) -> syn::Result<TokenStream> {
    let rt = quote!(::svcgen_runtime::codegen);
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    let mut names = Vec::new();
    let mut errors = Vec::new();
    for variant in &data.variants {
        let prost = match prost_field::parse(&variant.attrs, true) {
            Ok(Some(prost)) => prost,
            Ok(None) => {
                errors.push(syn::Error::new_spanned(
                    &variant.ident,
                    "variant has no #[prost(...)] attribute; derive Attributes on prost oneof enums",
                ));
                continue;
            }
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if !matches!(variant.fields, Fields::Unnamed(ref f) if f.unnamed.len() == 1) {
            errors.push(syn::Error::new_spanned(
                &variant.ident,
                "expected a variant with one field",
            ));
            continue;
        }
        let ident = &variant.ident;
        let name = snake_case(&ident.to_string());
        names.push(name.clone());
        let (encode, decode) = element_codec(&prost.kind);
        let value = format_ident!("value");
        writes.push(quote! {
            Self::#ident(#value) => { item.insert(::std::string::String::from(#name), (#encode)(#value)); }
        });
        reads.push(quote! {
            match item.get(#name) {
                ::core::option::Option::None | ::core::option::Option::Some(#rt::AttributeRef::Null) => {}
                ::core::option::Option::Some(a) => {
                    return (#decode)(a).map(|v| ::core::option::Option::Some(Self::#ident(v))).map_err(|e| e.at(#name));
                }
            }
        });
    }
    if !errors.is_empty() {
        return Err(combine(errors));
    }
    Ok(quote! {
        impl #rt::OneofAttributes for #ident {
            const FIELDS: &'static [&'static str] = &[#(#names),*];
            fn write_oneof(&self, item: &mut #rt::Item) {
                match self { #(#writes)* }
            }
            fn read_oneof(item: &#rt::ItemRef<'_>) -> ::core::result::Result<::core::option::Option<Self>, #rt::DecodeError> {
                #(#reads)*
                ::core::result::Result::Ok(::core::option::Option::None)
            }
        }
    })
}

/// prost names oneof variants in UpperCamelCase after the proto field; this recovers the
/// snake_case field name used as the attribute name.
fn snake_case(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// One error carrying all collected ones.
pub(crate) fn combine(errors: Vec<syn::Error>) -> syn::Error {
    let mut iter = errors.into_iter();
    let mut first = iter
        .next()
        .unwrap_or_else(|| syn::Error::new(proc_macro2::Span::call_site(), "invalid input"));
    for e in iter {
        first.combine(e);
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_recovers_proto_field_names() {
        assert_eq!(snake_case("Note"), "note");
        assert_eq!(snake_case("LinkUrl"), "link_url");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let out = expand(quote! {
            struct M {
                #[prost(string, tag = "1")] a: String,
                b: String,
                c: u32,
            }
        })
        .to_string();
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
    }

    #[test]
    fn enums_are_stored_by_name() {
        let out = expand(quote! {
            struct M { #[prost(enumeration = "State", tag = "1")] state: i32 }
        })
        .to_string();
        assert!(out.contains("as_str_name"), "{out}");
        assert!(out.contains("from_str_name"), "{out}");
    }
}
