//! Request validation: what generated code calls to check the field rules of a proto
//! (`[(svcgen.field) = {...}]`), and the answer a client gets: INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` detail listing every violation, read by any gRPC client's
//! rich-error support (e.g. grpcio-status, tonic-types).

use std::cmp::Ordering;
use std::fmt::Display;
use std::sync::OnceLock;

use prost::Message as _;
use tonic::{Code, Status};

/// The violations found in one request.
#[derive(Debug, Default)]
pub struct Violations {
    found: Vec<FieldViolation>,
}

/// Which fields of a message are checked: all, or those an update mask names.
#[derive(Clone, Copy, Debug)]
pub enum Fields<'a> {
    /// Every field.
    All,
    /// The fields named here (top-level names of an update mask).
    Only(&'a [String]),
    /// Every field but this one (checked on its own, e.g. the entity of an update).
    Skip(&'a str),
}

impl Fields<'_> {
    /// Whether the field `name` is checked.
    pub fn has(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.iter().any(|n| n == name),
            Self::Skip(skipped) => *skipped != name,
        }
    }
}

/// The string rules of one field.
#[derive(Debug)]
pub struct StringRules {
    /// Fewest characters (Unicode code points).
    pub min_len: Option<usize>,
    /// Most characters.
    pub max_len: Option<usize>,
    /// A regular expression that must match somewhere in the value.
    pub pattern: Option<Pattern>,
    /// An email address.
    pub email: bool,
    /// A hyphenated UUID.
    pub uuid: bool,
}

/// A regular expression compiled on first use (svcgen checked that it compiles).
#[derive(Debug)]
pub struct Pattern {
    source: &'static str,
    compiled: OnceLock<Option<regex_lite::Regex>>,
}

impl Pattern {
    /// The pattern `source`, for a `static`.
    pub const fn new(source: &'static str) -> Self {
        Self {
            source,
            compiled: OnceLock::new(),
        }
    }

    /// Whether it matches somewhere in `value`; a pattern that does not compile matches nothing.
    fn is_match(&self, value: &str) -> bool {
        self.compiled
            .get_or_init(|| regex_lite::Regex::new(self.source).ok())
            .as_ref()
            .is_some_and(|regex| regex.is_match(value))
    }
}

impl Violations {
    /// Runs `checks` and answers INVALID_ARGUMENT listing every violation they found.
    pub fn check(checks: impl FnOnce(&mut Self)) -> Result<(), Status> {
        let mut violations = Self::default();
        checks(&mut violations);
        violations.into_result()
    }

    /// Records that the field `field` under `path` (`""` for the request) is invalid.
    pub fn add(&mut self, path: &str, field: &str, description: impl Into<String>) {
        self.found.push(FieldViolation {
            field: join(path, field),
            description: description.into(),
        });
    }

    /// `required`: the field is set.
    pub fn required(&mut self, path: &str, field: &str, present: bool) {
        if !present {
            self.add(path, field, "value is required");
        }
    }

    /// The string rules of `field`.
    pub fn string(&mut self, path: &str, field: &str, value: &str, rules: &StringRules) {
        if rules.min_len.is_some() || rules.max_len.is_some() {
            let length = value.chars().count();
            if let Some(min) = rules.min_len.filter(|min| length < *min) {
                self.add(
                    path,
                    field,
                    format!("value length must be at least {min} characters"),
                );
            }
            if let Some(max) = rules.max_len.filter(|max| length > *max) {
                self.add(
                    path,
                    field,
                    format!("value length must be at most {max} characters"),
                );
            }
        }
        if let Some(pattern) = &rules.pattern
            && !pattern.is_match(value)
        {
            let description = format!("value does not match regex pattern `{}`", pattern.source);
            self.add(path, field, description);
        }
        if rules.email && !is_email(value) {
            self.add(path, field, "value must be a valid email address");
        }
        if rules.uuid && !is_uuid(value) {
            self.add(path, field, "value must be a valid UUID");
        }
    }

    /// `min` and `max` of a number.
    pub fn range<T: PartialOrd + Display + Copy>(
        &mut self,
        path: &str,
        field: &str,
        value: T,
        min: Option<T>,
        max: Option<T>,
    ) {
        // Incomparable (NaN) is outside every bound.
        let outside = |bound: &T, side: Ordering| {
            value
                .partial_cmp(bound)
                .is_none_or(|ordering| ordering == side)
        };
        if let Some(min) = min.filter(|min| outside(min, Ordering::Less)) {
            self.add(
                path,
                field,
                format!("value must be greater than or equal to {min}"),
            );
        }
        if let Some(max) = max.filter(|max| outside(max, Ordering::Greater)) {
            self.add(
                path,
                field,
                format!("value must be less than or equal to {max}"),
            );
        }
    }

