"""The generated task service's metrics, read from its stdout as CloudWatch Embedded Metric Format
and checked against the format's specification (the `_aws` metadata, directives, dimension sets,
units, value shapes and limits), with values equal to the calls made: calls by RPC and code, the
error classes, latency distributions with exact counts, store requests by table and operation with
the capacity each consumed (the same units the per-call log line lists), and the server's calls in
flight and connections — on both backends, flushed each interval and once more at shutdown."""

import json
import time

import grpc
import pytest

from conftest import ROOT, Service, dynamodb_env

# The units CloudWatch accepts (MetricDatum's StandardUnit).
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
    "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
}


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_emf(document):
    """Asserts `document` is an EMF document as the specification defines it; returns its
    directives' (dimension sets, metric names)."""
    aws = document["_aws"]
    assert isinstance(aws["Timestamp"], int) and abs(aws["Timestamp"] / 1000 - time.time()) < 600
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    found = []
    for directive in directives:
        assert set(directive) <= {"Namespace", "Dimensions", "Metrics"}, directive
        assert isinstance(directive["Namespace"], str) and 0 < len(directive["Namespace"]) <= 1024
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and 0 < len(dimension_set) <= 30
            for dimension in dimension_set:
                value = document[dimension]
                assert isinstance(value, str) and 0 < len(value) <= 1024, (dimension, value)
        assert 0 < len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert metric.get("Unit", "None") in UNITS
            value = document[metric["Name"]]
            if isinstance(value, dict):
                # The histogram form: value/count pairs and exact statistics.
                assert len(value["Values"]) == len(value["Counts"]) <= 100
                assert all(number(v) for v in value["Values"] + value["Counts"])
                assert all(number(value[s]) for s in ("Max", "Min", "Count", "Sum"))
                assert sum(value["Counts"]) == value["Count"]
                assert all(value["Min"] <= v <= value["Max"] for v in value["Values"])
            elif isinstance(value, list):
                assert len(value) <= 100 and all(number(v) for v in value)
            else:
                assert number(value), (metric, value)
        found.append(([tuple(s) for s in directive["Dimensions"]], [m["Name"] for m in directive["Metrics"]]))
    return found


def documents(path):
    lines = path.read_text().splitlines() if path.exists() else []
    parsed = [json.loads(line) for line in lines]
    for document in parsed:
        check_emf(document)
    return parsed


def find(docs, **dimensions):
    """The documents whose dimension values are `dimensions` (and no other but Service)."""
    def keys(doc):
        return {d for directive in doc["_aws"]["CloudWatchMetrics"] for s in directive["Dimensions"] for d in s}

    return [d for d in docs if keys(d) - {"Service"} == set(dimensions) and all(d[k] == v for k, v in dimensions.items())]


def total(docs, metric, **dimensions):
    return sum(d[metric] for d in find(docs, **dimensions))


def access_lines(service):
    events = [json.loads(line) for line in service.log if line.startswith("{")]
    return [e for e in events if e.get("target") == "svcgen::access"]


