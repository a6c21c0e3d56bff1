"""Tests of the CloudSigma emulator: the wire shapes of the reference, and
the real pycloudsigma client (PyPI `cloudsigma`) driving it unchanged."""
import base64
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cloudsigma_emulator  # noqa: E402

USER, PASSWORD = "user@example.com", "emulator-pw"


@pytest.fixture(scope="module")
def emu():
    e = cloudsigma_emulator.CloudSigmaEmulator(username=USER, password=PASSWORD,
                                               transition_delay=0.2, delete_delay=0.2).start()
    yield e
    e.stop()


def call(emu, method, path, body=None, password=PASSWORD, raw_path=False):
    url = ("http://" + emu.base + path) if raw_path else emu.api_endpoint.rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
            return resp.status, (json.loads(text) if text else None), resp.headers
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, (json.loads(text) if text else None), e.headers


def wait_for(emu, path, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body, _ = call(emu, "GET", path)
        if predicate(status, body):
            return status, body
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached the expected state: {status} {body}")


def test_basic_auth_is_required(emu):
    status, body, headers = call(emu, "GET", "/servers/", password="wrong")
    assert status == 401
    assert body[0]["error_type"] == "permission" and "error_point" in body[0]
    assert headers["Content-Type"].startswith("application/json")


def test_drive_lifecycle_and_error_list(emu):
    status, body, _ = call(emu, "POST", "/drives/", {"objects": [
        {"name": "d1", "size": 1073741824, "media": "disk"}]})
    assert status == 201
    (drive,) = body["objects"]
    assert drive["status"] == "creating" and drive["owner"]["uuid"]
    assert drive["resource_uri"] == f"/api/2.0/drives/{drive['uuid']}/"
    wait_for(emu, f"/drives/{drive['uuid']}/", lambda s, b: b["status"] == "unmounted")
    # No trailing slash is accepted too.
    assert call(emu, "GET", f"/drives/{drive['uuid']}")[0] == 200
    # Missing field → validation naming it; nothing is created.
    before = call(emu, "GET", "/drives/?limit=0")[1]["meta"]["total_count"]
    status, body, _ = call(emu, "POST", "/drives/", {"objects": [
        {"name": "ok", "size": 1, "media": "disk"}, {"name": "bad", "media": "disk"}]})
    assert status == 400 and body == [{"error_point": "size", "error_type": "validation",
                                       "error_message": "This field is required."}]
    assert call(emu, "GET", "/drives/?limit=0")[1]["meta"]["total_count"] == before
    status, body, _ = call(emu, "POST", "/drives/", {"objects": [
        {"name": "neg", "size": -5, "media": "disk"}]})
    assert status == 400 and body[0]["error_point"] == "size"
    # Async delete: 204, then 404 notexist.
    status, body, headers = call(emu, "DELETE", f"/drives/{drive['uuid']}/")
    assert status == 204 and body is None and headers["Content-Length"] == "0"
    status, body = wait_for(emu, f"/drives/{drive['uuid']}/", lambda s, b: s == 404)
    assert body == [{"error_point": None, "error_type": "notexist",
                     "error_message": f"Object with uuid {drive['uuid']} does not exist"}]


def test_pagination_limit_offset_and_fields(emu):
    call(emu, "POST", "/drives/", {"objects": [
        {"name": f"p{n}", "size": 1 << 30, "media": "disk"} for n in range(25)]})
    status, body, _ = call(emu, "GET", "/drives/")
    assert status == 200 and body["meta"]["limit"] == 20 and len(body["objects"]) == 20
    total = body["meta"]["total_count"]
    assert total >= 25
    assert set(body["objects"][0]) <= {"uuid", "resource_uri", "owner", "status"}
    all_ = call(emu, "GET", "/drives/detail/?limit=0")[1]
    assert all_["meta"] == {"limit": 0, "offset": 0, "total_count": total}
    assert len(all_["objects"]) == total and "name" in all_["objects"][0]
    seen, offset = [], 0
    while offset < total:
        page = call(emu, "GET", f"/drives/detail/?limit=7&offset={offset}")[1]
        seen += [o["uuid"] for o in page["objects"]]
        offset += len(page["objects"])
    assert seen == [o["uuid"] for o in all_["objects"]]
    only = call(emu, "GET", "/drives/detail/?limit=0&fields=uuid,status")[1]["objects"]
    assert all(set(o) == {"uuid", "status"} for o in only)


def test_pages_copy_only_their_objects_and_filter_first(emu):
    """A page answers only its slice (the stored objects are not copied
    whole for every page), filters apply before limit/offset, uuid= takes a
    comma list (OR), and /emulator/list-requests counts the list requests."""
    made = call(emu, "POST", "/servers/", {"objects": [
        {"name": f"pg{n}", "cpu": 1000, "mem": 512 << 20, "vnc_password": "pw"}
        for n in range(5)]})[1]["objects"]
    before = call(emu, "GET", "/emulator/list-requests", raw_path=True)[1].get("servers", 0)
    wanted = [made[1]["uuid"], made[3]["uuid"], made[4]["uuid"]]  # in creation order
    page = call(emu, "GET", "/servers/detail/?uuid=" + ",".join(wanted) + "&limit=2&offset=1")[1]
    assert page["meta"] == {"limit": 2, "offset": 1, "total_count": 3}
    assert [o["uuid"] for o in page["objects"]] == wanted[1:]
    short = call(emu, "GET", f"/servers/?uuid={made[0]['uuid']}&fields=uuid,name")[1]
    assert short["objects"] == [{"uuid": made[0]["uuid"], "name": "pg0"}]
    counts = call(emu, "GET", "/emulator/list-requests", raw_path=True)[1]
    assert counts["servers"] - before == 2 and counts["all"] >= counts["servers"]
    # uuid= answers the uuids asked, each once, in the order asked; an
    # unknown one is left out.
    asked = [made[4]["uuid"], made[2]["uuid"], made[4]["uuid"], "0" * 8 + "-0000-0000-0000-" +
             "0" * 12]
    page = call(emu, "GET", "/servers/detail/?limit=0&uuid=" + ",".join(asked))[1]
    assert [o["uuid"] for o in page["objects"]] == asked[:2]
    assert page["meta"]["total_count"] == 2
    # No internal key ("_deleting") leaks into a list.
    call(emu, "DELETE", f"/servers/{made[0]['uuid']}/")
    page = call(emu, "GET", f"/servers/detail/?uuid={made[0]['uuid']}")[1]
    assert all(not k.startswith("_") for o in page["objects"] for k in o)


def test_nic_ip_confs_answer_ip_null_as_cloudsigma_does(emu):
    """response_server_add_manual_nic and response_guest_for_context answer a
    dhcp or manual ip_v4_conf with "ip": null (the request had no ip);
    Libcloud's CloudSigma driver reads conf["ip"] and fails without it."""
    spec = {"name": "ipnull", "cpu": 1000, "mem": 512 << 20, "vnc_password": "pw",
            "nics": [{"ip_v4_conf": {"conf": "dhcp"}, "model": "virtio"},
                     {"ip_v4_conf": {"conf": "manual"}},
                     {"ip_v4_conf": {"conf": "dhcp"}, "ip_v6_conf": {"conf": "dhcp"}}]}
    status, body, _ = call(emu, "POST", "/servers/", {"objects": [spec]})
    assert status == 201, body
    server = body["objects"][0]
    listed = call(emu, "GET", f"/servers/detail/?uuid={server['uuid']}")[1]["objects"][0]
    for got in (server, listed, call(emu, "GET", f"/servers/{server['uuid']}/")[1]):
        dhcp, manual, both = got["nics"]
        assert dhcp["ip_v4_conf"] == {"conf": "dhcp", "ip": None}
        assert manual["ip_v4_conf"] == {"conf": "manual", "ip": None}
        assert dhcp["ip_v6_conf"] is None and manual["ip_v6_conf"] is None
        assert both["ip_v6_conf"] == {"conf": "dhcp", "ip": None}
        # The recorded answer's other NIC keys (response_server_add_manual_nic).
        assert {"boot_order", "mac", "model", "runtime", "vlan"} <= set(manual)
    status, body, _ = call(emu, "POST", "/servers/", {"objects": [dict(
        spec, nics=[{"ip_v6_conf": {"conf": "bogus"}}])]})
    assert status == 400 and body[0]["error_point"] == "nics"


def test_server_lifecycle_attach_and_wrong_state(emu):
    _, body, _ = call(emu, "POST", "/drives/", {"objects": [
        {"name": "boot", "size": 1 << 30, "media": "disk"}]})
    drive = body["objects"][0]["uuid"]
    wait_for(emu, f"/drives/{drive}/", lambda s, b: b["status"] == "unmounted")
    status, body, _ = call(emu, "POST", "/servers/", {"objects": [
        {"name": "web1", "cpu": 1000, "mem": 536870912, "vnc_password": "pw",
         "nics": [{"ip_v4_conf": {"conf": "dhcp", "ip": None}, "model": "virtio"}]}]})
    assert status == 201
    server = body["objects"][0]
    assert server["status"] == "stopped" and server["runtime"] is None
    uuid = server["uuid"]
    # Attach by PUT of the whole definition.
    server["drives"] = [{"boot_order": 1, "dev_channel": "0:0", "device": "virtio",
                         "drive": drive}]
    status, body, _ = call(emu, "PUT", f"/servers/{uuid}/", server)
    assert status == 200 and body["drives"][0]["drive"]["uuid"] == drive
    wait_for(emu, f"/drives/{drive}/", lambda s, b: b["status"] == "mounted" and
             b["mounted_on"][0]["uuid"] == uuid)
    # Attaching a missing drive fails and changes nothing.
    bad = dict(body, drives=[{"device": "virtio", "dev_channel": "0:1",
                              "drive": "00000000-0000-0000-0000-000000000000"}])
    status, err, _ = call(emu, "PUT", f"/servers/{uuid}/", bad)
    assert status == 400 and err[0]["error_point"] == "drives"
    assert call(emu, "GET", f"/servers/{uuid}/")[1]["drives"][0]["drive"]["uuid"] == drive
    # Start, wrong-state start, running with a runtime, stop.
    status, body, _ = call(emu, "POST", f"/servers/{uuid}/action/?do=start", {})
    assert status == 202 and body == {"action": "start", "result": "success", "uuid": uuid}
    status, err, _ = call(emu, "POST", f"/servers/{uuid}/action/?do=start", {})
    assert status == 403 and err[0]["error_type"] == "permission"
    _, running = wait_for(emu, f"/servers/{uuid}/", lambda s, b: b["status"] == "running")
    assert running["runtime"]["nics"][0]["ip_v4"]["uuid"]
    status, err, _ = call(emu, "DELETE", f"/servers/{uuid}/")
    assert status == 403
    # The Go SDK sends actions without a body.
    assert call(emu, "POST", f"/servers/{uuid}/action/?do=stop")[0] == 202
    wait_for(emu, f"/servers/{uuid}/", lambda s, b: b["status"] == "stopped")
    assert call(emu, "DELETE", f"/servers/{uuid}/")[0] == 204
    wait_for(emu, f"/servers/{uuid}/", lambda s, b: s == 404)
    wait_for(emu, f"/drives/{drive}/", lambda s, b: b["status"] == "unmounted")


def test_websocket_frames_with_a_real_websocket_client(emu):
    websocket = pytest.importorskip("websocket") if not os.environ.get("CI") else \
        __import__("websocket")
    status, body, headers = call(emu, "POST", "/accounts/action/?do=authenticate_asynchronous",
                                 {})
    assert status == 200 and body == {}
    cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    ws = websocket.create_connection(emu.ws_endpoint, timeout=5,
                                     header=[f"Cookie: async_auth={cookie}"])
    try:
        ws.ping(b"hi")
        _, body, _ = call(emu, "POST", "/drives/", {"objects": [
            {"name": "ws", "size": 1 << 30, "media": "disk"}]})
        uuid = body["objects"][0]["uuid"]
        frames = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            frame = json.loads(ws.recv())
            if frame["resource_uri"] == f"/api/2.0/drives/{uuid}/":
                frames.append(frame)
                if frame.get("object", {}).get("status") == "unmounted" or len(frames) >= 2:
                    break
        assert frames and all(f["resource_type"] == "drives" for f in frames)
    finally:
        ws.close()
    # The cookie is single use; a bad one is refused.
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(emu.ws_endpoint, timeout=5,
                                    header=[f"Cookie: async_auth={cookie}"])


def test_websocket_cut_refuses_handshakes_and_closes_open_ones(emu):
    websocket = pytest.importorskip("websocket") if not os.environ.get("CI") else \
        __import__("websocket")

    def cookie():
        _, _, headers = call(emu, "POST", "/accounts/action/?do=authenticate_asynchronous", {})
        return headers["Set-Cookie"].split(";")[0].split("=", 1)[1]

    def control(body):
        req = urllib.request.Request(f"http://{emu.base}/emulator/websockets",
                                     data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())

    ws = websocket.create_connection(emu.ws_endpoint, timeout=5,
                                     header=[f"Cookie: async_auth={cookie()}"])
    try:
        assert control({"refuse": True}) == (200, {"refuse": True})
        # The open socket is closed by the server (a close frame, then EOF).
        with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
            for _ in range(100):
                ws.recv()
                if not ws.connected:
                    raise websocket.WebSocketConnectionClosedException("closed")
    finally:
        ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(emu.ws_endpoint, timeout=5,
                                    header=[f"Cookie: async_auth={cookie()}"])
    assert err.value.status_code == 503
    # REST still answers while the websocket is cut.
    assert call(emu, "GET", "/servers/")[0] == 200
    assert control({"refuse": False}) == (200, {"refuse": False})
    ws = websocket.create_connection(emu.ws_endpoint, timeout=5,
                                     header=[f"Cookie: async_auth={cookie()}"])
    ws.close()


PYCLOUDSIGMA_SCRIPT = textwrap.dedent('''
    import json, time
    import cloudsigma
    drives, servers = cloudsigma.resource.Drive(), cloudsigma.resource.Server()
    ran = []
    d = drives.create({"name": "pyd", "size": 1 << 30, "media": "disk"}); ran.append("drive.create")
    for _ in range(100):
        if drives.get(d["uuid"])["status"] == "unmounted": break
        time.sleep(0.05)
    assert any(x["uuid"] == d["uuid"] for x in drives.list_detail()); ran.append("drive.list_detail")
    s = servers.create({"name": "pys", "cpu": 1000, "mem": 512 * 1024 ** 2,
                        "vnc_password": "pw"}); ran.append("server.create")
    assert s["status"] == "stopped"
    assert any(x["uuid"] == s["uuid"] for x in servers.list()); ran.append("server.list")
    s["drives"] = [{"boot_order": 1, "dev_channel": "0:0", "device": "virtio", "drive": d["uuid"]}]
    s["meta"] = {"k": "v"}
    s = servers.update(s["uuid"], s); ran.append("server.update")
    assert s["meta"] == {"k": "v"} and s["drives"][0]["drive"]["uuid"] == d["uuid"]
    ws = cloudsigma.resource.Websocket(timeout=5); ran.append("websocket.connect")
    servers.start(s["uuid"]); ran.append("server.start")
    got = ws.wait_for_status(s["resource_uri"], cloudsigma.resource.Server, "running", timeout=10)
    assert got["status"] == "running"; ran.append("websocket.wait_for_status")
    servers.stop(s["uuid"]); ran.append("server.stop")
    for _ in range(100):
        if servers.get(s["uuid"])["status"] == "stopped": break
        time.sleep(0.05)
    try:
        servers.stop(s["uuid"])
        raise AssertionError("stop of a stopped server succeeded")
    except cloudsigma.errors.PermissionError:
        ran.append("server.stop-wrong-state")
    servers.delete(s["uuid"]); ran.append("server.delete")
    for _ in range(100):
        try:
            servers.get(s["uuid"]); time.sleep(0.05)
        except cloudsigma.errors.ClientError as e:
            assert e.status_code == 404; break
    drives.delete(d["uuid"]); ran.append("drive.delete")
    print(json.dumps(ran))
''')


def test_real_pycloudsigma_client(emu, tmp_path):
    import cloudsigma  # noqa: F401  (tools/requirements-clients.txt)
    conf = tmp_path / "cloudsigma.conf"
    conf.write_text(f"api_endpoint = {emu.api_endpoint}\nws_endpoint = {emu.ws_endpoint}\n"
                    f"username = {USER}\npassword = {PASSWORD}\n")
    result = subprocess.run([sys.executable, "-c", PYCLOUDSIGMA_SCRIPT],
                            env=dict(os.environ, CLOUDSIGMA_CONFIG=str(conf)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = json.loads(result.stdout.strip().splitlines()[-1])
    assert ran == ["drive.create", "drive.list_detail", "server.create", "server.list",
                   "server.update", "websocket.connect", "server.start",
                   "websocket.wait_for_status", "server.stop", "server.stop-wrong-state",
                   "server.delete", "drive.delete"]


def test_program_ready_line_and_sigterm(tmp_path):
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, str(HERE / "cloudsigma_emulator.py"),
                             "--ready-file", str(ready), "--max-lifetime", "60"],
                            stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (ready.exists() and ready.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        line = ready.read_text().split()
        assert line[0] == "READY" and line[1].startswith("api=http://127.0.0.1:")
        assert line[2].startswith("ws=ws://127.0.0.1:")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_subscriptions_buy_vlans_and_ips_that_only_expire(emu):
    status, body, _ = call(emu, "POST", "/subscriptions/",
                           {"objects": [{"resource": "vlan", "amount": "1",
                                         "period": "1 month"}]})
    assert status == 201
    sub = body["objects"][0]
    assert sub["resource"] == "vlan" and sub["auto_renew"] is True and sub["status"] == "active"
    vlan = sub["subscribed_object"]
    status, got, _ = call(emu, "GET", f"/vlans/{vlan}/")
    assert status == 200 and got["servers"] == [] and got["subscription"]["id"] == int(sub["id"])
    # Neither a VLAN nor its subscription can be deleted: only meta edits.
    assert call(emu, "DELETE", f"/vlans/{vlan}/")[0] == 405
    status, got, _ = call(emu, "PUT", f"/vlans/{vlan}/", {"meta": {"k": "v"}})
    assert status == 200 and got["meta"] == {"k": "v"}
    status, body, _ = call(emu, "POST", "/subscriptions/",
                           {"objects": [{"resource": "ip", "amount": "1", "period": "1 month"}]})
    ip_sub = body["objects"][0]
    ip = ip_sub["subscribed_object"]
    status, got, _ = call(emu, "GET", f"/ips/{ip}/")
    assert status == 200 and got["uuid"] == ip and got["netmask"] == 24 and got["server"] is None
    assert ip in [o["uuid"] for o in call(emu, "GET", "/ips/detail/")[1]["objects"]]
    status, body, _ = call(emu, "POST", "/subscriptions/",
                           {"objects": [{"resource": "vlan", "period": "1 month"}]})
    assert status == 400 and body[0]["error_point"] == "amount"
    # Expiry ends only the subscriptions that do not renew.
    status, got, _ = call(emu, "POST", f"/subscriptions/{sub['id']}/action/?do=auto_renew",
                          {"auto_renew": False})
    assert status == 200 and got["auto_renew"] is False
    assert call(emu, "POST", "/emulator/expire-subscriptions", raw_path=True)[1] == \
        {"expired": [sub["id"]]}
    assert call(emu, "GET", f"/vlans/{vlan}/")[0] == 404
    assert call(emu, "GET", f"/ips/{ip}/")[0] == 200
    assert call(emu, "POST", "/subscriptions/424242/action/?do=auto_renew",
                {"auto_renew": False})[0] == 404


def test_nics_vlans_static_ips_and_pubkeys_on_servers(emu):
    vlan = call(emu, "POST", "/subscriptions/", {"objects": [
        {"resource": "vlan", "amount": "1", "period": "1 month"}]})[1]["objects"][0][
            "subscribed_object"]
    ip = call(emu, "POST", "/subscriptions/", {"objects": [
        {"resource": "ip", "amount": "1", "period": "1 month"}]})[1]["objects"][0][
            "subscribed_object"]
    status, body, _ = call(emu, "POST", "/keypairs/", {"objects": [
        {"name": "ops", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops@host"}]})
    assert status == 201
    key = body["objects"][0]
    assert len(key["fingerprint"].split(":")) == 16
    assert call(emu, "POST", "/keypairs/", {"objects": [
        {"name": "bad", "public_key": "not a key"}]})[1][0]["error_point"] == "public_key"
    spec = {"name": "nics", "cpu": 1000, "mem": 512 << 20, "vnc_password": "pw",
            "pubkeys": [key["uuid"]],
            "nics": [{"vlan": vlan, "model": "e1000"},
                     {"ip_v4_conf": {"conf": "static", "ip": ip}, "model": "virtio"}]}
    status, body, _ = call(emu, "POST", "/servers/", {"objects": [spec]})
    assert status == 201, body
    server = body["objects"][0]
    assert server["pubkeys"][0]["uuid"] == key["uuid"]
    private, public = server["nics"]
    assert private["vlan"]["uuid"] == vlan and private["model"] == "e1000" and private["mac"]
    assert public["ip_v4_conf"]["ip"]["uuid"] == ip
    assert call(emu, "GET", f"/ips/{ip}/")[1]["server"]["uuid"] == server["uuid"]
    assert call(emu, "GET", f"/vlans/{vlan}/")[1]["servers"][0]["uuid"] == server["uuid"]
    # The same static IP on another server, a VLAN NIC with an IP config, an
    # unknown VLAN and an unknown keypair are validation errors.
    for nics, pubkeys in (([{"ip_v4_conf": {"conf": "static", "ip": ip}}], []),
                          ([{"vlan": vlan, "ip_v4_conf": {"conf": "dhcp"}}], []),
                          ([{"vlan": "7d3e0000-0000-4000-8000-000000000000"}], []),
                          ([], ["7d3e0000-0000-4000-8000-000000000000"])):
        status, body, _ = call(emu, "POST", "/servers/", {"objects": [
            dict(spec, nics=nics, pubkeys=pubkeys)]})
        assert status == 400, (nics, pubkeys)
        assert body[0]["error_point"] in ("nics", "pubkeys")
    # NICs are matched by mac: keep the private one, drop the public one,
    # add a DHCP one.
    server["nics"] = [{"mac": private["mac"], "vlan": vlan, "model": "e1000"},
                      {"ip_v4_conf": {"conf": "dhcp"}}]
    status, got, _ = call(emu, "PUT", f"/servers/{server['uuid']}/", server)
    assert status == 200
    assert got["nics"][0]["mac"] == private["mac"]
    assert got["nics"][1]["mac"] not in (private["mac"], public["mac"])
    assert call(emu, "GET", f"/ips/{ip}/")[1]["server"] is None
    # On a running server a NIC change is ignored without an error (§5.2).
    call(emu, "POST", f"/servers/{server['uuid']}/action/?do=start", {})
    wait_for(emu, f"/servers/{server['uuid']}/", lambda s, b: b["status"] == "running")
    running = call(emu, "GET", f"/servers/{server['uuid']}/")[1]
    lease = running["runtime"]["nics"][1]["ip_v4"]["uuid"]
    # The DHCP lease is listed with the IPs, without a subscription.
    status, dynamic, _ = call(emu, "GET", f"/ips/{lease}/")
    assert status == 200 and dynamic["subscription"] is None
    assert dynamic["server"]["uuid"] == server["uuid"]
    assert lease in [o["uuid"] for o in call(emu, "GET", "/ips/detail/")[1]["objects"]]
    running["nics"] = running["nics"][:1]
    status, got, _ = call(emu, "PUT", f"/servers/{server['uuid']}/", running)
    assert status == 200 and len(got["nics"]) == 2
    assert call(emu, "DELETE", f"/keypairs/{key['uuid']}/")[0] == 204
    assert call(emu, "GET", f"/keypairs/{key['uuid']}/")[0] == 404


PYCLOUDSIGMA_NETWORKS_SCRIPT = textwrap.dedent('''
    import json
    import cloudsigma
    from cloudsigma.resource import ResourceBase

    class Keypairs(ResourceBase):  # pycloudsigma 2.0.0 has no class for /keypairs/
        resource_name = "keypairs"

    subs, vlans, ips = (cloudsigma.resource.Subscriptions(), cloudsigma.resource.VLAN(),
                        cloudsigma.resource.IP())
    servers, keys = cloudsigma.resource.Server(), Keypairs()
    ran = []
    vsub = subs.create({"resource": "vlan", "amount": "1", "period": "1 month"})
    ran.append("subscription.create")
    vlan = vsub["subscribed_object"]
    assert vlans.get(vlan)["uuid"] == vlan; ran.append("vlan.get")
    assert any(v["uuid"] == vlan for v in vlans.list_detail()); ran.append("vlan.list_detail")
    vlans.update(vlan, {"meta": {"role": "db"}})
    assert vlans.get(vlan)["meta"] == {"role": "db"}; ran.append("vlan.update")
    ip = subs.create({"resource": "ip", "amount": "1", "period": "1 month"})["subscribed_object"]
    assert ips.get(ip)["server"] is None; ran.append("ip.get")
    assert any(i["uuid"] == ip for i in ips.list_detail()); ran.append("ip.list_detail")
    k = keys.create({"name": "ops", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ops"})
    assert keys.get(k["uuid"])["name"] == "ops"; ran.append("keypair.create")
    s = servers.create({"name": "pynet", "cpu": 1000, "mem": 512 * 1024 ** 2,
                        "vnc_password": "pw", "pubkeys": [k["uuid"]],
                        "nics": [{"vlan": vlan},
                                 {"ip_v4_conf": {"conf": "static", "ip": ip}}]})
    ran.append("server.create-with-nics")
    assert ips.get(ip)["server"]["uuid"] == s["uuid"]
    s["nics"] = s["nics"][:1]
    s = servers.update(s["uuid"], s); ran.append("server.update-nics")
    assert len(s["nics"]) == 1 and ips.get(ip)["server"] is None
    subs._action(vsub["id"], "auto_renew", {"auto_renew": False}); ran.append("subscription.auto_renew")
    try:
        servers.create({"name": "x", "cpu": 1000, "mem": 512 * 1024 ** 2, "vnc_password": "pw",
                        "nics": [{"vlan": vlan, "ip_v4_conf": {"conf": "dhcp"}}]})
        raise AssertionError("a VLAN NIC with an IP configuration was accepted")
    except cloudsigma.errors.ClientError as e:
        assert e.status_code == 400; ran.append("server.create-bad-nic")
    servers.delete(s["uuid"])
    keys.delete(k["uuid"]); ran.append("keypair.delete")
    print(json.dumps(ran))
''')


def test_real_pycloudsigma_client_networks(emu, tmp_path):
    import cloudsigma  # noqa: F401  (tools/requirements-clients.txt)
    conf = tmp_path / "cloudsigma.conf"
    conf.write_text(f"api_endpoint = {emu.api_endpoint}\nws_endpoint = {emu.ws_endpoint}\n"
                    f"username = {USER}\npassword = {PASSWORD}\n")
    result = subprocess.run([sys.executable, "-c", PYCLOUDSIGMA_NETWORKS_SCRIPT],
                            env=dict(os.environ, CLOUDSIGMA_CONFIG=str(conf)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = json.loads(result.stdout.strip().splitlines()[-1])
    assert ran == ["subscription.create", "vlan.get", "vlan.list_detail", "vlan.update",
                   "ip.get", "ip.list_detail", "keypair.create", "server.create-with-nics",
                   "server.update-nics", "subscription.auto_renew", "server.create-bad-nic",
                   "keypair.delete"]


PYCLOUDSIGMA_IMAGE_BOOT_SCRIPT = textwrap.dedent('''
    import json, time
    import cloudsigma
    libdrives, drives = cloudsigma.resource.LibDrive(), cloudsigma.resource.Drive()
    servers = cloudsigma.resource.Server()
    ran = []
    (image,) = [d for d in libdrives.list() if d["media"] == "disk"]; ran.append("libdrive.list")
    assert image["owner"] is None and image["status"] == "unmounted"
    # pycloudsigma clones a library drive through /drives/ (Drive.clone); its
    # LibDrive has no clone method, so the /libdrives/ path (§4, what the
    # adapter sends) goes through the client's own generic action call.
    clone = drives.clone(image["uuid"], {"name": "boot"}); ran.append("drive.clone-of-libdrive")
    other = libdrives._action(image["uuid"], "clone", {"name": "boot 2"})
    ran.append("libdrive.clone")
    for c in (clone, other):
        assert c["uuid"] != image["uuid"] and c["status"] == "cloning_dst"
        assert c["owner"] is not None and c["size"] == image["size"]
    for _ in range(100):
        if drives.get(other["uuid"])["status"] == "unmounted": break
        time.sleep(0.05)
    drives.delete(other["uuid"])
    for _ in range(100):
        if drives.get(clone["uuid"])["status"] == "unmounted": break
        time.sleep(0.05)
    assert drives.get(clone["uuid"])["status"] == "unmounted"; ran.append("clone.unmounted")
    s = servers.create({"name": "booted", "cpu": 1000, "mem": 512 * 1024 ** 2,
                        "vnc_password": "pw", "drives": [
                            {"boot_order": 1, "dev_channel": "0:0", "device": "virtio",
                             "drive": clone["uuid"]}]}); ran.append("server.create-with-drive")
    assert s["drives"][0]["drive"]["uuid"] == clone["uuid"] and s["drives"][0]["boot_order"] == 1
    for _ in range(100):
        if drives.get(clone["uuid"])["status"] == "mounted": break
        time.sleep(0.05)
    assert drives.get(clone["uuid"])["mounted_on"][0]["uuid"] == s["uuid"]
    ran.append("clone.mounted")
    try:
        servers.create({"name": "slow", "cpu": 100, "mem": 512 * 1024 ** 2, "vnc_password": "pw"})
        raise AssertionError("a server below the minimum CPU was created")
    except cloudsigma.errors.ClientError as e:
        assert e.status_code == 400; ran.append("server.create-refused")
    servers.delete_with_all_drives(s["uuid"]); ran.append("server.delete_with_all_drives")
    for _ in range(100):
        try:
            drives.get(clone["uuid"]); time.sleep(0.05)
        except cloudsigma.errors.ClientError as e:
            assert e.status_code == 404; ran.append("clone.gone"); break
    assert libdrives.get(image["uuid"])["uuid"] == image["uuid"]  # the image stays
    print(json.dumps(ran))
''')


def test_real_pycloudsigma_client_boot_from_library_image(emu, tmp_path):
    import cloudsigma  # noqa: F401  (tools/requirements-clients.txt)
    conf = tmp_path / "cloudsigma.conf"
    conf.write_text(f"api_endpoint = {emu.api_endpoint}\nws_endpoint = {emu.ws_endpoint}\n"
                    f"username = {USER}\npassword = {PASSWORD}\n")
    result = subprocess.run([sys.executable, "-c", PYCLOUDSIGMA_IMAGE_BOOT_SCRIPT],
                            env=dict(os.environ, CLOUDSIGMA_CONFIG=str(conf)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = json.loads(result.stdout.strip().splitlines()[-1])
    assert ran == ["libdrive.list", "drive.clone-of-libdrive", "libdrive.clone",
                   "clone.unmounted", "server.create-with-drive", "clone.mounted", "server.create-refused",
                   "server.delete_with_all_drives", "clone.gone"]


PYCLOUDSIGMA_FWPOLICY_SCRIPT = textwrap.dedent('''
    import json
    import cloudsigma
    policies, servers = cloudsigma.resource.FirewallPolicy(), cloudsigma.resource.Server()
    ran = []
    bare = policies.create({}); ran.append("fwpolicy.create-minimal")
    assert bare["name"] is None and bare["rules"] == [] and bare["servers"] == []
    p = policies.create({"name": "web", "meta": {"k": "v"}, "rules": [
        {"action": "drop", "direction": "out", "dst_ip": "23"},
        {"action": "accept", "direction": "in", "dst_port": "22", "ip_proto": "tcp",
         "src_ip": "172.66.32.0/24", "comment": "ssh"},
        {"action": "drop", "direction": "in", "ip_proto": "udp", "src_ip": "!172.66.32.55"},
        {"action": "drop", "direction": "both", "dst_port": "!1:1024", "ip_proto": "tcp"}]})
    ran.append("fwpolicy.create-full")
    # As the recorded answer: every field present, null when absent; an
    # address becomes a /32.
    assert p["rules"][0] == {"action": "drop", "comment": None, "direction": "out",
                             "dst_ip": "23.0.0.0/32", "dst_port": None, "ip_proto": None,
                             "src_ip": None, "src_port": None}, p["rules"][0]
    assert p["rules"][2]["src_ip"] == "!172.66.32.55/32"
    assert p["rules"][3]["dst_port"] == "!1:1024"
    short = {x["uuid"]: x for x in policies.list()}; ran.append("fwpolicy.list")
    assert set(short) >= {bare["uuid"], p["uuid"]}
    assert set(short[p["uuid"]]) == {"meta", "name", "owner", "resource_uri", "uuid"}
    detail = {x["uuid"]: x for x in policies.list_detail()}; ran.append("fwpolicy.list_detail")
    assert detail[p["uuid"]]["rules"] == p["rules"]
    assert policies.get(p["uuid"]) == p; ran.append("fwpolicy.get")
    p["rules"] = p["rules"][:1]
    p = policies.update(p["uuid"], p); ran.append("fwpolicy.update")
    assert [r["dst_ip"] for r in p["rules"]] == ["23.0.0.0/32"] and p["meta"] == {"k": "v"}
    for bad in ({"action": "reject", "direction": "in"}, {"action": "drop", "direction": "in",
                                                          "ip_proto": "icmp"},
                {"action": "drop", "direction": "in", "src_ip": "300.1.1.1"},
                {"action": "drop", "direction": "in", "dst_port": "0:70000"}):
        try:
            policies.update(p["uuid"], dict(p, rules=[bad]))
            raise AssertionError("a bad rule was accepted: %r" % bad)
        except cloudsigma.errors.ClientError as e:
            assert e.status_code == 400
    assert len(policies.get(p["uuid"])["rules"]) == 1; ran.append("fwpolicy.update-refused")
    s = servers.create({"name": "fw", "cpu": 1000, "mem": 512 * 1024 ** 2, "vnc_password": "pw",
                        "nics": [{"ip_v4_conf": {"conf": "dhcp", "ip": None}, "model": "virtio",
                                  "firewall_policy": p["uuid"]}]})
    ran.append("server.create-with-policy")
    assert s["nics"][0]["firewall_policy"]["uuid"] == p["uuid"]
    assert [x["uuid"] for x in policies.get(p["uuid"])["servers"]] == [s["uuid"]]
    try:
        servers.create({"name": "nofw", "cpu": 1000, "mem": 512 * 1024 ** 2,
                        "vnc_password": "pw", "nics": [{"ip_v4_conf": {"conf": "dhcp"},
                                                        "firewall_policy": bare["uuid"][::-1]}]})
        raise AssertionError("a NIC with an unknown policy was accepted")
    except cloudsigma.errors.ClientError as e:
        assert e.status_code == 400; ran.append("server.create-unknown-policy")
    servers.start(s["uuid"])
    try:
        policies.delete(p["uuid"])
        raise AssertionError("a policy of a running server was deleted")
    except cloudsigma.errors.PermissionError:
        ran.append("fwpolicy.delete-in-use")
    policies.delete(bare["uuid"]); ran.append("fwpolicy.delete")
    try:
        policies.get(bare["uuid"])
        raise AssertionError("a deleted policy answers")
    except cloudsigma.errors.ClientError as e:
        assert e.status_code == 404; ran.append("fwpolicy.gone")
    print(json.dumps(ran))
''')


def test_real_pycloudsigma_client_firewall_policies(emu, tmp_path):
    import cloudsigma  # noqa: F401  (tools/requirements-clients.txt)
    conf = tmp_path / "cloudsigma.conf"
    conf.write_text(f"api_endpoint = {emu.api_endpoint}\nws_endpoint = {emu.ws_endpoint}\n"
                    f"username = {USER}\npassword = {PASSWORD}\n")
    result = subprocess.run([sys.executable, "-c", PYCLOUDSIGMA_FWPOLICY_SCRIPT],
                            env=dict(os.environ, CLOUDSIGMA_CONFIG=str(conf)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = json.loads(result.stdout.strip().splitlines()[-1])
    assert ran == ["fwpolicy.create-minimal", "fwpolicy.create-full", "fwpolicy.list",
                   "fwpolicy.list_detail", "fwpolicy.get", "fwpolicy.update",
                   "fwpolicy.update-refused", "server.create-with-policy",
                   "server.create-unknown-policy", "fwpolicy.delete-in-use", "fwpolicy.delete",
                   "fwpolicy.gone"]
