"""The generated task service's OpenTelemetry export: traces and metrics sent over OTLP/gRPC to a
collector the test runs (otlp_receiver.py), on both backends. A server span per call, named and
attributed by the gRPC conventions, the child of the caller's traceparent or a root, its trace id
the one the access log names; a client span per store request under it, as many as the access
log counts; the call and store-request histograms counting exactly the calls and requests made,
the consumed capacity and the in-flight gauge; sampling off; nothing sent without an endpoint;
any protocol but gRPC refused at start. Everything is asserted after SIGTERM, which flushes."""

import collections
import json
import os
import re
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import BINARY, Service
from otlp_receiver import CUMULATIVE, Receiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
UNSAMPLED_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "00f067aa0ba902b7"
HEX_TRACE_ID = re.compile(r"^(?!0{32})[0-9a-f]{32}$")
SERVER, CLIENT = "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT"
UNSET, ERROR = "STATUS_CODE_UNSET", "STATUS_CODE_ERROR"
# The store request each RPC of these tests makes.
OPERATION = {"CreateTask": "PutItem", "GetTask": "GetItem", "ListTasks": "Query"}
RESOURCE = {"service.name": "task-svc-otlp", "deployment.environment.name": "test"}


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch):
    """The service inherits the test's environment: no OTEL_* variable of the caller's leaks in."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def otlp_env(receiver, **extra):
    """Export to `receiver`, early (the tests still only assert after the flush at SIGTERM)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": RESOURCE["service.name"],
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        **extra,
    }


Call = collections.namedtuple("Call", "method code request_id")


class Caller:
    """Makes calls on a TaskService stub and remembers each one's method, code and request id
    (the x-request-id the answer carries: the caller's, or the one the service made)."""

    def __init__(self, stub):
        self.stub = stub
        self.made = []

    def __call__(self, method, request, request_id=None, traceparent=None):
        metadata = [("x-request-id", request_id)] if request_id else []
        if traceparent:
            metadata.append(("traceparent", traceparent))
        try:
            response, call = getattr(self.stub, method).with_call(request, metadata=metadata, timeout=10)
            code, headers = grpc.StatusCode.OK, dict(call.initial_metadata())
        except grpc.RpcError as error:
            # An error without a body is answered trailers-only: its headers arrive as trailers.
            response, code = None, error.code()
            headers = {**dict(error.initial_metadata() or ()), **dict(error.trailing_metadata() or ())}
        self.made.append(Call(method, code, headers["x-request-id"]))
        return response


def create_one(data_dir, stubs, env):
    """Starts the service with `env`, creates one task and stops it (which flushes)."""
    pb, tasks_grpc = stubs
    service = Service(data_dir, {}, env).start()
    try:
        with service.channel() as channel:
            Caller(tasks_grpc.TaskServiceStub(channel))(
                "CreateTask", pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="t")))
    finally:
        assert service.stop() == 0


def access_lines(service):
    events = [json.loads(line) for line in service.log if line.startswith("{")]
    return {e["request_id"]: e for e in events if e.get("target") == "svcgen::access"}


def code_number(code):
    return code.value[0]


def store_spans(spans, parent):
    """The client spans right under `parent` (spans a handler opens itself may be there too)."""
    return [s for s in spans if s.parent_span_id == parent.span_id and s.kind == CLIENT]


def task_calls(points):
    """The call-duration points of the task service (not of health checks)."""
    return [p for p in points if p.attributes.get("rpc.service") == "tasks.TaskService"]


def counts(points, *keys):
    """Histogram counts added up per the values of `keys`."""
    total = collections.Counter()
    for p in points:
        total[tuple(p.attributes.get(k) for k in keys)] += p.count
    return dict(total)


