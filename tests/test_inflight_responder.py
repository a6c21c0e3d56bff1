"""bench/inflight.py's delaying HTTPS responder (bench/responder/responder.go)
really answers: HTTP/2 over TLS with the CA it wrote, the recorded enStratus
server document with the id asked for, enStratus' 404 body elsewhere, and
counters that saw it all. curl's own CLI is the client (not our adapter)."""
import json
import pathlib
import subprocess
import sys

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
