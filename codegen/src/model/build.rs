//! Building the model: collects the annotated messages and services of the project's files,
//! hands each to its validation rules, and returns the model or every problem found.

use std::collections::BTreeMap;

use prost_reflect::{FileDescriptor, Kind, MessageDescriptor, MethodDescriptor};

use super::options::{EntityOptions, OptionReader};
use super::{Entity, Model, Operation, Service, TypeRef};
use crate::compile::Compiled;
use crate::diagnostic::{Diagnostics, Location, ProtoDiagnostic, Sources};
use crate::naming;

/// Builds and validates the model.
pub fn build(compiled: &Compiled) -> Result<Model, Diagnostics> {
    let mut validator = Validator {
        sources: &compiled.sources,
        problems: Vec::new(),
        options: OptionReader::new(&compiled.pool),
    };
    let files: Vec<FileDescriptor> = compiled
        .files
        .iter()
        .filter_map(|name| compiled.pool.get_file_by_name(name))
        .collect();
    let mut annotated = Vec::new();
    for file in &files {
        for message in file.messages() {
            validator.collect_entities(&message, &mut annotated);
        }
    }
    let entities: Vec<Entity> = annotated
        .iter()
        .filter_map(|(message, options)| validator.entity(message, options))
        .collect();
    validator.check_entity_conflicts(&annotated, &entities);
    // Hand-written RPCs share one namespace: src/rpc/<name>.rs and the `<Name>Rpc` trait.
    let mut custom_names: BTreeMap<String, String> = BTreeMap::new();
    let mut services = Vec::new();
    // (service, method, descriptor) of each hand-written RPC, for its declared store access.
    let mut custom = Vec::new();
    for service in files.iter().flat_map(|f| f.services()) {
        let mut methods = Vec::new();
        for descriptor in service.methods() {
            let method = validator.method(&descriptor, &annotated, &entities);
            if matches!(method.operation, Operation::Custom { .. }) {
                validator.check_custom_name(&descriptor, &mut custom_names);
                custom.push((services.len(), methods.len(), descriptor));
            }
            methods.push(method);
        }
        services.push(Service {
            name: service.name().to_owned(),
            full_name: service.full_name().to_owned(),
            package: service.package_name().to_owned(),
            methods,
            doc: comment(&service.parent_file(), service.path()),
        });
    }
    // Declared store access may name any list RPC of the model, so it is resolved last.
    let lists: Vec<_> = services
        .iter()
        .flat_map(|s| &s.methods)
        .filter_map(|m| match &m.operation {
            Operation::List { entity, index, .. } => Some((*entity, m.name.clone(), index.clone())),
            _ => None,
        })
        .collect();
    for (service, method, descriptor) in custom {
        let uses = validator.declared_uses(&descriptor, &entities, &lists);
        services[service].methods[method].operation = Operation::Custom { uses };
    }
    let stored_types = stored_types(&annotated);
    let requests = files
        .iter()
        .flat_map(|f| f.services())
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .filter(|m| !m.is_client_streaming())
        .map(|m| m.input());
    let validated = validator.validated_messages(requests);
    if !validator.problems.is_empty() {
        return Err(Diagnostics {
            problems: validator.problems,
        });
    }
    Ok(Model {
        tables: tables(&entities),
        entities,
        services,
        stored_types,
        validated,
    })
}

/// Collects problems while the model is built.
pub(super) struct Validator<'a> {
    sources: &'a Sources,
    pub(super) problems: Vec<ProtoDiagnostic>,
    pub(super) options: OptionReader,
}

impl Validator<'_> {
    /// Records a problem at `at`.
    pub(super) fn problem(
        &mut self,
        at: &Location,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
    ) {
        let diagnostic = at.error(self.sources, message, label, help);
        self.problems.push(diagnostic);
    }

    /// The annotated messages under `message` (itself included), with their options.
    fn collect_entities(
        &mut self,
        message: &MessageDescriptor,
        out: &mut Vec<(MessageDescriptor, EntityOptions)>,
    ) {
        match self.options.entity(&message.options()) {
            None => {}
            Some(Ok(options)) => out.push((message.clone(), options)),
            Some(Err(e)) => {
                let at = super::entities::annotation(message);
                self.problem(
                    &at,
                    format!(
                        "cannot read the entity annotation of `{}`: {e}",
                        message.name()
                    ),
                    "in this annotation",
                    Some("check the annotation against svcgen/options.proto".into()),
                );
            }
        }
        for child in message.child_messages() {
            self.collect_entities(&child, out);
        }
    }

    /// Reports a hand-written RPC whose file name another service's hand-written RPC has
    /// (`seen`: file name → service).
    fn check_custom_name(
        &mut self,
        method: &MethodDescriptor,
        seen: &mut BTreeMap<String, String>,
    ) {
        let service = method.parent_service();
        let file_name = naming::snake(method.name());
        let Some(other) = seen.insert(file_name.clone(), service.full_name().to_owned()) else {
            return;
        };
        self.problem(
            &Location::new(&method.parent_file(), method.path()),
            format!(
                "hand-written RPC `{}` of `{}` has the same name as one in `{other}`",
                method.name(),
                service.full_name()
            ),
            "hand-written RPC name used twice",
            Some(format!(
                "each hand-written RPC gets its own file, src/rpc/{file_name}.rs; rename one of them"
            )),
        );
    }
}

/// The leading comment of the element at `path`, trimmed.
pub(super) fn comment(file: &FileDescriptor, path: &[i32]) -> String {
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

/// Tables with the indexes their entities use, in first-use order.
fn tables(entities: &[Entity]) -> BTreeMap<String, Vec<String>> {
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entity in entities {
        let indexes = tables.entry(entity.table.clone()).or_default();
        for index in &entity.indexes {
            if !indexes.contains(&index.name) {
                indexes.push(index.name.clone());
            }
        }
    }
    tables
}

/// Messages stored inside entities and the oneofs of every stored message.
fn stored_types(entities: &[(MessageDescriptor, EntityOptions)]) -> Vec<TypeRef> {
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
