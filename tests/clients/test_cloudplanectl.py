"""cloudplanectl against a live server: help, the create → wait → delete
cycle, errors with reason and field, exit codes, JSON output, volumes,
operations, watch, and TLS."""
import json
import re
import subprocess
import time

import pytest

from cloudplane_testing import SERVER_BINARY, Server, compute_pb2, compute_pb2_grpc
from clients_testing import CLOUDPLANECTL, FirstAttemptFails, require_tool

EXIT_OK, EXIT_USAGE, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2, 3
COMMANDS = [
    "accounts list", "accounts get", "instances list", "instances get", "instances create",
    "instances delete", "instances start", "instances stop", "volumes list", "volumes get",
    "volumes create", "volumes delete", "volumes attach", "volumes detach", "operations list",
    "operations get", "operations wait", "watch",
]


def ctl(*args, server=None, expect=EXIT_OK, timeout=60):
    cmd = [str(CLOUDPLANECTL)]
    if server is not None:
        cmd.append(f"--server={server.address}")
    result = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == expect, (args, result.stdout, result.stderr)
    return result


def create_args(name, *extra):
    return ["instances", "create", name, "--image=debian-12", "--machine_type=small", *extra]


def test_help_for_every_command():
    overview = ctl("help").stdout
    for command in COMMANDS:
        assert f"  {command}" in overview, command
        text = ctl(*command.split(), "--help").stdout
        assert text.startswith(f"Usage: cloudplanectl {command}"), text
        assert "--server" in text
    assert "--image" in ctl("help", "instances", "create").stdout
    assert "instances create INSTANCE" in ctl("instances", "-h").stdout
    assert "Exit codes" in ctl("--help").stdout
    ctl("help", "nonsense", expect=EXIT_USAGE)


def test_usage_errors_exit_1_before_any_call():
    # No server is running at this address: usage errors never get that far.
    unused = ["--server=127.0.0.1:1"]
    assert "unknown command" in ctl(*unused, "instances", "frob", expect=EXIT_USAGE).stderr
    assert "usage: cloudplanectl instances get INSTANCE" in ctl(
        *unused, "instances", "get", expect=EXIT_USAGE).stderr
    assert "--image does not apply" in ctl(*unused, "instances", "list", "--image=x",
                                           expect=EXIT_USAGE).stderr
    assert "--output must be table or json" in ctl(*unused, "accounts", "list", "--output=yaml",
                                                   expect=EXIT_USAGE).stderr
    assert "not a byte count" in ctl(*unused, "volumes", "create", "v", "--size=lots",
                                     expect=EXIT_USAGE).stderr
    ctl(*unused, "accounts", "list", "--no_such_flag", expect=EXIT_USAGE)


def test_unreachable_server_exits_3():
    out = ctl("--server=127.0.0.1:1", "--timeout=5s", "accounts", "list",
              expect=EXIT_UNAVAILABLE)
    assert out.stderr.startswith("error: UNAVAILABLE: "), out.stderr


def test_accounts(server):
    out = ctl("accounts", "list", server=server).stdout.splitlines()
    assert out[0].split() == ["NAME", "PROVIDER", "STATE", "ENDPOINT", "SUPPORTED"]
    assert out[1].split()[:3] == ["sandbox", "sandbox", "READY"]
    account = json.loads(ctl("accounts", "get", "sandbox", "-o", "json", server=server).stdout)
    assert account["name"] == "accounts/sandbox"
    capabilities = {c["method"]: c for c in account["capabilities"]}
    # The sandbox can cancel a pending create; it cannot cancel a read.
    create = capabilities["cloudplane.v1.ComputeService.CreateInstance"]
    assert (create["supported"], create["cancellable"]) == (True, True)
    assert "instance.display_name" in create["honoured_fields"]
    assert capabilities["cloudplane.v1.ComputeService.ListInstances"] == {
        "method": "cloudplane.v1.ComputeService.ListInstances", "supported": True}


def test_instance_create_wait_delete_cycle(server):
    out = ctl(*create_args("ctl-1"), server=server)
    header, row = out.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "STATE", "MACHINE_TYPE", "IMAGE"]
    assert row.split()[:4] == ["ctl-1", "RUNNING", "small", "debian-12"]
    # The progress line names the operation and its step, then how long it took.
    assert re.search(r"^operations/[0-9a-f]+: waiting for instance accounts/sandbox/instances/"
                     r"ctl-1 to reach RUNNING", out.stderr, re.M), out.stderr
    assert re.search(r"^operations/[0-9a-f]+: done after [0-9.]+s$", out.stderr, re.M)

    got = json.loads(ctl("instances", "get", "ctl-1", "--output=json", server=server).stdout)
    assert got["name"] == "accounts/sandbox/instances/ctl-1"
    assert got["state"] == "RUNNING"
    assert got["machine_type"] == "accounts/sandbox/machineTypes/small"
    listed = ctl("instances", "list", server=server).stdout
    assert re.search(r"^ctl-1 +RUNNING ", listed, re.M), listed

    stopped = ctl("instances", "stop", "ctl-1", "--quiet", server=server)
    assert stopped.stdout.splitlines()[1].split()[:2] == ["ctl-1", "STOPPED"]
    assert stopped.stderr == ""  # --quiet
    started = ctl("instances", "start", "ctl-1", "-o", "json", server=server)
    assert json.loads(started.stdout)["state"] == "RUNNING"

    deleted = ctl("instances", "delete", "ctl-1", server=server)
    assert deleted.stdout == "DeleteInstance accounts/sandbox/instances/ctl-1: done\n"
    gone = ctl("instances", "get", "ctl-1", server=server, expect=EXIT_FAILED)
    assert gone.stderr.splitlines() == [
        "error: NOT_FOUND: instance accounts/sandbox/instances/ctl-1 not found",
        "  reason: RESOURCE_NOT_FOUND (cloudplane.dev) resource=accounts/sandbox/instances/ctl-1",
    ]
    # The server agrees.
    stub = compute_pb2_grpc.ComputeServiceStub(server.channel)
    names = [i.name for i in stub.ListInstances(
        compute_pb2.ListInstancesRequest(parent="accounts/sandbox")).instances]
    assert "accounts/sandbox/instances/ctl-1" not in names


