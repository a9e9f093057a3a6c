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

/// One attribute value, borrowed: what messages are read from. The embedded store hands out
/// views into its stored encoding, so reading an entity copies each field once, into the
/// message, and builds no attribute map. The variants are [`AttributeValue`]'s, in its order,
/// so an item's encoding reads as either.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub enum AttributeRef<'a> {
    /// String.
    S(&'a str),
    /// Number, in DynamoDB's decimal text form.
    N(&'a str),
    /// Binary.
    B(&'a [u8]),
    /// Boolean.
    Bool(bool),
    /// Null.
    Null,
    /// List.
    L(#[serde(borrow)] Vec<AttributeRef<'a>>),
    /// Map.
    M(#[serde(borrow)] ItemRef<'a>),
}

/// An item (or a map attribute), borrowed: its attributes ordered by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemRef<'a> {
    attributes: Vec<(&'a str, AttributeRef<'a>)>,
}

impl<'a> AttributeRef<'a> {
    /// A view of `value`.
    pub fn of(value: &'a AttributeValue) -> Self {
        match value {
            AttributeValue::S(s) => Self::S(s),
            AttributeValue::N(n) => Self::N(n),
            AttributeValue::B(b) => Self::B(b),
            AttributeValue::Bool(b) => Self::Bool(*b),
            AttributeValue::Null => Self::Null,
            AttributeValue::L(values) => Self::L(values.iter().map(Self::of).collect()),
            AttributeValue::M(item) => Self::M(ItemRef::of(item)),
        }
    }

    /// The owned value.
    pub fn to_value(&self) -> AttributeValue {
        match self {
            Self::S(s) => AttributeValue::S((*s).to_owned()),
            Self::N(n) => AttributeValue::N((*n).to_owned()),
            Self::B(b) => AttributeValue::B(b.to_vec()),
            Self::Bool(b) => AttributeValue::Bool(*b),
            Self::Null => AttributeValue::Null,
            Self::L(values) => AttributeValue::L(values.iter().map(Self::to_value).collect()),
            Self::M(item) => AttributeValue::M(item.to_item()),
        }
    }

    /// The string of an `S` value.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Self::S(s) => Some(s),
            _ => None,
        }
    }
}

impl<'a> ItemRef<'a> {
    /// A view of `item`.
    pub fn of(item: &'a Item) -> Self {
        Self {
            attributes: item
                .iter()
                .map(|(name, value)| (name.as_str(), AttributeRef::of(value)))
                .collect(),
        }
    }

    /// The item holding `attributes`, in any order; of two with one name, the first counts.
    pub fn from_attributes(mut attributes: Vec<(&'a str, AttributeRef<'a>)>) -> Self {
        if !attributes.is_sorted_by(|a, b| a.0 < b.0) {
            attributes.sort_by(|a, b| a.0.cmp(b.0));
            attributes.dedup_by(|later, first| later.0 == first.0);
        }
        Self { attributes }
    }

    /// The attribute `name`.
    pub fn get(&self, name: &str) -> Option<&AttributeRef<'a>> {
        self.attributes
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| &self.attributes[i].1)
    }

    /// A cursor over the attributes, for reading several in name order.
    pub fn cursor(&self) -> Cursor<'_, 'a> {
        Cursor {
            rest: &self.attributes,
        }
    }

    /// The attributes, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &AttributeRef<'a>)> {
        self.attributes.iter().map(|(name, value)| (*name, value))
    }

    /// The owned item.
    pub fn to_item(&self) -> Item {
        self.iter()
            .map(|(name, value)| (name.to_owned(), value.to_value()))
            .collect()
    }
}

/// Finds attributes sought in ascending name order in one pass over the item (a message reads
/// its fields so): each of the item's names is compared once to be passed or taken, plus once
/// per sought name the item lacks, instead of a search of the item per field.
#[derive(Debug)]
pub struct Cursor<'i, 'a> {
    rest: &'i [(&'a str, AttributeRef<'a>)],
}

