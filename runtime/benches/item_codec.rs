//! `#[derive(Attributes)]` against serde_dynamo on one ~16-attribute message with a nested
//! map, a list of messages and a nested message, in both directions.
//!
//! `cargo bench -p svcgen-runtime --bench item_codec`. Three rows per direction:
//! - `derive`: message ↔ svcgen's `Item`;
//! - `derive+stored` (reading only): message ← the embedded store's encoding of the item, read
//!   in place (`LocalStore`'s read path);
//! - `derive+sdk`: message ↔ the AWS SDK's attribute map (what `DynamoStore` sends and reads,
//!   the latter in place), the like-for-like comparison with serde_dynamo;
//! - `serde_dynamo`: message ↔ the AWS SDK's attribute map through serde.

use std::collections::HashMap;
use std::hint::black_box;

use aws_sdk_dynamodb::types::AttributeValue as SdkValue;
use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use svcgen_runtime::store::{item_to_sdk, item_view_sdk};
use svcgen_runtime::{Attributes, Item, ItemRef};

#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Attributes, Serialize, Deserialize)]
pub struct LineItem {
    #[prost(string, tag = "1")]
    pub sku: String,
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
    #[prost(uint64, tag = "3")]
    pub price_cents: u64,
}

#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Attributes, Serialize, Deserialize)]
pub struct Address {
    #[prost(string, tag = "1")]
    pub street: String,
    #[prost(string, tag = "2")]
    pub city: String,
    #[prost(string, tag = "3")]
    pub country: String,
}

#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Attributes, Serialize, Deserialize)]
pub struct Order {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub customer: String,
    #[prost(string, tag = "3")]
    pub status: String,
    #[prost(uint64, tag = "4")]
    pub total_cents: u64,
    #[prost(string, tag = "5")]
    pub currency: String,
    #[prost(message, repeated, tag = "6")]
    pub items: Vec<LineItem>,
    #[prost(string, repeated, tag = "7")]
    pub tags: Vec<String>,
    #[prost(map = "string, string", tag = "8")]
    pub attributes: HashMap<String, String>,
    #[prost(int64, tag = "9")]
    pub created: i64,
    #[prost(int64, tag = "10")]
    pub updated: i64,
    #[prost(bool, tag = "11")]
    pub paid: bool,
    #[prost(double, tag = "12")]
    pub discount: f64,
    #[prost(string, tag = "13")]
    pub notes: String,
    #[prost(string, tag = "14")]
    pub region: String,
    #[prost(uint64, tag = "15")]
    pub version: u64,
    #[prost(message, optional, tag = "16")]
    pub shipping: Option<Address>,
}

fn order() -> Order {
    Order {
        id: "0192f4a8-7c1e-7d33-9a51-2f6b8e4c1d09".into(),
        customer: "customer-4711".into(),
        status: "ORDER_STATE_PAID".into(),
        total_cents: 129_900,
        currency: "EUR".into(),
        items: (0..3)
            .map(|i| LineItem {
                sku: format!("SKU-{i:04}"),
                quantity: i + 1,
                price_cents: 43_300,
            })
            .collect(),
        tags: vec!["priority".into(), "gift".into(), "eu".into()],
        attributes: (0..4)
            .map(|i| (format!("key{i}"), format!("value {i}")))
            .collect(),
        created: 1_764_150_000,
        updated: 1_764_150_321,
        paid: true,
        discount: 0.15,
        notes: "leave at the door".into(),
        region: "eu-central-1".into(),
        version: 7,
        shipping: Some(Address {
            street: "Hauptstraße 1".into(),
            city: "Berlin".into(),
            country: "DE".into(),
        }),
    }
}

fn our_item(order: &Order) -> Item {
    let mut item = Item::new();
    order.write_attributes(&mut item);
    item
}

fn codec(c: &mut Criterion) {
    let order = order();
    let item = our_item(&order);
    let sdk = item_to_sdk(item.clone());
    let serde_sdk: HashMap<String, SdkValue> = serde_dynamo::to_item(&order).expect("serializes");
    assert_eq!(
        Order::read_attributes(&item_view_sdk(&sdk)).expect("reads"),
        order
    );
    assert_eq!(
        serde_dynamo::from_item::<_, Order>(serde_sdk.clone()).expect("deserializes"),
        order
    );

    let mut to_item = c.benchmark_group("to_item");
    to_item.bench_function("derive", |b| b.iter(|| our_item(black_box(&order))));
    to_item.bench_function("derive+sdk", |b| {
        b.iter(|| item_to_sdk(our_item(black_box(&order))))
    });
    to_item.bench_function("serde_dynamo", |b| {
        b.iter(|| serde_dynamo::to_item::<_, HashMap<String, SdkValue>>(black_box(&order)))
    });
    to_item.finish();

    let mut from_item = c.benchmark_group("from_item");
    from_item.bench_function("derive", |b| {
        b.iter(|| Order::read_attributes(&ItemRef::of(black_box(&item))))
    });
    let stored = postcard::to_stdvec(&item).expect("encodes");
    from_item.bench_function("derive+stored", |b| {
        b.iter(|| {
            let view: ItemRef<'_> = postcard::from_bytes(black_box(&stored)).expect("reads");
            Order::read_attributes(&view)
        })
    });
    from_item.bench_function("derive+sdk", |b| {
        b.iter(|| Order::read_attributes(&item_view_sdk(black_box(&sdk))))
    });
    // serde_dynamo takes its input by value, as the SDK hands it over; cloning it is setup.
    from_item.bench_function("serde_dynamo", |b| {
        b.iter_batched(
            || serde_sdk.clone(),
            serde_dynamo::from_item::<_, Order>,
            criterion::BatchSize::SmallInput,
        )
    });
    from_item.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
