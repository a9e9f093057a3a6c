//! `svcgen breaking`: what a change to the protos or `svcgen.toml` breaks, compared with an
//! earlier version of the project — for clients (the wire contract), for the data already
//! stored (keys, indexes, tables, attribute names), and for the infrastructure (resources
//! CloudFormation would have to replace).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use prost_reflect::{
    DescriptorPool, EnumDescriptor, EnumValueDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    ServiceDescriptor,
};

use crate::Project;
use crate::config::FILE_NAME;
use crate::diagnostic::Location;
use crate::infra::Infrastructure;
use crate::model::Entity;

/// Who a breaking change hurts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// Existing clients (generated stubs, the wire format, JSON names).
    Client,
    /// Items already stored: they would no longer be found or read.
    StoredData,
    /// Deployed resources CloudFormation would replace rather than update.
    Infrastructure,
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::StoredData => "stored data",
            Self::Infrastructure => "infrastructure",
        })
    }
}

/// One breaking change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Who it hurts.
    pub category: Category,
    /// The rule, e.g. `field-removed`; `--allow` names it.
    pub rule: &'static str,
    /// What changed, e.g. `tasks.Task.title`; `--allow RULE:SUBJECT` names it.
    pub subject: String,
    /// `file:line:column` (or `svcgen.toml:line`) where to look, in the new version unless the
    /// element is gone.
    pub location: String,
    /// What breaks.
    pub message: String,
    /// How to avoid it.
    pub help: String,
}

impl Finding {
    /// Whether `--allow` pattern `pattern` (`RULE` or `RULE:SUBJECT`) covers this finding.
    pub fn allowed_by(&self, pattern: &str) -> bool {
        match pattern.split_once(':') {
            Some((rule, subject)) => rule == self.rule && subject == self.subject,
            None => pattern == self.rule,
        }
    }
}

/// One side of the comparison: a loaded project and where it lives.
pub struct Side<'a> {
    /// The project.
    pub project: &'a Project,
    /// Its directory.
    pub dir: &'a Path,
    /// Shown before locations in the old version, e.g. `origin/main:`.
    pub label: &'a str,
}

/// Every breaking change from `old` to `new`, in category order.
pub fn compare(old: &Side<'_>, new: &Side<'_>) -> Vec<Finding> {
    let mut findings = Findings {
        old,
        new,
        out: Vec::new(),
    };
    findings.protos();
    findings.entities();
    findings.config();
    let mut out = findings.out;
    out.sort_by(|a, b| (a.category, &a.location).cmp(&(b.category, &b.location)));
    out
}

struct Findings<'a, 'b> {
    old: &'a Side<'b>,
    new: &'a Side<'b>,
    out: Vec<Finding>,
}

/// Messages and enums of the listed files, nested ones included (map entries excluded).
fn messages(pool: &DescriptorPool, files: &[String]) -> Vec<MessageDescriptor> {
    let mut out = Vec::new();
    let mut pending: Vec<MessageDescriptor> = files
        .iter()
        .filter_map(|f| pool.get_file_by_name(f))
        .flat_map(|f| f.messages().collect::<Vec<_>>())
        .collect();
    while let Some(message) = pending.pop() {
        pending.extend(message.child_messages().filter(|m| !m.is_map_entry()));
        out.push(message);
    }
    out.sort_by(|a, b| a.full_name().cmp(b.full_name()));
    out
}

fn enums(pool: &DescriptorPool, files: &[String]) -> Vec<EnumDescriptor> {
    let mut out: Vec<EnumDescriptor> = files
        .iter()
        .filter_map(|f| pool.get_file_by_name(f))
        .flat_map(|f| f.enums().collect::<Vec<_>>())
        .collect();
    out.extend(
        messages(pool, files)
            .iter()
            .flat_map(|m| m.child_enums().collect::<Vec<_>>()),
    );
    out
}

fn services(pool: &DescriptorPool, files: &[String]) -> Vec<ServiceDescriptor> {
    files
        .iter()
        .filter_map(|f| pool.get_file_by_name(f))
        .flat_map(|f| f.services().collect::<Vec<_>>())
        .collect()
}

