"""End to end: the real server with the generated Python client, on a
Phantom account (the Phantom emulator: query API with SigV4 plus the REST
API with tokens) and on an AWS-dialect account (moto's server mode with
SigV4 checked by its IAM)."""
import uuid

import grpc
import pytest
from google.protobuf import empty_pb2

from cloudplane_testing import Server, autoscaling_pb2, compute_pb2, error_details
from emulators.phantom.phantom_testing import MotoServer, PhantomEmulator

PHANTOM, AWS = "accounts/phantom", "accounts/aws"


@pytest.fixture(scope="module")
def emulators(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("phantom-emulators")
    phantom = PhantomEmulator(workdir, page_limit=2, converge_delay=0.3).start()
    moto = None
    try:
        moto = MotoServer(workdir).start()
        yield phantom, moto
    finally:
        phantom.stop()
        if moto is not None:
            moto.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, emulators):
    phantom, moto = emulators
    config = (
        phantom.account("phantom", "CP_TEST_PHANTOM_SECRET")
        + moto.account("aws", "CP_TEST_PHANTOM_AWS_SECRET")
        # Wrong query API secret; right REST password.
        + phantom.account("phantom-badkey", "CP_TEST_PHANTOM_BADKEY",
                          secret="AKPHANTOM0001:not-the-secret\nalice:wonderland")
        # Right query API secret; wrong REST password.
        + phantom.account("phantom-badpw", "CP_TEST_PHANTOM_BADPW",
                          secret="AKPHANTOM0001:phantom-secret-key-0001\nalice:not-the-password")
        + moto.account("aws-badkey", "CP_TEST_PHANTOM_AWS_BADKEY",
                       secret=f"{moto.access_key}:not-the-secret"))
    srv = Server(tmp_path_factory.mktemp("phantom-server"), config).start()
    yield srv
    log = srv.log()
    assert srv.stop() == 0, log
    # Secrets never reach the log.
    for secret in ("phantom-secret-key-0001", "wonderland", moto.secret_key, "not-the-secret",
                   "not-the-password"):
        assert secret not in log


def template(account, n):
    if "aws" not in account:
        return autoscaling_pb2.LaunchTemplate(
            image=f"{account}/images/hello-phantom.gz",
            machine_type=f"{account}/machineTypes/m1.small",
            user_data="#!/bin/sh\necho hi\n",
            locations=[autoscaling_pb2.LocationLaunchSpec(location=f"{account}/locations/hotel"),
                       autoscaling_pb2.LocationLaunchSpec(location=f"{account}/locations/ec2",
                                                          image=f"ami-{n:08x}")])
    return autoscaling_pb2.LaunchTemplate(image=f"{account}/images/ami-{n:08x}",
                                          machine_type=f"{account}/machineTypes/t2.micro",
                                          user_data="#!/bin/sh\necho hi\n")


def group(account, lt, size):
    location = "hotel" if account == PHANTOM else "us-east-1a"
    return autoscaling_pb2.ScalingGroup(launch_template=lt, target_size=size,
                                        locations=[f"{account}/locations/{location}"])


def finished(server, op, message):
    op = server.wait(op, timeout=30)
    assert not op.HasField("error"), op.error
    out = message()
    assert op.response.Unpack(out), op.response
    return out


def expect(code, call, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kwargs)
    assert err.value.code() == code, err.value.details()
    return err.value


def healthy(g):
    return [i for i in g.instances
            if i.health == autoscaling_pb2.ScalingGroupInstance.HEALTHY]