impl<'i, 'a> Cursor<'i, 'a> {
    /// The attribute `name`, which must not sort before a name sought earlier (it then reads as
    /// absent).
    pub fn seek(&mut self, name: &str) -> Option<&'i AttributeRef<'a>> {
        while let Some(((next, value), rest)) = self.rest.split_first() {
            match (*next).cmp(name) {
                std::cmp::Ordering::Less => self.rest = rest,
                std::cmp::Ordering::Equal => {
                    self.rest = rest;
                    return Some(value);
                }
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

/// Reads an encoded map (as `Item` serializes), borrowing names and values from the input.
impl<'de: 'a, 'a> Deserialize<'de> for ItemRef<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = ItemRef<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of attributes")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut attributes: Vec<(&'de str, AttributeRef<'de>)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = map.next_entry()? {
                    attributes.push(entry);
                }
                Ok(ItemRef::from_attributes(attributes))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

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

    fn expected(what: &str, found: &AttributeRef<'_>) -> Self {
        Self::new(format_args!("expected {what}, found {}", type_name(found)))
    }
}

fn type_name(value: &AttributeRef<'_>) -> &'static str {
    match value {
        AttributeRef::S(_) => "S",
        AttributeRef::N(_) => "N",
        AttributeRef::B(_) => "B",
        AttributeRef::Bool(_) => "BOOL",
        AttributeRef::Null => "NULL",
        AttributeRef::L(_) => "L",
        AttributeRef::M(_) => "M",
    }
}

/// A Rust value that is stored as one attribute: scalars, strings, bytes, timestamps and
/// messages deriving `Attributes`.
pub trait Value: Sized {
    /// The attribute holding this value.
    fn to_attribute(&self) -> AttributeValue;
    /// Reads the value back; never panics, whatever the attribute holds.
    fn from_attribute(value: &AttributeRef<'_>) -> Result<Self, DecodeError>;
    /// Whether proto3 treats the value as unset, so that it is not stored.
    fn is_default(&self) -> bool {
        false
    }
}

impl Value for String {
    fn to_attribute(&self) -> AttributeValue {
        AttributeValue::S(self.clone())
    }
    fn from_attribute(value: &AttributeRef<'_>) -> Result<Self, DecodeError> {
        match value {
            AttributeRef::S(s) => Ok((*s).to_owned()),
            other => Err(DecodeError::expected("S", other)),
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
    fn from_attribute(value: &AttributeRef<'_>) -> Result<Self, DecodeError> {
        match value {
            AttributeRef::Bool(b) => Ok(*b),
            other => Err(DecodeError::expected("BOOL", other)),
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
    fn from_attribute(value: &AttributeRef<'_>) -> Result<Self, DecodeError> {
        match value {
            AttributeRef::B(b) => Ok(b.to_vec()),
            other => Err(DecodeError::expected("B", other)),
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
            fn from_attribute(value: &AttributeRef<'_>) -> Result<Self, DecodeError> {
                match value {
                    AttributeRef::N(n) => n.parse().map_err(|_| {
                        DecodeError::new(format_args!("`{n}` is not a valid {}", stringify!($t)))
                    }),
                    other => Err(DecodeError::expected("N", other)),
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
            fn from_attribute(value: &AttributeRef<'_>) -> Result<Self, DecodeError> {
                match value {
                    AttributeRef::N(text) | AttributeRef::S(text) => text.parse().map_err(|_| {
                        DecodeError::new(format_args!("`{text}` is not a valid {}", stringify!($t)))
                    }),
                    other => Err(DecodeError::expected("N", other)),
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
    fn from_attribute(value: &AttributeRef<'_>) -> Result<Self, DecodeError> {
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
    fn from_attribute(value: &AttributeRef<'_>) -> Result<Self, DecodeError> {
        match value {
            AttributeRef::S(s) => s
                .parse()
                .map_err(|_| DecodeError::new(format_args!("`{s}` is not an RFC 3339 timestamp"))),
            other => Err(DecodeError::expected("S", other)),
        }
    }
}

/// A message stored as a map attribute (implemented by `#[derive(Attributes)]`).
pub trait Attributes: Sized {
    /// Appends the message's non-default fields to `item`.
    fn write_attributes(&self, item: &mut Item);
    /// Reads the message from an item; missing attributes become proto defaults and unknown
    /// attributes are ignored.
    fn read_attributes(item: &ItemRef<'_>) -> Result<Self, DecodeError>;
}

/// The oneof enums of messages (implemented by `#[derive(Attributes)]` on prost's oneof enums):
/// the set variant is stored under its field's name.
pub trait OneofAttributes: Sized {
    /// The proto field names of the members.
    const FIELDS: &'static [&'static str];
    /// Writes the set variant.
    fn write_oneof(&self, item: &mut Item);
    /// Reads whichever variant is present.
    fn read_oneof(item: &ItemRef<'_>) -> Result<Option<Self>, DecodeError>;
}

/// Helpers named by the code `#[derive(Attributes)]` and `#[derive(Entity)]` expand to.
pub mod derive_support {
    use super::{AttributeRef, AttributeValue, Attributes, DecodeError, Item, Value};
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
    pub fn message_from_attribute<T: Attributes>(
        value: &AttributeRef<'_>,
    ) -> Result<T, DecodeError> {
        match value {
            AttributeRef::M(item) => T::read_attributes(item),
            other => Err(DecodeError::expected("M", other)),
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
        value: &AttributeRef<'_>,
        by_name: impl Fn(&str) -> Option<i32>,
    ) -> Result<i32, DecodeError> {
        match value {
            AttributeRef::S(name) => by_name(name)
                .ok_or_else(|| DecodeError::new(format_args!("unknown enum value `{name}`"))),
            number @ AttributeRef::N(_) => i32::from_attribute(number),
            other => Err(DecodeError::expected("S", other)),
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
        value: &AttributeRef<'_>,
        decode: impl Fn(&AttributeRef<'_>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        match value {
            AttributeRef::L(values) => values
                .iter()
                .enumerate()
                .map(|(i, v)| decode(v).map_err(|e| e.at(&format!("[{i}]"))))
                .collect(),
            other => Err(DecodeError::expected("L", other)),
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
        value: &AttributeRef<'_>,
        decode: impl Fn(&AttributeRef<'_>) -> Result<V, DecodeError>,
    ) -> Result<HashMap<K, V>, DecodeError> {
        map_entries(value, decode)?.collect()
    }

    /// A map attribute as a proto map (`BTreeMap`).
    pub fn btree_map_from_attribute<K: FromStr + Ord, V>(
        value: &AttributeRef<'_>,
        decode: impl Fn(&AttributeRef<'_>) -> Result<V, DecodeError>,
    ) -> Result<BTreeMap<K, V>, DecodeError> {
        map_entries(value, decode)?.collect()
    }

    fn map_entries<K: FromStr, V>(
        value: &AttributeRef<'_>,
        decode: impl Fn(&AttributeRef<'_>) -> Result<V, DecodeError>,
    ) -> Result<impl Iterator<Item = Result<(K, V), DecodeError>>, DecodeError> {
        match value {
            AttributeRef::M(entries) => Ok(entries.iter().map(move |(k, v)| {
                let key = k
                    .parse()
                    .map_err(|_| DecodeError::new(format_args!("`{k}` is not a valid map key")))?;
                Ok((key, decode(v).map_err(|e| e.at(k))?))
            })),
            other => Err(DecodeError::expected("M", other)),
        }
    }

    /// Stores `value` under `name` unless `skip` says it is unset.
    pub fn put(item: &mut Item, name: &str, skip: bool, value: impl FnOnce() -> AttributeValue) {
        if !skip {
            item.insert(name.to_owned(), value());
        }
    }

    /// Reads attribute `name` (`value`, where the item has it), or `default` when it is absent.
    pub fn read_attribute<T>(
        value: Option<&AttributeRef<'_>>,
        name: &str,
        default: impl FnOnce() -> T,
        decode: impl FnOnce(&AttributeRef<'_>) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        match value {
            Some(AttributeRef::Null) | None => Ok(default()),
            Some(value) => decode(value).map_err(|e| e.at(name)),
        }
    }

    /// Reads a plain [`Value`].
    pub fn value<T: Value>(value: &AttributeRef<'_>) -> Result<T, DecodeError> {
        T::from_attribute(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: Value>(value: &AttributeValue) -> Result<T, DecodeError> {
        T::from_attribute(&AttributeRef::of(value))
    }

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
            let back: f64 = read(&x.to_attribute()).expect("decodes");
            assert_eq!(back.to_bits(), x.to_bits(), "{x}");
        }
        assert!(
            read::<f64>(&f64::NAN.to_attribute())
                .expect("decodes")
                .is_nan()
        );
        assert!(matches!(1e300f64.to_attribute(), AttributeValue::S(_)));
        assert!(matches!(1.5f64.to_attribute(), AttributeValue::N(_)));
    }

    #[test]
    fn wrong_types_and_bad_numbers_are_errors() {
        assert!(read::<u32>(&AttributeValue::N("-1".into())).is_err());
        assert!(read::<i32>(&AttributeValue::N("99999999999".into())).is_err());
        assert!(read::<String>(&AttributeValue::Bool(true)).is_err());
        let list = AttributeValue::L(vec![
            AttributeValue::N("1".into()),
            AttributeValue::S("x".into()),
        ]);
        let err = derive_support::list_from_attribute(
            &AttributeRef::of(&list),
            derive_support::value::<u64>,
        )
        .expect_err("second element is a string");
        assert_eq!(
            err.at("labels").to_string(),
            "attribute `labels[1]`: expected N, found S"
        );
    }

    /// Every kind of value, nested, as the embedded store encodes items.
    fn every_kind() -> Item {
        let nested: Item = [
            ("z".to_owned(), AttributeValue::Null),
            ("a".to_owned(), AttributeValue::B(vec![0, 255, 7])),
        ]
        .into();
        [
            ("s".to_owned(), AttributeValue::S("héllo".into())),
            ("n".to_owned(), AttributeValue::N("-1.5e3".into())),
            ("b".to_owned(), AttributeValue::B(Vec::new())),
            ("t".to_owned(), AttributeValue::Bool(true)),
            ("null".to_owned(), AttributeValue::Null),
            (
                "l".to_owned(),
                AttributeValue::L(vec![
                    AttributeValue::S(String::new()),
                    AttributeValue::M(nested.clone()),
                ]),
            ),
            ("m".to_owned(), AttributeValue::M(nested)),
        ]
        .into()
    }

    #[test]
    fn an_items_encoding_reads_back_as_a_borrowed_view_of_the_same_item() {
        let item = every_kind();
        let bytes = postcard::to_stdvec(&item).expect("encodes");
        let view: ItemRef<'_> = postcard::from_bytes(&bytes).expect("reads borrowed");
        assert_eq!(view, ItemRef::of(&item));
        assert_eq!(view.to_item(), item);
        let owned: Item = postcard::from_bytes(&bytes).expect("reads owned");
        assert_eq!(owned, item);
        assert_eq!(view.get("n"), Some(&AttributeRef::N("-1.5e3")));
        assert_eq!(view.get("nothing"), None);
        let mut cursor = view.cursor();
        assert_eq!(cursor.seek("a"), None);
        assert_eq!(
            cursor.seek("l").map(|v| matches!(v, AttributeRef::L(_))),
            Some(true)
        );
        assert_eq!(cursor.seek("n"), Some(&AttributeRef::N("-1.5e3")));
        assert_eq!(cursor.seek("nz"), None);
        assert_eq!(cursor.seek("t"), Some(&AttributeRef::Bool(true)));
        assert_eq!(cursor.seek("b"), None, "sought out of order: absent");
        let names: Vec<&str> = view.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["b", "l", "m", "n", "null", "s", "t"]);
    }

    #[test]
    fn truncated_or_foreign_encodings_are_errors_not_panics() {
        let bytes = postcard::to_stdvec(&every_kind()).expect("encodes");
        for end in 0..bytes.len() {
            assert!(
                postcard::from_bytes::<ItemRef<'_>>(&bytes[..end]).is_err(),
                "{end}"
            );
        }
        // Two attributes out of order (hand-encoded: count, then name, variant, value) read
        // in order.
        let unordered = [2, 1, b'b', 3, 1, 1, b'a', 3, 0];
        let view: ItemRef<'_> = postcard::from_bytes(&unordered).expect("reads");
        assert_eq!(view.get("a"), Some(&AttributeRef::Bool(false)));
        assert_eq!(view.get("b"), Some(&AttributeRef::Bool(true)));
    }
}
