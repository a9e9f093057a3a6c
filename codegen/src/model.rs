//! The model: what the annotated protos describe (entities, keys, indexes, services and the
//! operation each RPC performs), built from the descriptor pool and validated. Every problem is
//! collected as a located diagnostic; rendering only ever sees a valid model.

use std::collections::BTreeMap;

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_reflect::{
    DynamicMessage, ExtensionDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, Value,
};

use crate::compile::Compiled;
use crate::diagnostic::{Diagnostics, Location, ProtoDiagnostic, Sources};
use svcgen_contract::attributes;
use svcgen_contract::key_type::KEY_TYPES;
use svcgen_contract::{KeyTemplate, KeyType};

/// Field number of `svcgen.entity` in `MessageOptions`.
const ENTITY_EXTENSION: i32 = 51230;
/// Field number of `svcgen.operation` in `MethodOptions`.
const OPERATION_EXTENSION: i32 = 51231;
/// `DescriptorProto.options`, `MethodDescriptorProto.options`.
const MESSAGE_OPTIONS: i32 = 7;
const METHOD_OPTIONS: i32 = 4;

/// Everything the generator renders from.
#[derive(Debug)]
pub struct Model {
    /// Entities, in declaration order.
    pub entities: Vec<Entity>,
    /// gRPC services, in declaration order.
    pub services: Vec<Service>,
    /// Tables with the indexes their entities use, by name.
    pub tables: BTreeMap<String, Vec<String>>,
    /// Messages stored inside entities and the oneofs of stored messages: they derive
    /// `Attributes`.
    pub stored_types: Vec<TypeRef>,
}

/// A type prost generates, located by its proto package and its Rust path inside the
/// package's module (`["project", "Visibility"]` for oneof `visibility` of `Project`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TypeRef {
    /// Proto package.
    pub package: String,
    /// Rust path within the package module.
    pub path: Vec<String>,
}

impl TypeRef {
    fn message(message: &MessageDescriptor) -> Self {
        let mut path = Vec::new();
        let mut parent = message.parent_message();
        while let Some(p) = parent {
            path.insert(0, p.name().to_snake_case());
            parent = p.parent_message();
        }
        path.push(message.name().to_upper_camel_case());
        Self {
            package: message.package_name().to_owned(),
            path,
        }
    }

    fn oneof(message: &MessageDescriptor, oneof: &str) -> Self {
        let mut type_ref = Self::message(message);
        if let Some(last) = type_ref.path.last_mut() {
            *last = last.to_snake_case();
        }
        type_ref.path.push(oneof.to_upper_camel_case());
        type_ref
    }
}

/// A message stored as an item.
#[derive(Debug)]
pub struct Entity {
    /// Message name, e.g. `Task`.
    pub name: String,
    /// Where prost generates the message.
    pub type_ref: TypeRef,
    /// Rust path from `src/generated/`, e.g. `tasks::Task`.
    pub rust_path: String,
    /// Logical table.
    pub table: String,
    /// Table key templates.
    pub pk: KeyTemplate,
    /// Sort-key template.
    pub sk: KeyTemplate,
    /// Secondary indexes.
    pub indexes: Vec<Index>,
    /// Optimistic-locking field.
    pub version_field: Option<String>,
    /// Expiry field.
    pub ttl_field: Option<String>,
    /// Field filled with a UUID v7 on create when empty.
    pub generated_id_field: Option<String>,
    /// Every field of the message: proto name → Rust type of a plain key parameter.
    pub key_field_types: BTreeMap<String, String>,
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
}

/// A gRPC service.
#[derive(Debug)]
pub struct Service {
    /// e.g. `TaskService`.
    pub name: String,
    /// e.g. `tasks.TaskService`.
    pub full_name: String,
    /// Rust module path of the prost package, e.g. `tasks`.
    pub package_module: String,
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
    /// e.g. `create_task`.
    pub rust_name: String,
    /// Rust path of the request type from `src/generated/`.
    pub input: String,
    /// Rust path of the response type (`()` for google.protobuf.Empty).
    pub output: String,
    /// What it does.
    pub operation: Operation,
    /// Leading comment.
    pub doc: String,
}

