"""cloudplanectl against a server with authentication on: a token (flag or
$CLOUDPLANE_TOKEN) over TLS and over plaintext loopback, a client
certificate (mutual TLS), and the refusals without or with a bad credential:
exit 2 with UNAUTHENTICATED and its reason. The token never shows in any
output."""
import json
import os
import re
import subprocess

import auth_testing as at
from cloudplane_testing import Server
from clients_testing import CLOUDPLANECTL

EXIT_OK, EXIT_USAGE, EXIT_FAILED = 0, 1, 2


def ctl(auth, *args, env=None, expect=EXIT_OK, tls=True):
    """cloudplanectl against `auth`'s server; `env` adds to a copy of the
    environment without CLOUDPLANE_TOKEN."""
    cmd = [str(CLOUDPLANECTL), f"--server={auth.address}", "--timeout=20s"]
    if tls:
        cmd.append(f"--tls_ca_file={auth.pki.ca}")
    environment = {k: v for k, v in os.environ.items() if k != "CLOUDPLANE_TOKEN"}
    environment.update(env or {})
    result = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60,
                            env=environment)
    assert result.returncode == expect, (args, result.stdout, result.stderr)
    assert auth.token not in result.stdout + result.stderr
    return result


def create_args(name):
    return ["instances", "create", name, "--image=debian-12", "--machine_type=small", "--quiet",
            "-o", "json"]


def principal_of(auth, operation_name):
    out = ctl(auth, "operations", "get", operation_name, "-o", "json",
              env={"CLOUDPLANE_TOKEN": auth.token}).stdout
    return json.loads(out)["metadata"]["principal"]


def test_token_from_the_environment_and_the_flag(auth_server):
    auth = auth_server
    listed = ctl(auth, "accounts", "list", env={"CLOUDPLANE_TOKEN": auth.token}).stdout
    assert [line.split()[0] for line in listed.splitlines()[1:]] == ["sandbox"], listed
    # The whole create → wait → delete cycle: WaitOperation carries it too.
    made = json.loads(ctl(auth, *create_args("ctl-auth-1"), f"--token={auth.token}").stdout)
    assert made["state"] == "RUNNING"
    ops = json.loads(ctl(auth, "operations", "list", "-o", "json",
                         env={"CLOUDPLANE_TOKEN": auth.token}).stdout)["operations"]
    create = [op for op in ops if op["metadata"]["target"] == made["name"]]
    assert create and principal_of(auth, create[0]["name"]) == auth.PRINCIPAL
    ctl(auth, "instances", "delete", "ctl-auth-1", "--quiet",
        env={"CLOUDPLANE_TOKEN": auth.token + "\n"})  # as $(cat file) gives it


def test_without_a_credential_exit_2_unauthenticated(auth_server):
    out = ctl(auth_server, "accounts", "list", expect=EXIT_FAILED)
    lines = out.stderr.splitlines()
    assert lines[0].startswith("error: UNAUTHENTICATED: "), out.stderr
    assert re.match(r"  reason: CREDENTIALS_MISSING \(cloudplane\.dev\)", lines[1]), out.stderr
    assert "--token or $CLOUDPLANE_TOKEN" in out.stderr  # the hint
    assert out.stdout == ""
    # As JSON: the google.rpc.Status, code 16.
    status = json.loads(ctl(auth_server, "accounts", "list", "-o", "json",
                            expect=EXIT_FAILED).stderr)
    assert status["code"] == 16


def test_a_wrong_token_exit_2_unauthenticated(auth_server):
    wrong, _ = at.api_key()
    out = ctl(auth_server, "instances", "list", env={"CLOUDPLANE_TOKEN": wrong},
              expect=EXIT_FAILED)
    assert out.stderr.startswith("error: UNAUTHENTICATED: "), out.stderr
    assert "reason: CREDENTIALS_INVALID" in out.stderr
    assert "did not accept the token" in out.stderr
    assert wrong not in out.stdout + out.stderr
    # The flag wins over the environment.
    ctl(auth_server, "instances", "list", f"--token={wrong}",
        env={"CLOUDPLANE_TOKEN": auth_server.token}, expect=EXIT_FAILED)
    ctl(auth_server, "instances", "list", f"--token={auth_server.token}",
        env={"CLOUDPLANE_TOKEN": wrong})


def test_client_certificate_mutual_tls(auth_server):
    auth = auth_server
    spiffe = [f"--tls_cert_file={auth.pki.spiffe_cert}", f"--tls_key_file={auth.pki.spiffe_key}"]
    assert "sandbox" in ctl(auth, "accounts", "list", *spiffe).stdout
    made = json.loads(ctl(auth, *spiffe, *create_args("ctl-auth-2"), "--async").stdout)
    assert principal_of(auth, made["name"]) == at.SPIFFE_ID
    ctl(auth, "operations", "wait", made["name"], "--quiet", *spiffe)
    ctl(auth, "instances", "delete", "ctl-auth-2", "--quiet", *spiffe)
    # A certificate whose principal has no role sees no account; with the
    # token on top, the token decides.
    cn = [f"--tls_cert_file={auth.pki.cn_cert}", f"--tls_key_file={auth.pki.cn_key}"]
    assert ctl(auth, "accounts", "list", *cn).stdout.splitlines()[1:] == []
    assert "sandbox" in ctl(auth, "accounts", "list", *cn,
                            env={"CLOUDPLANE_TOKEN": auth.token}).stdout


def test_token_over_plaintext(tmp_path):
    # Plaintext with a token: fine to a loopback server (the interceptor sends
    # it where gRPC's call credentials would not) ...
    key, digest = at.api_key()
    config = at.auth_section(at.api_key_entry("local", digest),
                             at.binding("VIEWER", principals=["local"]))
    server = Server(tmp_path / "state", config_text=config).start()
    try:
        cmd = [str(CLOUDPLANECTL), f"--server={server.address}", "accounts", "list"]
        env = dict(os.environ, CLOUDPLANE_TOKEN=key)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == EXIT_OK, result.stderr
        assert "sandbox" in result.stdout and key not in result.stdout + result.stderr
        localhost = [str(CLOUDPLANECTL), f"--server=localhost:{server.port}", "accounts", "list"]
        assert subprocess.run(localhost, env=env, capture_output=True).returncode == EXIT_OK
    finally:
        assert server.stop() == 0, server.log()
    # ... refused before any call to anything else, unless allowed.
    remote = [str(CLOUDPLANECTL), "--server=192.0.2.7:7070", "--timeout=1s", "accounts", "list"]
    result = subprocess.run(remote, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.startswith(
        "cloudplanectl: refusing to send the token in plaintext to 192.0.2.7:7070"), result.stderr
    assert key not in result.stderr
    result = subprocess.run(remote + ["--allow_plaintext_token"], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 3, result.stderr  # it tried: nothing answers there
