//! The options of `#[entity(...)]`, which the generator writes on entity messages and the
//! derive reads: `#[entity(table = "tasks", pk = "PROJECT#{project_id}", sk = "TASK#{id}",
//! index(name = "gsi1", pk = "…", sk = "…"), version = "version", ttl = "expire_time",
//! generated_id = "id")]`.

/// The attribute's name.
pub const ATTRIBUTE: &str = "entity";
/// Logical table.
pub const TABLE: &str = "table";
/// Partition-key template (also inside `index(...)`).
pub const PK: &str = "pk";
/// Sort-key template (also inside `index(...)`).
pub const SK: &str = "sk";
/// A secondary index: `index(name = "…", pk = "…", sk = "…")`.
pub const INDEX: &str = "index";
/// The index's name, inside `index(...)`.
pub const INDEX_NAME: &str = "name";
/// Optimistic-locking field.
pub const VERSION: &str = "version";
/// Expiry field.
pub const TTL: &str = "ttl";
/// Field filled with a UUID v7 on create when empty.
pub const GENERATED_ID: &str = "generated_id";
