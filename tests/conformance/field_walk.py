"""The strict field contract, walked from the API's own descriptors.

For one mutation of the API: every request field a client can set (its
settable leaf paths, named as the server names them: `instance.labels`,
`unit.options.value`, `instance.display_name` for an update mask path), a
request that is valid but for that one field, and a sample value for it.
conformance.AdapterConformance uses it to check that every such field is
either honoured (listed in Account.capabilities and not refused) or refused
with INVALID_ARGUMENT / FIELD_UNSUPPORTED naming it.
"""
import re

from google.api import field_behavior_pb2, resource_pb2
from google.protobuf import descriptor

# The fields every mutation has; the server handles them itself (see
# Capability.honoured_fields in accounts.proto).
SERVER_FIELDS = {"parent", "name", "request_id", "validate_only", "provider_options",
                 "update_mask"}

_FD = descriptor.FieldDescriptor

# What a message needs beyond its REQUIRED fields to be valid, for the
# messages whose validity is more than their annotations: a firewall rule
# must name its far end (service/request_validation.cc), and 0.0.0.0/0 with
# ::/0 is "anywhere" as every adapter with firewalls takes it.
_VALID_DEFAULTS = {
    "cloudplane.v1.FirewallRule": {"source_ranges": ["0.0.0.0/0", "::/0"]},
}


def behaviors(field):
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def _is_walked(field):
    return (field.type == _FD.TYPE_MESSAGE and not field.message_type.GetOptions().map_entry
            and not field.message_type.full_name.startswith("google.protobuf."))


def _is_map(field):
    return field.type == _FD.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _skipped_inside(field):
    b = behaviors(field)
    return field_behavior_pb2.OUTPUT_ONLY in b or field_behavior_pb2.IDENTIFIER in b


def _leaves(desc, prefix, seen):
    for f in desc.fields:
        if _skipped_inside(f):
            continue
        path = prefix + f.name
        if _is_walked(f) and f.message_type.full_name not in seen:
            yield from _leaves(f.message_type, path + ".", seen | {f.message_type.full_name})
        else:
            yield path


def _update_resource(desc):
    """The resource field of an update request (one with a FieldMask
    update_mask), or None."""
    mask = desc.fields_by_name.get("update_mask")
    if mask is None or mask.message_type.full_name != "google.protobuf.FieldMask":
        return None
    walked = [f for f in desc.fields if _is_walked(f) and f.label != _FD.LABEL_REPEATED]
    return walked[-1] if walked else None


def settable_paths(request_desc):
    """Every settable leaf path of a mutation's request, sorted."""
    out = set()
    resource = _update_resource(request_desc)
    for f in request_desc.fields:
        if f.name in SERVER_FIELDS:
            continue
        if resource is not None and f is resource:
            # An update sets what its mask names: top-level fields of the resource.
            out.update(f"{f.name}.{g.name}" for g in f.message_type.fields
                       if not _skipped_inside(g))
        elif _is_walked(f):
            out.update(_leaves(f.message_type, f.name + ".", {f.message_type.full_name}))
        else:
            out.add(f.name)
    return sorted(out)


def is_honoured(path, honoured):
    """As the server judges it (service/field_contract.cc IsHonoured)."""
    return any(path == h or path.startswith(h + ".") or h.startswith(path + ".")
               for h in honoured)


class Namer:
    """Resource names that match the API's patterns, in one account."""

    def __init__(self, modules, account_id):
        self.account_id = account_id
        self.patterns = {}
        for module in modules:
            for message in module.DESCRIPTOR.message_types_by_name.values():
                resource = message.GetOptions().Extensions[resource_pb2.resource]
                if resource.type and resource.pattern:
                    self.patterns[resource.type] = resource.pattern[0]

    def name_of(self, message_desc):
        """A name for a message that is itself a resource, or None."""
        resource = message_desc.GetOptions().Extensions[resource_pb2.resource]
        return self._format(self.patterns.get(resource.type)) if resource.type else None

    def _format(self, pattern):
        if pattern is None:
            return None
        return re.sub(r"\{(\w+)\}", lambda m: self.account_id if m.group(1) == "account"
                      else "walk-1", pattern)

    def name_for(self, field):
        ref = field.GetOptions().Extensions[resource_pb2.resource_reference]
        kind = ref.type or ref.child_type
        if kind == "cloudplane.dev/Account" or (field.name == "parent" and not ref.type):
            return f"accounts/{self.account_id}"
        return self._format(self.patterns.get(kind))


