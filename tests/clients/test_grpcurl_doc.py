"""docs/grpcurl.md runs: its `sh` blocks, in order, as one shell session
against a fresh server with the default configuration (127.0.0.1:7070 in the
doc) and, for the Authentication section (127.0.0.1:7443), the shared server
with authentication on, with CA, CERT, KEY and CLOUDPLANE_TOKEN set as the
doc describes, so the walkthrough never goes stale."""
import os
import re
import subprocess

from cloudplane_testing import GRPCURL, REPO, Server
from clients_testing import require_tool

DOC = REPO / "docs" / "grpcurl.md"
DOC_ADDRESS = "127.0.0.1:7070"
DOC_AUTH_ADDRESS = "127.0.0.1:7443"
MARK = "@@@ block"


def blocks():
    """(language, text) of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", DOC.read_text(), re.M | re.S)


def test_every_grpcurl_command_is_in_a_block_that_runs():
    text = DOC.read_text()
    runnable = "".join(body for lang, body in blocks() if lang == "sh")
    commands = [line for line in text.splitlines() if line.startswith("grpcurl -")]
    assert commands and all(line in runnable for line in commands)
    for step in (" list", " describe ", "/CreateInstance", "/WaitOperation", "/Watch",
                 "-format-error", "/DeleteInstance", "-H \"authorization: Bearer $CLOUDPLANE_TOKEN",
                 '-cacert "$CA" -cert "$CERT" -key "$KEY"'):
        assert step in runnable, step


def test_walkthrough_runs(tmp_path, auth_server):
    require_tool("jq", "docs/grpcurl.md")
    require_tool(GRPCURL, "grpcurl")
    server = Server(tmp_path / "state").start()  # no config: the sandbox, as tools/run
    try:
        script = ["set -euo pipefail"]
        sh_blocks = [body for lang, body in blocks() if lang == "sh"]
        for i, body in enumerate(sh_blocks):
            script.append(f"echo '{MARK} {i}'")
            script.append(body.replace(DOC_ADDRESS, server.address)
                          .replace(DOC_AUTH_ADDRESS, auth_server.address))
        env = dict(os.environ, PATH=f"{GRPCURL.parent}:{os.environ['PATH']}",
                   CA=str(auth_server.pki.ca), CERT=str(auth_server.pki.spiffe_cert),
                   KEY=str(auth_server.pki.spiffe_key), CLOUDPLANE_TOKEN=auth_server.token)
        result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    finally:
        assert server.stop() == 0, server.log()

    outputs = re.split(rf"^{MARK} \d+\n", result.stdout, flags=re.M)[1:]
    assert len(outputs) == len(sh_blocks)
    by_command = dict(zip(sh_blocks, outputs))

    def output_of(snippet):
        matches = [out for body, out in by_command.items() if snippet in body]
        assert len(matches) == 1, snippet
        return matches[0]

    # The listing the document shows is the server's, word for word.
    shown = blocks()[[b for _, b in blocks()].index(sh_blocks[0]) + 1][1]
    assert output_of("7070 list\n") == shown
    assert "CreateInstanceRequest is a message" in output_of("describe")
    assert '"status": "SERVING"' in output_of("Health/Check")
    catalog = output_of("ListMachineTypes")
    assert catalog.startswith("accounts/sandbox\n")
    assert "accounts/sandbox/machineTypes/small  Small (1 vCPU, 1 GiB)" in catalog
    assert re.search(r"^same operation: operations/[0-9a-f]+$", output_of("again="), re.M)
    assert '"state": "RUNNING"' in output_of("done.json\njq")
    assert "accounts/sandbox/instances/web-1  RUNNING" in output_of("ListInstances")
    assert re.search(r"CreateInstance  done=true", output_of("ListOperations"))
    assert output_of('"instance_id": "Web_1"').splitlines() == [
        "grpcurl exited with 67",
        "instance.machine_type: must look like accounts/{account}/machineTypes/{machine_type}",
    ]
    assert output_of("instances/nope").splitlines() == [
        "grpcurl exited with 69", "RESOURCE_NOT_FOUND accounts/sandbox/instances/nope"]
    deleted = output_of("kill $watch_pid").splitlines()
    assert deleted[0] == '{"done":true}'
    changes = [line.split("  ") for line in deleted[1:]]
    assert [c[1:] for c in changes] == [
        ["CREATED", "accounts/sandbox/instances/web-1", "PROVISIONING"],
        ["UPDATED", "accounts/sandbox/instances/web-1", "RUNNING"],
        ["UPDATED", "accounts/sandbox/instances/web-1", "TERMINATING"],
        ["DELETED", "accounts/sandbox/instances/web-1", "TERMINATED"],
    ], changes
    assert sorted(int(c[0]) for c in changes) == [int(c[0]) for c in changes]

    # Authentication: every block of the section prints what the doc shows
    # after it, word for word.
    auth_blocks = [body for body in sh_blocks if DOC_AUTH_ADDRESS in body]
    assert len(auth_blocks) == 3
    texts = [b for _, b in blocks()]
    for body in auth_blocks:
        shown = texts[texts.index(body) + 1]
        assert by_command[body] == shown, (body, by_command[body])
    assert auth_server.token not in result.stdout + result.stderr
