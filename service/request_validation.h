// Checks every request can get before it reaches an adapter, read from the
// API's own annotations so they never drift from the .proto files:
//
// * resource names: each string field with a google.api.resource_reference
//   must match the referenced resource's pattern (e.g.
//   `accounts/{account}/instances/{instance}`), and all of a request's names
//   must be in one account;
// * required fields: google.api.field_behavior REQUIRED fields must be set,
//   at the top level and, for Create methods, inside the resource being
//   created (OUTPUT_ONLY and IDENTIFIER fields there are ignored);
// * `request_id`: at most 64 characters of printable ASCII;
// * a firewall rule being created names its far end (a source for INGRESS,
//   a destination for EGRESS; "anywhere" is `0.0.0.0/0`, never an empty
//   list): else `<rule>.source_ranges` / `<rule>.destination_ranges`.
//
// Failures are INVALID_ARGUMENT with a BadRequest field violation per bad
// field (field paths like `volume.size_bytes`).
#ifndef CLOUDPLANE_SERVICE_REQUEST_VALIDATION_H_
#define CLOUDPLANE_SERVICE_REQUEST_VALIDATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace cloudplane::service {

struct RoutedRequest {
  std::string account;  // the account id every name in the request is in
  std::string target;   // the resource the request acts on (name or parent)
};

// Validates `request` of the RPC `method` (e.g. "CreateVolume") and returns
// where it goes.
absl::StatusOr<RoutedRequest> ValidateRequest(absl::string_view method,
                                              const google::protobuf::Message& request);

// True when `name` matches a resource pattern such as
// `accounts/{account}/firewalls/{firewall}/rules/{rule}`.
bool MatchesPattern(absl::string_view name, absl::string_view pattern);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_REQUEST_VALIDATION_H_
