"""`svcgen verify` (step 11 of `svcgen deploy`): the generated task service on the embedded
store, behind a stand-in for the load balancer's HTTPS listener — a grpcio server with TLS
(a certificate for the project's `[deploy] domain` from a CA of the test's own, trusted by
svcgen through SSL_CERT_FILE) that forwards only the paths of the generated listener rule, as
the rule would. What stays unproven here: a real ALB, its host-header matching (the stand-in
has one host) and public DNS (svcgen connects with --address, keeping the domain for TLS and
the :authority header)."""

import datetime
import json
import shlex
import shutil
import subprocess
from concurrent import futures

import grpc
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import ROOT, SVCGEN, Service

DOMAIN = "tasks.example.com"


def issue(directory, name):
    """A CA (written to ca.pem) and a key + certificate for `name` signed by it."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, issuer, key, signer, ca):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svcgen test CA")])
    ca = certificate(ca_name, ca_name, ca_key, ca_key, True)
    leaf = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_name, key, ca_key, False)
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, leaf.public_bytes(pem)


class Listener(grpc.GenericRpcHandler):
    """Forwards unary calls whose path matches one of `patterns` (`/pkg.Service/*`) to
    `backend`, bytes unchanged; any other path is unrouted (the listener's default action)."""

    def __init__(self, backend, patterns):
        self.backend, self.patterns, self.calls = backend, patterns, []

    def service(self, details):
        method = details.method
        if not any(method.startswith(p.rstrip("*")) for p in self.patterns):
            return None

        def forward(request, context):
            self.calls.append((method, request))
            try:
                return self.backend.unary_unary(method)(request, timeout=10)
            except grpc.RpcError as error:
                context.abort(error.code(), error.details())

        return grpc.unary_unary_rpc_method_handler(forward)


class CfnLoader(yaml.SafeLoader):
    pass


for tag in ["!Ref", "!GetAtt", "!Sub", "!If", "!Not", "!Equals", "!Join", "!Select", "!Split"]:
    CfnLoader.add_constructor(tag, lambda loader, node: None)


def rule_paths(project):
    template = yaml.load((project / "deploy" / "cloudformation.yaml").read_text(), Loader=CfnLoader)
    conditions = {c["Field"]: c for c in template["Resources"]["ListenerRule"]["Properties"]["Conditions"]}
    assert conditions["host-header"]["HostHeaderConfig"]["Values"] == [DOMAIN]
    return conditions["path-pattern"]["PathPatternConfig"]["Values"]


@pytest.fixture
def project(tmp_path):
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copytree(ROOT / "generated-example", tmp_path / "svc", ignore=shutil.ignore_patterns("target", "vendor"))
    config = tmp_path / "svc" / "svcgen.toml"
    config.write_text(config.read_text().replace("[deploy]\n", f'[deploy]\ndomain = "{DOMAIN}"\n'))
    generated = subprocess.run([SVCGEN, "generate", tmp_path / "svc"], capture_output=True, text=True, timeout=60)
    assert generated.returncode == 0, generated.stderr
    return tmp_path / "svc"


@pytest.fixture
def service(data_dir):
    service = Service(data_dir, {}).start()
    yield service
    service.stop()


def listen(service, patterns, key, certificate):
    backend = grpc.insecure_channel(service.address)
    listener = Listener(backend, patterns)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[listener])
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, certificate)]))
    server.start()
    return server, listener, f"127.0.0.1:{port}"


def verify(project, address, ca, *args):
    env = {"SSL_CERT_FILE": str(ca), "PATH": "/usr/bin:/bin"}
    return subprocess.run([SVCGEN, "verify", "--address", address, *args, project], capture_output=True,
                          text=True, timeout=60, env=env)


def test_verify_calls_health_then_the_list_rpc_through_the_listener(project, service, tmp_path, stubs):
    paths = rule_paths(project)
    assert paths == ["/grpc.health.v1.Health/*", "/tasks.TaskService/*"]
    server, listener, address = listen(service, paths, *issue(tmp_path, DOMAIN))
    try:
        result = verify(project, address, tmp_path / "ca.pem")
        assert result.returncode == 0, result.stdout + result.stderr
        verified, command = result.stdout.splitlines()
        assert verified == f"verified: https://{DOMAIN} answered health SERVING and tasks.TaskService/ListTasks OK"
        assert [method for method, _ in listener.calls] == ["/grpc.health.v1.Health/Check",
                                                            "/tasks.TaskService/ListTasks"]
        tasks_pb2, _ = stubs
        request = tasks_pb2.ListTasksRequest.FromString(listener.calls[1][1])
        assert request.project_id == "svcgen-verify"

        # The printed command works as printed, but for where it connects (the stand-in, not
        # the domain's address: --servername keeps the domain for TLS) and the CA it trusts.
        prefix = "call it: buf curl "
        assert command.startswith(prefix) and command.endswith(f" https://{DOMAIN}/tasks.TaskService/ListTasks")
        args = shlex.split(command[len(prefix):].replace(f"https://{DOMAIN}/", f"https://{address}/"))
        called = subprocess.run([ROOT / ".venv" / "bin" / "buf", "curl", "--servername", DOMAIN, *args],
                                capture_output=True, text=True, timeout=60, env={"SSL_CERT_FILE": str(tmp_path / "ca.pem"),
                                                                                 "HOME": str(tmp_path)})
        assert called.returncode == 0, called.stdout + called.stderr
        assert json.loads(called.stdout) == {}  # the project has no tasks yet: an empty page
        assert listener.calls[-1][0] == "/tasks.TaskService/ListTasks"
    finally:
        server.stop(None)


def test_verify_fails_when_the_certificate_is_for_another_name(project, service, tmp_path):
    server, listener, address = listen(service, rule_paths(project), *issue(tmp_path, "other.example.com"))
    try:
        result = verify(project, address, tmp_path / "ca.pem")
    finally:
        server.stop(None)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"verification failed: cannot connect to https://{DOMAIN}" in result.stderr
    assert "certificate" in result.stderr.lower()
    assert listener.calls == []


def test_verify_fails_when_the_rule_does_not_route_the_health_check(project, service, tmp_path):
    server, listener, address = listen(service, ["/tasks.TaskService/*"], *issue(tmp_path, DOMAIN))
    try:
        result = verify(project, address, tmp_path / "ca.pem")
    finally:
        server.stop(None)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"verification failed: health Check through https://{DOMAIN} answered Unimplemented" in result.stderr
    assert listener.calls == []


def test_verify_fails_when_the_list_rpc_fails(project, service, tmp_path):
    """The stand-in's backend is gone after the health check: the list RPC's status fails it."""
    paths = rule_paths(project)
    server, listener, address = listen(service, paths, *issue(tmp_path, DOMAIN))
    original = listener.service

    def health_only(details):
        if details.method.startswith("/tasks."):
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: context.abort(grpc.StatusCode.UNAVAILABLE, "no healthy targets"))
        return original(details)

    listener.service = health_only
    try:
        result = verify(project, address, tmp_path / "ca.pem")
    finally:
        server.stop(None)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "/tasks.TaskService/ListTasks through https://tasks.example.com answered Unavailable: no healthy targets" \
        in result.stderr


def test_verify_needs_a_domain(tmp_path):
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copytree(ROOT / "generated-example", tmp_path / "svc", ignore=shutil.ignore_patterns("target", "vendor"))
    result = subprocess.run([SVCGEN, "verify", tmp_path / "svc"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "svcgen.toml [deploy] domain is not set" in result.stderr
