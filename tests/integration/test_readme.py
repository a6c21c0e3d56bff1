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