def test_calls_and_store_requests_are_traced_and_measured(data_dir, stubs, backend, receiver):
    pb, tasks_grpc = stubs
    dynamodb = bool(backend)
    service = Service(data_dir, backend, otlp_env(receiver)).start()
    try:
        with service.channel() as channel:
            call = Caller(tasks_grpc.TaskServiceStub(channel))
            created = call("CreateTask", pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="traced")),
                           request_id="req-traced", traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
            call("CreateTask", pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="second")))
            call("GetTask", pb.GetTaskRequest(project_id="p1", id=created.id))
            call("GetTask", pb.GetTaskRequest(project_id="p1", id="nope"))
            call("CreateTask", pb.CreateTaskRequest(task=pb.Task(project_id="", title="no project")))
            assert len(call("ListTasks", pb.ListTasksRequest(project_id="p1")).tasks) == 2
            # The caller's trace is not sampled: the service records none of this call's spans.
            call("GetTask", pb.GetTaskRequest(project_id="p1", id=created.id),
                 request_id="req-unsampled", traceparent=f"00-{UNSAMPLED_TRACE_ID}-{PARENT_ID}-00")
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        assert service.stop() == 0
    made = call.made
    assert [c.code for c in made] == [grpc.StatusCode.OK] * 3 + [
        grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OK, grpc.StatusCode.OK]
    assert len({c.request_id for c in made}) == len(made)
    lines = access_lines(service)
    assert set(lines) == {c.request_id for c in made}

    spans = receiver.spans()
    assert spans, "no span exported"
    assert all(s.resource.get(k) == v for s in spans for k, v in RESOURCE.items()), spans[0].resource
    servers = receiver.spans(kind=SERVER)
    by_request = {s.attributes.get("svcgen.request_id"): s for s in servers}
    # One server span per call: none for the health check, none for the unsampled call.
    assert len(by_request) == len(servers)
    assert set(by_request) == {c.request_id for c in made} - {"req-unsampled"}
    assert not [s for s in spans if s.trace_id == UNSAMPLED_TRACE_ID]

    store_prefix, system = ("DynamoDB", "aws.dynamodb") if dynamodb else ("LocalStore", "svcgen.local")
    for c in made:
        if c.request_id == "req-unsampled":
            continue
        span, line = by_request[c.request_id], lines[c.request_id]
        assert span.name == f"tasks.TaskService/{c.method}"
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.service"] == "tasks.TaskService"
        assert span.attributes["rpc.method"] == c.method
        assert span.attributes["rpc.grpc.status_code"] == code_number(c.code)
        assert span.attributes["network.peer.address"] == "127.0.0.1"
        # OK and the client errors (NOT_FOUND, INVALID_ARGUMENT) leave the status unset.
        assert span.status == UNSET, (c, span.status)
        assert line["trace_id"] == span.trace_id
        if c.request_id == "req-traced":
            assert (span.trace_id, span.parent_span_id) == (TRACE_ID, PARENT_ID)
        else:
            assert span.parent_span_id == "" and HEX_TRACE_ID.match(span.trace_id), span

        # A client span per store request, under the call's span.
        under = store_spans(spans, span)
        expected_calls = 0 if c.code == grpc.StatusCode.INVALID_ARGUMENT else 1
        assert line["store_calls"] == expected_calls
        assert len(under) == line["store_calls"], (c, under)
        operation = OPERATION[c.method]
        expected = {"db.system.name": system, "db.operation.name": operation, "db.collection.name": "tasks"}
        if dynamodb:
            expected.update({"rpc.system": "aws-api", "rpc.service": "DynamoDB", "rpc.method": operation,
                             "aws.dynamodb.table_names": ["tasks"]})
        for store in under:
            assert (store.name, store.trace_id) == (f"{store_prefix}.{operation}", span.trace_id)
            assert {k: store.attributes.get(k) for k in expected} == expected
            if not dynamodb:
                assert not [k for k in store.attributes if k.startswith("rpc.")], store.attributes
    # The roots' trace ids are fresh ones, one per call.
    roots = [s for s in servers if s.parent_span_id == ""]
    assert len(roots) == len(servers) - 1 and len({s.trace_id for s in roots}) == len(roots)

    # Metrics: cumulative, the last point per attribute set holds the totals.
    points = receiver.points()
    assert points, "no metric exported"
    assert all(p.resource.get(k) == v for p in points for k, v in RESOURCE.items())
    rpc_points = task_calls(receiver.last_points("rpc.server.call.duration"))
    for p in rpc_points:
        assert (p.type, p.unit, p.temporality) == ("histogram", "s", CUMULATIVE)
        assert set(p.attributes) == {"rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code"}
        assert p.attributes["rpc.system"] == "grpc" and p.sum > 0
    assert counts(rpc_points, "rpc.method", "rpc.grpc.status_code") == dict(
        collections.Counter((c.method, code_number(c.code)) for c in made))

    db_points = receiver.last_points("db.client.operation.duration")
    for p in db_points:
        assert (p.type, p.unit, p.temporality) == ("histogram", "s", CUMULATIVE)
        assert p.attributes["db.system.name"] == system and p.attributes["db.collection.name"] == "tasks"
    requests = collections.Counter()
    for c in made:
        requests[OPERATION[c.method]] += lines[c.request_id]["store_calls"]
    assert requests == {"PutItem": 2, "GetItem": 3, "Query": 1}
    by_operation = counts(db_points, "db.operation.name")
    assert {op: by_operation.get((op,), 0) for op in requests} == dict(requests)

    capacity = receiver.last_points("svcgen.store.consumed_capacity")
    for p in capacity:
        assert (p.type, p.monotonic, p.temporality, p.value_type) == ("sum", True, CUMULATIVE, "as_double")
        assert p.attributes["db.collection.name"] == "tasks"
    consumed = collections.Counter()
    for p in capacity:
        consumed[p.attributes["db.operation.name"], p.attributes["svcgen.capacity"]] += p.value
    assert consumed["PutItem", "write"] > 0 and consumed["GetItem", "read"] > 0, consumed

    for name in ["svcgen.server.calls_in_flight", "svcgen.server.connections"]:
        gauge = receiver.last_points(name)
        assert gauge, f"no {name}"
        assert all((p.type, p.monotonic, p.temporality) == ("sum", False, CUMULATIVE) for p in gauge), gauge
    # Every call has finished: none in flight (on each attribute set, if there are several).
    assert {p.value for p in receiver.last_points("svcgen.server.calls_in_flight")} == {0}


