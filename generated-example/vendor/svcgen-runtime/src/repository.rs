//! `EntityTable<E>`: the repository mechanics every generated repository delegates to —
//! request validation, keys, versions, field masks and pagination over a [`Store`]. Reads only
//! ever return items of `E` (by their entity-type attribute): another entity's item under the
//! requested key is NOT_FOUND, and lists skip such items.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::entity::{Entity, ItemKey, TTL, index_key_attributes};
use crate::error::Error;
use crate::item::ItemRef;
use crate::page_token;
use crate::store::{Expected, ItemUpdate, Query, Store, StoreError, TransactWrite};

/// Page size settings of a list operation.
#[derive(Clone, Copy, Debug)]
pub struct PageLimits {
    /// Used when the request's `page_size` is 0.
    pub default_size: i32,
    /// Larger requests are clamped to this.
    pub max_size: i32,
}

/// One page of entities and the token of the next (empty on the last page).
#[derive(Clone, Debug, PartialEq)]
pub struct Page<E> {
    /// The entities, in sort-key order.
    pub items: Vec<E>,
    /// `next_page_token` for the response.
    pub next_page_token: String,
}

/// Writes to the entities of one table that take effect together or not at all: one
/// `TransactWriteItems` on DynamoDB, one transaction on the embedded store. Add writes with the
/// repositories' `create_in`, `update_in`, `delete_in` and `check_in` (each checks what its
/// single-item operation checks), then [`commit`](Self::commit). A write whose condition fails
/// cancels all, and the error names it: "transaction write 2 of 3 failed, nothing was
/// written: Customer already exists".
#[derive(Default)]
pub struct Transaction {
    store: Option<Arc<dyn Store>>,
    writes: Vec<TransactWrite>,
    /// The entity of each write, for its error.
    entities: Vec<&'static str>,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// The writes added so far.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether no write was added.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    fn stage<E: Entity>(
        &mut self,
        store: &Arc<dyn Store>,
        write: TransactWrite,
    ) -> Result<(), Error> {
        match &self.store {
            Some(ours) if !std::ptr::addr_eq(Arc::as_ptr(ours), Arc::as_ptr(store)) => {
                return Err(Error::Internal(format!(
                    "a transaction writes to one table; {} lives in another",
                    E::SCHEMA.name
                )));
            }
            Some(_) => {}
            None => self.store = Some(store.clone()),
        }
        self.writes.push(write);
        self.entities.push(E::SCHEMA.name);
        Ok(())
    }

    /// Applies every write, or none (an empty transaction does nothing).
    pub async fn commit(self) -> Result<(), Error> {
        let Some(store) = self.store else {
            return Ok(());
        };
        store.transact(self.writes).await.map_err(|error| {
            let index = match &error {
                StoreError::TransactionCanceled { index, .. } => *index,
                _ => 0,
            };
            let entity = self.entities.get(index).copied().unwrap_or("item");
            Error::from_store(entity, error)
        })
    }
}

/// Typed access to the items of one entity in a table.
pub struct EntityTable<E> {
    store: Arc<dyn Store>,
    entity: PhantomData<fn() -> E>,
}

impl<E> Clone for EntityTable<E> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            entity: PhantomData,
        }
    }
}

