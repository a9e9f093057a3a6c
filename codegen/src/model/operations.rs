//! Operation rules: an RPC's `svcgen.operation` names a known entity, and its request and
//! response have the shape the operation needs (AIP-131..135 standard methods, AIP-158
//! pagination, AIP-134 field masks). RPCs without an operation are hand-written.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use super::build::{Validator, comment};
use super::entities::type_name;
use super::options::{
    EntityOperation, EntityOptions, ListOperation, METHOD_OPTIONS, OPERATION_EXTENSION,
    OperationKind, OperationOptions,
};
use super::{Access, AccessOperation, Entity, EntityId, Method, Operation, RustType};
use crate::diagnostic::Location;
use crate::naming;

/// svcgen's page sizes when the annotation leaves them at 0.
const DEFAULT_PAGE_SIZE: i32 = 50;
const MAX_PAGE_SIZE: i32 = 1000;

/// What an operation's rules look at: the RPC, its types and the entity it names.
struct Rpc<'a> {
    method: &'a MethodDescriptor,
    annotation: Location,
    input: MessageDescriptor,
    output: MessageDescriptor,
    input_at: Location,
    output_at: Location,
    id: EntityId,
    entity: &'a Entity,
    message: &'a MessageDescriptor,
}

impl Rpc<'_> {
    fn returns_entity(&self) -> bool {
        self.output.full_name() == self.message.full_name()
    }
}

