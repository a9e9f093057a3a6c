//! `LocalStore`: the embedded store for local work, a crash-safe redb database in one file.
//!
//! Items live in one B-tree per table keyed by `(pk, sk)`, so queries walk keys in DynamoDB's
//! order (UTF-8 byte order). Each index is a second B-tree keyed by
//! `(index pk, index sk, pk, sk)`, maintained in the same transaction as the item, so index
//! reads are strongly consistent (DynamoDB's are eventually consistent: a superset of behaviour).

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};

use super::rules::{
    holds_entity, is_expired, item_key, now_epoch_seconds, query_key_attributes, start_sort_key,
    stored_version,
};
use super::{
    Expected, ItemUpdate, Query, QueryPage, Store, StoreError, TableSchema, TransactWrite, limits,
};
use crate::entity::{ItemKey, PARTITION_KEY, SORT_KEY, index_key_attributes};
use crate::item::{AttributeValue, Item};
use crate::telemetry::{consumed, read_units, write_units};

type ItemTable<'a> = TableDefinition<'a, (&'static str, &'static str), &'static [u8]>;
type IndexTable<'a> =
    TableDefinition<'a, (&'static str, &'static str, &'static str, &'static str), ()>;
type ItemReader = ReadOnlyTable<(&'static str, &'static str), &'static [u8]>;

/// A position in a query's key order: (partition, sort key, item pk, item sk). The item B-tree
/// is keyed by the first two alone; an index B-tree needs the item key to order equal index keys.
type ScanKey<'k> = (&'k str, &'k str, &'k str, &'k str);
type ScanBounds<'k> = (Bound<ScanKey<'k>>, Bound<ScanKey<'k>>);
/// Item keys in B-tree order, walkable from either end.
type Keys = Box<dyn DoubleEndedIterator<Item = Result<ItemKey, StoreError>>>;

/// An embedded database file holding any number of tables.
#[derive(Clone)]
pub struct LocalDatabase {
    db: Arc<Database>,
}

impl LocalDatabase {
    /// Opens (or creates) the database at `path`; its directory must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Internal(format!("opening {}: {e}", path.display())))?;
        Ok(Self { db: Arc::new(db) })
    }

    /// The store for one table, creating its B-trees on first use.
    pub fn table(&self, schema: &TableSchema) -> Result<LocalStore, StoreError> {
        let store = LocalStore {
            db: self.db.clone(),
            items: format!("items/{}", schema.name),
            indexes: schema
                .indexes
                .iter()
                .map(|name| (name.to_string(), format!("index/{}/{name}", schema.name)))
                .collect(),
        };
        let txn = self.db.begin_write().map_err(internal)?;
        txn.open_table(store.item_table()).map_err(internal)?;
        for (_, table) in &store.indexes {
            txn.open_table(IndexTable::new(table)).map_err(internal)?;
        }
        txn.commit().map_err(internal)?;
        Ok(store)
    }
}

/// One table of a [`LocalDatabase`], with DynamoDB's semantics.
#[derive(Clone)]
pub struct LocalStore {
    db: Arc<Database>,
    items: String,
    /// (index name, B-tree name)
    indexes: Vec<(String, String)>,
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn encode(item: &Item) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(item).map_err(internal)
}

fn decode(bytes: &[u8]) -> Result<Item, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Internal(format!("corrupt item: {e}")))
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn owned_key(pk: &str, sk: &str) -> ItemKey {
    ItemKey {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
    }
}

/// The live item at `key` in `items`.
fn read_live(items: &ItemReader, key: &ItemKey) -> Result<Option<Item>, StoreError> {
    let Some(bytes) = items
        .get((key.pk.as_str(), key.sk.as_str()))
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let item = decode(bytes.value())?;
    Ok((!is_expired(&item, now_epoch_seconds())).then_some(item))
}

