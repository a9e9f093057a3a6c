"""The per-call log line of the generated task service (embedded store), read back from its JSON
log: one event per RPC with its code, duration, request id (the caller's, or a new one, returned
either way), trace id and peer; none for health checks; errors only or none on request; and an
internal error's own log line naming the RPC and request id it belongs to."""

import json
import re

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Service

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def events(service):
    return [json.loads(line) for line in service.log if line.startswith("{")]


def calls(service):
    return [e for e in events(service) if e.get("message") == "call" and e.get("target") == "svcgen::access"]


def run(data_dir, stubs, extra_env, script):
    """Starts the service, runs `script(stub, channel)`, stops it; returns the service."""
    _, tasks_grpc = stubs
    service = Service(data_dir, {}, extra_env).start()
    try:
        with service.channel() as channel:
            script(tasks_grpc.TaskServiceStub(channel), channel)
    finally:
        assert service.stop() == 0
    return service


def test_one_line_per_call_with_code_duration_ids_and_peer(data_dir, stubs):
    pb, _ = stubs
    answers = {}

    def script(stub, channel):
        created, call = stub.CreateTask.with_call(
            pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="logged")),
            metadata=[("x-request-id", "req-42"), ("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01")])
        answers["created"] = dict(call.initial_metadata())
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetTask(pb.GetTaskRequest(project_id="p1", id="nope"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        # An error without a body is answered trailers-only: its headers arrive as trailers.
        answers["missing"] = dict(missing.value.trailing_metadata())
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING

    service = run(data_dir, stubs, {}, script)
    assert answers["created"]["x-request-id"] == "req-42"
    generated = answers["missing"]["x-request-id"]
    assert UUID.match(generated), generated

    create, get = calls(service)  # the health check is not logged
    assert create["rpc"] == "/tasks.TaskService/CreateTask" and create["code"] == "Ok"
    assert create["request_id"] == "req-42" and create["trace_id"] == TRACE_ID
    assert create["peer"].startswith("127.0.0.1:")
    assert create["level"] == "INFO" and 0 < create["duration_ms"] < 10_000
    assert get["rpc"] == "/tasks.TaskService/GetTask" and get["code"] == "NotFound"
    assert get["request_id"] == generated and "trace_id" not in get


@pytest.mark.parametrize("mode, expected", [("errors", ["NotFound"]), ("off", []), ("0.5", ["Ok", "NotFound"])])
def test_access_log_chooses_errors_only_none_or_a_sample(data_dir, stubs, mode, expected):
    pb, _ = stubs

    def script(stub, channel):
        for n in range(2):
            stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p1", title=f"t{n}")))
        with pytest.raises(grpc.RpcError):
            stub.GetTask(pb.GetTaskRequest(project_id="p1", id="nope"))

    service = run(data_dir, stubs, {"ACCESS_LOG": mode}, script)
    # A rate of 0.5 logs the second of the two OK calls, and every error.
    assert [c["code"] for c in calls(service)] == expected


def test_an_invalid_access_log_setting_stops_the_start(data_dir):
    with pytest.raises(AssertionError, match="exited during start-up"):
        Service(data_dir, {}, {"ACCESS_LOG": "sometimes"}).start()


def test_an_internal_error_names_its_rpc_and_request_id(data_dir, stubs, tmp_path):
    """A task role policy without PutItem (SVCGEN_TASK_POLICY): CreateTask fails as AccessDenied
    would on AWS, and the error's log line carries the call's span."""
    pb, _ = stubs
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"}]}))

    def script(stub, channel):
        with pytest.raises(grpc.RpcError) as denied:
            stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="denied")),
                            metadata=[("x-request-id", "req-denied")])
        assert denied.value.code() == grpc.StatusCode.INTERNAL

    service = run(data_dir, stubs, {"SVCGEN_TASK_POLICY": str(policy)}, script)
    errors = [e for e in events(service) if e.get("level") == "ERROR"]
    assert errors, service.log
    assert all(e["span"]["rpc"] == "/tasks.TaskService/CreateTask" for e in errors), errors
    assert all(e["span"]["request_id"] == "req-denied" for e in errors), errors
    (call,) = calls(service)
    assert (call["code"], call["request_id"]) == ("Internal", "req-denied")
