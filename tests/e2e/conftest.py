"""Fixtures for the end-to-end tests: Python stubs built from proto/tasks.proto with grpcio-tools,
and the task-svc binary started on a free loopback port, on each backend: the embedded store
(a temporary data directory) and DynamoDB (the DynamoDB-API server at SVCGEN_DYNAMODB_ENDPOINT,
reset and given a fresh table by `svcgen table create` before each test)."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("TASK_SVC_BIN", ROOT / "target" / "debug" / "task-svc"))
SVCGEN = ROOT / "target" / "debug" / "svcgen"
STARTUP_TIMEOUT = 15.0


@pytest.fixture(scope="session")
def stubs():
    """tasks_pb2 and tasks_pb2_grpc, generated into a temporary directory."""
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="svcgen-stubs-")
    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    for proto in ["svcgen/options.proto", "tasks.proto"]:
        code = protoc.main(
            [
                "protoc",
                f"-I{ROOT / 'proto'}",
                f"-I{well_known}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                proto,
            ]
        )
        assert code == 0, f"protoc failed for {proto}"
    sys.path.insert(0, out)
    import tasks_pb2
    import tasks_pb2_grpc

    return tasks_pb2, tasks_pb2_grpc


class Service:
    """One running task-svc process."""

    def __init__(self, data_dir, backend_env, extra_env=None, binary=BINARY, stdout=None):
        self.binary = binary
        # Where the service's stdout (its metrics) goes: a file's path, else nowhere.
        self.stdout = stdout
        self.data_dir = data_dir
        self.backend_env = dict(backend_env, **(extra_env or {}))
        self.process = None
        self.address = None
        self.log = []
        self.reader = None

    def start(self):
        env = dict(os.environ, LISTEN_ADDR="127.0.0.1:0", DATA_DIR=str(self.data_dir), RUST_LOG="info")
        env.update(self.backend_env)
        stdout = open(self.stdout, "a") if self.stdout else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen([str(self.binary)], env=env, stderr=subprocess.PIPE, stdout=stdout, text=True)
        finally:
            if self.stdout:
                stdout.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        # The service logs one JSON line with its bound address once it accepts connections.
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                raise AssertionError(f"task-svc exited during start-up: {self.log}")
            self.log.append(line)
            event = json.loads(line)
            if event.get("message") == "serving":
                self.address = event["address"]
                # Keep reading: a log line per call would fill the pipe and block the service.
                self.reader = threading.Thread(target=self._read_log, daemon=True)
                self.reader.start()
                return self
        raise AssertionError("task-svc did not report serving in time")

    def _read_log(self):
        for line in self.process.stderr:
            self.log.append(line)

    def channel(self):
        return grpc.insecure_channel(self.address)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        if self.reader:
            self.reader.join(timeout=10)
        return code


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def dynamodb_env(project=ROOT / "generated-example", table="tasks"):
    """Service environment for DynamoDB on the reset moto server, with `project`'s table created
    by `svcgen table create`."""
    endpoint = os.environ.get("SVCGEN_DYNAMODB_ENDPOINT")
    if not endpoint:
        pytest.fail("SVCGEN_DYNAMODB_ENDPOINT is not set: run the tests through scripts/test.sh, which starts moto")
    env = {
        "TABLE_NAME": table,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "2",
    }
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
    created = subprocess.run(
        [str(SVCGEN), "table", "create", str(project)],
        env=dict(os.environ, **env), capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert f"created table {table}" in created.stdout
    return env


@pytest.fixture(params=["local", "dynamodb"])
def backend(request):
    """Environment selecting the store: the embedded one, or DynamoDB on moto."""
    return {} if request.param == "local" else dynamodb_env()


@pytest.fixture
def service(data_dir, backend):
    svc = Service(data_dir, backend).start()
    yield svc
    if svc.process.poll() is None:
        svc.stop(signal.SIGKILL)


@pytest.fixture
def client(service, stubs):
    _, tasks_grpc = stubs
    with service.channel() as channel:
        yield tasks_grpc.TaskServiceStub(channel)


def cargo(project, command="build"):
    """`cargo build` (or `check`) of a project outside the workspace into this repository's target
    directory with the workspace's dev profile (dependencies without debug info), so the
    dependencies built for the workspace are reused instead of compiled again."""
    env = dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "target"))
    return subprocess.run(
        ["cargo", command, "--quiet", "--config", 'profile.dev.package."*".debug=false'],
        cwd=project, env=env, capture_output=True, text=True, timeout=900,
    )


def health_status(channel, service_name=""):
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service_name), timeout=5).status
