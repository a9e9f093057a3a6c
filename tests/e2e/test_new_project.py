"""`svcgen new` and the regeneration lifecycle, on a project outside this repository: the new
project builds and serves as it is; evolving its proto regenerates everything svcgen owns and
nothing the user owns; hand-written RPCs get stubs and the compiler names missing ones.

Projects build with the Cargo.lock and the vendored runtime `svcgen new` wrote, into this
repository's target directory, so the crates.io dependencies already built there are reused and
only the project and its vendored runtime compile."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from conftest import ROOT, SVCGEN, Service, cargo, health_status

BUF = ROOT / ".venv" / "bin" / "buf"
USER_FILES = ["Cargo.toml", "src/main.rs", "src/handler.rs", "README.md", ".gitignore"]


def svcgen(*args, cwd=None):
    return subprocess.run([str(SVCGEN), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60)


def snapshot(directory):
    """Every file under `directory` with its bytes and modification time."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("new-project")


@pytest.fixture(scope="module")
def demo(workspace):
    created = svcgen("new", "demo", cwd=workspace)
    assert created.returncode == 0, created.stderr
    project = workspace / "demo"
    built = cargo(project)
    assert built.returncode == 0, built.stderr
    return project


def test_new_project_builds_and_serves(demo, tmp_path):
    for path in USER_FILES + ["svcgen.toml", "proto/demo/v1/demo.proto", "deploy/cloudformation.yaml"]:
        assert (demo / path).is_file(), path
    assert svcgen("generate", "--check", demo).returncode == 0
    service = Service(tmp_path / "data", {}, binary=ROOT / "target" / "debug" / "demo").start()
    try:
        with service.channel() as channel:
            assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
            assert health_status(channel, "demo.v1.DemoService") == health_pb2.HealthCheckResponse.SERVING
        base = f"http://{service.address}"
        curl = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
        created = subprocess.run(
            curl + ["--data", json.dumps({"item": {"owner": "me", "title": "first"}}),
                    f"{base}/demo.v1.DemoService/CreateItem"],
            capture_output=True, text=True, timeout=60,
        )
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["id"]
        listed = subprocess.run(
            curl + ["--data", json.dumps({"owner": "me"}), f"{base}/demo.v1.DemoService/ListItems"],
            capture_output=True, text=True, timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        assert [i["title"] for i in json.loads(listed.stdout)["items"]] == ["first"]
    finally:
        assert service.stop() == 0


def test_new_refuses_a_non_empty_directory(demo, workspace):
    before = snapshot(demo)
    again = svcgen("new", "demo", cwd=workspace)
    assert again.returncode == 2
    assert "exists and is not empty" in again.stderr
    assert snapshot(demo) == before
    assert sorted(p.name for p in workspace.iterdir()) == ["demo"], "no staging directory left behind"


def test_new_rejects_a_bad_name_and_writes_nothing(tmp_path):
    result = svcgen("new", "Bad_Name", cwd=tmp_path)
    assert result.returncode == 2
    assert "not a valid service name" in result.stderr
    assert list(tmp_path.iterdir()) == []


EVOLVED_ITEM_FIELD = """  uint64 version = 6;
  // How urgent the item is.
  uint32 priority = 7;
}
"""

NEW_RPCS = """
  // Lists the comments one author wrote, across items.
  rpc ListCommentsByAuthor(ListCommentsByAuthorRequest) returns (ListCommentsByAuthorResponse) {
    option (svcgen.operation) = { list: { entity: "Comment" index: "gsi1" } };
  }
  // Archives an item: hand-written.
  rpc ArchiveItem(ArchiveItemRequest) returns (Item) {
    option (svcgen.operation) = { custom: { uses: ["Item.get", "Item.update"] } };
  }
}
"""
COMMENTED_RPC = """  // rpc ArchiveItem(ArchiveItemRequest) returns (Item) {
  //   option (svcgen.operation) = { custom: { uses: ["Item.get", "Item.update"] } };
  // }
}
"""

NEW_MESSAGES = """
// A comment on an item, in the same table.
message Comment {
  option (svcgen.entity) = {
    table: "demo"
    pk: "ITEM#{item_id}"
    sk: "COMMENT#{id}"
    indexes: { name: "gsi1" pk: "AUTHOR#{author}" sk: "COMMENT#{id}" }
    generated_id_field: "id"
  };
  string item_id = 1;
  string id = 2;
  string author = 3;
  string text = 4;
}

message ListCommentsByAuthorRequest {
  string author = 1;
  int32 page_size = 2;
  string page_token = 3;
}

message ListCommentsByAuthorResponse {
  repeated Comment comments = 1;
  string next_page_token = 2;
}

message ArchiveItemRequest {
  string owner = 1;
  string id = 2;
}
"""

LIST_RPC = NEW_RPCS.split("  // Archives")[0].lstrip("\n")


def task_policy(project):
    return json.loads((project / "deploy/iam/task-role-policy.json").read_text())


def policy_resources(policy):
    return {r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}


def test_lifecycle_regenerates_only_what_svcgen_owns(demo, workspace):
    project = workspace / "evolving"
    shutil.copytree(demo, project)
    # The user's own code: a request check in the handler.
    handler = project / "src/handler.rs"
    handler.write_text(handler.read_text().replace(
        "impl generated::DemoServiceHandler for Handler {}",
        "impl generated::DemoServiceHandler for Handler {\n"
        "    fn check_create_item(\n"
        "        &self,\n"
        "        request: &generated::demo::v1::CreateItemRequest,\n"
        "    ) -> Result<(), tonic::Status> {\n"
        "        match &request.item {\n"
        "            Some(item) if item.title.is_empty() => {\n"
        "                Err(tonic::Status::invalid_argument(\"title is required\"))\n"
        "            }\n"
        "            _ => Ok(()),\n"
        "        }\n"
        "    }\n"
        "}",
    ))
    user_before = {path: (project / path).read_bytes() for path in USER_FILES}
    policy_before = task_policy(project)
    cloudformation_before = (project / "deploy/cloudformation.yaml").read_text()
    assert "GlobalSecondaryIndexes" not in cloudformation_before

    proto = project / "proto/demo/v1/demo.proto"
    original_proto = proto.read_text()
    evolved = original_proto.replace("  uint64 version = 6;\n}\n", EVOLVED_ITEM_FIELD, 1)
    assert COMMENTED_RPC in evolved
    evolved = evolved.replace(COMMENTED_RPC, NEW_RPCS, 1)
    evolved += NEW_MESSAGES
    assert "// rpc ArchiveItem" not in evolved and "priority" in evolved
    proto.write_text(evolved)

    assert svcgen("generate", "--check", project).returncode == 1
    generated = svcgen("generate", project)
    assert generated.returncode == 0, generated.stderr

    # User-owned files are byte-identical; the hand-written RPC got its stub.
    assert {path: (project / path).read_bytes() for path in USER_FILES} == user_before
    stub = project / "src/rpc/archive_item.rs"
    assert "impl generated::ArchiveItemRpc for Handler" in stub.read_text()
    assert "mod archive_item;" in (project / "src/rpc/mod.rs").read_text()
    assert "pub priority: u32" in (project / "src/generated/demo.v1.rs").read_text()

    # The permissions and the table follow the new list operation on the index.
    policy_after = task_policy(project)
    index_arns = {r for r in policy_resources(policy_after) if r.endswith("/index/gsi1")}
    assert index_arns and not {r for r in policy_resources(policy_before) if "/index/" in r}
    cloudformation = (project / "deploy/cloudformation.yaml").read_text()
    assert "GlobalSecondaryIndexes" in cloudformation and "IndexName: gsi1" in cloudformation
    built = cargo(project)
    assert built.returncode == 0, built.stderr

    # A stub the user has not written: the compiler names the missing trait.
    stub_text = stub.read_text()
    stub.write_text("// TODO\n")
    broken = cargo(project)
    assert broken.returncode != 0
    assert "ArchiveItemRpc" in broken.stderr
    stub.write_text(stub_text)
    # A second generate leaves an existing stub alone.
    assert svcgen("generate", project).returncode == 0
    assert stub.read_text() == stub_text

    # Removing the list operation shrinks the policy again; the user's stub is kept and pointed out
    # once its RPC is gone.
    archive_rpc = NEW_RPCS[NEW_RPCS.index("  // Archives an item"):NEW_RPCS.rindex("}")]
    proto.write_text(evolved.replace(LIST_RPC, "").replace(archive_rpc, ""))
    regenerated = svcgen("generate", project)
    assert regenerated.returncode == 0, regenerated.stderr
    assert not {r for r in policy_resources(task_policy(project)) if "/index/" in r}
    assert stub.read_text() == stub_text
    assert "src/rpc/archive_item.rs no longer serves an RPC" in regenerated.stderr
    assert "mod archive_item;" not in (project / "src/rpc/mod.rs").read_text()
    assert {path: (project / path).read_bytes() for path in USER_FILES} == user_before
    built = cargo(project)
    assert built.returncode == 0, built.stderr