def test_bad_argument_prints_the_field_violation(server):
    out = ctl(*create_args("Bad_Name"), server=server, expect=EXIT_FAILED)
    assert out.stdout == ""
    rule = "must match [a-z]([-a-z0-9]{0,61}[a-z0-9])?"
    assert out.stderr.splitlines() == [
        f"error: INVALID_ARGUMENT: instance_id: {rule}",
        "  reason: FIELD_INVALID (cloudplane.dev) field=instance_id",
        f"  field instance_id: {rule}",
    ]
    # The same as JSON for scripts: the google.rpc.Status with its details.
    out = ctl(*create_args("Bad_Name"), "-o", "json", server=server, expect=EXIT_FAILED)
    status = json.loads(out.stderr)
    assert status["code"] == 3
    violations = [d for d in status["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert violations[0]["field_violations"] == [{"field": "instance_id", "description": rule}]


def test_request_id_async_and_operations(server):
    args = create_args("ctl-2", "--async", "--request_id=ctl-2-create", "-o", "json")
    first = json.loads(ctl(*args, server=server).stdout)
    second = json.loads(ctl(*args, server=server).stdout)
    assert first["name"] == second["name"]  # the same request_id: the same Operation
    assert first["metadata"]["request_id"] == "ctl-2-create"
    name = first["name"]

    waited = ctl("operations", "wait", name.split("/")[1], server=server)
    assert waited.stdout.splitlines()[1].split()[:2] == ["ctl-2", "RUNNING"]
    op = json.loads(ctl("operations", "get", name, "-o", "json", server=server).stdout)
    assert op["done"] is True and op["response"]["state"] == "RUNNING"
    table = ctl("operations", "list", server=server).stdout
    assert re.search(rf"^{name} +CreateInstance +accounts/sandbox/instances/ctl-2 +DONE", table,
                     re.M), table
    # validate_only checks without doing anything.
    valid = ctl(*create_args("ctl-3", "--validate_only"), server=server)
    assert valid.stdout == "CreateInstance accounts/sandbox/instances/ctl-3: valid\n"
    ctl("instances", "get", "ctl-3", server=server, expect=EXIT_FAILED)
    ctl("instances", "delete", "ctl-2", "--quiet", server=server)


def test_unavailable_is_retried_with_the_same_request_id(server):
    # Every first attempt fails UNAVAILABLE at the proxy; gRPC retries it (the
    # service config of MakeChannel) with the same bytes. Without --request_id
    # cloudplanectl makes one up, so the retry is recognisably the same request.
    with FirstAttemptFails(server.address) as proxy:
        via_proxy = f"--server={proxy.address}"
        out = ctl(via_proxy, *create_args("ctl-retry", "--quiet", "-o", "json"))
        assert json.loads(out.stdout)["state"] == "RUNNING"
        ctl(via_proxy, "instances", "delete", "ctl-retry", "--quiet")
    proxy.check_every_call_retried()
    creates = proxy.attempts("CreateInstance")
    assert [outcome for _, outcome in creates] == ["injected", "OK"], creates
    first, retried = (compute_pb2.CreateInstanceRequest.FromString(r) for r, _ in creates)
    assert re.fullmatch(r"[0-9a-f]{32}", first.request_id) and retried == first
    deletes = proxy.attempts("DeleteInstance")
    assert [outcome for _, outcome in deletes] == ["injected", "OK"], deletes
    assert compute_pb2.DeleteInstanceRequest.FromString(deletes[0][0]).request_id not in (
        "", first.request_id)


def test_wait_timeout_exits_3_and_the_operation_goes_on(server):
    ctl(*create_args("ctl-4", "--quiet"), server=server)
    # A wait that ends before the operation: exit 3, the operation goes on.
    out = ctl("instances", "delete", "ctl-4", "--wait_timeout=0.2s", server=server,
              expect=EXIT_UNAVAILABLE)
    assert "error: DEADLINE_EXCEEDED: " in out.stderr
    name = re.search(r"operations wait (operations/[0-9a-f]+)", out.stderr).group(1)
    ctl("operations", "wait", name, "--quiet", server=server)
    ctl("instances", "get", "ctl-4", server=server, expect=EXIT_FAILED)


def test_volumes(server):
    ctl(*create_args("ctl-5", "--quiet"), server=server)
    row = ctl("volumes", "create", "data-1", "--size=10GiB", "--labels=team=web", "--quiet",
              server=server).stdout.splitlines()[1]
    assert row.split()[:4] == ["data-1", "AVAILABLE", "10", "GiB"]
    attached = ctl("volumes", "attach", "data-1", "--instance=ctl-5", "--quiet", server=server)
    assert attached.stdout.splitlines()[1].split()[:5] == ["data-1", "ATTACHED", "10", "GiB",
                                                           "ctl-5"]
    # The provider refuses to delete an attached volume: exit 2, with the reason.
    out = ctl("volumes", "delete", "data-1", server=server, expect=EXIT_FAILED)
    assert out.stderr.splitlines() == [
        "error: FAILED_PRECONDITION: accounts/sandbox/volumes/data-1: is attached to "
        "accounts/sandbox/instances/ctl-5; detach it first",
        "  reason: WRONG_STATE (cloudplane.dev) resource=accounts/sandbox/volumes/data-1",
    ]
    volume = json.loads(ctl("volumes", "get", "data-1", "-o", "json", server=server).stdout)
    assert volume["size_bytes"] == str(10 << 30)
    assert volume["labels"] == {"team": "web"}
    assert volume["attached_to"] == ["accounts/sandbox/instances/ctl-5"]
    ctl("volumes", "detach", "data-1", "--instance=ctl-5", "--quiet", server=server)
    assert "data-1" in ctl("volumes", "list", server=server).stdout
    ctl("volumes", "delete", "data-1", "--quiet", server=server)
    ctl("volumes", "delete", "data-1", "--allow_missing", "--quiet", server=server)
    ctl("instances", "delete", "ctl-5", "--quiet", server=server)


def test_watch_prints_changes_until_count(server):
    watch = subprocess.Popen([str(CLOUDPLANECTL), f"--server={server.address}", "watch",
                              "--kinds=Instance", "--count=2"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        header = watch.stdout.readline()  # printed once the stream is open
        assert header.split() == ["SEQUENCE", "TIME", "CHANGE", "KIND", "NAME", "STATE"]
        # The server subscribes the stream as it opens; give it that moment.
        time.sleep(0.3)
        ctl(*create_args("ctl-6", "--quiet"), server=server)
        out, err = watch.communicate(timeout=30)
    finally:
        watch.kill()
    assert watch.returncode == EXIT_OK, err
    rows = [line.split() for line in out.splitlines()]
    assert rows[0][2:] == ["CREATED", "Instance", "accounts/sandbox/instances/ctl-6",
                           "PROVISIONING"]
    assert rows[1][2:] == ["UPDATED", "Instance", "accounts/sandbox/instances/ctl-6", "RUNNING"]
    assert int(rows[1][0]) > int(rows[0][0])
    # Resuming after the first change replays the second, as JSON lines.
    out = ctl("watch", "--kinds=Instance", f"--start_after={rows[0][0]}", "--count=1", "-o",
              "json", server=server).stdout
    changes = [json.loads(line) for line in out.splitlines()]
    assert changes[-1]["sequence"] == rows[1][0]
    assert changes[-1]["resource"]["state"] == "RUNNING"
    ctl("instances", "delete", "ctl-6", "--quiet", server=server)


class TlsServer(Server):
    """cloudplaned serving TLS; ready once its port is written (the base
    class checks readiness over plaintext)."""

    def start(self):
        port_file = self.state_dir / "port"
        self.output = open(self.state_dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [str(SERVER_BINARY), "--listen=127.0.0.1:0", f"--state_dir={self.state_dir}",
             f"--port_file={port_file}"] + self.extra_args,
            stdout=self.output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert self.process.poll() is None and time.monotonic() < deadline, self.log()
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        return self


def test_tls(tmp_path):
    openssl = require_tool("openssl", "TLS test")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=cloudplane.test", "-addext", "subjectAltName=DNS:cloudplane.test",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    server = TlsServer(tmp_path / "state",
                       extra_args=[f"--tls_cert={cert}", f"--tls_key={key}"]).start()
    try:
        trusted = ["--timeout=10s", f"--tls_ca_file={cert}", "--tls_server_name=cloudplane.test"]
        assert "sandbox" in ctl(*trusted, "accounts", "list", server=server).stdout
        # Plaintext to a TLS server, and TLS without trusting its certificate,
        # both fail to connect.
        ctl("--timeout=5s", "accounts", "list", server=server, expect=EXIT_UNAVAILABLE)
        ctl("--timeout=5s", "--tls", "accounts", "list", server=server, expect=EXIT_UNAVAILABLE)
        out = ctl("--tls_cert_file=x.pem", "accounts", "list", server=server, expect=EXIT_USAGE)
        assert "--tls_cert_file and --tls_key_file go together" in out.stderr
    finally:
        assert server.stop() == 0, server.log()
