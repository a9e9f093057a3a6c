//! `DynamoStore`: the same operations on Amazon DynamoDB, exactly one request each.
//!
//! Every expression names attributes through `#n` placeholders and values through `:v`
//! placeholders, so reserved words never break a request. Expired items (a `ttl` in the past,
//! not yet deleted by DynamoDB's TTL sweeper) are treated as absent by conditions and filters.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue as Av, CancellationReason, ConditionCheck, Delete, KeysAndAttributes, Put,
    ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::rules::{
    holds_entity_item, is_expired, is_expired_item, item_key, now_epoch_seconds,
    query_key_attributes, start_sort_key, stored_version,
};
use super::{
    Expected, ItemUpdate, Query, QueryPage, ReadItem, Store, StoreError, TransactWrite, limits,
};
use crate::entity::{ENTITY_TYPE, ItemKey, PARTITION_KEY, SORT_KEY, TTL, index_key_attributes};
use crate::item::{AttributeRef, AttributeValue, Item, ItemRef};

/// The HTTP client of the runtime's DynamoDB clients, built as the SDK builds its default one
/// (pooled connections, the SDK's timeouts, `HTTPS_PROXY`/`NO_PROXY` honoured) but with TLS by
/// rustls with ring: the SDK's default, aws-lc, costs a clean build ~90 s of CPU for its C
/// library. Trusts the system's CA certificates, or the file `SSL_CERT_FILE` names.
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = aws_smithy_http_client::Connector::builder()
            .tls_provider(Provider::Rustls(CryptoMode::Ring));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

/// One DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The table's index names, whose key attributes follow DynamoDB's key limits.
    indexes: Vec<String>,
}

impl DynamoStore {
    /// The table named `table` (the physical name) through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            indexes: Vec::new(),
        }
    }

    /// The same store, knowing the table's indexes (so their keys are checked before a write).
    pub fn with_indexes(mut self, indexes: &[&str]) -> Self {
        self.indexes = indexes.iter().map(|i| (*i).to_owned()).collect();
        self
    }

    fn index_names(&self) -> Vec<&str> {
        self.indexes.iter().map(String::as_str).collect()
    }
}

/// Our attribute value as the SDK's (moved, not copied).
pub fn to_sdk(value: AttributeValue) -> Av {
    match value {
        AttributeValue::S(s) => Av::S(s),
        AttributeValue::N(n) => Av::N(n),
        AttributeValue::B(b) => Av::B(Blob::new(b)),
        AttributeValue::Bool(b) => Av::Bool(b),
        AttributeValue::Null => Av::Null(true),
        AttributeValue::L(values) => Av::L(values.into_iter().map(to_sdk).collect()),
        AttributeValue::M(map) => Av::M(item_to_sdk(map)),
    }
}

/// The SDK's attribute value as ours (moved, not copied); sets become lists (svcgen never
/// writes sets).
pub fn from_sdk(value: Av) -> AttributeValue {
    match value {
        Av::S(s) => AttributeValue::S(s),
        Av::N(n) => AttributeValue::N(n),
        Av::B(b) => AttributeValue::B(b.into_inner()),
        Av::Bool(b) => AttributeValue::Bool(b),
        Av::L(values) => AttributeValue::L(values.into_iter().map(from_sdk).collect()),
        Av::M(map) => AttributeValue::M(item_from_sdk(map)),
        Av::Ss(values) => AttributeValue::L(values.into_iter().map(AttributeValue::S).collect()),
        Av::Ns(values) => AttributeValue::L(values.into_iter().map(AttributeValue::N).collect()),
        Av::Bs(values) => AttributeValue::L(
            values
                .into_iter()
                .map(|b| AttributeValue::B(b.into_inner()))
                .collect(),
        ),
        _ => AttributeValue::Null,
    }
}

