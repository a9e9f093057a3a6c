//! Reads the `#[prost(...)]` attribute of a field or oneof variant: what kind of proto field
//! it is, which decides how it is stored.

use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Path};

/// The element kind of a field.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// string, bool, integers, floats, bytes (stored through `Value`).
    Scalar(String),
    /// An enum, stored by name.
    Enum(Path),
    /// A message (stored through `Value`: derived messages and well-known types).
    Message,
}

/// How the element is held.
#[derive(Clone, Debug)]
pub(crate) enum Shape {
    /// proto3 implicit presence: unset means default.
    Plain,
    /// `optional` (or a message field): `Option<T>`.
    Optional,
    /// `repeated`: `Vec<T>`.
    Repeated,
    /// `map<K, V>`, `HashMap` or `BTreeMap`.
    Map { key: String, btree: bool },
    /// A oneof: `Option<Enum>`, with the enum's path.
    Oneof(Path),
}

#[derive(Clone, Debug)]
pub(crate) struct ProstField {
    pub(crate) kind: Kind,
    pub(crate) shape: Shape,
}

const SCALARS: &[&str] = &[
    "string", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
    "fixed64", "sfixed32", "sfixed64", "float", "double", "bytes",
];

/// Parses the field's `#[prost(...)]`; `Ok(None)` when it has none.
pub(crate) fn parse(attrs: &[Attribute], in_oneof: bool) -> syn::Result<Option<ProstField>> {
    let Some(attr) = attrs.iter().find(|a| a.path().is_ident("prost")) else {
        return Ok(None);
    };
    let mut kind = None;
    let mut shape = Shape::Plain;
    attr.parse_nested_meta(|meta| {
        let name = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match name.as_str() {
            "optional" => shape = Shape::Optional,
            "repeated" => shape = Shape::Repeated,
            "message" => kind = Some(Kind::Message),
            "enumeration" => {
                let path: LitStr = meta.value()?.parse()?;
                kind = Some(Kind::Enum(path.parse()?));
            }
            "bytes" => {
                if meta.input.peek(syn::Token![=]) {
                    let repr: LitStr = meta.value()?.parse()?;
                    if repr.value() != "vec" {
                        return Err(syn::Error::new(
                            repr.span(),
                            "only `bytes = \"vec\"` fields (Vec<u8>) can be stored",
                        ));
                    }
                }
                kind = Some(Kind::Scalar(name));
            }
            "map" | "btree_map" => {
                let spec: LitStr = meta.value()?.parse()?;
                let value = spec.value();
                let (key, element) = value.split_once(',').ok_or_else(|| {
                    syn::Error::new(spec.span(), "expected `map = \"KEY, VALUE\"`")
                })?;
                let element = element.trim();
                kind = Some(if element == "message" {
                    Kind::Message
                } else if let Some(path) = element
                    .strip_prefix("enumeration(")
                    .and_then(|rest| rest.strip_suffix(')'))
                {
                    Kind::Enum(syn::parse_str(path)?)
                } else {
                    Kind::Scalar(element.to_owned())
                });
                shape = Shape::Map {
                    key: key.trim().to_owned(),
                    btree: name == "btree_map",
                };
            }
            "oneof" => {
                let path: LitStr = meta.value()?.parse()?;
                shape = Shape::Oneof(path.parse()?);
                kind = Some(Kind::Message);
            }
            scalar if SCALARS.contains(&scalar) => kind = Some(Kind::Scalar(name)),
            _ => {
                // tag, tags, packed, boxed and future prost options do not change storage.
                if meta.input.peek(syn::Token![=]) {
                    let _: syn::Expr = meta.value()?.parse()?;
                }
            }
        }
        Ok(())
    })?;
    let kind =
        kind.ok_or_else(|| syn::Error::new(attr.span(), "unrecognized #[prost] field kind"))?;
    if !in_oneof && matches!(kind, Kind::Message) && matches!(shape, Shape::Plain) {
        // prost wraps singular message fields in Option (oneof variants hold them directly).
        shape = Shape::Optional;
    }
    Ok(Some(ProstField { kind, shape }))
}

impl ProstField {
    /// The proto type name for messages to the user.
    pub(crate) fn type_name(&self) -> String {
        let base = match &self.kind {
            Kind::Scalar(name) => name.clone(),
            Kind::Enum(path) => quote::quote!(#path).to_string().replace(' ', ""),
            Kind::Message => "message".to_owned(),
        };
        match &self.shape {
            Shape::Plain => base,
            Shape::Optional => format!("optional {base}"),
            Shape::Repeated => format!("repeated {base}"),
            Shape::Map { key, .. } => format!("map<{key}, {base}>"),
            Shape::Oneof(_) => "oneof".to_owned(),
        }
    }
}
