//! The store conformance suite: DynamoDB's semantics for every `Store` operation. It runs
//! against `LocalStore` here; any other `Store` must pass the same functions.

#[cfg(feature = "dynamodb-tests")]
mod support;

use std::sync::Arc;

use svcgen_runtime::store::{
    Expected, ItemUpdate, LocalDatabase, MAX_TRANSACTION_WRITES, Query, QueryPage, StoreError,
    TransactWrite, limits,
};
use svcgen_runtime::{AttributeValue, Item, ItemKey, Store, TableSchema};

const SCHEMA: TableSchema = TableSchema {
    name: "things",
    physical: "things",
    variable: "TABLE_NAME_THINGS",
    indexes: &["gsi1"],
};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn item(pk: &str, sk: &str, extra: &[(&str, AttributeValue)]) -> Item {
    let mut item: Item = [("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))].into();
    item.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    item
}

fn key(pk: &str, sk: &str) -> ItemKey {
    ItemKey {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
    }
}

fn query(partition: &str, prefix: &str, limit: usize) -> Query {
    Query {
        index: None,
        partition: partition.to_owned(),
        sort_key_prefix: prefix.to_owned(),
        descending: false,
        limit,
        start_after: None,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `store.get`, checked against `get_with`: the view it hands over is the same item.
async fn get(store: &dyn Store, key: &ItemKey) -> Option<Item> {
    let item = store.get(key).await.expect("get");
    let mut viewed = None;
    let found = store
        .get_with(key, &mut |view| viewed = Some(view.to_item()))
        .await
        .expect("get_with");
    assert_eq!((found, &viewed), (item.is_some(), &item));
    item
}

/// `store.query`, checked against `query_with` (for the table: an index is eventually
/// consistent, so two reads of it may differ on DynamoDB).
async fn query_page(store: &dyn Store, q: Query) -> QueryPage {
    let page = store.query(q.clone()).await.expect("query");
    if q.index.is_none() {
        let mut viewed = Vec::new();
        let last_key = store
            .query_with(q, &mut |view| viewed.push(view.to_item()))
            .await
            .expect("query_with");
        assert_eq!((&viewed, &last_key), (&page.items, &page.last_key));
    }
    page
}

/// Every page of `q`, following last keys; returns the sort keys per page.
async fn pages(store: &dyn Store, mut q: Query) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = query_page(store, q.clone()).await;
        out.push(
            page.items
                .iter()
                .map(|i| match &i["sk"] {
                    AttributeValue::S(sk) => sk.clone(),
                    other => panic!("sk is {other:?}"),
                })
                .collect(),
        );
        match page.last_key {
            Some(last) => q.start_after = Some(last),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

async fn create_is_conditional(store: &dyn Store) {
    store
        .create(item("P#1", "T#1", &[("title", s("a"))]))
        .await
        .expect("create");
    let again = store.create(item("P#1", "T#1", &[("title", s("b"))])).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "{again:?}");
    let stored = get(store, &key("P#1", "T#1")).await.expect("exists");
    assert_eq!(stored["title"], s("a"));
    assert_eq!(get(store, &key("P#1", "T#2")).await, None);
}

async fn expired_items_are_absent(store: &dyn Store) {
    let past = item("P#1", "T#old", &[("ttl", n(now() - 10))]);
    store.create(past).await.expect("create");
    assert_eq!(get(store, &key("P#1", "T#old")).await, None);
    let page = query_page(store, query("P#1", "T#", 10)).await;
    assert!(page.items.is_empty(), "{page:?}");
    // The key of an expired item can be taken again.
    store
        .create(item("P#1", "T#old", &[("ttl", n(now() + 3600))]))
        .await
        .expect("re-create");
    assert!(get(store, &key("P#1", "T#old")).await.is_some());
}

async fn update_applies_set_remove_and_version(store: &dyn Store) {
    let missing = store
        .update(&key("P#1", "T#1"), ItemUpdate::default())
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    store
        .create(item(
            "P#1",
            "T#1",
            &[("title", s("a")), ("note", s("n")), ("version", n(1))],
        ))
        .await
        .expect("create");

    let update = ItemUpdate {
        set: [("title".to_owned(), s("b"))].into(),
        remove: vec!["note".to_owned()],
        version: Some(("version".to_owned(), Some(1))),
        entity: None,
    };
    let updated = store
        .update(&key("P#1", "T#1"), update.clone())
        .await
        .expect("update");
    assert_eq!(updated["title"], s("b"));
    assert!(!updated.contains_key("note"));
    assert_eq!(updated["version"], n(2));
    assert_eq!(
        store.get(&key("P#1", "T#1")).await.expect("get"),
        Some(updated)
    );

    let stale = store.update(&key("P#1", "T#1"), update).await;
    assert!(
        matches!(
            stale,
            Err(StoreError::VersionConflict {
                expected: 1,
                actual: 2
            })
        ),
        "{stale:?}"
    );
    let unconditional = ItemUpdate {
        version: Some(("version".to_owned(), None)),
        ..ItemUpdate::default()
    };
    let bumped = store
        .update(&key("P#1", "T#1"), unconditional)
        .await
        .expect("update");
    assert_eq!(bumped["version"], n(3));
}

fn version(expected: u64) -> Expected {
    Expected {
        version: Some(("version".to_owned(), expected)),
        ..Expected::default()
    }
}

/// Update and delete name the entity they act for: another entity's item at the key is not
/// found and stays as it is; an item without the entity-type attribute (written before it
/// existed) is anyone's.
async fn updates_and_deletes_leave_other_entities_items_alone(store: &dyn Store) {
    let note = item(
        "P#1",
        "N#1",
        &[("svcgen_entity", s("Note")), ("title", s("n"))],
    );
    store.create(note.clone()).await.expect("create");
    let as_order = ItemUpdate {
        set: [("title".to_owned(), s("hijacked"))].into(),
        entity: Some("Order".to_owned()),
        ..ItemUpdate::default()
    };
    let updated = store.update(&key("P#1", "N#1"), as_order.clone()).await;
    assert!(matches!(updated, Err(StoreError::NotFound)), "{updated:?}");
    let order = Expected {
        entity: Some("Order".to_owned()),
        ..Expected::default()
    };
    let deleted = store.delete(&key("P#1", "N#1"), order.clone()).await;
    assert!(matches!(deleted, Err(StoreError::NotFound)), "{deleted:?}");
    assert_eq!(
        store.get(&key("P#1", "N#1")).await.expect("get"),
        Some(note)
    );

    let as_note = ItemUpdate {
        entity: Some("Note".to_owned()),
        ..as_order
    };
    let updated = store
        .update(&key("P#1", "N#1"), as_note)
        .await
        .expect("update");
    assert_eq!(updated["title"], s("hijacked"));
    let note = Expected {
        entity: Some("Note".to_owned()),
        ..Expected::default()
    };
    store
        .delete(&key("P#1", "N#1"), note)
        .await
        .expect("delete");

    store
        .create(item("P#1", "X#1", &[("title", s("untyped"))]))
        .await
        .expect("create");
    store
        .delete(&key("P#1", "X#1"), order)
        .await
        .expect("an untyped item is anyone's");
}

async fn delete_is_conditional(store: &dyn Store) {
    let missing = store.delete(&key("P#1", "T#1"), Expected::default()).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    store
        .create(item(
            "P#1",
            "T#1",
            &[
                ("version", n(4)),
                ("gsi1pk", s("A#x")),
                ("gsi1sk", s("T#1")),
            ],
        ))
        .await
        .expect("create");
    let stale = store.delete(&key("P#1", "T#1"), version(3)).await;
    assert!(
        matches!(
            stale,
            Err(StoreError::VersionConflict {
                expected: 3,
                actual: 4
            })
        ),
        "{stale:?}"
    );
    let deleted = store
        .delete(&key("P#1", "T#1"), version(4))
        .await
        .expect("delete");
    assert_eq!(deleted["version"], n(4));
    assert_eq!(store.get(&key("P#1", "T#1")).await.expect("get"), None);
    let mut index = query("A#x", "", 10);
    index.index = Some("gsi1".to_owned());
    assert!(
        store.query(index).await.expect("query").items.is_empty(),
        "index entry removed"
    );
}

async fn query_pages_through_one_partition_and_prefix(store: &dyn Store) {
    for i in 0..7 {
        store
            .create(item("P#1", &format!("T#{i}"), &[]))
            .await
            .expect("create");
    }
    store
        .create(item("P#1", "U#0", &[]))
        .await
        .expect("other prefix");
    store
        .create(item("P#1", "S#9", &[]))
        .await
        .expect("other prefix");
    store
        .create(item("P#2", "T#0", &[]))
        .await
        .expect("other partition");
    let got = pages(store, query("P#1", "T#", 3)).await;
    assert_eq!(
        got[..3],
        [
            vec!["T#0", "T#1", "T#2"],
            vec!["T#3", "T#4", "T#5"],
            vec!["T#6"]
        ]
    );
    assert_eq!(got.len(), 3);

    let mut descending = query("P#1", "T#", 4);
    descending.descending = true;
    let got = pages(store, descending).await;
    assert_eq!(
        got,
        [vec!["T#6", "T#5", "T#4", "T#3"], vec!["T#2", "T#1", "T#0"]]
    );
}

async fn a_page_ending_exactly_on_the_last_item(store: &dyn Store) {
    for i in 0..6 {
        store
            .create(item("P#1", &format!("T#{i}"), &[]))
            .await
            .expect("create");
    }
    let got = pages(store, query("P#1", "T#", 3)).await;
    // DynamoDB may hand out a last key on the final full page; the page after it is then empty.
    let flat: Vec<String> = got.iter().flatten().cloned().collect();
    assert_eq!(flat, ["T#0", "T#1", "T#2", "T#3", "T#4", "T#5"]);
    assert!(
        got.len() == 2 || (got.len() == 3 && got[2].is_empty()),
        "{got:?}"
    );
}

async fn index_queries_span_partitions_and_skip_items_without_index_keys(store: &dyn Store) {
    let assigned = |pk: &str, sk: &str, who: &str| {
        item(
            pk,
            sk,
            &[
                ("gsi1pk", s(&format!("A#{who}"))),
                ("gsi1sk", s(&format!("T#{pk}{sk}"))),
            ],
        )
    };
    store
        .create(assigned("P#1", "T#1", "ada"))
        .await
        .expect("create");
    store
        .create(assigned("P#2", "T#1", "ada"))
        .await
        .expect("create");
    store
        .create(assigned("P#2", "T#2", "bob"))
        .await
        .expect("create");
    store
        .create(item("P#3", "T#1", &[]))
        .await
        .expect("no index keys");
    let mut q = query("A#ada", "T#", 1);
    q.index = Some("gsi1".to_owned());
    let flat = eventually(|| async {
        let got = pages(store, q.clone()).await;
        let flat: Vec<String> = got.into_iter().flatten().collect();
        (flat == ["T#1", "T#1"]).then_some(flat)
    })
    .await;
    assert_eq!(
        flat,
        Some(vec!["T#1".to_owned(), "T#1".to_owned()]),
        "both of ada's items"
    );

    // Moving an item between index partitions.
    let update = ItemUpdate {
        set: [("gsi1pk".to_owned(), s("A#bob"))].into(),
        ..ItemUpdate::default()
    };
    store
        .update(&key("P#1", "T#1"), update)
        .await
        .expect("update");
    let mut q = query("A#bob", "", 10);
    q.index = Some("gsi1".to_owned());
    let moved = eventually(|| async {
        let items = store.query(q.clone()).await.expect("query").items;
        (items.len() == 2).then_some(items.len())
    })
    .await;
    assert_eq!(
        moved,
        Some(2),
        "the updated item moved to bob's index partition"
    );
}

/// Polls `read` until it yields a value, for at most 5 s: secondary indexes are eventually
/// consistent on DynamoDB, so a read right after a write may not see it yet (the embedded store
/// and the emulator answer at once, so this returns on the first try there).
async fn eventually<T, F, Fut>(read: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(value) = read().await {
            return Some(value);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn start_keys_outside_the_query_are_rejected(store: &dyn Store) {
    store.create(item("P#1", "T#1", &[])).await.expect("create");
    let mut q = query("P#1", "T#", 10);
    q.start_after = Some(item("P#2", "T#1", &[]));
    assert!(matches!(
        store.query(q.clone()).await,
        Err(StoreError::InvalidStartKey(_))
    ));
    q.start_after = Some(item("P#1", "U#1", &[]));
    assert!(matches!(
        store.query(q.clone()).await,
        Err(StoreError::InvalidStartKey(_))
    ));
    // What DynamoDB would refuse as an ExclusiveStartKey (a forged token) is refused by both
    // stores before any request: extra attributes, an empty key value, an index key without the
    // table's key.
    let refused = |start: Item, query: Query| async move {
        let result = store
            .query(Query {
                start_after: Some(start),
                ..query
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidStartKey(_))),
            "{result:?}"
        );
    };
    refused(item("P#1", "T#1", &[("extra", s("x"))]), q.clone()).await;
    refused(item("P#1", "", &[]), query("P#1", "", 10)).await;
    let by_index = Query {
        index: Some("gsi1".to_owned()),
        ..query("G#1", "", 10)
    };
    let index_key: Item = [
        ("gsi1pk".to_owned(), s("G#1")),
        ("gsi1sk".to_owned(), s("X#1")),
    ]
    .into();
    refused(index_key, by_index).await;
}

async fn concurrent_versioned_updates_lose_nothing(store: Arc<dyn Store>) {
    store
        .create(item("P#1", "T#1", &[("version", n(1))]))
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let current = store
                .get(&key("P#1", "T#1"))
                .await
                .expect("get")
                .expect("exists");
            let version = match &current["version"] {
                AttributeValue::N(v) => v.parse::<u64>().expect("number"),
                other => panic!("{other:?}"),
            };
            let update = ItemUpdate {
                set: [(format!("w{worker}"), n(worker))].into(),
                version: Some(("version".to_owned(), Some(version))),
                ..ItemUpdate::default()
            };
            store.update(&key("P#1", "T#1"), update).await
        }));
    }
    let mut successes = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => successes += 1,
            Err(StoreError::VersionConflict { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let last = store
        .get(&key("P#1", "T#1"))
        .await
        .expect("get")
        .expect("exists");
    assert!(successes >= 1);
    assert_eq!(last["version"], n(1 + successes));
    let written = last.keys().filter(|k| k.starts_with('w')).count() as i64;
    assert_eq!(
        written, successes,
        "every successful update is visible, no other"
    );
}

/// What DynamoDB refuses, both stores refuse with the same error, and nothing is written.
async fn dynamodb_limits_are_refused_alike(store: &dyn Store) {
    let invalid = |result: Result<(), StoreError>| match result {
        Err(StoreError::Invalid(message)) => message,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let big = s(&"x".repeat(limits::MAX_ITEM_BYTES));
    assert_eq!(
        invalid(
            store
                .create(item("P#1", "T#big", &[("data", big.clone())]))
                .await
        ),
        limits::ITEM_TOO_LARGE
    );
    let long_pk = "P".repeat(limits::MAX_PARTITION_KEY_BYTES + 1);
    assert!(invalid(store.create(item(&long_pk, "T#1", &[])).await).contains("2048-byte"));
    let long_sk = "T".repeat(limits::MAX_SORT_KEY_BYTES + 1);
    assert!(invalid(store.create(item("P#1", &long_sk, &[])).await).contains("1024-byte"));
    assert!(invalid(store.create(item("P#1", "", &[])).await).contains("empty"));
    assert!(
        invalid(
            store
                .create(item("P#1", "T#2", &[("gsi1pk", s("")), ("gsi1sk", s("x"))]))
                .await
        )
        .contains("`gsi1pk` is empty")
    );
    let huge = AttributeValue::N("1e126".to_owned());
    assert!(invalid(store.create(item("P#1", "T#3", &[("n", huge)])).await).contains("range"));
    // Reads of such keys are refused alike too (DynamoDB refuses them in any request).
    let read = store.get(&key(&long_pk, "T#1")).await;
    assert!(matches!(read, Err(StoreError::Invalid(_))), "{read:?}");
    let deleted = store.delete(&key("P#1", ""), Expected::default()).await;
    assert!(
        matches!(deleted, Err(StoreError::Invalid(_))),
        "{deleted:?}"
    );
    let listed = store.query(query("", "T#", 1)).await;
    assert!(matches!(listed, Err(StoreError::Invalid(_))), "{listed:?}");
    for sk in ["T#big", "T#1", "T#2", "T#3"] {
        assert_eq!(store.get(&key("P#1", sk)).await.expect("get"), None, "{sk}");
    }
    // Under the limit is accepted; growing it past the limit by an update is refused. (moto
    // refuses items over 405,000 bytes where AWS allows 409,600, hence the margins.)
    let fits = s(&"x".repeat(limits::MAX_ITEM_BYTES - 5000));
    store
        .create(item("P#1", "T#4", &[("data", fits)]))
        .await
        .expect("an item under the limit");
    let grow = ItemUpdate {
        set: [("more".to_owned(), s(&"y".repeat(8000)))].into(),
        ..ItemUpdate::default()
    };
    let grown = store.update(&key("P#1", "T#4"), grow).await;
    assert!(
        matches!(&grown, Err(StoreError::Invalid(m)) if m == limits::ITEM_TOO_LARGE),
        "{grown:?}"
    );
    let stored = store
        .get(&key("P#1", "T#4"))
        .await
        .expect("get")
        .expect("kept");
    assert!(
        !stored.contains_key("more"),
        "the refused update changed nothing"
    );
}

/// Sort keys order by their UTF-8 bytes, as DynamoDB orders them: upper case before lower case,
/// zero-padded numbers numerically, U+FFFF before U+10000 (UTF-16 order would differ).
async fn sort_keys_order_by_utf8_bytes(store: &dyn Store) {
    let keys = [
        "T#a",
        "T#B",
        "T#é",
        "T#z",
        "T#Z",
        "T#0010",
        "T#0009",
        "T#\u{ffff}",
        "T#\u{10000}",
        "T#",
        "T#a b",
        "T#ab",
    ];
    for sk in keys {
        store.create(item("P#o", sk, &[])).await.expect("create");
    }
    let mut expected: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let ascending: Vec<String> = pages(store, query("P#o", "T#", 5))
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(ascending, expected);
    let descending: Vec<String> = pages(
        store,
        Query {
            descending: true,
            ..query("P#o", "T#", 5)
        },
    )
    .await
    .into_iter()
    .flatten()
    .collect();
    expected.reverse();
    assert_eq!(descending, expected);
}

/// A transaction applies every write or none; the first failed condition is named.
async fn transactions_are_all_or_nothing(store: &dyn Store) {
    store
        .create(item(
            "P#1",
            "T#1",
            &[("version", n(1)), ("title", s("one"))],
        ))
        .await
        .expect("create");
    store
        .create(item("P#1", "T#2", &[("version", n(1))]))
        .await
        .expect("create");
    let bump = |expected: u64| TransactWrite::Update {
        key: key("P#1", "T#1"),
        update: ItemUpdate {
            set: [("title".to_owned(), s("two"))].into(),
            version: Some(("version".to_owned(), Some(expected))),
            ..ItemUpdate::default()
        },
    };
    let taken = TransactWrite::Create(item("P#1", "T#2", &[]));
    let new = || TransactWrite::Create(item("P#1", "T#3", &[]));
    // Write 3 of 3 fails: the create before it and the update are not applied.
    let failed = store
        .transact(vec![new(), bump(1), taken.clone()])
        .await
        .expect_err("T#2 exists");
    assert!(
        matches!(&failed, StoreError::TransactionCanceled { index: 2, count: 3, reason }
            if matches!(**reason, StoreError::AlreadyExists)),
        "{failed:?}"
    );
    assert_eq!(store.get(&key("P#1", "T#3")).await.expect("get"), None);
    let one = store
        .get(&key("P#1", "T#1"))
        .await
        .expect("get")
        .expect("T#1");
    assert_eq!((&one["title"], &one["version"]), (&s("one"), &n(1)));

    let stale = store.transact(vec![bump(7)]).await.expect_err("stale");
    assert!(
        matches!(&stale, StoreError::TransactionCanceled { index: 0, count: 1, reason }
            if matches!(**reason, StoreError::VersionConflict { expected: 7, actual: 1 })),
        "{stale:?}"
    );
    let missing = TransactWrite::Check {
        key: key("P#1", "T#9"),
        expected: Expected::default(),
    };
    let absent = store
        .transact(vec![new(), missing])
        .await
        .expect_err("absent");
    assert!(
        matches!(&absent, StoreError::TransactionCanceled { index: 1, reason, .. }
            if matches!(**reason, StoreError::NotFound)),
        "{absent:?}"
    );

    // All conditions hold: every write is applied.
    let delete = TransactWrite::Delete {
        key: key("P#1", "T#2"),
        expected: version(1),
    };
    let check = TransactWrite::Check {
        key: key("P#1", "T#1"),
        expected: version(1),
    };
    store
        .transact(vec![new(), delete, check])
        .await
        .expect("commit");
    assert!(store.get(&key("P#1", "T#3")).await.expect("get").is_some());
    assert_eq!(store.get(&key("P#1", "T#2")).await.expect("get"), None);
    store.transact(vec![bump(1)]).await.expect("update");
    let two = store
        .get(&key("P#1", "T#1"))
        .await
        .expect("get")
        .expect("T#1");
    assert_eq!((&two["title"], &two["version"]), (&s("two"), &n(2)));
}

/// What DynamoDB refuses before it starts: one item twice, more than 100 writes.
async fn transactions_within_dynamodb_limits(store: &dyn Store) {
    let twice = store
        .transact(vec![
            TransactWrite::Create(item("P#1", "T#1", &[])),
            TransactWrite::Check {
                key: key("P#1", "T#1"),
                expected: Expected::default(),
            },
        ])
        .await
        .expect_err("same item twice");
    assert!(
        matches!(twice, StoreError::Invalid(ref m) if m.contains("twice")),
        "{twice:?}"
    );
    let many = (0..=MAX_TRANSACTION_WRITES)
        .map(|i| TransactWrite::Create(item("P#1", &format!("T#{i:03}"), &[])))
        .collect();
    let refused = store.transact(many).await.expect_err("101 writes");
    assert!(
        matches!(refused, StoreError::Invalid(ref m) if m.contains("at most 100")),
        "{refused:?}"
    );
    assert!(
        pages(store, query("P#1", "", 1000))
            .await
            .concat()
            .is_empty()
    );
    let full = (0..MAX_TRANSACTION_WRITES)
        .map(|i| TransactWrite::Create(item("P#1", &format!("T#{i:03}"), &[])))
        .collect();
    store.transact(full).await.expect("100 writes");
    assert_eq!(
        pages(store, query("P#1", "", 1000)).await.concat().len(),
        100
    );
}

/// A batch read answers in the keys' order, repeats included, absent and expired items `None`,
/// across more keys than one BatchGetItem request holds.
async fn batch_get_answers_in_key_order(store: &dyn Store) {
    for i in 0..150 {
        store
            .create(item("P#1", &format!("T#{i:03}"), &[("n", n(i))]))
            .await
            .expect("create");
    }
    store
        .create(item("P#1", "OLD", &[("ttl", n(now() - 10))]))
        .await
        .expect("create");
    let mut keys: Vec<ItemKey> = (0..150)
        .rev()
        .map(|i| key("P#1", &format!("T#{i:03}")))
        .collect();
    keys.extend([key("P#1", "T#007"), key("P#1", "NONE"), key("P#1", "OLD")]);
    let found = store.batch_get(&keys).await.expect("batch get");
    let numbers: Vec<Option<AttributeValue>> = found
        .iter()
        .map(|item| item.as_ref().map(|item| item["n"].clone()))
        .collect();
    let mut expected: Vec<Option<AttributeValue>> = (0..150).rev().map(|i| Some(n(i))).collect();
    expected.extend([Some(n(7)), None, None]);
    assert_eq!(numbers, expected);
    assert!(store.batch_get(&[]).await.expect("no keys").is_empty());
}

fn local_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = LocalDatabase::open(&dir.path().join("store.redb")).expect("open");
    (dir, Arc::new(db.table(&SCHEMA).expect("table")))
}

macro_rules! local_store_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (_dir, store) = local_store();
            super::$name(store.as_ref()).await;
        }
    )*};
}

