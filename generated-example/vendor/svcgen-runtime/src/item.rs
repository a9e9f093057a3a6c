//! DynamoDB's data model, independent of the AWS SDK: attribute values, items and the
//! conversion of Rust field values to and from attributes.
//!
//! Proto3 fields at their default value are not stored (a missing attribute reads back as the
//! default), so items stay small and readers of older items see proto defaults.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One attribute value, as DynamoDB types it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AttributeValue {
    /// String.
    S(String),
    /// Number, in DynamoDB's decimal text form.
    N(String),
    /// Binary.
    B(Vec<u8>),
    /// Boolean.
    Bool(bool),
    /// Null.
    Null,
    /// List.
    L(Vec<AttributeValue>),
    /// Map.
    M(BTreeMap<String, AttributeValue>),
}

/// A stored item: attribute name → value, ordered so that encodings are deterministic.
pub type Item = BTreeMap<String, AttributeValue>;

/// Why an item (or one of its attributes) could not be read back into a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("attribute `{path}`: {reason}")]
pub struct DecodeError {
    path: String,
    reason: String,
}

impl DecodeError {
    /// An error about the value at hand; the caller adds the attribute name with [`Self::at`].
    pub fn new(reason: impl fmt::Display) -> Self {
        Self {
            path: String::new(),
            reason: reason.to_string(),
        }
    }

    /// Prefixes the attribute path, innermost last: `task.labels[2]`.
    #[must_use]
    pub fn at(mut self, segment: &str) -> Self {
        self.path = match (self.path.is_empty(), self.path.starts_with('[')) {
            (true, _) => segment.to_owned(),
            (false, true) => format!("{segment}{}", self.path),
            (false, false) => format!("{segment}.{}", self.path),
        };
        self
    }

    fn expected(what: &str, found: &AttributeValue) -> Self {
        Self::new(format_args!("expected {what}, found {}", type_name(found)))
    }
}

fn type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::Null => "NULL",
        AttributeValue::L(_) => "L",
        AttributeValue::M(_) => "M",
    }
}

/// A Rust value that is stored as one attribute: scalars, strings, bytes, timestamps and
/// messages deriving `Attributes`.
pub trait Value: Sized {
    /// The attribute holding this value.
    fn to_attribute(&self) -> AttributeValue;
    /// Reads the value back; never panics, whatever the attribute holds.
    fn from_attribute(value: AttributeValue) -> Result<Self, DecodeError>;
    /// Whether proto3 treats the value as unset, so that it is not stored.
    fn is_default(&self) -> bool {
        false
    }
}

impl Value for String {
    fn to_attribute(&self) -> AttributeValue {
        AttributeValue::S(self.clone())
    }
    fn from_attribute(value: AttributeValue) -> Result<Self, DecodeError> {
        match value {
            AttributeValue::S(s) => Ok(s),
            other => Err(DecodeError::expected("S", &other)),
        }
    }
    fn is_default(&self) -> bool {
        self.is_empty()
    }
}

impl Value for bool {
    fn to_attribute(&self) -> AttributeValue {
        AttributeValue::Bool(*self)
    }
    fn from_attribute(value: AttributeValue) -> Result<Self, DecodeError> {
        match value {
            AttributeValue::Bool(b) => Ok(b),
            other => Err(DecodeError::expected("BOOL", &other)),
        }
    }
    fn is_default(&self) -> bool {
        !*self
    }
}

impl Value for Vec<u8> {
    fn to_attribute(&self) -> AttributeValue {
        AttributeValue::B(self.clone())
    }
    fn from_attribute(value: AttributeValue) -> Result<Self, DecodeError> {
        match value {
            AttributeValue::B(b) => Ok(b),
            other => Err(DecodeError::expected("B", &other)),
        }
    }
    fn is_default(&self) -> bool {
        self.is_empty()
    }
}

macro_rules! integer_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn to_attribute(&self) -> AttributeValue {
                AttributeValue::N(self.to_string())
            }
            fn from_attribute(value: AttributeValue) -> Result<Self, DecodeError> {
                match value {
                    AttributeValue::N(n) => n.parse().map_err(|_| {
                        DecodeError::new(format_args!("`{n}` is not a valid {}", stringify!($t)))
                    }),
                    other => Err(DecodeError::expected("N", &other)),
                }
            }
            fn is_default(&self) -> bool {
                *self == 0
            }
        }
    )*};
}
integer_value!(i32, i64, u32, u64);

