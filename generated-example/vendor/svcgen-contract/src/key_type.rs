//! Which proto fields can be part of a key, and how each kind of value is written so that keys
//! sort the way the values do. The generator applies the rule to descriptors, the derive to
//! `#[prost(...)]` attributes, the runtime writes the values.

use std::fmt::Write as _;

/// The type of a field that can be part of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// `string`, percent-encoded (see [`crate::key_encoding`]).
    String,
    /// `uint32`/`fixed32`, zero-padded to 10 digits so keys sort numerically.
    U32,
    /// `uint64`/`fixed64`, zero-padded to 20 digits.
    U64,
    /// `int32`/`sint32`/`sfixed32`: offset by 2^31 and zero-padded to 10 digits, so negative
    /// values sort before positive ones.
    I32,
    /// `int64`/`sint64`/`sfixed64`: offset by 2^63 and zero-padded to 20 digits.
    I64,
    /// `google.protobuf.Timestamp`: UTC in ISO 8601 basic format with nanoseconds,
    /// `20261130T142500.000000000Z`, fixed width so keys sort by time.
    Timestamp,
    /// An enum, stored by its value's name.
    Enum,
}

/// The list of key types, for messages.
pub const KEY_TYPES: &str =
    "string, enum, an integer type or google.protobuf.Timestamp (not float, double, bool or bytes)";

/// The full name of the one message type that can be a key.
pub const TIMESTAMP: &str = "google.protobuf.Timestamp";

impl KeyType {
    /// The key type of a singular field without presence (neither `optional`, `repeated` nor a
    /// map) whose proto type is `scalar` (a `.proto` scalar keyword such as `uint64`), or `None`
    /// when such a field cannot be a key. Enums are [`KeyType::Enum`]; of messages, only a
    /// singular [`TIMESTAMP`] is a key ([`KeyType::Timestamp`]).
    pub fn of_scalar(scalar: &str) -> Option<Self> {
        match scalar {
            "string" => Some(Self::String),
            "uint32" | "fixed32" => Some(Self::U32),
            "uint64" | "fixed64" => Some(Self::U64),
            "int32" | "sint32" | "sfixed32" => Some(Self::I32),
            "int64" | "sint64" | "sfixed64" => Some(Self::I64),
            _ => None,
        }
    }
}

/// Appends the key form of an unsigned 32-bit value (see [`KeyType::U32`]).
pub fn write_u32(value: u32, out: &mut String) {
    let _ = write!(out, "{value:010}");
}

/// Appends the key form of an unsigned 64-bit value (see [`KeyType::U64`]).
pub fn write_u64(value: u64, out: &mut String) {
    let _ = write!(out, "{value:020}");
}

/// Appends the key form of a signed 32-bit value (see [`KeyType::I32`]).
pub fn write_i32(value: i32, out: &mut String) {
    let offset = i64::from(value) - i64::from(i32::MIN);
    let _ = write!(out, "{offset:010}");
}

/// Appends the key form of a signed 64-bit value (see [`KeyType::I64`]).
pub fn write_i64(value: i64, out: &mut String) {
    let offset = i128::from(value) - i128::from(i64::MIN);
    let _ = write!(out, "{offset:020}");
}

/// The first and last second a key timestamp may hold: 0001-01-01T00:00:00Z and
/// 9999-12-31T23:59:59Z (the range of `google.protobuf.Timestamp`).
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// Appends the key form of a timestamp (see [`KeyType::Timestamp`]); `false`, with nothing
/// written, when it lies outside the range of `google.protobuf.Timestamp` or its nanoseconds
/// are outside 0..1e9.
pub fn write_timestamp(seconds: i64, nanos: i32, out: &mut String) -> bool {
    if !TIMESTAMP_SECONDS.contains(&seconds) || !(0..1_000_000_000).contains(&nanos) {
        return false;
    }
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{nanos:09}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
    true
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_types_and_strings_are_keys() {
        assert_eq!(KeyType::of_scalar("fixed64"), Some(KeyType::U64));
        assert_eq!(KeyType::of_scalar("sint32"), Some(KeyType::I32));
        assert_eq!(KeyType::of_scalar("int64"), Some(KeyType::I64));
        for not_a_key in ["double", "float", "bool", "bytes"] {
            assert_eq!(KeyType::of_scalar(not_a_key), None, "{not_a_key}");
        }
    }

    fn key<T>(write: impl Fn(T, &mut String), value: T) -> String {
        let mut out = String::new();
        write(value, &mut out);
        out
    }

    #[test]
    fn signed_keys_sort_like_their_values() {
        let values = [i64::MIN, -1_000_000, -2, -1, 0, 1, 2, 10, 999, i64::MAX];
        let keys: Vec<String> = values.iter().map(|v| key(write_i64, *v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert!(keys.iter().all(|k| k.len() == 20));
        let values = [i32::MIN, -5, 0, 7, i32::MAX];
        let keys: Vec<String> = values.iter().map(|v| key(write_i32, *v)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(key(write_i32, 0), "2147483648");
    }

    #[test]
    fn timestamps_are_fixed_width_utc_and_sort_by_time() {
        let ts = |seconds, nanos| {
            let mut out = String::new();
            assert!(
                write_timestamp(seconds, nanos, &mut out),
                "{seconds}.{nanos}"
            );
            out
        };
        assert_eq!(ts(0, 0), "19700101T000000.000000000Z");
        assert_eq!(ts(1_796_048_700, 5), "20261130T142500.000000005Z");
        assert_eq!(ts(-62_135_596_800, 0), "00010101T000000.000000000Z");
        assert_eq!(
            ts(253_402_300_799, 999_999_999),
            "99991231T235959.999999999Z"
        );
        assert_eq!(
            ts(951_782_400, 0),
            "20000229T000000.000000000Z",
            "a leap day"
        );
        assert_eq!(ts(-1, 0), "19691231T235959.000000000Z");
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut previous: Option<(i64, i32, String)> = None;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let seconds = (state % 315_537_897_599) as i64 - 62_135_596_800;
            let nanos = (state % 1_000_000_000) as i32;
            let key = ts(seconds, nanos);
            if let Some((s, n, k)) = &previous {
                assert_eq!((*s, *n).cmp(&(seconds, nanos)), k.cmp(&key), "{k} vs {key}");
            }
            previous = Some((seconds, nanos, key));
        }
        let mut out = String::new();
        assert!(!write_timestamp(253_402_300_800, 0, &mut out));
        assert!(!write_timestamp(0, -1, &mut out));
        assert!(out.is_empty());
    }
}