@pytest.mark.parametrize("account", [PHANTOM, AWS])
def test_launch_template_and_scaling_group_flow(server, account):
    a = server.autoscaling()
    tag = uuid.uuid4().hex[:6]
    lt_id, sg_id = f"web-{tag}", f"grp-{tag}"
    lt = finished(server, a.CreateLaunchTemplate(autoscaling_pb2.CreateLaunchTemplateRequest(
        parent=account, launch_template_id=lt_id, launch_template=template(account, 1))),
        autoscaling_pb2.LaunchTemplate)
    assert lt.name == f"{account}/launchTemplates/{lt_id}"
    assert not lt.user_data  # INPUT_ONLY
    if account == PHANTOM:
        # One launch configuration per site: web@ec2 and web@hotel.
        assert [(l.location, l.image) for l in lt.locations] == [
            (f"{account}/locations/ec2", f"{account}/images/ami-00000001"),
            (f"{account}/locations/hotel", f"{account}/images/hello-phantom.gz")]
        assert not lt.image  # the sites differ
        assert lt.machine_type == f"{account}/machineTypes/m1.small"
    else:
        assert lt.image == f"{account}/images/ami-00000001"
    assert a.GetLaunchTemplate(autoscaling_pb2.GetLaunchTemplateRequest(name=lt.name)) == lt

    # A duplicate name is ALREADY_EXISTS, and changes nothing.
    err = expect(grpc.StatusCode.ALREADY_EXISTS, a.CreateLaunchTemplate,
                 autoscaling_pb2.CreateLaunchTemplateRequest(
                     parent=account, launch_template_id=lt_id,
                     launch_template=template(account, 2)))
    info, _ = error_details(err)
    assert info.reason == "RESOURCE_ALREADY_EXISTS"
    assert a.GetLaunchTemplate(autoscaling_pb2.GetLaunchTemplateRequest(name=lt.name)) == lt

    # A group of 2: the Operation ends with 2 healthy, running instances.
    sg = finished(server, a.CreateScalingGroup(autoscaling_pb2.CreateScalingGroupRequest(
        parent=account, scaling_group_id=sg_id, scaling_group=group(account, lt.name, 2))),
        autoscaling_pb2.ScalingGroup)
    assert sg.name == f"{account}/scalingGroups/{sg_id}"
    assert sg.launch_template == lt.name
    assert sg.target_size == 2 and len(sg.instances) == 2 and len(healthy(sg)) == 2
    assert sg.state == autoscaling_pb2.ScalingGroup.STABLE
    got = a.GetScalingGroup(autoscaling_pb2.GetScalingGroupRequest(name=sg.name))
    assert len(healthy(got)) == 2
    assert {i.lifecycle_state for i in got.instances} == (
        {"600-RUNNING"} if account == PHANTOM else {"InService"})
    expect(grpc.StatusCode.ALREADY_EXISTS, a.CreateScalingGroup,
           autoscaling_pb2.CreateScalingGroupRequest(
               parent=account, scaling_group_id=sg_id, scaling_group=group(account, lt.name, 1)))
    # The template is in use.
    expect(grpc.StatusCode.FAILED_PRECONDITION, a.DeleteLaunchTemplate,
           autoscaling_pb2.DeleteLaunchTemplateRequest(name=lt.name))

    # Resize to 3, then 1 (0: see test_resize_to_zero).
    for size in (3, 1):
        sg = finished(server, a.ResizeScalingGroup(autoscaling_pb2.ResizeScalingGroupRequest(
            name=sg.name, target_size=size)), autoscaling_pb2.ScalingGroup)
        assert sg.target_size == size and len(healthy(sg)) == size == len(sg.instances)
        if account == PHANTOM:  # SetDesiredCapacity semantics: min = max = n
            assert sg.min_size == sg.max_size == size

    # Listed (every page of the provider: 2 per page at both).
    names, token = [], ""
    while True:
        page = a.ListScalingGroups(autoscaling_pb2.ListScalingGroupsRequest(
            parent=account, page_size=1, page_token=token))
        names += [g.name for g in page.scaling_groups]
        token = page.next_page_token
        if not token:
            break
    assert names.count(sg.name) == 1

    # Delete both.
    op = server.wait(a.DeleteScalingGroup(autoscaling_pb2.DeleteScalingGroupRequest(name=sg.name)))
    assert not op.HasField("error") and op.response.Is(empty_pb2.Empty.DESCRIPTOR)
    op = server.wait(a.DeleteLaunchTemplate(autoscaling_pb2.DeleteLaunchTemplateRequest(
        name=lt.name)))
    assert not op.HasField("error") and op.response.Is(empty_pb2.Empty.DESCRIPTOR)
    expect(grpc.StatusCode.NOT_FOUND, a.GetScalingGroup,
           autoscaling_pb2.GetScalingGroupRequest(name=sg.name))
    expect(grpc.StatusCode.NOT_FOUND, a.GetLaunchTemplate,
           autoscaling_pb2.GetLaunchTemplateRequest(name=lt.name))
    expect(grpc.StatusCode.NOT_FOUND, a.DeleteScalingGroup,
           autoscaling_pb2.DeleteScalingGroupRequest(name=sg.name))


