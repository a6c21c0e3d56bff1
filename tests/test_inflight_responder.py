"""bench/inflight.py's delaying HTTPS responder (bench/responder/responder.go)
really answers: HTTP/2 over TLS with the CA it wrote, the recorded enStratus
server document with the id asked for, enStratus' 404 body elsewhere, and
counters that saw it all. curl's own CLI is the client (not our adapter)."""
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import inflight  # noqa: E402


def curl(responder, path, *flags):
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(responder.ca), *flags,
         "-w", "\n%{http_version} %{http_code}", responder.base_url + path],
        stdout=subprocess.PIPE, check=True, text=True, timeout=10).stdout
    body, _, tail = out.rpartition("\n")
    version, code = tail.split()
    return version, int(code), json.loads(body)


def test_responder_answers_over_http2_and_counts(tmp_path):
    inflight.build_responder()
    responder = inflight.Responder(tmp_path, delay_s=0.1).start()
    try:
        version, code, body = curl(responder, "/infrastructure/Server/4242", "--http2")
        assert (version, code) == ("2", 200)
        assert len(body["servers"]) == 1
        server = body["servers"][0]
        assert server["serverId"] == 4242
        assert server["name"] == "skang-debug-script-dev"  # the recorded mixcoatl server

        version, code, body = curl(responder, "/infrastructure/Volume", "--http1.1")
        assert (version, code) == ("1.1", 404)
        assert "No such API path" in body["error"]["message"]

        stats = responder.stats()
        assert stats["connections_accepted"] == stats["connections_ever"] == 2
        assert stats["requests"] == 2
        assert (stats["server_gets"], stats["not_found"]) == (1, 1)
        assert stats["protocols"] == {"HTTP/2.0": 1, "HTTP/1.1": 1}
        assert stats["max_in_flight"] == 1 and stats["in_flight"] == 0

        stats = responder.reset()
        assert (stats["requests"], stats["connections_accepted"]) == (0, 0)
        assert stats["connections_ever"] == 2
    finally:
        responder.stop()
    # Closing its stdin ended it.
    assert responder.process.returncode == 0


def test_provider_http_config_caps_connections_and_closes_idle_ones(tmp_path):
    """ServerConfig.provider_http reaches the shared transport: 48 reads at
    once, against a responder allowing one HTTP/2 stream per connection (so
    more connections is the only way to more reads at once), never hold
    more than max_connections_per_host connections open at the responder,
    and those close idle_close_seconds after the last answer, not before."""
    import concurrent.futures  # noqa: PLC0415

    from cloudplane_testing import Server, compute_pb2  # noqa: PLC0415

    inflight.build_responder()
    responder = inflight.Responder(tmp_path / "responder", delay_s=0.3, max_streams=1).start()
    os.environ[inflight.KEYS_ENV] = inflight.KEYS
    config = inflight.CONFIG.format(port=responder.port, ca=responder.ca, env=inflight.KEYS_ENV,
                                    budget=inflight.BUDGET)
    config += "provider_http { max_connections_per_host: 3 idle_close_seconds: 3 }\n"
    server = Server(tmp_path / "state", config).start()
    try:
        responder.reset()
        compute = server.compute()

        def read(i):
            return compute.GetInstance(
                compute_pb2.GetInstanceRequest(name=f"{inflight.ACCOUNT}/instances/{2000000 + i}"),
                timeout=60)

        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            answers = list(pool.map(read, range(48)))
        answered = time.monotonic()
        assert [a.name for a in answers] == [
            f"{inflight.ACCOUNT}/instances/{2000000 + i}" for i in range(48)]
        stats = responder.stats()
        assert stats["server_gets"] == 48
        # Counted where they happen: the responder's own connection states.
        assert stats["max_connections_open"] == 3, stats
        assert stats["connections_open"] >= 1, stats  # kept for reuse at first
        while responder.stats()["connections_open"] > 0:
            assert time.monotonic() - answered < 20, responder.stats()
            time.sleep(0.1)
        closed_after = time.monotonic() - answered
        assert closed_after >= 2.0, closed_after
        # The next read connects again.
        assert read(99).name == f"{inflight.ACCOUNT}/instances/2000099"
        assert responder.stats()["connections_accepted"] == stats["connections_accepted"] + 1
    finally:
        server.stop()
        responder.stop()
