"""The generated Dockerfile, for real, without a Docker engine or a pullable base image.

The builder stage is reproduced from the Dockerfile itself, not re-typed: its COPY and RUN lines
are read from the file and run in order, in an empty directory outside this repository that
stands for WORKDIR, from a build context assembled as an engine would (the project directory with
its .dockerignore applied). So the project directory alone must hold everything the build needs
(the vendored runtime, Cargo.lock for `--locked`). Then buildah builds the final stage around the
binary this produced, and podman runs the image: the probe inside reports SERVING, gRPC calls from
the host succeed, SIGTERM stops it with exit code 0. All of this for `generated-example` and for a
project made by `svcgen new` outside the repository.

Two liberties, both about time: the base image's setup line (apt-get, rustup) runs only as root,
and the two projects' WORKDIR/target is one directory created for this test (a symlink: the second
build reuses the first's compiled crates.io dependencies, as a cache mount would)."""

import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import grpc
import pytest

ROOT = Path(__file__).resolve().parents[2]
SVCGEN = ROOT / "target" / "debug" / "svcgen"
BUF = ROOT / ".venv" / "bin" / "buf"
STORAGE = ["--storage-driver", "vfs"]
CA_CERTIFICATES = Path("/etc/ssl/certs/ca-certificates.crt")


def run(*command, check=True, timeout=600, **kwargs):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result


def instructions(dockerfile):
    """(stage, instruction, arguments) per Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stage = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.search(r"\bAS (\S+)$", arguments, re.I)
            stage = match.group(1) if match else "final"
        yield stage, keyword, arguments.strip()


def ignored(path, patterns):
    """Whether `path` (relative, '/'-separated) or a directory above it matches a .dockerignore
    pattern: `*` and `?` within a segment, `**` across segments, a trailing '/' ignored."""
    parts = path.split("/")
    for pattern in patterns:
        assert not pattern.startswith("!"), "exceptions are not generated"
        segments = pattern.rstrip("/").split("/")
        for depth in range(1, len(parts) + 1):
            if match_segments(parts[:depth], segments):
                return True
    return False


def match_segments(parts, segments):
    if not segments:
        return not parts
    if segments[0] == "**":
        return any(match_segments(parts[i:], segments[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], segments[0]) and match_segments(parts[1:], segments[1:])


def build_context(project, context):
    """The files an engine sends for `project`: everything .dockerignore does not exclude."""
    patterns = [
        line.strip() for line in (project / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if path.is_file() and not ignored(relative, patterns):
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, context / relative)


def copy(context, arguments, workdir):
    """COPY SRC... DEST relative to WORKDIR: a directory's contents go into DEST, files into DEST/
    when it ends with '/' (or there are several), else to DEST itself."""
    *sources, destination = arguments.split()
    target = workdir / destination
    for source in sources:
        origin = context / source
        assert origin.exists(), f"COPY {source}: not in the build context"
        if origin.is_dir():
            shutil.copytree(origin, target, dirs_exist_ok=True)
        elif destination.endswith("/") or len(sources) > 1:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / origin.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def builder_stage(project, build_dir, target_dir):
    """Runs the builder stage of `project`'s Dockerfile in `build_dir`; returns the RUN outputs."""
    context, workdir = build_dir / "context", build_dir / "src"
    context.mkdir()
    workdir.mkdir()
    (workdir / "target").symlink_to(target_dir, target_is_directory=True)
    build_context(project, context)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_") and k != "RUSTFLAGS"}
    outputs = []
    for stage, keyword, arguments in instructions(project / "Dockerfile"):
        if stage != "builder" or keyword in ("FROM",):
            continue
        if keyword == "WORKDIR":
            assert arguments == "/src", "the reproduction maps WORKDIR /src"
        elif keyword == "COPY":
            copy(context, arguments, workdir)
        elif keyword == "RUN":
            if "apt-get" in arguments and os.geteuid() != 0:
                assert shutil.which("musl-gcc"), "musl-tools is missing (the base image's setup line needs root)"
                continue
            result = run("bash", "-euo", "pipefail", "-c", arguments, cwd=workdir, env=env, timeout=1800)
            outputs.append(result.stderr)
        else:
            pytest.fail(f"builder stage: {keyword} is not reproduced by this test")
    return workdir, env, outputs


