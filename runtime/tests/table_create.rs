//! `create_table` and `check_table` against DynamoDB responses shaped like AWS's, which the API
//! emulator does not reproduce: a new table is CREATING for a while (and refuses UpdateTimeToLive
//! until it is ACTIVE), and an existing table can differ in key types, index keys or projection.
#![cfg(feature = "dynamodb")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use svcgen_runtime::store::{TableState, check_table, create_table};

const CREATING: &str = r#"{"TableDescription":{"TableName":"things","TableStatus":"CREATING"}}"#;

fn described(status: &str, gsi_projection: &str, gsi1sk_type: &str) -> String {
    format!(
        r#"{{"Table":{{"TableName":"things","TableStatus":"{status}",
        "KeySchema":[{{"AttributeName":"pk","KeyType":"HASH"}},{{"AttributeName":"sk","KeyType":"RANGE"}}],
        "AttributeDefinitions":[{{"AttributeName":"pk","AttributeType":"S"}},{{"AttributeName":"sk","AttributeType":"S"}},
          {{"AttributeName":"gsi1pk","AttributeType":"S"}},{{"AttributeName":"gsi1sk","AttributeType":"{gsi1sk_type}"}}],
        "GlobalSecondaryIndexes":[{{"IndexName":"gsi1","IndexStatus":"ACTIVE",
          "KeySchema":[{{"AttributeName":"gsi1pk","KeyType":"HASH"}},{{"AttributeName":"gsi1sk","KeyType":"RANGE"}}],
          "Projection":{{"ProjectionType":"{gsi_projection}"}}}}]}}}}"#
    )
}

#[tokio::test]
async fn time_to_live_is_enabled_once_the_table_is_active() {
    let describes = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(Mutex::new(Vec::<String>::new()));
    let (seen, log) = (describes.clone(), calls.clone());
    let endpoint = support::scripted_endpoint(Arc::new(move |operation, _| {
        log.lock().expect("log").push(operation.to_owned());
        match operation {
            "CreateTable" => (200, CREATING.to_owned()),
            "DescribeTable" => match seen.fetch_add(1, Ordering::SeqCst) {
                // Eventually consistent: not found right after CreateTable, then CREATING.
                0 => (
                    400,
                    support::error_body(
                        "ResourceNotFoundException",
                        "Requested resource not found: Table: things not found",
                    ),
                ),
                1 => (200, described("CREATING", "ALL", "S")),
                _ => (200, described("ACTIVE", "ALL", "S")),
            },
            "UpdateTimeToLive" if seen.load(Ordering::SeqCst) >= 3 => (
                200,
                r#"{"TimeToLiveSpecification":{"AttributeName":"ttl","Enabled":true}}"#.to_owned(),
            ),
            "UpdateTimeToLive" => (
                400,
                support::error_body(
                    "ResourceInUseException",
                    "Attempt to change a resource which is still in use: Table is being created",
                ),
            ),
            other => (400, support::error_body("UnknownOperationException", other)),
        }
    }))
    .await;
    create_table(&support::client(&endpoint), "things", &["gsi1"])
        .await
        .expect("created");
    assert_eq!(
        *calls.lock().expect("log"),
        [
            "CreateTable",
            "DescribeTable",
            "DescribeTable",
            "DescribeTable",
            "UpdateTimeToLive"
        ]
    );
}

const TTL_ENABLED: &str =
    r#"{"TimeToLiveDescription":{"AttributeName":"ttl","TimeToLiveStatus":"ENABLED"}}"#;

/// What `check_table` says of a table described as `table`, with TTL described as `ttl`.
async fn state_with_ttl(table: String, ttl: &'static str) -> TableState {
    let endpoint = support::scripted_endpoint(Arc::new(move |operation, _| match operation {
        "DescribeTimeToLive" => (200, ttl.to_owned()),
        _ => (200, table.clone()),
    }))
    .await;
    check_table(&support::client(&endpoint), "things", &["gsi1"])
        .await
        .expect("described")
}

async fn state_of(table: String) -> TableState {
    state_with_ttl(table, TTL_ENABLED).await
}

/// A table whose creation stopped before TTL was enabled is not "the same layout": it is
/// reported so that `table create` and `deploy` complete it.
#[tokio::test]
async fn a_table_without_ttl_is_reported() {
    let disabled = r#"{"TimeToLiveDescription":{"TimeToLiveStatus":"DISABLED"}}"#;
    assert_eq!(
        state_with_ttl(described("ACTIVE", "ALL", "S"), disabled).await,
        TableState::WithoutTtl
    );
    let elsewhere =
        r#"{"TimeToLiveDescription":{"AttributeName":"expires","TimeToLiveStatus":"ENABLED"}}"#;
    assert_eq!(
        state_with_ttl(described("ACTIVE", "ALL", "S"), elsewhere).await,
        TableState::WithoutTtl
    );
}

#[tokio::test]
async fn the_layout_check_compares_types_index_keys_and_projections() {
    assert_eq!(
        state_of(described("ACTIVE", "ALL", "S")).await,
        TableState::Matches
    );
    let TableState::Differs(message) = state_of(described("ACTIVE", "KEYS_ONLY", "S")).await else {
        panic!("a KEYS_ONLY index is not svcgen's layout")
    };
    assert!(
        message.contains("index gsi1 projects KEYS_ONLY, expected ALL"),
        "{message}"
    );
    let TableState::Differs(message) = state_of(described("ACTIVE", "ALL", "N")).await else {
        panic!("a numeric index key is not svcgen's layout")
    };
    assert!(
        message.contains("key attribute gsi1sk is N, expected S"),
        "{message}"
    );
    let swapped = described("ACTIVE", "ALL", "S")
        .replace(
            r#"{"AttributeName":"gsi1pk","KeyType":"HASH"}"#,
            r#"{"AttributeName":"gsi1pk","KeyType":"RANGE"}"#,
        )
        .replace(
            r#"{"AttributeName":"gsi1sk","KeyType":"RANGE"}"#,
            r#"{"AttributeName":"gsi1sk","KeyType":"HASH"}"#,
        );
    let TableState::Differs(message) = state_of(swapped).await else {
        panic!("swapped index keys are not svcgen's layout")
    };
    assert!(message.contains("index gsi1 keys"), "{message}");
    let missing = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}"#;
    let endpoint =
        support::scripted_endpoint(Arc::new(move |_, _| (400, missing.to_owned()))).await;
    assert_eq!(
        check_table(&support::client(&endpoint), "things", &["gsi1"])
            .await
            .expect("described"),
        TableState::Missing
    );
}
