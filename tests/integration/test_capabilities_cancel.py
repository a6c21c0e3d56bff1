"""Capabilities per account and CancelOperation at the provider, through the
real server.

- A Phantom account's capabilities follow its configuration: in the `aws`
  dialect, or in the phantom dialect without `rest_endpoint`, there is no
  REST API, so ListLocations/GetLocation are not supported and answer
  UNIMPLEMENTED / CAPABILITY_UNSUPPORTED before anything is sent (the
  endpoints here listen nowhere). With a REST endpoint they are supported.
- The sandbox can undo a CreateInstance: cancelled while the instance is
  still PROVISIONING, the operation ends CANCELLED saying what the provider
  did, and the instance is deleted. A mutation the provider cannot cancel
  (the sandbox's CreateVolume) answers FAILED_PRECONDITION /
  CANCEL_UNSUPPORTED and its operation completes normally.
"""
import os
import time

import grpc
import pytest

from cloudplane_testing import (Server, accounts_pb2, common_pb2, compute_pb2, error_details,
                                operations_pb2, volumes_pb2)

LIST_LOCATIONS = "cloudplane.v1.ComputeService.ListLocations"
GET_LOCATION = "cloudplane.v1.ComputeService.GetLocation"
CREATE_INSTANCE = "cloudplane.v1.ComputeService.CreateInstance"
CREATE_VOLUME = "cloudplane.v1.VolumesService.CreateVolume"


def phantom(account_id, options):
    lines = "".join(f'  options {{ key: "{k}" value: "{v}" }}\n' for k, v in options.items())
    return (f'accounts {{\n  id: "{account_id}"\n  provider: "phantom"\n'
            f'  endpoint: "http://127.0.0.1:9"\n  credentials {{ env: "CP_TEST_CAPS_SECRET" }}\n'
            f'{lines}}}\n')


CONFIG = (
    'accounts {\n  id: "sandbox"\n  provider: "sandbox"\n'
    '  options { key: "transition_ms" value: "1500" }\n}\n'
    + phantom("aws", {"dialect": "aws", "region": "us-east-1"})
    + phantom("norest", {"dialect": "phantom"})
    + phantom("rest", {"dialect": "phantom", "rest_endpoint": "http://127.0.0.1:9/api/dev"}))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    os.environ["CP_TEST_CAPS_SECRET"] = "AKCAPS:caps-secret\nalice:wonderland"
    srv = Server(tmp_path_factory.mktemp("caps"), CONFIG).start()
    yield srv
    assert srv.stop() == 0, srv.log()


def capabilities(server, account):
    a = server.accounts().GetAccount(accounts_pb2.GetAccountRequest(name=f"accounts/{account}"))
    assert a.state == accounts_pb2.Account.READY, a.state_message
    return {c.method: c for c in a.capabilities}


@pytest.mark.parametrize("account", ["aws", "norest"])
def test_phantom_without_rest_api_has_no_locations(server, account):
    caps = capabilities(server, account)
    assert not caps[LIST_LOCATIONS].supported
    assert not caps[GET_LOCATION].supported
    assert caps["cloudplane.v1.AutoscalingService.CreateScalingGroup"].supported
    assert not any(c.cancellable for c in caps.values())
    c = server.compute()
    for call, request in (
            (c.ListLocations, compute_pb2.ListLocationsRequest(parent=f"accounts/{account}")),
            (c.GetLocation, compute_pb2.GetLocationRequest(
                name=f"accounts/{account}/locations/hotel"))):
        with pytest.raises(grpc.RpcError) as err:
            call(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED, err.value.details()
        info, _ = error_details(err.value)
        assert info is not None and info.reason == "CAPABILITY_UNSUPPORTED"


def test_phantom_with_rest_api_has_locations(server):
    caps = capabilities(server, "rest")
    assert caps[LIST_LOCATIONS].supported and caps[GET_LOCATION].supported


def test_sandbox_capabilities_say_what_can_be_cancelled(server):
    caps = capabilities(server, "sandbox")
    assert caps[CREATE_INSTANCE].cancellable
    assert caps["cloudplane.v1.ComputeService.StartInstance"].cancellable
    assert caps["cloudplane.v1.ComputeService.StopInstance"].cancellable
    assert caps[CREATE_VOLUME].supported and not caps[CREATE_VOLUME].cancellable
    assert not caps["cloudplane.v1.ComputeService.ListInstances"].cancellable


def test_cancel_a_create_mid_transition_deletes_the_instance(server):
    c = server.compute()
    op = c.CreateInstance(compute_pb2.CreateInstanceRequest(
        parent="accounts/sandbox", instance_id="undo-me",
        instance=compute_pb2.Instance(image="accounts/sandbox/images/debian-12",
                                      machine_type="accounts/sandbox/machineTypes/small")))
    assert not op.done
    instance = c.GetInstance(compute_pb2.GetInstanceRequest(
        name="accounts/sandbox/instances/undo-me"))
    assert instance.state == compute_pb2.Instance.PROVISIONING
    server.operations().CancelOperation(operations_pb2.CancelOperationRequest(name=op.name))
    done = server.operations().GetOperation(operations_pb2.GetOperationRequest(name=op.name))
    assert done.done
    assert done.error.code == grpc.StatusCode.CANCELLED.value[0], done.error
    metadata = common_pb2.OperationMetadata()
    assert done.metadata.Unpack(metadata)
    assert metadata.cancel_requested
    assert "at the provider: the create was undone" in metadata.status_detail, metadata
    # The instance goes away at the provider (its deletion is a transition).
    deadline = time.monotonic() + 15
    while True:
        try:
            got = c.GetInstance(compute_pb2.GetInstanceRequest(
                name="accounts/sandbox/instances/undo-me"))
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
            break
        assert got.state in (compute_pb2.Instance.TERMINATING, compute_pb2.Instance.TERMINATED)
        assert time.monotonic() < deadline, got
        time.sleep(0.1)


def test_cancel_the_provider_cannot_do_leaves_the_operation_running(server):
    v = server.volumes()
    op = v.CreateVolume(volumes_pb2.CreateVolumeRequest(
        parent="accounts/sandbox", volume_id="keep-me",
        volume=volumes_pb2.Volume(display_name="keep", size_bytes=1 << 30)))
    assert not op.done  # 1.5 s transition
    with pytest.raises(grpc.RpcError) as err:
        server.operations().CancelOperation(operations_pb2.CancelOperationRequest(name=op.name))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
    info, _ = error_details(err.value)
    assert info is not None and info.reason == "CANCEL_UNSUPPORTED"
    assert info.metadata["method"] == CREATE_VOLUME
    done = server.wait(op)
    assert not done.HasField("error"), done.error
    volume = volumes_pb2.Volume()
    assert done.response.Unpack(volume)
    assert volume.name == "accounts/sandbox/volumes/keep-me"
    metadata = common_pb2.OperationMetadata()
    assert done.metadata.Unpack(metadata)
    assert not metadata.cancel_requested
