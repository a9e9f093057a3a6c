//! Entity rules: a `svcgen.entity` annotation names a table, unambiguous key templates over
//! fields that can be keys, valid indexes and special fields of the right types; stored fields
//! must be storable, no field may take a reserved attribute's name, and entities that can share a
//! partition (of the table or of an index) must have sort-key prefixes that do not overlap.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use svcgen_contract::key_template::SEPARATOR_HELP;
use svcgen_contract::key_type::{KEY_TYPES, TIMESTAMP};
use svcgen_contract::{KeyTemplate, KeyType, attributes};

use super::build::Validator;
use super::options::{ENTITY_EXTENSION, EntityOptions, IndexOptions, MESSAGE_OPTIONS};
use super::{Entity, Index, TypeRef, VersionField};
use crate::diagnostic::Location;

/// Where a message's entity annotation is.
pub(super) fn annotation(message: &MessageDescriptor) -> Location {
    Location::new(&message.parent_file(), message.path())
        .child(&[MESSAGE_OPTIONS, ENTITY_EXTENSION])
}

/// The `.proto` keyword of a scalar kind (`uint64`), or the full name of a message or enum.
pub(super) fn proto_type(kind: &Kind) -> String {
    let scalar = match kind {
        Kind::Message(m) => return m.full_name().to_owned(),
        Kind::Enum(e) => return e.full_name().to_owned(),
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
    };
    scalar.to_owned()
}

/// A field's type as the user wrote it (`repeated string`, `optional uint64`, `map`).
pub(super) fn type_name(field: &FieldDescriptor) -> String {
    let base = proto_type(&field.kind());
    if field.is_map() {
        "map".to_owned()
    } else if field.is_list() {
        format!("repeated {base}")
    } else if field.field_descriptor_proto().proto3_optional() {
        format!("optional {base}")
    } else {
        base
    }
}

/// The key type of a field, or `None` when it cannot be part of a key: singular scalars
/// without `optional`, enums, and `google.protobuf.Timestamp` (a message, so it has presence:
/// unset is a missing key field).
fn key_type(field: &FieldDescriptor) -> Option<KeyType> {
    if field.is_list() || field.is_map() {
        return None;
    }
    match field.kind() {
        Kind::Message(m) => (m.full_name() == TIMESTAMP).then_some(KeyType::Timestamp),
        _ if field.supports_presence() => None,
        Kind::Enum(_) => Some(KeyType::Enum),
        scalar => KeyType::of_scalar(&proto_type(&scalar)),
    }
}

fn key_type_help() -> String {
    format!(
        "key fields must be {KEY_TYPES}, without `optional` or `repeated`; integers and timestamps are written so that keys sort in their order"
    )
}

