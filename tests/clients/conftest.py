"""Fixtures of the client suites: everything under //clients and cloudplanectl
built once, and one server with the default configuration (the embedded
sandbox) shared by the suites that only need an account to work in."""
import subprocess

import pytest

from cloudplane_testing import REPO, Server


@pytest.fixture(scope="session", autouse=True)
def built_clients():
    # Generates the stubs of all five languages and builds the C++ example
    # and cloudplanectl (a no-op when tools/test already built //...).
    result = subprocess.run(
        ["bazel", "build", "--jobs=2", "--noshow_progress", "//clients/...",
         "//clients/cloudplanectl"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("clients")).start()  # no config: the sandbox
    yield srv
    assert srv.stop() == 0, srv.log()
