//! The model: the intermediate representation of what the annotated protos describe (entities,
//! keys, indexes, services and the operation each RPC performs), built from the descriptor pool
//! and validated. The `svcgen.*` options are read into typed structs once ([`options`]); the
//! entity and operation rules ([`entities`], [`operations`]) report every problem as a located
//! diagnostic, so rendering only ever sees a valid model.

mod build;
mod entities;
mod operations;
pub mod options;
mod rules;

use std::collections::BTreeMap;

use svcgen_contract::{KeyTemplate, KeyType};

pub use self::build::build;
pub use crate::naming::{RustType, TypeRef};

/// Everything the generator renders from.
#[derive(Debug)]
pub struct Model {
    /// Entities, in declaration order; [`EntityId`]s index this list.
    pub entities: Vec<Entity>,
    /// gRPC services, in declaration order.
    pub services: Vec<Service>,
    /// Tables with the indexes their entities use, by name.
    pub tables: BTreeMap<String, Vec<String>>,
    /// Messages stored inside entities and the oneofs of stored messages: they derive
    /// `Attributes`.
    pub stored_types: Vec<TypeRef>,
    /// Messages of unary requests with field rules to check (or holding such messages).
    pub validated: Vec<ValidatedMessage>,
}

/// A message whose field rules generated code checks.
#[derive(Debug)]
pub struct ValidatedMessage {
    /// Proto full name, e.g. `tasks.Task`.
    pub full_name: String,
    /// The message's type in generated code.
    pub rust: RustType,
    /// Its fields that have rules or hold checked messages.
    pub fields: Vec<ValidatedField>,
    /// The names of all its fields, in declaration order.
    pub field_names: Vec<String>,
}

/// A field with rules, or one holding a message with rules.
#[derive(Debug)]
pub struct ValidatedField {
    /// Field name.
    pub name: String,
    /// How many values it holds.
    pub shape: ValueShape,
    /// What each value is.
    pub kind: ValueKind,
    /// Its rules, checked against the shape and kind.
    pub rules: options::FieldRules,
}

/// How a field holds its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueShape {
    /// One value, the default when unset.
    Singular,
    /// One value with presence (`optional`, messages): `Option` in Rust.
    Optional,
    /// `repeated`: a `Vec`.
    Repeated,
    /// `map`: a map whose values are of the kind.
    Map,
}

/// The type of a field's values, as rules see it.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// `string`.
    String,
    /// `bytes`.
    Bytes,
    /// `bool`.
    Bool,
    /// Any integer type.
    Int {
        /// `uint32`, `uint64`, `fixed32`, `fixed64`.
        unsigned: bool,
        /// 32 or 64.
        bits: u32,
    },
    /// `float` or `double`.
    Float,
    /// An enum with these defined numbers.
    Enum {
        /// The numbers the enum defines.
        values: Vec<i32>,
    },
    /// A message.
    Message {
        /// Its proto full name.
        full_name: String,
        /// Whether it has rules to check (then it is in [`Model::validated`]).
        checked: bool,
    },
}

impl Model {
    /// The rules of the message named `full_name`, if it has any to check.
    pub fn validated(&self, full_name: &str) -> Option<&ValidatedMessage> {
        self.validated.iter().find(|m| m.full_name == full_name)
    }
}

/// Refers to one of [`Model::entities`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId(usize);

impl Model {
    /// The entity `id` refers to.
    pub fn entity(&self, id: EntityId) -> &Entity {
        &self.entities[id.0]
    }

    /// Every entity with its id.
    pub fn entity_ids(&self) -> impl Iterator<Item = (EntityId, &Entity)> {
        self.entities
            .iter()
            .enumerate()
            .map(|(i, entity)| (EntityId(i), entity))
    }

    /// Every RPC of every service.
    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.services.iter().flat_map(|s| &s.methods)
    }
}

/// A message stored as an item.
#[derive(Debug)]
pub struct Entity {
    /// Message name, e.g. `Task`.
    pub name: String,
    /// Proto full name, e.g. `tasks.Task`.
    pub full_name: String,
    /// Where prost generates the message.
    pub type_ref: TypeRef,
    /// Logical table.
    pub table: String,
    /// Partition-key template.
    pub pk: KeyTemplate,
    /// Sort-key template.
    pub sk: KeyTemplate,
    /// Secondary indexes.
    pub indexes: Vec<Index>,
    /// Optimistic-locking field.
    pub version: Option<VersionField>,
    /// Expiry field.
    pub ttl_field: Option<String>,
    /// Field filled with a UUID v7 on create when empty.
    pub generated_id_field: Option<String>,
    /// Every field of the message that can be part of a key, with its key type.
    pub key_field_types: BTreeMap<String, KeyType>,
}

/// The field an entity's optimistic locking counts in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionField {
    /// Field name.
    pub name: String,
    /// `int64` rather than `uint64`.
    pub signed: bool,
}

/// An index as one entity uses it.
#[derive(Debug)]
pub struct Index {
    /// Index name.
    pub name: String,
    /// Partition-key template.
    pub pk: KeyTemplate,
    /// Sort-key template.
    pub sk: KeyTemplate,
}

