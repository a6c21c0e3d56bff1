"""Test support for the CloudSigma emulator: runs it as a process and gives
the account config that points cloudplaned at it. The secret goes through an
environment variable (config `credentials { env: … }`), which the server
subprocess inherits from os.environ."""
import os
import pathlib
import subprocess
import sys
import time

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

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
