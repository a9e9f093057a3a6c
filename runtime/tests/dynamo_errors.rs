//! How `DynamoStore` reports failures: throttling and unreachable endpoints are UNAVAILABLE
//! after the SDK's retries, anything unexpected is INTERNAL, and the gRPC status never carries
//! the internal detail. A loopback HTTP server plays a misbehaving DynamoDB endpoint.
#![cfg(feature = "dynamodb")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use svcgen_runtime::store::{DynamoStore, StoreError};
use svcgen_runtime::{Error, ItemKey, Store};

/// Answers every request with HTTP 400 and DynamoDB error `error_type`; counts requests.
async fn failing_endpoint(error_type: &'static str) -> (String, Arc<AtomicUsize>) {
    failing_endpoint_saying(error_type, "injected").await
}

/// [`failing_endpoint`] with the error's `message`.
async fn failing_endpoint_saying(
    error_type: &'static str,
    message: &'static str,
) -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let endpoint = support::scripted_endpoint(Arc::new(move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        (400, support::error_body(error_type, message))
    }))
    .await;
    (endpoint, requests)
}

fn store(endpoint: &str) -> DynamoStore {
    DynamoStore::new(support::client(endpoint), "things")
}

fn key() -> ItemKey {
    ItemKey {
        pk: "P#1".into(),
        sk: "T#1".into(),
    }
}

#[tokio::test]
async fn throttling_is_unavailable_after_the_sdk_retries() {
    let (endpoint, requests) = failing_endpoint("ProvisionedThroughputExceededException").await;
    let result = store(&endpoint).get(&key()).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 2, "the SDK retried once");
    let status = tonic::Status::from(Error::from_store("Thing", result.expect_err("failed")));
    assert_eq!(status.code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let result = store(&endpoint).get(&key()).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn unexpected_errors_are_internal_and_hidden_from_clients() {
    let (endpoint, requests) = failing_endpoint("ResourceNotFoundException").await;
    let result = store(&endpoint).get(&key()).await;
    let Err(StoreError::Internal(detail)) = result else {
        panic!("expected internal, got {result:?}")
    };
    assert!(detail.contains("ResourceNotFoundException"), "{detail}");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "not retried");
    let status = tonic::Status::from(Error::from_store("Thing", StoreError::Internal(detail)));
    assert_eq!(status.code(), tonic::Code::Internal);
    assert_eq!(
        status.message(),
        "internal error",
        "no detail leaks to the client"
    );
}

/// DynamoDB checks an updated item's size itself; its refusal (AWS's error shape and message)
/// is the same INVALID_ARGUMENT the embedded store gives.
#[tokio::test]
async fn an_update_over_the_item_size_limit_is_invalid_argument() {
    let operations = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = operations.clone();
    let endpoint = support::scripted_endpoint(Arc::new(move |operation, _| {
        log.lock().expect("log").push(operation.to_owned());
        let message = "Item size to update has exceeded the maximum allowed size";
        (400, support::error_body("ValidationException", message))
    }))
    .await;
    let update = svcgen_runtime::store::ItemUpdate {
        set: [(
            "notes".to_owned(),
            svcgen_runtime::AttributeValue::S("x".into()),
        )]
        .into(),
        ..Default::default()
    };
    let result = store(&endpoint).update(&key(), update).await;
    assert_eq!(*operations.lock().expect("log"), ["UpdateItem"]);
    let Err(StoreError::Invalid(message)) = result else {
        panic!("expected invalid, got {result:?}")
    };
    assert_eq!(message, svcgen_runtime::store::limits::ITEM_TOO_LARGE);
    let status = tonic::Status::from(Error::from_store("Thing", StoreError::Invalid(message)));
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}
