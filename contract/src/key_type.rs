//! Which proto fields can be part of a key, and the Rust type a key parameter of that field
//! has. The generator applies the rule to descriptors, the derive to `#[prost(...)]` attributes.

/// The type of a field that can be part of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// `string`, used as it is.
    String,
    /// `uint32`/`fixed32`, zero-padded to 10 digits so keys sort numerically.
    U32,
    /// `uint64`/`fixed64`, zero-padded to 20 digits.
    U64,
    /// An enum, stored by its value's name.
    Enum,
}

/// The list of key types, for messages.
pub const KEY_TYPES: &str = "string, enum or unsigned integer (uint32, uint64, fixed32, fixed64)";

impl KeyType {
    /// The key type of a singular field without presence (neither `optional`, `repeated` nor a
    /// map) whose proto type is `scalar` (a `.proto` scalar keyword such as `uint64`), or `None`
    /// when such a field cannot be a key. Enums are [`KeyType::Enum`]; messages never are keys.
    pub fn of_scalar(scalar: &str) -> Option<Self> {
        match scalar {
            "string" => Some(Self::String),
            "uint32" | "fixed32" => Some(Self::U32),
            "uint64" | "fixed64" => Some(Self::U64),
            _ => None,
        }
    }

    /// The Rust type prost generates for such a field (enums are `i32`).
    pub fn rust_type(self) -> &'static str {
        match self {
            Self::String => "String",
            Self::U32 => "u32",
            Self::U64 => "u64",
            Self::Enum => "i32",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_unsigned_integers_are_keys() {
        assert_eq!(KeyType::of_scalar("fixed64"), Some(KeyType::U64));
        assert_eq!(
            KeyType::of_scalar("uint32").map(KeyType::rust_type),
            Some("u32")
        );
        for not_a_key in ["int64", "sint32", "double", "bool", "bytes"] {
            assert_eq!(KeyType::of_scalar(not_a_key), None, "{not_a_key}");
        }
    }
}