/// A view of the SDK's attribute value, read as [`from_sdk`] converts it.
fn view_sdk(value: &Av) -> AttributeRef<'_> {
    match value {
        Av::S(s) => AttributeRef::S(s),
        Av::N(n) => AttributeRef::N(n),
        Av::B(b) => AttributeRef::B(b.as_ref()),
        Av::Bool(b) => AttributeRef::Bool(*b),
        Av::L(values) => AttributeRef::L(values.iter().map(view_sdk).collect()),
        Av::M(map) => AttributeRef::M(item_view_sdk(map)),
        Av::Ss(values) => AttributeRef::L(values.iter().map(|s| AttributeRef::S(s)).collect()),
        Av::Ns(values) => AttributeRef::L(values.iter().map(|n| AttributeRef::N(n)).collect()),
        Av::Bs(values) => {
            AttributeRef::L(values.iter().map(|b| AttributeRef::B(b.as_ref())).collect())
        }
        _ => AttributeRef::Null,
    }
}

/// A view of the SDK's attribute map, without converting it.
pub fn item_view_sdk(item: &HashMap<String, Av>) -> ItemRef<'_> {
    ItemRef::from_attributes(
        item.iter()
            .map(|(name, value)| (name.as_str(), view_sdk(value)))
            .collect(),
    )
}

/// An item as the SDK's attribute map.
pub fn item_to_sdk(item: Item) -> HashMap<String, Av> {
    item.into_iter().map(|(k, v)| (k, to_sdk(v))).collect()
}

/// The SDK's attribute map as an item.
pub fn item_from_sdk(item: HashMap<String, Av>) -> Item {
    item.into_iter().map(|(k, v)| (k, from_sdk(v))).collect()
}

fn key_to_sdk(key: &ItemKey) -> HashMap<String, Av> {
    HashMap::from([
        (PARTITION_KEY.to_owned(), Av::S(key.pk.clone())),
        (SORT_KEY.to_owned(), Av::S(key.sk.clone())),
    ])
}

/// Collects expression placeholders: `#n0`… for names, `:v0`… for values.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, Av>,
}