/// A field's type as the wire and the generated code see it.
fn field_type(field: &FieldDescriptor) -> String {
    let kind = |kind: Kind| match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        scalar => format!("{scalar:?}").to_lowercase(),
    };
    match field.kind() {
        Kind::Message(entry) if field.is_map() => format!(
            "map<{}, {}>",
            kind(entry.map_entry_key_field().kind()),
            kind(entry.map_entry_value_field().kind())
        ),
        other if field.is_list() => format!("repeated {}", kind(other)),
        other => kind(other),
    }
}

/// Full names of the enums stored (by value name) in the fields of `stored` messages.
fn stored_enums(pool: &DescriptorPool, stored: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for message in stored.iter().filter_map(|m| pool.get_message_by_name(m)) {
        for field in message.fields() {
            let kind = match field.kind() {
                Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
                other => other,
            };
            if let Kind::Enum(e) = kind {
                out.insert(e.full_name().to_owned());
            }
        }
    }
    out
}

/// Full names of the messages stored in items: entities and every message inside them.
fn stored_messages(project: &Project) -> BTreeSet<String> {
    let mut pending: Vec<MessageDescriptor> = project
        .model
        .entities
        .iter()
        .filter_map(|e| entity_message(project, e))
        .collect();
    let mut out = BTreeSet::new();
    while let Some(message) = pending.pop() {
        if message.full_name().starts_with("google.protobuf.")
            || !out.insert(message.full_name().to_owned())
        {
            continue;
        }
        for field in message.fields() {
            match field.kind() {
                Kind::Message(entry) if field.is_map() => {
                    if let Kind::Message(m) = entry.map_entry_value_field().kind() {
                        pending.push(m);
                    }
                }
                Kind::Message(m) => pending.push(m),
                _ => {}
            }
        }
    }
    out
}

fn entity_message(project: &Project, entity: &Entity) -> Option<MessageDescriptor> {
    project.compiled.pool.get_message_by_name(&entity.full_name)
}

/// The line of `key` in `[section]` of a `svcgen.toml` text ("" for the top level), 1-based.
fn toml_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = header.trim().to_owned();
        } else if current == section
            && line
                .split_once('=')
                .is_some_and(|(k, _)| k.trim().trim_matches('"') == key)
        {
            return Some(number + 1);
        }
    }
    None
}

impl Findings<'_, '_> {
    fn push(
        &mut self,
        category: Category,
        rule: &'static str,
        subject: impl Into<String>,
        location: String,
        message: String,
        help: impl Into<String>,
    ) {
        self.out.push(Finding {
            category,
            rule,
            subject: subject.into(),
            location,
            message,
            help: help.into(),
        });
    }

    fn at_new(&self, file: &prost_reflect::FileDescriptor, path: &[i32]) -> String {
        Location::new(file, path).position(&self.new.project.compiled.sources)
    }

    fn at_old(&self, file: &prost_reflect::FileDescriptor, path: &[i32]) -> String {
        let position = Location::new(file, path).position(&self.old.project.compiled.sources);
        format!("{}{position}", self.old.label)
    }

    fn protos(&mut self) {
        let old = &self.old.project.compiled;
        let new = &self.new.project.compiled;
        let stored = stored_messages(self.old.project);
        let stored_enums = stored_enums(&old.pool, &stored);
        for message in messages(&old.pool, &old.files) {
            match new.pool.get_message_by_name(message.full_name()) {
                None => self.push(
                    Category::Client,
                    "message-removed",
                    message.full_name(),
                    self.at_old(&message.parent_file(), message.path()),
                    format!("message `{}` was removed", message.full_name()),
                    "keep the message (deprecate it) while clients may still use it",
                ),
                Some(updated) => {
                    self.fields(&message, &updated, stored.contains(message.full_name()));
                }
            }
        }
        for old_enum in enums(&old.pool, &old.files) {
            match new.pool.get_enum_by_name(old_enum.full_name()) {
                None => self.push(
                    Category::Client,
                    "enum-removed",
                    old_enum.full_name(),
                    self.at_old(&old_enum.parent_file(), old_enum.path()),
                    format!("enum `{}` was removed", old_enum.full_name()),
                    "keep the enum while clients may still use it",
                ),
                Some(updated) => self.enum_values(
                    &old_enum,
                    &updated,
                    stored_enums.contains(old_enum.full_name()),
                ),
            }
        }
        for service in services(&old.pool, &old.files) {
            match new.pool.get_service_by_name(service.full_name()) {
                None => self.push(
                    Category::Client,
                    "service-removed",
                    service.full_name(),
                    self.at_old(&service.parent_file(), service.path()),
                    format!(
                        "service `{}` was removed (or its package renamed); its clients get UNIMPLEMENTED",
                        service.full_name()
                    ),
                    "keep the service until its clients have moved",
                ),
                Some(updated) => self.methods(&service, &updated),
            }
        }
    }