/// A failed condition of a transaction's write cancels it; other failures stay what they are.
fn canceled(index: usize, count: usize, reason: StoreError) -> StoreError {
    match reason {
        StoreError::AlreadyExists | StoreError::NotFound | StoreError::VersionConflict { .. } => {
            StoreError::TransactionCanceled {
                index,
                count,
                reason: Box::new(reason),
            }
        }
        other => other,
    }
}

/// The smallest string greater than every string starting with `prefix`, if there is one.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl LocalStore {
    fn index_names(&self) -> Vec<&str> {
        self.indexes.iter().map(|(name, _)| name.as_str()).collect()
    }

    fn item_table(&self) -> ItemTable<'_> {
        TableDefinition::new(&self.items)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Self) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
    }

    /// Replaces the stored item at `key` (`None` deletes it), keeping indexes in step.
    fn write(
        &self,
        txn: &redb::WriteTransaction,
        key: &ItemKey,
        old: Option<&Item>,
        new: Option<&Item>,
    ) -> Result<(), StoreError> {
        let mut items = txn.open_table(self.item_table()).map_err(internal)?;
        match new {
            Some(item) => {
                items
                    .insert((key.pk.as_str(), key.sk.as_str()), encode(item)?.as_slice())
                    .map_err(internal)?;
            }
            None => {
                items
                    .remove((key.pk.as_str(), key.sk.as_str()))
                    .map_err(internal)?;
            }
        }
        for (name, table) in &self.indexes {
            let (pk_attr, sk_attr) = index_key_attributes(name);
            let index_key = |item: &Item| {
                string_attr(item, &pk_attr)
                    .zip(string_attr(item, &sk_attr))
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
            };
            let before = old.and_then(index_key);
            let after = new.and_then(index_key);
            if before == after {
                continue;
            }
            let mut index = txn.open_table(IndexTable::new(table)).map_err(internal)?;
            if let Some((ipk, isk)) = &before {
                index
                    .remove((ipk.as_str(), isk.as_str(), key.pk.as_str(), key.sk.as_str()))
                    .map_err(internal)?;
            }
            if let Some((ipk, isk)) = &after {
                index
                    .insert(
                        (ipk.as_str(), isk.as_str(), key.pk.as_str(), key.sk.as_str()),
                        (),
                    )
                    .map_err(internal)?;
            }
        }
        Ok(())
    }

    /// The live (not expired) item at `key`, read inside a write transaction.
    fn current(
        &self,
        txn: &redb::WriteTransaction,
        key: &ItemKey,
    ) -> Result<Option<Item>, StoreError> {
        let items = txn.open_table(self.item_table()).map_err(internal)?;
        let stored = items
            .get((key.pk.as_str(), key.sk.as_str()))
            .map_err(internal)?;
        stored.map(|bytes| decode(bytes.value())).transpose()
    }

    /// Stores a new item in `txn`, as [`Store::create`] describes.
    fn create_in(&self, txn: &redb::WriteTransaction, item: &Item) -> Result<(), StoreError> {
        let key = item_key(item)?;
        let existing = self.current(txn, &key)?;
        if existing
            .as_ref()
            .is_some_and(|old| !is_expired(old, now_epoch_seconds()))
        {
            return Err(StoreError::AlreadyExists);
        }
        self.write(txn, &key, existing.as_ref(), Some(item))
    }

    /// The live item at `key` if it meets `expected` (entity type and version).
    fn expected_in(
        &self,
        txn: &redb::WriteTransaction,
        key: &ItemKey,
        expected: &Expected,
    ) -> Result<Item, StoreError> {
        let old = self.live_entity(txn, key, expected.entity.as_deref())?;
        if let Some((attribute, expected)) = &expected.version {
            let actual = stored_version(&old, attribute);
            if *expected != actual {
                return Err(StoreError::VersionConflict {
                    expected: *expected,
                    actual,
                });
            }
        }
        Ok(old)
    }

    /// The live item at `key` holding `entity`; NOT_FOUND otherwise.
    fn live_entity(
        &self,
        txn: &redb::WriteTransaction,
        key: &ItemKey,
        entity: Option<&str>,
    ) -> Result<Item, StoreError> {
        match self.current(txn, key)? {
            Some(old) if !is_expired(&old, now_epoch_seconds()) && holds_entity(&old, entity) => {
                Ok(old)
            }
            _ => Err(StoreError::NotFound),
        }
    }

    /// Applies `update` in `txn`, as [`Store::update`] describes; returns the new item.
    fn update_in(
        &self,
        txn: &redb::WriteTransaction,
        key: &ItemKey,
        update: ItemUpdate,
    ) -> Result<Item, StoreError> {
        let old = self.live_entity(txn, key, update.entity.as_deref())?;
        let mut new = old.clone();
        if let Some((attribute, expected)) = &update.version {
            let actual = stored_version(&old, attribute);
            if expected.is_some_and(|expected| expected != actual) {
                return Err(StoreError::VersionConflict {
                    expected: expected.unwrap_or(0),
                    actual,
                });
            }
            new.insert(
                attribute.clone(),
                AttributeValue::N((actual + 1).to_string()),
            );
        }
        for name in &update.remove {
            new.remove(name);
        }
        new.extend(update.set);
        limits::check_item(&new, &self.index_names())?;
        self.write(txn, key, Some(&old), Some(&new))?;
        Ok(new)
    }

    /// The index B-tree a query walks; `None` for the table, whose item B-tree it walks.
    fn index_table(&self, index: Option<&str>) -> Result<Option<&str>, StoreError> {
        let Some(name) = index else {
            return Ok(None);
        };
        match self.indexes.iter().find(|(n, _)| n == name) {
            Some((_, table)) => Ok(Some(table)),
            None => Err(StoreError::Internal(format!("unknown index `{name}`"))),
        }
    }

    /// One page of `query`, walking the item B-tree or an index B-tree in one read transaction.
    fn query_sync(&self, query: &Query) -> Result<QueryPage, StoreError> {
        let now = now_epoch_seconds();
        let txn = self.db.begin_read().map_err(internal)?;
        let items = txn.open_table(self.item_table()).map_err(internal)?;
        let index_table = self.index_table(query.index.as_deref())?;
        let (pk_attr, sk_attr) = query_key_attributes(query.index.as_deref());
        let after = match &query.start_after {
            Some(start) => {
                let base = item_key(start)
                    .map_err(|_| StoreError::InvalidStartKey("missing pk/sk".into()))?;
                Some((start_sort_key(query, start, &pk_attr, &sk_attr)?, base))
            }
            None => None,
        };
        let successor = prefix_successor(&query.sort_key_prefix);
        let end_of_partition = format!("{}\0", query.partition);
        let bounds = scan_bounds(
            query,
            successor.as_deref(),
            &end_of_partition,
            after.as_ref(),
        );
        let keys = match index_table {
            None => item_keys(&items, bounds)?,
            Some(table) => index_keys(&txn, table, bounds)?,
        };
        let names = [PARTITION_KEY, SORT_KEY, pk_attr.as_str(), sk_attr.as_str()];
        let key_names = if index_table.is_some() {
            &names[..]
        } else {
            &names[..2]
        };
        if query.descending {
            collect_page(&items, &mut keys.rev(), query.limit, now, key_names)
        } else {
            collect_page(&items, &mut { keys }, query.limit, now, key_names)
        }
    }
}

