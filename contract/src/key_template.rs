//! Key templates: literal text with `{field}` placeholders, e.g. `PROJECT#{project_id}`. The
//! generator validates them against the proto (pointing at the exact placeholder by its byte
//! offset); the derive renders them into key-building code.

use std::fmt;

/// A `{field}` placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    /// Field name.
    pub field: String,
    /// Byte offset of `{` within the template.
    pub offset: usize,
}

/// A parsed key template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    /// The template text.
    pub text: String,
    /// Its placeholders, in order.
    pub placeholders: Vec<Placeholder>,
}

/// A piece of a template, in order: literal text or a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment<'a> {
    /// Literal text.
    Literal(&'a str),
    /// A field's value.
    Field(&'a str),
}

/// What is malformed in a key template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyTemplateErrorKind {
    /// The template is the empty string.
    Empty,
    /// A `}` without its `{`.
    UnmatchedClose,
    /// A `{` without its `}`.
    Unclosed,
    /// `{…}` holds something other than a lower_snake_case field name.
    NotAFieldName(String),
}

/// A malformed template: what is wrong and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplateError {
    /// What is wrong.
    pub kind: KeyTemplateErrorKind,
    /// Byte offset within the template.
    pub offset: usize,
}

impl fmt::Display for KeyTemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            KeyTemplateErrorKind::Empty => f.write_str("key template is empty"),
            KeyTemplateErrorKind::UnmatchedClose => f.write_str("unmatched `}`"),
            KeyTemplateErrorKind::Unclosed => f.write_str("unclosed `{`"),
            KeyTemplateErrorKind::NotAFieldName(name) => {
                write!(f, "`{{{name}}}` is not a field name (lower_snake_case)")
            }
        }
    }
}

impl std::error::Error for KeyTemplateError {}

fn is_field_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl KeyTemplate {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, KeyTemplateError> {
        let error = |kind, offset| Err(KeyTemplateError { kind, offset });
        if text.is_empty() {
            return error(KeyTemplateErrorKind::Empty, 0);
        }
        let mut placeholders = Vec::new();
        let mut at = 0;
        while let Some(found) = text[at..].find(['{', '}']) {
            let open = at + found;
            if text.as_bytes()[open] == b'}' {
                return error(KeyTemplateErrorKind::UnmatchedClose, open);
            }
            let rest = &text[open + 1..];
            let Some(len) = rest
                .find(['}', '{'])
                .filter(|&end| rest.as_bytes()[end] == b'}')
            else {
                return error(KeyTemplateErrorKind::Unclosed, open);
            };
            let field = &rest[..len];
            if !is_field_name(field) {
                return error(KeyTemplateErrorKind::NotAFieldName(field.to_owned()), open);
            }
            placeholders.push(Placeholder {
                field: field.to_owned(),
                offset: open,
            });
            at = open + len + 2;
        }
        Ok(Self {
            text: text.to_owned(),
            placeholders,
        })
    }

    /// The literal text before the first placeholder (the `begins_with` prefix of queries).
    pub fn literal_prefix(&self) -> &str {
        let end = self
            .placeholders
            .first()
            .map_or(self.text.len(), |p| p.offset);
        &self.text[..end]
    }

    /// Field names, in order, without repeats.
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.placeholders {
            if !out.contains(&p.field.as_str()) {
                out.push(&p.field);
            }
        }
        out
    }

    /// The template as literals and fields, in order (no empty literals).
    pub fn segments(&self) -> Vec<Segment<'_>> {
        let mut out = Vec::new();
        let mut at = 0;
        for p in &self.placeholders {
            if p.offset > at {
                out.push(Segment::Literal(&self.text[at..p.offset]));
            }
            out.push(Segment::Field(&p.field));
            at = p.offset + p.field.len() + 2;
        }
        if at < self.text.len() {
            out.push(Segment::Literal(&self.text[at..]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_placeholders_and_prefix() {
        let t = KeyTemplate::parse("PROJECT#{project_id}#{id}").expect("valid");
        assert_eq!(t.literal_prefix(), "PROJECT#");
        assert_eq!(t.fields(), ["project_id", "id"]);
        assert_eq!(t.placeholders[1].offset, 21);
        assert_eq!(
            KeyTemplate::parse("PROFILE")
                .expect("valid")
                .literal_prefix(),
            "PROFILE"
        );
    }

    #[test]
    fn splits_into_literals_and_fields() {
        assert_eq!(
            KeyTemplate::parse("PROJECT#{project_id}#{id}")
                .expect("valid")
                .segments(),
            [
                Segment::Literal("PROJECT#"),
                Segment::Field("project_id"),
                Segment::Literal("#"),
                Segment::Field("id"),
            ]
        );
        assert_eq!(
            KeyTemplate::parse("{a}{b}END").expect("valid").segments(),
            [
                Segment::Field("a"),
                Segment::Field("b"),
                Segment::Literal("END")
            ]
        );
        assert_eq!(
            KeyTemplate::parse("PROFILE").expect("valid").segments(),
            [Segment::Literal("PROFILE")]
        );
    }

    #[test]
    fn locates_malformed_parts() {
        assert_eq!(KeyTemplate::parse("A#{id").expect_err("unclosed").offset, 2);
        assert_eq!(KeyTemplate::parse("A#}").expect_err("unmatched").offset, 2);
        assert_eq!(KeyTemplate::parse("A#{Id}").expect_err("case").offset, 2);
        assert_eq!(KeyTemplate::parse("{a{b}").expect_err("nested").offset, 0);
        for bad in ["", "A#{id", "A#id}", "{}", "{Id}", "{a-b}"] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            KeyTemplate::parse("A#{id")
                .expect_err("unclosed")
                .to_string(),
            "unclosed `{`"
        );
    }

    /// Arbitrary text (weighted towards the template alphabet, with multi-byte characters):
    /// parsing never panics, errors point inside the text at a character boundary, every
    /// placeholder found is `{field}` at its offset, and the segments put together give the text.
    #[test]
    fn arbitrary_templates_parse_or_fail_cleanly() {
        let cases: u64 = std::env::var("SVCGEN_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(50_000);
        let alphabet: Vec<char> = "{}{}#_az09AZ é€🦀".chars().collect();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut valid = 0;
        for _ in 0..cases {
            let len = next() % 24;
            let text: String = (0..len)
                .map(|_| alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap_or(0)])
                .collect();
            match KeyTemplate::parse(&text) {
                Ok(template) => {
                    valid += 1;
                    assert!(text.starts_with(template.literal_prefix()));
                    for p in &template.placeholders {
                        assert!(
                            text[p.offset..].starts_with(&format!("{{{}}}", p.field)),
                            "{text:?}"
                        );
                    }
                    let joined: String = template
                        .segments()
                        .iter()
                        .map(|s| match s {
                            Segment::Literal(text) => (*text).to_owned(),
                            Segment::Field(name) => format!("{{{name}}}"),
                        })
                        .collect();
                    assert_eq!(joined, text);
                }
                Err(error) => {
                    assert!(
                        error.offset <= text.len() && text.is_char_boundary(error.offset),
                        "{text:?}"
                    );
                }
            }
        }
        assert!(valid > 0, "some arbitrary templates are valid");
    }
}
