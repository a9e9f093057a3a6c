//! `LocalStore`: the embedded store for local work, a crash-safe redb database in one file.
//!
//! Items live in one B-tree per table keyed by `(pk, sk)`, so queries walk keys in DynamoDB's
//! order (UTF-8 byte order). Each index is a second B-tree keyed by
//! `(index pk, index sk, pk, sk)`, maintained in the same transaction as the item, so index
//! reads are strongly consistent (DynamoDB's are eventually consistent: a superset of behaviour).

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition,
};

use super::rules::{
    holds_entity_item, is_expired, is_expired_item, item_key, now_epoch_seconds,
    query_key_attributes, start_sort_key, stored_version,
};
use super::{
    Expected, ItemUpdate, Query, QueryPage, ReadItem, Store, StoreError, TableSchema,
    TransactWrite, limits,
};
use crate::entity::{ItemKey, PARTITION_KEY, SORT_KEY, index_key_attributes};
use crate::item::{AttributeValue, Item, ItemRef};
use crate::telemetry::{consumed, read_units, write_units};

type ItemTable<'a> = TableDefinition<'a, (&'static str, &'static str), &'static [u8]>;
type IndexTable<'a> =
    TableDefinition<'a, (&'static str, &'static str, &'static str, &'static str), ()>;
type ItemReader = ReadOnlyTable<(&'static str, &'static str), &'static [u8]>;

/// A position in a query's key order: (partition, sort key, item pk, item sk). The item B-tree
/// is keyed by the first two alone; an index B-tree needs the item key to order equal index keys.
type ScanKey<'k> = (&'k str, &'k str, &'k str, &'k str);
type ScanBounds<'k> = (Bound<ScanKey<'k>>, Bound<ScanKey<'k>>);
/// The stored items a query walks, in B-tree order, walkable from either end; `None` for an
/// index entry whose item is gone.
type Stored = Box<dyn DoubleEndedIterator<Item = Result<Option<Encoded>, StoreError>>>;
type Encoded = redb::AccessGuard<'static, &'static [u8]>;
/// What a query does with each live item it reads: its stored encoding, and that read in place.
type ReadStored<'r> = dyn for<'a> FnMut(&'a [u8], &ItemRef<'a>) + 'r;

/// An embedded database file holding any number of tables.
///
/// Writes go through one writer thread that commits them in groups: every write that arrives
/// while a commit is on disk joins the next one, which is as durable (redb's
/// `Durability::Immediate`: on disk before any of its callers is answered) but one fsync for
/// the group. Its writes apply in arrival order, each seeing the ones before it, so two creates
/// of one key in a group still conflict; a write refused by its condition changes nothing.
#[derive(Clone)]
pub struct LocalDatabase {
    db: Arc<Database>,
    writer: Arc<Writer>,
}

/// The writer thread and the way to it. Dropped with the last store, it lets the thread finish
/// what was sent and waits for it, so the database file is closed when `drop` returns (and
/// can be opened again).
struct Writer {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Groups committed (or abandoned), for the tests.
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            // A job's store may be the last one, dropped on the writer thread itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// A write waiting for the writer: it runs in the group's transaction and returns how to answer
/// its caller once the group is committed, and whether it failed midway (an I/O error after it
/// wrote something: the group must not be committed).
type Job = Box<dyn FnOnce(&redb::WriteTransaction) -> (Answer, bool) + Send>;
/// Answers a write's caller with its group's commit: `Err` says why nothing was written.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Reads of at most this many items run on the caller's thread (see [`LocalStore::read`]).
const SHORT_READ: usize = 100;

/// Writes committed together at most.
const MAX_GROUP: usize = 256;

/// The writer thread: commits what has arrived, in groups of at most `max_group`, until every
/// sender is gone.
fn write_groups(
    db: &Database,
    jobs: &std::sync::mpsc::Receiver<Job>,
    max_group: usize,
    commits: &AtomicU64,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        group.extend(jobs.try_iter().take(max_group.saturating_sub(1)));
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(error) => {
                // Dropping the jobs answers their callers with an internal error.
                tracing::error!(%error, "the embedded store cannot begin a write");
                continue;
            }
        };
        let mut answers = Vec::with_capacity(group.len());
        let mut midway = false;
        for job in group {
            // A job that panics (a bug) drops its caller's answer, which then fails; the
            // group, perhaps half written by it, is not committed.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&txn))) {
                Ok((answer, failed)) => {
                    midway |= failed;
                    answers.push(answer);
                }
                Err(_) => midway = true,
            }
        }
        let committed = if midway {
            drop(txn);
            Err("another write of its commit failed midway: nothing was written".to_owned())
        } else {
            txn.commit().map_err(|e| format!("commit: {e}"))
        };
        commits.fetch_add(1, Ordering::Relaxed);
        for answer in answers {
            answer(committed.clone());
        }
    }
}