@pytest.mark.parametrize("store", ["local", "dynamodb"])
def test_metrics_count_every_call_and_store_request(data_dir, stubs, tmp_path, store):
    pb, tasks_grpc = stubs
    backend = {} if store == "local" else dynamodb_env()
    table = "tasks"
    out = tmp_path / "stdout"
    # One interval longer than the test: every value below comes from the flush at shutdown.
    env = {"METRICS_INTERVAL_SECS": "3600", "OTEL_SERVICE_NAME": "task-svc-staging"}
    service = Service(data_dir, backend, env, stdout=out).start()
    try:
        with service.channel() as channel:
            stub = tasks_grpc.TaskServiceStub(channel)
            ids = [stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p1", title=f"t{n}"))).id
                   for n in range(3)]
            for task_id in ids[:2]:
                stub.GetTask(pb.GetTaskRequest(project_id="p1", id=task_id))
            with pytest.raises(grpc.RpcError) as missing:
                stub.GetTask(pb.GetTaskRequest(project_id="p1", id="nope"))
            assert missing.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.RpcError) as invalid:
                stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="", title="no project")))
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert len(stub.ListTasks(pb.ListTasksRequest(project_id="p1")).tasks) == 3
            assert documents(out) == []  # nothing before the interval ends
    finally:
        assert service.stop() == 0
    docs = documents(out)
    assert docs, "no metrics at shutdown"
    assert {d["Service"] for d in docs} == {"task-svc-staging"}
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in docs} == {"svcgen"}

    create, get, list_ = (f"tasks.TaskService/{m}" for m in ("CreateTask", "GetTask", "ListTasks"))
    assert total(docs, "Calls", Rpc=create) == 4
    assert total(docs, "Calls", Rpc=get) == 3
    assert total(docs, "Calls", Rpc=list_) == 1
    assert total(docs, "CallsByCode", Rpc=get, Code="Ok") == 2
    assert total(docs, "CallsByCode", Rpc=get, Code="NotFound") == 1
    assert total(docs, "CallsByCode", Rpc=create, Code="InvalidArgument") == 1
    assert total(docs, "ClientErrors", Rpc=get) == 1 and total(docs, "ServerErrors", Rpc=get) == 0
    (get_doc,) = find(docs, Rpc=get)
    assert get_doc["Latency"]["Count"] == 3 and get_doc["Latency"]["Sum"] > 0
    assert get_doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service", "Rpc"], ["Service"]]

    # Store requests: the invalid create never reached the store.
    assert total(docs, "StoreCalls", Table=table, Operation="PutItem") == 3
    assert total(docs, "StoreCalls", Table=table, Operation="GetItem") == 3
    assert total(docs, "StoreCalls", Table=table, Operation="Query") == 1
    assert total(docs, "StoreErrors", Table=table, Operation="GetItem") == 0
    (put,) = find(docs, Table=table, Operation="PutItem")
    assert put["StoreLatency"]["Count"] == 3 and put["StoreRetries"] == 0
    assert put["ConsumedWriteCapacity"] > 0 and put["ConsumedReadCapacity"] == 0
    (query,) = find(docs, Table=table, Operation="Query")
    assert query["ConsumedReadCapacity"] > 0
    if store == "local":
        # Three small items: one write unit each; one strongly consistent read unit per get.
        assert put["ConsumedWriteCapacity"] == 3
        assert total(docs, "ConsumedReadCapacity", Table=table, Operation="GetItem") == 3

    (server,) = find(docs)
    assert server["Connections"] >= 1 and server["CallsInFlight"] >= 1

    # The log line of each call lists its store requests, in the units the metrics add up.
    lines = access_lines(service)
    creates = [line for line in lines if line["rpc"] == "/" + create and line["code"] == "Ok"]
    assert len(creates) == 3
    assert all(line["store_calls"] == 1 and line["store"].startswith(f"PutItem {table} ") for line in creates)
    assert sum(line["write_capacity"] for line in creates) == pytest.approx(put["ConsumedWriteCapacity"])
    (refused,) = [line for line in lines if line["code"] == "InvalidArgument"]
    assert refused["store_calls"] == 0 and "store" not in refused


def test_metrics_are_written_each_interval_and_counted_once(data_dir, stubs, tmp_path):
    pb, tasks_grpc = stubs
    out = tmp_path / "stdout"
    service = Service(data_dir, {}, {"METRICS_INTERVAL_SECS": "1"}, stdout=out).start()
    try:
        with service.channel() as channel:
            stub = tasks_grpc.TaskServiceStub(channel)
            stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="first")))
            deadline = time.monotonic() + 15
            while not find(documents(out), Rpc="tasks.TaskService/CreateTask"):
                assert time.monotonic() < deadline, "no interval was written within 15 s"
                time.sleep(0.2)
            stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="second")))
    finally:
        assert service.stop() == 0
    docs = documents(out)
    # Each call in exactly one interval: the first in an interval's document, the second in a
    # later one (at the latest the shutdown's).
    creates = find(docs, Rpc="tasks.TaskService/CreateTask")
    assert [d["Calls"] for d in creates] == [1, 1]
    assert creates[0]["_aws"]["Timestamp"] < creates[1]["_aws"]["Timestamp"]
    assert docs[-1]["Service"] == "task-svc" and "Connections" in docs[-1]


def test_metrics_off_and_a_bad_interval(data_dir, stubs, tmp_path):
    pb, tasks_grpc = stubs
    out = tmp_path / "stdout"
    service = Service(data_dir, {}, {"METRICS": "off"}, stdout=out).start()
    with service.channel() as channel:
        tasks_grpc.TaskServiceStub(channel).CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="t")))
    assert service.stop() == 0
    assert out.read_text() == ""
    for bad in [{"METRICS": "prometheus"}, {"METRICS_INTERVAL_SECS": "0"}]:
        with pytest.raises(AssertionError, match="exited during start-up"):
            Service(data_dir, {}, bad).start()


