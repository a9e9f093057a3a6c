//! Rules both stores apply, written once so `LocalStore` and `DynamoStore` cannot drift apart:
//! which attributes key a query, whether a page's start key lies inside the queried partition
//! and sort-key prefix (page tokens can be forged, so each store re-checks the key it is given),
//! how a stored version attribute reads as a number, and when an item has expired.

use super::{Query, StoreError};
use crate::entity::{ENTITY_TYPE, ItemKey, PARTITION_KEY, SORT_KEY, TTL, index_key_attributes};
use crate::item::{AttributeRef, AttributeValue, Item, ItemRef};

/// The key of an item to store: its string `pk` and `sk` attributes.
pub(super) fn item_key(item: &Item) -> Result<ItemKey, StoreError> {
    match (item.get(PARTITION_KEY), item.get(SORT_KEY)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Ok(ItemKey {
            pk: pk.clone(),
            sk: sk.clone(),
        }),
        _ => Err(StoreError::Internal(
            "item lacks string `pk`/`sk` attributes".into(),
        )),
    }
}

/// The partition and sort key attribute names a query matches: the index's, or the table's.
pub(super) fn query_key_attributes(index: Option<&str>) -> (String, String) {
    match index {
        Some(index) => index_key_attributes(index),
        None => (PARTITION_KEY.to_owned(), SORT_KEY.to_owned()),
    }
}

/// The sort key (`sk_attr`) a page starts after, provided `start` is a key of the queried table
/// or index — exactly its key attributes (the table's `pk`/`sk`, plus the index's for an index
/// query), each a non-empty string, as DynamoDB requires of an `ExclusiveStartKey` — and lies in
/// the query's partition and sort-key prefix. Anything else is refused before a request.
pub(super) fn start_sort_key<'a>(
    query: &Query,
    start: &'a Item,
    pk_attr: &str,
    sk_attr: &str,
) -> Result<&'a str, StoreError> {
    let outside = || StoreError::InvalidStartKey("key outside the queried range".into());
    let mut expected = vec![PARTITION_KEY, SORT_KEY];
    if query.index.is_some() {
        expected.extend([pk_attr, sk_attr]);
    }
    let is_key = start.len() == expected.len()
        && expected
            .iter()
            .all(|a| matches!(start.get(*a), Some(AttributeValue::S(v)) if !v.is_empty()));
    if !is_key {
        return Err(StoreError::InvalidStartKey(
            "not a key of the queried table or index".into(),
        ));
    }
    match (start.get(pk_attr), start.get(sk_attr)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk)))
            if *pk == query.partition && sk.starts_with(&query.sort_key_prefix) =>
        {
            Ok(sk)
        }
        _ => Err(outside()),
    }
}

/// The stored value of a version attribute; an absent or unreadable one counts as 0, the value
/// the first versioned update starts from.
pub(super) fn stored_version(item: &Item, attribute: &str) -> u64 {
    match item.get(attribute) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Whether `item` holds entity `entity` (any entity for `None`): its entity-type attribute names
/// it, or it has none (items written before the attribute existed).
pub(crate) fn holds_entity(item: &ItemRef<'_>, entity: Option<&str>) -> bool {
    names_entity(item.get(ENTITY_TYPE).map(AttributeRef::as_str), entity)
}

/// [`holds_entity`] of an owned item.
pub(super) fn holds_entity_item(item: &Item, entity: Option<&str>) -> bool {
    let stored = item.get(ENTITY_TYPE).map(|value| match value {
        AttributeValue::S(name) => Some(name.as_str()),
        _ => None,
    });
    names_entity(stored, entity)
}

/// Whether an entity-type attribute (absent: `None`; not a string: `Some(None)`) admits `entity`.
fn names_entity(stored: Option<Option<&str>>, entity: Option<&str>) -> bool {
    match (entity, stored) {
        (None, _) | (_, None) => true,
        (Some(entity), Some(name)) => name == Some(entity),
    }
}

/// Whether an item carries a `ttl` that has passed.
pub(super) fn is_expired(item: &ItemRef<'_>, now_epoch_seconds: i64) -> bool {
    item.get(TTL)
        .is_some_and(|ttl| has_passed(ttl, now_epoch_seconds))
}

/// [`is_expired`] of an owned item.
pub(super) fn is_expired_item(item: &Item, now_epoch_seconds: i64) -> bool {
    item.get(TTL)
        .is_some_and(|ttl| has_passed(&AttributeRef::of(ttl), now_epoch_seconds))
}

fn has_passed(ttl: &AttributeRef<'_>, now_epoch_seconds: i64) -> bool {
    matches!(ttl, AttributeRef::N(n) if n.parse::<i64>().is_ok_and(|ttl| ttl <= now_epoch_seconds))
}

/// Seconds since the Unix epoch.
pub(super) fn now_epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
