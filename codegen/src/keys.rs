//! Key templates as the generator sees them: `{field}` placeholders with their byte offsets,
//! so that diagnostics can point at the exact placeholder.

/// A parsed placeholder.
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

/// A malformed template: what is wrong and where (byte offset in the template).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// Where, within the template.
    pub offset: usize,
}

impl KeyTemplate {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.is_empty() {
            return Err(TemplateError {
                message: "key template is empty".into(),
                offset: 0,
            });
        }
        let mut placeholders = Vec::new();
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '}' => {
                    return Err(TemplateError {
                        message: "unmatched `}`".into(),
                        offset: at,
                    });
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest
                        .find(['}', '{'])
                        .filter(|&end| rest.as_bytes()[end] == b'}')
                    else {
                        return Err(TemplateError {
                            message: "unclosed `{`".into(),
                            offset: at,
                        });
                    };
                    let field = &rest[..end];
                    let valid = field.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                        && field
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    if !valid {
                        return Err(TemplateError {
                            message: format!(
                                "`{{{field}}}` is not a field name (lower_snake_case)"
                            ),
                            offset: at,
                        });
                    }
                    placeholders.push(Placeholder {
                        field: field.to_owned(),
                        offset: at,
                    });
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                _ => {}
            }
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
    fn locates_malformed_parts() {
        assert_eq!(KeyTemplate::parse("A#{id").expect_err("unclosed").offset, 2);
        assert_eq!(KeyTemplate::parse("A#}").expect_err("unmatched").offset, 2);
        assert_eq!(KeyTemplate::parse("A#{Id}").expect_err("case").offset, 2);
        assert_eq!(KeyTemplate::parse("{a{b}").expect_err("nested").offset, 0);
        assert!(KeyTemplate::parse("").is_err());
    }

    /// Arbitrary text (weighted towards the template alphabet, with multi-byte characters):
    /// parsing never panics, errors point inside the text at a character boundary, and every
    /// placeholder found is `{field}` at its offset.
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