// DynamoDB numbers cannot hold NaN or infinities and span only 1E-130..1E+126, so such floats
// are stored as strings in Rust's round-trip notation; everything else is a number.
macro_rules! float_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn to_attribute(&self) -> AttributeValue {
                let magnitude = self.abs();
                if *self == 0.0 && self.is_sign_positive()
                    || (self.is_finite() && (1e-125..1e125).contains(&f64::from(magnitude)))
                {
                    AttributeValue::N(format!("{self:e}"))
                } else {
                    AttributeValue::S(format!("{self:e}"))
                }
            }
            fn from_attribute(value: AttributeValue) -> Result<Self, DecodeError> {
                match value {
                    AttributeValue::N(text) | AttributeValue::S(text) => text.parse().map_err(|_| {
                        DecodeError::new(format_args!("`{text}` is not a valid {}", stringify!($t)))
                    }),
                    other => Err(DecodeError::expected("N", &other)),
                }
            }
            fn is_default(&self) -> bool {
                // -0.0 is stored: proto3 only omits +0.0 on the wire too.
                self.to_bits() == 0
            }
        }
    )*};
}
float_value!(f32, f64);

impl<T: Value> Value for Box<T> {
    fn to_attribute(&self) -> AttributeValue {
        (**self).to_attribute()
    }
    fn from_attribute(value: AttributeValue) -> Result<Self, DecodeError> {
        T::from_attribute(value).map(Box::new)
    }
    fn is_default(&self) -> bool {
        (**self).is_default()
    }
}

/// Timestamps are RFC 3339 strings in UTC: readable, and they sort by time.
impl Value for prost_types::Timestamp {
    fn to_attribute(&self) -> AttributeValue {
        AttributeValue::S(self.to_string())
    }
    fn from_attribute(value: AttributeValue) -> Result<Self, DecodeError> {
        match value {
            AttributeValue::S(s) => s
                .parse()
                .map_err(|_| DecodeError::new(format_args!("`{s}` is not an RFC 3339 timestamp"))),
            other => Err(DecodeError::expected("S", &other)),
        }
    }
}

/// A message stored as a map attribute (implemented by `#[derive(Attributes)]`).
pub trait Attributes: Sized {
    /// Appends the message's non-default fields to `item`.
    fn write_attributes(&self, item: &mut Item);
    /// Reads the message from an item, moving its values out; missing attributes become proto
    /// defaults and unknown attributes are ignored.
    fn read_attributes(item: Item) -> Result<Self, DecodeError>;
}

/// The oneof enums of messages (implemented by `#[derive(Attributes)]` on prost's oneof enums):
/// the set variant is stored under its field's name.
pub trait OneofAttributes: Sized {
    /// The proto field names of the members.
    const FIELDS: &'static [&'static str];
    /// Writes the set variant.
    fn write_oneof(&self, item: &mut Item);
    /// Reads whichever variant is present, moving it out of `item`.
    fn read_oneof(item: &mut Item) -> Result<Option<Self>, DecodeError>;
}

/// Helpers named by the code `#[derive(Attributes)]` and `#[derive(Entity)]` expand to.
pub mod derive_support {
    use super::{AttributeValue, Attributes, DecodeError, Item, Value};
    use std::collections::{BTreeMap, HashMap};
    use std::hash::Hash;
    use std::str::FromStr;

    /// A message as a map attribute.
    pub fn message_to_attribute<T: Attributes>(message: &T) -> AttributeValue {
        let mut item = Item::new();
        message.write_attributes(&mut item);
        AttributeValue::M(item)
    }

    /// A map attribute as a message.
    pub fn message_from_attribute<T: Attributes>(value: AttributeValue) -> Result<T, DecodeError> {
        match value {
            AttributeValue::M(item) => T::read_attributes(item),
            other => Err(DecodeError::expected("M", &other)),
        }
    }

    /// Enums are stored by name, so that renumbering-free schema evolution keeps reading;
    /// values this build does not know are kept as numbers.
    pub fn enum_to_attribute(number: i32, name: Option<&str>) -> AttributeValue {
        match name {
            Some(name) => AttributeValue::S(name.to_owned()),
            None => AttributeValue::N(number.to_string()),
        }
    }

    /// Reads an enum stored by name (or by number, for values unknown when written).
    pub fn enum_from_attribute(
        value: AttributeValue,
        by_name: impl Fn(&str) -> Option<i32>,
    ) -> Result<i32, DecodeError> {
        match value {
            AttributeValue::S(name) => by_name(&name)
                .ok_or_else(|| DecodeError::new(format_args!("unknown enum value `{name}`"))),
            number @ AttributeValue::N(_) => i32::from_attribute(number),
            other => Err(DecodeError::expected("S", &other)),
        }
    }

