//! DynamoDB's limits on what an item may hold, checked by both stores before they write, so the
//! embedded store refuses exactly what DynamoDB would and both answer with the same error: items
//! over 400 KB (DynamoDB's size rules), partition keys over 2,048 bytes, sort keys over 1,024,
//! empty key attribute values, numbers outside DynamoDB's range or precision.

use super::{Query, StoreError, TransactWrite};
use crate::entity::{ItemKey, PARTITION_KEY, SORT_KEY, index_key_attributes};
use crate::item::{AttributeRef, AttributeValue, Item, ItemRef};

/// The largest item DynamoDB stores, in its own size units (attribute names included).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// The longest partition-key value, in UTF-8 bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// The longest sort-key value, in UTF-8 bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1024;
/// DynamoDB numbers hold at most 38 significant digits.
const MAX_SIGNIFICANT_DIGITS: usize = 38;
/// Positive magnitudes DynamoDB numbers span: 1E-130 up to (but excluding) 1E+126.
const MIN_EXPONENT: i64 = -130;
const MAX_EXPONENT: i64 = 125;

/// The message of an item over [`MAX_ITEM_BYTES`] (DynamoDB says it in several ways).
pub const ITEM_TOO_LARGE: &str = "the item is larger than DynamoDB's 400 KB limit";

/// The size DynamoDB counts for `item` (its documented "item sizes and formats" rules).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(&AttributeRef::of(value)))
        .sum()
}

/// [`item_size`] of a borrowed item.
pub fn view_size(item: &ItemRef<'_>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeRef<'_>) -> usize {
    match value {
        AttributeRef::S(s) => s.len(),
        AttributeRef::N(n) => significant_digits(n).div_ceil(2) + 1,
        AttributeRef::B(b) => b.len(),
        AttributeRef::Bool(_) | AttributeRef::Null => 1,
        // 3 bytes per list or map, 1 more per element.
        AttributeRef::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeRef::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
    }
}

/// How many digits a decimal number's text has without sign, point, exponent, leading and
/// trailing zeros.
fn significant_digits(number: &str) -> usize {
    let mantissa = number.split(['e', 'E']).next().unwrap_or_default();
    let digits = || mantissa.bytes().filter(u8::is_ascii_digit);
    let leading = digits().take_while(|&d| d == b'0').count();
    let trailing = digits().rev().take_while(|&d| d == b'0').count();
    digits().count().saturating_sub(leading + trailing)
}

/// Whether `number` is a decimal DynamoDB accepts: at most 38 significant digits, zero or a
/// magnitude from 1E-130 to below 1E+126.
pub fn valid_number(number: &str) -> bool {
    let (mantissa, exponent) = match number.split_once(['e', 'E']) {
        Some((m, e)) => match e.parse::<i64>() {
            Ok(e) => (m, e),
            Err(_) => return false,
        },
        None => (number, 0),
    };
    let unsigned = mantissa.strip_prefix(['-', '+']).unwrap_or(mantissa);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !is_digits(whole) || !is_digits(fraction) {
        return false;
    }
    let all: String = format!("{whole}{fraction}");
    let Some(first) = all.find(|c| c != '0') else {
        return true; // zero
    };
    let significant = all.trim_matches('0').len();
    // The decimal exponent of the leading significant digit: 1.5 → 0, 0.01 → -2, 120 → 2.
    let Some(leading) = i64::try_from(whole.len())
        .ok()
        .zip(i64::try_from(first).ok())
        .and_then(|(whole, first)| (whole - 1 - first).checked_add(exponent))
    else {
        return false;
    };
    significant <= MAX_SIGNIFICANT_DIGITS && (MIN_EXPONENT..=MAX_EXPONENT).contains(&leading)
}

/// Checks `item` against DynamoDB's limits; `indexes` are the table's index names (their key
/// attributes follow the key rules when present).
pub(super) fn check_item(item: &Item, indexes: &[&str]) -> Result<(), StoreError> {
    check_key(item, PARTITION_KEY, MAX_PARTITION_KEY_BYTES, true)?;
    check_key(item, SORT_KEY, MAX_SORT_KEY_BYTES, true)?;
    for index in indexes {
        let (pk, sk) = index_key_attributes(index);
        check_key(item, &pk, MAX_PARTITION_KEY_BYTES, false)?;
        check_key(item, &sk, MAX_SORT_KEY_BYTES, false)?;
    }
    check_values(item.values())?;
    if item_size(item) > MAX_ITEM_BYTES {
        return Err(StoreError::Invalid(ITEM_TOO_LARGE.to_owned()));
    }
    Ok(())
}

/// Checks the values an update sets: index keys and numbers (the merged item's size is the
/// store's to check, since only it sees the whole item).
pub(super) fn check_update(set: &Item, indexes: &[&str]) -> Result<(), StoreError> {
    for index in indexes {
        let (pk, sk) = index_key_attributes(index);
        check_key(set, &pk, MAX_PARTITION_KEY_BYTES, false)?;
        check_key(set, &sk, MAX_SORT_KEY_BYTES, false)?;
    }
    check_values(set.values())
}

/// Checks the key of a read, update or delete (DynamoDB refuses an oversized or empty key in
/// any request, not only in writes).
pub(super) fn check_item_key(key: &ItemKey) -> Result<(), StoreError> {
    check_key_value(PARTITION_KEY, &key.pk, MAX_PARTITION_KEY_BYTES)?;
    check_key_value(SORT_KEY, &key.sk, MAX_SORT_KEY_BYTES)
}