    fn fields(&mut self, old: &MessageDescriptor, new: &MessageDescriptor, stored: bool) {
        let message_at = self.at_new(&new.parent_file(), new.path());
        for field in old.fields() {
            let subject = field.full_name().to_owned();
            let Some(updated) = new.get_field(field.number()) else {
                if !new.reserved_ranges().any(|r| r.contains(&field.number())) {
                    self.push(
                        Category::Client,
                        "field-removed",
                        subject,
                        message_at.clone(),
                        format!(
                            "field {} `{}` of `{}` was removed without reserving its number; a later field could reuse it and old clients would misread it",
                            field.number(),
                            field.name(),
                            old.full_name()
                        ),
                        format!(
                            "add `reserved {}; reserved \"{}\";` to `{}`",
                            field.number(),
                            field.name(),
                            new.name()
                        ),
                    );
                }
                continue;
            };
            self.field_changed(old, &field, &updated, stored);
        }
        for field in new.fields() {
            if old.get_field(field.number()).is_none()
                && old.reserved_ranges().any(|r| r.contains(&field.number()))
            {
                self.push(
                    Category::Client,
                    "reserved-number-reused",
                    field.full_name(),
                    self.at_new(&field.parent_file(), field.path()),
                    format!(
                        "field `{}` uses number {}, which `{}` reserved",
                        field.name(),
                        field.number(),
                        old.full_name()
                    ),
                    "give the field an unused number",
                );
            }
        }
    }

    /// Reports a field whose type or name changed (`updated` has `field`'s number). Most of its
    /// length is the four reports' texts.
    fn field_changed(
        &mut self,
        old: &MessageDescriptor,
        field: &FieldDescriptor,
        updated: &FieldDescriptor,
        stored: bool,
    ) {
        let subject = field.full_name().to_owned();
        let at = self.at_new(&updated.parent_file(), updated.path());
        let (old_type, new_type) = (field_type(field), field_type(updated));
        let renamed = field.name() != updated.name();
        if old_type != new_type {
            let (rule, message) = if renamed {
                (
                    "field-number-reused",
                    format!(
                        "field number {} of `{}` was `{old_type} {}` and is now `{new_type} {}`; old clients and stored data read the new field wrongly",
                        field.number(),
                        old.full_name(),
                        field.name(),
                        updated.name()
                    ),
                )
            } else {
                (
                    "field-type-changed",
                    format!(
                        "field `{}` changed type from `{old_type}` to `{new_type}`",
                        field.full_name()
                    ),
                )
            };
            self.push(
                Category::Client,
                rule,
                subject.clone(),
                at.clone(),
                message,
                "add a new field with a new number and reserve the old one",
            );
            if stored {
                self.push(
                    Category::StoredData,
                    "stored-field-type-changed",
                    subject.clone(),
                    at.clone(),
                    format!(
                        "stored items hold `{}` as `{old_type}`; reading them as `{new_type}` fails",
                        field.name()
                    ),
                    "add a new field and migrate the items, or keep the type",
                );
            }
        } else if renamed {
            self.push(
                Category::Client,
                "field-renamed",
                subject.clone(),
                at.clone(),
                format!(
                    "field {} of `{}` was renamed from `{}` to `{}`: JSON clients and generated client code break",
                    field.number(),
                    old.full_name(),
                    field.name(),
                    updated.name()
                ),
                "keep the name, or add the new field and deprecate the old one",
            );
            if stored {
                self.push(
                    Category::StoredData,
                    "stored-field-renamed",
                    subject.clone(),
                    at.clone(),
                    format!(
                        "items store the field under its name: values stored as `{}` are no longer read as `{}`",
                        field.name(),
                        updated.name()
                    ),
                    "keep the name, or migrate the stored items",
                );
            }
        }
    }

