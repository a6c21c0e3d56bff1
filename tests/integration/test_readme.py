"""Every grpcurl command in README.md works against the default server (the
embedded sandbox), so the document cannot go stale."""
import pathlib
import re
import shlex
import subprocess

import pytest

from cloudplane_testing import GRPCURL, REPO, Server

README_ADDRESS = "127.0.0.1:7070"


def readme_commands():
    text = (REPO / "README.md").read_text()
    text = text.replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("grpcurl ")]


def test_readme_has_grpcurl_examples():
    assert len(readme_commands()) >= 8


def test_readme_commands_run_verbatim(tmp_path):
    server = Server(tmp_path).start()  # no config: the embedded default
    try:
        for command in readme_commands():
            args = shlex.split(command.replace(README_ADDRESS, server.address))
            assert args[0] == "grpcurl"
            streaming = "WatchService/Watch" in command
            if streaming:
                args.insert(1, "-max-time=2")  # the README's watch runs until Ctrl-C
            result = subprocess.run([str(GRPCURL)] + args[1:], capture_output=True, text=True,
                                    timeout=60)
            if streaming:
                assert '"HEARTBEAT"' in result.stdout, (command, result.stderr)
            else:
                assert result.returncode == 0, (command, result.stderr)
        # The second CreateInstance with the same request_id is the same Operation.
        creates = [c for c in readme_commands() if "CreateInstance" in c]
        names = []
        for command in creates * 2:
            args = shlex.split(command.replace(README_ADDRESS, server.address))
            out = subprocess.run([str(GRPCURL)] + args[1:], capture_output=True, text=True,
                                 timeout=60, check=True).stdout
            names.append(re.search(r'"name": "(operations/[^"]+)"', out).group(1))
        assert len(set(names)) == 1
    finally:
        assert server.stop() == 0, server.log()


def readme_auth_config():
    """The README's textproto block that configures `auth`."""
    blocks = re.findall(r"```textproto\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    configs = [b for b in blocks if "auth {" in b]
    assert len(configs) == 1, "README.md has one auth example"
    return configs[0]


def test_readme_auth_example_runs_as_written(tmp_path):
    """The README's auth config, with its /etc/cloudplane files made for real
    and the key hash filled in: each binding does what the prose says."""
    import grpc

    import auth_testing
    from cloudplane_testing import accounts_pb2, audit_pb2, compute_pb2

    files = tmp_path / "etc"
    pki = auth_testing.Pki(files)
    (files / "server.pem").write_bytes(pki.server_cert.read_bytes())
    (files / "server.key").write_bytes(pki.server_key.read_bytes())
    (files / "clients-ca.pem").write_bytes(pki.ca.read_bytes())
    signer = auth_testing.rsa_key()
    (files / "jwks.json").write_text(auth_testing.jwks((signer, "k1")))
    key, digest = auth_testing.api_key()
    admin_cert, admin_key = pki.client("console", uris=["spiffe://example.com/ops/console"])
    config = readme_auth_config().replace("/etc/cloudplane/", f"{files}/")
    config = re.sub(r'sha256: "<[^"]*>"', f'sha256: "{digest}"', config)
    # The state directory and address come from the test (flags override).
    server = Server(tmp_path / "state", config_text=config, tls_root=pki.ca,
                    client_cert=admin_cert, client_key=admin_key).start()
    try:
        create = compute_pb2.CreateInstanceRequest(
            parent="accounts/sandbox", instance_id="readme-auth",
            instance=compute_pb2.Instance(image="accounts/sandbox/images/debian-12",
                                          machine_type="accounts/sandbox/machineTypes/small"))
        channel = server.new_channel(client_cert=pki.cn_cert, client_key=pki.cn_key)
        compute = cloudplane_stub(channel, "compute")
        # The API key is OPERATOR on sandbox.
        op = compute.CreateInstance(create, metadata=auth_testing.bearer(key))
        assert op.name.startswith("operations/")
        # A JWT of the engineering group is VIEWER: it reads, it may not change.
        token = auth_testing.mint(signer, "k1", auth_testing.claims(
            sub="dana", issuer="https://id.example.com", audience="cloudplane",
            groups=["engineering"]))
        listed = compute.ListInstances(compute_pb2.ListInstancesRequest(parent="accounts/sandbox"),
                                       metadata=auth_testing.bearer(token))
        assert [i.name for i in listed.instances] == ["accounts/sandbox/instances/readme-auth"]
        code, _, _ = auth_testing.refusal(compute.DeleteInstance, compute_pb2.DeleteInstanceRequest(
            name="accounts/sandbox/instances/readme-auth"), metadata=auth_testing.bearer(token))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        # A client certificate the bindings do not name sees no account.
        accounts = cloudplane_stub(channel, "accounts").ListAccounts(
            accounts_pb2.ListAccountsRequest())
        assert list(accounts.accounts) == []
        # The console's SPIFFE certificate is ADMIN: it reads the audit log.
        events = server.audit().ListAuditEvents(audit_pb2.ListAuditEventsRequest(
            account="accounts/sandbox"))
        assert any(e.method.endswith("CreateInstance") for e in events.audit_events)
    finally:
        server.stop()


def cloudplane_stub(channel, name):
    from cloudplane_testing import accounts_pb2_grpc, compute_pb2_grpc
    return {"compute": compute_pb2_grpc.ComputeServiceStub,
            "accounts": accounts_pb2_grpc.AccountsServiceStub}[name](channel)
