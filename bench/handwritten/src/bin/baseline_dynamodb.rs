//! The baseline on DynamoDB: `tasks.TaskService` written by hand with tonic and
//! aws-sdk-dynamodb, as one would without svcgen — tasks mapped field by field to the SDK's
//! attribute values, one SDK call per RPC (`PutItem` with `attribute_not_exists(pk)`,
//! consistent `GetItem`, `Query` with `begins_with`). Against it the benchmark compares the
//! generated service's DynamoDB path. The benchmark calls `CreateTask`, `GetTask` and
//! `ListTasks`; the other two RPCs answer UNIMPLEMENTED.
//!
//! Environment: `LISTEN_ADDR` (default 127.0.0.1:50051), `TABLE_NAME` (default `tasks`), and
//! the AWS configuration chain (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`). Prints
//! `serving <addr>` on stderr when it starts; SIGTERM/SIGINT stop it.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tasks_handwritten::tasks::task_service_server::TaskService;
use tasks_handwritten::tasks::{
    CreateTaskRequest, GetTaskRequest, ListTasksByAssigneeRequest, ListTasksByAssigneeResponse,
    ListTasksRequest, ListTasksResponse, Task, TaskState, UpdateTaskRequest,
};
use tonic::{Request, Response, Status};

type SdkItem = HashMap<String, AttributeValue>;

struct Tasks {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn to_item(task: &Task) -> SdkItem {
    let mut item = SdkItem::new();
    item.insert("pk".into(), s(format!("PROJECT#{}", task.project_id)));
    item.insert("sk".into(), s(format!("TASK#{}", task.id)));
    if !task.assignee.is_empty() {
        item.insert("gsi1pk".into(), s(format!("ASSIGNEE#{}", task.assignee)));
        item.insert("gsi1sk".into(), s(format!("TASK#{}", task.id)));
    }
    for (name, value) in [
        ("project_id", &task.project_id),
        ("id", &task.id),
        ("title", &task.title),
        ("description", &task.description),
        ("assignee", &task.assignee),
    ] {
        if !value.is_empty() {
            item.insert(name.into(), s(value));
        }
    }
    if let Ok(state) = TaskState::try_from(task.state)
        && task.state != 0
    {
        item.insert("state".into(), s(state.as_str_name()));
    }
    if !task.labels.is_empty() {
        item.insert(
            "labels".into(),
            AttributeValue::L(task.labels.iter().map(s).collect()),
        );
    }
    if let Some(estimate) = task.estimate {
        item.insert("estimate".into(), AttributeValue::N(estimate.to_string()));
    }
    if let Some(due) = &task.due_time {
        item.insert("due_time".into(), s(due.to_string()));
    }
    item.insert(
        "version".into(),
        AttributeValue::N(task.version.to_string()),
    );
    item
}

fn corrupt(field: &str) -> Status {
    Status::internal(format!("stored task has an invalid `{field}`"))
}

fn from_item(mut item: SdkItem) -> Result<Task, Status> {
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
            .ok_or_else(|| corrupt("state"))?;
    }
    if let Some(AttributeValue::S(due)) = item.remove("due_time") {
        task.due_time = Some(due.parse().map_err(|_| corrupt("due_time"))?);
    }
    if let Some(AttributeValue::L(labels)) = item.remove("labels") {
        task.labels = labels
            .into_iter()
            .map(|label| match label {
                AttributeValue::S(label) => Ok(label),
                _ => Err(corrupt("labels")),
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(AttributeValue::N(estimate)) = item.remove("estimate") {
        task.estimate = Some(estimate.parse().map_err(|_| corrupt("estimate"))?);
    }
    if let Some(AttributeValue::N(version)) = item.remove("version") {
        task.version = version.parse().map_err(|_| corrupt("version"))?;
    }
    Ok(task)
}

fn sdk_error<E: std::fmt::Debug>(operation: &str, error: E) -> Status {
    eprintln!("{operation} failed: {error:?}");
    Status::unavailable(format!("{operation} failed"))
}

/// A page token: the last item's key, `pk` and `sk` joined by a newline, in URL-safe base64.
fn encode_token(last: Option<&SdkItem>) -> String {
    let key = |name: &str| match last.and_then(|item| item.get(name)) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    match key("pk").zip(key("sk")) {
        Some((pk, sk)) => URL_SAFE_NO_PAD.encode(format!("{pk}\n{sk}")),
        None => String::new(),
    }
}

fn decode_token(token: &str) -> Result<Option<SdkItem>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || Status::invalid_argument("invalid page token");
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?)
        .map_err(|_| invalid())?;
    let (pk, sk) = text.split_once('\n').ok_or_else(invalid)?;
    Ok(Some(SdkItem::from([
        ("pk".to_owned(), s(pk)),
        ("sk".to_owned(), s(sk)),
    ])))
}

#[tonic::async_trait]
impl TaskService for Tasks {
    async fn create_task(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let task = tasks_handwritten::new_task(request.into_inner())?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&task)))
            .condition_expression("attribute_not_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Response::new(task)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Status::already_exists("task already exists"))
            }
            Err(error) => Err(sdk_error("PutItem", error)),
        }
    }

    async fn get_task(&self, request: Request<GetTaskRequest>) -> Result<Response<Task>, Status> {
        let request = request.into_inner();
        if request.project_id.is_empty() || request.id.is_empty() {
            return Err(Status::invalid_argument(
                "`project_id` and `id` are required",
            ));
        }
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("PROJECT#{}", request.project_id)))
            .key("sk", s(format!("TASK#{}", request.id)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let item = output
            .item
            .ok_or_else(|| Status::not_found("task not found"))?;
        Ok(Response::new(from_item(item)?))
    }

    async fn update_task(&self, _: Request<UpdateTaskRequest>) -> Result<Response<Task>, Status> {
        Err(Status::unimplemented(
            "the DynamoDB benchmark does not update",
        ))
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let request = request.into_inner();
        if request.project_id.is_empty() {
            return Err(Status::invalid_argument("`project_id` is required"));
        }
        let limit = i32::try_from(tasks_handwritten::page_size(request.page_size)?).unwrap_or(1000);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
            .expression_attribute_values(":pk", s(format!("PROJECT#{}", request.project_id)))
            .expression_attribute_values(":sk", s("TASK#"))
            .set_exclusive_start_key(decode_token(&request.page_token)?)
            .limit(limit)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        let next_page_token = encode_token(output.last_evaluated_key());
        let tasks = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok(Response::new(ListTasksResponse {
            tasks,
            next_page_token,
        }))
    }

    async fn list_tasks_by_assignee(
        &self,
        _: Request<ListTasksByAssigneeRequest>,
    ) -> Result<Response<ListTasksByAssigneeResponse>, Status> {
        Err(Status::unimplemented(
            "the DynamoDB benchmark does not list by assignee",
        ))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = std::env::var("TABLE_NAME").unwrap_or_else(|_| "tasks".to_owned());
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = Client::new(&config);
    tasks_handwritten::serve(Tasks { client, table }).await
}