impl Expression {
    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, value: Av) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `the item exists and has not expired`.
    fn live(&mut self) -> String {
        let (pk, ttl) = (self.name(PARTITION_KEY), self.name(TTL));
        let now = self.value(Av::N(now_epoch_seconds().to_string()));
        format!("attribute_exists({pk}) AND (attribute_not_exists({ttl}) OR {ttl} > {now})")
    }

    /// The item holds `entity` (see [`super::Expected::entity`]); `None` adds nothing.
    fn holds(&mut self, condition: String, entity: Option<&str>) -> String {
        match entity {
            None => condition,
            Some(entity) => {
                let (name, value) = (self.name(ENTITY_TYPE), self.value(Av::S(entity.to_owned())));
                format!("{condition} AND (attribute_not_exists({name}) OR {name} = {value})")
            }
        }
    }

    /// `attribute = expected`, for a version check.
    fn version_is(&mut self, attribute: &str, expected: u64) -> String {
        let (name, value) = (
            self.name(attribute),
            self.value(Av::N(expected.to_string())),
        );
        format!("{name} = {value}")
    }

    /// The condition of a create: no live item holds the key.
    fn absent(&mut self) -> String {
        let (pk, ttl) = (self.name(PARTITION_KEY), self.name(TTL));
        let now = self.value(Av::N(now_epoch_seconds().to_string()));
        format!("attribute_not_exists({pk}) OR {ttl} <= {now}")
    }

    /// The live item meets `expected` (entity type and version).
    fn expected(&mut self, expected: &Expected) -> String {
        let live = self.live();
        let condition = self.holds(live, expected.entity.as_deref());
        match &expected.version {
            Some((attribute, version)) => {
                format!("{condition} AND {}", self.version_is(attribute, *version))
            }
            None => condition,
        }
    }

    /// The update expression of `update` (`None` when it changes nothing) and its condition.
    fn update(&mut self, update: &ItemUpdate) -> (Option<String>, String) {
        let live = self.live();
        let mut condition = self.holds(live, update.entity.as_deref());
        let mut sets: Vec<String> = update
            .set
            .iter()
            .map(|(attribute, value)| {
                let (name, value) = (self.name(attribute), self.value(to_sdk(value.clone())));
                format!("{name} = {value}")
            })
            .collect();
        let removes: Vec<String> = update.remove.iter().map(|a| self.name(a)).collect();
        if let Some((attribute, expected)) = &update.version {
            let name = self.name(attribute);
            let (zero, one) = (self.value(Av::N("0".into())), self.value(Av::N("1".into())));
            sets.push(format!("{name} = if_not_exists({name}, {zero}) + {one}"));
            if let Some(expected) = expected {
                condition = format!("{condition} AND {}", self.version_is(attribute, *expected));
            }
        }
        let mut clauses = Vec::new();
        if !sets.is_empty() {
            clauses.push(format!("SET {}", sets.join(", ")));
        }
        if !removes.is_empty() {
            clauses.push(format!("REMOVE {}", removes.join(", ")));
        }
        ((!clauses.is_empty()).then(|| clauses.join(" ")), condition)
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, Av>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// Maps an SDK failure: throttling, 5xx and transport failures are UNAVAILABLE (after the
/// SDK's own retries); an item over the size limit is the error the embedded store gives for
/// it; everything else is internal.
fn sdk_error<E, R>(operation: &str, error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    const THROTTLES: &[&str] = &[
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
    ];
    const RETRYABLE: &[&str] = &[
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
        // A single-item write that met a transaction in progress on its item.
        "TransactionConflictException",
    ];
    let code = error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code);
    if code.is_some_and(|c| THROTTLES.contains(&c)) {
        crate::telemetry::throttled();
    }
    // One line: the operation, AWS's error code and message (or the transport failure).
    let detail = match error.as_service_error() {
        Some(service) => format!(
            "{operation}: {}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        None => format!(
            "{operation}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&error)
        ),
    };
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(detail)
        }
        SdkError::ServiceError(service)
            if service.err().code().is_some_and(|c| RETRYABLE.contains(&c)) =>
        {
            StoreError::Unavailable(detail)
        }
        // PutItem says "Item size has exceeded the maximum allowed size", UpdateItem "Item size
        // to update has exceeded the maximum allowed size".
        SdkError::ServiceError(service)
            if service.err().code() == Some("ValidationException")
                && service.err().message().is_some_and(|m| {
                    m.contains("Item size") && m.contains("exceeded the maximum allowed size")
                }) =>
        {
            StoreError::Invalid(limits::ITEM_TOO_LARGE.to_owned())
        }
        _ => StoreError::Internal(detail),
    }
}

/// Classifies a failed condition from the item DynamoDB returned with it and what the
/// condition expected (a create expects nothing: its condition fails only on a live item).
fn condition_failed(old: Option<&HashMap<String, Av>>, expected: &Expected) -> StoreError {
    let Some(old) = old.cloned().map(item_from_sdk).filter(|old| {
        !is_expired_item(old, now_epoch_seconds())
            && holds_entity_item(old, expected.entity.as_deref())
    }) else {
        return StoreError::NotFound;
    };
    match &expected.version {
        Some((attribute, expected)) => StoreError::VersionConflict {
            expected: *expected,
            actual: stored_version(&old, attribute),
        },
        None => StoreError::AlreadyExists,
    }
}

/// What an update's condition expects of the stored item.
fn update_expectation(update: &ItemUpdate) -> Expected {
    Expected {
        entity: update.entity.clone(),
        version: update
            .version
            .as_ref()
            .and_then(|(attribute, version)| version.map(|v| (attribute.clone(), v))),
    }
}

