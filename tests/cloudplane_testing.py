"""Shared test support: the real cloudplaned binary, the fleet emulator, and
the generated Python client, all on loopback, all stopped by the tests.

Importing this module puts the Bazel-generated Python stubs on sys.path.
"""
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import grpc

REPO = pathlib.Path(__file__).resolve().parent.parent
BAZEL_BIN = REPO / "bazel-bin"
SHARED = REPO.parent / "shared"
SERVER_BINARY = BAZEL_BIN / "service" / "cloudplaned"
# The optimised build (.bazelrc's `release` config) that tools/run serves and
# the benchmarks measure by default; tests use the fastbuild SERVER_BINARY.
RELEASE_BINARY = REPO / "bazel-opt-bin" / "service" / "cloudplaned"


def release_binary():
    """Builds cloudplaned with --config=release and returns its path."""
    subprocess.run(["bazel", "build", "--noshow_progress", "--config=release",
                    "//service:cloudplaned"], cwd=REPO, check=True)
    return RELEASE_BINARY
GRPCURL = REPO / ".deps" / "bin" / "grpcurl"
FLEET_EMULATOR = REPO / "tests" / "emulators" / "fleet" / "fleet_emulator.py"

sys.path.insert(0, str(BAZEL_BIN / "proto"))

from cloudplane.v1 import (  # noqa: E402  (needs the path above)
    accounts_pb2, accounts_pb2_grpc, audit_pb2, audit_pb2_grpc, autoscaling_pb2,
    autoscaling_pb2_grpc, billing_pb2, billing_pb2_grpc, common_pb2, compute_pb2,
    compute_pb2_grpc, firewalls_pb2, firewalls_pb2_grpc, networks_pb2, networks_pb2_grpc,
    units_pb2, units_pb2_grpc, volumes_pb2, volumes_pb2_grpc, watch_pb2, watch_pb2_grpc)
from google.longrunning import operations_pb2, operations_pb2_grpc  # noqa: E402
from google.rpc import error_details_pb2, status_pb2  # noqa: E402

__all__ = [
    "accounts_pb2", "accounts_pb2_grpc", "audit_pb2", "audit_pb2_grpc", "autoscaling_pb2",
    "autoscaling_pb2_grpc",
    "billing_pb2", "billing_pb2_grpc", "common_pb2", "compute_pb2", "compute_pb2_grpc",
    "firewalls_pb2", "firewalls_pb2_grpc", "networks_pb2", "networks_pb2_grpc", "units_pb2", "units_pb2_grpc", "volumes_pb2",
    "volumes_pb2_grpc", "watch_pb2", "watch_pb2_grpc", "operations_pb2",
    "operations_pb2_grpc", "error_details_pb2", "status_pb2",
]


