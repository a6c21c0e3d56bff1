"""Support for the multi-tenant suites (issue 12): API-key principals with
role bindings on two sandbox accounts, every RPC of the API found through the
generated descriptors, a minimal valid request for any of them, and a generic
call that returns either the response or the refusal (code, message,
ErrorInfo).

Keys are random per run; only their SHA-256 goes into the server's config.
"""
import base64
import dataclasses
import hashlib
import importlib
import re
import secrets
import struct
import time
import uuid

import grpc
from google.api import field_behavior_pb2, resource_pb2
from google.protobuf import message_factory

from cloudplane_testing import (BAZEL_BIN, REPO, compute_pb2, error_details, firewalls_pb2,
                                operations_pb2, volumes_pb2)

ACCOUNTS = ("alpha", "beta")
MISSING = "gamma"  # Never configured: what an invisible account must look like.

VIEWER, OPERATOR, ADMIN = 1, 2, 3
ROLE_NAMES = {VIEWER: "VIEWER", OPERATOR: "OPERATOR", ADMIN: "ADMIN"}


def new_api_key():
    """(key, lowercase hex SHA-256 of the key)."""
    key = "cpk_" + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


@dataclasses.dataclass
class Principal:
    """A caller. `key` None is anonymous; `configured` False is a key the
    server does not know. `roles` maps an account id or `*` to a role."""
    label: str
    name: str = ""
    key: str = None
    sha256: str = ""
    groups: tuple = ()
    roles: dict = dataclasses.field(default_factory=dict)
    configured: bool = True

    @classmethod
    def with_key(cls, label, name, groups=(), roles=None, configured=True):
        key, digest = new_api_key()
        return cls(label, name, key, digest, tuple(groups), dict(roles or {}), configured)

    @property
    def authenticated(self):
        return self.key is not None and self.configured

    def metadata(self):
        return [("authorization", "Bearer " + self.key)] if self.key is not None else []

    def role_on(self, account):
        if account not in ACCOUNTS:
            return 0
        return max(self.roles.get(account, 0), self.roles.get("*", 0))

    def visible(self):
        return {a for a in ACCOUNTS if self.role_on(a)}


def server_config(principals, bindings, transition_ms=50, accounts=ACCOUNTS):
    """The ServerConfig textproto: sandbox `accounts` (default alpha and
    beta), one API key per configured principal, and `bindings` as (role,
    principals, groups, accounts) tuples."""
    lines = []
    for account in accounts:
        lines.append(f'accounts {{ id: "{account}" provider: "sandbox" '
                     f'options {{ key: "transition_ms" value: "{transition_ms}" }} }}')
    lines.append("auth {")
    for p in principals:
        if p.key is None or not p.configured:
            continue
        groups = "".join(f' groups: "{g}"' for g in p.groups)
        lines.append(f'  api_keys {{ principal: "{p.name}" sha256: "{p.sha256}"{groups} }}')
    for role, names, groups, accounts in bindings:
        body = [f"role: {ROLE_NAMES[role]}"]
        body += [f'principals: "{n}"' for n in names]
        body += [f'groups: "{g}"' for g in groups]
        body += [f'accounts: "{a}"' for a in accounts]
        lines.append("  bindings { " + " ".join(body) + " }")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---- The API, from the descriptors ------------------------------------------

def api_modules():
    """Every generated cloudplane.v1 *_pb2 module, plus google.longrunning."""
    modules = []
    for path in sorted((BAZEL_BIN / "proto" / "cloudplane" / "v1").glob("*_pb2.py")):
        modules.append(importlib.import_module(f"cloudplane.v1.{path.stem}"))
    modules.append(operations_pb2)
    return modules


def all_methods():
    """{full method name "pkg.Service.Method": MethodDescriptor} of every
    service in api_modules()."""
    methods = {}
    for module in api_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                methods[method.full_name] = method
    return methods


def permission(method):
    """`<service>.<Method>`: the service's name lowercased without "Service"."""
    service = method.containing_service.name
    if service.endswith("Service"):
        service = service[:-len("Service")]
    return f"{service.lower()}.{method.name}"


def table_roles():
    """{"cloudplane.v1.Service.Method": VIEWER|OPERATOR} from the method table
    (adapters/api/*.inc: CP_READ → VIEWER, CP_MUTATION → OPERATOR)."""
    roles = {}
    row = re.compile(r"^\s*CP_(READ|MUTATION)\(\s*(\w+)\s*,\s*(\w+)\s*,", re.M)
    for inc in sorted((REPO / "adapters" / "api").glob("*.inc")):
        for kind, service, method in row.findall(inc.read_text()):
            roles[f"cloudplane.v1.{service}.{method}"] = VIEWER if kind == "READ" else OPERATOR
    return roles


def message_class(descriptor):
    return message_factory.GetMessageClass(descriptor)


# ---- Requests ----------------------------------------------------------------