/// The cancellation of a transaction: the first write whose condition failed, classified;
/// conflicts with other transactions and throttling are UNAVAILABLE (retryable).
fn transaction_canceled(
    reasons: &[CancellationReason],
    expectations: &[Expected],
    detail: String,
) -> StoreError {
    let count = expectations.len();
    for (index, reason) in reasons.iter().enumerate() {
        match reason.code() {
            Some("ConditionalCheckFailed") => {
                let expected = expectations.get(index).cloned().unwrap_or_default();
                return StoreError::TransactionCanceled {
                    index,
                    count,
                    reason: Box::new(condition_failed(reason.item(), &expected)),
                };
            }
            Some("TransactionConflict") => return StoreError::Unavailable(detail),
            Some("ThrottlingError" | "ProvisionedThroughputExceeded") => {
                crate::telemetry::throttled();
                return StoreError::Unavailable(detail);
            }
            _ => {}
        }
    }
    StoreError::Internal(detail)
}

/// Whether an operation reads or writes, for capacity DynamoDB reports only as a total.
#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
}

/// Reports what DynamoDB says a request consumed: `CapacityUnits`, the total (the only figure
/// AWS documents for `TOTAL`), split by the read and write units it gives, the rest counted as
/// the operation's kind.
fn consumed(capacity: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>, kind: Kind) {
    let Some(capacity) = capacity else { return };
    let (read, write) = (
        capacity.read_capacity_units.unwrap_or(0.0),
        capacity.write_capacity_units.unwrap_or(0.0),
    );
    let rest = (capacity.capacity_units.unwrap_or(0.0) - read - write).max(0.0);
    match kind {
        Kind::Read => crate::telemetry::consumed(read + rest, write),
        Kind::Write => crate::telemetry::consumed(read, write + rest),
    }
}

/// Exponential backoff for retrying unprocessed keys: 100 ms after the first answer, then
/// 200 ms, … up to 1.6 s.
fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_millis(50 << attempt.min(5))
}

/// How often `batch_get` asks again for keys DynamoDB left unprocessed (throttling).
const BATCH_GET_RETRIES: u32 = 8;
/// BatchGetItem's limit on keys per request.
const BATCH_GET_KEYS: usize = 100;

/// A `Query` page as the SDK answers it: the items and the last evaluated key.
type SdkPage = (Vec<HashMap<String, Av>>, Option<HashMap<String, Av>>);

impl DynamoStore {
    /// One `GetItem`, strongly consistent.
    async fn get_item(&self, key: &ItemKey) -> Result<Option<HashMap<String, Av>>, StoreError> {
        limits::check_item_key(key)?;
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_to_sdk(key)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        consumed(output.consumed_capacity(), Kind::Read);
        Ok(output.item)
    }