def _wait_for_file(path, process, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return pathlib.Path(path).read_text().strip()
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        time.sleep(0.02)
    raise TimeoutError(f"{what} was not ready within {timeout}s")


class Server:
    """cloudplaned on 127.0.0.1 with a port of its own and a state dir."""

    def __init__(self, state_dir, config_text=None, extra_args=(), tls_root=None,
                 client_cert=None, client_key=None, token=None):
        """tls_root: a CA PEM file; the stubs then connect with TLS (and the
        client certificate client_cert/client_key when given). token: sent
        as `authorization: Bearer <token>` on every call of the stubs."""
        self.state_dir = pathlib.Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_text = config_text
        self.extra_args = list(extra_args)
        self.tls_root = tls_root
        self.client_cert = client_cert
        self.client_key = client_key
        self.token = token
        self.process = None
        self.port = None
        self.channel = None
        self._raw_channel = None
        self.output = None

    def start(self):
        port_file = self.state_dir / "port"
        if port_file.exists():
            port_file.unlink()
        args = [str(SERVER_BINARY), "--listen=127.0.0.1:0", f"--state_dir={self.state_dir}",
                f"--port_file={port_file}"] + self.extra_args
        if self.config_text is not None:
            args.append(f"--config={self.write_config()}")
        self.output = open(self.state_dir / "server.log", "ab")
        self.process = subprocess.Popen(args, stdout=self.output, stderr=subprocess.STDOUT)
        self.port = int(_wait_for_file(port_file, self.process, "cloudplaned"))
        self.channel = self._raw_channel = self.new_channel()
        # Connection-level readiness: works with authentication on, too.
        grpc.channel_ready_future(self._raw_channel).result(timeout=10)
        if self.token is not None:
            import auth_testing  # noqa: PLC0415  (only the auth suites need it)
            self.channel = auth_testing.with_token(self._raw_channel, self.token)
        return self

    def new_channel(self, client_cert=None, client_key=None):
        """A new channel to the server (TLS when tls_root is set, with the
        given client certificate, else the server's own), without a token."""
        if self.tls_root is None:
            return grpc.insecure_channel(self.address)
        import auth_testing  # noqa: PLC0415
        cert = client_cert if client_cert is not None else self.client_cert
        key = client_key if client_key is not None else self.client_key
        return auth_testing.secure_channel(self.address, self.tls_root, cert, key)

    def write_config(self):
        config = self.state_dir / "config.textproto"
        config.write_text(self.config_text)
        return config

    def reload(self, config_text=None):
        """Rewrites the config file (when config_text is given) and sends SIGHUP."""
        if config_text is not None:
            self.config_text = config_text
            self.write_config()
        self.process.send_signal(signal.SIGHUP)

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def log(self):
        return (self.state_dir / "server.log").read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self._raw_channel is not None:
            self._raw_channel.close()
            self._raw_channel = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.output is not None:
            self.output.close()
            self.output = None
        return self.process.returncode if self.process else None

    # Stubs -----------------------------------------------------------------
    def accounts(self):
        return accounts_pb2_grpc.AccountsServiceStub(self.channel)

    def compute(self):
        return compute_pb2_grpc.ComputeServiceStub(self.channel)

    def volumes(self):
        return volumes_pb2_grpc.VolumesServiceStub(self.channel)

    def firewalls(self):
        return firewalls_pb2_grpc.FirewallsServiceStub(self.channel)

    def networks(self):
        return networks_pb2_grpc.NetworksServiceStub(self.channel)

    def autoscaling(self):
        return autoscaling_pb2_grpc.AutoscalingServiceStub(self.channel)

    def units(self):
        return units_pb2_grpc.UnitsServiceStub(self.channel)

    def billing(self):
        return billing_pb2_grpc.BillingServiceStub(self.channel)

    def operations(self):
        return operations_pb2_grpc.OperationsStub(self.channel)

    def watch(self):
        return watch_pb2_grpc.WatchServiceStub(self.channel)

    def audit(self):
        return audit_pb2_grpc.AuditServiceStub(self.channel)

    def wait(self, operation, timeout=30.0):
        """WaitOperation until done; returns the finished Operation."""
        deadline = time.monotonic() + timeout
        op = operation
        while not op.done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{operation.name} not done after {timeout}s")
            request = operations_pb2.WaitOperationRequest(name=operation.name)
            request.timeout.FromMilliseconds(int(min(remaining, 10) * 1000))
            op = self.operations().WaitOperation(request, timeout=remaining + 5)
        return op


class FleetEmulator:
    """The fleet v1 emulator as a separate process, over TCP and a unix socket."""

    def __init__(self, workdir, page_limit=2, converge_delay=0.2, machines=3, extra_args=()):
        self.extra_args = list(extra_args)  # e.g. ["--start-delay", "0.4"]
        self.workdir = pathlib.Path(workdir)
        self.page_limit = page_limit
        self.converge_delay = converge_delay
        self.machines = machines
        self.process = None
        self.log_path = self.workdir / "fleet.log"

    def start(self):
        self.socket_path = str(self.workdir / "fleet.sock")
        ready = self.workdir / "fleet.ready"
        args = [sys.executable, str(FLEET_EMULATOR), "--tcp", "127.0.0.1:0", "--unix",
                self.socket_path, "--page-limit", str(self.page_limit), "--converge-delay",
                str(self.converge_delay), "--machines", str(self.machines),
                "--ready-file", str(ready), "--max-lifetime", "900", "--verbose",
                *self.extra_args]
        # --verbose logs method, path and status of every request (never
        # bodies): what tests count requests with.
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=open(self.log_path, "ab"))
        line = _wait_for_file(ready, self.process, "fleet emulator")
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        self.tcp_endpoint = "http://" + fields["tcp"]
        self.unix_endpoint = "unix://" + fields["unix"]
        return self

    def requests(self):
        """Every request the emulator answered so far, as "METHOD /path -> status"."""
        prefix = "fleet-emulator: "
        return [line[len(prefix):] for line in self.log_path.read_text().splitlines()
                if line.startswith(prefix) and " -> " in line]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def error_details(rpc_error):
    """(ErrorInfo or None, BadRequest or None) from a grpc.RpcError."""
    info = bad_request = None
    for key, value in rpc_error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
    return info, bad_request


def unpack(any_message, cls):
    """The `cls` message packed in a google.protobuf.Any."""
    message = cls()
    assert any_message.Unpack(message), any_message
    return message


def done(server, operation, cls=None):
    """Waits for `operation`, which must succeed; its response as `cls` (None
    without one)."""
    op = server.wait(operation)
    assert not op.HasField("error"), op.error
    return unpack(op.response, cls) if cls else None


def temp_dir(prefix="cloudplane-"):
    return tempfile.mkdtemp(prefix=prefix)