def _behaviors(field):
    return list(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def _reference(field):
    options = field.GetOptions()
    if options.HasExtension(resource_pb2.resource_reference):
        return options.Extensions[resource_pb2.resource_reference].type
    return ""


def _patterns():
    patterns = {}
    for module in api_modules():
        for message in module.DESCRIPTOR.message_types_by_name.values():
            options = message.GetOptions()
            if options.HasExtension(resource_pb2.resource):
                resource = options.Extensions[resource_pb2.resource]
                if resource.pattern:
                    patterns[resource.type] = resource.pattern[0]
    return patterns


class Names:
    """Resource names of the resources seeded in each account: the value of
    every `{variable}` of a resource pattern other than {account}."""

    def __init__(self, ids):
        self.ids = dict(ids)
        self.patterns = _patterns()

    def name(self, resource_type, account):
        pattern = self.patterns[resource_type]

        def fill(match):
            var = match.group(1)
            return account if var == "account" else self.ids.get(var, "x")
        return re.sub(r"\{(\w+)\}", fill, pattern)


# Bodies the sandbox accepts for the methods whose resources need more than
# their REQUIRED fields; everything else is filled generically.
def _tweak(method, request, account, names):
    a = f"accounts/{account}"
    full = method.full_name
    if full.endswith("ComputeService.CreateInstance"):
        request.instance.image = names.name("cloudplane.dev/Image", account)
        request.instance.machine_type = names.name("cloudplane.dev/MachineType", account)
    elif full.endswith("AutoscalingService.CreateLaunchTemplate"):
        request.launch_template.image = names.name("cloudplane.dev/Image", account)
        request.launch_template.machine_type = names.name("cloudplane.dev/MachineType", account)
    elif full.endswith("ComputeService.UpdateInstance"):
        request.instance.display_name = "renamed"
        request.update_mask.paths[:] = ["display_name"]
    elif full.endswith("VolumesService.CreateVolume"):
        request.volume.size_bytes = 1 << 30
    elif full.endswith("VolumesService.UpdateVolume"):
        request.volume.size_bytes = 2 << 30
        request.update_mask.paths[:] = ["size_bytes"]
    elif full.endswith("VolumesService.CloneVolume"):
        request.volume_id = "clone-" + uuid.uuid4().hex[:8]
    elif full.endswith("FirewallsService.CreateFirewallRule"):
        request.rule.protocol = "tcp"
        request.rule.port_range_start = 443
        request.rule.source_ranges[:] = ["203.0.113.0/24"]
    elif full.endswith("UnitsService.CreateUnit"):
        request.unit_id = "u-" + uuid.uuid4().hex[:8] + ".service"
        request.unit.desired_state = 1
        del request.unit.options[:]
        request.unit.options.add(section="Service", name="ExecStart", value="/bin/true")
    elif full.endswith("UnitsService.SetUnitDesiredState"):
        request.desired_state = 1
    elif full.endswith("AutoscalingService.CreateScalingGroup"):
        request.scaling_group.target_size = 1
    elif full.endswith("AutoscalingService.ResizeScalingGroup"):
        request.target_size = 1
    elif full.endswith("AuditService.ListAuditEvents"):
        request.account = a
    elif full.endswith("ComputeService.CreateKeyPair"):
        request.key_pair.public_key = _ED25519_KEY
    elif full.endswith("NetworksService.CreateNetwork"):
        request.network.cidr_ranges[:] = ["10.77.0.0/24"]
    elif full.endswith("NetworksService.ReserveAddress"):
        request.address.ClearField("name")  # any free public address
    elif full.endswith(("NetworksService.GetAddress", "NetworksService.ReleaseAddress")):
        request.name = f"{a}/addresses/203.0.113.77"  # the sandbox names addresses by IP


# An OpenSSH ed25519 public key (type string, then 32 key bytes).
_ED25519_KEY = "ssh-ed25519 " + base64.b64encode(
    struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(range(32))).decode()


def _fill(message, account, names, depth, is_create):
    for field in message.DESCRIPTOR.fields:
        behaviors = _behaviors(field)
        if depth > 0 and (field_behavior_pb2.OUTPUT_ONLY in behaviors
                          or field_behavior_pb2.IDENTIFIER in behaviors):
            continue
        required = field_behavior_pb2.REQUIRED in behaviors
        reference = _reference(field)
        if field.type == field.TYPE_STRING and field.label != field.LABEL_REPEATED:
            if reference and (required or depth == 0):
                setattr(message, field.name, f"accounts/{account}"
                        if reference == "cloudplane.dev/Account"
                        else names.name(reference, account))
            elif depth == 0 and field.name.endswith("_id") and field.name != "request_id":
                setattr(message, field.name, "m-" + uuid.uuid4().hex[:10])
            elif required:
                setattr(message, field.name, "x")
        elif field.type == field.TYPE_BOOL and field.name == "validate_only" and depth == 0:
            message.validate_only = True
        elif field.type == field.TYPE_ENUM and required and field.label != field.LABEL_REPEATED:
            setattr(message, field.name, 1)
        elif field.type == field.TYPE_MESSAGE and field.label != field.LABEL_REPEATED:
            sub = field.message_type
            if sub.GetOptions().map_entry or not sub.full_name.startswith("cloudplane."):
                if required and sub.full_name == "google.protobuf.FieldMask":
                    getattr(message, field.name).paths.append("display_name")
                continue
            if not required:
                continue
            inner = getattr(message, field.name)
            inner.SetInParent()
            if is_create:
                _fill(inner, account, names, depth + 1, is_create)
            # An update names its resource inside the resource.
            resource = sub.GetOptions().Extensions[resource_pb2.resource]
            if depth == 0 and not is_create and resource.type and "name" in sub.fields_by_name:
                inner.name = names.name(resource.type, account)


def request_for(method, account, names):
    """A request for `method` naming `account`, valid in shape; a mutation
    is validate_only so it changes nothing."""
    request = message_class(method.input_type)()
    is_create = method.name.startswith("Create")
    _fill(request, account, names, 0, is_create)
    _tweak(method, request, account, names)
    return request


# ---- Calls -------------------------------------------------------------------

@dataclasses.dataclass
class Refusal:
    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict
    domain: str = ""
    raw: bytes = b""  # grpc-status-details-bin, as sent

    def __str__(self):
        return f"{self.code.name} {self.reason} {self.metadata} {self.message!r}"


def refusal(error):
    info, _ = error_details(error)
    raw = b"".join(value for key, value in error.trailing_metadata() or ()
                   if key == "grpc-status-details-bin")
    return Refusal(error.code(), error.details() or "", info.reason if info else "",
                   dict(info.metadata) if info else {}, info.domain if info else "", raw)


def invoke(channel, method, request, metadata=(), timeout=15.0):
    """The response (for a server stream: its first message) or a Refusal."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = message_class(method.output_type)
    kwargs = dict(request_serializer=lambda m: m.SerializeToString(),
                  response_deserializer=response_class.FromString)
    try:
        if method.server_streaming:
            call = channel.unary_stream(path, **kwargs)(request, metadata=list(metadata),
                                                        timeout=timeout)
            try:
                return next(call)
            finally:
                call.cancel()
        return channel.unary_unary(path, **kwargs)(request, metadata=list(metadata),
                                                   timeout=timeout)
    except grpc.RpcError as error:
        return refusal(error)


def seed(server, principal, account, suffix=""):
    """Creates an instance, a volume, a firewall with a rule in `account`
    as `principal`; returns their resource names and the operations."""
    md = principal.metadata()
    a = f"accounts/{account}"
    ops = []
    ops.append(server.compute().CreateInstance(compute_pb2.CreateInstanceRequest(
        parent=a, instance_id=f"i1{suffix}", request_id=f"seed-i1{suffix}-{account}",
        instance=compute_pb2.Instance(image=a + "/images/debian-12",
                                      machine_type=a + "/machineTypes/small")), metadata=md))
    ops.append(server.volumes().CreateVolume(volumes_pb2.CreateVolumeRequest(
        parent=a, volume_id=f"v1{suffix}", volume=volumes_pb2.Volume(size_bytes=1 << 30)),
        metadata=md))
    ops.append(server.firewalls().CreateFirewall(firewalls_pb2.CreateFirewallRequest(
        parent=a, firewall_id=f"fw1{suffix}", firewall=firewalls_pb2.Firewall(display_name="fw")),
        metadata=md))
    done = [wait(server, op, md) for op in ops]
    for op in done:
        assert not op.HasField("error"), op.error
    rule_op = wait(server, server.firewalls().CreateFirewallRule(
        firewalls_pb2.CreateFirewallRuleRequest(
            parent=f"{a}/firewalls/fw1{suffix}",
            rule=firewalls_pb2.FirewallRule(protocol="tcp", port_range_start=22,
                                            source_ranges=["198.51.100.0/24"])), metadata=md), md)
    assert not rule_op.HasField("error"), rule_op.error
    rule = firewalls_pb2.FirewallRule()
    rule_op.response.Unpack(rule)
    return {"instance": f"{a}/instances/i1{suffix}", "volume": f"{a}/volumes/v1{suffix}",
            "firewall": f"{a}/firewalls/fw1{suffix}", "rule": rule.name,
            "operations": [op.name for op in done] + [rule_op.name]}


def wait(server, op, metadata=(), timeout=30.0):
    deadline = time.monotonic() + timeout
    while not op.done:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(op.name)
        request = operations_pb2.WaitOperationRequest(name=op.name)
        request.timeout.FromMilliseconds(int(min(remaining, 10) * 1000))
        op = server.operations().WaitOperation(request, metadata=list(metadata),
                                               timeout=remaining + 5)
    return op