    /// One `Query` page: its items and last key, as the SDK answers them.
    async fn query_page(&self, query: Query) -> Result<SdkPage, StoreError> {
        limits::check_query(&query)?;
        let (pk_attr, sk_attr) = query_key_attributes(query.index.as_deref());
        if let Some(start) = &query.start_after {
            // A forged page token fails here, as on `LocalStore`, without a request.
            start_sort_key(&query, start, &pk_attr, &sk_attr)?;
        }
        let mut e = Expression::default();
        let (pk, partition) = (e.name(&pk_attr), e.value(Av::S(query.partition.clone())));
        let mut key_condition = format!("{pk} = {partition}");
        if !query.sort_key_prefix.is_empty() {
            let (sk, prefix) = (
                e.name(&sk_attr),
                e.value(Av::S(query.sort_key_prefix.clone())),
            );
            key_condition = format!("{key_condition} AND begins_with({sk}, {prefix})");
        }
        let (ttl, now) = (e.name(TTL), e.value(Av::N(now_epoch_seconds().to_string())));
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(query.index.clone())
            .key_condition_expression(key_condition)
            .filter_expression(format!("attribute_not_exists({ttl}) OR {ttl} > {now}"))
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .scan_index_forward(!query.descending)
            .limit(i32::try_from(query.limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(query.start_after.clone().map(item_to_sdk))
            .set_consistent_read(query.index.is_none().then_some(true))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        consumed(output.consumed_capacity(), Kind::Read);
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create(&self, item: Item) -> Result<(), StoreError> {
        limits::check_item(&item, &self.index_names())?;
        let mut e = Expression::default();
        let condition = e.absent();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_to_sdk(item)))
            .condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                consumed(output.consumed_capacity(), Kind::Write);
                Ok(())
            }
            Err(error) => match error.as_service_error() {
                Some(service) if service.is_conditional_check_failed_exception() => {
                    Err(StoreError::AlreadyExists)
                }
                _ => Err(sdk_error("PutItem", error)),
            },
        }
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        Ok(self
            .get_item(key)
            .await?
            .map(item_from_sdk)
            .filter(|item| !is_expired_item(item, now_epoch_seconds())))
    }

    async fn get_with(&self, key: &ItemKey, read: &mut ReadItem<'_>) -> Result<bool, StoreError> {
        let Some(item) = self.get_item(key).await? else {
            return Ok(false);
        };
        let item = item_view_sdk(&item);
        if is_expired(&item, now_epoch_seconds()) {
            return Ok(false);
        }
        read(&item);
        Ok(true)
    }

    async fn query(&self, query: Query) -> Result<QueryPage, StoreError> {
        let (items, last_key) = self.query_page(query).await?;
        Ok(QueryPage {
            items: items.into_iter().map(item_from_sdk).collect(),
            last_key: last_key.map(item_from_sdk),
        })
    }

    async fn query_with(
        &self,
        query: Query,
        read: &mut ReadItem<'_>,
    ) -> Result<Option<Item>, StoreError> {
        let (items, last_key) = self.query_page(query).await?;
        for item in &items {
            read(&item_view_sdk(item));
        }
        Ok(last_key.map(item_from_sdk))
    }

    async fn update(&self, key: &ItemKey, update: ItemUpdate) -> Result<Item, StoreError> {
        // DynamoDB checks the merged item's size itself (mapped in `sdk_error`).
        limits::check_item_key(key)?;
        limits::check_update(&update.set, &self.index_names())?;
        let mut e = Expression::default();
        let (expression, condition) = e.update(&update);
        let Some(expression) = expression else {
            // Nothing to change: the result is the stored item, if it exists.
            return self.get(key).await?.ok_or(StoreError::NotFound);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_to_sdk(key)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                consumed(output.consumed_capacity(), Kind::Write);
                Ok(output.attributes.map(item_from_sdk).unwrap_or_default())
            }
            Err(error) => match error.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                    failed,
                )) => Err(condition_failed(failed.item(), &update_expectation(&update))),
                _ => Err(sdk_error("UpdateItem", error)),
            },
        }
    }

    async fn delete(&self, key: &ItemKey, expected: Expected) -> Result<Item, StoreError> {
        limits::check_item_key(key)?;
        let mut e = Expression::default();
        let condition = e.expected(&expected);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_to_sdk(key)))
            .condition_expression(condition)
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                consumed(output.consumed_capacity(), Kind::Write);
                Ok(output.attributes.map(item_from_sdk).unwrap_or_default())
            }
            Err(error) => match error.as_service_error() {
                Some(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(
                    failed,
                )) => Err(condition_failed(failed.item(), &expected)),
                _ => Err(sdk_error("DeleteItem", error)),
            },
        }
    }

    async fn transact(&self, writes: Vec<TransactWrite>) -> Result<(), StoreError> {
        let keys = limits::check_transaction(&writes, &self.index_names())?;
        if writes.is_empty() {
            return Ok(());
        }
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Internal(e.to_string());
        // What every kind of write sets alike: the table, its condition and the placeholders,
        // and the stored item returned when the condition fails (to classify the failure).
        macro_rules! conditional {
            ($builder:expr, $condition:expr, $e:expr) => {
                $builder
                    .table_name(&self.table)
                    .condition_expression($condition)
                    .set_expression_attribute_names($e.names())
                    .set_expression_attribute_values($e.values())
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build)?
            };
        }
        let mut expectations = Vec::with_capacity(writes.len());
        let mut items = Vec::with_capacity(writes.len());
        for (write, key) in writes.into_iter().zip(keys) {
            let mut e = Expression::default();
            let item = TransactWriteItem::builder();
            let key = Some(key_to_sdk(&key));
            let (item, expected) = match write {
                TransactWrite::Create(new) => {
                    let condition = e.absent();
                    let put = Put::builder().set_item(Some(item_to_sdk(new)));
                    (
                        item.put(conditional!(put, condition, e)),
                        Expected::default(),
                    )
                }
                TransactWrite::Update { update, .. } => {
                    let expected = update_expectation(&update);
                    match e.update(&update) {
                        (Some(expression), condition) => {
                            let update =
                                Update::builder().set_key(key).update_expression(expression);
                            (item.update(conditional!(update, condition, e)), expected)
                        }
                        // Nothing to change: the condition alone.
                        (None, condition) => {
                            let check = ConditionCheck::builder().set_key(key);
                            (
                                item.condition_check(conditional!(check, condition, e)),
                                expected,
                            )
                        }
                    }
                }
                TransactWrite::Delete { expected, .. } => {
                    let condition = e.expected(&expected);
                    let delete = Delete::builder().set_key(key);
                    (item.delete(conditional!(delete, condition, e)), expected)
                }
                TransactWrite::Check { expected, .. } => {
                    let condition = e.expected(&expected);
                    let check = ConditionCheck::builder().set_key(key);
                    (
                        item.condition_check(conditional!(check, condition, e)),
                        expected,
                    )
                }
            };
            items.push(item.build());
            expectations.push(expected);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                for capacity in output.consumed_capacity() {
                    consumed(Some(capacity), Kind::Write);
                }
                Ok(())
            }
            Err(error) => match error.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(canceled)) => {
                    let detail = format!(
                        "TransactWriteItems: TransactionCanceledException: {}",
                        canceled.message().unwrap_or("no message")
                    );
                    Err(transaction_canceled(
                        canceled.cancellation_reasons(),
                        &expectations,
                        detail,
                    ))
                }
                _ => Err(sdk_error("TransactWriteItems", error)),
            },
        }
    }

    async fn batch_get(&self, keys: &[ItemKey]) -> Result<Vec<Option<Item>>, StoreError> {
        keys.iter().try_for_each(limits::check_item_key)?;
        // DynamoDB refuses a request naming a key twice.
        let mut unique: Vec<&ItemKey> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut found: HashMap<ItemKey, Item> = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH_GET_KEYS) {
            let mut pending: Vec<HashMap<String, Av>> =
                chunk.iter().map(|k| key_to_sdk(k)).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchGetItem", e))?;
                for capacity in output.consumed_capacity() {
                    consumed(Some(capacity), Kind::Read);
                }
                let items = output
                    .responses
                    .and_then(|mut tables| tables.remove(&self.table))
                    .unwrap_or_default();
                for item in items.into_iter().map(item_from_sdk) {
                    found.insert(item_key(&item)?, item);
                }
                pending = output
                    .unprocessed_keys
                    .and_then(|mut tables| tables.remove(&self.table))
                    .map(|keys| keys.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    // Keys left unprocessed are DynamoDB's throttling of BatchGetItem.
                    attempt += 1;
                    if attempt > BATCH_GET_RETRIES {
                        crate::telemetry::throttled();
                        return Err(StoreError::Unavailable(format!(
                            "BatchGetItem: {} keys still unprocessed after {BATCH_GET_RETRIES} retries",
                            pending.len()
                        )));
                    }
                    // DynamoDB's advice for unprocessed keys: retry with exponential backoff.
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        let now = now_epoch_seconds();
        Ok(keys
            .iter()
            .map(|key| {
                found
                    .get(key)
                    .filter(|item| !is_expired_item(item, now))
                    .cloned()
            })
            .collect())
    }
}

