//! How a field value is written into a key: string and enum-name values are percent-encoded so
//! that no value can imitate a template's literal text. `%` and every ASCII character other than
//! letters, digits and `-_.~` become `%XX` (two upper-case hex digits): `#` is `%23`, `%` is
//! `%25`, NUL is `%00`. Everything else is kept as it is — letters, digits, `-_.~` and every
//! non-ASCII character (a UTF-8 encoded character has no ASCII byte in it, so it can never look
//! like a separator). IDs made only of letters, digits and `-_.~` (UUIDs, typical slugs) are
//! therefore stored exactly as they were before values were encoded. Together with the template
//! rule in [`crate::key_template`] (a literal between two placeholders must hold a
//! [separator](is_separator)), different values always give different keys.

/// Whether `c` is percent-encoded when it appears in a key value.
pub fn is_escaped_in_values(c: char) -> bool {
    c.is_ascii() && !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
}

/// Whether `c` never appears in an encoded value: an escaped character other than `%` (which
/// starts every escape). Only such a character can separate two placeholders unambiguously.
pub fn is_separator(c: char) -> bool {
    is_escaped_in_values(c) && c != '%'
}

/// Appends the key form of `value` to `out`.
pub fn encode_key_value(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(value.len());
    let mut rest = value;
    while let Some(at) = rest.find(is_escaped_in_values) {
        // Escaped characters are ASCII: one byte, so `at + 1` starts the next character.
        let byte = rest.as_bytes()[at];
        out.push_str(&rest[..at]);
        out.push('%');
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0F)]));
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// The value whose key form is `encoded`, or `None` when no value encodes to it (a stray `%`,
/// lower-case or non-hex digits, an escape of a character that is not escaped, or an escapable
/// character left raw). For tests and tools; keys are never parsed back at run time.
pub fn decode_key_value(encoded: &str) -> Option<String> {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            if is_escaped_in_values(c) {
                return None;
            }
            out.push(c);
            continue;
        }
        let high = upper_hex_digit(chars.next()?)?;
        let low = upper_hex_digit(chars.next()?)?;
        let decoded = char::from(high << 4 | low);
        if !is_escaped_in_values(decoded) {
            return None;
        }
        out.push(decoded);
    }
    Some(out)
}

fn upper_hex_digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' | 'A'..='F' => u8::try_from(c.to_digit(16)?).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: &str) -> String {
        let mut out = String::new();
        encode_key_value(value, &mut out);
        out
    }

    #[test]
    fn plain_ids_are_stored_as_they_are() {
        for id in [
            "0190b6a4-7f3e-7c1a-9d2e-3b4c5d6e7f80",
            "abc_DEF-123.x~y",
            "n1",
            "",
        ] {
            assert_eq!(encoded(id), id);
        }
        assert_eq!(encoded("café-日本-🦀"), "café-日本-🦀", "non-ASCII is kept");
    }

    #[test]
    fn separators_percent_and_control_characters_are_escaped() {
        assert_eq!(encoded("N#n1"), "N%23n1");
        assert_eq!(encoded("100%"), "100%25");
        assert_eq!(encoded("a\0b"), "a%00b");
        assert_eq!(encoded("a/b:c|d e\n\u{7f}"), "a%2Fb%3Ac%7Cd%20e%0A%7F");
        assert_eq!(encoded("{x}"), "%7Bx%7D");
    }

    #[test]
    fn values_that_look_alike_stay_distinct_and_round_trip() {
        let values = [
            "N#n1",
            "N%23n1",
            "N%2523n1",
            "N",
            "N#",
            "n1",
            "#",
            "%",
            "%%",
            "%23",
            "\0",
            "\0\0",
            "é",
            "e\u{301}",
            "é#",
            "日本",
            "🦀#🦀",
            "",
            " ",
            "%20",
            "+",
            "~",
        ];
        let mut seen = std::collections::BTreeMap::new();
        for value in values {
            let key = encoded(value);
            assert!(
                !key.chars().any(is_separator),
                "{value:?} encodes to {key:?}"
            );
            assert_eq!(decode_key_value(&key).as_deref(), Some(value), "{key:?}");
            if let Some(other) = seen.insert(key.clone(), value) {
                panic!("{value:?} and {other:?} both encode to {key:?}");
            }
        }
    }

    #[test]
    fn text_no_value_encodes_to_does_not_decode() {
        for bad in ["%", "%2", "%2g", "%2f", "%41", "a#b", "%C3%A9", "% 20"] {
            assert_eq!(decode_key_value(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_ascii_punctuation_space_and_controls_are_escaped() {
        for c in [
            '#', '%', '/', ':', '|', ' ', '\0', '\u{1f}', '\u{7f}', '{', '"',
        ] {
            assert!(is_escaped_in_values(c), "{c:?}");
        }
        for c in ['a', 'Z', '0', '-', '_', '.', '~', 'é', '\u{80}', '🦀'] {
            assert!(!is_escaped_in_values(c), "{c:?}");
        }
        assert!(is_separator('#') && !is_separator('%') && !is_separator('-'));
    }
}
