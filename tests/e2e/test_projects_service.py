"""The golden `projects` service (two entities in one table, sharing the overloaded index `gsi1`;
a delete, an update, a TTL, a descending list and a hand-written RPC) end to end through Python
grpcio stubs, on the embedded store and on DynamoDB (moto).

The service is the golden project as `svcgen generate` writes it, copied out of the repository
with a hand-written `check_create_project` hook and `ArchiveProject` RPC added, the way a user
completes it; it builds with its own vendored runtime and lockfile into this repository's target
directory (the crates.io dependencies built there are reused)."""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2

from conftest import ROOT, SVCGEN, Service, cargo, dynamodb_env

GOLDEN = ROOT / "codegen" / "tests" / "golden" / "projects"
PROTO = "acme/projects/v1/projects.proto"
PACKAGE = "projects-e2e"  # not the golden's package name: its binary is the workspace's

HANDLER = '''//! Hand-written: the caller named in `x-user` owns what it creates; project names are required.

use svcgen_runtime::RequestContext;
use tonic::Status;

use crate::generated::{self, acme::projects::v1::CreateProjectRequest};

#[derive(Clone, Copy, Debug, Default)]
pub struct Handler;

impl generated::ProjectServiceHandler for Handler {
    fn prepare_create_project(
        &self,
        context: &RequestContext,
        request: &mut CreateProjectRequest,
    ) -> Result<(), Status> {
        let Some(user) = context.metadata().get("x-user") else {
            return Ok(());
        };
        let user = user
            .to_str()
            .map_err(|_| Status::invalid_argument("x-user is not text"))?;
        if context.remote_addr().is_none() {
            return Err(Status::internal("no peer address"));
        }
        if let Some(project) = request.project.as_mut() {
            project.owner = user.to_owned();
        }
        Ok(())
    }

    fn check_create_project(&self, request: &CreateProjectRequest) -> Result<(), Status> {
        match &request.project {
            Some(project) if project.name.trim().is_empty() => {
                Err(Status::invalid_argument("a project needs a name"))
            }
            _ => Ok(()),
        }
    }
}
'''