/// The keys a query walks: its partition and sort-key prefix, narrowed to those past `after`
/// (the start key's sort key and item key) in the query's direction.
fn scan_bounds<'k>(
    query: &'k Query,
    successor: Option<&'k str>,
    end_of_partition: &'k str,
    after: Option<&'k (&'k str, ItemKey)>,
) -> ScanBounds<'k> {
    let partition = query.partition.as_str();
    let mut lower = Bound::Included((partition, query.sort_key_prefix.as_str(), "", ""));
    let mut upper = match successor {
        Some(s) => Bound::Excluded((partition, s, "", "")),
        None => Bound::Excluded((end_of_partition, "", "", "")),
    };
    if let Some((sort_key, base)) = after {
        let bound = Bound::Excluded((partition, *sort_key, base.pk.as_str(), base.sk.as_str()));
        if query.descending {
            upper = bound;
        } else {
            lower = bound;
        }
    }
    (lower, upper)
}

/// The item B-tree's keys within `bounds`.
fn item_keys<'k>(items: &ItemReader, (lower, upper): ScanBounds<'k>) -> Result<Keys, StoreError> {
    let table_key = |(pk, sk, _, _): ScanKey<'k>| -> (&'k str, &'k str) { (pk, sk) };
    let range = items
        .range::<(&str, &str)>((lower.map(table_key), upper.map(table_key)))
        .map_err(internal)?;
    Ok(Box::new(range.map(|entry| {
        entry.map_err(internal).map(|(k, _)| {
            let (pk, sk) = k.value();
            owned_key(pk, sk)
        })
    })))
}