impl Entity {
    /// The table's key fields, pk first, without repeats.
    pub fn key_fields(&self) -> Vec<&str> {
        let mut fields = self.pk.fields();
        for f in self.sk.fields() {
            if !fields.contains(&f) {
                fields.push(f);
            }
        }
        fields
    }

    /// Partition-key fields of `index` (the table for `None`).
    pub fn partition_fields(&self, index: Option<&str>) -> Vec<&str> {
        match index {
            None => self.pk.fields(),
            Some(name) => self
                .indexes
                .iter()
                .find(|i| i.name == name)
                .map(|i| i.pk.fields())
                .unwrap_or_default(),
        }
    }

    /// The version field's name, if the entity has one.
    pub fn version_field(&self) -> Option<&str> {
        self.version.as_ref().map(|v| v.name.as_str())
    }
}

/// A gRPC service.
#[derive(Debug)]
pub struct Service {
    /// e.g. `TaskService`.
    pub name: String,
    /// e.g. `tasks.TaskService`.
    pub full_name: String,
    /// Proto package, e.g. `tasks`.
    pub package: String,
    /// RPCs.
    pub methods: Vec<Method>,
    /// Leading comment.
    pub doc: String,
}

/// One RPC.
#[derive(Debug)]
pub struct Method {
    /// e.g. `CreateTask`.
    pub name: String,
    /// The request type.
    pub input: RustType,
    /// The request message's proto full name.
    pub input_name: String,
    /// The response type.
    pub output: RustType,
    /// What it does.
    pub operation: Operation,
    /// The request is a stream (`stream` before the input type); hand-written RPCs only.
    pub client_streaming: bool,
    /// The response is a stream; hand-written RPCs only.
    pub server_streaming: bool,
    /// Leading comment.
    pub doc: String,
}

/// What an RPC does with the store.
#[derive(Debug)]
pub enum Operation {
    /// Conditional put of the entity in request field `field`.
    Create {
        /// Entity created.
        entity: EntityId,
        /// Request field holding it.
        field: String,
    },
    /// Read by the key fields of the request.
    Get {
        /// Entity read.
        entity: EntityId,
    },
    /// Masked update of the entity in `field` under the mask in `mask_field`.
    Update {
        /// Entity updated.
        entity: EntityId,
        /// Request field holding it.
        field: String,
        /// Request field holding the `FieldMask`.
        mask_field: String,
    },
    /// Delete by key.
    Delete {
        /// Entity deleted.
        entity: EntityId,
        /// Request field holding the expected version, if the request has one.
        version: Option<String>,
        /// The response is the deleted entity rather than Empty.
        returns_entity: bool,
    },
    /// One page of a partition of the table or an index.
    List {
        /// Entity listed.
        entity: EntityId,
        /// Index, or the table.
        index: Option<String>,
        /// Highest sort key first.
        descending: bool,
        /// Page size for 0.
        default_page_size: i32,
        /// Page size ceiling.
        max_page_size: i32,
        /// Response field holding the entities.
        items_field: String,
        /// Whether the response has fields besides the items and the token.
        more_response_fields: bool,
    },
    /// Hand-written; its code reaches the store only through `uses`.
    Custom {
        /// The store operations it declares, sorted, without repeats.
        uses: Vec<Access>,
    },
}

/// One store operation a hand-written RPC declares (`custom: { uses: ["Task.get"] }`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    /// The entity.
    pub entity: EntityId,
    /// What it does with it.
    pub operation: AccessOperation,
}

impl AccessOperation {
    /// The repository method it allows: `get`, or a list RPC's query such as `list_tasks`.
    pub fn method_name(&self) -> String {
        match self {
            Self::Create => "create".to_owned(),
            Self::Get => "get".to_owned(),
            Self::Update => "update".to_owned(),
            Self::Delete => "delete".to_owned(),
            Self::Check => "check_in".to_owned(),
            Self::BatchGet => "batch_get".to_owned(),
            Self::List { method, .. } => crate::naming::snake(method),
        }
    }
}

/// The repository methods a hand-written RPC can declare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccessOperation {
    /// `create` (PutItem).
    Create,
    /// `get` (GetItem).
    Get,
    /// `update` (UpdateItem).
    Update,
    /// `delete` (DeleteItem).
    Delete,
    /// `check`: a transaction's condition on an item (ConditionCheckItem).
    Check,
    /// `batch_get` (BatchGetItem).
    BatchGet,
    /// The query of a list RPC on the entity (Query on the table or the index).
    List {
        /// The list RPC's name, e.g. `ListTasks`.
        method: String,
        /// Its index; `None` for the table.
        index: Option<String>,
    },
}

impl Operation {
    /// The entity the operation works on (`None` for hand-written RPCs).
    pub fn entity(&self) -> Option<EntityId> {
        match self {
            Self::Create { entity, .. }
            | Self::Get { entity }
            | Self::Update { entity, .. }
            | Self::Delete { entity, .. }
            | Self::List { entity, .. } => Some(*entity),
            Self::Custom { .. } => None,
        }
    }
}