ARCHIVE = '''//! Hand-written: archiving sets `settings.archived`, through the store calls the proto declares.

use tonic::{Request, Response, Status};

use crate::generated;
use crate::handler::Handler;

impl generated::ArchiveProjectRpc for Handler {
    async fn archive_project(
        &self,
        store: &generated::ArchiveProjectStore,
        request: Request<generated::acme::projects::v1::ArchiveProjectRequest>,
    ) -> Result<Response<generated::acme::projects::v1::Project>, Status> {
        let request = request.into_inner();
        let mut project = store.project.get(request.org_id, request.id).await?;
        project.settings.get_or_insert_with(Default::default).archived = true;
        let archived = store.project.update(&project, &["settings".to_owned()]).await?;
        UNDECLARED
        Ok(Response::new(archived))
    }
}
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The golden project outside the repository, completed by hand and built."""
    project = tmp_path_factory.mktemp("projects") / "projects"
    shutil.copytree(GOLDEN, project)
    config = project / "svcgen.toml"
    text = config.read_text()
    # Outside svcgen's workspace the project uses its vendored runtime, the default.
    config.write_text(text[: text.index("\n# Built in svcgen's workspace")] + "\n")
    generated = subprocess.run([str(SVCGEN), "generate", str(project)], capture_output=True, text=True, timeout=60)
    assert generated.returncode == 0, generated.stderr
    assert (project / "Cargo.lock").is_file() and (project / "vendor" / "svcgen-runtime").is_dir()
    manifest = project / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace('name = "projects-svc"', f'name = "{PACKAGE}"', 1))
    (project / "src" / "handler.rs").write_text(HANDLER)
    (project / "src" / "rpc" / "archive_project.rs").write_text(ARCHIVE.replace("UNDECLARED", ""))
    built = cargo(project, "build")
    assert built.returncode == 0, built.stderr
    return project



@pytest.fixture(scope="module")
def pb(project):
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="svcgen-projects-stubs-")
    well_known = str(Path(grpc_tools.__file__).parent / "_proto")
    for proto in ["svcgen/options.proto", PROTO]:
        code = protoc.main(["protoc", f"-I{project / 'proto'}", f"-I{ROOT / 'proto'}", f"-I{well_known}",
                            f"--python_out={out}", f"--grpc_python_out={out}", proto])
        assert code == 0, f"protoc failed for {proto}"
    sys.path.insert(0, out)
    from acme.projects.v1 import projects_pb2, projects_pb2_grpc

    return projects_pb2, projects_pb2_grpc


@pytest.fixture(params=["local", "dynamodb"])
def client(request, project, pb, tmp_path):
    backend = {} if request.param == "local" else dynamodb_env(project, "main")
    service = Service(tmp_path / "data", backend, binary=ROOT / "target" / "debug" / PACKAGE).start()
    try:
        with service.channel() as channel:
            yield pb[1].ProjectServiceStub(channel)
    finally:
        if service.process.poll() is None:
            service.stop()


def code_of(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details()


def eventually(read, expected, timeout=5.0):
    """Polls `read()` until it returns `expected` (indexes are eventually consistent on DynamoDB)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            assert value == expected
            return value
        time.sleep(0.05)


def create(client, pb, **fields):
    return client.CreateProject(pb[0].CreateProjectRequest(project=pb[0].Project(**fields)))


def test_delete_with_a_stale_version_is_refused_and_without_a_version_is_not(client, pb):
    messages = pb[0]
    project = create(client, pb, org_id="o1", owner="ada", name="one")
    stale = messages.DeleteProjectRequest(org_id="o1", id=project.id, version=project.version + 1)
    assert code_of(lambda: client.DeleteProject(stale))[0] == grpc.StatusCode.ABORTED
    assert client.GetProject(messages.GetProjectRequest(org_id="o1", id=project.id)) == project
    client.DeleteProject(messages.DeleteProjectRequest(org_id="o1", id=project.id, version=project.version))
    gone = lambda: client.GetProject(messages.GetProjectRequest(org_id="o1", id=project.id))  # noqa: E731
    assert code_of(gone)[0] == grpc.StatusCode.NOT_FOUND

    unversioned = create(client, pb, org_id="o1", owner="ada", name="two")
    client.DeleteProject(messages.DeleteProjectRequest(org_id="o1", id=unversioned.id))
    assert code_of(lambda: client.GetProject(messages.GetProjectRequest(org_id="o1", id=unversioned.id)))[0] \
        == grpc.StatusCode.NOT_FOUND


def test_an_empty_update_mask_updates_every_mutable_field(client, pb):
    messages = pb[0]
    project = create(client, pb, org_id="o1", owner="ada", name="before", quota=1, description="d")
    change = messages.Project(org_id="o1", id=project.id, owner="bob", name="after", quota=7,
                              version=project.version, tier=messages.TIER_TEAM)
    updated = client.UpdateProject(messages.UpdateProjectRequest(project=change))
    assert (updated.owner, updated.name, updated.quota, updated.tier) == ("bob", "after", 7, messages.TIER_TEAM)
    assert not updated.HasField("description"), "an empty mask replaces every mutable field"
    assert updated.version == project.version + 1
    # The index key moved with `owner`.
    owned = lambda owner: [p.id for p in client.ListOwnedProjects(messages.ListOwnedProjectsRequest(owner=owner)).projects]  # noqa: E731
    eventually(lambda: owned("bob"), [project.id])
    eventually(lambda: owned("ada"), [])
    masked = messages.Project(org_id="o1", id=project.id, name="masked", quota=99, version=updated.version)
    again = client.UpdateProject(messages.UpdateProjectRequest(
        project=masked, update_mask=field_mask_pb2.FieldMask(paths=["name"])))
    assert (again.name, again.quota, again.owner) == ("masked", 7, "bob")


def test_the_shared_index_returns_only_its_entity_newest_first(client, pb):
    messages = pb[0]
    ids = [create(client, pb, org_id="o2", owner="u1", name=f"p{i}").id for i in range(4)]
    # A member whose index partition is the same `OWNER#u1`, and one whose user id spells more.
    for user in ["u1", "u1#PROJECT", "u1%23x"]:
        client.AddMember(messages.AddMemberRequest(member=messages.Member(project_id=ids[0], user_id=user, role="dev")))
    owned = lambda: [p.id for p in client.ListOwnedProjects(messages.ListOwnedProjectsRequest(owner="u1")).projects]  # noqa: E731
    # Generated ids are time-ordered, so the descending list is newest first.
    eventually(owned, sorted(ids, reverse=True))
    memberships = lambda user: [(m.project_id, m.user_id) for m in client.ListMemberships(  # noqa: E731
        messages.ListMembershipsRequest(user_id=user)).members]
    eventually(lambda: memberships("u1"), [(ids[0], "u1")])
    eventually(lambda: memberships("u1#PROJECT"), [(ids[0], "u1#PROJECT")])
    members = client.ListMembers(messages.ListMembersRequest(project_id=ids[0])).members
    assert sorted(m.user_id for m in members) == ["u1", "u1#PROJECT", "u1%23x"]

    page = client.ListOwnedProjects(messages.ListOwnedProjectsRequest(owner="u1", page_size=3))
    rest = client.ListOwnedProjects(messages.ListOwnedProjectsRequest(owner="u1", page_token=page.next_page_token))
    assert [p.id for p in page.projects] + [p.id for p in rest.projects] == sorted(ids, reverse=True)


def test_expired_members_are_not_listed(client, pb):
    messages = pb[0]
    now = int(time.time())
    for user, expires in [("past", now - 3600), ("future", now + 3600), ("never", None)]:
        member = messages.Member(project_id="p1", user_id=user, role="guest")
        if expires is not None:
            member.expire_time.CopyFrom(timestamp_pb2.Timestamp(seconds=expires))
        client.AddMember(messages.AddMemberRequest(member=member))
    listed = client.ListMembers(messages.ListMembersRequest(project_id="p1")).members
    assert sorted(m.user_id for m in listed) == ["future", "never"]


def test_a_rejecting_check_hook_stops_the_call_before_the_store(client, pb):
    messages = pb[0]
    code, details = code_of(lambda: create(client, pb, org_id="o3", id="fixed", owner="ada", name="  "))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "a project needs a name")
    assert code_of(lambda: client.GetProject(messages.GetProjectRequest(org_id="o3", id="fixed")))[0] \
        == grpc.StatusCode.NOT_FOUND
    assert create(client, pb, org_id="o3", id="fixed", owner="ada", name="named").id == "fixed"


def test_a_prepare_hook_fills_server_owned_fields_from_the_call_context(client, pb):
    """`prepare_create_project` reads the caller from the call's metadata and makes it the owner,
    whatever the request says; without the header the request is left as it is."""
    messages = pb[0]
    request = messages.CreateProjectRequest(project=messages.Project(org_id="o5", owner="mallory", name="mine"))
    owned = client.CreateProject(request, metadata=[("x-user", "ada")])
    assert owned.owner == "ada"
    assert client.GetProject(messages.GetProjectRequest(org_id="o5", id=owned.id)).owner == "ada"
    assert client.CreateProject(request).owner == "mallory"


def test_the_hand_written_rpc_uses_the_generated_repository(client, pb):
    messages = pb[0]
    project = create(client, pb, org_id="o4", owner="ada", name="old")
    archived = client.ArchiveProject(messages.ArchiveProjectRequest(org_id="o4", id=project.id))
    assert archived.settings.archived and archived.version == project.version + 1
    assert client.GetProject(messages.GetProjectRequest(org_id="o4", id=project.id)) == archived
    missing = lambda: client.ArchiveProject(messages.ArchiveProjectRequest(org_id="o4", id="nope"))  # noqa: E731
    assert code_of(missing)[0] == grpc.StatusCode.NOT_FOUND


def test_a_store_call_the_rpc_did_not_declare_does_not_compile(project):
    """`ArchiveProject` declares Project.get, Project.update and Member.ListMembers: a delete in its
    code does not compile, although the task role allows DeleteItem (for DeleteProject): the
    declaration bounds each hand-written RPC, the role the whole service."""
    rpc = project / "src" / "rpc" / "archive_project.rs"
    written = rpc.read_text()
    try:
        undeclared = "store.project.delete(project.org_id.clone(), project.id.clone(), 0).await?;"
        rpc.write_text(ARCHIVE.replace("UNDECLARED", undeclared))
        checked = cargo(project, "check")
        assert checked.returncode != 0
        assert "no method named `delete` found for struct `ArchiveProjectProjectAccess`" in checked.stderr, checked.stderr
    finally:
        rpc.write_text(written)
    policy = (project / "deploy" / "iam" / "task-role-policy.json").read_text()
    assert "dynamodb:DeleteItem" in policy, "DeleteProject, a generated RPC, still deletes"
