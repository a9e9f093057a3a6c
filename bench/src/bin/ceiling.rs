//! The ceiling: `tasks.TaskService` written by hand with tonic over an in-memory map — no
//! storage engine, no durability, no item mapping. What this machine can serve when storing
//! costs nothing; the benchmark reports every figure against it and against the baseline.
//!
//! Environment: `LISTEN_ADDR` (default 127.0.0.1:50051). Prints `serving <addr>` on stderr
//! when it starts; SIGTERM/SIGINT stop it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};

use svcgen_bench::page_size;
use svcgen_bench::tasks::task_service_server::TaskService;
use svcgen_bench::tasks::{
    CreateTaskRequest, GetTaskRequest, ListTasksByAssigneeRequest, ListTasksByAssigneeResponse,
    ListTasksRequest, ListTasksResponse, Task, UpdateTaskRequest,
};
use tonic::{Request, Response, Status};

/// Tasks by (project id, task id): a project's tasks in id order, oldest first (UUID v7).
#[derive(Default)]
struct Tasks {
    tasks: RwLock<BTreeMap<(String, String), Task>>,
}

/// The page after `token` (the last task's id, empty for the first page) of `tasks`, and the
/// next page's token.
fn page<'a>(mut tasks: impl Iterator<Item = &'a Task>, size: usize) -> (Vec<Task>, String) {
    let page: Vec<Task> = tasks.by_ref().take(size).cloned().collect();
    let next = match (page.last(), tasks.next()) {
        (Some(last), Some(_)) => last.id.clone(),
        _ => String::new(),
    };
    (page, next)
}

#[tonic::async_trait]
impl TaskService for Tasks {
    async fn create_task(
        &self,
        request: Request<CreateTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let task = svcgen_bench::new_task(request.into_inner())?;
        let mut tasks = self.tasks.write().unwrap_or_else(PoisonError::into_inner);
        let key = (task.project_id.clone(), task.id.clone());
        if tasks.contains_key(&key) {
            return Err(Status::already_exists("task already exists"));
        }
        tasks.insert(key, task.clone());
        Ok(Response::new(task))
    }

    async fn get_task(&self, request: Request<GetTaskRequest>) -> Result<Response<Task>, Status> {
        let GetTaskRequest { project_id, id } = request.into_inner();
        let tasks = self.tasks.read().unwrap_or_else(PoisonError::into_inner);
        tasks
            .get(&(project_id, id))
            .cloned()
            .map(Response::new)
            .ok_or_else(|| Status::not_found("task not found"))
    }

    async fn update_task(
        &self,
        request: Request<UpdateTaskRequest>,
    ) -> Result<Response<Task>, Status> {
        let request = request.into_inner();
        let new = request
            .task
            .ok_or_else(|| Status::invalid_argument("`task` is required"))?;
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        let mut tasks = self.tasks.write().unwrap_or_else(PoisonError::into_inner);
        let task = tasks
            .get_mut(&(new.project_id.clone(), new.id.clone()))
            .ok_or_else(|| Status::not_found("task not found"))?;
        if new.version != 0 && new.version != task.version {
            return Err(Status::aborted("stale version"));
        }
        let mut updated = task.clone();
        let all = paths.is_empty();
        let named = |field: &str| all || paths.iter().any(|p| p == field);
        for path in &paths {
            let known = [
                "title",
                "description",
                "assignee",
                "state",
                "labels",
                "estimate",
                "due_time",
            ];
            if !known.contains(&path.as_str()) {
                return Err(Status::invalid_argument(format!("cannot update `{path}`")));
            }
        }
        if named("title") {
            updated.title = new.title;
        }
        if named("description") {
            updated.description = new.description;
        }
        if named("assignee") {
            updated.assignee = new.assignee;
        }
        if named("state") {
            updated.state = new.state;
        }
        if named("labels") {
            updated.labels = new.labels;
        }
        if named("estimate") {
            updated.estimate = new.estimate;
        }
        if named("due_time") {
            updated.due_time = new.due_time;
        }
        updated.version += 1;
        *task = updated.clone();
        Ok(Response::new(updated))
    }

    async fn list_tasks(
        &self,
        request: Request<ListTasksRequest>,
    ) -> Result<Response<ListTasksResponse>, Status> {
        let request = request.into_inner();
        let size = page_size(request.page_size)?;
        let tasks = self.tasks.read().unwrap_or_else(PoisonError::into_inner);
        let from = (request.project_id.clone(), request.page_token.clone());
        let start = if request.page_token.is_empty() {
            Bound::Included(from)
        } else {
            Bound::Excluded(from)
        };
        let project = tasks
            .range((start, Bound::Unbounded))
            .take_while(|((project, _), _)| *project == request.project_id)
            .map(|(_, task)| task);
        let (tasks, next_page_token) = page(project, size);
        Ok(Response::new(ListTasksResponse {
            tasks,
            next_page_token,
        }))
    }

    /// A scan of every task (the benchmark does not list by assignee), in id order.
    async fn list_tasks_by_assignee(
        &self,
        request: Request<ListTasksByAssigneeRequest>,
    ) -> Result<Response<ListTasksByAssigneeResponse>, Status> {
        let request = request.into_inner();
        let size = page_size(request.page_size)?;
        let tasks = self.tasks.read().unwrap_or_else(PoisonError::into_inner);
        let mut assigned: Vec<&Task> = tasks
            .values()
            .filter(|task| task.assignee == request.assignee && task.id > request.page_token)
            .collect();
        assigned.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let (tasks, next_page_token) = page(assigned.into_iter(), size);
        Ok(Response::new(ListTasksByAssigneeResponse {
            tasks,
            next_page_token,
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    svcgen_bench::serve(Tasks::default()).await
}