/// What an RPC does with the store.
#[derive(Debug)]
pub enum Operation {
    /// Conditional put of the entity in request field `field`.
    Create { entity: usize, field: String },
    /// Read by the key fields of the request.
    Get { entity: usize },
    /// Masked update of the entity in `field` under the mask in `mask_field`.
    Update {
        entity: usize,
        field: String,
        mask_field: String,
    },
    /// Delete by key; `version` names a request field to check, `returns_entity` when the
    /// response is the entity rather than Empty.
    Delete {
        entity: usize,
        version: Option<String>,
        returns_entity: bool,
    },
    /// One page of a partition.
    List {
        /// Entity listed.
        entity: usize,
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
    /// Hand-written.
    Custom,
}

/// Builds and validates the model.
pub fn build(compiled: &Compiled) -> Result<Model, Diagnostics> {
    let mut builder = Builder {
        sources: &compiled.sources,
        problems: Vec::new(),
        entity_ext: compiled.pool.get_extension_by_name("svcgen.entity"),
        operation_ext: compiled.pool.get_extension_by_name("svcgen.operation"),
    };
    let files: Vec<FileDescriptor> = compiled
        .files
        .iter()
        .filter_map(|name| compiled.pool.get_file_by_name(name))
        .collect();
    let mut entity_messages = Vec::new();
    for file in &files {
        for message in file.messages() {
            builder.collect_entities(&message, &mut entity_messages);
        }
    }
    let entities: Vec<Entity> = entity_messages
        .iter()
        .filter_map(|(m, o)| builder.entity(m, o))
        .collect();
    builder.check_entity_conflicts(&entity_messages, &entities);
    let mut services = Vec::new();
    // Hand-written RPCs share one namespace: src/rpc/<name>.rs and the `<Name>Rpc` trait.
    let mut custom_names: BTreeMap<String, String> = BTreeMap::new();
    for service in files.iter().flat_map(|f| f.services()) {
        let mut methods = Vec::new();
        for descriptor in service.methods() {
            let method = builder.method(&descriptor, &entity_messages, &entities);
            if matches!(method.operation, Operation::Custom)
                && let Some(other) =
                    custom_names.insert(method.rust_name.clone(), service.full_name().to_owned())
            {
                builder.problem(
                        &Location::new(&descriptor.parent_file(), descriptor.path()),
                        format!(
                            "hand-written RPC `{}` of `{}` has the same name as one in `{other}`",
                            method.name,
                            service.full_name()
                        ),
                        "hand-written RPC name used twice",
                        Some(format!(
                            "each hand-written RPC gets its own file, src/rpc/{}.rs; rename one of them",
                            method.rust_name
                        )),
                    );
            }
            methods.push(method);
        }
        services.push(Service {
            name: service.name().to_owned(),
            full_name: service.full_name().to_owned(),
            package_module: rust_module_path(service.package_name()),
            methods,
            doc: comment(&service.parent_file(), service.path()),
        });
    }

    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entity in &entities {
        let indexes = tables.entry(entity.table.clone()).or_default();
        for index in &entity.indexes {
            if !indexes.contains(&index.name) {
                indexes.push(index.name.clone());
            }
        }
    }
    let stored_types = stored_types(&entity_messages);
    if !builder.problems.is_empty() {
        return Err(Diagnostics {
            problems: builder.problems,
        });
    }
    Ok(Model {
        entities,
        services,
        tables,
        stored_types,
    })
}

struct Builder<'a> {
    sources: &'a Sources,
    problems: Vec<ProtoDiagnostic>,
    entity_ext: Option<ExtensionDescriptor>,
    operation_ext: Option<ExtensionDescriptor>,
}

