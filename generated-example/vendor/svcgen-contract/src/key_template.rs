//! Key templates: literal text with `{field}` placeholders, e.g. `PROJECT#{project_id}`. The
//! generator validates them against the proto (pointing at the exact placeholder by its byte
//! offset); the derive renders them into key-building code. A template is only accepted when it
//! is unambiguous ([`KeyTemplate::check_unambiguous`]): every literal between two placeholders
//! holds a separator that encoded values never contain, so a key splits back into its values.

use std::fmt;

use crate::key_encoding::is_separator;

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

/// Two neighbouring placeholders of a template that different values could fill to the same
/// text: they are adjacent, or the literal between them has no separator (`{a}-{b}`: `a = "x-y",
/// b = "z"` and `a = "x", b = "y-z"` both give `x-y-z`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateAmbiguity {
    /// The first placeholder's field.
    pub before: String,
    /// The literal between the two placeholders (empty when they are adjacent).
    pub between: String,
    /// The second placeholder's field.
    pub after: String,
    /// Byte offset of the first placeholder's `{` within the template.
    pub offset: usize,
}

impl TemplateAmbiguity {
    /// The ambiguous part of the template as written: `{a}{b}` or `{a}-{b}`.
    pub fn source_text(&self) -> String {
        format!("{{{}}}{}{{{}}}", self.before, self.between, self.after)
    }
}

impl fmt::Display for TemplateAmbiguity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.between.is_empty() {
            write!(
                f,
                "placeholders `{{{}}}` and `{{{}}}` are adjacent, so different values can give the same key",
                self.before, self.after
            )
        } else {
            write!(
                f,
                "`{}` between `{{{}}}` and `{{{}}}` holds no separator, so different values can give the same key",
                self.between, self.before, self.after
            )
        }
    }
}

impl std::error::Error for TemplateAmbiguity {}

