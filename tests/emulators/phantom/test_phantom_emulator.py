"""The Phantom emulator checked with real clients: boto 2 (PyPI boto 2.49.0,
the AutoScaleConnection Phantom's own tools used, SigV4) for the query API,
and plain HTTP for the REST token flow and the wire quirks."""
import base64
import json
import urllib.error
import urllib.request

import pytest

from emulators.phantom.phantom_testing import (ACCESS_KEY, PASSWORD, SECRET_KEY, USERNAME,
                                               PhantomEmulator)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = PhantomEmulator(tmp_path_factory.mktemp("phantom-emu"), page_limit=2,
                          converge_delay=0.1).start()
    yield emu
    emu.stop()


@pytest.fixture()
def boto2(emulator, monkeypatch):
    boto = pytest.importorskip("boto")
    import boto.auth
    from boto.ec2.autoscale import AutoScaleConnection
    from boto.ec2.regioninfo import RegionInfo
    # boto 2.49 signs "host:port"; boto 2.6-2.9 (Phantom's era, B.2 step 3)
    # signed the bare host, and Phantom strips the port before checking.
    # Restore the 2.9 rule for this client.
    monkeypatch.setattr(boto.auth.HmacAuthV4Handler, "host_header",
                        lambda self, host, request: host)
    port = int(emulator.url.rsplit(":", 1)[1])

    def connect(secret=SECRET_KEY):
        conn = AutoScaleConnection(ACCESS_KEY, secret, is_secure=False, port=port,
                                   region=RegionInfo(name="us-east-1", endpoint="127.0.0.1"))
        conn.num_retries = 0  # boto retries a 500 six times with backoff (~60 s)
        return conn
    return connect


def test_boto2_launch_configurations_groups_and_capacity(boto2):
    import time
    from boto.ec2.autoscale import AutoScalingGroup, LaunchConfiguration
    from boto.exception import BotoServerError
    conn = boto2()
    for site in ("hotel", "sierra", "ec2"):
        conn.create_launch_configuration(LaunchConfiguration(
            name=f"b2lc@{site}", image_id="hello-phantom.gz", key_name="phantomkey",
            instance_type="m1.small", user_data="#!/bin/sh\n"))
    first = conn.get_all_launch_configurations(max_records=2)
    assert [lc.name for lc in first] == ["b2lc@ec2", "b2lc@hotel"]
    assert first.next_token == "b2lc@sierra"  # the next name, under the root (B.8)
    rest = conn.get_all_launch_configurations(max_records=2, next_token=first.next_token)
    assert [lc.name for lc in rest] == ["b2lc@sierra"]
    # Sent and returned base64-encoded (B.6); boto decodes it again.
    assert rest[0].user_data in (b"#!/bin/sh\n", "#!/bin/sh\n")

    with pytest.raises(BotoServerError) as err:  # a duplicate dt@site
        conn.create_launch_configuration(LaunchConfiguration(
            name="b2lc@hotel", image_id="x", instance_type="m1.small"))
    assert (err.value.status, err.value.reason) == (400, "InvalidParameterValue")
    with pytest.raises(BotoServerError) as err:  # no @site
        conn.create_launch_configuration(LaunchConfiguration(
            name="plain", image_id="x", instance_type="m1.small"))
    # boto cannot parse the plain-text body: error_code stays None (B.5).
    assert (err.value.status, err.value.reason, err.value.error_code) == (
        400, "InvalidParameterValue", None)

    conn.create_auto_scaling_group(AutoScalingGroup(
        group_name="b2dom", availability_zones=["hotel"], launch_config="b2lc", min_size=2,
        max_size=2, connection=conn))
    time.sleep(0.3)
    group = conn.get_all_groups(names=["b2dom"])[0]
    assert (group.min_size, group.max_size, group.desired_capacity) == (2, 2, 2)
    assert [(i.lifecycle_state, i.health_status) for i in group.instances] == [
        ("600-RUNNING", "Healthy")] * 2
    # No `clouds` tag: the emulator uses the first site of the DT (by name).
    assert {i.availability_zone for i in group.instances} == {"ec2"}
    conn.set_desired_capacity("b2dom", 3)
    group = conn.get_all_groups(names=["b2dom"])[0]
    assert (group.min_size, group.max_size, len(group.instances)) == (3, 3, 3)
    instances = conn.get_all_autoscaling_instances(max_records=10)
    assert {i.group_name for i in instances} == {"b2dom"}
    conn.delete_auto_scaling_group("b2dom")
    assert conn.get_all_groups(names=["b2dom"]) == []
    with pytest.raises(BotoServerError) as err:  # EPU back-end: a 500
        conn.delete_auto_scaling_group("b2dom")
    assert err.value.status == 500
    for site in ("hotel", "sierra", "ec2"):
        conn.delete_launch_configuration(f"b2lc@{site}")
    assert list(conn.get_all_launch_configurations()) == []


def test_boto2_wrong_secret_is_refused(boto2):
    from boto.exception import BotoServerError
    with pytest.raises(BotoServerError) as err:
        boto2(secret="wrong").get_all_groups()
    assert (err.value.status, err.value.reason) == (400, "IncompleteSignature")


def test_signature_with_spaced_separators_is_refused(emulator):
    # botocore-style "Credential=..., SignedHeaders=..." breaks at Phantom (B.2 step 7).
    request = urllib.request.Request(
        emulator.url + "/?Action=DescribeAutoScalingGroups&Version=2011-01-01", headers={
            "X-Amz-Date": "20300101T000000Z",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20300101/us-east-1/x/"
                             "aws4_request, SignedHeaders=host;x-amz-date, Signature=00"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 400 and err.value.reason == "IncompleteSignature"
    body = err.value.read().decode()
    assert body.startswith("400 IncompleteSignature\n\n")
    assert err.value.headers["x-amzn-RequestId"]


def test_rest_token_flow(emulator):
    def post_token(username, password):
        data = f"username={username}&password={password}".encode()
        with urllib.request.urlopen(emulator.url + "/api/dev/token", data=data, timeout=5) as r:
            assert r.status == 200  # also for failures (django-tokenapi 0.2.0)
            return json.loads(r.read())
    bad = post_token(USERNAME, "nope")
    assert bad == {"success": False, "errors": "Unable to log you in, please try again."}
    good = post_token(USERNAME, PASSWORD)
    assert good["success"] is True and good["user"] == 1 and "-" in good["token"]

    def get(path, user, token):
        auth = base64.b64encode(f"{user}:{token}".encode()).decode()
        request = urllib.request.Request(emulator.url + "/api/dev" + path,
                                         headers={"Authorization": "Basic " + auth})
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, json.loads(r.read())
    status, sites = get("/sites", good["user"], good["token"])
    assert status == 200 and [s["id"] for s in sites] == ["hotel", "sierra", "ec2"]
    with pytest.raises(urllib.error.HTTPError) as err:
        get("/sites", good["user"], "3ti-00000000000000000000")
    assert err.value.code == 403 and err.value.read() == b"Authorization Required"
    # Cloud credentials per site: add, then list.
    auth = base64.b64encode(f"{good['user']}:{good['token']}".encode()).decode()
    request = urllib.request.Request(
        emulator.url + "/api/dev/credentials/sites", method="POST",
        data=json.dumps({"id": "hotel", "access_key": "a", "secret_key": "s",
                         "key_name": "phantomkey"}).encode(),
        headers={"Authorization": "Basic " + auth})
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 201
    status, creds = get("/credentials/sites", good["user"], good["token"])
    assert [c["id"] for c in creds] == ["hotel"]