mod local {
    use super::*;

    local_store_tests!(
        create_is_conditional,
        expired_items_are_absent,
        update_applies_set_remove_and_version,
        updates_and_deletes_leave_other_entities_items_alone,
        delete_is_conditional,
        query_pages_through_one_partition_and_prefix,
        a_page_ending_exactly_on_the_last_item,
        index_queries_span_partitions_and_skip_items_without_index_keys,
        start_keys_outside_the_query_are_rejected,
        dynamodb_limits_are_refused_alike,
        sort_keys_order_by_utf8_bytes,
        transactions_are_all_or_nothing,
        transactions_within_dynamodb_limits,
        batch_get_answers_in_key_order,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_versioned_updates_lose_nothing() {
        let (_dir, store) = local_store();
        super::concurrent_versioned_updates_lose_nothing(store).await;
    }

    /// Pages of over 100 items (and limit 0: the whole partition) are read on the blocking
    /// pool and handed over afterwards; they hold what short pages walking the same partition
    /// hold, on the table and on an index, expired items skipped, in both directions.
    #[tokio::test]
    async fn long_pages_read_what_short_pages_read() {
        let (_dir, store) = local_store();
        for i in 0..150 {
            let ttl = if i % 37 == 5 {
                now() - 10
            } else {
                now() + 3600
            };
            let extra = [
                ("gsi1pk", s("A#ada")),
                ("gsi1sk", s(&format!("T#{i:03}"))),
                ("ttl", n(ttl)),
            ];
            store
                .create(item("P#1", &format!("T#{i:03}"), &extra))
                .await
                .expect("create");
        }
        for index in [None, Some("gsi1")] {
            for descending in [false, true] {
                let mut short = query(if index.is_some() { "A#ada" } else { "P#1" }, "T#", 7);
                (short.index, short.descending) = (index.map(str::to_owned), descending);
                let expected: Vec<String> = pages(store.as_ref(), short.clone())
                    .await
                    .into_iter()
                    .flatten()
                    .collect();
                // 5, 42, 79 and 116 have expired.
                assert_eq!(expected.len(), 146, "{index:?}: the expired are skipped");
                for limit in [0, 120] {
                    let long = Query {
                        limit,
                        ..short.clone()
                    };
                    let mut viewed = Vec::new();
                    let last_key = store
                        .query_with(long.clone(), &mut |view| viewed.push(view.to_item()))
                        .await
                        .expect("query_with");
                    let page = store.query(long).await.expect("query");
                    assert_eq!((&page.items, &page.last_key), (&viewed, &last_key));
                    let sort_keys: Vec<String> = viewed
                        .iter()
                        .map(|i| match &i["sk"] {
                            AttributeValue::S(sk) => sk.clone(),
                            other => panic!("sk is {other:?}"),
                        })
                        .collect();
                    // A limit counts the items evaluated, expired ones included.
                    let evaluated = |sk: &String| match (limit, descending) {
                        (0, _) => true,
                        (_, false) => sk.as_str() < "T#120",
                        (_, true) => sk.as_str() >= "T#030",
                    };
                    let read: Vec<String> = expected
                        .iter()
                        .filter(|sk| evaluated(sk))
                        .cloned()
                        .collect();
                    assert_eq!(sort_keys, read, "{index:?} {descending} {limit}");
                    assert_eq!(
                        last_key.is_some(),
                        limit != 0,
                        "{index:?} {descending} {limit}"
                    );
                }
            }
        }
    }

    /// Writes that arrive together share a commit (the writer's group) and still see each
    /// other: of 16 concurrent creates of one key exactly one wins; a transaction whose second
    /// write fails leaves nothing of itself while the writes committed with it persist.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writes_committed_together_still_see_each_other() {
        let (_dir, store) = local_store();
        let creates: Vec<_> = (0..16)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .create(item(
                            "P#1",
                            "T#same",
                            &[("n", AttributeValue::N(n.to_string()))],
                        ))
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for create in creates {
            match create.await.expect("task") {
                Ok(()) => won += 1,
                Err(StoreError::AlreadyExists) => {}
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(won, 1);
        let mut writes = Vec::new();
        for n in 0..32 {
            let store = store.clone();
            writes.push(tokio::spawn(async move {
                if n % 8 == 0 {
                    // Its second write names an absent item: it fails, and takes its first along.
                    store
                        .transact(vec![
                            TransactWrite::Create(item("P#2", &format!("T#t{n}"), &[])),
                            TransactWrite::Delete {
                                key: key("P#2", "T#absent"),
                                expected: Expected::default(),
                            },
                        ])
                        .await
                        .map(|()| false)
                } else {
                    store
                        .create(item("P#2", &format!("T#c{n}"), &[]))
                        .await
                        .map(|()| true)
                }
            }));
        }
        for (n, write) in writes.into_iter().enumerate() {
            let outcome = write.await.expect("task");
            if n % 8 == 0 {
                assert!(
                    matches!(
                        outcome,
                        Err(StoreError::TransactionCanceled { index: 1, .. })
                    ),
                    "{outcome:?}"
                );
                assert_eq!(
                    store
                        .get(&key("P#2", &format!("T#t{n}")))
                        .await
                        .expect("get"),
                    None
                );
            } else {
                assert!(outcome.expect("create"));
                assert!(
                    store
                        .get(&key("P#2", &format!("T#c{n}")))
                        .await
                        .expect("get")
                        .is_some()
                );
            }
        }
    }

    #[tokio::test]
    async fn data_survives_reopening_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.redb");
        {
            let store = LocalDatabase::open(&path)
                .expect("open")
                .table(&SCHEMA)
                .expect("table");
            store
                .create(item("P#1", "T#1", &[("title", s("kept"))]))
                .await
                .expect("create");
        }
        let store = LocalDatabase::open(&path)
            .expect("reopen")
            .table(&SCHEMA)
            .expect("table");
        let stored = store
            .get(&key("P#1", "T#1"))
            .await
            .expect("get")
            .expect("persisted");
        assert_eq!(stored["title"], s("kept"));
    }
}

/// The same suite on `DynamoStore` against a DynamoDB-API server (moto in the test command),
/// reset before each test; the tests take turns because the server is shared.
#[cfg(feature = "dynamodb-tests")]
mod dynamodb {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
    use svcgen_runtime::Store;
    use svcgen_runtime::store::{DynamoStore, TableOutcome, ensure_table};

