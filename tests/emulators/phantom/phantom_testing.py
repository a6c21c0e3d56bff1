"""Test support for the phantom adapter: the Phantom emulator and moto's
server mode as child processes on loopback, and the account configs that
point cloudplaned at them. Imported by tests/integration/test_phantom_flow.py
and tests/conformance/test_conformance_phantom.py."""
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
EMULATOR = HERE / "phantom_emulator.py"
MOTO_SERVER = HERE / "moto_server.py"

# The emulator's default user (see phantom_emulator.DEFAULT_USER).
USERNAME, PASSWORD = "alice", "wonderland"
ACCESS_KEY, SECRET_KEY = "AKPHANTOM0001", "phantom-secret-key-0001"


def _wait_ready(path, process, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            line = path.read_text().strip()
            return dict(part.split("=", 1) for part in line.split()[1:])
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        time.sleep(0.02)
    raise TimeoutError(f"{what} was not ready within {timeout}s")


class _Child:
    process = None

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class PhantomEmulator(_Child):
    def __init__(self, workdir, page_limit=2, converge_delay=0.2, name="phantom"):
        self.workdir = pathlib.Path(workdir)
        self.page_limit = page_limit
        self.converge_delay = converge_delay
        self.name = name

    def start(self):
        ready = self.workdir / f"{self.name}.ready"
        self.process = subprocess.Popen(
            [sys.executable, str(EMULATOR), "--listen", "127.0.0.1:0", "--page-limit",
             str(self.page_limit), "--converge-delay", str(self.converge_delay),
             "--ready-file", str(ready), "--max-lifetime", "900"],
            stdout=subprocess.DEVNULL)
        self.url = _wait_ready(ready, self.process, "phantom emulator")["url"]
        return self

    def account(self, account_id, env_var, secret=None, options=()):
        """The config block and sets the secret in os.environ (before the
        server starts)."""
        os.environ[env_var] = secret if secret is not None else (
            f"{ACCESS_KEY}:{SECRET_KEY}\n{USERNAME}:{PASSWORD}")
        opts = {"dialect": "phantom", "rest_endpoint": self.url + "/api/dev",
                "default_location": "hotel", "max_records": "50"}
        opts.update(dict(options))
        lines = "".join(f'  options {{ key: "{k}" value: "{v}" }}\n' for k, v in opts.items())
        return (f'accounts {{\n  id: "{account_id}"\n  provider: "phantom"\n'
                f'  endpoint: "{self.url}"\n  credentials {{ env: "{env_var}" }}\n{lines}}}\n')


class MotoServer(_Child):
    def __init__(self, workdir, auth=True):
        self.workdir = pathlib.Path(workdir)
        self.auth = auth

    def start(self):
        ready = self.workdir / "moto.ready"
        args = [sys.executable, str(MOTO_SERVER), "--ready-file", str(ready), "--max-lifetime",
                "900"] + (["--auth"] if self.auth else [])
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        fields = _wait_ready(ready, self.process, "moto server")
        self.url = fields["url"]
        self.access_key = fields.get("access_key", "AKIDMOTO")
        self.secret_key = fields.get("secret_key", "moto-secret")
        return self

    def account(self, account_id, env_var, secret=None, options=()):
        os.environ[env_var] = secret if secret is not None else (
            f"{self.access_key}:{self.secret_key}")
        opts = {"dialect": "aws", "region": "us-east-1", "default_location": "us-east-1a",
                "max_records": "2"}
        opts.update(dict(options))
        lines = "".join(f'  options {{ key: "{k}" value: "{v}" }}\n' for k, v in opts.items())
        return (f'accounts {{\n  id: "{account_id}"\n  provider: "phantom"\n'
                f'  endpoint: "{self.url}"\n  credentials {{ env: "{env_var}" }}\n{lines}}}\n')
