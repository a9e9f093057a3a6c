"""The generated Dockerfile's final stage, built and run without a Docker engine: buildah packs a
host-built static (musl) binary, podman runs it on the host network bound to loopback, the
probe inside reports SERVING, a gRPC call from the host succeeds, and SIGTERM stops it with
exit code 0. No image can be pulled here, so the builder stage is replaced by one that copies
the host-built binary (scripts/test.sh builds it)."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "target" / "x86_64-unknown-linux-musl" / "release" / "task-svc"
STORAGE = ["--storage-driver", "vfs"]
IMAGE = "localhost/task-svc:test"


def run(*command, check=True, timeout=600):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result


def containerfile():
    """The generated Dockerfile with its builder stage swapped for the host-built binary."""
    text = (ROOT / "generated-example" / "Dockerfile").read_text()
    final = text.index("FROM scratch")
    assert re.search(r"^FROM \S+ AS builder$", text[:final], re.M), "the Dockerfile has a builder stage"
    builder = "FROM scratch AS builder\nCOPY task-svc /task-svc\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n\n"
    return builder + text[final:]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    assert BINARY.exists(), f"{BINARY} is built by scripts/test.sh"
    context = tmp_path_factory.mktemp("context")
    (context / "task-svc").write_bytes(BINARY.read_bytes())
    (context / "task-svc").chmod(0o755)
    (context / "ca-certificates.crt").write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    (context / "Containerfile").write_text(containerfile())
    run("buildah", *STORAGE, "bud", "--isolation", "chroot", "--format", "docker", "--pull-never",
        "-t", IMAGE, "-f", context / "Containerfile", context)
    yield IMAGE
    run("buildah", *STORAGE, "rmi", "-f", IMAGE, check=False)


def test_image_is_small_and_non_root(image):
    size = int(run("podman", *STORAGE, "image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
    ratio = size / BINARY.stat().st_size
    print(f"image {size} bytes, binary {BINARY.stat().st_size} bytes, ratio {ratio:.3f}", file=sys.stderr)
    assert ratio <= 1.3
    user = run("podman", *STORAGE, "image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == "65532:65532"


def test_container_serves_probes_and_stops_cleanly(image, stubs):
    pb, grpc_stubs = stubs
    port = free_port()
    name = f"task-svc-test-{port}"
    run("podman", *STORAGE, "run", "-d", "--name", name, "--runtime", "runc", "--network", "host",
        "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1024:1024", "--read-only",
        "--tmpfs", "/data:rw,mode=1777", "-e", f"LISTEN_ADDR=127.0.0.1:{port}", "-e", "DATA_DIR=/data", image)
    try:
        deadline = time.monotonic() + 30
        probe = None
        while time.monotonic() < deadline:
            probe = run("podman", *STORAGE, "exec", name, "/task-svc", "health-probe", f"-addr=127.0.0.1:{port}",
                        check=False)
            if probe.returncode == 0:
                break
        assert probe is not None and probe.returncode == 0, probe.stdout + probe.stderr
        assert "SERVING" in probe.stdout
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            tasks = grpc_stubs.TaskServiceStub(channel)
            created = tasks.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="c", title="in a container")), timeout=10)
            assert tasks.GetTask(pb.GetTaskRequest(project_id="c", id=created.id), timeout=10) == created
        run("podman", *STORAGE, "stop", "-t", "20", name)
        code = run("podman", *STORAGE, "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert code == "0", run("podman", *STORAGE, "logs", name, check=False).stderr
    finally:
        run("podman", *STORAGE, "rm", "-f", name, check=False)