def test_server_errors_fail_the_span_and_client_errors_do_not(data_dir, stubs, receiver, tmp_path):
    """CreateTask under a task role policy without PutItem fails INTERNAL (a server error);
    a missing task is NOT_FOUND (the caller's)."""
    pb, tasks_grpc = stubs
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "*"}]}))
    service = Service(data_dir, {}, otlp_env(receiver, SVCGEN_TASK_POLICY=str(policy))).start()
    try:
        with service.channel() as channel:
            call = Caller(tasks_grpc.TaskServiceStub(channel))
            call("CreateTask", pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="denied")))
            call("GetTask", pb.GetTaskRequest(project_id="p1", id="nope"))
    finally:
        assert service.stop() == 0
    assert [c.code for c in call.made] == [grpc.StatusCode.INTERNAL, grpc.StatusCode.NOT_FOUND]
    by_request = {s.attributes.get("svcgen.request_id"): s for s in receiver.spans(kind=SERVER)}
    denied, missing = (by_request[c.request_id] for c in call.made)
    assert (denied.name, denied.attributes["rpc.grpc.status_code"], denied.status) == (
        "tasks.TaskService/CreateTask", 13, ERROR)
    assert (missing.name, missing.attributes["rpc.grpc.status_code"], missing.status) == (
        "tasks.TaskService/GetTask", 5, UNSET)
    assert counts(task_calls(receiver.last_points("rpc.server.call.duration")), "rpc.method", "rpc.grpc.status_code") == {
        ("CreateTask", 13): 1, ("GetTask", 5): 1}


def test_sampler_always_off_exports_metrics_but_no_span(data_dir, stubs, receiver):
    pb, tasks_grpc = stubs
    env = otlp_env(receiver, OTEL_TRACES_SAMPLER="always_off", OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    service = Service(data_dir, {}, env).start()
    try:
        with service.channel() as channel:
            call = Caller(tasks_grpc.TaskServiceStub(channel))
            for n in range(2):
                call("CreateTask", pb.CreateTaskRequest(task=pb.Task(project_id="p1", title=f"t{n}")),
                     traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01" if n == 0 else None)
    finally:
        assert service.stop() == 0
    assert [c.code for c in call.made] == [grpc.StatusCode.OK] * 2
    assert receiver.spans() == []
    assert counts(task_calls(receiver.last_points("rpc.server.call.duration")), "rpc.method", "rpc.grpc.status_code") == {
        ("CreateTask", 0): 2}


@pytest.fixture
def default_port_receiver():
    """A receiver on OTLP/gRPC's default port, where a service that exported without an endpoint
    would send (the test cannot tell anything when another process holds that port)."""
    try:
        running = Receiver(host="localhost", port=4317).start()
    except RuntimeError:
        pytest.skip("localhost:4317 is taken: a stray export could not be seen")
    yield running
    running.stop()


def test_without_an_endpoint_nothing_is_sent(data_dir, stubs, default_port_receiver):
    pb, tasks_grpc = stubs
    env = otlp_env(default_port_receiver)
    del env["OTEL_EXPORTER_OTLP_ENDPOINT"]
    service = Service(data_dir, {}, env).start()
    try:
        with service.channel() as channel:
            call = Caller(tasks_grpc.TaskServiceStub(channel))
            call("CreateTask", pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="t")),
                 traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
    finally:
        assert service.stop() == 0
    assert [c.code for c in call.made] == [grpc.StatusCode.OK]
    assert len(default_port_receiver.requests()) == 0, "the service sent OTLP without an endpoint"


@pytest.mark.parametrize("override, named", [
    ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
    ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://127.0.0.1:4317"}, "HTTPS"),
    ({"METRICS": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}, "METRICS=otlp"),
])
def test_an_export_it_cannot_make_stops_the_start(data_dir, receiver, override, named):
    """Only OTLP over gRPC without TLS is built in: anything else is refused at start (exit 2,
    naming what to change), not sent where nothing would understand it."""
    env = dict(os.environ, LISTEN_ADDR="127.0.0.1:0", DATA_DIR=str(data_dir), RUST_LOG="info",
               **dict(otlp_env(receiver), **override))
    result = subprocess.run([str(BINARY)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, timeout=20)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert '"serving"' not in result.stderr
    assert len(receiver.requests()) == 0


def test_a_signal_s_own_variables_win_and_values_ignore_case(data_dir, stubs, receiver):
    """The per-signal protocol beats the general one (both `grpc` whatever their case);
    OTEL_TRACES_EXPORTER=NONE turns spans off and leaves metrics on."""
    env = otlp_env(receiver, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="GRPC",
                   OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="Grpc", OTEL_TRACES_EXPORTER="NONE")
    create_one(data_dir, stubs, env)
    assert receiver.spans() == []
    assert counts(task_calls(receiver.last_points("rpc.server.call.duration")), "rpc.method", "rpc.grpc.status_code") == {
        ("CreateTask", 0): 1}


def test_the_sdk_disabled_sends_nothing(data_dir, stubs, receiver):
    create_one(data_dir, stubs, otlp_env(receiver, OTEL_SDK_DISABLED="true"))
    assert len(receiver.requests()) == 0
