"""The generated task service driven by clients nobody here wrote: Python grpcio stubs built by
grpcio-tools, grpcio-health-checking and `buf curl` through server reflection."""

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2

from conftest import Service, health_status

BUF = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "buf"


def code_of(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details()


def new_task(pb, **fields):
    return pb.CreateTaskRequest(task=pb.Task(**fields))


def test_create_get_update(client, stubs):
    pb, _ = stubs
    created = client.CreateTask(new_task(pb, project_id="p1", title="write tests", labels=["qa"], state=pb.TASK_STATE_OPEN))
    assert created.id, "the server assigns an id"
    assert created.version == 1
    got = client.GetTask(pb.GetTaskRequest(project_id="p1", id=created.id))
    assert got == created

    change = pb.Task(project_id="p1", id=created.id, title="write more tests", description="ignored", version=1)
    updated = client.UpdateTask(pb.UpdateTaskRequest(task=change, update_mask=field_mask_pb2.FieldMask(paths=["title"])))
    assert updated.title == "write more tests"
    assert updated.description == "", "fields outside the mask are untouched"
    assert updated.labels == ["qa"]
    assert updated.version == 2
    assert client.GetTask(pb.GetTaskRequest(project_id="p1", id=created.id)) == updated


def test_stale_version_is_aborted(client, stubs):
    pb, _ = stubs
    created = client.CreateTask(new_task(pb, project_id="p1", title="t"))
    mask = field_mask_pb2.FieldMask(paths=["title"])
    client.UpdateTask(pb.UpdateTaskRequest(task=pb.Task(project_id="p1", id=created.id, title="a", version=1), update_mask=mask))
    code, details = code_of(
        lambda: client.UpdateTask(pb.UpdateTaskRequest(task=pb.Task(project_id="p1", id=created.id, title="b", version=1), update_mask=mask))
    )
    assert code == grpc.StatusCode.ABORTED
    assert "stale" in details
    assert client.GetTask(pb.GetTaskRequest(project_id="p1", id=created.id)).title == "a"


def test_create_of_existing_key_is_already_exists(client, stubs):
    pb, _ = stubs
    client.CreateTask(new_task(pb, project_id="p1", id="fixed", title="first"))
    code, _ = code_of(lambda: client.CreateTask(new_task(pb, project_id="p1", id="fixed", title="second")))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert client.GetTask(pb.GetTaskRequest(project_id="p1", id="fixed")).title == "first"


def test_list_pages_through_a_partition(client, stubs):
    pb, _ = stubs
    ids = {client.CreateTask(new_task(pb, project_id="paged", title=f"t{i}")).id for i in range(7)}
    client.CreateTask(new_task(pb, project_id="other", title="elsewhere"))
    seen, token, pages = [], "", 0
    while True:
        page = client.ListTasks(pb.ListTasksRequest(project_id="paged", page_size=3, page_token=token))
        pages += 1
        assert len(page.tasks) <= 3
        seen.extend(t.id for t in page.tasks)
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert set(seen) == ids and len(seen) == 7
    assert seen == sorted(seen), "tasks come in sort-key order (UUIDv7: creation order)"


def test_list_by_assignee_uses_the_index(client, stubs):
    pb, _ = stubs
    for project in ["a", "b"]:
        client.CreateTask(new_task(pb, project_id=project, title="mine", assignee="ada"))
    client.CreateTask(new_task(pb, project_id="a", title="unassigned"))
    client.CreateTask(new_task(pb, project_id="a", title="theirs", assignee="bob"))
    page = client.ListTasksByAssignee(pb.ListTasksByAssigneeRequest(assignee="ada"))
    assert sorted(t.project_id for t in page.tasks) == ["a", "b"]
    assert {t.title for t in page.tasks} == {"mine"}
    assert page.next_page_token == ""

    # Reassigning moves the task between index partitions.
    task = page.tasks[0]
    moved = pb.Task(project_id=task.project_id, id=task.id, assignee="bob", version=task.version)
    client.UpdateTask(pb.UpdateTaskRequest(task=moved, update_mask=field_mask_pb2.FieldMask(paths=["assignee"])))
    assert len(client.ListTasksByAssignee(pb.ListTasksByAssigneeRequest(assignee="ada")).tasks) == 1
    assert len(client.ListTasksByAssignee(pb.ListTasksByAssigneeRequest(assignee="bob")).tasks) == 2


def test_ids_with_separators_percent_unicode_and_nul_are_distinct_keys(client, stubs):
    """Client-chosen IDs are percent-encoded into keys: IDs that spell one another's key text
    (`a#b` and `a%23b`), a project ID holding the key separator, unicode and NUL all round trip
    through create, get and list, on both backends."""
    pb, _ = stubs
    ids = ["a#b", "a%23b", "100%", "日本🦀", "nul\0inside", "x/y:z|w v"]
    for task_id in ids:
        client.CreateTask(new_task(pb, project_id="p#1", id=task_id, title=f"title {task_id}"))
    for task_id in ids:
        assert client.GetTask(pb.GetTaskRequest(project_id="p#1", id=task_id)).title == f"title {task_id}"
    page = client.ListTasks(pb.ListTasksRequest(project_id="p#1", page_size=50))
    assert sorted(t.id for t in page.tasks) == sorted(ids)


def test_missing_task_is_not_found(client, stubs):
    pb, _ = stubs
    code, _ = code_of(lambda: client.GetTask(pb.GetTaskRequest(project_id="p1", id="nope")))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "call",
    [
        lambda c, pb: c.CreateTask(pb.CreateTaskRequest()),
        lambda c, pb: c.CreateTask(new_task(pb, title="no project")),
        lambda c, pb: c.GetTask(pb.GetTaskRequest(project_id="p1")),
        lambda c, pb: c.ListTasks(pb.ListTasksRequest(project_id="p1", page_size=-1)),
        lambda c, pb: c.ListTasks(pb.ListTasksRequest(project_id="p1", page_token="not-a-token")),
        lambda c, pb: c.UpdateTask(
            pb.UpdateTaskRequest(task=pb.Task(project_id="p1", id="x"), update_mask=field_mask_pb2.FieldMask(paths=["id"]))
        ),
        lambda c, pb: c.UpdateTask(
            pb.UpdateTaskRequest(task=pb.Task(project_id="p1", id="x"), update_mask=field_mask_pb2.FieldMask(paths=["nonsense"]))
        ),
    ],
    ids=["no-task", "no-project", "no-id", "negative-page-size", "bad-token", "mask-on-key", "mask-unknown"],
)
def test_invalid_input_is_invalid_argument(client, stubs, call):
    pb, _ = stubs
    code, details = code_of(lambda: call(client, pb))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details