impl<E: Entity> EntityTable<E> {
    /// Entities of type `E` in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            entity: PhantomData,
        }
    }

    fn store_error(error: crate::store::StoreError) -> Error {
        Error::from_store(E::SCHEMA.name, error)
    }

    /// Stores a new entity: fills a generated ID, starts the version at 1, and fails with
    /// ALREADY_EXISTS when the key is taken.
    pub async fn create(&self, entity: E) -> Result<E, Error> {
        let (entity, item) = Self::new_item(entity)?;
        self.store.create(item).await.map_err(Self::store_error)?;
        Ok(entity)
    }

    /// A new entity with its generated ID and first version, and its item.
    fn new_item(mut entity: E) -> Result<(E, crate::Item), Error> {
        entity.assign_id();
        if E::SCHEMA.version_field.is_some() {
            entity.set_version(1);
        }
        let item = entity.to_item()?;
        Ok((entity, item))
    }

    /// The entity with the key fields of `probe`.
    pub async fn get(&self, probe: &E) -> Result<E, Error> {
        let key = probe.key()?;
        let mut entity = None;
        self.store
            .get_with(&key, &mut |item| {
                if E::holds_this_entity(item) {
                    entity = Some(E::read_attributes(item));
                }
            })
            .await
            .map_err(Self::store_error)?;
        match entity {
            Some(entity) => Ok(entity?),
            None => Err(Error::NotFound {
                entity: E::SCHEMA.name,
            }),
        }
    }

    /// Updates the fields of `entity` named by `mask` (every mutable field when empty). A
    /// non-zero version must equal the stored one.
    pub async fn update(&self, entity: &E, mask: &[String]) -> Result<E, Error> {
        let (key, update) = Self::item_update(entity, mask)?;
        let stored = self
            .store
            .update(&key, update)
            .await
            .map_err(Self::store_error)?;
        Ok(E::from_item(&stored)?)
    }

    /// The store update that writes the fields of `entity` named by `mask`.
    fn item_update(entity: &E, mask: &[String]) -> Result<(ItemKey, ItemUpdate), Error> {
        let schema = &E::SCHEMA;
        let key = entity.key()?;
        let field_names = E::field_names();
        let fields = Self::masked_fields(&field_names, mask)?;
        let new_item = entity.to_item()?;
        let mut update = ItemUpdate {
            entity: Some(schema.name.to_owned()),
            ..ItemUpdate::default()
        };
        for field in &fields {
            match new_item.get(*field) {
                Some(value) => {
                    update.set.insert((*field).to_owned(), value.clone());
                }
                None => update.remove.push((*field).to_owned()),
            }
        }
        // A oneof holds one member: setting one clears its siblings.
        for members in E::oneof_members() {
            if members.iter().any(|m| fields.contains(m)) {
                let siblings = members.iter().filter(|m| !fields.contains(m));
                update.remove.extend(siblings.map(|m| (*m).to_owned()));
            }
        }
        for index in schema.indexes {
            if !index.fields.iter().any(|f| fields.contains(f)) {
                continue;
            }
            if let Some(missing) = index
                .fields
                .iter()
                .find(|f| !fields.contains(f) && !schema.key_fields.contains(f))
            {
                return Err(Error::InvalidArgument(format!(
                    "updating index `{}` needs `{missing}` in update_mask too (its key uses it)",
                    index.name
                )));
            }
            let (pk, sk) = index_key_attributes(index.name);
            match new_item.get(&pk).zip(new_item.get(&sk)) {
                Some((pk_value, sk_value)) => {
                    update.set.insert(pk, pk_value.clone());
                    update.set.insert(sk, sk_value.clone());
                }
                None => update.remove.extend([pk, sk]),
            }
        }
        if schema.ttl_field.is_some_and(|f| fields.contains(&f)) {
            match new_item.get(TTL) {
                Some(value) => {
                    update.set.insert(TTL.to_owned(), value.clone());
                }
                None => update.remove.push(TTL.to_owned()),
            }
        }
        if let Some(version) = schema.version_field {
            let expected = entity.version();
            update.version = Some((version.to_owned(), (expected != 0).then_some(expected)));
        }
        Ok((key, update))
    }

    /// The fields an update mask names, checked; every mutable field for an empty mask.
    fn masked_fields<'a>(
        field_names: &'a [&'static str],
        mask: &'a [String],
    ) -> Result<Vec<&'a str>, Error> {
        let schema = &E::SCHEMA;
        if mask.is_empty() {
            return Ok(field_names
                .iter()
                .copied()
                .filter(|f| !schema.key_fields.contains(f) && Some(*f) != schema.version_field)
                .collect());
        }
        let mut fields = Vec::with_capacity(mask.len());
        for path in mask {
            let path = path.as_str();
            if !field_names.contains(&path) {
                return Err(Error::InvalidArgument(format!(
                    "update_mask names `{path}`, which is not a field of {}",
                    schema.name
                )));
            }
            if schema.key_fields.contains(&path) {
                return Err(Error::InvalidArgument(format!(
                    "update_mask names `{path}`, which is part of the {} key and cannot change",
                    schema.name
                )));
            }
            if Some(path) == schema.version_field {
                return Err(Error::InvalidArgument(format!(
                    "update_mask names `{path}`, which the server maintains; send the current value in the message instead"
                )));
            }
            if !fields.contains(&path) {
                fields.push(path);
            }
        }
        Ok(fields)
    }

    /// Deletes the entity with the key fields of `probe`; a non-zero `version` must match.
    pub async fn delete(&self, probe: &E) -> Result<E, Error> {
        let (key, expected) = Self::expected(probe)?;
        let item = self
            .store
            .delete(&key, expected)
            .await
            .map_err(Self::store_error)?;
        Ok(E::from_item(&item)?)
    }

    /// The key of `probe` and what the stored item must be: this entity, at `probe`'s version
    /// when it is not zero.
    fn expected(probe: &E) -> Result<(ItemKey, Expected), Error> {
        let key = probe.key()?;
        let expected = Expected {
            entity: Some(E::SCHEMA.name.to_owned()),
            version: E::SCHEMA
                .version_field
                .filter(|_| probe.version() != 0)
                .map(|field| (field.to_owned(), probe.version())),
        };
        Ok((key, expected))
    }

    /// Adds the create of `entity` to `transaction`; returns it as it will be stored (with
    /// its generated ID and first version).
    pub fn create_in(&self, transaction: &mut Transaction, entity: E) -> Result<E, Error> {
        let (entity, item) = Self::new_item(entity)?;
        transaction.stage::<E>(&self.store, TransactWrite::Create(item))?;
        Ok(entity)
    }

    /// Adds the update of the fields of `entity` named by `mask` to `transaction`.
    pub fn update_in(
        &self,
        transaction: &mut Transaction,
        entity: &E,
        mask: &[String],
    ) -> Result<(), Error> {
        let (key, update) = Self::item_update(entity, mask)?;
        transaction.stage::<E>(&self.store, TransactWrite::Update { key, update })
    }

    /// Adds the delete of the entity with the key of `probe` (at its version when not zero).
    pub fn delete_in(&self, transaction: &mut Transaction, probe: &E) -> Result<(), Error> {
        let (key, expected) = Self::expected(probe)?;
        transaction.stage::<E>(&self.store, TransactWrite::Delete { key, expected })
    }

    /// Adds a condition to `transaction`: the entity with the key of `probe` exists (at its
    /// version when not zero); it is not changed.
    pub fn check_in(&self, transaction: &mut Transaction, probe: &E) -> Result<(), Error> {
        let (key, expected) = Self::expected(probe)?;
        transaction.stage::<E>(&self.store, TransactWrite::Check { key, expected })
    }

    /// The entities with the keys of `probes`, in their order (`None` where there is none),
    /// read together (BatchGetItem, 100 keys a request, unprocessed keys retried).
    pub async fn batch_get(&self, probes: &[E]) -> Result<Vec<Option<E>>, Error> {
        let keys = probes
            .iter()
            .map(Entity::key)
            .collect::<Result<Vec<_>, _>>()?;
        let items = self
            .store
            .batch_get(&keys)
            .await
            .map_err(Self::store_error)?;
        items
            .into_iter()
            .map(|item| {
                let item = item.as_ref().map(ItemRef::of);
                match item {
                    Some(item) if E::holds_this_entity(&item) => {
                        Ok(Some(E::read_attributes(&item)?))
                    }
                    _ => Ok(None),
                }
            })
            .collect()
    }

    /// One page of the partition of `index` (the table for `None`) that `probe`'s fields name.
    pub async fn list(
        &self,
        probe: &E,
        index: Option<&str>,
        descending: bool,
        limits: PageLimits,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<E>, Error> {
        let schema = &E::SCHEMA;
        let partition = probe.partition_key(index).ok_or_else(|| {
            Error::Internal(format!("{} has no index `{index:?}`", schema.name))
        })??;
        let sort_key_prefix = schema
            .sort_key_prefix(index)
            .ok_or_else(|| Error::Internal(format!("{} has no index `{index:?}`", schema.name)))?;
        let limit = match page_size {
            size if size < 0 => {
                return Err(Error::InvalidArgument(format!(
                    "page_size must not be negative (got {size})"
                )));
            }
            0 => limits.default_size,
            size => size.min(limits.max_size),
        };
        let mut query = Query {
            index: index.map(str::to_owned),
            partition,
            sort_key_prefix: sort_key_prefix.to_owned(),
            descending,
            limit: usize::try_from(limit.max(1)).unwrap_or(1),
            start_after: None,
        };
        if !page_token.is_empty() {
            let key = page_token::decode(&query, page_token)
                .map_err(|e| Error::InvalidArgument(e.to_owned()))?;
            query.start_after = Some(key);
        }
        // Another entity's items are dropped, so a page may come back shorter than the limit;
        // the token still continues after the last item the store read, so none is skipped.
        let mut items = Vec::new();
        let last_key = self
            .store
            .query_with(query.clone(), &mut |item| {
                if E::holds_this_entity(item) {
                    items.push(E::read_attributes(item));
                }
            })
            .await
            .map_err(Self::store_error)?;
        let items = items.into_iter().collect::<Result<Vec<_>, _>>()?;
        let next_page_token = last_key
            .map(|key| page_token::encode(&query, &key))
            .unwrap_or_default();
        Ok(Page {
            items,
            next_page_token,
        })
    }
}
