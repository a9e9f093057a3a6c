//! Field rules (`[(svcgen.field) = {...}]`): read for every message a request can hold, checked
//! against the field's type (a rule that cannot apply, bounds that exclude every value and
//! patterns that do not compile are located diagnostics), and kept for the messages that need
//! checking: those with rules and those holding such messages.

use std::collections::BTreeMap;

use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};

use super::build::Validator;
use super::options::{FIELD_EXTENSION, FIELD_OPTIONS, FieldRules};
use super::{RustType, ValidatedField, ValidatedMessage, ValueKind, ValueShape};
use crate::diagnostic::Location;

impl Validator<'_> {
    /// The messages reachable from `roots` (the requests of unary RPCs) that have rules to
    /// check, in a stable order.
    pub(super) fn validated_messages(
        &mut self,
        roots: impl IntoIterator<Item = MessageDescriptor>,
    ) -> Vec<ValidatedMessage> {
        let mut reachable: BTreeMap<String, MessageDescriptor> = BTreeMap::new();
        let mut queue: Vec<MessageDescriptor> = roots.into_iter().collect();
        while let Some(message) = queue.pop() {
            if message.full_name().starts_with("google.protobuf.")
                || reachable.contains_key(message.full_name())
            {
                continue;
            }
            queue.extend(message.fields().filter_map(|f| message_kind(&f)));
            reachable.insert(message.full_name().to_owned(), message);
        }
        let mut messages: Vec<ValidatedMessage> = reachable
            .values()
            .map(|message| ValidatedMessage {
                full_name: message.full_name().to_owned(),
                rust: RustType::of(message),
                field_names: message.fields().map(|f| f.name().to_owned()).collect(),
                fields: message
                    .fields()
                    .filter_map(|field| self.field(&field))
                    .collect(),
            })
            .collect();
        // A message needs checking when a field has rules or holds a message that does.
        loop {
            let needed: Vec<String> = messages
                .iter()
                .filter(|m| m.fields.iter().any(ValidatedField::needs_checking))
                .map(|m| m.full_name.clone())
                .collect();
            let mut changed = false;
            for field in messages.iter_mut().flat_map(|m| &mut m.fields) {
                if let ValueKind::Message { full_name, checked } = &mut field.kind
                    && !*checked
                    && needed.contains(full_name)
                {
                    *checked = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for message in &mut messages {
            message.fields.retain(ValidatedField::needs_checking);
        }
        messages.retain(|m| !m.fields.is_empty());
        messages
    }

    /// One field with its rules, checked against its type; `None` for a field that can hold
    /// neither rules nor a checked message.
    fn field(&mut self, field: &FieldDescriptor) -> Option<ValidatedField> {
        let at = Location::new(&field.parent_file(), field.path())
            .child(&[FIELD_OPTIONS, FIELD_EXTENSION]);
        let rules = match self.options.field(&field.options()) {
            None => FieldRules::default(),
            Some(Ok(rules)) => rules,
            Some(Err(e)) => {
                self.problem(
                    &at,
                    format!("cannot read the rules of `{}`: {e}", field.name()),
                    "in this annotation",
                    Some("check the annotation against svcgen/options.proto".into()),
                );
                return None;
            }
        };
        let shape = if field.is_map() {
            ValueShape::Map
        } else if field.cardinality() == Cardinality::Repeated {
            ValueShape::Repeated
        } else if field.supports_presence() {
            ValueShape::Optional
        } else {
            ValueShape::Singular
        };
        let kind = value_kind(&element_kind(field));
        if rules != FieldRules::default() {
            if let Some(problem) = misfit(&rules, shape, &kind) {
                self.problem(
                    &at,
                    format!("field `{}`: {problem}", field.name()),
                    "this rule",
                    Some("see FieldRules in svcgen/options.proto for which rules apply to which types".into()),
                );
                return None;
            }
            if field
                .containing_oneof()
                .is_some_and(|oneof| !oneof.is_synthetic())
            {
                self.problem(
                    &at,
                    format!(
                        "field `{}` is a member of a oneof; svcgen checks rules on other fields only",
                        field.name()
                    ),
                    "rules on a oneof member",
                    Some("move the rules to a field outside the oneof, or check the oneof in the check hook".into()),
                );
                return None;
            }
        }
        let holds_message = matches!(kind, ValueKind::Message { .. });
        (rules != FieldRules::default() || holds_message).then(|| ValidatedField {
            name: field.name().to_owned(),
            shape,
            kind,
            rules,
        })
    }
}

impl ValidatedField {
    /// Whether checking the field does anything: it has rules or holds a checked message.
    fn needs_checking(&self) -> bool {
        self.rules != FieldRules::default()
            || matches!(self.kind, ValueKind::Message { checked: true, .. })
    }
}

/// The kind of each value a field holds: a map's values, a repeated field's elements.
fn element_kind(field: &FieldDescriptor) -> Kind {
    match field.kind() {
        Kind::Message(entry) if field.is_map() => entry.map_entry_value_field().kind(),
        other => other,
    }
}

/// The message a field holds (a map's value), if any.
fn message_kind(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    match element_kind(field) {
        Kind::Message(message) => Some(message),
        _ => None,
    }
}

fn value_kind(kind: &Kind) -> ValueKind {
    match kind {
        Kind::String => ValueKind::String,
        Kind::Bytes => ValueKind::Bytes,
        Kind::Bool => ValueKind::Bool,
        Kind::Float | Kind::Double => ValueKind::Float,
        Kind::Uint32 | Kind::Fixed32 => ValueKind::Int {
            unsigned: true,
            bits: 32,
        },
        Kind::Uint64 | Kind::Fixed64 => ValueKind::Int {
            unsigned: true,
            bits: 64,
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => ValueKind::Int {
            unsigned: false,
            bits: 32,
        },
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => ValueKind::Int {
            unsigned: false,
            bits: 64,
        },
        Kind::Enum(e) => ValueKind::Enum {
            values: e.values().map(|v| v.number()).collect(),
        },
        Kind::Message(m) => ValueKind::Message {
            full_name: m.full_name().to_owned(),
            checked: false,
        },
    }
}

/// Why `rules` cannot apply to a field of this shape and kind, or bound nothing sensible.
fn misfit(rules: &FieldRules, shape: ValueShape, kind: &ValueKind) -> Option<String> {
    let single = matches!(shape, ValueShape::Singular | ValueShape::Optional);
    if rules.has_string_rules() && !(single && *kind == ValueKind::String) {
        return Some(
            "min_len, max_len, pattern, email and uuid apply to singular string fields".into(),
        );
    }
    let number = matches!(kind, ValueKind::Int { .. } | ValueKind::Float);
    if (rules.min.is_some() || rules.max.is_some()) && !(single && number) {
        return Some("min and max apply to singular number fields".into());
    }
    if (rules.min_items.is_some() || rules.max_items.is_some())
        && !matches!(shape, ValueShape::Repeated | ValueShape::Map)
    {
        return Some("min_items and max_items apply to repeated fields and maps".into());
    }
    if rules.defined_only && !matches!(kind, ValueKind::Enum { .. }) {
        return Some("defined_only applies to enum fields".into());
    }
    if rules.output_only && (rules.required || rules.immutable) {
        return Some("an output-only field is set by the server: it cannot be required or immutable in requests".into());
    }
    if let (Some(min), Some(max)) = (rules.min_len, rules.max_len)
        && min > max
    {
        return Some(format!(
            "min_len {min} is greater than max_len {max}: no value can pass"
        ));
    }
    if let (Some(min), Some(max)) = (rules.min_items, rules.max_items)
        && min > max
    {
        return Some(format!(
            "min_items {min} is greater than max_items {max}: no value can pass"
        ));
    }
    if let (Some(min), Some(max)) = (rules.min, rules.max)
        && min > max
    {
        return Some(format!(
            "min {min} is greater than max {max}: no value can pass"
        ));
    }
    if *kind == ValueKind::Float {
        for bound in [rules.min, rules.max].into_iter().flatten() {
            // Finite and within `float`'s range, so that the bound is a literal of either type.
            if !bound.is_finite() || bound.abs() > f64::from(f32::MAX) {
                return Some(format!(
                    "bound {bound} is not a finite number a float field can hold"
                ));
            }
        }
    }
    if let ValueKind::Int { unsigned, bits } = kind {
        // Whole numbers up to 2^53 are exact in a double; the type's own range may be smaller.
        let limit = 2f64.powi((*bits).min(53) as i32 - i32::from(!*unsigned && *bits == 32));
        let lowest = if *unsigned { 0.0 } else { -limit };
        for bound in [rules.min, rules.max].into_iter().flatten() {
            if bound.fract() != 0.0 || !bound.is_finite() {
                return Some(format!(
                    "bound {bound} of an integer field is not a whole number"
                ));
            }
            if bound < lowest || bound >= limit {
                return Some(format!(
                    "bound {bound} is outside what this {}integer field can hold exactly",
                    if *unsigned { "unsigned " } else { "" }
                ));
            }
        }
    }
    if !rules.pattern.is_empty()
        && let Err(e) = regex_lite::Regex::new(&rules.pattern)
    {
        return Some(format!("pattern {:?} does not compile: {e}", rules.pattern));
    }
    None
}