def test_many_templates_span_provider_pages(server):
    # moto with MaxRecords 2 (the account option): 5 templates are 3 pages.
    a = server.autoscaling()
    tag = uuid.uuid4().hex[:6]
    ids = [f"pg-{tag}-{n}" for n in range(5)]
    for n, lt_id in enumerate(ids):
        finished(server, a.CreateLaunchTemplate(autoscaling_pb2.CreateLaunchTemplateRequest(
            parent=AWS, launch_template_id=lt_id, launch_template=template(AWS, n))),
            autoscaling_pb2.LaunchTemplate)
    listed = a.ListLaunchTemplates(autoscaling_pb2.ListLaunchTemplatesRequest(parent=AWS,
                                                                              page_size=1000))
    mine = [t.name.split("/")[-1] for t in listed.launch_templates if tag in t.name]
    assert mine == ids
    for lt_id in ids:
        server.wait(a.DeleteLaunchTemplate(autoscaling_pb2.DeleteLaunchTemplateRequest(
            name=f"{AWS}/launchTemplates/{lt_id}")))


@pytest.mark.parametrize("account", ["accounts/phantom-badkey", "accounts/aws-badkey"])
def test_wrong_secret_is_unauthenticated(server, account):
    a = server.autoscaling()
    expect(grpc.StatusCode.UNAUTHENTICATED, a.ListScalingGroups,
           autoscaling_pb2.ListScalingGroupsRequest(parent=account))
    err = expect(grpc.StatusCode.UNAUTHENTICATED, a.CreateLaunchTemplate,
                 autoscaling_pb2.CreateLaunchTemplateRequest(
                     parent=account, launch_template_id="never",
                     launch_template=template(account, 0)))
    assert "not-the-secret" not in err.details()


def test_each_dialect_refuses_what_it_cannot_carry_out(server):
    """Phantom launches every VM with the key registered for the site (and
    reports "phantomkey"), so key_name is refused there; an AWS launch
    configuration has no locations. Refused by the server, nothing made."""
    a = server.autoscaling()
    for account, path, extra in (
            (PHANTOM, "launch_template.key_name", {"key_name": "ops-key"}),
            (AWS, "launch_template.locations.location",
             {"locations": [autoscaling_pb2.LocationLaunchSpec(
                 location=f"{AWS}/locations/us-east-1a")]})):
        lt = template(account, 0)
        for key, value in extra.items():
            if isinstance(value, list):
                getattr(lt, key).extend(value)
            else:
                setattr(lt, key, value)
        lt_id = f"refused-{uuid.uuid4().hex[:6]}"
        err = expect(grpc.StatusCode.INVALID_ARGUMENT, a.CreateLaunchTemplate,
                     autoscaling_pb2.CreateLaunchTemplateRequest(
                         parent=account, launch_template_id=lt_id, launch_template=lt))
        info, bad = error_details(err)
        assert info.reason == "FIELD_UNSUPPORTED", info
        assert [v.field for v in bad.field_violations] == [path]
        expect(grpc.StatusCode.NOT_FOUND, a.GetLaunchTemplate,
               autoscaling_pb2.GetLaunchTemplateRequest(
                   name=f"{account}/launchTemplates/{lt_id}"))


def test_sites_through_the_rest_api_with_a_token(server):
    c = server.compute()
    sites = c.ListLocations(compute_pb2.ListLocationsRequest(parent=PHANTOM)).locations
    assert [s.name for s in sites] == [f"{PHANTOM}/locations/{n}" for n in ("ec2", "hotel", "sierra")]
    assert all(s.kind == compute_pb2.Location.SITE for s in sites)
    hotel = c.GetLocation(compute_pb2.GetLocationRequest(name=f"{PHANTOM}/locations/hotel"))
    assert hotel.display_name == "hotel"
    expect(grpc.StatusCode.NOT_FOUND, c.GetLocation,
           compute_pb2.GetLocationRequest(name=f"{PHANTOM}/locations/nowhere"))
    # A wrong password: the token POST answers HTTP 200 success:false.
    err = expect(grpc.StatusCode.UNAUTHENTICATED, c.ListLocations,
                 compute_pb2.ListLocationsRequest(parent="accounts/phantom-badpw"))
    assert "not-the-password" not in err.details()
    # The AWS dialect has no REST API, so the account does not support locations
    # (its capabilities say so; test_capabilities_cancel.py).
    err = expect(grpc.StatusCode.UNIMPLEMENTED, c.ListLocations,
                 compute_pb2.ListLocationsRequest(parent=AWS))
    assert error_details(err)[0].reason == "CAPABILITY_UNSUPPORTED"


