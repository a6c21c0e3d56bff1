"""Safe defaults of cloudplaned without authentication (issue 12): loopback
only unless --insecure_allow_remote, a private state directory and database,
and request fingerprints that are hashes, not the requests."""
import hashlib
import os
import sqlite3
import stat
import subprocess

import auth_testing as at
from cloudplane_testing import SERVER_BINARY, Server, compute_pb2

ACCOUNT = "accounts/sandbox"
MARKER = b"s3cr3t-marker"


def create(server, instance_id, request_id):
    return server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id=instance_id, request_id=request_id,
        instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small",
                                      user_data=MARKER.decode())))


def fingerprints(db):
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT request_id, request_fingerprint FROM operations").fetchall()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_remote_address_is_refused_without_the_flag(tmp_path):
    state = tmp_path / "state"
    result = subprocess.run(
        [str(SERVER_BINARY), "--listen=0.0.0.0:0", f"--state_dir={state}"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "0.0.0.0:0" in result.stderr, result.stderr
    assert "--insecure_allow_remote" in result.stderr, result.stderr
    assert not state.exists()  # Refused before anything was created.


def test_insecure_allow_remote_starts_with_a_warning(tmp_path):
    server = Server(tmp_path, extra_args=["--listen=0.0.0.0:0", "--insecure_allow_remote"])
    server.start()
    try:
        # Bound on every interface; reached here through 127.0.0.1.
        assert server.wait(create(server, "remote", "req-remote")).done
        warnings = [line for line in server.log().splitlines() if "WARNING" in line]
        assert warnings and "0.0.0.0:0" in warnings[0], server.log()
    finally:
        assert server.stop() == 0, server.log()


def _authenticated_config(digest):
    return at.auth_section(at.api_key_entry("ci", digest),
                           at.binding("OPERATOR", principals=["ci"], accounts=["sandbox"]))


def test_remote_address_with_authentication_and_tls_needs_no_flag(tmp_path):
    pki = at.Pki(tmp_path / "pki")
    key, digest = at.api_key()
    server = Server(tmp_path, config_text=at.tls_section(pki.server_cert, pki.server_key)
                    + _authenticated_config(digest), tls_root=pki.ca, token=key,
                    extra_args=["--listen=0.0.0.0:0"]).start()
    try:
        assert "listening on 0.0.0.0:" in server.log(), server.log()
        assert "WARNING" not in server.log(), server.log()
        assert server.wait(create(server, "remote-auth", "req-remote-auth")).done
    finally:
        assert server.stop() == 0, server.log()


def test_remote_address_with_authentication_but_no_tls_warns_of_clear_text(tmp_path):
    """Accepted without --insecure_allow_remote, but the tokens would cross
    the network unencrypted: one WARNING says so, and names no flag."""
    key, digest = at.api_key()
    server = Server(tmp_path, config_text=_authenticated_config(digest), token=key,
                    extra_args=["--listen=0.0.0.0:0"]).start()
    try:
        warnings = [line for line in server.log().splitlines() if "WARNING" in line]
        assert len(warnings) == 1, server.log()
        assert "0.0.0.0:0" in warnings[0] and "TLS" in warnings[0], warnings
        assert "--insecure_allow_remote" not in server.log()
        assert server.wait(create(server, "remote-auth", "req-remote-auth")).done
        assert key not in server.log()
    finally:
        assert server.stop() == 0, server.log()


def test_loopback_needs_no_flag_and_logs_no_warning(tmp_path):
    server = Server(tmp_path).start()  # --listen=127.0.0.1:0
    try:
        assert "WARNING" not in server.log()
    finally:
        assert server.stop() == 0, server.log()


def test_new_state_is_private_and_fingerprints_are_hashes(tmp_path):
    state = tmp_path / "fresh" / "state"
    db = state / "cloudplane.db"
    old_umask = os.umask(0)  # Inherited by the server: the modes must not depend on it.
    try:
        server = Server(tmp_path, extra_args=[f"--state_dir={state}"]).start()
    finally:
        os.umask(old_umask)
    try:
        first = server.wait(create(server, "secret", "req-secret"))
        assert first.done and not first.HasField("error"), first
        assert mode(state) == 0o700
        for path in (db, state / "cloudplane.db-wal", state / "cloudplane.db-shm"):
            if path.exists() or path == db:
                assert mode(path) == 0o600, path
        # The retry finds the same operation; another request with its
        # request_id is still refused.
        assert create(server, "secret", "req-secret").name == first.name
    finally:
        assert server.stop() == 0, server.log()

    rows = fingerprints(db)
    assert rows and all(len(fp) == 32 for _, fp in rows)
    assert MARKER not in db.read_bytes()
    for extra in ("cloudplane.db-wal", "cloudplane.db-shm"):
        if (state / extra).exists():
            assert MARKER not in (state / extra).read_bytes()


def test_older_raw_fingerprints_are_rewritten_to_their_hash(tmp_path):
    """A state file from before fingerprints were hashed: the stored
    serialization is replaced by its SHA-256 at the next start, and a retry
    with the old request_id still returns the old operation."""
    state = tmp_path / "state"
    server = Server(tmp_path, extra_args=[f"--state_dir={state}"]).start()
    try:
        first = server.wait(create(server, "old", "req-old"))
    finally:
        assert server.stop() == 0, server.log()

    # What the server used to store: the deterministic serialization of the
    # request without request_id.
    request = compute_pb2.CreateInstanceRequest(
        parent=ACCOUNT, instance_id="old",
        instance=compute_pb2.Instance(image=ACCOUNT + "/images/debian-12",
                                      machine_type=ACCOUNT + "/machineTypes/small",
                                      user_data=MARKER.decode()))
    raw = request.SerializeToString(deterministic=True)
    db = state / "cloudplane.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT request_fingerprint FROM operations").fetchone()[0] == \
            hashlib.sha256(raw).digest()
        conn.execute("UPDATE operations SET request_fingerprint = ?", (raw,))
        conn.execute("DELETE FROM meta WHERE key = 'fingerprints_hashed'")
    conn.close()

    server = Server(tmp_path, extra_args=[f"--state_dir={state}"]).start()
    try:
        assert fingerprints(db) == [("req-old", hashlib.sha256(raw).digest())]
        assert create(server, "old", "req-old").name == first.name
    finally:
        assert server.stop() == 0, server.log()
    assert MARKER not in db.read_bytes()
