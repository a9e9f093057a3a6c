"""Reliability of the generated service under faults and limits: a kill -9 under write load
loses no acknowledged write; oversized requests, client deadlines and the concurrency limits
behave as gRPC clients expect. Store calls that never finish come from a DynamoDB endpoint that
accepts connections and never answers (a "black hole"), which makes the server's own work
observable: each call in progress holds one connection open there."""

import signal
import socket
import subprocess
import threading
import time

import grpc
import pytest

from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Service

DYNAMODB_ENV = {
    "TABLE_NAME": "tasks",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_MAX_ATTEMPTS": "1",
}


def poll(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} within {timeout} s")


class BlackHole:
    """A TCP server that accepts and reads but never answers; counts open connections and
    records when each was accepted."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.lock = threading.Lock()
        self.open = 0
        self.accept_times = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.open += 1
                self.accept_times.append(time.monotonic())
            threading.Thread(target=self._drain, args=(connection,), daemon=True).start()

    def _drain(self, connection):
        with connection:
            while connection.recv(65536):
                pass
        with self.lock:
            self.open -= 1

    def close(self):
        self.server.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


def start_on(black_hole, data_dir, **extra):
    env = dict(DYNAMODB_ENV, AWS_ENDPOINT_URL=black_hole.endpoint, **extra)
    return Service(data_dir, env).start()


def test_kill_9_under_write_load_loses_no_acknowledged_create(data_dir, stubs):
    pb, grpc_stubs = stubs
    service = Service(data_dir, {}).start()
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(number):
        with service.channel() as channel:
            client = grpc_stubs.TaskServiceStub(channel)
            n = 0
            while not stop.is_set():
                task = pb.Task(project_id="crash", title=f"w{number}-{n}", labels=[str(n)], estimate=n % 7)
                try:
                    created = client.CreateTask(pb.CreateTaskRequest(task=task), timeout=5)
                except grpc.RpcError:
                    return  # the process is gone
                with lock:
                    acknowledged.append(created)
                n += 1

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in writers:
        thread.start()
    poll(lambda: len(acknowledged) >= 200, 30, "200 creates were acknowledged")
    service.process.send_signal(signal.SIGKILL)
    service.process.wait(timeout=10)
    stop.set()
    for thread in writers:
        thread.join(timeout=10)

    restarted = Service(data_dir, {}).start()
    try:
        with restarted.channel() as channel:
            client = grpc_stubs.TaskServiceStub(channel)
            for created in acknowledged:
                stored = client.GetTask(pb.GetTaskRequest(project_id="crash", id=created.id), timeout=5)
                assert stored == created
    finally:
        assert restarted.stop() == 0


def test_oversized_request_is_resource_exhausted(service, client, stubs):
    pb, _ = stubs
    task = pb.Task(project_id="big", title="x", description="d" * (5 * 1024 * 1024))
    with pytest.raises(grpc.RpcError) as error:
        client.CreateTask(pb.CreateTaskRequest(task=task), timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.value.details()
    # The service carries on.
    assert client.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="big", title="small")), timeout=5).id


def test_client_deadline_is_deadline_exceeded_and_the_server_stops_work(black_hole, data_dir, stubs):
    pb, grpc_stubs = stubs
    service = start_on(black_hole, data_dir)
    try:
        with service.channel() as channel:
            client = grpc_stubs.TaskServiceStub(channel)
            with pytest.raises(grpc.RpcError) as error:
                client.GetTask(pb.GetTaskRequest(project_id="p", id="1"), timeout=0.5)
            assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert black_hole.accept_times, "the call reached the store"
            # The store call is abandoned with the call: its connection closes long before any
            # SDK timeout would end it.
            poll(lambda: black_hole.open == 0, 2, "the server dropped the store call")
    finally:
        assert service.stop() == 0


def test_the_server_answers_an_expired_deadline_with_deadline_exceeded(black_hole, data_dir):
    """The server's own answer, not a client's timer: curl sends a gRPC call with `grpc-timeout`
    and waits without a deadline of its own (tonic alone answers CANCELLED "Timeout expired")."""
    service = start_on(black_hole, data_dir)
    try:
        # GetTaskRequest{project_id: "p", id: "1"} in a gRPC frame (uncompressed, 6 bytes).
        frame = b"\x00\x00\x00\x00\x06\x0a\x01p\x12\x011"
        started = time.monotonic()
        result = subprocess.run(
            ["curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc",
             "-H", "te: trailers", "-H", "grpc-timeout: 300m", "--data-binary", "@-", "-D", "-", "-o", "/dev/null",
             f"http://{service.address}/tasks.TaskService/GetTask"],
            input=frame, capture_output=True, timeout=30,
        )
        elapsed = time.monotonic() - started
        headers = result.stdout.decode()
        assert result.returncode == 0, result.stderr
        assert "grpc-status: 4\r\n" in headers and "grpc-message: deadline%20exceeded" in headers, headers
        assert 0.25 < elapsed < 10, elapsed
        assert black_hole.accept_times, "the call reached the store before its deadline passed"
    finally:
        assert service.stop() == 0


@pytest.mark.parametrize("limit, expected", [(2, 2), (None, 6)])
def test_concurrent_calls_per_connection_are_limited(black_hole, data_dir, stubs, limit, expected):
    pb, grpc_stubs = stubs
    extra = {"MAX_CONCURRENT_CALLS_PER_CONNECTION": str(limit)} if limit else {}
    service = start_on(black_hole, data_dir, **extra)
    try:
        with service.channel() as channel:
            client = grpc_stubs.TaskServiceStub(channel)
            sent = time.monotonic()
            calls = [client.GetTask.future(pb.GetTaskRequest(project_id="p", id=str(i)), timeout=2) for i in range(6)]
            codes = [call.exception().code() for call in calls]
            assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 6
        # Store calls that started while all six calls were in flight (well before their
        # deadline, after which queued calls may take the freed places).
        early = [t for t in black_hole.accept_times if t < sent + 1.5]
        assert len(early) == expected
    finally:
        assert service.stop() == 0


def test_invalid_limit_is_a_configuration_error(data_dir):
    service = Service(data_dir, {"MAX_CONCURRENT_STREAMS": "many"})
    try:
        service.start()
    except AssertionError:
        pass
    assert service.process.wait(timeout=10) == 2
    assert any("MAX_CONCURRENT_STREAMS" in line for line in service.log + service.process.stderr.readlines())


def test_drain_under_load_turns_health_off_first_then_exits_0(data_dir, stubs):
    pb, grpc_stubs = stubs
    service = Service(data_dir, {}, {"SHUTDOWN_DELAY_SECS": "1", "SHUTDOWN_TIMEOUT_SECS": "10"}).start()
    codes, lock, stop = [], threading.Lock(), threading.Event()

    def writer(number):
        with service.channel() as channel:
            client = grpc_stubs.TaskServiceStub(channel)
            n = 0
            while not stop.is_set():
                try:
                    client.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="drain", title=f"{number}-{n}")), timeout=5)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
                with lock:
                    codes.append((time.monotonic(), code))
                if code != grpc.StatusCode.OK:
                    return
                n += 1

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in writers:
        thread.start()
    poll(lambda: len(codes) >= 50, 30, "the load is flowing")
    with service.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        # The ALB's probe (grpc.health.v1.Health/Check, success = gRPC code 0) fails first...
        def probe_fails():
            try:
                health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                return False
            except grpc.RpcError as error:
                return error.code() == grpc.StatusCode.UNAVAILABLE
        poll(probe_fails, 1, "the health check failed")
        failed_at = time.monotonic()
    # ...while calls keep succeeding until the delay is over.
    poll(lambda: any(t > failed_at and c == grpc.StatusCode.OK for t, c in codes), 1, "calls succeeded after the check failed")
    assert service.process.wait(timeout=12) == 0
    assert time.monotonic() - signalled < 1 + 10
    stop.set()
    for thread in writers:
        thread.join(timeout=10)
    assert {c for _, c in codes} <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}


def test_calls_stuck_in_the_store_do_not_hold_shutdown_past_its_timeout(black_hole, data_dir, stubs):
    pb, grpc_stubs = stubs
    service = start_on(black_hole, data_dir, SHUTDOWN_TIMEOUT_SECS="2")
    with service.channel() as channel:
        client = grpc_stubs.TaskServiceStub(channel)
        stuck = client.GetTask.future(pb.GetTaskRequest(project_id="p", id="1"), timeout=60)
        poll(lambda: black_hole.open == 1, 5, "the call is waiting on the store")
        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        code = service.process.wait(timeout=10)
        elapsed = time.monotonic() - signalled
        assert 2 <= elapsed < 4, elapsed
        assert code == 1, "exiting with calls abandoned is reported as a failure"
        assert stuck.exception().code() == grpc.StatusCode.UNAVAILABLE
