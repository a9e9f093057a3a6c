"""DynamoDB over TLS, as on AWS: a moto server of its own, serving HTTPS with a certificate issued
by a CA made for this test. `svcgen table create` and task-svc trust that CA through
SSL_CERT_FILE (the variable the image sets to its CA bundle) and work; a task-svc trusting only
the system's bundle refuses the certificate, and its calls fail UNAVAILABLE. With HTTPS_PROXY
set, task-svc tunnels its DynamoDB connections through that proxy (HTTP CONNECT)."""

import datetime
import ipaddress
import os
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.request

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import ROOT, SVCGEN, Service

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def certificate(subject, issuer, key, signer, ca, names=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def https_moto(tmp_path_factory):
    """(endpoint, CA file) of a moto server on 127.0.0.1 serving HTTPS as `localhost`."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("svcgen test CA", "svcgen test CA", ca_key, ca_key, ca=True)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = certificate("localhost", "svcgen test CA", server_key, ca_key, ca=False, names=names)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    moto = subprocess.Popen(
        [ROOT / ".venv" / "bin" / "moto_server", "-H", "127.0.0.1", "-p", str(port),
         "-c", directory / "server.pem", "-k", directory / "server.key"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"https://localhost:{port}"
    trusting = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
                urllib.request.urlopen(request, timeout=5, context=trusting)
                break
            except OSError:
                assert moto.poll() is None, "moto exited during start-up"
                assert time.monotonic() < deadline, "moto did not answer over HTTPS in time"
                time.sleep(0.1)
        yield endpoint, directory / "ca.pem"
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def environment(endpoint, trusted):
    return {
        "TABLE_NAME": "tasks",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "SSL_CERT_FILE": str(trusted),
        # Straight to the server, whatever proxy the machine's environment names.
        "NO_PROXY": "localhost,127.0.0.1",
    }


def fresh_table(endpoint, ca):
    """Empties the server and creates the task table with `svcgen table create`, over TLS."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10, context=ssl.create_default_context(cafile=str(ca)))
    created = subprocess.run([SVCGEN, "table", "create", ROOT / "generated-example"],
                             env=dict(os.environ, **environment(endpoint, ca)),
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    assert "created table tasks" in created.stdout


def create_and_read(service, stubs, project):
    """Starts `service`, creates a task in `project` and reads it back, stops it; the task."""
    pb, grpc_stubs = stubs
    service.start()
    try:
        with service.channel() as channel:
            tasks = grpc_stubs.TaskServiceStub(channel)
            task = tasks.CreateTask(pb.CreateTaskRequest(task=pb.Task(project_id=project, title="stored")), timeout=10)
            assert tasks.GetTask(pb.GetTaskRequest(project_id=project, id=task.id), timeout=10) == task
    finally:
        assert service.stop() == 0
    return task


def test_the_service_reaches_dynamodb_over_tls_and_refuses_a_certificate_it_does_not_trust(https_moto, stubs, tmp_path):
    endpoint, ca = https_moto
    pb, grpc_stubs = stubs
    trusting = environment(endpoint, ca)
    fresh_table(endpoint, ca)

    task = create_and_read(Service(tmp_path / "trusting", trusting), stubs, "tls")

    assert os.path.exists(SYSTEM_BUNDLE), "the system CA bundle (ca-certificates) is missing"
    distrusting = Service(tmp_path / "distrusting", environment(endpoint, SYSTEM_BUNDLE)).start()
    try:
        with distrusting.channel() as channel:
            tasks = grpc_stubs.TaskServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                tasks.GetTask(pb.GetTaskRequest(project_id="tls", id=task.id), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    finally:
        distrusting.stop()
    assert any("certificate" in line.lower() for line in distrusting.log), "".join(distrusting.log)


class ConnectProxy(socketserver.ThreadingTCPServer):
    """An HTTP CONNECT proxy on 127.0.0.1 that records the targets it tunnels to."""

    daemon_threads = True

    def __init__(self):
        self.targets = []
        super().__init__(("127.0.0.1", 0), self.Tunnel)

    class Tunnel(socketserver.BaseRequestHandler):
        def handle(self):
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            self.server.targets.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                self.request.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                back = threading.Thread(target=pipe, args=(upstream, self.request), daemon=True)
                back.start()
                pipe(self.request, upstream)
                back.join(timeout=10)


def pipe(source, destination):
    try:
        while data := source.recv(65536):
            destination.sendall(data)
        destination.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def test_dynamodb_connections_go_through_https_proxy(https_moto, stubs, tmp_path):
    endpoint, ca = https_moto
    proxy = ConnectProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        env = dict(environment(endpoint, ca), HTTPS_PROXY=f"http://127.0.0.1:{proxy.server_address[1]}", NO_PROXY="")
        fresh_table(endpoint, ca)
        create_and_read(Service(tmp_path / "proxied", env), stubs, "proxy")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert proxy.targets and set(proxy.targets) == {endpoint.removeprefix("https://")}, proxy.targets
