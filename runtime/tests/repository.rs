//! `EntityTable`: field-mask updates (oneofs, index keys, TTL), versions and pagination, on a
//! derived entity over the embedded store.

use std::sync::Arc;

use svcgen_runtime::store::LocalDatabase;
use svcgen_runtime::{EntityTable, Error, PageLimits, TableSchema};

#[derive(Clone, PartialEq, prost::Message, svcgen_runtime::Entity)]
#[entity(
    table = "notes",
    pk = "BOOK#{book}",
    sk = "NOTE#{id}",
    index(name = "gsi1", pk = "AUTHOR#{author}", sk = "SHELF#{shelf}#{id}"),
    version = "version",
    ttl = "expires_at",
    generated_id = "id"
)]
pub struct Note {
    #[prost(string, tag = "1")]
    pub book: String,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(string, tag = "3")]
    pub author: String,
    #[prost(string, tag = "4")]
    pub shelf: String,
    #[prost(string, tag = "5")]
    pub text: String,
    #[prost(int64, tag = "6")]
    pub expires_at: i64,
    #[prost(uint64, tag = "7")]
    pub version: u64,
    #[prost(oneof = "Body", tags = "8, 9")]
    pub body: Option<Body>,
}

#[derive(Clone, PartialEq, prost::Oneof, svcgen_runtime::Attributes)]
pub enum Body {
    #[prost(string, tag = "8")]
    Plain(String),
    #[prost(bytes = "vec", tag = "9")]
    Rich(Vec<u8>),
}

const SCHEMA: TableSchema = TableSchema {
    name: "notes",
    variable: "TABLE_NAME_NOTES",
    indexes: &["gsi1"],
};
const LIMITS: PageLimits = PageLimits {
    default_size: 2,
    max_size: 3,
};

fn table() -> (tempfile::TempDir, EntityTable<Note>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = LocalDatabase::open(&dir.path().join("db.redb")).expect("open");
    (
        dir,
        EntityTable::new(Arc::new(db.table(&SCHEMA).expect("table"))),
    )
}

fn mask(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| (*p).to_owned()).collect()
}

