"""Test support for the enStratus adapter: the emulator as a child process,
a signing client for raw requests, and the key pair the tests use.

Import with tests/emulators/enstratus on sys.path (the enStratus test files
do that themselves)."""
import base64
import hashlib
import hmac
import json
import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request

EMULATOR = pathlib.Path(__file__).resolve().parent / "enstratus_emulator.py"
# mixcoatl's unit-test keys (§10 of the reference); test data, not a secret.
ACCESS_KEY = "abcdefg"
SECRET_KEY = "gfedcba"
KEYS = f"{ACCESS_KEY}:{SECRET_KEY}"
# Seeded catalog of the emulator.
REGION = 19344
DATACENTER = 64351
IMAGE = 284542
PRODUCT = 652
BUDGET = 10287


def _wait_for_file(path, process, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            return path.read_text().strip()
        if process.poll() is not None:
            raise RuntimeError(f"enstratus emulator exited with {process.returncode}")
        time.sleep(0.02)
    raise TimeoutError("enstratus emulator not ready")


class EnstratusEmulator:
    def __init__(self, workdir, job_seconds=0.3, boot_seconds=0.3, keys=(KEYS,)):
        self.workdir = pathlib.Path(workdir)
        self.job_seconds = job_seconds
        self.boot_seconds = boot_seconds
        self.keys = list(keys)
        self.process = None
        self.url = None

    def start(self):
        ready = self.workdir / "enstratus.ready"
        args = [sys.executable, str(EMULATOR), "--listen", "127.0.0.1:0",
                "--job-seconds", str(self.job_seconds), "--boot-seconds", str(self.boot_seconds),
                "--ready-file", str(ready), "--max-lifetime", "900", "--keys", *self.keys]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
        line = _wait_for_file(ready, self.process)
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        self.url = fields["url"]
        self.port = int(fields["port"])
        return self

    @property
    def basepath(self):
        return "/" + self.url.split("/", 3)[3]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, method, path, body=None, access=ACCESS_KEY, secret=SECRET_KEY,
                timestamp_ms=None, user_agent="pytest", sign_path=None):
        """One signed request; returns (status, parsed JSON body or None, headers)."""
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        signed = sign_path or (self.basepath + "/" + path.split("?")[0])
        to_sign = f"{access}:{method}:{signed}:{ts}:{user_agent}"
        signature = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(),
                                              hashlib.sha256).digest()).decode()
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/" + path, data=data, method=method, headers={
            "x-esauth-access": access, "x-esauth-timestamp": str(ts),
            "x-esauth-signature": signature, "User-Agent": user_agent,
            "Accept": "application/json", "x-es-details": "basic"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None), dict(resp.headers)
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, (json.loads(raw) if raw else None), dict(err.headers)

    def requests_log(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_emulator/requests",
                                    timeout=10) as resp:
            return json.loads(resp.read())["requests"]

    def wait_job(self, job_id, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body, _ = self.request("GET", f"admin/Job/{job_id}")
            assert status == 200, body
            job = body["jobs"][0]
            if job["status"] != "RUNNING":
                return job
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} still RUNNING")
