//! What one call of each RPC costs in DynamoDB requests and capacity units (`svcgen cost`):
//! estimated from the model and the item sizes the user states, by DynamoDB's documented
//! rounding (a read unit per 4 KB read with a strongly consistent read, half for an index's
//! eventually consistent one, summed over a query page; a write unit per 1 KB written, again
//! for each index the item is in, since svcgen's indexes project every attribute; twice that
//! in a transaction), or measured from a run's per-call log lines.

use std::collections::BTreeMap;

use crate::model::{AccessOperation, Model, Operation};

/// The item size assumed for an entity the user states none for.
pub const DEFAULT_ITEM_BYTES: usize = 1024;

/// One call of one RPC.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcCost {
    /// `package.Service/Method`.
    pub rpc: String,
    /// The store requests one call makes (a hand-written RPC: each declared one once).
    pub requests: Vec<Request>,
    /// Whether the RPC is hand-written (its code decides how often it calls each request).
    pub hand_written: bool,
}

impl RpcCost {
    /// Read capacity units of one call.
    pub fn read(&self) -> f64 {
        self.requests.iter().map(|r| r.read).sum()
    }

    /// Write capacity units of one call.
    pub fn write(&self) -> f64 {
        self.requests.iter().map(|r| r.write).sum()
    }
}

/// One store request with the units it consumes.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The DynamoDB operation, e.g. `Query`.
    pub operation: &'static str,
    /// The entity it reads or writes, with the index of a query (`Task` or `Task gsi1`).
    pub subject: String,
    /// Read capacity units.
    pub read: f64,
    /// Write capacity units.
    pub write: f64,
}

#[allow(clippy::cast_precision_loss)] // sizes are at most DynamoDB's 400 KB items times a page
fn units(bytes: usize, per_unit: usize) -> f64 {
    bytes.div_ceil(per_unit).max(1) as f64
}

/// The cost of each RPC of `model` with items of `item_bytes` (per entity name; else
/// [`DEFAULT_ITEM_BYTES`]).
pub fn estimate(model: &Model, item_bytes: &BTreeMap<String, usize>) -> Vec<RpcCost> {
    let size = |entity| {
        let name = &model.entity(entity).name;
        item_bytes.get(name).copied().unwrap_or(DEFAULT_ITEM_BYTES)
    };
    let name = |entity| model.entity(entity).name.clone();
    // The item's write, and the same again in each index (an item without an index's key
    // attributes is not in it: the estimate is for items that are).
    #[allow(clippy::cast_precision_loss)] // a handful of indexes
    let write = |operation, entity, factor: f64| {
        let indexes = &model.entity(entity).indexes;
        let mut subject = name(entity);
        for index in indexes {
            subject.push_str(&format!(" + {}", index.name));
        }
        Request {
            operation,
            subject,
            read: 0.0,
            write: factor * (1 + indexes.len()) as f64 * units(size(entity), 1024),
        }
    };
    let read = |operation, entity| Request {
        operation,
        subject: name(entity),
        read: units(size(entity), 4096),
        write: 0.0,
    };
    let query = |entity, index: &Option<String>, page: usize| Request {
        operation: "Query",
        subject: match index {
            Some(index) => format!("{} {index}", name(entity)),
            None => name(entity),
        },
        read: if index.is_some() { 0.5 } else { 1.0 } * units(page * size(entity), 4096),
        write: 0.0,
    };
    let page_of = |list_method: &str| {
        model
            .services
            .iter()
            .flat_map(|s| &s.methods)
            .find_map(|m| match &m.operation {
                Operation::List {
                    default_page_size, ..
                } if m.name == list_method => usize::try_from(*default_page_size).ok(),
                _ => None,
            })
            .unwrap_or(1)
    };
    let mut costs = Vec::new();
    for service in &model.services {
        for method in &service.methods {
            let (requests, hand_written) = match &method.operation {
                Operation::Create { entity, .. } => (vec![write("PutItem", *entity, 1.0)], false),
                Operation::Get { entity } => (vec![read("GetItem", *entity)], false),
                Operation::Update { entity, .. } => {
                    (vec![write("UpdateItem", *entity, 1.0)], false)
                }
                Operation::Delete { entity, .. } => {
                    (vec![write("DeleteItem", *entity, 1.0)], false)
                }
                Operation::List {
                    entity,
                    index,
                    default_page_size,
                    ..
                } => {
                    let page = usize::try_from(*default_page_size).unwrap_or(1);
                    (vec![query(*entity, index, page)], false)
                }
                Operation::Custom { uses } => {
                    // A declared check means a transaction, which the writes are likely in.
                    let (put, update, delete, factor) =
                        if uses.iter().any(|a| a.operation == AccessOperation::Check) {
                            let in_transaction = "TransactWriteItems (write)";
                            (in_transaction, in_transaction, in_transaction, 2.0)
                        } else {
                            ("PutItem", "UpdateItem", "DeleteItem", 1.0)
                        };
                    let requests = uses
                        .iter()
                        .map(|access| match &access.operation {
                            AccessOperation::Create => write(put, access.entity, factor),
                            AccessOperation::Get => read("GetItem", access.entity),
                            AccessOperation::Update => write(update, access.entity, factor),
                            AccessOperation::Delete => write(delete, access.entity, factor),
                            AccessOperation::Check => {
                                write("TransactWriteItems (check)", access.entity, 2.0)
                            }
                            AccessOperation::BatchGet => {
                                read("BatchGetItem (per key)", access.entity)
                            }
                            AccessOperation::List { method, index } => {
                                query(access.entity, index, page_of(method))
                            }
                        })
                        .collect();
                    (requests, true)
                }
            };
            costs.push(RpcCost {
                rpc: format!("{}/{}", service.full_name, method.name),
                requests,
                hand_written,
            });
        }
    }
    costs
}