    /// `min_items` and `max_items` of a repeated field or map with `count` elements.
    pub fn items(
        &mut self,
        path: &str,
        field: &str,
        count: usize,
        min: Option<usize>,
        max: Option<usize>,
    ) {
        if let Some(min) = min.filter(|min| count < *min) {
            self.add(
                path,
                field,
                format!("value must contain at least {min} item(s)"),
            );
        }
        if let Some(max) = max.filter(|max| count > *max) {
            self.add(
                path,
                field,
                format!("value must contain no more than {max} item(s)"),
            );
        }
    }

    /// `defined_only` of an enum.
    pub fn defined(&mut self, path: &str, field: &str, defined: bool) {
        if !defined {
            self.add(path, field, "value must be one of the defined enum values");
        }
    }

    fn into_result(self) -> Result<(), Status> {
        if self.found.is_empty() {
            return Ok(());
        }
        let message = format!(
            "invalid request: {}",
            self.found
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let details = RpcStatus {
            code: Code::InvalidArgument as i32,
            message: message.clone(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.BadRequest".to_owned(),
                value: BadRequest {
                    field_violations: self.found,
                }
                .encode_to_vec(),
            }],
        };
        Err(Status::with_details(
            Code::InvalidArgument,
            message,
            details.encode_to_vec().into(),
        ))
    }
}

/// The path of `field` inside the message at `path`.
pub fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// The HTML standard's "valid email address": `local@domain`, the local part from its set of
/// characters, the domain dot-separated labels of letters, digits and inner hyphens (≤ 63).
fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    local_ok && domain.split('.').all(label_ok)
}

/// `8-4-4-4-12` hexadecimal digits, any case.
fn is_uuid(value: &str) -> bool {
    value.len() == 36
        && value.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `google.rpc.Status`, the payload of the `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// `google.rpc.BadRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct BadRequest {
    #[prost(message, repeated, tag = "1")]
    field_violations: Vec<FieldViolation>,
}

/// `google.rpc.BadRequest.FieldViolation`.
#[derive(Clone, PartialEq, prost::Message)]
struct FieldViolation {
    #[prost(string, tag = "1")]
    field: String,
    #[prost(string, tag = "2")]
    description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_violation_is_in_the_bad_request_detail() {
        static SLUG: Pattern = Pattern::new("^[a-z]+$");
        let rules = StringRules {
            min_len: Some(2),
            max_len: Some(3),
            pattern: Some(Pattern::new("^[a-z]+$")),
            email: false,
            uuid: false,
        };
        let status = Violations::check(|v| {
            v.required("", "title", false);
            v.string("task", "slug", "ÄBCD", &rules);
            v.range("", "priority", 7_i32, Some(0), Some(5));
            v.items("", "tags", 0, Some(1), None);
        })
        .expect_err("violations");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = RpcStatus::decode(status.details()).expect("google.rpc.Status");
        assert_eq!(details.code, Code::InvalidArgument as i32);
        let bad = BadRequest::decode(details.details[0].value.as_slice()).expect("BadRequest");
        let found: Vec<(&str, &str)> = bad
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("title", "value is required"),
                ("task.slug", "value length must be at most 3 characters"),
                ("task.slug", "value does not match regex pattern `^[a-z]+$`"),
                ("priority", "value must be less than or equal to 5"),
                ("tags", "value must contain at least 1 item(s)"),
            ]
        );
        assert!(SLUG.is_match("abc") && !SLUG.is_match("ab1"));
        let nan = Violations::check(|v| v.range("", "weight", f64::NAN, Some(0.5), None));
        assert!(nan.is_err(), "NaN is within no bounds");
        assert!(Violations::check(|v| v.required("", "title", true)).is_ok());
    }

    #[test]
    fn emails_and_uuids() {
        for good in ["a@b", "first.last+tag@example.co.uk", "x@a-b.c"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "", "a", "@b", "a@", "a@-b.c", "a@b..c", "a b@c", "a@b@c", "ä@b",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(is_uuid("0190C2A4-7d1e-7000-8000-00000000000a"));
        for bad in [
            "",
            "0190c2a47d1e70008000000000000000000a",
            "0190c2a4-7d1e-7000-8000-00000000000g",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }
}
