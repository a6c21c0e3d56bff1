"""Test support for the CloudSigma emulator: runs it as a process, gives the
account config that points cloudplaned at it, and reads it straight over
REST. The secret goes through an environment variable (config
`credentials { env: … }`), which the server subprocess inherits from
os.environ. server_fixtures gives a pytest module its emulator and server."""
import base64
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request

EMULATOR = pathlib.Path(__file__).resolve().parent / "cloudsigma_emulator.py"
USERNAME = "user@example.com"
PASSWORD = "emulator-password"


class CloudSigmaEmulatorProcess:
    def __init__(self, workdir, transition_delay=0.2, delete_delay=0.2):
        self.workdir = pathlib.Path(workdir)
        self.transition_delay = transition_delay
        self.delete_delay = delete_delay
        self.process = None

    def start(self):
        ready = self.workdir / "cloudsigma.ready"
        args = [sys.executable, str(EMULATOR), "--username", USERNAME,
                "--transition-delay", str(self.transition_delay),
                "--delete-delay", str(self.delete_delay),
                "--ready-file", str(ready), "--max-lifetime", "900"]
        env = dict(os.environ, CLOUDSIGMA_EMULATOR_PASSWORD=PASSWORD)
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 20
        while not (ready.exists() and ready.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the CloudSigma emulator did not start")
            time.sleep(0.02)
        fields = dict(part.split("=", 1) for part in ready.read_text().split()[1:])
        self.api_endpoint = fields["api"].rstrip("/")
        self.ws_endpoint = fields["ws"]
        return self

    def account_config(self, account_id, env_var, password=PASSWORD):
        """The accounts block; sets `env_var` to the account's secret."""
        os.environ[env_var] = f"{USERNAME}:{password}"
        return (f'accounts {{ id: "{account_id}" provider: "cloudsigma" '
                f'endpoint: "{self.api_endpoint}" credentials {{ env: "{env_var}" }} '
                f'options {{ key: "ws_endpoint" value: "{self.ws_endpoint}" }} }}\n')

    def rest(self, method, path, body=None, password=PASSWORD):
        """CloudSigma as it is: one request straight to the emulator (`path`
        under the API endpoint, or a whole URL); (status, decoded body)."""
        url = path if path.startswith("http") else f"{self.api_endpoint}{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        token = base64.b64encode(f"{USERNAME}:{password}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def objects(self, collection):
        """Every object the emulator holds in `collection` ("drives")."""
        status, body = self.rest("GET", f"/{collection}/detail/?limit=0")
        assert status == 200, body
        return body["objects"]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def server_fixtures(account_id, secret_env, more_accounts=()):
    """The module-scoped `emulator` and `server` fixtures of a test module: one
    emulator, and one cloudplaned with the account `account_id` on it (its
    secret in the environment variable `secret_env`) and each of
    `more_accounts`, (id, env var, password) triples. Bind both names in the
    module: `emulator, server = server_fixtures("csn", "CLOUDPLANE_TEST_CSN_SECRET")`."""
    import pytest  # only pytest suites use this; bench scripts import this module too
    from cloudplane_testing import Server

    @pytest.fixture(scope="module")
    def emulator(tmp_path_factory):
        emu = CloudSigmaEmulatorProcess(tmp_path_factory.mktemp(f"cloudsigma-{account_id}"))
        emu.start()
        yield emu
        emu.stop()

    @pytest.fixture(scope="module")
    def server(tmp_path_factory, emulator):
        config = emulator.account_config(account_id, secret_env)
        for other_id, other_env, password in more_accounts:
            config += emulator.account_config(other_id, other_env, password=password)
        srv = Server(tmp_path_factory.mktemp(f"cloudsigma-{account_id}-server"), config).start()
        yield srv
        assert srv.stop() == 0, srv.log()

    return emulator, server
