//! The baseline: `tasks.TaskService` written by hand with tonic, as one would without svcgen —
//! items mapped field by field, keys formatted inline, a plain tonic server with health
//! checking — on the same embedded store engine (svcgen-runtime's redb `LocalStore`) so that
//! the benchmark compares everything above the storage engine.
//!
//! Environment: `LISTEN_ADDR` (default 127.0.0.1:50051), `DATA_DIR` (default ./data). Prints
//! `serving <addr>` on stderr when it starts; SIGTERM/SIGINT stop it.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use svcgen_bench::page_size;
use svcgen_bench::tasks::task_service_server::TaskService;
use svcgen_bench::tasks::{
    CreateTaskRequest, GetTaskRequest, ListTasksByAssigneeRequest, ListTasksByAssigneeResponse,
    ListTasksRequest, ListTasksResponse, Task, TaskState, UpdateTaskRequest,
};
use svcgen_runtime::store::{ItemUpdate, LocalDatabase, Query};
use svcgen_runtime::{AttributeValue, Item, ItemKey, Store, StoreError, TableSchema};
use tonic::{Request, Response, Status};

const TABLE: TableSchema = TableSchema {
    name: "tasks",
    physical: "tasks",
    variable: "TABLE_NAME_TASKS",
    indexes: &["gsi1"],
};

struct Tasks {
    store: Arc<dyn Store>,
}

fn key(project_id: &str, id: &str) -> ItemKey {
    ItemKey {
        pk: format!("PROJECT#{project_id}"),
        sk: format!("TASK#{id}"),
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn to_item(task: &Task) -> Item {
    let key = key(&task.project_id, &task.id);
    let mut item = Item::new();
    item.insert("pk".into(), AttributeValue::S(key.pk));
    item.insert("sk".into(), AttributeValue::S(key.sk));
    if !task.assignee.is_empty() {
        item.insert("gsi1pk".into(), s(&format!("ASSIGNEE#{}", task.assignee)));
        item.insert("gsi1sk".into(), s(&format!("TASK#{}", task.id)));
    }
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    for (name, value) in [
        ("project_id", &task.project_id),
        ("id", &task.id),
        ("title", &task.title),
        ("description", &task.description),
        ("assignee", &task.assignee),
    ] {
        if !value.is_empty() {
            put(name, s(value));
        }
    }
    if task.state != 0 {
        let name = TaskState::try_from(task.state).map_or_else(
            |_| task.state.to_string(),
            |state| state.as_str_name().to_owned(),
        );
        put("state", AttributeValue::S(name));
    }
    if !task.labels.is_empty() {
        put(
            "labels",
            AttributeValue::L(task.labels.iter().map(|l| s(l)).collect()),
        );
    }
    if let Some(estimate) = task.estimate {
        put("estimate", AttributeValue::N(estimate.to_string()));
    }
    if let Some(due) = &task.due_time {
        put("due_time", AttributeValue::S(due.to_string()));
    }
    if task.version != 0 {
        put("version", AttributeValue::N(task.version.to_string()));
    }
    item
}

fn corrupt(field: &str) -> Status {
    Status::internal(format!("stored task has an invalid `{field}`"))
}

fn number<T: std::str::FromStr>(
    value: Option<AttributeValue>,
    name: &str,
) -> Result<Option<T>, Status> {
    match value {
        Some(AttributeValue::N(n)) => n.parse().map(Some).map_err(|_| corrupt(name)),
        None => Ok(None),
        Some(_) => Err(corrupt(name)),
    }
}

fn from_item(mut item: Item) -> Result<Task, Status> {
    let mut string = |name: &str| match item.remove(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        None => Ok(String::new()),
        Some(_) => Err(corrupt(name)),
    };
    let mut task = Task {
        project_id: string("project_id")?,
        id: string("id")?,
        title: string("title")?,
        description: string("description")?,
        assignee: string("assignee")?,
        ..Task::default()
    };
    let state = string("state")?;
    if !state.is_empty() {
        task.state = TaskState::from_str_name(&state)
            .map(i32::from)
            .or_else(|| state.parse().ok())
            .ok_or_else(|| corrupt("state"))?;
    }
    if let Some(value) = item.remove("labels") {
        let AttributeValue::L(labels) = value else {
            return Err(corrupt("labels"));
        };
        task.labels = labels
            .into_iter()
            .map(|l| match l {
                AttributeValue::S(label) => Ok(label),
                _ => Err(corrupt("labels")),
            })
            .collect::<Result<_, _>>()?;
    }
    task.estimate = number(item.remove("estimate"), "estimate")?;
    task.version = number(item.remove("version"), "version")?.unwrap_or(0);
    if let Some(value) = item.remove("due_time") {
        let AttributeValue::S(text) = value else {
            return Err(corrupt("due_time"));
        };
        task.due_time = Some(text.parse().map_err(|_| corrupt("due_time"))?);
    }
    Ok(task)
}

fn status(error: StoreError) -> Status {
    match error {
        StoreError::AlreadyExists => Status::already_exists("task already exists"),
        StoreError::NotFound => Status::not_found("task not found"),
        StoreError::VersionConflict { expected, actual } => Status::aborted(format!(
            "version {expected} is stale; the task is at version {actual}"
        )),
        StoreError::InvalidStartKey(_) => Status::invalid_argument("invalid page token"),
        StoreError::Unavailable(_) => Status::unavailable("store unavailable"),
        other => {
            eprintln!("store error: {other}");
            Status::internal("internal error")
        }
    }
}

/// A page token: the last item's key attributes, JSON in URL-safe base64.
fn encode_token(last: Option<Item>) -> String {
    let Some(last) = last else {
        return String::new();
    };
    let keys: BTreeMap<String, String> = last
        .into_iter()
        .filter_map(|(k, v)| match v {
            AttributeValue::S(s) => Some((k, s)),
            _ => None,
        })
        .collect();
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&keys).unwrap_or_default())
}