/// Checks a transaction: 1 to [`super::MAX_TRANSACTION_WRITES`] writes, each on its own item
/// and within the limits its single-item operation has (DynamoDB refuses the whole request).
/// Returns the writes' keys.
pub(super) fn check_transaction(
    writes: &[TransactWrite],
    indexes: &[&str],
) -> Result<Vec<ItemKey>, StoreError> {
    if writes.len() > super::MAX_TRANSACTION_WRITES {
        return Err(StoreError::Invalid(format!(
            "a transaction holds at most {} writes (DynamoDB's limit); this one has {}",
            super::MAX_TRANSACTION_WRITES,
            writes.len()
        )));
    }
    let mut keys: Vec<ItemKey> = Vec::with_capacity(writes.len());
    for write in writes {
        let key = match write {
            TransactWrite::Create(item) => {
                check_item(item, indexes)?;
                super::rules::item_key(item)?
            }
            TransactWrite::Update { key, update } => {
                check_update(&update.set, indexes)?;
                key.clone()
            }
            TransactWrite::Delete { key, .. } | TransactWrite::Check { key, .. } => key.clone(),
        };
        check_item_key(&key)?;
        if keys.contains(&key) {
            return Err(StoreError::Invalid(format!(
                "a transaction writes the item `{}` / `{}` twice; DynamoDB allows one write per item",
                key.pk, key.sk
            )));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Checks a query's partition value and sort-key prefix (which may be empty).
pub(super) fn check_query(query: &Query) -> Result<(), StoreError> {
    let (pk, sk) = super::rules::query_key_attributes(query.index.as_deref());
    check_key_value(&pk, &query.partition, MAX_PARTITION_KEY_BYTES)?;
    if query.sort_key_prefix.len() > MAX_SORT_KEY_BYTES {
        return check_key_value(&sk, &query.sort_key_prefix, MAX_SORT_KEY_BYTES);
    }
    Ok(())
}

fn check_key(item: &Item, attribute: &str, max: usize, required: bool) -> Result<(), StoreError> {
    match item.get(attribute) {
        None if !required => Ok(()),
        Some(AttributeValue::S(value)) => check_key_value(attribute, value, max),
        _ => Err(StoreError::Invalid(format!(
            "key attribute `{attribute}` is missing or not a string"
        ))),
    }
}

fn check_key_value(attribute: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.is_empty() {
        return Err(StoreError::Invalid(format!(
            "key attribute `{attribute}` is empty"
        )));
    }
    if value.len() > max {
        return Err(StoreError::Invalid(format!(
            "key attribute `{attribute}` is {} bytes, over DynamoDB's {max}-byte limit",
            value.len()
        )));
    }
    Ok(())
}

fn check_values<'a>(values: impl Iterator<Item = &'a AttributeValue>) -> Result<(), StoreError> {
    for value in values {
        match value {
            AttributeValue::N(n) if !valid_number(n) => {
                return Err(StoreError::Invalid(format!(
                    "number `{n}` is outside DynamoDB's range (38 significant digits, 1E-130 to 1E+126)"
                )));
            }
            AttributeValue::L(items) => check_values(items.iter())?,
            AttributeValue::M(map) => check_values(map.values())?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        let item: Item = [
            ("pk".to_owned(), s("abc")),
            ("n".to_owned(), AttributeValue::N("-0012.3400".to_owned())),
            ("b".to_owned(), AttributeValue::Bool(true)),
            (
                "l".to_owned(),
                AttributeValue::L(vec![s("xy"), AttributeValue::Null]),
            ),
            (
                "m".to_owned(),
                AttributeValue::M([("k".to_owned(), s("v"))].into()),
            ),
        ]
        .into();
        // pk: 2 + 3; n: 1 + (4 digits → 2) + 1; b: 1 + 1; l: 1 + 3 + (1 + 2) + (1 + 1);
        // m: 1 + 3 + (1 + 1 + 1).
        assert_eq!(item_size(&item), 5 + 4 + 2 + 9 + 7);
    }

    #[test]
    fn numbers_within_range_and_precision() {
        for ok in [
            "0",
            "-0.0",
            "1",
            "1.5",
            "1E-130",
            "9.9E+125",
            "-1e125",
            "12345678901234567890123456789012345678",
        ] {
            assert!(valid_number(ok), "{ok}");
        }
        for bad in [
            "10e9223372036854775807",
            "1e-9223372036854775808",
            "",
            "-",
            "1e126",
            "1E-131",
            "123456789012345678901234567890123456789",
            "NaN",
            "inf",
            "1.2.3",
            "1e",
            "0x10",
        ] {
            assert!(!valid_number(bad), "{bad}");
        }
    }

    #[test]
    fn keys_and_size_limits() {
        let key = |pk: &str, sk: &str| -> Item {
            [("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))].into()
        };
        assert!(check_item(&key("p", "s"), &[]).is_ok());
        assert!(check_item(&key(&"p".repeat(2048), &"s".repeat(1024)), &[]).is_ok());
        assert!(check_item(&key(&"p".repeat(2049), "s"), &[]).is_err());
        assert!(check_item(&key("p", &"s".repeat(1025)), &[]).is_err());
        assert!(check_item(&key("p", ""), &[]).is_err());
        let mut indexed = key("p", "s");
        indexed.insert("gsi1pk".to_owned(), s(""));
        assert!(check_item(&indexed, &["gsi1"]).is_err());
        let mut big = key("p", "s");
        big.insert("data".to_owned(), s(&"x".repeat(MAX_ITEM_BYTES)));
        assert!(matches!(
            check_item(&big, &[]),
            Err(StoreError::Invalid(message)) if message == ITEM_TOO_LARGE
        ));
    }
}
