//! The `svcgen.*` annotations, read once into typed structs that mirror
//! `proto/svcgen/options.proto` field for field (a test decodes every field of the real schema).
//! Later stages match on these types, never on option names.

use prost_reflect::{DescriptorPool, DynamicMessage, ExtensionDescriptor, Value};

/// Field number of `svcgen.entity` in `MessageOptions`.
pub(crate) const ENTITY_EXTENSION: i32 = 51230;
/// Field number of `svcgen.operation` in `MethodOptions`.
pub(crate) const OPERATION_EXTENSION: i32 = 51231;
/// Field number of `svcgen.field` in `FieldOptions`.
pub(crate) const FIELD_EXTENSION: i32 = 51232;
/// `FieldDescriptorProto.options`.
pub(crate) const FIELD_OPTIONS: i32 = 8;
/// `DescriptorProto.options`.
pub(crate) const MESSAGE_OPTIONS: i32 = 7;
/// `MethodDescriptorProto.options`.
pub(crate) const METHOD_OPTIONS: i32 = 4;

/// `svcgen.EntityOptions`: how a message is stored.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntityOptions {
    /// Logical table.
    #[prost(string, tag = "1")]
    pub table: String,
    /// Partition-key template.
    #[prost(string, tag = "2")]
    pub pk: String,
    /// Sort-key template.
    #[prost(string, tag = "3")]
    pub sk: String,
    /// Secondary indexes.
    #[prost(message, repeated, tag = "4")]
    pub indexes: Vec<IndexOptions>,
    /// Optimistic-locking field ("" for none).
    #[prost(string, tag = "5")]
    pub version_field: String,
    /// Expiry field ("" for none).
    #[prost(string, tag = "6")]
    pub ttl_field: String,
    /// Field filled with a UUID v7 on create when empty ("" for none).
    #[prost(string, tag = "7")]
    pub generated_id_field: String,
}

/// `svcgen.IndexOptions`: one secondary index of an entity.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IndexOptions {
    /// Index name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Partition-key template.
    #[prost(string, tag = "2")]
    pub pk: String,
    /// Sort-key template.
    #[prost(string, tag = "3")]
    pub sk: String,
}

/// `svcgen.OperationOptions`: what an RPC does.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperationOptions {
    /// The operation; `None` when the annotation names none (a hand-written RPC).
    #[prost(oneof = "OperationKind", tags = "1, 2, 3, 4, 5, 6")]
    pub kind: Option<OperationKind>,
}

/// The `kind` oneof of `svcgen.OperationOptions`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum OperationKind {
    /// `create: { entity: "…" }`.
    #[prost(message, tag = "1")]
    Create(EntityOperation),
    /// `get: { entity: "…" }`.
    #[prost(message, tag = "2")]
    Get(EntityOperation),
    /// `update: { entity: "…" }`.
    #[prost(message, tag = "3")]
    Update(EntityOperation),
    /// `delete: { entity: "…" }`.
    #[prost(message, tag = "4")]
    Delete(EntityOperation),
    /// `list: { entity: "…" index: "…" … }`.
    #[prost(message, tag = "5")]
    List(ListOperation),
    /// `custom: { uses: […] }`.
    #[prost(message, tag = "6")]
    Custom(CustomOperation),
}

/// `svcgen.CreateOperation`, `GetOperation`, `UpdateOperation` and `DeleteOperation`: the same
/// shape on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntityOperation {
    /// Entity (message name).
    #[prost(string, tag = "1")]
    pub entity: String,
}

/// `svcgen.ListOperation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListOperation {
    /// Entity (message name).
    #[prost(string, tag = "1")]
    pub entity: String,
    /// Index queried ("" for the table).
    #[prost(string, tag = "2")]
    pub index: String,
    /// Highest sort key first.
    #[prost(bool, tag = "3")]
    pub descending: bool,
    /// Page size for 0 (0: svcgen's default).
    #[prost(int32, tag = "4")]
    pub default_page_size: i32,
    /// Page size ceiling (0: svcgen's default).
    #[prost(int32, tag = "5")]
    pub max_page_size: i32,
}

/// `svcgen.CustomOperation`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CustomOperation {
    /// Declared store access, `<Entity>.<operation>`.
    #[prost(string, repeated, tag = "1")]
    pub uses: Vec<String>,
}

/// `svcgen.FieldRules`: what a request field's value must be.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldRules {
    /// Must be set.
    #[prost(bool, tag = "1")]
    pub required: bool,
    /// Set by the server only.
    #[prost(bool, tag = "2")]
    pub output_only: bool,
    /// Never changed by an update.
    #[prost(bool, tag = "3")]
    pub immutable: bool,
    /// Fewest characters.
    #[prost(uint32, optional, tag = "4")]
    pub min_len: Option<u32>,
    /// Most characters.
    #[prost(uint32, optional, tag = "5")]
    pub max_len: Option<u32>,
    /// Regular expression ("" for none).
    #[prost(string, tag = "6")]
    pub pattern: String,
    /// An email address.
    #[prost(bool, tag = "7")]
    pub email: bool,
    /// A hyphenated UUID.
    #[prost(bool, tag = "8")]
    pub uuid: bool,
    /// Lowest number.
    #[prost(double, optional, tag = "9")]
    pub min: Option<f64>,
    /// Highest number.
    #[prost(double, optional, tag = "10")]
    pub max: Option<f64>,
    /// Fewest elements.
    #[prost(uint32, optional, tag = "11")]
    pub min_items: Option<u32>,
    /// Most elements.
    #[prost(uint32, optional, tag = "12")]
    pub max_items: Option<u32>,
    /// Enum values the enum defines only.
    #[prost(bool, tag = "13")]
    pub defined_only: bool,
}