/// The keys of the items an index B-tree holds within `bounds`.
fn index_keys(
    txn: &ReadTransaction,
    table: &str,
    bounds: ScanBounds<'_>,
) -> Result<Keys, StoreError> {
    let index = txn.open_table(IndexTable::new(table)).map_err(internal)?;
    let range = index.range::<ScanKey<'_>>(bounds).map_err(internal)?;
    Ok(Box::new(range.map(|entry| {
        entry.map_err(internal).map(|(k, _)| {
            let (_, _, pk, sk) = k.value();
            owned_key(pk, sk)
        })
    })))
}

/// Reads the items at `keys` in order and keeps up to `limit` live ones; the page's last key
/// (the attributes `key_names`) is set when the limit is hit and another key follows.
fn collect_page(
    items: &ItemReader,
    keys: &mut dyn Iterator<Item = Result<ItemKey, StoreError>>,
    limit: usize,
    now: i64,
    key_names: &[&str],
) -> Result<QueryPage, StoreError> {
    let mut page = QueryPage {
        items: Vec::new(),
        last_key: None,
    };
    let mut evaluated = 0;
    while let Some(key) = keys.next() {
        let key = key?;
        evaluated += 1;
        let Some(bytes) = items
            .get((key.pk.as_str(), key.sk.as_str()))
            .map_err(internal)?
        else {
            continue;
        };
        let item = decode(bytes.value())?;
        let last_key = (evaluated == limit).then(|| key_attributes(&item, key_names));
        if !is_expired(&item, now) {
            page.items.push(item);
        }
        if let Some(last_key) = last_key {
            // DynamoDB reports a last key whenever the limit is hit; peeking spares clients an
            // empty last page when nothing follows.
            if keys.next().is_some() {
                page.last_key = Some(last_key);
            }
            return Ok(page);
        }
    }
    Ok(page)
}

fn key_attributes(item: &Item, names: &[&str]) -> Item {
    names
        .iter()
        .filter_map(|name| item.get(*name).map(|v| ((*name).to_owned(), v.clone())))
        .collect()
}

#[async_trait]
impl Store for LocalStore {
    async fn create(&self, item: Item) -> Result<(), StoreError> {
        limits::check_item(&item, &self.index_names())?;
        let units = write_units(limits::item_size(&item));
        self.blocking(move |this| {
            let txn = this.db.begin_write().map_err(internal)?;
            this.create_in(&txn, &item)?;
            txn.commit().map_err(internal)
        })
        .await?;
        consumed(0.0, units);
        Ok(())
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        limits::check_item_key(key)?;
        let key = key.clone();
        let item = self
            .blocking(move |this| {
                let txn = this.db.begin_read().map_err(internal)?;
                let items = txn.open_table(this.item_table()).map_err(internal)?;
                read_live(&items, &key)
            })
            .await?;
        consumed(read_units(item.as_ref().map_or(0, limits::item_size)), 0.0);
        Ok(item)
    }