thread_local! {
    /// Writes made on this thread (the writer's), so a job's failure is known to have come
    /// before or after it changed the group's transaction.
    static WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// The write capacity units DynamoDB would charge the indexes for the writes made on this
    /// thread (see [`LocalStore::write`]).
    static INDEX_UNITS: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

impl LocalDatabase {
    /// Opens (or creates) the database at `path`; its directory must exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_groups(path, MAX_GROUP)
    }

    /// As [`open`](Self::open), committing at most `max_group` writes together: 1 commits each
    /// write on its own, as a service calling redb directly would (the benchmark's baseline).
    pub fn open_with_groups(path: &Path, max_group: usize) -> Result<Self, StoreError> {
        let db = Database::create(path)
            .map_err(|e| StoreError::Internal(format!("opening {}: {e}", path.display())))?;
        let db = Arc::new(db);
        let (sender, jobs) = std::sync::mpsc::channel::<Job>();
        let writing = db.clone();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        let thread = std::thread::Builder::new()
            .name("svcgen-store-writer".into())
            .spawn(move || write_groups(&writing, &jobs, max_group, &counted))
            .map_err(|e| StoreError::Internal(format!("starting the store's writer: {e}")))?;
        let writer = Arc::new(Writer {
            jobs: Some(sender),
            thread: Some(thread),
            commits,
        });
        Ok(Self { db, writer })
    }

    /// The store for one table, creating its B-trees on first use.
    pub fn table(&self, schema: &TableSchema) -> Result<LocalStore, StoreError> {
        let store = LocalStore {
            db: self.db.clone(),
            writer: self.writer.clone(),
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

/// A write decided in a transaction and not made yet: the item at `key` before and after
/// (`None`: absent).
struct Planned {
    key: ItemKey,
    old: Option<Item>,
    new: Option<Item>,
}

/// One table of a [`LocalDatabase`], with DynamoDB's semantics.
#[derive(Clone)]
pub struct LocalStore {
    db: Arc<Database>,
    writer: Arc<Writer>,
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

/// A stored item, read as an [`Item`] or in place as an [`ItemRef`].
fn decode<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Internal(format!("corrupt item: {e}")))
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
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
    let item: Item = decode(bytes.value())?;
    Ok((!is_expired_item(&item, now_epoch_seconds())).then_some(item))
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

    /// Runs a read: on the calling thread when it is `short` (a few items: a read transaction
    /// over cached pages takes microseconds, less than a hand-off to the blocking pool and
    /// back), on the blocking pool otherwise, so a long one does not hold up other calls.
    async fn read<T: Send + 'static>(
        &self,
        short: bool,
        work: impl FnOnce(&Self) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if short {
            return work(self);
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(|e| StoreError::Internal(format!("store task failed: {e}")))?
    }

    /// Runs `work` in the writer's next group commit; answers once the group is on disk, with
    /// the write units DynamoDB would charge the indexes for it.
    async fn write_in_group<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Self, &redb::WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(T, f64), StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let this = self.clone();
        let job: Job = Box::new(move |txn| {
            let (before, index_units) = (WRITES.get(), INDEX_UNITS.get());
            let result = work(&this, txn).map(|value| (value, INDEX_UNITS.get() - index_units));
            // Conditions and limits fail before a write; an error after one spoils the group.
            let midway = result.is_err() && WRITES.get() != before;
            let answer: Answer = Box::new(move |committed| {
                let _ = reply.send(match (result, committed) {
                    (result, Ok(())) => result,
                    // Without its group, even a refusal is unfounded: it may rest on a write
                    // of the group that did not happen. The caller may retry.
                    (_, Err(error)) => Err(StoreError::Unavailable(error)),
                });
            });
            (answer, midway)
        });
        let sent = self.writer.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(StoreError::Internal(
                "the store's writer has stopped".into(),
            ));
        }
        answer
            .await
            .map_err(|_| StoreError::Internal("the store's writer dropped the write".into()))?
    }

    /// Replaces the stored item at `key` (`None` deletes it), keeping indexes in step.
    fn write(
        &self,
        txn: &redb::WriteTransaction,
        key: &ItemKey,
        old: Option<&Item>,
        new: Option<&Item>,
    ) -> Result<(), StoreError> {
        WRITES.set(WRITES.get() + 1);
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
            // What DynamoDB charges the index (it projects every attribute): the item written
            // again when it stays, its removal and its new entry when its index key changes.
            let units =
                |item: Option<&Item>| item.map_or(0.0, |i| write_units(limits::item_size(i)));
            INDEX_UNITS.set(
                INDEX_UNITS.get()
                    + match (&before, &after) {
                        (Some(_), Some(_)) if before == after => units(new),
                        _ => {
                            units(old.filter(|_| before.is_some()))
                                + units(new.filter(|_| after.is_some()))
                        }
                    },
            );
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

    /// A new item for `txn`, as [`Store::create`] describes.
    fn plan_create(&self, txn: &redb::WriteTransaction, item: Item) -> Result<Planned, StoreError> {
        let key = item_key(&item)?;
        let existing = self.current(txn, &key)?;
        if existing
            .as_ref()
            .is_some_and(|old| !is_expired_item(old, now_epoch_seconds()))
        {
            return Err(StoreError::AlreadyExists);
        }
        Ok(Planned {
            key,
            old: existing,
            new: Some(item),
        })
    }

    /// Makes a planned write in `txn`.
    fn apply(&self, txn: &redb::WriteTransaction, planned: &Planned) -> Result<(), StoreError> {
        self.write(
            txn,
            &planned.key,
            planned.old.as_ref(),
            planned.new.as_ref(),
        )
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
            Some(old)
                if !is_expired_item(&old, now_epoch_seconds())
                    && holds_entity_item(&old, entity) =>
            {
                Ok(old)
            }
            _ => Err(StoreError::NotFound),
        }
    }

    /// `update` for `txn`, as [`Store::update`] describes.
    fn plan_update(
        &self,
        txn: &redb::WriteTransaction,
        key: &ItemKey,
        update: ItemUpdate,
    ) -> Result<Planned, StoreError> {
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
        Ok(Planned {
            key: key.clone(),
            old: Some(old),
            new: Some(new),
        })
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

    /// One page of `query`, walking the item B-tree or an index B-tree in one read transaction,
    /// each live item handed to `read` in place; returns the page's last key and the size of
    /// the items read.
    fn query_sync(
        &self,
        query: &Query,
        read: &mut ReadStored<'_>,
    ) -> Result<(Option<Item>, usize), StoreError> {
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
        let stored = match index_table {
            None => table_items(&items, bounds)?,
            Some(table) => index_items(&txn, table, items, bounds)?,
        };
        let names = [PARTITION_KEY, SORT_KEY, pk_attr.as_str(), sk_attr.as_str()];
        let key_names = if index_table.is_some() {
            &names[..]
        } else {
            &names[..2]
        };
        let page = Page {
            limit: query.limit,
            now,
            key_names,
        };
        if query.descending {
            page.collect(&mut stored.rev(), read)
        } else {
            page.collect(&mut { stored }, read)
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

/// The items the item B-tree holds within `bounds`.
fn table_items<'k>(
    items: &ItemReader,
    (lower, upper): ScanBounds<'k>,
) -> Result<Stored, StoreError> {
    let table_key = |(pk, sk, _, _): ScanKey<'k>| -> (&'k str, &'k str) { (pk, sk) };
    let range = items
        .range::<(&str, &str)>((lower.map(table_key), upper.map(table_key)))
        .map_err(internal)?;
    Ok(Box::new(range.map(|entry| {
        entry.map_err(internal).map(|(_, item)| Some(item))
    })))
}

/// The items an index B-tree leads to within `bounds`.
fn index_items(
    txn: &ReadTransaction,
    table: &str,
    items: ItemReader,
    bounds: ScanBounds<'_>,
) -> Result<Stored, StoreError> {
    let index = txn.open_table(IndexTable::new(table)).map_err(internal)?;
    let range = index.range::<ScanKey<'_>>(bounds).map_err(internal)?;
    Ok(Box::new(range.map(move |entry| {
        let (key, _) = entry.map_err(internal)?;
        let (_, _, pk, sk) = key.value();
        items.get((pk, sk)).map_err(internal)
    })))
}

/// How a query page is cut: at `limit` items, skipping those expired at `now`; the last key is
/// the attributes `key_names`.
struct Page<'q> {
    limit: usize,
    now: i64,
    key_names: &'q [&'q str],
}

impl Page<'_> {
    /// Reads the items of `stored` in order, handing up to `limit` live ones to `read`; the
    /// page's last key is set when the limit is hit and another item follows.
    fn collect(
        &self,
        stored: &mut dyn Iterator<Item = Result<Option<Encoded>, StoreError>>,
        read: &mut ReadStored<'_>,
    ) -> Result<(Option<Item>, usize), StoreError> {
        let (mut evaluated, mut size) = (0, 0);
        while let Some(entry) = stored.next() {
            evaluated += 1;
            let Some(bytes) = entry? else {
                continue;
            };
            let item: ItemRef<'_> = decode(bytes.value())?;
            if !is_expired(&item, self.now) {
                size += limits::view_size(&item);
                read(bytes.value(), &item);
            }
            if evaluated == self.limit {
                // DynamoDB reports a last key whenever the limit is hit; peeking spares clients
                // an empty last page when nothing follows.
                let last_key = stored
                    .next()
                    .is_some()
                    .then(|| key_attributes(&item, self.key_names));
                return Ok((last_key, size));
            }
        }
        Ok((None, size))
    }
}