/// What [`ensure_table`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOutcome {
    /// The table was created.
    Created,
    /// A table with the same keys and indexes existed already.
    Exists,
    /// The table existed without TTL on `ttl`, which was enabled.
    TtlEnabled,
}

/// Whether a table has svcgen's layout, from one `DescribeTable` (no mutating call).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableState {
    /// There is no such table.
    Missing,
    /// The table has the expected keys and indexes.
    Matches,
    /// The table exists with another layout (the message says how it differs).
    Differs(String),
    /// The table has the expected keys and indexes, but TTL is not enabled on `ttl` (a
    /// creation that stopped before its last step): [`enable_ttl`] completes it.
    WithoutTtl,
}

/// Compares `table` with svcgen's layout for `indexes` (see [`create_table`]).
pub async fn check_table(
    client: &Client,
    table: &str,
    indexes: &[&str],
) -> Result<TableState, StoreError> {
    let described = match client.describe_table().table_name(table).send().await {
        Ok(described) => described,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(TableState::Missing);
        }
        Err(error) => return Err(sdk_error("DescribeTable", error)),
    };
    let differences = match described.table() {
        Some(description) => layout_differences(description, indexes),
        None => vec!["DescribeTable returned no table description".to_owned()],
    };
    if !differences.is_empty() {
        return Ok(TableState::Differs(format!(
            "table {table} exists with another layout: {}",
            differences.join("; ")
        )));
    }
    Ok(if ttl_enabled(client, table).await? {
        TableState::Matches
    } else {
        TableState::WithoutTtl
    })
}