impl Validator<'_> {
    /// The model of one RPC; problems are reported, and an RPC whose operation is invalid is
    /// treated as hand-written so that validation can go on.
    pub(super) fn method(
        &mut self,
        method: &MethodDescriptor,
        annotated: &[(MessageDescriptor, EntityOptions)],
        entities: &[Entity],
    ) -> Method {
        let file = method.parent_file();
        let at = Location::new(&file, method.path()).child(&[METHOD_OPTIONS, OPERATION_EXTENSION]);
        let operation = match self.options.operation(&method.options()) {
            None => None,
            Some(Ok(options)) => self.operation(method, at.clone(), &options, annotated, entities),
            Some(Err(e)) => {
                self.problem(
                    &at,
                    format!(
                        "cannot read the operation annotation of `{}`: {e}",
                        method.name()
                    ),
                    "in this annotation",
                    Some("check the annotation against svcgen/options.proto".into()),
                );
                None
            }
        };
        let streaming = method.is_client_streaming() || method.is_server_streaming();
        if streaming && operation.is_some() {
            self.problem(
                &at,
                format!(
                    "`{}` streams, but its operation is a generated one; svcgen generates unary standard methods",
                    method.name()
                ),
                "operation of a streaming RPC",
                Some(
                    "mark it hand-written (`custom: { uses: [...] }`) and implement the stream in src/rpc/, or remove `stream`"
                        .into(),
                ),
            );
        }
        Method {
            name: method.name().to_owned(),
            input: RustType::of(&method.input()),
            input_name: method.input().full_name().to_owned(),
            output: RustType::of(&method.output()),
            operation: operation.unwrap_or(Operation::Custom { uses: Vec::new() }),
            client_streaming: method.is_client_streaming(),
            server_streaming: method.is_server_streaming(),
            doc: comment(&file, method.path()),
        }
    }

    fn operation(
        &mut self,
        method: &MethodDescriptor,
        at: Location,
        options: &OperationOptions,
        annotated: &[(MessageDescriptor, EntityOptions)],
        entities: &[Entity],
    ) -> Option<Operation> {
        let entity_name = match options.kind.as_ref()? {
            OperationKind::Custom(_) => return None,
            OperationKind::Create(EntityOperation { entity })
            | OperationKind::Get(EntityOperation { entity })
            | OperationKind::Update(EntityOperation { entity })
            | OperationKind::Delete(EntityOperation { entity })
            | OperationKind::List(ListOperation { entity, .. }) => entity,
        };
        let Some(index) = entities.iter().position(|e| &e.name == entity_name) else {
            // An entity whose own annotation is invalid has been reported already.
            if !annotated.iter().any(|(m, _)| m.name() == entity_name) {
                self.unknown_entity(method, &at, entity_name, entities);
            }
            return None;
        };
        let (message, _) = annotated.iter().find(|(m, _)| m.name() == entity_name)?;
        let rpc_at = Location::new(&method.parent_file(), method.path());
        let rpc = Rpc {
            method,
            annotation: at,
            input: method.input(),
            output: method.output(),
            input_at: rpc_at.child(&[2]),
            output_at: rpc_at.child(&[3]),
            id: EntityId(index),
            entity: &entities[index],
            message,
        };
        match options.kind.as_ref()? {
            OperationKind::Create(_) => self.create(&rpc),
            OperationKind::Get(_) => self.get(&rpc),
            OperationKind::Update(_) => self.update(&rpc),
            OperationKind::Delete(_) => self.delete(&rpc),
            OperationKind::List(list) => self.list(&rpc, list),
            OperationKind::Custom(_) => None,
        }
    }

    /// The store access a hand-written RPC declares (`custom: { uses: [...] }`), resolved
    /// against the entities and every list RPC of the model (`lists`: entity, RPC, index).
    pub(super) fn declared_uses(
        &mut self,
        method: &MethodDescriptor,
        entities: &[Entity],
        lists: &[(EntityId, String, Option<String>)],
    ) -> Vec<Access> {
        let uses = match self.options.operation(&method.options()) {
            Some(Ok(options)) => match options.kind {
                Some(OperationKind::Custom(custom)) => custom.uses,
                _ => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        let at = Location::new(&method.parent_file(), method.path())
            .child(&[METHOD_OPTIONS, OPERATION_EXTENSION]);
        let mut resolved = Vec::new();
        for declared in &uses {
            let Some((entity_name, operation)) = declared.split_once('.') else {
                self.problem(
                    &at,
                    format!(
                        "`{declared}` in `uses` of `{}` names no operation",
                        method.name()
                    ),
                    "declared store access",
                    Some("write `<Entity>.<operation>`, e.g. \"Task.get\"".into()),
                );
                continue;
            };
            let Some(index) = entities.iter().position(|e| e.name == entity_name) else {
                let known: Vec<&str> = entities.iter().map(|e| e.name.as_str()).collect();
                self.problem(
                    &at,
                    format!(
                        "`{declared}` in `uses` of `{}`: no entity `{entity_name}`",
                        method.name()
                    ),
                    "declared store access",
                    Some(format!("entities: {}", known.join(", "))),
                );
                continue;
            };
            let entity = EntityId(index);
            let operation = match operation {
                "create" => AccessOperation::Create,
                "get" => AccessOperation::Get,
                "update" => AccessOperation::Update,
                "delete" => AccessOperation::Delete,
                "check" => AccessOperation::Check,
                "batch_get" => AccessOperation::BatchGet,
                other => match lists
                    .iter()
                    .find(|(e, name, _)| *e == entity && name == other)
                {
                    Some((_, name, index)) => AccessOperation::List {
                        method: name.clone(),
                        index: index.clone(),
                    },
                    None => {
                        let mut choices =
                            vec!["create", "get", "update", "delete", "check", "batch_get"];
                        choices.extend(
                            lists
                                .iter()
                                .filter(|(e, ..)| *e == entity)
                                .map(|(_, n, _)| n.as_str()),
                        );
                        self.problem(
                            &at,
                            format!(
                                "`{declared}` in `uses` of `{}`: `{entity_name}` has no operation `{other}`",
                                method.name()
                            ),
                            "declared store access",
                            Some(format!(
                                "use one of: {} (a list RPC's name stands for its query)",
                                choices.join(", ")
                            )),
                        );
                        continue;
                    }
                },
            };
            resolved.push(Access { entity, operation });
        }
        resolved.sort();
        resolved.dedup();
        resolved
    }

    fn unknown_entity(
        &mut self,
        method: &MethodDescriptor,
        at: &Location,
        name: &str,
        entities: &[Entity],
    ) {
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

    /// Reports a response that is not the entity (standard methods return the resource).
    fn expect_entity_output(&mut self, rpc: &Rpc<'_>) {
        if !rpc.returns_entity() {
            let entity = &rpc.entity.name;
            self.problem(&rpc.output_at, format!("`{}` must return `{entity}`", rpc.method.name()), "response type", Some(
                format!("change the response to `{entity}` (AIP-131..134 standard methods return the resource)"),
            ));
        }
    }

    fn create(&mut self, rpc: &Rpc<'_>) -> Option<Operation> {
        self.expect_entity_output(rpc);
        let field = self.entity_field(rpc)?;
        Some(Operation::Create {
            entity: rpc.id,
            field,
        })
    }

    fn get(&mut self, rpc: &Rpc<'_>) -> Option<Operation> {
        self.expect_entity_output(rpc);
        self.request_has_fields(rpc, &rpc.entity.key_fields(), "key")
            .then_some(Operation::Get { entity: rpc.id })
    }

    fn update(&mut self, rpc: &Rpc<'_>) -> Option<Operation> {
        self.expect_entity_output(rpc);
        let field = self.entity_field(rpc)?;
        let mask = rpc.input.fields().find(|f| {
            !f.is_list()
                && matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
        });
        let Some(mask) = mask else {
            self.problem(
                &rpc.input_at,
                format!(
                    "`{}` has no google.protobuf.FieldMask field",
                    rpc.input.name()
                ),
                "update request",
                Some("add `google.protobuf.FieldMask update_mask = N;` (AIP-134)".into()),
            );
            return None;
        };
        Some(Operation::Update {
            entity: rpc.id,
            field,
            mask_field: mask.name().to_owned(),
        })
    }

    fn delete(&mut self, rpc: &Rpc<'_>) -> Option<Operation> {
        let empty = rpc.output.full_name() == "google.protobuf.Empty";
        if !empty && !rpc.returns_entity() {
            self.problem(
                &rpc.output_at,
                format!(
                    "`{}` must return google.protobuf.Empty or `{}`",
                    rpc.method.name(),
                    rpc.entity.name
                ),
                "response type",
                Some("AIP-135: return google.protobuf.Empty, or the deleted resource".into()),
            );
        }
        if !self.request_has_fields(rpc, &rpc.entity.key_fields(), "key") {
            return None;
        }
        // The request may carry the version to check; it must have the stored field's type.
        let version = rpc.entity.version_field().filter(|v| {
            let stored = rpc.message.get_field_by_name(v);
            rpc.input
                .get_field_by_name(v)
                .zip(stored)
                .is_some_and(|(f, e)| f.kind() == e.kind() && !f.is_list())
        });
        Some(Operation::Delete {
            entity: rpc.id,
            version: version.map(str::to_owned),
            returns_entity: rpc.returns_entity(),
        })
    }

    fn list(&mut self, rpc: &Rpc<'_>, options: &ListOperation) -> Option<Operation> {
        let entity = rpc.entity;
        let index = Some(options.index.clone()).filter(|s| !s.is_empty());
        if let Some(index) = &index
            && !entity.indexes.iter().any(|i| &i.name == index)
        {
            let known: Vec<&str> = entity.indexes.iter().map(|i| i.name.as_str()).collect();
            self.problem(&rpc.annotation.clone().narrowed(format!("\"{index}\"")), format!("`{}` queries index `{index}`, which `{}` does not declare", rpc.method.name(), entity.name), "unknown index", Some(
                if known.is_empty() {
                    format!("declare it in {}'s entity option: indexes: {{ name: \"{index}\" pk: \"...\" sk: \"...\" }}", entity.name)
                } else {
                    format!("indexes of {}: {}", entity.name, known.join(", "))
                },
            ));
            return None;
        }
        let mut ok = self.request_has_fields(
            rpc,
            &entity.partition_fields(index.as_deref()),
            "partition key",
        );
        ok &= self.list_request_has_paging(rpc);
        let items = rpc.output.fields().find(|f| {
            f.is_list()
                && matches!(f.kind(), Kind::Message(m) if m.full_name() == rpc.message.full_name())
        });
        let token = rpc
            .output
            .get_field_by_name("next_page_token")
            .is_some_and(|f| f.kind() == Kind::String && !f.is_list());
        if items.is_none() || !token {
            self.problem(
                &rpc.output_at,
                format!(
                    "`{}` must hold `repeated {}` and `string next_page_token`",
                    rpc.output.name(),
                    entity.name
                ),
                "list response",
                Some(format!(
                    "e.g. `repeated {} {} = 1; string next_page_token = 2;` (AIP-132, AIP-158)",
                    entity.name,
                    naming::snake(&entity.name) + "s"
                )),
            );
            ok = false;
        }
        let default_page_size = match options.default_page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n,
        };
        let max_page_size = match options.max_page_size {
            0 => MAX_PAGE_SIZE,
            n => n,
        };
        if default_page_size < 1 || max_page_size < default_page_size {
            self.problem(
                &rpc.annotation,
                format!("page sizes of `{}` are inconsistent", rpc.method.name()),
                "in this annotation",
                Some("need 1 <= default_page_size <= max_page_size".into()),
            );
            ok = false;
        }
        ok.then(|| Operation::List {
            entity: rpc.id,
            index,
            descending: options.descending,
            default_page_size,
            max_page_size,
            items_field: items.map(|f| f.name().to_owned()).unwrap_or_default(),
            more_response_fields: rpc.output.fields().count() > 2,
        })
    }

    /// Whether a list request carries `int32 page_size` and `string page_token` (AIP-158).
    fn list_request_has_paging(&mut self, rpc: &Rpc<'_>) -> bool {
        let mut ok = true;
        for (field, kind, type_name) in [
            ("page_size", Kind::Int32, "int32"),
            ("page_token", Kind::String, "string"),
        ] {
            if !rpc
                .input
                .get_field_by_name(field)
                .is_some_and(|f| f.kind() == kind && !f.is_list())
            {
                self.problem(
                    &rpc.input_at,
                    format!("`{}` lacks `{type_name} {field}`", rpc.input.name()),
                    "list request",
                    Some(
                        "list requests carry `int32 page_size` and `string page_token` (AIP-158)"
                            .into(),
                    ),
                );
                ok = false;
            }
        }
        ok
    }

    /// The one request field holding the entity.
    fn entity_field(&mut self, rpc: &Rpc<'_>) -> Option<String> {
        let entity = rpc.message;
        let fields: Vec<FieldDescriptor> = rpc
            .input
            .fields()
            .filter(|f| {
                !f.is_list()
                    && matches!(f.kind(), Kind::Message(m) if m.full_name() == entity.full_name())
            })
            .collect();
        if let [field] = fields.as_slice() {
            return Some(field.name().to_owned());
        }
        self.problem(
            &rpc.input_at,
            format!(
                "`{}` needs exactly one `{}` field for `{}`",
                rpc.input.name(),
                entity.name(),
                rpc.method.name()
            ),
            "request type",
            Some(format!(
                "add `{} {} = N;` to {}",
                entity.name(),
                naming::snake(entity.name()),
                rpc.input.name()
            )),
        );
        None
    }

    /// Whether the request has every field of `fields` with the entity's type.
    fn request_has_fields(&mut self, rpc: &Rpc<'_>, fields: &[&str], what: &str) -> bool {
        let mut ok = true;
        for name in fields {
            let Some(entity_field) = rpc.message.get_field_by_name(name) else {
                continue;
            };
            let matches = rpc.input.get_field_by_name(name).is_some_and(|f| {
                f.kind() == entity_field.kind()
                    && f.is_list() == entity_field.is_list()
                    && f.supports_presence() == entity_field.supports_presence()
            });
            if !matches {
                self.problem(
                    &rpc.input_at,
                    format!(
                        "`{}` lacks `{}`, which `{}` needs for the {what}",
                        rpc.input.name(),
                        name,
                        rpc.method.name()
                    ),
                    "request type",
                    Some(format!(
                        "add `{} {name} = N;` to {} (same type as {}.{name})",
                        type_name(&entity_field),
                        rpc.input.name(),
                        rpc.message.name()
                    )),
                );
                ok = false;
            }
        }
        ok
    }
}