def test_the_dashboard_and_alarms_read_what_the_service_emits(data_dir, stubs, tmp_path):
    """Every svcgen metric of the generated dashboard and alarms (deploy/monitoring/, the model
    the template is rendered from too) with its dimensions and values, found in the EMF a real
    run of every RPC writes."""
    pb, tasks_grpc = stubs
    out = tmp_path / "stdout"
    service = Service(data_dir, {}, {"METRICS_INTERVAL_SECS": "3600"}, stdout=out).start()
    try:
        with service.channel() as channel:
            stub = tasks_grpc.TaskServiceStub(channel)
            task = stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p1", title="t", assignee="ann")))
            stub.GetTask(pb.GetTaskRequest(project_id="p1", id=task.id))
            task.title = "renamed"
            stub.UpdateTask(pb.UpdateTaskRequest(task=task))
            stub.ListTasks(pb.ListTasksRequest(project_id="p1"))
            stub.ListTasksByAssignee(pb.ListTasksByAssigneeRequest(assignee="ann"))
    finally:
        assert service.stop() == 0
    emitted = set()  # (metric, ((dimension, value), ...))
    for doc in documents(out):
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                key = tuple((d, doc[d]) for d in dimension_set)
                emitted |= {(m["Name"], key) for m in directive["Metrics"]}

    monitoring = ROOT / "generated-example" / "deploy" / "monitoring"
    read = set()
    dashboard = json.loads((monitoring / "dashboard.json").read_text())
    for widget in dashboard["widgets"]:
        for line in widget["properties"]["metrics"]:
            if line[0] == "svcgen":
                strings = [v for v in line if isinstance(v, str)]
                read.add((strings[1], tuple(zip(strings[2::2], strings[3::2]))))
    for path in monitoring.glob("*.json"):
        for query in json.loads(path.read_text()).get("Metrics", []):
            metric = query.get("MetricStat", {}).get("Metric")
            if metric and metric["Namespace"] == "svcgen":
                read.add((metric["MetricName"], tuple((d["Name"], d["Value"]) for d in metric["Dimensions"])))
    assert len(read) > 10
    assert read <= emitted, sorted(read - emitted)


def test_svcgen_cost_estimates_what_a_run_measures(data_dir, stubs, tmp_path):
    """`svcgen cost` for the example's small tasks and `svcgen cost --from-log` over the log of a
    run on the embedded store agree, RPC by RPC, on the units one call consumes."""
    import subprocess
    from conftest import SVCGEN

    pb, tasks_grpc = stubs
    service = Service(data_dir, {}).start()
    try:
        with service.channel() as channel:
            stub = tasks_grpc.TaskServiceStub(channel)
            for n in range(3):
                # Assigned: in gsi1 too, which DynamoDB charges a write unit of its own.
                task = stub.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="p1", title=f"t{n}",
                                                                          assignee="ann")))
                stub.GetTask(pb.GetTaskRequest(project_id="p1", id=task.id))
            stub.ListTasks(pb.ListTasksRequest(project_id="p1"))
    finally:
        assert service.stop() == 0
    log = tmp_path / "service.log"
    log.write_text("".join(service.log))

    def table(*args):
        result = subprocess.run([str(SVCGEN), "cost", *args, str(ROOT / "generated-example")],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        rows = [line.split() for line in result.stdout.splitlines() if line.startswith("tasks.")]
        return {row[0]: row for row in rows}

    measured = table("--from-log", str(log))
    estimated = table("--item-bytes", "Task=200")
    assert measured["tasks.TaskService/CreateTask"][1:] == ["3", "1.00", "0.00", "2.00"]
    for rpc in ["CreateTask", "GetTask"]:
        rpc = f"tasks.TaskService/{rpc}"
        read, write = (float(v) for v in measured[rpc][3:5])
        assert (read, write) == (float(estimated[rpc][1]), float(estimated[rpc][2])), (measured[rpc], estimated[rpc])
    # A page of 20 small tasks fits in one read unit; the three stored ones do too.
    assert float(measured["tasks.TaskService/ListTasks"][3]) == float(estimated["tasks.TaskService/ListTasks"][1]) == 1.0
    refused = subprocess.run([str(SVCGEN), "cost", "--item-bytes", "Tusk=3", str(ROOT / "generated-example")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "no entity `Tusk` (entities: Task)" in refused.stderr, refused.stderr