/// Whether TTL is enabled (or being enabled) on `ttl` (DescribeTimeToLive).
async fn ttl_enabled(client: &Client, table: &str) -> Result<bool, StoreError> {
    use aws_sdk_dynamodb::types::TimeToLiveStatus;
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| sdk_error("DescribeTimeToLive", e))?;
    Ok(described.time_to_live_description().is_some_and(|d| {
        d.attribute_name() == Some(TTL)
            && matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )
    }))
}

/// Enables TTL on `ttl`: what [`create_table`] does last, for a table whose creation stopped
/// before it (see [`TableState::WithoutTtl`]).
pub async fn enable_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::TimeToLiveSpecification;
    let specification = TimeToLiveSpecification::builder()
        .attribute_name(TTL)
        .enabled(true)
        .build()
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await
        .map_err(|e| sdk_error("UpdateTimeToLive", e))?;
    Ok(())
}

/// How a described table differs from svcgen's layout for `indexes`: key schema, key attribute
/// types, each index's key schema and projection (an empty list when it matches).
fn layout_differences(
    table: &aws_sdk_dynamodb::types::TableDescription,
    indexes: &[&str],
) -> Vec<String> {
    use aws_sdk_dynamodb::types::ProjectionType;
    let mut out = Vec::new();
    let wanted_keys = |pk: &str, sk: &str| vec![format!("{pk} HASH"), format!("{sk} RANGE")];
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<String> {
        schema
            .iter()
            .map(|k| format!("{} {}", k.attribute_name(), k.key_type().as_str()))
            .collect()
    };
    let table_keys = keys(table.key_schema());
    if table_keys != wanted_keys(PARTITION_KEY, SORT_KEY) {
        out.push(format!(
            "keys {table_keys:?}, expected [\"pk HASH\", \"sk RANGE\"]"
        ));
    }
    let mut key_attributes = vec![PARTITION_KEY.to_owned(), SORT_KEY.to_owned()];
    let described = table.global_secondary_indexes();
    let mut names: Vec<&str> = described.iter().filter_map(|i| i.index_name()).collect();
    names.sort_unstable();
    let mut wanted: Vec<&str> = indexes.to_vec();
    wanted.sort_unstable();
    if names != wanted {
        out.push(format!("indexes {names:?}, expected {wanted:?}"));
    }
    for index in described {
        let name = index.index_name().unwrap_or_default();
        if !indexes.contains(&name) {
            continue;
        }
        let (pk, sk) = index_key_attributes(name);
        let index_keys = keys(index.key_schema());
        if index_keys != wanted_keys(&pk, &sk) {
            out.push(format!(
                "index {name} keys {index_keys:?}, expected [\"{pk} HASH\", \"{sk} RANGE\"]"
            ));
        }
        let projection = index.projection().and_then(|p| p.projection_type());
        if projection != Some(&ProjectionType::All) {
            out.push(format!(
                "index {name} projects {}, expected ALL",
                projection.map_or("nothing", |p| p.as_str())
            ));
        }
        key_attributes.extend([pk, sk]);
    }
    for attribute in key_attributes {
        let kind = table
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == attribute)
            .map(|d| d.attribute_type().as_str());
        if kind != Some("S") {
            out.push(format!(
                "key attribute {attribute} is {}, expected S (string)",
                kind.unwrap_or("undefined")
            ));
        }
    }
    out
}