    async fn update(&self, key: &ItemKey, update: ItemUpdate) -> Result<Item, StoreError> {
        limits::check_item_key(key)?;
        limits::check_update(&update.set, &self.index_names())?;
        let key = key.clone();
        let new = self
            .blocking(move |this| {
                let txn = this.db.begin_write().map_err(internal)?;
                let new = this.update_in(&txn, &key, update)?;
                txn.commit().map_err(internal)?;
                Ok(new)
            })
            .await?;
        consumed(0.0, write_units(limits::item_size(&new)));
        Ok(new)
    }

    async fn delete(&self, key: &ItemKey, expected: Expected) -> Result<Item, StoreError> {
        limits::check_item_key(key)?;
        let key = key.clone();
        let old = self
            .blocking(move |this| {
                let txn = this.db.begin_write().map_err(internal)?;
                let old = this.expected_in(&txn, &key, &expected)?;
                this.write(&txn, &key, Some(&old), None)?;
                txn.commit().map_err(internal)?;
                Ok(old)
            })
            .await?;
        consumed(0.0, write_units(limits::item_size(&old)));
        Ok(old)
    }

    async fn transact(&self, writes: Vec<TransactWrite>) -> Result<(), StoreError> {
        let keys = limits::check_transaction(&writes, &self.index_names())?;
        if writes.is_empty() {
            return Ok(());
        }
        // Transactional writes cost twice a plain write's units (the items this store does
        // not read before the transaction count as 1 KB).
        let units: f64 = writes
            .iter()
            .map(|write| match write {
                TransactWrite::Create(item) => 2.0 * write_units(limits::item_size(item)),
                _ => 2.0,
            })
            .sum();
        self.blocking(move |this| {
            // Every write in one redb transaction: an error drops it, and with it every write.
            let txn = this.db.begin_write().map_err(internal)?;
            let count = writes.len();
            for (index, (write, key)) in writes.into_iter().zip(&keys).enumerate() {
                let applied = match write {
                    TransactWrite::Create(item) => this.create_in(&txn, &item),
                    TransactWrite::Update { update, .. } => {
                        this.update_in(&txn, key, update).map(drop)
                    }
                    TransactWrite::Delete { expected, .. } => this
                        .expected_in(&txn, key, &expected)
                        .and_then(|old| this.write(&txn, key, Some(&old), None)),
                    TransactWrite::Check { expected, .. } => {
                        this.expected_in(&txn, key, &expected).map(drop)
                    }
                };
                applied.map_err(|reason| canceled(index, count, reason))?;
            }
            txn.commit().map_err(internal)
        })
        .await?;
        consumed(0.0, units);
        Ok(())
    }

    async fn batch_get(&self, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError> {
        keys.iter().try_for_each(limits::check_item_key)?;
        let keys = keys.to_vec();
        let items: Vec<Option<Item>> = self
            .blocking(move |this| {
                let txn = this.db.begin_read().map_err(internal)?;
                let items = txn.open_table(this.item_table()).map_err(internal)?;
                keys.iter().map(|key| read_live(&items, key)).collect()
            })
            .await?;
        let units = items
            .iter()
            .flatten()
            .map(|item| read_units(limits::item_size(item)));
        consumed(units.sum(), 0.0);
        Ok(items)
    }

    async fn query(&self, query: Query) -> Result<QueryPage, StoreError> {
        limits::check_query(&query)?;
        // Reads of an index are eventually consistent: half the units.
        let share = if query.index.is_some() { 0.5 } else { 1.0 };
        let page = self.blocking(move |this| this.query_sync(&query)).await?;
        let bytes = page.items.iter().map(limits::item_size).sum();
        consumed(share * read_units(bytes), 0.0);
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn prefix_successor_bounds_every_extension() {
        assert_eq!(prefix_successor("TASK#").as_deref(), Some("TASK$"));
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        let next = prefix_successor("\u{D7FF}").expect("skips surrogates");
        assert_eq!(next, "\u{E000}");
    }
}