fn note(book: &str) -> Note {
    Note {
        book: book.into(),
        text: "hello".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_assigns_id_and_version_and_rejects_duplicates() {
    let (_dir, notes) = table();
    let created = notes.create(note("b")).await.expect("create");
    assert!(!created.id.is_empty());
    assert_eq!(created.version, 1);
    let again = notes.create(created.clone()).await;
    assert!(
        matches!(again, Err(Error::AlreadyExists { entity: "Note" })),
        "{again:?}"
    );
    let missing_key = notes.create(Note::default()).await;
    assert!(
        matches!(missing_key, Err(Error::InvalidArgument(ref m)) if m.contains("`book` is required")),
        "{missing_key:?}"
    );
}

#[tokio::test]
async fn a_masked_update_touches_only_the_named_fields() {
    let (_dir, notes) = table();
    let created = notes.create(note("b")).await.expect("create");
    let change = Note {
        text: "changed".into(),
        author: "ignored".into(),
        ..created.clone()
    };
    let updated = notes
        .update(&change, &mask(&["text"]))
        .await
        .expect("update");
    assert_eq!(updated.text, "changed");
    assert_eq!(updated.author, "");
    assert_eq!(updated.version, 2);
    let stale = notes.update(&change, &mask(&["text"])).await;
    assert!(
        matches!(
            stale,
            Err(Error::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            })
        ),
        "{stale:?}"
    );
    for bad in [&["id"][..], &["version"], &["body"], &["nope"]] {
        let result = notes
            .update(
                &Note {
                    version: 0,
                    ..change.clone()
                },
                &mask(bad),
            )
            .await;
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{bad:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn setting_a_oneof_member_clears_its_sibling() {
    let (_dir, notes) = table();
    let created = notes
        .create(Note {
            body: Some(Body::Plain("p".into())),
            ..note("b")
        })
        .await
        .expect("create");
    let rich = Note {
        body: Some(Body::Rich(vec![1, 2])),
        version: 0,
        ..created.clone()
    };
    let updated = notes.update(&rich, &mask(&["rich"])).await.expect("update");
    assert_eq!(updated.body, Some(Body::Rich(vec![1, 2])));
    let cleared = notes
        .update(&Note { body: None, ..rich }, &mask(&["plain"]))
        .await
        .expect("update");
    assert_eq!(
        cleared.body, None,
        "naming an unset member clears the oneof"
    );
}

#[tokio::test]
async fn index_keys_follow_updates_that_name_all_their_fields() {
    let (_dir, notes) = table();
    let created = notes
        .create(Note {
            author: "ada".into(),
            shelf: "s1".into(),
            ..note("b")
        })
        .await
        .expect("create");
    let by = |author: &'static str| {
        let notes = notes.clone();
        async move {
            let probe = Note {
                author: author.into(),
                ..Default::default()
            };
            notes
                .list(&probe, Some("gsi1"), false, LIMITS, 0, "")
                .await
                .expect("list")
                .items
                .len()
        }
    };
    assert_eq!(by("ada").await, 1);
    let moved = Note {
        author: "bob".into(),
        version: 0,
        ..created.clone()
    };
    let partial = notes.update(&moved, &mask(&["author"])).await;
    assert!(
        matches!(partial, Err(Error::InvalidArgument(ref m)) if m.contains("`shelf`")),
        "{partial:?}"
    );
    notes
        .update(&moved, &mask(&["author", "shelf"]))
        .await
        .expect("update");
    assert_eq!((by("ada").await, by("bob").await), (0, 1));
    let unassigned = Note {
        author: String::new(),
        ..moved
    };
    notes
        .update(&unassigned, &mask(&["author", "shelf"]))
        .await
        .expect("update");
    assert_eq!(
        by("bob").await,
        0,
        "an unset index field removes the item from the index"
    );
}

#[tokio::test]
async fn expired_entities_are_not_found() {
    let (_dir, notes) = table();
    let created = notes
        .create(Note {
            expires_at: 1,
            ..note("b")
        })
        .await
        .expect("create");
    let probe = Note {
        book: "b".into(),
        id: created.id,
        ..Default::default()
    };
    assert!(matches!(
        notes.get(&probe).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn pages_clamp_to_the_limits_and_tokens_bind_to_their_query() {
    let (_dir, notes) = table();
    for _ in 0..5 {
        notes.create(note("b")).await.expect("create");
    }
    let probe = Note {
        book: "b".into(),
        ..Default::default()
    };
    let first = notes
        .list(&probe, None, false, LIMITS, 0, "")
        .await
        .expect("list");
    assert_eq!(first.items.len(), 2, "default page size");
    let big = notes
        .list(&probe, None, false, LIMITS, 100, "")
        .await
        .expect("list");
    assert_eq!(big.items.len(), 3, "clamped to the maximum");
    let second = notes
        .list(&probe, None, false, LIMITS, 3, &first.next_page_token)
        .await
        .expect("list");
    assert_eq!(second.items.len(), 3);
    assert!(second.next_page_token.is_empty());
    let other = Note {
        book: "c".into(),
        ..Default::default()
    };
    let reused = notes
        .list(&other, None, false, LIMITS, 3, &first.next_page_token)
        .await;
    assert!(
        matches!(reused, Err(Error::InvalidArgument(_))),
        "{reused:?}"
    );
    let reversed = notes
        .list(&probe, None, true, LIMITS, 3, &first.next_page_token)
        .await;
    assert!(
        matches!(reversed, Err(Error::InvalidArgument(_))),
        "{reversed:?}"
    );
    let negative = notes.list(&probe, None, false, LIMITS, -1, "").await;
    assert!(
        matches!(negative, Err(Error::InvalidArgument(_))),
        "{negative:?}"
    );
}