    fn enum_values(&mut self, old: &EnumDescriptor, new: &EnumDescriptor, stored: bool) {
        for value in old.values() {
            if let Some(updated) = new.get_value(value.number())
                && updated.name() != value.name()
            {
                self.enum_value_renamed(old, &value, &updated, stored);
            }
            if new.get_value(value.number()).is_none()
                && !new.reserved_ranges().any(|r| r.contains(&value.number()))
            {
                self.push(
                    Category::Client,
                    "enum-value-removed",
                    value.full_name(),
                    self.at_new(&new.parent_file(), new.path()),
                    format!(
                        "value {} `{}` of `{}` was removed without reserving its number",
                        value.number(),
                        value.name(),
                        old.full_name()
                    ),
                    format!(
                        "add `reserved {}; reserved \"{}\";` to `{}`",
                        value.number(),
                        value.name(),
                        new.name()
                    ),
                );
            }
        }
    }

    /// Reports a renamed enum value: JSON clients send and read names, and items store enums by
    /// name, so values stored under the old name no longer read back.
    fn enum_value_renamed(
        &mut self,
        old: &EnumDescriptor,
        value: &EnumValueDescriptor,
        updated: &EnumValueDescriptor,
        stored: bool,
    ) {
        let at = self.at_new(&updated.parent_file(), updated.path());
        self.push(
            Category::Client,
            "enum-value-renamed",
            value.full_name(),
            at.clone(),
            format!(
                "value {} of `{}` was renamed from `{}` to `{}`: JSON clients send and expect the old name",
                value.number(),
                old.full_name(),
                value.name(),
                updated.name()
            ),
            "keep the name (deprecate the value and add a new one instead)",
        );
        if stored {
            self.push(
                Category::StoredData,
                "stored-enum-value-renamed",
                value.full_name(),
                at,
                format!(
                    "items store `{}` by name: values stored as `{}` are no longer read as `{}`",
                    old.full_name(),
                    value.name(),
                    updated.name()
                ),
                "keep the name, or migrate the stored items",
            );
        }
    }

    fn methods(&mut self, old: &ServiceDescriptor, new: &ServiceDescriptor) {
        for method in old.methods() {
            let Some(updated) = new.methods().find(|m| m.name() == method.name()) else {
                self.push(
                    Category::Client,
                    "rpc-removed",
                    method.full_name(),
                    self.at_new(&new.parent_file(), new.path()),
                    format!(
                        "RPC `{}` was removed; its clients get UNIMPLEMENTED",
                        method.full_name()
                    ),
                    "keep the RPC (deprecated) until its clients have moved",
                );
                continue;
            };
            let signature = |m: &prost_reflect::MethodDescriptor| {
                format!(
                    "({}{}) returns ({}{})",
                    if m.is_client_streaming() {
                        "stream "
                    } else {
                        ""
                    },
                    m.input().full_name(),
                    if m.is_server_streaming() {
                        "stream "
                    } else {
                        ""
                    },
                    m.output().full_name()
                )
            };
            if signature(&method) != signature(&updated) {
                self.push(
                    Category::Client,
                    "rpc-signature-changed",
                    method.full_name(),
                    self.at_new(&updated.parent_file(), updated.path()),
                    format!(
                        "RPC `{}` changed from `{}` to `{}`",
                        method.name(),
                        signature(&method),
                        signature(&updated)
                    ),
                    "add a new RPC and deprecate the old one",
                );
            }
        }
    }

    fn entities(&mut self) {
        let new_entities: BTreeMap<&str, &Entity> = self
            .new
            .project
            .model
            .entities
            .iter()
            .map(|e| (e.name.as_str(), e))
            .collect();
        for old in &self.old.project.model.entities {
            let Some(new) = new_entities.get(old.name.as_str()).copied() else {
                let at = entity_message(self.old.project, old)
                    .map(|m| self.at_old(&m.parent_file(), m.path()))
                    .unwrap_or_default();
                self.push(
                    Category::StoredData,
                    "entity-removed",
                    old.name.clone(),
                    at,
                    format!(
                        "`{}` is no longer an entity: its items in table `{}` are orphaned",
                        old.name, old.table
                    ),
                    "keep the entity annotation until its items are migrated or deleted",
                );
                continue;
            };
            let at = entity_message(self.new.project, new)
                .map(|m| self.at_new(&m.parent_file(), m.path()))
                .unwrap_or_default();
            self.entity_settings(old, new, &at);
            self.entity_indexes(old, new, &at);
        }
    }

