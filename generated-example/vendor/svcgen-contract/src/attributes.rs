//! Attribute names of stored items: the table's key is `pk`/`sk`, index `NAME` uses
//! `NAMEpk`/`NAMEsk`, expiry is `ttl` (epoch seconds), and `svcgen_entity` names the entity
//! (message) an item stores. Every key attribute is a string. A proto field may not use any of
//! these names.

/// Attribute holding the partition key.
pub const PARTITION_KEY: &str = "pk";
/// Attribute holding the sort key.
pub const SORT_KEY: &str = "sk";
/// Attribute holding the expiry time in epoch seconds (DynamoDB TTL).
pub const TTL: &str = "ttl";

/// Attribute holding the name of the entity (message) an item stores, e.g. `Task`: a read for
/// one entity never returns another's item. Prefixed with `svcgen_` so that no natural field
/// name clashes with it; items written without it (before it existed) read as any entity.
pub const ENTITY_TYPE: &str = "svcgen_entity";

/// Attribute names of index `index`'s partition and sort keys.
pub fn index_key_attributes(index: &str) -> (String, String) {
    (
        format!("{index}{PARTITION_KEY}"),
        format!("{index}{SORT_KEY}"),
    )
}

/// Every attribute name an entity with `indexes` reserves for its keys, expiry and type.
pub fn reserved<'a>(indexes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = [PARTITION_KEY, SORT_KEY, TTL, ENTITY_TYPE]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for index in indexes {
        let (pk, sk) = index_key_attributes(index);
        names.extend([pk, sk]);
    }
    names
}

/// Whether `name` is a valid index name: lower-case letters and digits, starting with a
/// letter (its key attributes `<name>pk`/`<name>sk` are then plain identifiers too).
pub fn valid_index_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_key_ttl_type_and_index_attributes() {
        assert_eq!(
            reserved(["gsi1"]),
            ["pk", "sk", "ttl", "svcgen_entity", "gsi1pk", "gsi1sk"]
        );
        assert!(valid_index_name("gsi1"));
        assert!(!valid_index_name("1gsi") && !valid_index_name("Gsi") && !valid_index_name(""));
    }
}
