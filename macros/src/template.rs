//! Key templates: literal text with `{field}` placeholders, e.g. `PROJECT#{project_id}`.

#[derive(Debug, PartialEq)]
pub(crate) enum Segment {
    Literal(String),
    Field(String),
}

/// Parses a template; the error says what is malformed.
pub(crate) fn parse(template: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                segments.push(Segment::Literal(rest.to_owned()));
                break;
            }
            Some(at) if rest.as_bytes()[at] == b'}' => {
                return Err(format!("unmatched `}}` in key template `{template}`"));
            }
            Some(at) => {
                if at > 0 {
                    segments.push(Segment::Literal(rest[..at].to_owned()));
                }
                let after = &rest[at + 1..];
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` in key template `{template}`"))?;
                let name = &after[..end];
                let valid = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !valid {
                    return Err(format!(
                        "`{{{name}}}` in key template `{template}` is not a field name (lower_snake_case)"
                    ));
                }
                segments.push(Segment::Field(name.to_owned()));
                rest = &after[end + 1..];
            }
        }
    }
    if segments.is_empty() {
        return Err("key template is empty".to_owned());
    }
    Ok(segments)
}

/// The literal text before the first placeholder.
pub(crate) fn literal_prefix(segments: &[Segment]) -> String {
    match segments.first() {
        Some(Segment::Literal(text)) => text.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_and_fields() {
        assert_eq!(
            parse("PROJECT#{project_id}#{id}").expect("valid"),
            vec![
                Segment::Literal("PROJECT#".into()),
                Segment::Field("project_id".into()),
                Segment::Literal("#".into()),
                Segment::Field("id".into()),
            ]
        );
        assert_eq!(
            parse("PROFILE").expect("valid"),
            vec![Segment::Literal("PROFILE".into())]
        );
    }

    #[test]
    fn rejects_malformed_templates() {
        for bad in ["", "A#{id", "A#id}", "{}", "{Id}", "{a-b}"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
