"""The golden `projects` service (two entities in one table, sharing the overloaded index `gsi1`;
a delete, an update, a TTL, a descending list, a hand-written unary RPC and three hand-written
streaming ones) end to end through Python grpcio stubs, on the embedded store and on DynamoDB (moto).

The service is the golden project as `svcgen generate` writes it, copied out of the repository
and completed the way a user does: hooks in `src/handler.rs`, the hand-written RPCs under
`src/rpc/`, and a `main.rs` that composes the server (an authentication layer, a hand-written
tonic service beside the generated one, a health check of its own); it builds with its own vendored runtime and lockfile into this repository's target
directory (the crates.io dependencies built there are reused)."""

import collections
import concurrent.futures
import json
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from conftest import ROOT, SVCGEN, Service, cargo, dynamodb_env, health_status

GOLDEN = ROOT / "codegen" / "tests" / "golden" / "projects"
PROTO = "acme/projects/v1/projects.proto"
PACKAGE = "projects-e2e"  # not the golden's package name: its binary is the workspace's

MAIN = '''//! Hand-written: every call needs `authorization: Bearer <caller>` (the layer puts the caller
//! in the call's extensions), an admin service answers beside the generated one, and the
//! `maintenance` health check fails while `$DATA_DIR/maintenance` exists.

#[rustfmt::skip] // svcgen formats generated code itself
mod generated;
mod handler;
mod rpc;

use std::time::Duration;

use tonic::{Request, Status};

/// Who a call's bearer token names.
#[derive(Clone, Debug)]
pub struct Caller(pub String);

fn authenticate(mut request: Request<()>) -> Result<Request<()>, Status> {
    let caller = request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .filter(|caller| !caller.is_empty())
        .map(str::to_owned);
    match caller {
        Some(caller) => {
            request.extensions_mut().insert(Caller(caller));
            Ok(request)
        }
        None => Err(Status::unauthenticated("a bearer token is required")),
    }
}

mod admin {
    //! `acme.admin.v1.Admin/Ping` (Empty to Empty), written against tonic directly.
    use std::convert::Infallible;
    use std::task::{Context, Poll};

    use tonic::body::Body;
    use tonic::codegen::{BoxFuture, Service, http};
    use tonic::server::{Grpc, NamedService, UnaryService};
    use tonic::{Request, Response, Status};

    #[derive(Clone, Debug)]
    pub struct Admin;

    impl NamedService for Admin {
        const NAME: &'static str = "acme.admin.v1.Admin";
    }

    struct Ping;

    impl UnaryService<()> for Ping {
        type Response = ();
        type Future = BoxFuture<Response<()>, Status>;

        fn call(&mut self, _: Request<()>) -> Self::Future {
            Box::pin(async { Ok(Response::new(())) })
        }
    }

    impl Service<http::Request<Body>> for Admin {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Infallible>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            Box::pin(async move {
                if request.uri().path() != "/acme.admin.v1.Admin/Ping" {
                    return Ok(Status::unimplemented("no such method").into_http());
                }
                let mut grpc = Grpc::new(tonic_prost::ProstCodec::<(), ()>::default());
                Ok(grpc.unary(Ping, request).await)
            })
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let data_dir = std::env::var("DATA_DIR").unwrap_or_else(|_| "./data".to_owned());
    let flag = std::path::Path::new(&data_dir).join("maintenance");
    let mut server = generated::server(handler::Handler)
        .layer(tonic::service::InterceptorLayer::new(authenticate))
        .add_service(admin::Admin)
        .health_check("maintenance", Duration::from_millis(100), move || {
            let down = flag.exists();
            async move { if down { Err("in maintenance".to_owned()) } else { Ok(()) } }
        });
    if std::env::var_os("CHECK_TWICE").is_some() {
        server = server.health_check("maintenance", Duration::from_secs(1), || async { Ok(()) });
    }
    server.serve().await
}
'''

