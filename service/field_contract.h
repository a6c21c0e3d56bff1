// The strict field contract (ProviderInfo::honoured_fields): a mutation's
// request fields are carried out by the account's adapter or refused before
// anything is sent, never accepted and dropped.
//
// Which fields count: every field the request sets, as a path of field names
// from the request ("instance.machine_type"; repeated elements and map
// entries are not indexed: "instance.disks.size_bytes", "instance.labels").
// A message field is walked into and only its set leaves count; a
// google.protobuf message (Struct, Timestamp, ...) and a map count as one
// leaf. "Set" is: present for a field with presence (messages, `optional`
// scalars), non-empty for strings, bytes and repeated fields, non-zero for
// numbers and enums, true for bools — a proto3 scalar left at its default
// cannot be told from one not sent, and means "the default" either way.
// Not counted: the fields every mutation has (the request's parent, name,
// request_id, validate_only and provider_options — CheckProviderOptions
// judges that one), a resource's IDENTIFIER and OUTPUT_ONLY fields (AIP-203:
// ignored on input). An update request (one with an update_mask) counts the
// mask's paths under its resource field instead of the resource's set fields:
// fields outside the mask are not applied (AIP-134).
//
// Thread-safe, no state.
#ifndef CLOUDPLANE_SERVICE_FIELD_CONTRACT_H_
#define CLOUDPLANE_SERVICE_FIELD_CONTRACT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace cloudplane::service {

// The counted paths `request` sets, sorted, each once.
std::vector<std::string> ContractFieldPaths(const google::protobuf::Message& request);

// Whether `path` is covered by `honoured`: equal to an entry, under one
// ("instance.disks.size_bytes" under "instance.disks"), or above one (a
// message that sets nothing itself, e.g. an empty element of
// "instance.disks" when "instance.disks.size_bytes" is honoured).
bool IsHonoured(absl::string_view path, const std::vector<std::string>& honoured);

// OK when every counted path of `request` is honoured. Otherwise
// INVALID_ARGUMENT with ErrorInfo reason FIELD_UNSUPPORTED (metadata
// `method`, `provider`, and `field`: the first one refused) and one BadRequest violation per field that is not.
absl::Status CheckFieldContract(const google::protobuf::Message& request,
                                const std::vector<std::string>& honoured,
                                absl::string_view provider_kind, absl::string_view method);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_FIELD_CONTRACT_H_