fn key_attributes(item: &ItemRef<'_>, names: &[&str]) -> Item {
    names
        .iter()
        .filter_map(|name| item.get(name).map(|v| ((*name).to_owned(), v.to_value())))
        .collect()
}

#[async_trait]
impl Store for LocalStore {
    async fn create(&self, item: Item) -> Result<(), StoreError> {
        limits::check_item(&item, &self.index_names())?;
        let units = write_units(limits::item_size(&item));
        let ((), index_units) = self
            .write_in_group(move |this, txn| {
                let planned = this.plan_create(txn, item)?;
                this.apply(txn, &planned)
            })
            .await?;
        consumed(0.0, units + index_units);
        Ok(())
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let mut found = None;
        self.get_with(key, &mut |item| found = Some(item.to_item()))
            .await?;
        Ok(found)
    }

    async fn get_with(&self, key: &ItemKey, read: &mut ReadItem<'_>) -> Result<bool, StoreError> {
        limits::check_item_key(key)?;
        // One item: read on this thread (see `LocalStore::read`), in place.
        let txn = self.db.begin_read().map_err(internal)?;
        let items = txn.open_table(self.item_table()).map_err(internal)?;
        let stored = items
            .get((key.pk.as_str(), key.sk.as_str()))
            .map_err(internal)?;
        let item = match &stored {
            Some(bytes) => Some(decode::<ItemRef<'_>>(bytes.value())?),
            None => None,
        }
        .filter(|item| !is_expired(item, now_epoch_seconds()));
        consumed(read_units(item.as_ref().map_or(0, limits::view_size)), 0.0);
        if let Some(item) = &item {
            read(item);
        }
        Ok(item.is_some())
    }

    async fn update(&self, key: &ItemKey, update: ItemUpdate) -> Result<Item, StoreError> {
        limits::check_item_key(key)?;
        limits::check_update(&update.set, &self.index_names())?;
        let key = key.clone();
        let (new, index_units) = self
            .write_in_group(move |this, txn| {
                let planned = this.plan_update(txn, &key, update)?;
                this.apply(txn, &planned)?;
                Ok(planned.new.unwrap_or_default())
            })
            .await?;
        consumed(0.0, write_units(limits::item_size(&new)) + index_units);
        Ok(new)
    }

    async fn delete(&self, key: &ItemKey, expected: Expected) -> Result<Item, StoreError> {
        limits::check_item_key(key)?;
        let key = key.clone();
        let (old, index_units) = self
            .write_in_group(move |this, txn| {
                let old = this.expected_in(txn, &key, &expected)?;
                this.write(txn, &key, Some(&old), None)?;
                Ok(old)
            })
            .await?;
        consumed(0.0, write_units(limits::item_size(&old)) + index_units);
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
        let ((), index_units) = self
            .write_in_group(move |this, txn| {
                // Every condition first, then every write: a failed condition leaves the group's
                // transaction as it was (its other writes share it).
                let count = writes.len();
                let mut planned = Vec::with_capacity(count);
                for (index, (write, key)) in writes.into_iter().zip(&keys).enumerate() {
                    let plan = match write {
                        TransactWrite::Create(item) => this.plan_create(txn, item).map(Some),
                        TransactWrite::Update { update, .. } => {
                            this.plan_update(txn, key, update).map(Some)
                        }
                        TransactWrite::Delete { expected, .. } => {
                            this.expected_in(txn, key, &expected).map(|old| {
                                Some(Planned {
                                    key: key.clone(),
                                    old: Some(old),
                                    new: None,
                                })
                            })
                        }
                        TransactWrite::Check { expected, .. } => {
                            this.expected_in(txn, key, &expected).map(|_| None)
                        }
                    };
                    planned.extend(plan.map_err(|reason| canceled(index, count, reason))?);
                }
                planned.iter().try_for_each(|plan| this.apply(txn, plan))
            })
            .await?;
        consumed(0.0, units + 2.0 * index_units);
        Ok(())
    }

    async fn batch_get(&self, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError> {
        keys.iter().try_for_each(limits::check_item_key)?;
        let keys = keys.to_vec();
        let items: Vec<Option<Item>> = self
            .read(keys.len() <= SHORT_READ, move |this| {
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
        let mut items = Vec::new();
        let last_key = self
            .query_with(query, &mut |item| items.push(item.to_item()))
            .await?;
        Ok(QueryPage { items, last_key })
    }

    async fn query_with(
        &self,
        query: Query,
        read: &mut ReadItem<'_>,
    ) -> Result<Option<Item>, StoreError> {
        limits::check_query(&query)?;
        let share = read_share(&query);
        let (last_key, size) = if is_short(&query) {
            self.query_sync(&query, &mut |_, item| read(item))?
        } else {
            // A long read runs on the blocking pool, where `read` cannot follow: the pool
            // copies out the live items' encodings, read in place here.
            let (encoded, last_key, size) = self
                .read(false, move |this| {
                    let mut encoded = Vec::new();
                    let (last_key, size) =
                        this.query_sync(&query, &mut |bytes, _| encoded.push(bytes.to_vec()))?;
                    Ok((encoded, last_key, size))
                })
                .await?;
            for bytes in &encoded {
                read(&decode::<ItemRef<'_>>(bytes)?);
            }
            (last_key, size)
        };
        consumed(share * read_units(size), 0.0);
        Ok(last_key)
    }
}

/// Whether a query page is read on the caller's thread (see `LocalStore::read`). A limit of 0
/// reads the whole partition: not short.
fn is_short(query: &Query) -> bool {
    (1..=SHORT_READ).contains(&query.limit)
}

/// The share of read units a query is charged: reads of an index are eventually consistent,
/// half the units.
fn read_share(query: &Query) -> f64 {
    if query.index.is_some() { 0.5 } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new database in a temporary directory (kept while the first value lives) and its
    /// table `t`, without indexes.
    fn open_table() -> (tempfile::TempDir, LocalDatabase, LocalStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = LocalDatabase::open(&dir.path().join("store.redb")).expect("open");
        let schema = TableSchema {
            name: "t",
            physical: "t",
            variable: "TABLE_NAME",
            indexes: &[],
        };
        let store = db.table(&schema).expect("table");
        (dir, db, store)
    }

    /// While the writer is held up, 16 creates queue; released, they are committed as one
    /// group (one commit, not 16), each answered, the two of one key with one winner.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_queue_during_a_commit_share_the_next_one() {
        let (_dir, db, store) = open_table();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let hold: Job = Box::new(move |_| {
            let _ = held.recv();
            (Box::new(|_| {}), false)
        });
        db.writer
            .jobs
            .as_ref()
            .expect("writer")
            .send(hold)
            .expect("send");
        let key = |n: usize| {
            crate::item::Item::from([
                (
                    crate::entity::PARTITION_KEY.to_owned(),
                    AttributeValue::S("P".into()),
                ),
                (
                    crate::entity::SORT_KEY.to_owned(),
                    AttributeValue::S(format!("T{}", n.min(14))),
                ),
            ])
        };
        let creates: Vec<_> = (0..16)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.create(key(n)).await })
            })
            .collect();
        // Bounded wait until every create is queued behind the held job.
        // The database and the store, each task's store and each queued job's.
        let queued = || Arc::strong_count(&db.writer) >= 2 + 16 + 16;
        for _ in 0..500 {
            if queued() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(queued(), "the creates did not queue");
        let commits_before = db.writer.commits.load(Ordering::Relaxed);
        release.send(()).expect("release");
        let mut outcomes = Vec::new();
        for create in creates {
            outcomes.push(create.await.expect("task"));
        }
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 15);
        assert!(
            matches!(outcomes[15], Err(StoreError::AlreadyExists))
                ^ matches!(outcomes[14], Err(StoreError::AlreadyExists))
        );
        // The held job's group (which the creates may have joined), then at most one for them.
        assert!(db.writer.commits.load(Ordering::Relaxed) - commits_before <= 2);
    }