HANDLER = '''//! Hand-written: a project without an owner is owned by the authenticated caller, the one named
//! in `x-user` owns what it creates; project names are required.

use svcgen_runtime::RequestContext;
use tonic::Status;

use crate::Caller;
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
            let caller = context.extensions().get::<Caller>();
            match (request.project.as_mut(), caller) {
                (Some(project), Some(Caller(caller))) if project.owner.is_empty() => {
                    project.owner = caller.clone();
                }
                _ => {}
            }
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

STREAMS = {
    "watch_project.rs": '''//! Hand-written: the project, then the project again whenever its version changes (polled).

use std::time::Duration;

use tonic::{Request, Response, Status};

use crate::generated::{self, ResponseStream, acme::projects::v1::GetProjectRequest};
use crate::handler::Handler;

impl generated::WatchProjectRpc for Handler {
    async fn watch_project(
        &self,
        store: generated::WatchProjectStore,
        request: Request<GetProjectRequest>,
    ) -> Result<Response<ResponseStream<generated::acme::projects::v1::Project>>, Status> {
        let GetProjectRequest { org_id, id } = request.into_inner();
        let first = store.project.get(org_id.clone(), id.clone()).await?;
        let (sender, stream) = generated::response_channel(4);
        generated::spawn_in_call(async move {
            let mut version = first.version;
            if sender.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                tokio::select! {
                    () = sender.closed() => return,
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                let reply = match store.project.get(org_id.clone(), id.clone()).await {
                    Ok(project) if project.version == version => continue,
                    Ok(project) => {
                        version = project.version;
                        Ok(project)
                    }
                    Err(error) => Err(Status::from(error)),
                };
                let last = reply.is_err();
                if sender.send(reply).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}
''',
    "import_projects.rs": '''//! Hand-written: creates each project the client streams.

use tonic::{Request, Response, Status, Streaming};

use crate::generated::{self, acme::projects::v1::{CreateProjectRequest, ImportProjectsResponse}};
use crate::handler::Handler;

impl generated::ImportProjectsRpc for Handler {
    async fn import_projects(
        &self,
        store: &generated::ImportProjectsStore,
        request: Request<Streaming<CreateProjectRequest>>,
    ) -> Result<Response<ImportProjectsResponse>, Status> {
        let mut requests = request.into_inner();
        let mut created = 0;
        while let Some(request) = requests.message().await? {
            let project = request
                .project
                .ok_or_else(|| Status::invalid_argument("`project` is required"))?;
            store.project.create(project).await?;
            created += 1;
        }
        Ok(Response::new(ImportProjectsResponse { created }))
    }
}
''',
    "get_projects.rs": '''//! Hand-written: answers each request of the client's stream with its project, in order.

use tonic::{Request, Response, Status, Streaming};

use crate::generated::{self, ResponseStream, acme::projects::v1::{GetProjectRequest, Project}};
use crate::handler::Handler;

impl generated::GetProjectsRpc for Handler {
    async fn get_projects(
        &self,
        store: generated::GetProjectsStore,
        request: Request<Streaming<GetProjectRequest>>,
    ) -> Result<Response<ResponseStream<Project>>, Status> {
        let mut requests = request.into_inner();
        let (sender, stream) = generated::response_channel(4);
        generated::spawn_in_call(async move {
            loop {
                let reply = match requests.message().await {
                    Ok(Some(request)) => store
                        .project
                        .get(request.org_id, request.id)
                        .await
                        .map_err(Status::from),
                    Ok(None) => return,
                    Err(status) => Err(status),
                };
                let last = reply.is_err();
                if sender.send(reply).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}
''',
}

TRANSACTION = '''//! Hand-written: the project and its owner's membership in one transaction.

use tonic::{Request, Response, Status};

use crate::generated::{self, Transaction, acme::projects::v1::{CreateProjectRequest, Member, Project}};
use crate::handler::Handler;

impl generated::CreateProjectWithOwnerRpc for Handler {
    async fn create_project_with_owner(
        &self,
        store: &generated::CreateProjectWithOwnerStore,
        request: Request<CreateProjectRequest>,
    ) -> Result<Response<Project>, Status> {
        let project = request
            .into_inner()
            .project
            .ok_or_else(|| Status::invalid_argument("`project` is required"))?;
        let mut transaction = Transaction::new();
        let project = store.project.create_in(&mut transaction, project)?;
        let owner = Member {
            project_id: project.id.clone(),
            user_id: project.owner.clone(),
            role: "owner".to_owned(),
            ..Default::default()
        };
        store.member.create_in(&mut transaction, owner)?;
        transaction.commit().await?;
        Ok(Response::new(project))
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
    (project / "src" / "main.rs").write_text(MAIN)
    (project / "src" / "handler.rs").write_text(HANDLER)
    for name, code in STREAMS.items():
        (project / "src" / "rpc" / name).write_text(code)
    (project / "src" / "rpc" / "create_project_with_owner.rs").write_text(TRANSACTION)
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


TOKEN = ("authorization", "Bearer tester")
BINARY = ROOT / "target" / "debug" / PACKAGE


class _Details(collections.namedtuple("_Details", "method timeout metadata credentials wait_for_ready compression"),
               grpc.ClientCallDetails):
    pass


class Authenticated(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                    grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Sends the bearer token with every call, as the service's clients do."""

    def _call(self, continuation, details, request):
        metadata = list(details.metadata or []) + [TOKEN]
        return continuation(_Details(details.method, details.timeout, metadata, details.credentials,
                                     details.wait_for_ready, details.compression), request)

    intercept_unary_unary = intercept_unary_stream = _call
    intercept_stream_unary = intercept_stream_stream = _call


def task_policy(project):
    return project / "deploy" / "iam" / "task-role-policy.json"


@pytest.fixture(params=["local", "dynamodb"])
def service(request, project, tmp_path):
    """The service on either backend, enforcing its generated task role policy on every store
    call: every test below also proves the policy allows what the code (hand-written included)
    does."""
    backend = {} if request.param == "local" else dynamodb_env(project, "main")
    enforce = {"SVCGEN_TASK_POLICY": str(task_policy(project))}
    service = Service(tmp_path / "data", backend, enforce, binary=BINARY).start()
    try:
        yield service
    finally:
        if service.process.poll() is None:
            service.stop()


@pytest.fixture
def client(service, pb):
    channel = grpc.intercept_channel(service.channel(), Authenticated())
    try:
        yield pb[1].ProjectServiceStub(channel)
    finally:
        channel.close()


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
    archived = client.ArchiveProject(messages.ArchiveProjectRequest(org_id="o4", id=project.id, tags=["cleanup"]))
    assert archived.settings.archived and archived.version == project.version + 1
    assert client.GetProject(messages.GetProjectRequest(org_id="o4", id=project.id)) == archived
    missing = lambda: client.ArchiveProject(messages.ArchiveProjectRequest(org_id="o4", id="nope", tags=["x"]))  # noqa: E731
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


def test_calls_need_a_token_but_health_checks_do_not(service, pb):
    """The layer added in main.rs guards the generated service and the hand-written admin service;
    health (what the load balancer calls) and reflection stay outside it."""
    messages = pb[0]
    with service.channel() as channel:
        anonymous = pb[1].ProjectServiceStub(channel)
        refused = code_of(lambda: anonymous.GetProject(messages.GetProjectRequest(org_id="o", id="x")))
        assert refused == (grpc.StatusCode.UNAUTHENTICATED, "a bearer token is required")
        ping = channel.unary_unary("/acme.admin.v1.Admin/Ping", request_serializer=empty_pb2.Empty.SerializeToString,
                                   response_deserializer=empty_pb2.Empty.FromString)
        assert code_of(lambda: ping(empty_pb2.Empty(), timeout=5))[0] == grpc.StatusCode.UNAUTHENTICATED
        assert ping(empty_pb2.Empty(), metadata=[TOKEN], timeout=5) == empty_pb2.Empty()
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        assert health_status(channel, "acme.admin.v1.Admin") == health_pb2.HealthCheckResponse.SERVING


def test_a_project_without_owner_is_owned_by_the_authenticated_caller(client, pb):
    messages = pb[0]
    created = client.CreateProject(messages.CreateProjectRequest(project=messages.Project(org_id="o6", name="mine")))
    assert created.owner == "tester"


def test_a_health_check_of_its_own_follows_its_dependency(service):
    service.data_dir.mkdir(parents=True, exist_ok=True)  # the DynamoDB backend does not create it
    flag = service.data_dir / "maintenance"

    def maintenance():
        try:
            return health_status(channel, "maintenance")
        except grpc.RpcError as error:
            return error.code()

    with service.channel() as channel:
        eventually(maintenance, health_pb2.HealthCheckResponse.SERVING)
        flag.touch()
        eventually(maintenance, grpc.StatusCode.UNAVAILABLE)  # NOT_SERVING, as the load balancer reads it
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING, "one dependency is not the server"
        flag.unlink()
        eventually(maintenance, health_pb2.HealthCheckResponse.SERVING)


def test_a_name_checked_twice_is_refused_at_start(project, tmp_path):
    env = {"LISTEN_ADDR": "127.0.0.1:0", "DATA_DIR": str(tmp_path), "CHECK_TWICE": "1", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([str(BINARY)], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2, run.stderr
    assert "`maintenance` is served or checked twice" in run.stderr


def test_client_and_bidirectional_streams(client, pb):
    messages = pb[0]
    projects = [messages.Project(org_id="o7", id=f"i{n}", owner="ada", name=f"n{n}") for n in range(3)]
    imported = client.ImportProjects(iter([messages.CreateProjectRequest(project=p) for p in projects]), timeout=10)
    assert imported.created == 3
    gets = [messages.GetProjectRequest(org_id="o7", id=i) for i in ["i2", "i0", "i1"]]
    assert [p.name for p in client.GetProjects(iter(gets), timeout=10)] == ["n2", "n0", "n1"]
    missing = client.GetProjects(iter([gets[0], messages.GetProjectRequest(org_id="o7", id="nope")]), timeout=10)
    assert next(missing).name == "n2"
    assert code_of(lambda: next(missing))[0] == grpc.StatusCode.NOT_FOUND


def test_a_stream_s_store_requests_are_children_of_its_span(project, pb, tmp_path):
    """Exported over OTLP, a streaming call's server span holds a client span per store request,
    those its spawned task makes included (`spawn_in_call`), and ends after them; its log line
    counts them."""
    from otlp_receiver import Receiver

    messages, stubs = pb
    with Receiver() as receiver:
        env = {"SVCGEN_TASK_POLICY": str(task_policy(project)), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        service = Service(tmp_path / "data", {}, env, binary=BINARY).start()
        try:
            with service.channel() as channel:
                client = stubs.ProjectServiceStub(grpc.intercept_channel(channel, Authenticated()))
                projects = [messages.Project(org_id="o9", id=f"s{n}", owner="ada", name=f"s{n}") for n in range(2)]
                assert client.ImportProjects(iter([messages.CreateProjectRequest(project=p) for p in projects]),
                                             timeout=10).created == 2
                gets = [messages.GetProjectRequest(org_id="o9", id=p.id) for p in projects]
                assert [p.name for p in client.GetProjects(iter(gets), timeout=10)] == ["s0", "s1"]
        finally:
            assert service.stop() == 0
        spans = receiver.spans()
    lines = [json.loads(line) for line in service.log if '"svcgen::access"' in line]
    for method, operation in [("ImportProjects", "LocalStore.PutItem"), ("GetProjects", "LocalStore.GetItem")]:
        (server,) = [s for s in spans if s.name == f"acme.projects.v1.ProjectService/{method}"]
        children = [s for s in spans if s.parent_span_id == server.span_id and s.kind == "SPAN_KIND_CLIENT"]
        assert [s.name for s in children] == [operation] * 2, (method, spans)
        assert all(server.start_ns <= c.start_ns and c.end_ns <= server.end_ns for c in children)
        (line,) = [line for line in lines if line["rpc"].endswith(f"/{method}")]
        assert (line["store_calls"], line["trace_id"]) == (2, server.trace_id)


def test_a_server_stream_sends_each_change(client, pb):
    messages = pb[0]
    project = create(client, pb, org_id="o8", owner="ada", name="before")
    watch = client.WatchProject(messages.GetProjectRequest(org_id="o8", id=project.id), timeout=20)
    try:
        assert next(watch) == project
        change = messages.Project(org_id="o8", id=project.id, name="after", version=project.version)
        updated = client.UpdateProject(messages.UpdateProjectRequest(
            project=change, update_mask=field_mask_pb2.FieldMask(paths=["name"])))
        assert next(watch) == updated
    finally:
        watch.cancel()


def test_streams_in_flight_at_sigterm_drain(project, pb, tmp_path):
    """After SIGTERM a bidirectional stream keeps being answered until its client ends it (status
    OK), while a watch that would never end and an import whose client never stops sending are
    ended with UNAVAILABLE shortly before the drain timeout, so the process still exits 0 (a
    drain that timed out exits 1)."""
    messages = pb[0]
    service = Service(tmp_path / "data", {"SHUTDOWN_TIMEOUT_SECS": "4"}, binary=BINARY).start()
    channel = grpc.intercept_channel(service.channel(), Authenticated())
    imports = queue.Queue()
    try:
        stub = pb[1].ProjectServiceStub(channel)
        project = create(stub, pb, org_id="o9", owner="ada", name="watched")
        get = messages.GetProjectRequest(org_id="o9", id=project.id)
        watch = stub.WatchProject(get, timeout=30)
        assert next(watch) == project
        requests = queue.Queue()
        gets = stub.GetProjects(iter(requests.get, None), timeout=30)
        requests.put(get)
        assert next(gets) == project
        importing = stub.ImportProjects.future(iter(imports.get, None), timeout=30)
        imports.put(messages.CreateProjectRequest(project=messages.Project(org_id="o9", owner="ada", name="streamed")))

        sigterm = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        deadline = sigterm + 10
        # The service's log is read into service.log as it is written: poll it, bounded.
        while time.monotonic() < deadline:
            if any('"shutting down: draining in-flight calls"' in line for line in service.log):
                break
            if service.process.poll() is not None:
                pytest.fail("the service exited before it reported draining")
            time.sleep(0.01)
        else:
            pytest.fail("the service did not report draining")
        requests.put(get)
        assert next(gets) == project, "a stream in flight is still answered while the server drains"
        requests.put(None)
        assert list(gets) == [] and gets.code() == grpc.StatusCode.OK

        with pytest.raises(grpc.RpcError) as ended:
            next(watch)
        assert (ended.value.code(), ended.value.details()) == \
            (grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry the call")
        assert time.monotonic() - sigterm >= 3 - 0.1, "streams get the drain timeout less a second"
        # A call still reading its client's stream is answered the same way.
        with pytest.raises(grpc.RpcError) as cut:
            importing.result(timeout=10)
        assert (cut.value.code(), cut.value.details()) == \
            (grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry the call")
        assert service.process.wait(timeout=10) == 0
    finally:
        imports.put(None)  # ends the request iterator's thread
        channel.close()
        if service.process.poll() is None:
            service.stop(signal.SIGKILL)


def bad_request(call):
    """The field violations of the google.rpc.BadRequest detail of the INVALID_ARGUMENT `call` raises."""
    with pytest.raises(grpc.RpcError) as error:
        call()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    status = rpc_status.from_call(error.value)
    assert status is not None, "no google.rpc.Status in the trailers"
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            found = error_details_pb2.BadRequest()
            detail.Unpack(found)
            return [(v.field, v.description) for v in found.field_violations]
    pytest.fail(f"no BadRequest detail in {status}")


def test_every_violation_of_a_request_is_reported_at_once_and_nothing_is_written(client, pb):
    messages = pb[0]
    project = messages.Project(
        org_id="o10", owner="rules", description="x" * 501, counters={f"c{i}": i for i in range(6)},
        settings=messages.Settings(labels={f"k{i}": "v" for i in range(4)}),
        history=[messages.Settings(), messages.Settings(labels={f"k{i}": "v" for i in range(4)})])
    found = bad_request(lambda: client.CreateProject(messages.CreateProjectRequest(project=project)))
    assert found == [
        ("project.name", "value is required"),
        ("project.description", "value length must be at most 500 characters"),
        ("project.settings.labels", "value must contain no more than 3 item(s)"),
        ("project.history[1].labels", "value must contain no more than 3 item(s)"),
        ("project.counters", "value must contain no more than 5 item(s)"),
    ]
    owned = client.ListOwnedProjects(messages.ListOwnedProjectsRequest(owner="rules"))
    assert list(owned.projects) == []
    # At the limits, the same request passes ("é" is one character, two bytes).
    project.name, project.description = "n" * 100, "é" * 500
    project.counters.clear()
    project.settings.labels.clear()
    del project.history[1]
    assert client.CreateProject(messages.CreateProjectRequest(project=project)).description == "é" * 500


def test_output_only_fields_are_ignored_and_immutable_ones_refused_in_updates(client, pb):
    messages = pb[0]
    created = client.CreateProject(messages.CreateProjectRequest(project=messages.Project(
        org_id="o11", owner="ada", name="n", logo=b"L", create_time=timestamp_pb2.Timestamp(seconds=5))))
    assert not created.HasField("create_time"), "an output-only field is the server's to set"
    update = lambda project, paths=None: client.UpdateProject(messages.UpdateProjectRequest(  # noqa: E731
        project=project, update_mask=field_mask_pb2.FieldMask(paths=paths or [])))
    key = dict(org_id="o11", id=created.id)

    refused = bad_request(lambda: update(messages.Project(**key, logo=b"M"), ["logo", "name"]))
    assert refused == [("update_mask", "`logo` is immutable: it cannot change after create"),
                       ("project.name", "value is required")]
    # Only the fields the mask names are checked: `name` is required but not being updated.
    quota = update(messages.Project(**key, quota=3), ["quota"])
    assert (quota.quota, quota.name) == (3, "n")
    # An output-only field in the mask is ignored; an empty mask leaves immutable fields alone.
    renamed = update(messages.Project(**key, name="m", create_time=timestamp_pb2.Timestamp(seconds=9)),
                     ["create_time", "name"])
    assert renamed.name == "m" and not renamed.HasField("create_time")
    everything = update(messages.Project(**key, name="all", version=renamed.version))
    assert (everything.name, everything.logo, everything.quota) == ("all", b"L", 0)
    assert bad_request(lambda: update(messages.Project(**key), ["name"])) == [("project.name", "value is required")]
    # A mask naming nothing but output-only fields is not read as "every field".
    only_server_owned = messages.Project(**key, create_time=timestamp_pb2.Timestamp(seconds=1))
    assert bad_request(lambda: update(only_server_owned, ["create_time"])) == \
        [("update_mask", "names only output-only fields: there is nothing to update")]
    assert client.GetProject(messages.GetProjectRequest(**key)).name == "all"


def test_a_hand_written_rpc_s_request_is_checked_before_its_code_runs(client, pb):
    messages = pb[0]
    request = messages.ArchiveProjectRequest(
        id="x", notify_email="not-an-email", request_id="nope", reason="Hi", priority=9, urgency=7, weight=0.1)
    assert bad_request(lambda: client.ArchiveProject(request)) == [
        ("org_id", "value is required"),
        ("notify_email", "value must be a valid email address"),
        ("request_id", "value must be a valid UUID"),
        ("reason", "value length must be at least 3 characters"),
        ("reason", "value does not match regex pattern `^[a-z ]+$`"),
        ("tags", "value must contain at least 1 item(s)"),
        ("priority", "value must be less than or equal to 5"),
        ("urgency", "value must be one of the defined enum values"),
        ("weight", "value must be greater than or equal to 0.5"),
    ]
    valid = messages.ArchiveProjectRequest(
        org_id="o12", id="missing", notify_email="ops@example.com", request_id="0190c2a4-7d1e-7000-8000-00000000000a",
        reason="quarterly cleanup", tags=["a", "b"], priority=5, urgency=messages.ArchiveProjectRequest.URGENCY_HIGH,
        weight=2)
    assert code_of(lambda: client.ArchiveProject(valid))[0] == grpc.StatusCode.NOT_FOUND, "checked, then run"


def test_a_transaction_writes_all_or_nothing(client, pb):
    messages = pb[0]
    with_owner = lambda **fields: client.CreateProjectWithOwner(  # noqa: E731
        messages.CreateProjectRequest(project=messages.Project(org_id="o13", **fields)))
    created = with_owner(owner="ada", name="together")
    members = client.ListMembers(messages.ListMembersRequest(project_id=created.id)).members
    assert [(m.user_id, m.role) for m in members] == [("ada", "owner")]
    # The membership exists already: write 2 of 2 fails, so write 1 (the project) is undone.
    client.AddMember(messages.AddMemberRequest(member=messages.Member(project_id="tx", user_id="bob", role="dev")))
    code, details = code_of(lambda: with_owner(id="tx", owner="bob", name="second"))
    assert (code, details) == (grpc.StatusCode.ALREADY_EXISTS,
                               "transaction write 2 of 2 failed, nothing was written: Member already exists")
    assert code_of(lambda: client.GetProject(messages.GetProjectRequest(org_id="o13", id="tx")))[0] \
        == grpc.StatusCode.NOT_FOUND


def test_a_uniqueness_constraint_holds_under_concurrent_creators(client, pb, request):
    """16 creators of one project id, each its own owner: exactly one project and one membership.
    moto applies transactions without isolation (it restores a table copy on failure, see
    NOTES), so there the 16 calls run one after another; the embedded store gets them at once."""
    messages = pb[0]
    at_once = "dynamodb" not in request.node.callspec.id

    def create(i):
        try:
            client.CreateProjectWithOwner(messages.CreateProjectRequest(
                project=messages.Project(org_id="o14", id="contested", owner=f"user{i}", name=f"n{i}")), timeout=30)
            return f"user{i}"
        except grpc.RpcError as error:
            return error.code(), error.details()

    with concurrent.futures.ThreadPoolExecutor(max_workers=16 if at_once else 1) as pool:
        outcomes = list(pool.map(create, range(16)))
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1, outcomes
    losers = [o for o in outcomes if not isinstance(o, str)]
    assert all(o == (grpc.StatusCode.ALREADY_EXISTS,
                     "transaction write 1 of 2 failed, nothing was written: Project already exists")
               for o in losers), losers
    members = client.ListMembers(messages.ListMembersRequest(project_id="contested")).members
    assert [m.user_id for m in members] == winners


def test_a_call_the_task_policy_does_not_allow_fails_as_on_aws(project, pb, tmp_path):
    """With a policy that lacks DeleteItem (as a role edited by hand, or fetched from the account,
    might), DeleteProject fails with INTERNAL and the log names the denied action, before the
    store is touched; the calls the policy allows go on working."""
    messages = pb[0]
    policy = json.loads(task_policy(project).read_text())
    for statement in policy["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "dynamodb:DeleteItem"]
    narrowed = tmp_path / "policy.json"
    narrowed.write_text(json.dumps(policy))
    service = Service(tmp_path / "data", {"SVCGEN_TASK_POLICY": str(narrowed)}, binary=BINARY).start()
    channel = grpc.intercept_channel(service.channel(), Authenticated())
    try:
        stub = pb[1].ProjectServiceStub(channel)
        project_ = create(stub, pb, org_id="o15", owner="ada", name="kept")
        delete = messages.DeleteProjectRequest(org_id="o15", id=project_.id)
        assert code_of(lambda: stub.DeleteProject(delete)) == (grpc.StatusCode.INTERNAL, "internal error")
        assert stub.GetProject(messages.GetProjectRequest(org_id="o15", id=project_.id)) == project_
    finally:
        channel.close()
        assert service.stop() == 0
    denied = [line for line in service.log if "AccessDenied: dynamodb:DeleteItem on table/main" in line]
    assert denied, service.log


def test_an_unreadable_task_policy_stops_the_start(project, tmp_path):
    broken = tmp_path / "policy.json"
    broken.write_text("{}")
    env = {"LISTEN_ADDR": "127.0.0.1:0", "DATA_DIR": str(tmp_path), "SVCGEN_TASK_POLICY": str(broken),
           "PATH": "/usr/bin:/bin"}
    run = subprocess.run([str(BINARY)], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2, run.stderr
    assert "SVCGEN_TASK_POLICY" in run.stderr and "no Statement" in run.stderr
