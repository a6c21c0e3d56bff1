"""Walks through the cloudplane API with the generated Python client: lists
accounts, creates an instance in the sandbox account with a request_id, waits
for the Operation, reads the instance, deletes it, and shows the ErrorInfo and
BadRequest details of a call that fails.

    PYTHONPATH=bazel-bin/proto python clients/python/example.py [address]

The address defaults to 127.0.0.1:7070. Credentials come from the
environment (clients/README.md, "Authentication"): CLOUDPLANE_TOKEN is sent
as `authorization: Bearer` on every call; CLOUDPLANE_CA (the server's CA),
CLOUDPLANE_CERT and CLOUDPLANE_KEY (a client certificate) make the connection
TLS. None set: plaintext, for a local server.
"""
import json
import os
import sys
import uuid

import grpc
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from cloudplane.v1 import accounts_pb2, accounts_pb2_grpc, compute_pb2, compute_pb2_grpc

ACCOUNT = "accounts/sandbox"

# gRPC retries a call that fails with UNAVAILABLE (up to 5 attempts, backoff
# 0.2 s doubling to 5 s) and sends the same request again, request_id and all
# (clients/README.md, "Retries").
SERVICES = ["cloudplane.v1.AccountsService", "cloudplane.v1.AuditService",
            "cloudplane.v1.AutoscalingService",
            "cloudplane.v1.BillingService", "cloudplane.v1.ComputeService",
            "cloudplane.v1.FirewallsService", "cloudplane.v1.NetworksService",
            "cloudplane.v1.UnitsService",
            "cloudplane.v1.VolumesService", "cloudplane.v1.WatchService",
            "google.longrunning.Operations"]
SERVICE_CONFIG = {"methodConfig": [{
    "name": [{"service": s} for s in SERVICES],
    "retryPolicy": {"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "5s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]},
}]}


def read(path):
    with open(path, "rb") as f:
        return f.read()


def channel_for(address, options):
    """TLS when CLOUDPLANE_CA, CLOUDPLANE_CERT or CLOUDPLANE_KEY is set (the
    system's roots without CLOUDPLANE_CA), with the client certificate when
    CLOUDPLANE_CERT and CLOUDPLANE_KEY are; else plaintext."""
    ca, cert, key = (os.environ.get(f"CLOUDPLANE_{n}") for n in ("CA", "CERT", "KEY"))
    if not (ca or cert or key):
        return grpc.insecure_channel(address, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca) if ca else None,
        private_key=read(key) if key else None,
        certificate_chain=read(cert) if cert else None)
    return grpc.secure_channel(address, credentials, options=options)


# The token as per-call metadata, passed to every call below. (Not
# grpc.access_token_call_credentials: those need a TLS channel, and a local
# plaintext server may want a token too.)
TOKEN = os.environ.get("CLOUDPLANE_TOKEN")
AUTH = (("authorization", f"Bearer {TOKEN}"),) if TOKEN else ()


def wait(operations, op):
    """WaitOperation until the operation is done; a failed operation raises."""
    while not op.done:
        request = operations_pb2.WaitOperationRequest(name=op.name)
        request.timeout.FromSeconds(10)
        op = operations.WaitOperation(request, metadata=AUTH)
    if op.HasField("error"):
        raise RuntimeError(f"{op.name} failed: {op.error.message}")
    return op


def print_error(error):
    """The google.rpc.Status of a failed call carries its details as Any messages."""
    print(f"error: {error.code().name}: {error.details()}")
    status = rpc_status.from_call(error)
    if status is None:
        return
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            print(f"reason: {info.reason} (domain {info.domain})")
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            for v in bad_request.field_violations:
                print(f"field violation: {v.field}: {v.description}")


def main(address):
    options = [("grpc.service_config", json.dumps(SERVICE_CONFIG))]
    with channel_for(address, options) as channel:
        accounts = accounts_pb2_grpc.AccountsServiceStub(channel)
        compute = compute_pb2_grpc.ComputeServiceStub(channel)
        operations = operations_pb2_grpc.OperationsStub(channel)

        listed = accounts.ListAccounts(accounts_pb2.ListAccountsRequest(), metadata=AUTH)
        for a in listed.accounts:
            state = accounts_pb2.Account.State.Name(a.state)
            print(f"account: {a.name} ({a.provider}, {state})")

        # A request_id makes the call safe to retry: the same id returns the
        # same Operation instead of creating a second instance.
        op = compute.CreateInstance(compute_pb2.CreateInstanceRequest(
            parent=ACCOUNT,
            instance_id="python-example",
            request_id=str(uuid.uuid4()),
            instance=compute_pb2.Instance(image=f"{ACCOUNT}/images/debian-12",
                                          machine_type=f"{ACCOUNT}/machineTypes/small")),
            metadata=AUTH)
        print(f"create: {op.name}")
        op = wait(operations, op)
        created = compute_pb2.Instance()
        op.response.Unpack(created)
        print(f"created: {created.name} {compute_pb2.Instance.State.Name(created.state)}")

        instance = compute.GetInstance(compute_pb2.GetInstanceRequest(name=created.name),
                                       metadata=AUTH)
        print(f"get: {instance.name} {compute_pb2.Instance.State.Name(instance.state)} "
              f"machine_type={instance.machine_type}")

        op = compute.DeleteInstance(compute_pb2.DeleteInstanceRequest(
            name=instance.name, request_id=str(uuid.uuid4())), metadata=AUTH)
        wait(operations, op)
        print(f"deleted: {instance.name}")

        # A malformed machine type: the server answers INVALID_ARGUMENT with an
        # ErrorInfo (the reason) and a BadRequest (which field, and why).
        try:
            compute.CreateInstance(compute_pb2.CreateInstanceRequest(
                parent=ACCOUNT,
                instance=compute_pb2.Instance(image=f"{ACCOUNT}/images/debian-12",
                                              machine_type="small")), metadata=AUTH)
            raise RuntimeError("expected INVALID_ARGUMENT")
        except grpc.RpcError as error:
            print_error(error)


if __name__ == "__main__":
    try:
        main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:7070")
    except grpc.RpcError as failed:
        sys.exit(f"error: {failed.code().name}: {failed.details()}")
