"""Helpers shared by the client suites."""
import functools
import shutil
import threading
from concurrent import futures

import grpc
import pytest

from cloudplane_testing import BAZEL_BIN

CLOUDPLANECTL = BAZEL_BIN / "clients" / "cloudplanectl" / "cloudplanectl"


def require_tool(path_or_name, what):
    """The absolute path of a toolchain binary. A missing one fails the test:
    CI must not pass without a language, so nothing here is ever skipped."""
    found = shutil.which(str(path_or_name))
    if found is None:
        pytest.fail(f"{what}: {path_or_name} is missing; run tools/setup (tools/setup_clients)",
                    pytrace=False)
    return found


class FirstAttemptFails:
    """A gRPC proxy in front of `upstream` (host:port) that answers the first
    attempt of every unary call UNAVAILABLE and forwards any later one with the
    same method and request bytes. A client passes through only if it retries
    UNAVAILABLE, and it must resend the very same request (same request_id).

    `calls` records (method, request bytes, "injected" or the forwarded code).
    """

    def __init__(self, upstream):
        self._upstream = grpc.insecure_channel(upstream)
        self._lock = threading.Lock()
        self._seen = set()
        self.calls = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers([self])
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{self.port}"

    def __enter__(self):
        self._server.start()
        return self

    def __exit__(self, *exc):
        self._server.stop(grace=None)
        self._upstream.close()

    # grpc.GenericRpcHandler: every method, requests and responses as bytes.
    def service(self, handler_call_details):
        return grpc.unary_unary_rpc_method_handler(
            functools.partial(self._forward, handler_call_details.method))

    def _forward(self, method, request, context):
        with self._lock:
            first = (method, request) not in self._seen
            self._seen.add((method, request))
        if first:
            self._record(method, request, "injected")
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected by the test proxy")
        # A call without a deadline reports some 1e18 seconds remaining, more
        # than a deadline can hold.
        remaining = context.time_remaining()
        try:
            response = self._upstream.unary_unary(method)(
                request, timeout=remaining if remaining < 3600 else None)
        except grpc.RpcError as error:
            self._record(method, request, error.code().name)
            context.set_trailing_metadata(error.trailing_metadata() or ())
            context.abort(error.code(), error.details())
        self._record(method, request, "OK")
        return response

    def _record(self, method, request, outcome):
        with self._lock:
            self.calls.append((method, request, outcome))

    def attempts(self, method):
        """[(request bytes, outcome)] of every call of `method` ("Service/Method")."""
        return [(request, outcome) for m, request, outcome in self.calls
                if m.endswith("." + method) or m.endswith("/" + method)]

    def check_every_call_retried(self):
        """Every request was answered after its injected failure: each distinct
        (method, bytes) shows up as "injected" once, then forwarded."""
        outcomes = {}
        for method, request, outcome in self.calls:
            outcomes.setdefault((method, request), []).append(outcome)
        assert outcomes, "no call went through the proxy"
        for (method, _), seen in outcomes.items():
            assert seen[0] == "injected" and len(seen) >= 2 and "injected" not in seen[1:], (
                method, seen)