    use super::*;
    use crate::support;

    static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// Counts requests by DynamoDB operation (from the `X-Amz-Target` header).
    #[derive(Debug, Default, Clone)]
    struct RequestCounter(Arc<Mutex<BTreeMap<String, usize>>>);

    impl Intercept for RequestCounter {
        fn name(&self) -> &'static str {
            "RequestCounter"
        }
        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _: &RuntimeComponents,
            _: &mut ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let target = context
                .request()
                .headers()
                .get("x-amz-target")
                .unwrap_or("?");
            let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
            *self.0.lock().expect("lock").entry(operation).or_default() += 1;
            Ok(())
        }
    }

    impl RequestCounter {
        fn take(&self) -> BTreeMap<String, usize> {
            std::mem::take(&mut *self.0.lock().expect("lock"))
        }
    }

    fn client(counter: &RequestCounter) -> aws_sdk_dynamodb::Client {
        let config = support::config(&support::moto_endpoint())
            .interceptor(counter.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// A fresh table on a reset server; the guard keeps other tests off the server.
    async fn store() -> (
        tokio::sync::MutexGuard<'static, ()>,
        RequestCounter,
        Arc<dyn Store>,
    ) {
        let guard = SERVER.lock().await;
        support::reset_moto().await;
        let counter = RequestCounter::default();
        let client = client(&counter);
        assert_eq!(
            ensure_table(&client, "things", SCHEMA.indexes)
                .await
                .expect("create table"),
            TableOutcome::Created
        );
        assert_eq!(
            ensure_table(&client, "things", SCHEMA.indexes)
                .await
                .expect("same table"),
            TableOutcome::Exists
        );
        counter.take();
        let store = DynamoStore::new(client, "things").with_indexes(SCHEMA.indexes);
        (guard, counter, Arc::new(store))
    }

    macro_rules! dynamo_tests {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $name() {
                let (_guard, _counter, store) = store().await;
                super::$name(store.as_ref()).await;
            }
        )*};
    }

    dynamo_tests!(
        create_is_conditional,
        expired_items_are_absent,
        update_applies_set_remove_and_version,
        updates_and_deletes_leave_other_entities_items_alone,
        delete_is_conditional,
        query_pages_through_one_partition_and_prefix,
        a_page_ending_exactly_on_the_last_item,
        index_queries_span_partitions_and_skip_items_without_index_keys,
        start_keys_outside_the_query_are_rejected,
        dynamodb_limits_are_refused_alike,
        sort_keys_order_by_utf8_bytes,
        transactions_are_all_or_nothing,
        transactions_within_dynamodb_limits,
        batch_get_answers_in_key_order,
    );

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_versioned_updates_lose_nothing() {
        let (_guard, _counter, store) = store().await;
        super::concurrent_versioned_updates_lose_nothing(store).await;
    }

    #[tokio::test]
    async fn every_operation_is_one_request() {
        let (_guard, counter, store) = store().await;
        let one = |op: &str| BTreeMap::from([(op.to_owned(), 1)]);
        store
            .create(item("P#1", "T#1", &[("version", n(1))]))
            .await
            .expect("create");
        assert_eq!(counter.take(), one("PutItem"));
        assert!(store.create(item("P#1", "T#1", &[])).await.is_err());
        assert_eq!(
            counter.take(),
            one("PutItem"),
            "a failed condition costs no extra request"
        );
        store.get(&key("P#1", "T#1")).await.expect("get");
        assert_eq!(counter.take(), one("GetItem"));
        let update = ItemUpdate {
            version: Some(("version".into(), Some(1))),
            ..ItemUpdate::default()
        };
        store
            .update(&key("P#1", "T#1"), update.clone())
            .await
            .expect("update");
        assert_eq!(counter.take(), one("UpdateItem"));
        let stale = store.update(&key("P#1", "T#1"), update).await;
        assert!(
            matches!(
                stale,
                Err(StoreError::VersionConflict {
                    expected: 1,
                    actual: 2
                })
            ),
            "{stale:?}"
        );
        assert_eq!(
            counter.take(),
            one("UpdateItem"),
            "the conflict is classified from the same response"
        );
        for i in 2..5 {
            store
                .create(item("P#1", &format!("T#{i}"), &[]))
                .await
                .expect("create");
        }
        counter.take();
        let got = pages(store.as_ref(), query("P#1", "T#", 2)).await;
        assert_eq!(got.iter().flatten().count(), 4);
        assert_eq!(
            counter.take(),
            BTreeMap::from([("Query".to_owned(), 2 * got.len())]),
            "one request per page (`pages` reads each with `query` and with `query_with`)"
        );
        store
            .query_with(query("P#1", "T#", 2), &mut |_| {})
            .await
            .expect("query_with");
        assert_eq!(counter.take(), one("Query"), "query_with: one request");
        store
            .get_with(&key("P#1", "T#2"), &mut |_| {})
            .await
            .expect("get_with");
        assert_eq!(counter.take(), one("GetItem"), "get_with: one request");
        store
            .delete(&key("P#1", "T#1"), version(2))
            .await
            .expect("delete");
        assert_eq!(counter.take(), one("DeleteItem"));
        let failing = vec![
            TransactWrite::Create(item("P#1", "T#9", &[])),
            TransactWrite::Create(item("P#1", "T#2", &[])),
        ];
        let canceled = store.transact(failing).await.expect_err("T#2 exists");
        assert!(matches!(
            canceled,
            StoreError::TransactionCanceled { index: 1, .. }
        ));
        assert_eq!(
            counter.take(),
            one("TransactWriteItems"),
            "the failed write is classified from the same response"
        );
        let keys: Vec<ItemKey> = (0..150).map(|i| key("P#1", &format!("T#{i}"))).collect();
        let found = store.batch_get(&keys).await.expect("batch get");
        assert_eq!(found.iter().flatten().count(), 3);
        assert_eq!(
            counter.take(),
            BTreeMap::from([("BatchGetItem".to_owned(), 2)]),
            "100 keys a request"
        );
    }
}
