//! The storage seam: DynamoDB-shaped operations on the items of one table.
//!
//! Each method is one request to the backend (one `PutItem`, `GetItem`, `UpdateItem`,
//! `DeleteItem`, `Query` page or `TransactWriteItems`), so a unary RPC costs exactly one round
//! trip; `batch_get` sends one `BatchGetItem` per 100 keys.

#[cfg(feature = "dynamodb")]
mod dynamo;
pub mod limits;
pub(crate) mod local;
mod rules;

pub(crate) use rules::holds_entity;

#[cfg(feature = "dynamodb")]
pub use dynamo::{
    DynamoStore, TableOutcome, TableState, check_table, create_table, enable_ttl, ensure_table,
    from_sdk, http_client, item_from_sdk, item_to_sdk, item_view_sdk, to_sdk,
};
pub use local::{LocalDatabase, LocalStore};

use async_trait::async_trait;

use crate::entity::ItemKey;
use crate::item::{Item, ItemRef};

/// The physical layout of one table, shared by every entity stored in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSchema {
    /// Logical table name.
    pub name: &'static str,
    /// The DynamoDB table name `svcgen.toml` gives it (its `[tables]` entry, else the logical
    /// name): what the generated task role policy names. At run time `variable` names the
    /// table actually used.
    pub physical: &'static str,
    /// The environment variable naming the DynamoDB table (`TABLE_NAME_<LOGICAL>`; a service
    /// with one table also accepts `TABLE_NAME`).
    pub variable: &'static str,
    /// Global secondary indexes (all keyed by `NAMEpk`/`NAMEsk` strings, all attributes projected).
    pub indexes: &'static [&'static str],
}

/// Changes applied by [`Store::update`]: DynamoDB's `SET` and `REMOVE` clauses, plus the
/// optimistic-locking condition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemUpdate {
    /// Attributes to set.
    pub set: Item,
    /// Attributes to remove.
    pub remove: Vec<String>,
    /// Version attribute to increment, and the value it must have now (`None`: any).
    pub version: Option<(String, Option<u64>)>,
    /// The entity type the stored item must hold (see [`Expected::entity`]).
    pub entity: Option<String>,
}

/// What [`Store::delete`] expects of the stored item besides existing and not having expired.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expected {
    /// The entity type the item must hold: its entity-type attribute names it, or it has none
    /// (written before the attribute existed). Another entity's item counts as absent
    /// ([`StoreError::NotFound`]), so one entity's API can never change another's items.
    pub entity: Option<String>,
    /// Version attribute and the value it must have.
    pub version: Option<(String, u64)>,
}

/// One write of a [`Store::transact`], on an item no other write of it names.
#[derive(Clone, Debug, PartialEq)]
pub enum TransactWrite {
    /// As [`Store::create`].
    Create(Item),
    /// As [`Store::update`].
    Update {
        /// The item's key.
        key: ItemKey,
        /// The change.
        update: ItemUpdate,
    },
    /// As [`Store::delete`].
    Delete {
        /// The item's key.
        key: ItemKey,
        /// What the stored item must be.
        expected: Expected,
    },
    /// The item exists and meets `expected`; nothing changes (DynamoDB's `ConditionCheck`).
    Check {
        /// The item's key.
        key: ItemKey,
        /// What the stored item must be.
        expected: Expected,
    },
}

/// DynamoDB's limit on the writes of one `TransactWriteItems`.
pub const MAX_TRANSACTION_WRITES: usize = 100;

/// One page of a `Query` on the table or an index.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Index to query; `None` for the table.
    pub index: Option<String>,
    /// Partition key value.
    pub partition: String,
    /// Only sort keys starting with this (`begins_with`).
    pub sort_key_prefix: String,
    /// Highest sort key first.
    pub descending: bool,
    /// Page size.
    pub limit: usize,
    /// Continue after this key (a previous page's [`QueryPage::last_key`]).
    pub start_after: Option<Item>,
}