/// Reads the `svcgen.*` extensions of a descriptor pool.
pub(crate) struct OptionReader {
    entity: Option<ExtensionDescriptor>,
    operation: Option<ExtensionDescriptor>,
    field: Option<ExtensionDescriptor>,
}

impl OptionReader {
    /// The reader for `pool` (which has no svcgen extensions when no file imports them).
    pub(crate) fn new(pool: &DescriptorPool) -> Self {
        Self {
            entity: pool.get_extension_by_name("svcgen.entity"),
            operation: pool.get_extension_by_name("svcgen.operation"),
            field: pool.get_extension_by_name("svcgen.field"),
        }
    }

    /// The `svcgen.entity` annotation in a message's options.
    pub(crate) fn entity(
        &self,
        options: &DynamicMessage,
    ) -> Option<Result<EntityOptions, prost::DecodeError>> {
        extension(options, self.entity.as_ref())
    }

    /// The `svcgen.operation` annotation in a method's options.
    pub(crate) fn operation(
        &self,
        options: &DynamicMessage,
    ) -> Option<Result<OperationOptions, prost::DecodeError>> {
        extension(options, self.operation.as_ref())
    }
}

impl FieldRules {
    /// Whether any of the string rules (lengths, pattern, email, uuid) is set.
    pub fn has_string_rules(&self) -> bool {
        self.min_len.is_some()
            || self.max_len.is_some()
            || !self.pattern.is_empty()
            || self.email
            || self.uuid
    }
}

impl OptionReader {
    /// The `svcgen.field` rules in a field's options.
    pub(crate) fn field(
        &self,
        options: &DynamicMessage,
    ) -> Option<Result<FieldRules, prost::DecodeError>> {
        extension(options, self.field.as_ref())
    }
}

fn extension<T: prost::Message + Default>(
    options: &DynamicMessage,
    ext: Option<&ExtensionDescriptor>,
) -> Option<Result<T, prost::DecodeError>> {
    let ext = ext?;
    if !options.has_extension(ext) {
        return None;
    }
    match options.get_extension(ext).as_ref() {
        Value::Message(message) => Some(message.transcode_to()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;

    /// Every field of the real schema arrives in the typed structs (a wrong tag would drop it).
    #[test]
    fn typed_options_mirror_the_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("all.proto"),
            r#"syntax = "proto3";
            import "svcgen/options.proto";
            message Thing {
              option (svcgen.entity) = {
                table: "t" pk: "P#{id}" sk: "S#{id}"
                indexes: { name: "gsi1" pk: "A#{id}" sk: "B#{id}" }
                version_field: "version" ttl_field: "expire" generated_id_field: "id"
              };
              string id = 1; uint64 version = 2; int64 expire = 3;
              string name = 4 [(svcgen.field) = {
                required: true output_only: true immutable: true min_len: 1 max_len: 9
                pattern: "^a" email: true uuid: true min: -1.5 max: 2 min_items: 3 max_items: 4
                defined_only: true
              }];
            }
            service S {
              rpc List(Thing) returns (Thing) {
                option (svcgen.operation) = { list: {
                  entity: "Thing" index: "gsi1" descending: true default_page_size: 7 max_page_size: 9
                } };
              }
              rpc Get(Thing) returns (Thing) { option (svcgen.operation) = { get: { entity: "Thing" } }; }
              rpc Custom(Thing) returns (Thing) {
                option (svcgen.operation) = { custom: { uses: ["Thing.get", "Thing.List"] } };
              }
            }"#,
        )
        .expect("write");
        let compiled =
            compile(dir.path(), dir.path(), &["all.proto".to_owned()]).expect("compiles");
        let reader = OptionReader::new(&compiled.pool);
        let message = compiled.pool.get_message_by_name("Thing").expect("Thing");
        let entity = reader
            .entity(&message.options())
            .expect("annotated")
            .expect("decodes");
        assert_eq!(
            entity,
            EntityOptions {
                table: "t".into(),
                pk: "P#{id}".into(),
                sk: "S#{id}".into(),
                indexes: vec![IndexOptions {
                    name: "gsi1".into(),
                    pk: "A#{id}".into(),
                    sk: "B#{id}".into(),
                }],
                version_field: "version".into(),
                ttl_field: "expire".into(),
                generated_id_field: "id".into(),
            }
        );
        let name = message.get_field_by_name("name").expect("name");
        let rules = reader
            .field(&name.options())
            .expect("annotated")
            .expect("decodes");
        assert_eq!(
            rules,
            FieldRules {
                required: true,
                output_only: true,
                immutable: true,
                min_len: Some(1),
                max_len: Some(9),
                pattern: "^a".into(),
                email: true,
                uuid: true,
                min: Some(-1.5),
                max: Some(2.0),
                min_items: Some(3),
                max_items: Some(4),
                defined_only: true,
            }
        );
        let service = compiled.pool.get_service_by_name("S").expect("S");
        let kinds: Vec<Option<OperationKind>> = service
            .methods()
            .map(|m| {
                reader
                    .operation(&m.options())
                    .expect("annotated")
                    .expect("decodes")
                    .kind
            })
            .collect();
        assert_eq!(
            kinds,
            [
                Some(OperationKind::List(ListOperation {
                    entity: "Thing".into(),
                    index: "gsi1".into(),
                    descending: true,
                    default_page_size: 7,
                    max_page_size: 9,
                })),
                Some(OperationKind::Get(EntityOperation {
                    entity: "Thing".into()
                })),
                Some(OperationKind::Custom(CustomOperation {
                    uses: vec!["Thing.get".into(), "Thing.List".into()]
                })),
            ]
        );
    }
}