def _scalar_sample(field, namer):
    if field.type == _FD.TYPE_STRING:
        named = namer.name_for(field)
        return named if named else "walk-1"
    if field.type == _FD.TYPE_BYTES:
        return b"walk"
    if field.type == _FD.TYPE_BOOL:
        return True
    if field.type == _FD.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values if v.number != 0]
        return values[0]
    if field.type in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return 1.0
    if field.name.endswith("_bytes"):
        return 1 << 30
    return 1


def _fill(message, field, namer):
    """Sets `field` of `message` to a sample value (a leaf)."""
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        target = getattr(message, field.name)
        if value_field.type == _FD.TYPE_MESSAGE:
            target["walk"].SetInParent()
        else:
            target["walk"] = _scalar_sample(value_field, namer)
        return
    if field.type == _FD.TYPE_MESSAGE:
        full = field.message_type.full_name
        target = (getattr(message, field.name).add() if field.label == _FD.LABEL_REPEATED
                  else getattr(message, field.name))
        if full == "google.protobuf.Struct":
            target.update({"walk": "yes"})
        elif full in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            target.seconds = 1
        elif full == "google.protobuf.FieldMask":
            target.paths.append("walk")
        else:
            target.SetInParent()
        return
    if field.label == _FD.LABEL_REPEATED:
        getattr(message, field.name).append(_scalar_sample(field, namer))
    else:
        setattr(message, field.name, _scalar_sample(field, namer))


def set_path(message, path, namer):
    """Sets the leaf at dotted `path` (walking into, or adding, messages)."""
    *parents, leaf = path.split(".")
    for name in parents:
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.label == _FD.LABEL_REPEATED:
            container = getattr(message, name)
            if len(container):
                message = container[0]
            else:
                # A new element is as valid as the request around it, so
                # that only the field under test can be refused.
                message = container.add()
                _fill_required(message, namer, False)
        else:
            message = getattr(message, name)
            message.SetInParent()
    _fill(message, message.DESCRIPTOR.fields_by_name[leaf], namer)


def _fill_required(message, namer, top):
    for name, value in _VALID_DEFAULTS.get(message.DESCRIPTOR.full_name, {}).items():
        getattr(message, name).extend(value)
    for f in message.DESCRIPTOR.fields:
        b = behaviors(f)
        if field_behavior_pb2.REQUIRED not in b or (not top and _skipped_inside(f)):
            continue
        if _is_walked(f):
            child = getattr(message, f.name).add() if f.label == _FD.LABEL_REPEATED \
                else getattr(message, f.name)
            child.SetInParent()
            _fill_required(child, namer, False)
        elif f.name != "update_mask":
            _fill(message, f, namer)


def request_with(request_class, path, namer, request_id):
    """A request of `request_class` with its required fields filled in and
    the settable `path` set (for an update: named in the update_mask)."""
    request = request_class()
    _fill_required(request, namer, True)
    resource = _update_resource(request.DESCRIPTOR)
    if resource is not None:
        inner = getattr(request, resource.name)
        if not inner.name:
            inner.name = namer.name_of(inner.DESCRIPTOR) or ""
        request.update_mask.paths.append(path.split(".", 1)[1])
    set_path(request, path, namer)
    if "request_id" in request.DESCRIPTOR.fields_by_name:
        request.request_id = request_id
    return request
