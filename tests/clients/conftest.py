"""Fixtures of the client suites: everything under //clients and cloudplanectl
built once, one server with the default configuration (the embedded
sandbox) shared by the suites that only need an account to work in, and one
server with authentication on shared by the suites that show credentials."""
import subprocess

import pytest

import auth_testing as at
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


class AuthServer:
    """cloudplaned over TLS (client certificates optional, verified against
    the test CA) with one API key. The API key's principal (PRINCIPAL) and the
    SPIFFE client certificate's are OPERATOR on the sandbox; the CN client
    certificate's principal has no role, so a call it makes alone is refused,
    and one it makes with the token acts as the token's principal.

      server        the Server (its stubs use the token over TLS)
      pki           auth_testing.Pki (ca, spiffe_cert/_key, cn_cert/_key, ...)
      token         the API key
    """

    PRINCIPAL = "ci-deployer"

    def __init__(self, root):
        self.pki = at.Pki(root / "pki")
        self.token, digest = at.api_key()
        config = (at.tls_section(self.pki.server_cert, self.pki.server_key,
                                 client_ca=self.pki.ca)
                  + at.auth_section(
                      at.api_key_entry(self.PRINCIPAL, digest),
                      at.binding("OPERATOR", principals=[self.PRINCIPAL, at.SPIFFE_ID],
                                 accounts=["sandbox"])))
        self.server = Server(root / "state", config_text=config, tls_root=self.pki.ca,
                             token=self.token).start()

    @property
    def address(self):
        return self.server.address

    def env(self, token=True, cert=None):
        """CLOUDPLANE_* variables of the examples: the CA always, the token
        when `token`, the client certificate `cert` ("spiffe", "cn") when given."""
        env = {"CLOUDPLANE_CA": str(self.pki.ca)}
        if token:
            env["CLOUDPLANE_TOKEN"] = self.token
        if cert is not None:
            env["CLOUDPLANE_CERT"] = str(getattr(self.pki, cert + "_cert"))
            env["CLOUDPLANE_KEY"] = str(getattr(self.pki, cert + "_key"))
        return env


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    auth = AuthServer(tmp_path_factory.mktemp("clients-auth"))
    yield auth
    log = auth.server.log()
    assert auth.server.stop() == 0, log
    assert auth.token not in log  # never logged
