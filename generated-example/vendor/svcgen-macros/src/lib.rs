//! Derives that store prost messages as DynamoDB items.
//!
//! `#[derive(Attributes)]` converts a message (or a prost oneof enum) to and from attributes;
//! `#[derive(Entity)]` adds keys from the `#[entity(...)]` templates. Both read the `#[prost(...)]`
//! field attributes prost generates, so the proto stays the single source of truth. Generated
//! code names only `::svcgen_runtime`.

mod attributes;
mod entity;
mod prost_field;

use proc_macro::TokenStream;

/// Stores a prost message or oneof enum as attributes (see `svcgen_runtime::Attributes`).
#[proc_macro_derive(Attributes)]
pub fn derive_attributes(input: TokenStream) -> TokenStream {
    attributes::expand(input.into()).into()
}

/// Stores a prost message as an item with keys from `#[entity(...)]`
/// (see `svcgen_runtime::Entity`).
#[proc_macro_derive(Entity, attributes(entity))]
pub fn derive_entity(input: TokenStream) -> TokenStream {
    entity::expand(input.into()).into()
}