    /// Reports changed table, key templates, TTL and version fields of an entity.
    fn entity_settings(&mut self, old: &Entity, new: &Entity, at: &str) {
        let none = String::from("(none)");
        let optional = |field: &Option<String>| field.clone().unwrap_or_else(|| none.clone());
        let not_found = "stored items are no longer found under their keys";
        let settings = [
            (
                "entity-moved",
                "the table",
                old.table.clone(),
                new.table.clone(),
                "its items stay in the old table",
            ),
            (
                "key-changed",
                "the partition-key template",
                old.pk.text.clone(),
                new.pk.text.clone(),
                not_found,
            ),
            (
                "key-changed",
                "the sort-key template",
                old.sk.text.clone(),
                new.sk.text.clone(),
                not_found,
            ),
            (
                "ttl-field-changed",
                "the TTL field",
                optional(&old.ttl_field),
                optional(&new.ttl_field),
                "stored items keep the expiry of the old field",
            ),
            (
                "version-field-changed",
                "the version field",
                optional(&old.version_field().map(str::to_owned)),
                optional(&new.version_field().map(str::to_owned)),
                "stored versions are no longer checked against the new field",
            ),
        ];
        for (rule, what, before, after, consequence) in settings {
            if before != after {
                self.push(
                    Category::StoredData,
                    rule,
                    old.name.clone(),
                    at.to_owned(),
                    format!(
                        "{what} of `{}` changed from `{before}` to `{after}`: {consequence}",
                        old.name
                    ),
                    "migrate the stored items (rewrite each one), or keep the old value",
                );
            }
        }
    }

    /// Reports added indexes and changed index key templates of an entity.
    fn entity_indexes(&mut self, old: &Entity, new: &Entity, at: &str) {
        for index in &new.indexes {
            let subject = format!("{}.{}", new.name, index.name);
            match old.indexes.iter().find(|i| i.name == index.name) {
                None => self.push(
                    Category::StoredData,
                    "index-added",
                    subject,
                    at.to_owned(),
                    format!(
                        "`{}` now writes index `{}`: items stored before are missing from it until rewritten",
                        new.name, index.name
                    ),
                    "backfill: rewrite the existing items (e.g. an update with an empty mask) after deploying",
                ),
                Some(before)
                    if before.pk.text != index.pk.text || before.sk.text != index.sk.text =>
                {
                    self.push(
                        Category::StoredData,
                        "index-key-changed",
                        subject,
                        at.to_owned(),
                        format!(
                            "index `{}` of `{}` changed from pk `{}` sk `{}` to pk `{}` sk `{}`: stored items keep their old index keys",
                            index.name,
                            new.name,
                            before.pk.text,
                            before.sk.text,
                            index.pk.text,
                            index.sk.text
                        ),
                        "rewrite the stored items after deploying, or add a new index instead",
                    );
                }
                Some(_) => {}
            }
        }
    }

    fn config(&mut self) {
        let (old, new) = (&self.old.project.config, &self.new.project.config);
        let text = std::fs::read_to_string(self.new.dir.join(FILE_NAME)).unwrap_or_default();
        let at = |section: &str, key: &str| match toml_line(&text, section, key) {
            Some(line) => format!("{FILE_NAME}:{line}"),
            None => format!("{FILE_NAME} ({section}.{key}, default)"),
        };
        let before = Infrastructure::generated(old, &self.old.project.model);
        let after = Infrastructure::generated(new, &self.new.project.model);
        for table in &before.tables {
            let (logical, before) = (&table.logical, &table.physical);
            if let Some(after) = after.tables.iter().find(|t| t.logical == *logical)
                && after.physical != *before
            {
                let after = &after.physical;
                self.push(
                    Category::StoredData,
                    "table-renamed",
                    logical.clone(),
                    at("tables", logical),
                    format!(
                        "logical table `{logical}` moved from DynamoDB table `{before}` to `{after}`: the items stay in `{before}`"
                    ),
                    "copy the items to the new table first, or keep the name",
                );
            }
        }
        let infra = [
            (
                "service-renamed",
                ("service", "name"),
                old.service.name.clone(),
                new.service.name.clone(),
                "the ECS service, task family, log group, roles and (by default) the Cloud Map namespace are named after it and are replaced",
            ),
            (
                "target-group-replaced",
                ("deploy", "port"),
                old.deploy.port.to_string(),
                new.deploy.port.to_string(),
                "a target group's port cannot be updated: CloudFormation replaces the target group and its listener rule",
            ),
            (
                "cloud-map-namespace-replaced",
                ("deploy.cloud_map", "namespace"),
                before.discovery.namespace.clone(),
                after.discovery.namespace.clone(),
                "the namespace is replaced and every client's DNS name changes",
            ),
            (
                "cloud-map-service-replaced",
                ("deploy.cloud_map", "service"),
                before.discovery.service.clone(),
                after.discovery.service.clone(),
                "the Cloud Map service is replaced and the DNS name clients use changes",
            ),
            (
                "cloud-map-record-type-changed",
                ("deploy.cloud_map", "record_type"),
                old.deploy.cloud_map.record_type.to_string(),
                new.deploy.cloud_map.record_type.to_string(),
                "a Cloud Map service's record type cannot be updated: the service is replaced",
            ),
        ];
        for (rule, (section, key), before, after, consequence) in infra {
            if before != after {
                self.push(
                    Category::Infrastructure,
                    rule,
                    format!("{section}.{key}"),
                    at(section, key),
                    format!("{section}.{key} changed from `{before}` to `{after}`: {consequence}"),
                    "plan the replacement (a new stack or a blue/green switch), or keep the value",
                );
            }
        }
    }
}