/// How to write an unambiguous template, for diagnostics.
pub const SEPARATOR_HELP: &str = "put a separator between placeholders, e.g. `{a}#{b}`: any ASCII character except letters, digits, `-_.~` and `%`; values have these characters percent-encoded, so a separator never comes from a value";

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

    /// Whether one template's literal prefix is a prefix of the other's (an empty prefix
    /// overlaps every prefix). Only then can the two templates render the same key, or can a
    /// `begins_with` query for one template's prefix find keys of the other.
    pub fn prefix_overlaps(&self, other: &KeyTemplate) -> bool {
        let (a, b) = (self.literal_prefix(), other.literal_prefix());
        a.starts_with(b) || b.starts_with(a)
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

    /// Checks that different values always fill the template to different keys: each literal
    /// between two placeholders holds a [separator](is_separator). Text before the first and
    /// after the last placeholder is fixed, so it is unrestricted.
    pub fn check_unambiguous(&self) -> Result<(), TemplateAmbiguity> {
        for pair in self.placeholders.windows(2) {
            let [first, second] = pair else { continue };
            let between = &self.text[first.offset + first.field.len() + 2..second.offset];
            if !between.chars().any(is_separator) {
                return Err(TemplateAmbiguity {
                    before: first.field.clone(),
                    between: between.to_owned(),
                    after: second.field.clone(),
                    offset: first.offset,
                });
            }
        }
        Ok(())
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
    use std::collections::HashMap;

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

    #[test]
    fn templates_need_a_separator_between_placeholders() {
        let check = |text: &str| {
            KeyTemplate::parse(text)
                .expect("well-formed")
                .check_unambiguous()
        };
        for fine in [
            "PROJECT#{project_id}",
            "{id}",
            "{a}#{b}",
            "A{a}-x/y{b}%:{c}SUFFIX",
            "{a}%#{b}",
            "PREFIX-{a}#{a}-",
            "CONST",
        ] {
            assert_eq!(check(fine), Ok(()), "{fine}");
        }
        let adjacent = check("X#{a}{b}").expect_err("adjacent");
        assert_eq!(
            (
                adjacent.before.as_str(),
                adjacent.between.as_str(),
                adjacent.after.as_str()
            ),
            ("a", "", "b")
        );
        assert_eq!(adjacent.offset, 2);
        assert_eq!(adjacent.source_text(), "{a}{b}");
        assert!(adjacent.to_string().contains("are adjacent"), "{adjacent}");
        for (text, between) in [
            ("{a}-{b}", "-"),
            ("{a}#{b}%{c}", "%"),
            ("{a}é{b}", "é"),
            ("{a}x.y~{b}", "x.y~"),
        ] {
            let error = check(text).expect_err(text);
            assert_eq!(error.between, between, "{text}");
            assert!(text.contains(&error.source_text()), "{text}");
        }
    }

    #[test]
    fn prefixes_overlap_when_one_starts_the_other() {
        let t = |text: &str| KeyTemplate::parse(text).expect("valid");
        assert!(t("ORDER#{id}").prefix_overlaps(&t("ORDER#N#{id}")));
        assert!(t("ORDER#N#{id}").prefix_overlaps(&t("ORDER#{id}")));
        assert!(t("{id}").prefix_overlaps(&t("NOTE#{id}")), "empty prefix");
        assert!(t("ORDER#{id}").prefix_overlaps(&t("ORDER#{x}#{y}")));
        assert!(!t("ORDER#{id}").prefix_overlaps(&t("NOTE#{id}")));
        assert!(!t("ORDER#{id}").prefix_overlaps(&t("ORDERS{id}")));
    }

    /// Fills `template` with `values` (one per field of [`KeyTemplate::fields`]) through the
    /// encoding the runtime's key builders use.
    fn render(template: &KeyTemplate, values: &[String]) -> String {
        let fields = template.fields();
        let mut key = String::new();
        for segment in template.segments() {
            match segment {
                Segment::Literal(text) => key.push_str(text),
                Segment::Field(name) => {
                    let at = fields.iter().position(|f| *f == name).unwrap_or(0);
                    crate::key_encoding::encode_key_value(&values[at], &mut key);
                }
            }
        }
        key
    }

    /// Value pieces that imitate separators and escapes: `#` encodes to `%23`, so `{a}%{b}` gives
    /// `%23%23` for both `("", "23#")` and `("#", "23")`; `%` starts every escape, NUL and
    /// non-ASCII sit among them.
    const TRICKY: [&str; 14] = [
        "", "x", "#", "%", "23", "#23", "23#", "%23", "x#", "-", "x-", "-x", "\0", "é#",
    ];

    /// Every tuple of `fields` values from [`TRICKY`] when there are at most two fields, then
    /// `random` tuples of values made of up to three pieces.
    fn value_tuples(
        fields: usize,
        random: usize,
        next: &mut impl FnMut(usize) -> usize,
    ) -> Vec<Vec<String>> {
        let mut tuples: Vec<Vec<String>> = Vec::new();
        if fields <= 2 {
            tuples.push(Vec::new());
            for _ in 0..fields {
                tuples = tuples
                    .iter()
                    .flat_map(|t| {
                        TRICKY.iter().map(move |v| {
                            let mut t = t.clone();
                            t.push((*v).to_owned());
                            t
                        })
                    })
                    .collect();
            }
        }
        for _ in 0..random {
            tuples.push(
                (0..fields)
                    .map(|_| (0..next(4)).map(|_| TRICKY[next(TRICKY.len())]).collect())
                    .collect(),
            );
        }
        tuples
    }

    /// Random templates × value tuples full of separators, `%`, hex digits, NUL and non-ASCII:
    /// within a template the rule accepts, different values never give the same key, and two
    /// templates whose literal prefixes do not overlap never share a key. Templates the rule
    /// refuses do collide here, which shows the search finds collisions. `SVCGEN_FUZZ_CASES`
    /// sets the number of random templates × 100 (default 100,000, so 1,000 templates).
    #[test]
    fn accepted_templates_never_give_different_values_the_same_key() {
        let cases: u64 = std::env::var("SVCGEN_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        let parts = [
            "{a}", "{b}", "{c}", "{a}", "#", "%", "-", "X", "é", "/", "2", "|", "~",
        ];
        let mut state = 0x51C5_E1F0_0D15_EA5E_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n.max(1) as u64).unwrap_or(0)
        };
        let mut templates: Vec<KeyTemplate> = Vec::new();
        // Key → (template index, values) of the first rendering that produced it.
        let mut seen: HashMap<String, (usize, Vec<String>)> = HashMap::new();
        let mut refused_collisions = 0;
        for _ in 0..(cases / 100).max(1) {
            let text: String = (0..1 + next(6)).map(|_| parts[next(parts.len())]).collect();
            let Ok(template) = KeyTemplate::parse(&text) else {
                continue;
            };
            let tuples = value_tuples(template.fields().len(), 50, &mut next);
            if template.check_unambiguous().is_err() {
                let mut keys = HashMap::new();
                for values in tuples {
                    if let Some(other) = keys.insert(render(&template, &values), values.clone())
                        && other != values
                    {
                        refused_collisions += 1;
                    }
                }
                continue;
            }
            let index = templates.len();
            templates.push(template);
            let template = &templates[index];
            for values in tuples {
                let key = render(template, &values);
                match seen.get(&key) {
                    None => {
                        seen.insert(key, (index, values));
                    }
                    Some((other, other_values)) if *other == index => assert_eq!(
                        other_values, &values,
                        "{:?} gives {key:?} for both value tuples",
                        template.text
                    ),
                    Some((other, other_values)) => assert!(
                        templates[*other].prefix_overlaps(template),
                        "{:?} {other_values:?} and {:?} {values:?} both give {key:?}",
                        templates[*other].text,
                        template.text
                    ),
                }
            }
        }
        assert!(!templates.is_empty(), "some random templates are accepted");
        if cases >= 10_000 {
            assert!(
                refused_collisions > 0,
                "refused templates collide, so the search can find collisions"
            );
        }
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