def test_failed_second_site_leaves_nothing_behind(server):
    a = server.autoscaling()
    lt_id = f"half-{uuid.uuid4().hex[:6]}"
    bad = template(PHANTOM, 3)
    bad.locations.append(autoscaling_pb2.LocationLaunchSpec(
        location=f"{PHANTOM}/locations/nowhere"))
    expect(grpc.StatusCode.INVALID_ARGUMENT, a.CreateLaunchTemplate,
           autoscaling_pb2.CreateLaunchTemplateRequest(parent=PHANTOM, launch_template_id=lt_id,
                                                       launch_template=bad))
    # hotel and ec2 were created before `nowhere` failed; both were removed.
    expect(grpc.StatusCode.NOT_FOUND, a.GetLaunchTemplate,
           autoscaling_pb2.GetLaunchTemplateRequest(name=f"{PHANTOM}/launchTemplates/{lt_id}"))
    # A group on a missing template is refused before anything is made.
    expect(grpc.StatusCode.NOT_FOUND, a.CreateScalingGroup,
           autoscaling_pb2.CreateScalingGroupRequest(
               parent=PHANTOM, scaling_group_id=lt_id,
               scaling_group=group(PHANTOM, f"{PHANTOM}/launchTemplates/{lt_id}", 1)))
    expect(grpc.StatusCode.NOT_FOUND, a.GetScalingGroup,
           autoscaling_pb2.GetScalingGroupRequest(name=f"{PHANTOM}/scalingGroups/{lt_id}"))


def test_bad_options_are_refused_by_name(tmp_path):
    srv = Server(tmp_path / "srv", 'accounts { id: "p" provider: "phantom" '
                 'endpoint: "http://127.0.0.1:9" credentials { env: "CP_TEST_PHANTOM_OPT" } '
                 'options { key: "dialekt" value: "aws" } }\n')
    import os
    os.environ["CP_TEST_PHANTOM_OPT"] = "AK:SK"
    srv.start()
    try:
        from cloudplane_testing import accounts_pb2
        account = srv.accounts().GetAccount(accounts_pb2.GetAccountRequest(name="accounts/p"))
        assert account.state != accounts_pb2.Account.READY
        assert "options.dialekt" in account.state_message
        assert "SK" not in account.state_message.replace("ASK", "")
    finally:
        assert srv.stop() == 0


@pytest.mark.parametrize("account", [PHANTOM, AWS])
def test_resize_to_zero(server, account):
    a = server.autoscaling()
    tag = uuid.uuid4().hex[:6]
    lt = finished(server, a.CreateLaunchTemplate(autoscaling_pb2.CreateLaunchTemplateRequest(
        parent=account, launch_template_id=f"z-{tag}", launch_template=template(account, 1))),
        autoscaling_pb2.LaunchTemplate)
    sg = finished(server, a.CreateScalingGroup(autoscaling_pb2.CreateScalingGroupRequest(
        parent=account, scaling_group_id=f"z-{tag}", scaling_group=group(account, lt.name, 1))),
        autoscaling_pb2.ScalingGroup)
    try:
        sg = finished(server, a.ResizeScalingGroup(autoscaling_pb2.ResizeScalingGroupRequest(
            name=sg.name, target_size=0)), autoscaling_pb2.ScalingGroup)
        assert sg.target_size == 0 and not sg.instances
    finally:
        server.wait(a.DeleteScalingGroup(autoscaling_pb2.DeleteScalingGroupRequest(name=sg.name)))
        server.wait(a.DeleteLaunchTemplate(autoscaling_pb2.DeleteLaunchTemplateRequest(
            name=lt.name)))