/// An `EntityOptions` / `OperationOptions` value read from the options.
fn extension(
    options: &DynamicMessage,
    ext: &Option<ExtensionDescriptor>,
) -> Option<DynamicMessage> {
    let ext = ext.as_ref()?;
    if !options.has_extension(ext) {
        return None;
    }
    match options.get_extension(ext).as_ref() {
        Value::Message(message) => Some(message.clone()),
        _ => None,
    }
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn int_field(message: &DynamicMessage, name: &str) -> i32 {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_i32())
        .unwrap_or(0)
}

/// The leading comment of the element at `path`, trimmed.
fn comment(file: &FileDescriptor, path: &[i32]) -> String {
    file.file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .and_then(|l| l.leading_comments.clone())
        .map(|c| {
            c.lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// `acme.tasks.v1` → `acme::tasks::v1` (prost's module naming).
fn rust_module_path(package: &str) -> String {
    package
        .split('.')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_snake_case())
        .collect::<Vec<_>>()
        .join("::")
}

/// Rust path of a message from `src/generated/` (prost's naming), or the extern type for
/// well-known types.
pub fn rust_type_path(message: &MessageDescriptor) -> String {
    match message.full_name() {
        "google.protobuf.Empty" => return "()".to_owned(),
        name if name.starts_with("google.protobuf.") => {
            return format!("::prost_types::{}", message.name());
        }
        _ => {}
    }
    let mut segments: Vec<String> = Vec::new();
    let mut parent = message.parent_message();
    while let Some(p) = parent {
        segments.insert(0, p.name().to_snake_case());
        parent = p.parent_message();
    }
    let package = rust_module_path(message.package_name());
    let mut path = package;
    for s in segments {
        path = if path.is_empty() {
            s
        } else {
            format!("{path}::{s}")
        };
    }
    let ident = message.name().to_upper_camel_case();
    if path.is_empty() {
        ident
    } else {
        format!("{path}::{ident}")
    }
}

/// The `.proto` keyword of a scalar kind (`uint64`), or the full name of a message or enum.
fn proto_type(kind: &Kind) -> String {
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

fn type_name(field: &FieldDescriptor) -> String {
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

/// The key type of a field, or `None` when it cannot be part of a key.
fn key_type(field: &FieldDescriptor) -> Option<KeyType> {
    if field.is_list() || field.is_map() || field.supports_presence() {
        return None;
    }
    match field.kind() {
        Kind::Enum(_) => Some(KeyType::Enum),
        Kind::Message(_) => None,
        scalar => KeyType::of_scalar(&proto_type(&scalar)),
    }
}

fn key_type_help() -> String {
    format!(
        "key fields must be {KEY_TYPES}, without `optional` or `repeated`; unsigned integers are zero-padded so keys sort numerically"
    )
}

impl Builder<'_> {
    fn problem(
        &mut self,
        at: &Location,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) {
        let diagnostic = at.error(self.sources, message, label, help);
        self.problems.push(diagnostic);
    }

    fn collect_entities(
        &self,
        message: &MessageDescriptor,
        out: &mut Vec<(MessageDescriptor, DynamicMessage)>,
    ) {
        if let Some(options) = extension(&message.options(), &self.entity_ext) {
            out.push((message.clone(), options));
        }
        for child in message.child_messages() {
            self.collect_entities(&child, out);
        }
    }

    fn entity(&mut self, message: &MessageDescriptor, options: &DynamicMessage) -> Option<Entity> {
        let file = message.parent_file();
        let at = Location::new(&file, message.path()).child(&[MESSAGE_OPTIONS, ENTITY_EXTENSION]);
        let before = self.problems.len();
        let table = string_field(options, "table");
        if table.is_empty() {
            self.problem(&at, format!("entity `{}` has no table", message.name()), "in this annotation", Some(
                "add `table: \"NAME\"`; entities with the same table share it (single-table design)".into(),
            ));
        }
        let pk = self.template(message, &at, options, "pk", "partition key");
        let sk = self.template(message, &at, options, "sk", "sort key");
        let mut indexes: Vec<Index> = Vec::new();
        if let Some(list) = options.get_field_by_name("indexes") {
            for value in list.as_list().unwrap_or_default() {
                let Some(index) = value.as_message() else {
                    continue;
                };
                let name = string_field(index, "name");
                if !attributes::valid_index_name(&name) {
                    self.problem(&at.clone().narrowed(format!("name: \"{name}\"")), format!("index name `{name}` is not valid"), "this index", Some(
                        "index names are lower-case letters and digits (e.g. `gsi1`); its key attributes are `<name>pk` and `<name>sk`".into(),
                    ));
                    continue;
                }
                if indexes.iter().any(|i| i.name == name) {
                    self.problem(
                        &at.clone().narrowed(format!("name: \"{name}\"")),
                        format!("index `{name}` is listed twice for `{}`", message.name()),
                        "duplicate",
                        Some("each index appears once per entity; remove one of them".into()),
                    );
                    continue;
                }
                let pk = self.template(
                    message,
                    &at,
                    index,
                    "pk",
                    &format!("index `{name}` partition key"),
                );
                let sk = self.template(
                    message,
                    &at,
                    index,
                    "sk",
                    &format!("index `{name}` sort key"),
                );
                if let (Some(pk), Some(sk)) = (pk, sk) {
                    indexes.push(Index { name, pk, sk });
                }
            }
        }
        let version_field = self.special_field(
            message,
            &at,
            options,
            "version_field",
            &|f| {
                !f.is_list()
                    && !f.supports_presence()
                    && matches!(f.kind(), Kind::Uint64 | Kind::Int64)
            },
            "uint64 or int64",
        );
        let ttl_field = self.special_field(
            message,
            &at,
            options,
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
            options,
            "generated_id_field",
            &|f| !f.is_list() && !f.supports_presence() && matches!(f.kind(), Kind::String),
            "string",
        );

        let reserved = attributes::reserved(indexes.iter().map(|i| i.name.as_str()));
        for field in message.fields() {
            if reserved.contains(&field.name().to_owned()) {
                self.problem(
                    &Location::new(&file, field.path()).child(&[1]),
                    format!(
                        "field name `{}` is reserved for a key attribute",
                        field.name()
                    ),
                    "clashes with a key attribute",
                    Some(format!(
                        "rename the field; svcgen stores keys in the attributes {}",
                        reserved.join(", ")
                    )),
                );
            }
        }
        self.check_storable(message, &mut Vec::new());
        if self.problems.len() > before {
            return None;
        }
        let (pk, sk) = (pk?, sk?);
        let key_field_types = message
            .fields()
            .filter_map(|f| key_type(&f).map(|t| (f.name().to_owned(), t.rust_type().to_owned())))
            .collect();
        Some(Entity {
            name: message.name().to_owned(),
            type_ref: TypeRef::message(message),
            rust_path: rust_type_path(message),
            table,
            pk,
            sk,
            indexes,
            version_field,
            ttl_field,
            generated_id_field,
            key_field_types,
        })
    }

    /// Parses the key template in option field `name` and checks the fields it names.
    fn template(
        &mut self,
        message: &MessageDescriptor,
        at: &Location,
        options: &DynamicMessage,
        name: &str,
        what: &str,
    ) -> Option<KeyTemplate> {
        let text = string_field(options, name);
        if text.is_empty() {
            self.problem(at, format!("`{}` has no {what} template", message.name()), "in this annotation", Some(format!(
                "add `{name}: \"PREFIX#{{field}}\"`; use a constant such as \"{}\" when one value suffices",
                message.name().to_uppercase()
            )));
            return None;
        }
        let quoted = format!("\"{text}\"");
        let template = match KeyTemplate::parse(&text) {
            Ok(t) => t,
            Err(e) => {
                self.problem(&at.clone().narrowed(quoted), format!("malformed {what} template `{text}`: {e}"), "this template", Some(
                    "a key template is literal text with `{field}` placeholders, e.g. \"PROJECT#{project_id}\"".into(),
                ));
                return None;
            }
        };
        let mut ok = true;
        for placeholder in &template.placeholders {
            let needle = format!("{{{}}}", placeholder.field);
            let Some(field) = message.get_field_by_name(&placeholder.field) else {
                let names: Vec<String> = message.fields().map(|f| f.name().to_owned()).collect();
                self.problem(
                    &at.clone().narrowed(needle),
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
                    &at.clone().narrowed(needle),
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

    fn special_field(
        &mut self,
        message: &MessageDescriptor,
        at: &Location,
        options: &DynamicMessage,
        option: &str,
        accept: &dyn Fn(&FieldDescriptor) -> bool,
        expected: &str,
    ) -> Option<String> {
        let name = string_field(options, option);
        if name.is_empty() {
            return None;
        }
        let needle = format!("\"{name}\"");
        match message.get_field_by_name(&name) {
            None => {
                self.problem(
                    &at.clone().narrowed(needle),
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
                    &at.clone().narrowed(needle),
                    format!("{option} `{name}` has type `{}`", type_name(&field)),
                    "wrong type",
                    Some(format!("{option} must be {expected}")),
                );
                None
            }
            Some(_) => Some(name),
        }
    }

    /// Reports fields whose types cannot be stored, recursing into stored messages.
    fn check_storable(&mut self, message: &MessageDescriptor, seen: &mut Vec<String>) {
        if seen.iter().any(|s| s == message.full_name()) {
            return;
        }
        seen.push(message.full_name().to_owned());
        for field in message.fields() {
            let value = if field.is_map() {
                match field.kind() {
                    Kind::Message(entry) => entry.map_entry_value_field(),
                    _ => field.clone(),
                }
            } else {
                field.clone()
            };
            if field.is_group() {
                self.problem(
                    &Location::new(&message.parent_file(), field.path()),
                    format!("group field `{}` cannot be stored", field.name()),
                    "group",
                    Some("use a nested message instead of a proto2 group".into()),
                );
                continue;
            }
            if let Kind::Message(m) = value.kind() {
                if m.full_name().starts_with("google.protobuf.") {
                    if m.full_name() != "google.protobuf.Timestamp" {
                        self.problem(&Location::new(&message.parent_file(), field.path()).child(&[6]), format!("field `{}` has type `{}`, which svcgen cannot store", field.name(), m.full_name()), "unsupported type", Some(
                            "stored well-known types: google.protobuf.Timestamp; use a message of your own or scalar fields instead".into(),
                        ));
                    }
                } else {
                    self.check_storable(&m, seen);
                }
            }
        }
    }

    fn check_entity_conflicts(
        &mut self,
        messages: &[(MessageDescriptor, DynamicMessage)],
        entities: &[Entity],
    ) {
        for (i, (message, _)) in messages.iter().enumerate() {
            let at = Location::new(&message.parent_file(), message.path()).child(&[1]);
            if let Some((first, _)) = messages[..i]
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
                if a.table == b.table
                    && a.pk.literal_prefix() == b.pk.literal_prefix()
                    && a.sk.literal_prefix() == b.sk.literal_prefix()
                {
                    let Some((message, _)) = messages.iter().find(|(m, _)| m.name() == a.name)
                    else {
                        continue;
                    };
                    let at = Location::new(&message.parent_file(), message.path())
                        .child(&[MESSAGE_OPTIONS, ENTITY_EXTENSION])
                        .narrowed(format!("\"{}\"", a.sk.text));
                    self.problem(
                        &at,
                        format!(
                            "`{}` and `{}` can write the same keys in table `{}`",
                            a.name, b.name, a.table
                        ),
                        "same key prefixes as another entity",
                        Some(format!(
                            "give each entity its own sort-key prefix, e.g. sk: \"{}#{{id}}\"",
                            a.name.to_uppercase()
                        )),
                    );
                }
            }
        }
    }

    fn method(
        &mut self,
        method: &MethodDescriptor,
        messages: &[(MessageDescriptor, DynamicMessage)],
        entities: &[Entity],
    ) -> Method {
        let file = method.parent_file();
        let at = Location::new(&file, method.path()).child(&[METHOD_OPTIONS, OPERATION_EXTENSION]);
        let operation = match extension(&method.options(), &self.operation_ext) {
            None => None,
            Some(options) => self.operation(method, &at, &options, messages, entities),
        };
        let operation = operation.unwrap_or(Operation::Custom);
        if method.is_client_streaming() || method.is_server_streaming() {
            self.problem(
                &Location::new(&file, method.path()),
                format!("`{}` streams; svcgen generates unary RPCs only", method.name()),
                "streaming RPC",
                Some(
                    "remove `stream`, or serve the streaming RPC from a separate hand-written tonic service"
                        .into(),
                ),
            );
        }
        Method {
            name: method.name().to_owned(),
            rust_name: method.name().to_snake_case(),
            input: rust_type_path(&method.input()),
            output: rust_type_path(&method.output()),
            operation,
            doc: comment(&file, method.path()),
        }
    }

    fn operation(
        &mut self,
        method: &MethodDescriptor,
        at: &Location,
        options: &DynamicMessage,
        messages: &[(MessageDescriptor, DynamicMessage)],
        entities: &[Entity],
    ) -> Option<Operation> {
        let kinds = ["create", "get", "update", "delete", "list", "custom"];
        let kind = kinds.into_iter().find(|k| options.has_field_by_name(k))?;
        if kind == "custom" {
            return None;
        }
        let details = options.get_field_by_name(kind)?.as_message()?.clone();
        let name = string_field(&details, "entity");
        let Some(entity_index) = entities.iter().position(|e| e.name == name) else {
            // An entity whose own annotation is invalid has been reported already.
            if !messages.iter().any(|(m, _)| m.name() == name) {
                let known: Vec<&str> = entities.iter().map(|e| e.name.as_str()).collect();
                self.problem(
                    &at.clone().narrowed(format!("\"{name}\"")),
                    format!("`{}` operates on unknown entity `{name}`", method.name()),
                    "unknown entity",
                    Some(if known.is_empty() {
                        "no message is annotated with `option (svcgen.entity)` yet".to_owned()
                    } else {
                        format!("entities: {}", known.join(", "))
                    }),
                );
            }
            return None;
        };
        let entity = &entities[entity_index];
        let (entity_message, _) = messages.iter().find(|(m, _)| m.name() == name)?;
        let input = method.input();
        let output = method.output();
        let input_at = Location::new(&method.parent_file(), method.path()).child(&[2]);
        let output_at = Location::new(&method.parent_file(), method.path()).child(&[3]);
        let returns_entity = output.full_name() == entity_message.full_name();
        let expect_entity_output = |this: &mut Self| {
            if !returns_entity {
                this.problem(&output_at, format!("`{}` must return `{}`", method.name(), entity.name), "response type", Some(
                    format!("change the response to `{}` (AIP-131..134 standard methods return the resource)", entity.name),
                ));
            }
        };
        match kind {
            "create" => {
                expect_entity_output(self);
                let field = self.entity_field(method, &input, entity_message, &input_at)?;
                Some(Operation::Create {
                    entity: entity_index,
                    field,
                })
            }
            "get" => {
                expect_entity_output(self);
                self.request_has_fields(
                    method,
                    &input,
                    entity_message,
                    &entity.key_fields(),
                    &input_at,
                    "key",
                )
                .then_some(Operation::Get {
                    entity: entity_index,
                })
            }
            "update" => {
                expect_entity_output(self);
                let field = self.entity_field(method, &input, entity_message, &input_at)?;
                let mask = input.fields().find(|f| {
                    !f.is_list() && matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
                });
                let Some(mask) = mask else {
                    self.problem(
                        &input_at,
                        format!("`{}` has no google.protobuf.FieldMask field", input.name()),
                        "update request",
                        Some("add `google.protobuf.FieldMask update_mask = N;` (AIP-134)".into()),
                    );
                    return None;
                };
                Some(Operation::Update {
                    entity: entity_index,
                    field,
                    mask_field: mask.name().to_owned(),
                })
            }
            "delete" => {
                let empty = output.full_name() == "google.protobuf.Empty";
                if !empty && !returns_entity {
                    self.problem(
                        &output_at,
                        format!(
                            "`{}` must return google.protobuf.Empty or `{}`",
                            method.name(),
                            entity.name
                        ),
                        "response type",
                        Some(
                            "AIP-135: return google.protobuf.Empty, or the deleted resource".into(),
                        ),
                    );
                }
                if !self.request_has_fields(
                    method,
                    &input,
                    entity_message,
                    &entity.key_fields(),
                    &input_at,
                    "key",
                ) {
                    return None;
                }
                let version = entity.version_field.clone().filter(|v| {
                    let stored = entity_message.get_field_by_name(v);
                    input
                        .get_field_by_name(v)
                        .zip(stored)
                        .is_some_and(|(f, e)| f.kind() == e.kind() && !f.is_list())
                });
                Some(Operation::Delete {
                    entity: entity_index,
                    version,
                    returns_entity,
                })
            }
            "list" => {
                let index = Some(string_field(&details, "index")).filter(|s| !s.is_empty());
                if let Some(index) = &index
                    && !entity.indexes.iter().any(|i| &i.name == index)
                {
                    {
                        let known: Vec<&str> =
                            entity.indexes.iter().map(|i| i.name.as_str()).collect();
                        self.problem(&at.clone().narrowed(format!("\"{index}\"")), format!("`{}` queries index `{index}`, which `{}` does not declare", method.name(), entity.name), "unknown index", Some(
                            if known.is_empty() {
                                format!("declare it in {}'s entity option: indexes: {{ name: \"{index}\" pk: \"...\" sk: \"...\" }}", entity.name)
                            } else {
                                format!("indexes of {}: {}", entity.name, known.join(", "))
                            },
                        ));
                        return None;
                    }
                }
                let mut ok = self.request_has_fields(
                    method,
                    &input,
                    entity_message,
                    &entity.partition_fields(index.as_deref()),
                    &input_at,
                    "partition key",
                );
                for (field, kind) in [("page_size", Kind::Int32), ("page_token", Kind::String)] {
                    if !input
                        .get_field_by_name(field)
                        .is_some_and(|f| f.kind() == kind && !f.is_list())
                    {
                        self.problem(&input_at, format!("`{}` lacks `{} {field}`", input.name(), if kind == Kind::Int32 { "int32" } else { "string" }), "list request", Some(
                            "list requests carry `int32 page_size` and `string page_token` (AIP-158)".into(),
                        ));
                        ok = false;
                    }
                }
                let items = output.fields().find(|f| f.is_list() && matches!(f.kind(), Kind::Message(m) if m.full_name() == entity_message.full_name()));
                let token = output
                    .get_field_by_name("next_page_token")
                    .is_some_and(|f| f.kind() == Kind::String && !f.is_list());
                if items.is_none() || !token {
                    self.problem(&output_at, format!("`{}` must hold `repeated {}` and `string next_page_token`", output.name(), entity.name), "list response", Some(
                        format!("e.g. `repeated {} {} = 1; string next_page_token = 2;` (AIP-132, AIP-158)", entity.name, entity.name.to_snake_case() + "s"),
                    ));
                    ok = false;
                }
                let default_page_size = match int_field(&details, "default_page_size") {
                    0 => 50,
                    n => n,
                };
                let max_page_size = match int_field(&details, "max_page_size") {
                    0 => 1000,
                    n => n,
                };
                if default_page_size < 1 || max_page_size < default_page_size {
                    self.problem(
                        at,
                        format!("page sizes of `{}` are inconsistent", method.name()),
                        "in this annotation",
                        Some("need 1 <= default_page_size <= max_page_size".into()),
                    );
                    ok = false;
                }
                let descending = details
                    .get_field_by_name("descending")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                ok.then(|| Operation::List {
                    entity: entity_index,
                    index,
                    descending,
                    default_page_size,
                    max_page_size,
                    items_field: items.map(|f| f.name().to_owned()).unwrap_or_default(),
                    more_response_fields: output.fields().count() > 2,
                })
            }
            _ => None,
        }
    }

    /// The one request field holding the entity.
    fn entity_field(
        &mut self,
        method: &MethodDescriptor,
        input: &MessageDescriptor,
        entity: &MessageDescriptor,
        at: &Location,
    ) -> Option<String> {
        let fields: Vec<FieldDescriptor> = input
            .fields()
            .filter(|f| {
                !f.is_list()
                    && matches!(f.kind(), Kind::Message(m) if m.full_name() == entity.full_name())
            })
            .collect();
        match fields.as_slice() {
            [field] => Some(field.name().to_owned()),
            _ => {
                self.problem(
                    at,
                    format!(
                        "`{}` needs exactly one `{}` field for `{}`",
                        input.name(),
                        entity.name(),
                        method.name()
                    ),
                    "request type",
                    Some(format!(
                        "add `{} {} = N;` to {}",
                        entity.name(),
                        entity.name().to_snake_case(),
                        input.name()
                    )),
                );
                None
            }
        }
    }

    /// Whether `input` has every field of `fields` with the entity's type.
    fn request_has_fields(
        &mut self,
        method: &MethodDescriptor,
        input: &MessageDescriptor,
        entity: &MessageDescriptor,
        fields: &[&str],
        at: &Location,
        what: &str,
    ) -> bool {
        let mut ok = true;
        for name in fields {
            let Some(entity_field) = entity.get_field_by_name(name) else {
                continue;
            };
            let matches = input.get_field_by_name(name).is_some_and(|f| {
                f.kind() == entity_field.kind()
                    && f.is_list() == entity_field.is_list()
                    && f.supports_presence() == entity_field.supports_presence()
            });
            if !matches {
                self.problem(
                    at,
                    format!(
                        "`{}` lacks `{}`, which `{}` needs for the {what}",
                        input.name(),
                        name,
                        method.name()
                    ),
                    "request type",
                    Some(format!(
                        "add `{} {name} = N;` to {} (same type as {}.{name})",
                        type_name(&entity_field),
                        input.name(),
                        entity.name()
                    )),
                );
                ok = false;
            }
        }
        ok
    }
}

/// Messages stored inside entities and the oneofs of every stored message.
fn stored_types(entities: &[(MessageDescriptor, DynamicMessage)]) -> Vec<TypeRef> {
    let mut out = Vec::new();
    let mut queue: Vec<MessageDescriptor> = entities.iter().map(|(m, _)| m.clone()).collect();
    let mut seen: Vec<String> = Vec::new();
    while let Some(message) = queue.pop() {
        if seen.iter().any(|s| s == message.full_name()) {
            continue;
        }
        seen.push(message.full_name().to_owned());
        for oneof in message.oneofs().filter(|o| !o.is_synthetic()) {
            out.push(TypeRef::oneof(&message, oneof.name()));
        }
        for field in message.fields() {
            let kind = match field.kind() {
                Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
                other => other,
            };
            if let Kind::Message(m) = kind
                && !m.full_name().starts_with("google.protobuf.")
            {
                queue.push(m);
            }
        }
        if !entities
            .iter()
            .any(|(m, _)| m.full_name() == message.full_name())
        {
            out.push(TypeRef::message(&message));
        }
    }
    out.sort();
    out
}
