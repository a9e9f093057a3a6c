//! The contracts that svcgen's generator (`svcgen`), its derive macros (`svcgen-macros`) and its
//! runtime (`svcgen-runtime`) must agree on, each defined once: how key templates are written and
//! read, how field values are encoded into keys, which field types can be keys, the names of the
//! attributes an item carries, the options of `#[entity(...)]`, the environment variables
//! that name DynamoDB tables, and the metrics a service emits (and its dashboard reads).
//!
//! The crate has no dependencies so that the proc-macro crate can use it without dragging in the
//! runtime (as `serde_derive_internals` does for serde).

#![warn(missing_docs)]

pub mod attributes;
pub mod entity_attr;
pub mod key_encoding;
pub mod key_template;
pub mod key_type;
pub mod metrics;
pub mod tables;

pub use key_template::{KeyTemplate, KeyTemplateError, Placeholder, Segment, TemplateAmbiguity};
pub use key_type::KeyType;