    /// A repeated field as a list attribute.
    pub fn list_to_attribute<T>(
        values: &[T],
        encode: impl Fn(&T) -> AttributeValue,
    ) -> AttributeValue {
        AttributeValue::L(values.iter().map(encode).collect())
    }

    /// A list attribute as a repeated field.
    pub fn list_from_attribute<T>(
        value: AttributeValue,
        decode: impl Fn(AttributeValue) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        match value {
            AttributeValue::L(values) => values
                .into_iter()
                .enumerate()
                .map(|(i, v)| decode(v).map_err(|e| e.at(&format!("[{i}]"))))
                .collect(),
            other => Err(DecodeError::expected("L", &other)),
        }
    }

    /// A proto map as a map attribute; keys in their text form.
    pub fn map_to_attribute<'a, K, V: 'a>(
        entries: impl IntoIterator<Item = (&'a K, &'a V)>,
        encode: impl Fn(&V) -> AttributeValue,
    ) -> AttributeValue
    where
        K: ToString + 'a,
    {
        AttributeValue::M(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), encode(v)))
                .collect(),
        )
    }

    /// A map attribute as a proto map (`HashMap`).
    pub fn map_from_attribute<K: FromStr + Eq + Hash, V>(
        value: AttributeValue,
        decode: impl Fn(AttributeValue) -> Result<V, DecodeError>,
    ) -> Result<HashMap<K, V>, DecodeError> {
        map_entries(value, decode)?.collect()
    }

    /// A map attribute as a proto map (`BTreeMap`).
    pub fn btree_map_from_attribute<K: FromStr + Ord, V>(
        value: AttributeValue,
        decode: impl Fn(AttributeValue) -> Result<V, DecodeError>,
    ) -> Result<BTreeMap<K, V>, DecodeError> {
        map_entries(value, decode)?.collect()
    }

    fn map_entries<K: FromStr, V>(
        value: AttributeValue,
        decode: impl Fn(AttributeValue) -> Result<V, DecodeError>,
    ) -> Result<impl Iterator<Item = Result<(K, V), DecodeError>>, DecodeError> {
        match value {
            AttributeValue::M(entries) => Ok(entries.into_iter().map(move |(k, v)| {
                let key = k
                    .parse()
                    .map_err(|_| DecodeError::new(format_args!("`{k}` is not a valid map key")))?;
                Ok((key, decode(v).map_err(|e| e.at(&k))?))
            })),
            other => Err(DecodeError::expected("M", &other)),
        }
    }

    /// Stores `value` under `name` unless `skip` says it is unset.
    pub fn put(item: &mut Item, name: &str, skip: bool, value: impl FnOnce() -> AttributeValue) {
        if !skip {
            item.insert(name.to_owned(), value());
        }
    }

    /// Reads attribute `name`, or `default` when it is absent.
    pub fn take<T>(
        item: &mut Item,
        name: &str,
        default: impl FnOnce() -> T,
        decode: impl FnOnce(AttributeValue) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        match item.remove(name) {
            Some(AttributeValue::Null) | None => Ok(default()),
            Some(value) => decode(value).map_err(|e| e.at(name)),
        }
    }

    /// Reads a plain [`Value`].
    pub fn value<T: Value>(value: AttributeValue) -> Result<T, DecodeError> {
        T::from_attribute(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_including_values_dynamodb_numbers_cannot_hold() {
        for x in [
            0.0,
            -0.0,
            1.5,
            -2.25e-300,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
        ] {
            let back = f64::from_attribute(x.to_attribute()).expect("decodes");
            assert_eq!(back.to_bits(), x.to_bits(), "{x}");
        }
        assert!(
            f64::from_attribute(f64::NAN.to_attribute())
                .expect("decodes")
                .is_nan()
        );
        assert!(matches!(1e300f64.to_attribute(), AttributeValue::S(_)));
        assert!(matches!(1.5f64.to_attribute(), AttributeValue::N(_)));
    }

    #[test]
    fn wrong_types_and_bad_numbers_are_errors() {
        assert!(u32::from_attribute(AttributeValue::N("-1".into())).is_err());
        assert!(i32::from_attribute(AttributeValue::N("99999999999".into())).is_err());
        assert!(String::from_attribute(AttributeValue::Bool(true)).is_err());
        let err = derive_support::list_from_attribute(
            AttributeValue::L(vec![
                AttributeValue::N("1".into()),
                AttributeValue::S("x".into()),
            ]),
            derive_support::value::<u64>,
        )
        .expect_err("second element is a string");
        assert_eq!(
            err.at("labels").to_string(),
            "attribute `labels[1]`: expected N, found S"
        );
    }
}
