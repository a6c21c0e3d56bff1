"""Every language's example, built with that language's own tool, runs
against a live server and prints what it did; the server confirms it. Each
also runs against the server with authentication on (conftest.AuthServer):
with a token over TLS, with a client certificate alone, and without either,
which is refused UNAUTHENTICATED."""
import os
import re
import shutil
import subprocess

import grpc
import pytest

import auth_testing
from cloudplane_testing import BAZEL_BIN, REPO, common_pb2, compute_pb2, operations_pb2
from clients_testing import FirstAttemptFails, require_tool

VENV_PYTHON = REPO / ".deps" / "venv" / "bin" / "python"
JAVA_LIB = REPO / ".deps" / "clients" / "java" / "lib"
NODE_MODULES = REPO / ".deps" / "clients" / "node" / "node_modules"
MACHINE_TYPE_RULE = "must look like accounts/{account}/machineTypes/{machine_type}"


def run(args, timeout=300, expect_ok=True, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if expect_ok:
        assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


def example_env(env, extra=None):
    """`env` (None: this process's) without any CLOUDPLANE_* credential, plus `extra`."""
    base = {k: v for k, v in (env or os.environ).items()
            if k not in ("CLOUDPLANE_TOKEN", "CLOUDPLANE_CA", "CLOUDPLANE_CERT",
                         "CLOUDPLANE_KEY")}
    base.update(extra or {})
    return base


# Each builder compiles the example with the language's ordinary tool into
# `work` and returns the command that runs it (the address is appended).
def build_cpp(work):
    binary = BAZEL_BIN / "clients" / "cpp" / "example"  # built by bazel (conftest)
    assert binary.is_file()
    return [binary], None


def build_python(work):
    require_tool(VENV_PYTHON, "Python")
    env = dict(os.environ, PYTHONPATH=str(BAZEL_BIN / "proto"))
    return [VENV_PYTHON, REPO / "clients" / "python" / "example.py"], env


def build_go(work):
    go = require_tool("go", "Go")
    # go.mod points cloudplane.dev/api at bazel-bin/clients/go/api; -mod=readonly
    # (the default, made explicit) fails rather than edit go.mod or go.sum.
    env = dict(os.environ, GOFLAGS="-mod=readonly -buildvcs=false")
    run([go, "build", "-o", work / "example", "./example"], cwd=REPO / "clients" / "go", env=env)
    return [work / "example"], None


def build_java(work):
    javac = require_tool("javac", "Java")
    java = require_tool("java", "Java")
    if not JAVA_LIB.is_dir():
        pytest.fail(f"{JAVA_LIB} is missing; run tools/setup (tools/setup_clients)", pytrace=False)
    classpath = f"{JAVA_LIB}/*"
    sources = sorted((BAZEL_BIN / "clients" / "java" / "gen").rglob("*.java"))
    sources += sorted((REPO / "clients" / "java" / "src").rglob("*.java"))
    (work / "sources").write_text("\n".join(str(s) for s in sources))
    # C1 only: this compiles a lot of code once, where JIT warm-up costs more
    # than it gives.
    run([javac, "-J-XX:TieredStopAtLevel=1", "-nowarn", "-encoding", "UTF-8",
         "-d", work / "classes", "-cp", classpath, f"@{work / 'sources'}"])
    return [java, "-cp", f"{work / 'classes'}:{classpath}", "dev.cloudplane.example.Example"], None


def build_node(work):
    npm = require_tool("npm", "Node.js")
    node = require_tool("node", "Node.js")
    if not NODE_MODULES.is_dir():
        pytest.fail(f"{NODE_MODULES} is missing; run tools/setup (tools/setup_clients)",
                    pytrace=False)
    # The project layout clients/node/README describes: the generated gen/
    # copied under src/, the packages of package.json in node_modules.
    project = work / "project"
    (project / "src").mkdir(parents=True)
    for name in ("package.json", "tsconfig.json"):
        shutil.copy(REPO / "clients" / "node" / name, project / name)
    shutil.copy(REPO / "clients" / "node" / "src" / "example.ts", project / "src")
    shutil.copytree(BAZEL_BIN / "clients" / "node" / "gen", project / "src" / "gen")
    (project / "node_modules").symlink_to(NODE_MODULES)
    run([npm, "run", "build"], cwd=project)
    return [node, project / "dist" / "example.js"], None


BUILDERS = {"cpp": build_cpp, "python": build_python, "go": build_go, "java": build_java,
            "node": build_node}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """language -> (command, env), each example built once per module."""
    cache = {}

    def get(language):
        if language not in cache:
            cache[language] = BUILDERS[language](tmp_path_factory.mktemp(language))
        return cache[language]
    return get


@pytest.mark.parametrize("language", sorted(BUILDERS))
def test_example(language, server, built):
    command, env = built(language)
    env = example_env(env)  # plaintext, no token: today's local server
    out = run(command + [server.address], timeout=120, env=env).stdout
    check_walk_through(language, out, server)

    # The same walk through a proxy that answers the first attempt of every
    # call UNAVAILABLE: the example's service config makes gRPC retry, with the
    # same request bytes, so the create keeps its request_id.
    with FirstAttemptFails(server.address) as proxy:
        out = run(command + [proxy.address], timeout=120, env=env).stdout
    check_walk_through(language, out, server)
    proxy.check_every_call_retried()
    creates = proxy.attempts("CreateInstance")
    assert [outcome for _, outcome in creates] == [
        "injected", "OK", "injected", "INVALID_ARGUMENT"], creates
    first, retried = (compute_pb2.CreateInstanceRequest.FromString(request)
                      for request, _ in creates[:2])
    assert first.request_id and retried == first


@pytest.mark.parametrize("language", sorted(BUILDERS))
def test_example_with_authentication(language, auth_server, built):
    command, env = built(language)
    address = [auth_server.address]
    # The API key over TLS, with a client certificate whose principal has no
    # role: the token decides, and the operation records its principal.
    out = run(command + address, timeout=120,
              env=example_env(env, auth_server.env(token=True, cert="cn"))).stdout
    check_walk_through(language, out, auth_server.server, principal=auth_server.PRINCIPAL)
    # Mutual TLS alone: the certificate's SPIFFE ID is the principal.
    out = run(command + address, timeout=120,
              env=example_env(env, auth_server.env(token=False, cert="spiffe"))).stdout
    check_walk_through(language, out, auth_server.server, principal=auth_testing.SPIFFE_ID)
    # TLS without a credential: the first call is refused, the example exits
    # non-zero and says why.
    refused = run(command + address, timeout=120, expect_ok=False,
                  env=example_env(env, auth_server.env(token=False)))
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    code = "Unauthenticated" if language == "go" else "UNAUTHENTICATED"
    assert code in said, said
    assert "account: " not in refused.stdout
    assert auth_server.token not in said


def check_walk_through(language, out, server, principal=None):
    lines = out.splitlines()
    instance = f"accounts/sandbox/instances/{language}-example"
    assert lines[0] == "account: accounts/sandbox (providers/sandbox, READY)", out
    assert re.fullmatch(r"create: operations/[0-9a-f]{32}", lines[1]), out
    assert lines[2:5] == [
        f"created: {instance} RUNNING",
        f"get: {instance} RUNNING machine_type=accounts/sandbox/machineTypes/small",
        f"deleted: {instance}",
    ], out
    # Go spells codes its own way (codes.InvalidArgument.String()).
    code = "InvalidArgument" if language == "go" else "INVALID_ARGUMENT"
    assert lines[5:] == [
        f"error: {code}: instance.machine_type: {MACHINE_TYPE_RULE}",
        "reason: FIELD_INVALID (domain cloudplane.dev)",
        f"field violation: instance.machine_type: {MACHINE_TYPE_RULE}",
    ], out

    # What the server recorded: the create carried a request_id and produced
    # the instance, and the instance is gone again.
    op = server.operations().GetOperation(
        operations_pb2.GetOperationRequest(name=lines[1].split()[1]))
    assert op.done and not op.HasField("error")
    created = compute_pb2.Instance()
    assert op.response.Unpack(created) and created.name == instance
    metadata = common_pb2.OperationMetadata()
    assert op.metadata.Unpack(metadata)
    assert metadata.method == "cloudplane.v1.ComputeService.CreateInstance"
    assert metadata.request_id != ""
    if principal is not None:
        assert metadata.principal == principal
    with pytest.raises(grpc.RpcError) as err:
        server.compute().GetInstance(compute_pb2.GetInstanceRequest(name=instance))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
