"""One server per state directory: a second cloudplaned on a directory in use
exits non-zero naming the holder; SIGKILL of the holder frees the directory."""
import signal
import subprocess

from cloudplane_testing import SERVER_BINARY, Server, accounts_pb2


def start_second(state_dir, tmp_path):
    port_file = tmp_path / "second.port"
    return subprocess.run(
        [str(SERVER_BINARY), "--listen=127.0.0.1:0", f"--state_dir={state_dir}",
         f"--port_file={port_file}"],
        capture_output=True, text=True, timeout=10), port_file


def test_second_server_is_refused_until_the_first_dies(tmp_path):
    state_dir = tmp_path / "state"
    first = Server(state_dir).start()
    try:
        second, port_file = start_second(state_dir, tmp_path)
        assert second.returncode != 0, second
        assert (f"cloudplaned: state directory {state_dir} is in use by pid "
                f"{first.process.pid} (started ") in second.stderr, second.stderr
        assert "one server per state directory" in second.stderr
        assert not port_file.exists()  # it never served
        # The first one is unharmed.
        accounts = first.accounts().ListAccounts(accounts_pb2.ListAccountsRequest(), timeout=10)
        assert [a.name for a in accounts.accounts] == ["accounts/sandbox"]
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL

    # The kernel released the lock with the killed process.
    third = Server(state_dir).start()
    try:
        assert third.accounts().ListAccounts(accounts_pb2.ListAccountsRequest(),
                                             timeout=10).accounts
        second, _ = start_second(state_dir, tmp_path)
        assert second.returncode != 0
        assert f"in use by pid {third.process.pid} (started " in second.stderr, second.stderr
    finally:
        assert third.stop() == 0, third.log()