    /// Short reads run on the caller's thread, longer ones on the blocking pool: both answer
    /// the same, on a current-thread runtime too (where a blocking wait would hang).
    #[tokio::test(flavor = "current_thread")]
    async fn short_and_long_reads_answer_alike() {
        let (_dir, _db, store) = open_table();
        let item = |n: usize| {
            crate::item::Item::from([
                (PARTITION_KEY.to_owned(), AttributeValue::S("P".into())),
                (SORT_KEY.to_owned(), AttributeValue::S(format!("T{n:03}"))),
            ])
        };
        for n in 0..2 * SHORT_READ {
            store.create(item(n)).await.expect("create");
        }
        let query = |limit: usize| Query {
            index: None,
            partition: "P".into(),
            sort_key_prefix: "T".into(),
            descending: false,
            limit,
            start_after: None,
        };
        let short = store.query(query(SHORT_READ)).await.expect("short query");
        let long = store
            .query(query(2 * SHORT_READ))
            .await
            .expect("long query");
        assert_eq!(short.items.len(), SHORT_READ);
        assert_eq!(long.items.len(), 2 * SHORT_READ);
        assert_eq!(short.items[..], long.items[..SHORT_READ]);
        let key = ItemKey {
            pk: "P".into(),
            sk: "T007".into(),
        };
        assert_eq!(store.get(&key).await.expect("get"), Some(item(7)));
    }

    #[test]
    fn prefix_successor_bounds_every_extension() {
        assert_eq!(prefix_successor("TASK#").as_deref(), Some("TASK$"));
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        let next = prefix_successor("\u{D7FF}").expect("skips surrogates");
        assert_eq!(next, "\u{E000}");
    }
}