def final_stage_image(project, workdir, tag, scratch):
    """buildah builds the Dockerfile's final stage; the builder stage it copies from holds the
    files the reproduced builder stage produced, at the paths the Dockerfile names (WORKDIR /src
    is `workdir`), and the base image's CA certificates."""
    text = (project / "Dockerfile").read_text()
    final = text.index("FROM scratch\n")
    sources = re.findall(r"^COPY --from=builder (\S+) \S+$", text[final:], re.M)
    context = scratch / "image"
    context.mkdir()
    builder = ["FROM scratch AS builder"]
    for index, source in enumerate(sources):
        if source == str(CA_CERTIFICATES):
            origin = CA_CERTIFICATES
        else:
            assert source.startswith("/src/"), f"COPY --from=builder {source}: outside WORKDIR"
            origin = workdir / source.removeprefix("/src/")
        assert origin.is_file(), f"the builder stage produced no {source}"
        shutil.copy2(origin, context / f"file{index}")
        builder.append(f"COPY file{index} {source}")
    (context / "Containerfile").write_text("\n".join(builder) + "\n\n" + text[final:])
    # The platform argument as `svcgen deploy` passes it for the default architecture.
    run("buildah", *STORAGE, "bud", "--isolation", "chroot", "--format", "docker", "--pull-never",
        "--platform", "linux/amd64", "-t", tag, "-f", context / "Containerfile", context)
    return tag


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Container:
    def __init__(self, image, binary_name):
        self.port = free_port()
        self.name = f"svcgen-test-{self.port}"
        self.binary_name = binary_name
        run("podman", *STORAGE, "run", "-d", "--name", self.name, "--runtime", "runc", "--network", "host",
            "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1024:1024", "--read-only",
            "--tmpfs", "/data:rw,mode=1777", "-e", f"LISTEN_ADDR=127.0.0.1:{self.port}", "-e", "DATA_DIR=/data", image)

    def wait_serving(self):
        deadline = time.monotonic() + 30
        probe = None
        while time.monotonic() < deadline:
            probe = run("podman", *STORAGE, "exec", self.name, f"/{self.binary_name}", "health-probe",
                        f"-addr=127.0.0.1:{self.port}", check=False)
            if probe.returncode == 0:
                break
        assert probe is not None and probe.returncode == 0, probe.stdout + probe.stderr
        assert "SERVING" in probe.stdout

    def stop(self):
        run("podman", *STORAGE, "stop", "-t", "20", self.name)
        code = run("podman", *STORAGE, "inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip()
        assert code == "0", run("podman", *STORAGE, "logs", self.name, check=False).stderr

    def remove(self):
        run("podman", *STORAGE, "rm", "-f", self.name, check=False)


@pytest.fixture(scope="module")
def target_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("target")


def built(project, name, target_dir, scratch):
    workdir, env, outputs = builder_stage(project, scratch, target_dir)
    binary = workdir / "target" / "x86_64-unknown-linux-musl" / "release" / name
    image = final_stage_image(project, workdir, f"localhost/{name}:test", scratch)
    return {"workdir": workdir, "env": env, "outputs": outputs, "binary": binary, "image": image}


@pytest.fixture(scope="module")
def example(tmp_path_factory, target_dir):
    result = built(ROOT / "generated-example", "task-svc", target_dir, tmp_path_factory.mktemp("example"))
    yield result
    run("buildah", *STORAGE, "rmi", "-f", result["image"], check=False)


@pytest.fixture(scope="module")
def new_project(tmp_path_factory, target_dir):
    outside = tmp_path_factory.mktemp("new")
    created = run(SVCGEN, "new", "shop-svc", cwd=outside)
    assert "Cargo.lock" in created.stderr
    result = built(outside / "shop-svc", "shop-svc", target_dir, tmp_path_factory.mktemp("new-build"))
    yield result
    run("buildah", *STORAGE, "rmi", "-f", result["image"], check=False)


def test_dependencies_build_in_their_own_layer(example):
    """The Dockerfile's dependency step sees only the manifests, the lockfile and the vendored
    runtime, so an engine reuses its layer while those are unchanged; it compiles the dependency
    graph, and after an edit under src/ the last step compiles the service's crate alone."""
    steps = [(k, a) for stage, k, a in instructions(ROOT / "generated-example" / "Dockerfile")
             if stage == "builder" and k in ("COPY", "RUN")]
    dependency_step = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "cargo build" in a)
    copied = [source for k, a in steps[:dependency_step] if k == "COPY" for source in a.split()[:-1]]
    assert sorted(copied) == [".cargo", "Cargo.lock", "Cargo.toml", "vendor"], copied
    dependencies, service = example["outputs"][-2:]
    assert "Compiling tonic" in dependencies and "Compiling svcgen-runtime" in dependencies
    handler = example["workdir"] / "src" / "handler.rs"
    handler.write_text(handler.read_text() + "\n// an edit\n")
    last_run = [a for stage, k, a in instructions(ROOT / "generated-example" / "Dockerfile")
                if stage == "builder" and k == "RUN"][-1]
    rebuilt = run("bash", "-euo", "pipefail", "-c", last_run, cwd=example["workdir"], env=example["env"]).stderr
    compiled = re.findall(r"Compiling (\S+)", rebuilt)
    assert compiled == ["task-svc"], rebuilt


def test_image_is_small_and_non_root(example):
    image, binary = example["image"], example["binary"]
    size = int(run("podman", *STORAGE, "image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
    ratio = size / binary.stat().st_size
    # scripts/test.sh prints this line in its summary.
    (ROOT / "target" / "image-size.txt").write_text(
        f"task-svc image {size} bytes, binary {binary.stat().st_size} bytes, ratio {ratio:.3f}\n")
    assert ratio <= 1.3
    user = run("podman", *STORAGE, "image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    assert user == "65532:65532"
    platform = run("podman", *STORAGE, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image)
    assert platform.stdout.strip() == "linux/amd64"


def test_example_container_serves_and_stops_cleanly(example, stubs):
    pb, grpc_stubs = stubs
    container = Container(example["image"], "task-svc")
    try:
        container.wait_serving()
        with grpc.insecure_channel(f"127.0.0.1:{container.port}") as channel:
            tasks = grpc_stubs.TaskServiceStub(channel)
            created = tasks.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id="c", title="in a container")), timeout=10)
            assert tasks.GetTask(pb.GetTaskRequest(project_id="c", id=created.id), timeout=10) == created
        container.stop()
    finally:
        container.remove()


def test_new_project_container_serves_through_buf_curl(new_project):
    container = Container(new_project["image"], "shop-svc")
    try:
        container.wait_serving()
        base = f"http://127.0.0.1:{container.port}/shop.v1.ShopService"
        curl = [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
        created = run(*curl, "--data", json.dumps({"item": {"owner": "me", "title": "boxed"}}), f"{base}/CreateItem")
        item = json.loads(created.stdout)
        listed = json.loads(run(*curl, "--data", json.dumps({"owner": "me"}), f"{base}/ListItems").stdout)
        assert [i["id"] for i in listed["items"]] == [item["id"]]
        container.stop()
    finally:
        container.remove()