/// Items of one query page.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryPage {
    /// Items in sort-key order.
    pub items: Vec<Item>,
    /// Key attributes of the last item read when more may follow (`LastEvaluatedKey`).
    pub last_key: Option<Item>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `create` found an item with the same key.
    #[error("an item with this key already exists")]
    AlreadyExists,
    /// `update` or `delete` found no item with the key.
    #[error("no item with this key")]
    NotFound,
    /// The stored version differs from the expected one.
    #[error("version conflict: expected {expected}, stored {actual}")]
    VersionConflict {
        /// What the caller expected.
        expected: u64,
        /// What is stored.
        actual: u64,
    },
    /// The item breaks one of DynamoDB's limits (size, key length, empty key, number range);
    /// the message says which, the same on every store.
    #[error("{0}")]
    Invalid(String),
    /// A `start_after` key that does not belong to the query.
    #[error("invalid start key: {0}")]
    InvalidStartKey(String),
    /// A transaction was cancelled: its write `index` (from 0) of `count` failed for `reason`,
    /// and none of its writes took effect.
    #[error("write {} of {count} failed: {reason}", .index + 1)]
    TransactionCanceled {
        /// The failed write.
        index: usize,
        /// The writes of the transaction.
        count: usize,
        /// Why it failed (`AlreadyExists`, `NotFound`, `VersionConflict`).
        reason: Box<StoreError>,
    },
    /// The backend is overloaded or unreachable; retrying later may succeed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else: corrupt data, I/O errors, bugs.
    #[error("store failure: {0}")]
    Internal(String),
}

/// A DynamoDB-shaped table. Implementations: [`LocalStore`] (embedded) and the DynamoDB client.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new item; fails with [`StoreError::AlreadyExists`] when its key is taken by an
    /// item that has not expired (`attribute_not_exists(pk)`).
    async fn create(&self, item: Item) -> Result<(), StoreError>;

    /// Reads one item; expired items read as absent.
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError>;

    /// Applies `update` to an existing item and returns the item as stored afterwards.
    async fn update(&self, key: &ItemKey, update: ItemUpdate) -> Result<Item, StoreError>;

    /// Deletes an existing item that meets `expected`; returns the deleted item.
    async fn delete(&self, key: &ItemKey, expected: Expected) -> Result<Item, StoreError>;

    /// Reads one page of a partition in sort-key order; expired items are skipped.
    async fn query(&self, query: Query) -> Result<QueryPage, StoreError>;

    /// Applies `writes` atomically: every one or none. A write whose condition fails cancels
    /// all with [`StoreError::TransactionCanceled`] naming it. At most
    /// [`MAX_TRANSACTION_WRITES`], each on its own item.
    async fn transact(&self, writes: Vec<TransactWrite>) -> Result<(), StoreError>;

    /// Reads the items at `keys`, in their order (`None` for absent or expired ones), with
    /// strongly consistent reads.
    async fn batch_get(&self, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError>;

    /// [`get`](Self::get), handing the item to `read` as a view rather than an [`Item`]:
    /// [`LocalStore`] reads it straight from its stored encoding, building no attribute map.
    /// Returns whether there was an item. `read` runs within the store request (the embedded
    /// store's read transaction), so its time counts in the request's measured duration.
    async fn get_with(&self, key: &ItemKey, read: &mut ReadItem<'_>) -> Result<bool, StoreError> {
        let item = self.get(key).await?;
        if let Some(item) = &item {
            read(&ItemRef::of(item));
        }
        Ok(item.is_some())
    }

    /// [`query`](Self::query), handing each item of the page to `read`, in order, as
    /// [`get_with`](Self::get_with) does; returns the page's last key.
    async fn query_with(
        &self,
        query: Query,
        read: &mut ReadItem<'_>,
    ) -> Result<Option<Item>, StoreError> {
        let page = self.query(query).await?;
        for item in &page.items {
            read(&ItemRef::of(item));
        }
        Ok(page.last_key)
    }
}

/// What [`Store::get_with`] and [`Store::query_with`] do with each item they read.
pub type ReadItem<'r> = dyn for<'a> FnMut(&ItemRef<'a>) + Send + 'r;