impl Validator<'_> {
    /// The entity `message` annotated with `options`, or `None` after reporting its problems.
    pub(super) fn entity(
        &mut self,
        message: &MessageDescriptor,
        options: &EntityOptions,
    ) -> Option<Entity> {
        let at = annotation(message);
        let before = self.problems.len();
        if options.table.is_empty() {
            self.problem(&at, format!("entity `{}` has no table", message.name()), "in this annotation", Some(
                "add `table: \"NAME\"`; entities with the same table share it (single-table design)".into(),
            ));
        }
        let pk = self.template(message, &at, &options.pk, "pk", "partition key");
        let sk = self.template(message, &at, &options.sk, "sk", "sort key");
        let indexes = self.indexes(message, &at, &options.indexes);
        let version = self
            .special_field(
                message,
                &at,
                &options.version_field,
                "version_field",
                &|f| {
                    !f.is_list()
                        && !f.supports_presence()
                        && matches!(f.kind(), Kind::Uint64 | Kind::Int64)
                },
                "uint64 or int64",
            )
            .map(|field| VersionField {
                name: field.name().to_owned(),
                signed: field.kind() == Kind::Int64,
            });
        let ttl_field = self.special_field(
            message,
            &at,
            &options.ttl_field,
            "ttl_field",
            &|f| {
                !f.is_list()
                    && match f.kind() {
                        Kind::Message(m) => m.full_name() == "google.protobuf.Timestamp",
                        Kind::Int64 | Kind::Uint64 => !f.supports_presence(),
                        _ => false,
                    }
            },
            "google.protobuf.Timestamp or int64/uint64 epoch seconds",
        );
        let generated_id_field = self.special_field(
            message,
            &at,
            &options.generated_id_field,
            "generated_id_field",
            &|f| !f.is_list() && !f.supports_presence() && matches!(f.kind(), Kind::String),
            "string",
        );
        self.check_reserved_names(message, &indexes);
        self.check_storable(message, &mut Vec::new());
        if self.problems.len() > before {
            return None;
        }
        Some(Entity {
            name: message.name().to_owned(),
            full_name: message.full_name().to_owned(),
            type_ref: TypeRef::message(message),
            table: options.table.clone(),
            pk: pk?,
            sk: sk?,
            indexes,
            version,
            ttl_field: ttl_field.map(|f| f.name().to_owned()),
            generated_id_field: generated_id_field.map(|f| f.name().to_owned()),
            key_field_types: message
                .fields()
                .filter_map(|f| key_type(&f).map(|t| (f.name().to_owned(), t)))
                .collect(),
        })
    }

    /// The valid indexes of `options`, reporting the others.
    fn indexes(
        &mut self,
        message: &MessageDescriptor,
        at: &Location,
        options: &[IndexOptions],
    ) -> Vec<Index> {
        let mut indexes: Vec<Index> = Vec::new();
        for index in options {
            let name = &index.name;
            let at_name = at.clone().narrowed(format!("name: \"{name}\""));
            if !attributes::valid_index_name(name) {
                self.problem(&at_name, format!("index name `{name}` is not valid"), "this index", Some(
                    "index names are lower-case letters and digits (e.g. `gsi1`); its key attributes are `<name>pk` and `<name>sk`".into(),
                ));
                continue;
            }
            if indexes.iter().any(|i| &i.name == name) {
                self.problem(
                    &at_name,
                    format!("index `{name}` is listed twice for `{}`", message.name()),
                    "duplicate",
                    Some("each index appears once per entity; remove one of them".into()),
                );
                continue;
            }
            let what = format!("index `{name}` partition key");
            let pk = self.template(message, at, &index.pk, "pk", &what);
            let what = format!("index `{name}` sort key");
            let sk = self.template(message, at, &index.sk, "sk", &what);
            if let (Some(pk), Some(sk)) = (pk, sk) {
                indexes.push(Index {
                    name: name.clone(),
                    pk,
                    sk,
                });
            }
        }
        indexes
    }

    /// Parses key template `text` (option field `option`) and checks the fields it names.
    fn template(
        &mut self,
        message: &MessageDescriptor,
        at: &Location,
        text: &str,
        option: &str,
        what: &str,
    ) -> Option<KeyTemplate> {
        if text.is_empty() {
            self.problem(at, format!("`{}` has no {what} template", message.name()), "in this annotation", Some(format!(
                "add `{option}: \"PREFIX#{{field}}\"`; use a constant such as \"{}\" when one value suffices",
                message.name().to_uppercase()
            )));
            return None;
        }
        let template = match KeyTemplate::parse(text) {
            Ok(t) => t,
            Err(e) => {
                self.problem(&at.clone().narrowed(format!("\"{text}\"")), format!("malformed {what} template `{text}`: {e}"), "this template", Some(
                    "a key template is literal text with `{field}` placeholders, e.g. \"PROJECT#{project_id}\"".into(),
                ));
                return None;
            }
        };
        let mut ok = true;
        if let Err(ambiguity) = template.check_unambiguous() {
            self.problem(
                &at.clone().narrowed(ambiguity.source_text()),
                format!("{what} template `{text}` is ambiguous: {ambiguity}"),
                "ambiguous",
                Some(SEPARATOR_HELP.to_owned()),
            );
            ok = false;
        }
        for placeholder in &template.placeholders {
            let at = at.clone().narrowed(format!("{{{}}}", placeholder.field));
            let Some(field) = message.get_field_by_name(&placeholder.field) else {
                let names: Vec<String> = message.fields().map(|f| f.name().to_owned()).collect();
                self.problem(
                    &at,
                    format!(
                        "{what} template names `{}`, which is not a field of `{}`",
                        placeholder.field,
                        message.name()
                    ),
                    "unknown field",
                    Some(format!(
                        "fields of {}: {}",
                        message.name(),
                        names.join(", ")
                    )),
                );
                ok = false;
                continue;
            };
            if key_type(&field).is_none() {
                self.problem(
                    &at,
                    format!(
                        "field `{}` of type `{}` cannot be part of a key",
                        field.name(),
                        type_name(&field)
                    ),
                    "not a key type",
                    Some(key_type_help()),
                );
                ok = false;
            }
        }
        ok.then_some(template)
    }

    /// The field named by option `option` (`name`, "" for none) when `accept` takes it.
    fn special_field(
        &mut self,
        message: &MessageDescriptor,
        at: &Location,
        name: &str,
        option: &str,
        accept: &dyn Fn(&FieldDescriptor) -> bool,
        expected: &str,
    ) -> Option<FieldDescriptor> {
        if name.is_empty() {
            return None;
        }
        let at = at.clone().narrowed(format!("\"{name}\""));
        match message.get_field_by_name(name) {
            None => {
                self.problem(
                    &at,
                    format!(
                        "{option} names `{name}`, which is not a field of `{}`",
                        message.name()
                    ),
                    "unknown field",
                    Some(format!(
                        "add the field to {} or correct the name",
                        message.name()
                    )),
                );
                None
            }
            Some(field) if !accept(&field) => {
                self.problem(
                    &at,
                    format!("{option} `{name}` has type `{}`", type_name(&field)),
                    "wrong type",
                    Some(format!("{option} must be {expected}")),
                );
                None
            }
            Some(field) => Some(field),
        }
    }

    /// Reports fields named like an attribute svcgen stores (keys, expiry, entity type).
    fn check_reserved_names(&mut self, message: &MessageDescriptor, indexes: &[Index]) {
        let reserved = attributes::reserved(indexes.iter().map(|i| i.name.as_str()));
        for field in message.fields() {
            if reserved.iter().any(|r| r == field.name()) {
                self.problem(
                    &Location::new(&message.parent_file(), field.path()).child(&[1]),
                    format!(
                        "field name `{}` is reserved for an attribute svcgen stores",
                        field.name()
                    ),
                    "clashes with a reserved attribute",
                    Some(format!(
                        "rename the field; svcgen stores keys, expiry and the entity type in the attributes {}",
                        reserved.join(", ")
                    )),
                );
            }
        }
    }

    /// Reports fields whose types cannot be stored, recursing into stored messages.
    fn check_storable(&mut self, message: &MessageDescriptor, seen: &mut Vec<String>) {
        if seen.iter().any(|s| s == message.full_name()) {
            return;
        }
        seen.push(message.full_name().to_owned());
        for field in message.fields() {
            let value = match field.kind() {
                Kind::Message(entry) if field.is_map() => entry.map_entry_value_field(),
                _ => field.clone(),
            };
            let at = Location::new(&message.parent_file(), field.path());
            if field.is_group() {
                self.problem(
                    &at,
                    format!("group field `{}` cannot be stored", field.name()),
                    "group",
                    Some("use a nested message instead of a proto2 group".into()),
                );
                continue;
            }
            match value.kind() {
                Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {}
                Kind::Message(m) if m.full_name().starts_with("google.protobuf.") => {
                    self.problem(&at.child(&[6]), format!("field `{}` has type `{}`, which svcgen cannot store", field.name(), m.full_name()), "unsupported type", Some(
                        "stored well-known types: google.protobuf.Timestamp; use a message of your own or scalar fields instead".into(),
                    ));
                }
                Kind::Message(m) => self.check_storable(&m, seen),
                _ => {}
            }
        }
    }

    /// Reports entities declared twice and entities of one table that can write the same keys.
    pub(super) fn check_entity_conflicts(
        &mut self,
        annotated: &[(MessageDescriptor, EntityOptions)],
        entities: &[Entity],
    ) {
        for (i, (message, _)) in annotated.iter().enumerate() {
            let at = Location::new(&message.parent_file(), message.path()).child(&[1]);
            if let Some((first, _)) = annotated[..i]
                .iter()
                .find(|(m, _)| m.name() == message.name())
            {
                self.problem(
                    &at,
                    format!(
                        "duplicate entity `{}` (also `{}`)",
                        message.name(),
                        first.full_name()
                    ),
                    "second entity of this name",
                    Some("operations name entities by message name; rename one of them".into()),
                );
            }
        }
        for (i, a) in entities.iter().enumerate() {
            for b in &entities[..i] {
                self.check_partition_sharing(annotated, a, b);
            }
        }
    }

    /// Reports `a` (declared after `b`) when the two can share a partition of the table or of
    /// an index they both use (their partition-key prefixes overlap) and their sort-key
    /// prefixes overlap too: a list of one would return the other's items (`begins_with`), and
    /// their keys could coincide.
    fn check_partition_sharing(
        &mut self,
        annotated: &[(MessageDescriptor, EntityOptions)],
        a: &Entity,
        b: &Entity,
    ) {
        if a.table != b.table {
            return;
        }
        let Some((message, _)) = annotated.iter().find(|(m, _)| m.name() == a.name) else {
            return;
        };
        let at = annotation(message);
        let mut shapes = vec![(
            format!("table `{}`", a.table),
            at.clone().narrowed(format!("\"{}\"", a.sk.text)),
            [&a.pk, &a.sk, &b.pk, &b.sk],
        )];
        for index in &a.indexes {
            if let Some(other) = b.indexes.iter().find(|i| i.name == index.name) {
                shapes.push((
                    format!("index `{}` of table `{}`", index.name, a.table),
                    at.clone().narrowed(format!("name: \"{}\"", index.name)),
                    [&index.pk, &index.sk, &other.pk, &other.sk],
                ));
            }
        }
        for (place, location, [pk, sk, other_pk, other_sk]) in shapes {
            if !(pk.prefix_overlaps(other_pk) && sk.prefix_overlaps(other_sk)) {
                continue;
            }
            let reason = sort_key_overlap(&a.name, sk, &b.name, other_sk);
            let fields = sk.fields();
            let example = if fields.is_empty() {
                a.name.to_uppercase()
            } else {
                format!("{}#{{{}}}", a.name.to_uppercase(), fields.join("}#{"))
            };
            self.problem(
                &location,
                format!(
                    "`{}` and `{}` can share a partition of {place}, and their sort keys overlap: {reason}",
                    a.name, b.name
                ),
                "overlaps another entity's sort keys",
                Some(format!(
                    "a list of either entity would return the other's items; give each entity its own sort-key prefix that does not start the other's, e.g. sk: \"{example}\""
                )),
            );
        }
    }
}

/// Why sort-key templates `a` (of entity `a_name`) and `b` overlap, in words.
fn sort_key_overlap(a_name: &str, a: &KeyTemplate, b_name: &str, b: &KeyTemplate) -> String {
    let (a_prefix, b_prefix) = (a.literal_prefix(), b.literal_prefix());
    if a_prefix == b_prefix {
        return match a_prefix {
            "" => "both start with a placeholder".to_owned(),
            prefix => format!("both start with \"{prefix}\""),
        };
    }
    let ((long_name, long), (short_name, short)) = if a_prefix.len() > b_prefix.len() {
        ((a_name, a_prefix), (b_name, b_prefix))
    } else {
        ((b_name, b_prefix), (a_name, a_prefix))
    };
    if short.is_empty() {
        format!(
            "`{short_name}`'s starts with a placeholder, so nothing tells it from `{long_name}`'s prefix \"{long}\""
        )
    } else {
        format!("`{long_name}`'s prefix \"{long}\" starts with `{short_name}`'s \"{short}\"")
    }
}