def test_page_token_of_another_query_is_rejected(client, stubs):
    pb, _ = stubs
    for i in range(3):
        client.CreateTask(new_task(pb, project_id="p1", title=f"t{i}"))
    token = client.ListTasks(pb.ListTasksRequest(project_id="p1", page_size=1)).next_page_token
    assert token
    code, _ = code_of(lambda: client.ListTasks(pb.ListTasksRequest(project_id="p2", page_size=1, page_token=token)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_health_is_serving(service):
    with service.channel() as channel:
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        assert health_status(channel, "tasks.TaskService") == health_pb2.HealthCheckResponse.SERVING


def test_buf_curl_through_reflection(service, client, stubs):
    pb, _ = stubs
    client.CreateTask(new_task(pb, project_id="curl", title="via reflection"))
    base = f"http://{service.address}"
    listed = subprocess.run(
        [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", base],
        capture_output=True, text=True, timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    services = listed.stdout.split()
    assert "tasks.TaskService" in services and "grpc.health.v1.Health" in services
    called = subprocess.run(
        [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
         "--data", json.dumps({"projectId": "curl"}), f"{base}/tasks.TaskService/ListTasks"],
        capture_output=True, text=True, timeout=60,
    )
    assert called.returncode == 0, called.stderr
    body = json.loads(called.stdout)
    assert [t["title"] for t in body["tasks"]] == ["via reflection"]


def test_data_survives_a_restart(data_dir, backend, stubs):
    pb, grpc_stubs = stubs
    first = Service(data_dir, backend).start()
    with first.channel() as channel:
        created = grpc_stubs.TaskServiceStub(channel).CreateTask(new_task(pb, project_id="durable", title="keep me"))
    assert first.stop() == 0
    second = Service(data_dir, backend).start()
    try:
        with second.channel() as channel:
            got = grpc_stubs.TaskServiceStub(channel).GetTask(pb.GetTaskRequest(project_id="durable", id=created.id))
        assert got == created
    finally:
        assert second.stop() == 0


def test_sigterm_drains_in_flight_calls(service, stubs):
    pb, grpc_stubs = stubs
    signalled = threading.Event()
    results = []  # (code, started before the signal, finished after it)
    lock = threading.Lock()

    def worker(n):
        with service.channel() as channel:
            stub = grpc_stubs.TaskServiceStub(channel)
            i = 0
            while i < 500:
                before = signalled.is_set()
                try:
                    stub.CreateTask(new_task(pb, project_id="drain", title=f"w{n}-{i}"), timeout=10)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
                with lock:
                    results.append((code, not before, signalled.is_set()))
                if before:
                    return
                i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    # Wait (bounded) until the load is flowing before signalling.
    deadline = time.monotonic() + 10
    while len(results) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(results) >= 30, "load did not start"
    signalled.set()  # before the signal: a call that saw it unset started before SIGTERM
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=30) == 0
    for t in threads:
        t.join(timeout=30)
    codes = {code for code, _, _ in results}
    assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
    in_flight_completed = [r for r in results if r[0] == grpc.StatusCode.OK and r[1] and r[2]]
    assert in_flight_completed, "a call in flight at SIGTERM completed"
