"""SIGHUP re-reads the role bindings and API keys: a removed binding takes
effect at once, on calls and on a Watch stream that stays open; a reload
that would not load keeps the running state."""
import queue
import threading
import time

import grpc

import auth_testing
from cloudplane_testing import Server, compute_pb2, watch_pb2, watch_pb2_grpc

ACCOUNTS = 'accounts { id: "alpha" provider: "sandbox" }\naccounts { id: "beta" provider: "sandbox" }\n'


def config(keys, *bindings):
    entries = [auth_testing.api_key_entry(p, digest) for p, (_, digest) in keys.items()]
    return ACCOUNTS + auth_testing.auth_section(*entries, *bindings)


def create(server, key, account, instance_id):
    return server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=f"accounts/{account}", instance_id=instance_id,
        instance=compute_pb2.Instance(image=f"accounts/{account}/images/debian-12",
                                      machine_type=f"accounts/{account}/machineTypes/small")),
        metadata=auth_testing.bearer(key))


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_removed_binding_stops_calls_and_watch_at_once(tmp_path):
    keys = {"root": auth_testing.api_key(), "watcher": auth_testing.api_key()}
    root, watcher = keys["root"][0], keys["watcher"][0]
    both = config(keys, auth_testing.binding("ADMIN", principals=["root"]),
                  auth_testing.binding("VIEWER", principals=["watcher"], accounts=["alpha", "beta"]))
    alpha_only = config(keys, auth_testing.binding("ADMIN", principals=["root"]),
                        auth_testing.binding("VIEWER", principals=["watcher"], accounts=["alpha"]))
    server = Server(tmp_path, config_text=both).start()
    try:
        seen = queue.Queue()
        stream = watch_pb2_grpc.WatchServiceStub(server.channel).Watch(
            watch_pb2.WatchRequest(parent="accounts/-", heartbeat_interval_seconds=1),
            metadata=auth_testing.bearer(watcher))

        def read():
            try:
                for change in stream:
                    seen.put(change)
            except grpc.RpcError as error:
                seen.put(error)

        threading.Thread(target=read, daemon=True).start()
        names = []

        def seen_names():
            while not seen.empty():
                item = seen.get()
                if isinstance(item, grpc.RpcError):
                    names.append(f"ended:{item.code()}")
                elif item.resource_name:
                    names.append(item.resource_name)
            return names

        create(server, root, "beta", "before")
        assert wait_for(lambda: "accounts/beta/instances/before" in seen_names())

        server.reload(alpha_only)
        assert wait_for(lambda: "reloaded authentication" in server.log())
        # Calls: beta is now an account the watcher does not see.
        code, info, _ = auth_testing.refusal(
            server.compute().GetInstance,
            compute_pb2.GetInstanceRequest(name="accounts/beta/instances/before"),
            metadata=auth_testing.bearer(watcher))
        assert (code, info.reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")
        # The stream stays open; beta's changes stop, alpha's still come.
        create(server, root, "beta", "after")
        create(server, root, "alpha", "marker")
        assert wait_for(lambda: "accounts/alpha/instances/marker" in seen_names())
        time.sleep(0.5)
        assert not [n for n in seen_names() if n.startswith("accounts/beta/instances/after")]
        assert not [n for n in names if n.startswith("ended:")], names
        stream.cancel()
    finally:
        server.stop()


def test_reload_that_does_not_load_keeps_the_running_state(tmp_path):
    keys = {"root": auth_testing.api_key()}
    good = config(keys, auth_testing.binding("ADMIN", principals=["root"]))
    server = Server(tmp_path, config_text=good).start()
    try:
        create(server, keys["root"][0], "alpha", "one")
        # A binding without a role does not load: nothing changes.
        server.reload(good.replace("role: ADMIN", "role: ROLE_UNSPECIFIED"))
        assert wait_for(lambda: "reload refused" in server.log())
        create(server, keys["root"][0], "alpha", "two")
        # A new key added by a reload works, the old one still does.
        keys["ci"] = auth_testing.api_key()
        server.reload(config(keys, auth_testing.binding("ADMIN", principals=["root"]),
                             auth_testing.binding("OPERATOR", principals=["ci"])))
        assert wait_for(lambda: "reloaded authentication" in server.log())
        create(server, keys["ci"][0], "beta", "three")
        create(server, keys["root"][0], "alpha", "four")
        assert keys["ci"][0] not in server.log() and keys["root"][0] not in server.log()
    finally:
        server.stop()
