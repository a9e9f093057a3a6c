"""The health probe built into the service binary (`task-svc health-probe`, grpc_health_probe's
flags and exit codes) and the health answers during a drain: NOT_SERVING must fail the Check
RPC, because an ALB judges only the status code."""

import signal
import subprocess
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from conftest import BINARY, Service, health_status


def probe(*flags):
    return subprocess.run([str(BINARY), "health-probe", *flags], capture_output=True, text=True, timeout=30)


def test_exit_codes_while_serving(tmp_path):
    service = Service(tmp_path / "data", {}).start()
    port = service.address.rsplit(":", 1)[1]
    assert probe(f"-addr=:{port}").returncode == 0
    assert probe(f"-addr={service.address}", "-service=tasks.TaskService").returncode == 0
    unknown = probe(f"-addr={service.address}", "-service=no.Such")
    assert unknown.returncode == 3, unknown.stderr
    assert probe().returncode == 1
    assert probe(f"-addr={service.address}", "-rpc-timeout=soon").returncode == 1
    assert service.stop() == 0


def test_unreachable_service_is_exit_2(tmp_path):
    service = Service(tmp_path / "data", {}).start()
    address = service.address
    assert service.stop() == 0
    result = probe(f"-addr={address}", "-connect-timeout=500ms")
    assert result.returncode == 2, result.stderr


def test_draining_service_fails_checks_then_exits_cleanly(tmp_path):
    service = Service(tmp_path / "data", {}, {"SHUTDOWN_DELAY_SECS": "3"}).start()
    with service.channel() as channel:
        assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        code = None
        while time.monotonic() < deadline:
            code = probe(f"-addr={service.address}", "-service=tasks.TaskService").returncode
            if code == 4:
                break
        assert code == 4, "the probe reports NOT_SERVING while the service drains"
        with pytest.raises(grpc.RpcError) as error:
            health_status(channel, "tasks.TaskService")
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE, "Check fails, so an ALB takes the task out"
    assert service.process.wait(timeout=30) == 0
