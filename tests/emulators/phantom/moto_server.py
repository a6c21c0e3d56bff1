#!/usr/bin/env python3
"""moto's server mode (PyPI `moto[server]`) on a loopback port, for the AWS
dialect of the phantom adapter.

  python3 moto_server.py [--port 0] [--ready-file PATH] [--max-lifetime 900] [--auth]

Binds 127.0.0.1 on --port (0, the default, picks a free one) and prints
`READY url=http://127.0.0.1:PORT [access_key=AK secret_key=SK]`. With --auth
moto checks every request's SigV4 signature against its IAM (moto's
INITIAL_NO_AUTH_ACTION_COUNT=0), and a test user with an allow-all policy is
made in-process; its keys are in the READY line (test-only values that moto
generated). Stops on SIGTERM/SIGINT, after --max-lifetime seconds, and when
its parent goes away.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0,
                    help="loopback port; a test restarts moto where an account points")
    ap.add_argument("--ready-file")
    ap.add_argument("--max-lifetime", type=float, default=900)
    ap.add_argument("--auth", action="store_true")
    args = ap.parse_args(argv)
    if args.auth:
        # Read by moto when it is imported.
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    from moto.server import ThreadedMotoServer  # noqa: E402 (after the environment)

    extra = ""
    if args.auth:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iam.models import iam_backends
        iam = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
        iam.create_user("us-east-1", "cloudplane", path="/")
        iam.put_user_policy("cloudplane", "allow-all", json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key("cloudplane")
        extra = f" access_key={key.access_key_id} secret_key={key.secret_access_key}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    line = f"READY url=http://{host}:{port}{extra}"
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(line + "\n")
        os.replace(tmp, args.ready_file)
    print(line, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    deadline = time.monotonic() + args.max_lifetime if args.max_lifetime > 0 else None
    while not stop.wait(0.2):
        if os.getppid() != parent or (deadline is not None and time.monotonic() > deadline):
            break
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