/// Why the old version could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AgainstError {
    /// A program svcgen needs (git, tar) could not be started.
    #[error("cannot run {program}: {source}")]
    Run {
        /// `git`, `git archive` or `tar`.
        program: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// `--against` names neither a directory nor a revision.
    #[error("`{against}` is neither a directory nor a git revision of {project}: {stderr}")]
    NotARevision {
        /// What `--against` said.
        against: String,
        /// The project directory.
        project: String,
        /// What git said.
        stderr: String,
    },
    /// `git archive` failed.
    #[error("git archive {against}: {stderr}")]
    Archive {
        /// The revision.
        against: String,
        /// What git said.
        stderr: String,
    },
    /// `tar` failed to extract the archive.
    #[error("tar could not extract {against}: {detail}")]
    Extract {
        /// The revision.
        against: String,
        /// What went wrong.
        detail: String,
    },
}

/// The old version's project directory: `against` itself when it is a directory, else the
/// project at git revision `against`, extracted (`git archive`) into `scratch`.
pub fn old_project_dir(
    project: &Path,
    against: &str,
    scratch: &Path,
) -> Result<PathBuf, AgainstError> {
    let as_dir = Path::new(against);
    if as_dir.is_dir() {
        return Ok(as_dir.to_owned());
    }
    let git = |args: &[&str]| -> Result<String, AgainstError> {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(project)
            .args(args)
            .output()
            .map_err(|source| AgainstError::Run {
                program: "git",
                source,
            })?;
        if !output.status.success() {
            return Err(AgainstError::NotARevision {
                against: against.to_owned(),
                project: project.display().to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{against}^{{commit}}"),
    ])?;
    let prefix = git(&["rev-parse", "--show-prefix"])?;
    let root = git(&["rev-parse", "--show-toplevel"])?;
    let archive = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["archive", "--format=tar", against])
        .output()
        .map_err(|source| AgainstError::Run {
            program: "git archive",
            source,
        })?;
    if !archive.status.success() {
        return Err(AgainstError::Archive {
            against: against.to_owned(),
            stderr: String::from_utf8_lossy(&archive.stderr).trim().to_owned(),
        });
    }
    let mut tar = std::process::Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(scratch)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| AgainstError::Run {
            program: "tar",
            source,
        })?;
    let extract = |detail: String| AgainstError::Extract {
        against: against.to_owned(),
        detail,
    };
    if let Some(mut stdin) = tar.stdin.take() {
        use std::io::Write as _;
        stdin
            .write_all(&archive.stdout)
            .map_err(|e| extract(e.to_string()))?;
    }
    let status = tar.wait().map_err(|e| extract(e.to_string()))?;
    if !status.success() {
        return Err(extract(status.to_string()));
    }
    Ok(scratch.join(prefix))
}

#[cfg(test)]
mod tests {
    use super::toml_line;

    #[test]
    fn toml_keys_are_found_in_their_section() {
        let text =
            "[service]\nname = \"a\"\n\n[deploy]\nport = 1\n[deploy.cloud_map]\nservice = \"x\"\n";
        assert_eq!(toml_line(text, "service", "name"), Some(2));
        assert_eq!(toml_line(text, "deploy", "port"), Some(5));
        assert_eq!(toml_line(text, "deploy.cloud_map", "service"), Some(7));
        assert_eq!(toml_line(text, "deploy", "service"), None);
    }
}
