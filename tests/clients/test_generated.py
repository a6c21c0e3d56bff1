"""`bazel build //clients/...` generates the stubs of all five languages, and
none of them is committed."""
import subprocess

import pytest

from cloudplane_testing import BAZEL_BIN, REPO

# One representative file per language: messages and the gRPC stub of
# ComputeService.
GENERATED = {
    "cpp": ["proto/cloudplane/v1/compute.pb.h", "proto/cloudplane/v1/compute.grpc.pb.h"],
    "python": ["proto/cloudplane/v1/compute_pb2.py", "proto/cloudplane/v1/compute_pb2_grpc.py"],
    "go": ["clients/go/api/go.mod", "clients/go/api/cloudplane/v1/compute.pb.go",
           "clients/go/api/cloudplane/v1/compute_grpc.pb.go"],
    "java": ["clients/java/gen/dev/cloudplane/v1/Instance.java",
             "clients/java/gen/dev/cloudplane/v1/ComputeServiceGrpc.java"],
    "node": ["clients/node/gen/cloudplane/v1/compute.ts",
             "clients/node/gen/google/longrunning/operations.ts",
             "clients/node/gen/google/rpc/error_details.ts"],
}


@pytest.mark.parametrize("language", sorted(GENERATED))
def test_stubs_are_generated(language):
    for path in GENERATED[language]:
        assert (BAZEL_BIN / path).is_file(), path


def test_stubs_carry_every_service():
    services = ["AccountsService", "AuditService", "AutoscalingService", "BillingService",
                "ComputeService", "FirewallsService", "UnitsService", "VolumesService",
                "WatchService"]
    go = "".join(p.read_text() for p in (BAZEL_BIN / "clients/go/api/cloudplane/v1").glob("*_grpc.pb.go"))
    java = {p.stem for p in (BAZEL_BIN / "clients/java/gen/dev/cloudplane/v1").glob("*Grpc.java")}
    node = "".join(p.read_text() for p in (BAZEL_BIN / "clients/node/gen/cloudplane/v1").glob("*.ts"))
    for service in services:
        assert f"func New{service}Client(" in go, service
        assert f"{service}Grpc" in java, service
        assert f"export const {service}Client = makeGenericClientConstructor(" in node, service


def test_nothing_generated_is_committed():
    files = subprocess.run(["git", "ls-files", "clients"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    generated = [f for f in files if f.endswith((".pb.go", ".pb.h", ".pb.cc", "_pb2.py",
                                                 "_pb2_grpc.py", "Grpc.java"))
                 or "/gen/" in f]
    assert generated == []