/// Creates `table` with svcgen's layout: on-demand billing; string keys `pk`/`sk`; one global
/// secondary index per name in `indexes`, keyed `NAMEpk`/`NAMEsk`, projecting every attribute;
/// TTL on `ttl`.
pub async fn create_table(
    client: &Client,
    table: &str,
    indexes: &[&str],
) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Internal(e.to_string());
    let key = |pk: &str, sk: &str| -> Result<Vec<KeySchemaElement>, StoreError> {
        Ok(vec![
            KeySchemaElement::builder()
                .attribute_name(pk)
                .key_type(KeyType::Hash)
                .build()
                .map_err(build)?,
            KeySchemaElement::builder()
                .attribute_name(sk)
                .key_type(KeyType::Range)
                .build()
                .map_err(build)?,
        ])
    };
    let mut attributes = vec![PARTITION_KEY.to_owned(), SORT_KEY.to_owned()];
    let mut secondary = Vec::new();
    for index in indexes {
        let (pk, sk) = index_key_attributes(index);
        secondary.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.to_string())
                .set_key_schema(Some(key(&pk, &sk)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(build)?,
        );
        attributes.extend([pk, sk]);
    }
    let definitions = attributes
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)
        })
        .collect::<Result<Vec<_>, _>>()?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key(PARTITION_KEY, SORT_KEY)?))
        .set_attribute_definitions(Some(definitions))
        .set_global_secondary_indexes((!secondary.is_empty()).then_some(secondary))
        .send()
        .await
        .map_err(|e| sdk_error("CreateTable", e))?;
    // DynamoDB refuses changes (UpdateTimeToLive included) while a table is CREATING.
    wait_until_active(client, table, TABLE_ACTIVE_TIMEOUT).await?;
    enable_ttl(client, table).await
}

/// How long [`create_table`] waits for a new table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Polls `DescribeTable` until `table` is ACTIVE, at most `timeout`.
async fn wait_until_active(
    client: &Client,
    table: &str,
    timeout: std::time::Duration,
) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::TableStatus;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // DescribeTable is eventually consistent: right after CreateTable it may not find the
        // table yet, which means "not ACTIVE yet" here.
        let status = match client.describe_table().table_name(table).send().await {
            Ok(described) => described.table().and_then(|t| t.table_status()).cloned(),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                None
            }
            Err(error) => return Err(sdk_error("DescribeTable", error)),
        };
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Unavailable(format!(
                "table {table} is still {} after {} s",
                status.as_ref().map_or("not found", |s| s.as_str()),
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Creates `table` with svcgen's layout (see [`create_table`]) unless it exists; an existing
/// table must have that layout. Makes no mutating call when the table is there.
pub async fn ensure_table(
    client: &Client,
    table: &str,
    indexes: &[&str],
) -> Result<TableOutcome, StoreError> {
    match check_table(client, table, indexes).await? {
        TableState::Matches => Ok(TableOutcome::Exists),
        TableState::WithoutTtl => {
            enable_ttl(client, table).await?;
            Ok(TableOutcome::TtlEnabled)
        }
        TableState::Differs(message) => Err(StoreError::Internal(message)),
        TableState::Missing => {
            create_table(client, table, indexes).await?;
            Ok(TableOutcome::Created)
        }
    }
}
