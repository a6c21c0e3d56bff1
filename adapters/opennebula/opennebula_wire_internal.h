// Helpers shared by the opennebula_wire*.cc files (reading object documents,
// filling provider_details). Internal to the wire layer.
#ifndef CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_WIRE_INTERNAL_H_
#define CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_WIRE_INTERNAL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/xml/xml.h"
#include "google/protobuf/struct.pb.h"

namespace cloudplane::adapters::opennebula::wire_internal {

// INTERNAL, reason PROVIDER_MALFORMED_RESPONSE: "OpenNebula sent a malformed
// response to <method>: <detail>", metadata {"method"}.
absl::Status Malformed(absl::string_view method, absl::string_view detail);

// The integer text of `node`'s child element `child`; malformed (naming
// `what`) when it is missing or not an integer.
absl::StatusOr<int64_t> IntChild(const xml::Node& node, absl::string_view child,
                                 absl::string_view what);

// The same, or `fallback` for a null node or a missing or non-integer child.
int64_t IntOr(const xml::Node* node, absl::string_view child, int64_t fallback);

void SetString(google::protobuf::Struct* s, absl::string_view key, absl::string_view value);
void SetNumber(google::protobuf::Struct* s, absl::string_view key, double value);

// A number as text, for codes no name table covers.
std::string Num(int64_t n);

// The 32-byte SHA-256 digest of `data`.
std::string Sha256(absl::string_view data);

}  // namespace cloudplane::adapters::opennebula::wire_internal

#endif  // CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_WIRE_INTERNAL_H_