/// What calls of one RPC consumed in a run, from its per-call log lines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// Calls logged.
    pub calls: u64,
    /// Store requests, in all.
    pub requests: u64,
    /// Read capacity units, in all.
    pub read: f64,
    /// Write capacity units, in all.
    pub write: f64,
}

/// The per-RPC totals of the access log lines of calls answered OK in `log` (the service's
/// stderr: JSON lines, target `svcgen::access`; other lines are skipped, and so are errors,
/// which `ACCESS_LOG=errors` or a sample rate would over-represent).
pub fn measured(log: &str) -> BTreeMap<String, Measured> {
    let mut totals: BTreeMap<String, Measured> = BTreeMap::new();
    for line in log.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["target"] != "svcgen::access" || event["code"] != "Ok" {
            continue;
        }
        let Some(rpc) = event["rpc"].as_str() else {
            continue;
        };
        let total = totals
            .entry(rpc.trim_start_matches('/').to_owned())
            .or_default();
        total.calls += 1;
        total.requests += event["store_calls"].as_u64().unwrap_or(0);
        total.read += event["read_capacity"].as_f64().unwrap_or(0.0);
        total.write += event["write_capacity"].as_f64().unwrap_or(0.0);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> crate::Project {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated-example");
        crate::load(&dir).expect("the example loads")
    }

    #[test]
    fn units_follow_dynamodbs_rounding_for_the_sizes_stated() {
        let project = example();
        let costs = estimate(&project.model, &BTreeMap::new());
        let by_name = |costs: &[RpcCost], method: &str| {
            let rpc = format!("tasks.TaskService/{method}");
            costs
                .iter()
                .find(|c| c.rpc == rpc)
                .cloned()
                .expect("the RPC")
        };
        // 1 KB items: a write unit per write and per index (gsi1), a read unit per get, a page
        // of 20 is 20 KB.
        assert_eq!(by_name(&costs, "CreateTask").write(), 2.0);
        assert_eq!(
            by_name(&costs, "CreateTask").requests[0].subject,
            "Task + gsi1"
        );
        assert_eq!(by_name(&costs, "GetTask").read(), 1.0);
        assert_eq!(by_name(&costs, "ListTasks").read(), 5.0);
        let by_assignee = by_name(&costs, "ListTasksByAssignee");
        assert_eq!(by_assignee.read(), 2.5);
        assert_eq!(by_assignee.requests[0].subject, "Task gsi1");
        let big = estimate(&project.model, &BTreeMap::from([("Task".to_owned(), 3000)]));
        assert_eq!(by_name(&big, "UpdateTask").write(), 6.0);
        assert_eq!(by_name(&big, "GetTask").read(), 1.0);
        assert_eq!(by_name(&big, "ListTasks").read(), 15.0);
    }

    #[test]
    fn a_runs_log_lines_add_up_per_rpc() {
        let log = [
            r#"{"message":"serving","address":"127.0.0.1:1"}"#,
            r#"{"target":"svcgen::access","code":"Ok","rpc":"/t.S/Get","store_calls":1,"read_capacity":1.0,"write_capacity":0.0}"#,
            r#"{"target":"svcgen::access","code":"Ok","rpc":"/t.S/Get","store_calls":1,"read_capacity":2.0,"write_capacity":0.0}"#,
            r#"{"target":"svcgen::access","code":"NotFound","rpc":"/t.S/Get","store_calls":1,"read_capacity":1.0}"#,
            r#"{"target":"svcgen::access","code":"Ok","rpc":"/t.S/Create","store_calls":0}"#,
            "not json",
        ]
        .join("\n");
        let totals = measured(&log);
        assert_eq!(
            totals["t.S/Get"],
            Measured {
                calls: 2,
                requests: 2,
                read: 3.0,
                write: 0.0
            }
        );
        assert_eq!(totals["t.S/Create"].calls, 1);
        assert_eq!(totals.len(), 2);
    }
}