fn decode_token(token: &str) -> Result<Option<Item>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Status::invalid_argument("invalid page token");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let keys: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    Ok(Some(
        keys.into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect(),
    ))
}

impl Tasks {
    async fn list(
        &self,
        index: Option<&str>,
        partition: String,
        size: i32,
        token: &str,
    ) -> Result<(Vec<Task>, String), Status> {
        let page = self
            .store
            .query(Query {
                index: index.map(str::to_owned),
                partition,
                sort_key_prefix: "TASK#".to_owned(),
                descending: false,
                limit: page_size(size)?,
                start_after: decode_token(token)?,
            })
            .await
            .map_err(status)?;
        let tasks = page
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((tasks, encode_token(page.last_key)))
    }
}

#[tonic::async_trait]
impl TaskService for Tasks {
    async fn create_task(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let task = svcgen_bench::new_task(request.into_inner())?;
        self.store.create(to_item(&task)).await.map_err(status)?;
        Ok(Response::new(task))
    }

    async fn get_task(&self, request: Request<GetTaskRequest>) -> Result<Response<Task>, Status> {
        let request = request.into_inner();
        if request.project_id.is_empty() || request.id.is_empty() {
            return Err(Status::invalid_argument(
                "`project_id` and `id` are required",
            ));
        }
        let item = self
            .store
            .get(&key(&request.project_id, &request.id))
            .await
            .map_err(status)?
            .ok_or_else(|| Status::not_found("task not found"))?;
        Ok(Response::new(from_item(item)?))
    }

    async fn update_task(
        &self,
        request: Request<UpdateTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let request = request.into_inner();
        let task = request
            .task
            .ok_or_else(|| Status::invalid_argument("`task` is required"))?;
        if task.project_id.is_empty() || task.id.is_empty() {
            return Err(Status::invalid_argument(
                "`project_id` and `id` are required",
            ));
        }
        let mut values = to_item(&task);
        let mutable = [
            "title",
            "description",
            "assignee",
            "state",
            "labels",
            "estimate",
            "due_time",
        ];
        let paths = match request.update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths,
            _ => mutable.iter().map(|p| (*p).to_owned()).collect(),
        };
        let mut update = ItemUpdate::default();
        for path in paths {
            if !mutable.contains(&path.as_str()) {
                return Err(Status::invalid_argument(format!("cannot update `{path}`")));
            }
            match values.remove(&path) {
                Some(value) => {
                    update.set.insert(path, value);
                }
                None => update.remove.push(path),
            }
        }
        for index_key in ["gsi1pk", "gsi1sk"] {
            match values.remove(index_key) {
                Some(value) => {
                    update.set.insert(index_key.to_owned(), value);
                }
                None => update.remove.push(index_key.to_owned()),
            }
        }
        update.version = Some((
            "version".to_owned(),
            (task.version != 0).then_some(task.version),
        ));
        let item = self
            .store
            .update(&key(&task.project_id, &task.id), update)
            .await
            .map_err(status)?;
        Ok(Response::new(from_item(item)?))
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let request = request.into_inner();
        if request.project_id.is_empty() {
            return Err(Status::invalid_argument("`project_id` is required"));
        }
        let partition = format!("PROJECT#{}", request.project_id);
        let (tasks, next_page_token) = self
            .list(None, partition, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(ListTasksResponse {
            tasks,
            next_page_token,
        }))
    }

    async fn list_tasks_by_assignee(
        &self,
        request: Request<ListTasksByAssigneeRequest>,
    ) -> Result<Response<ListTasksByAssigneeResponse>, Status> {
        let request = request.into_inner();
        if request.assignee.is_empty() {
            return Err(Status::invalid_argument("`assignee` is required"));
        }
        let partition = format!("ASSIGNEE#{}", request.assignee);
        let (tasks, next_page_token) = self
            .list(
                Some("gsi1"),
                partition,
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListTasksByAssigneeResponse {
            tasks,
            next_page_token,
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir =
        std::path::PathBuf::from(std::env::var("DATA_DIR").unwrap_or_else(|_| "data".to_owned()));
    std::fs::create_dir_all(&data_dir)?;
    // One commit per write, as a service calling redb directly makes (svcgen's store groups
    // the writes that arrive together into one commit).
    let database = LocalDatabase::open_with_groups(&data_dir.join("baseline.redb"), 1)?;
    let store: Arc<dyn Store> = Arc::new(database.table(&TABLE)?);
    svcgen_bench::serve(Tasks { store }).await
}
