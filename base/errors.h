// Rich error details carried inside absl::Status.
//
// Adapters and the service layer attach google.rpc.ErrorInfo and
// google.rpc.BadRequest to an absl::Status as payloads (keyed by their type
// URLs); the gRPC boundary (service/status_conversion.h) turns them into the
// google.rpc.Status details that clients read. Nothing here may carry a
// credential or a request body: messages name fields, ids and codes only.
#ifndef CLOUDPLANE_BASE_ERRORS_H_
#define CLOUDPLANE_BASE_ERRORS_H_

#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"

namespace cloudplane {

// ErrorInfo.domain of every error cloudplane produces.
inline constexpr absl::string_view kErrorDomain = "cloudplane.dev";

// INVALID_ARGUMENT naming `field` (a path such as `volume.size_bytes`) with a
// BadRequest field violation and ErrorInfo reason FIELD_INVALID.
absl::Status InvalidField(absl::string_view field, absl::string_view description);

// Adds a field violation to an INVALID_ARGUMENT status (or makes `status`
// one when it is OK). Used to report several bad fields at once.
void AddFieldViolation(absl::Status& status, absl::string_view field,
                       absl::string_view description);

// Returns `status` with an ErrorInfo payload: `reason` from the catalogue
// base/reasons.h (a test build aborts on any other), domain kErrorDomain, and `metadata` (e.g. {"providerCode": "404"}). An
// existing ErrorInfo is replaced. OK stays OK.
absl::Status WithErrorInfo(absl::Status status, absl::string_view reason,
                           const std::map<std::string, std::string>& metadata = {});

// Returns `status` with a google.rpc.RetryInfo payload (type URL
// "type.googleapis.com/google.rpc.RetryInfo") whose retry_delay is `delay`
// (negative counts as zero): how long the client should wait before it tries
// again. For retryable errors (UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED); an
// existing RetryInfo is replaced. OK stays OK. The gRPC boundary copies it
// into the google.rpc.Status details next to the ErrorInfo.
absl::Status WithRetryInfo(absl::Status status, absl::Duration delay);

// The payloads of `status`, when present.
std::optional<google::rpc::ErrorInfo> GetErrorInfo(const absl::Status& status);
std::optional<google::rpc::BadRequest> GetBadRequest(const absl::Status& status);
std::optional<google::rpc::RetryInfo> GetRetryInfo(const absl::Status& status);

// The type URL under which WithRetryInfo stores the payload.
inline constexpr absl::string_view kRetryInfoTypeUrl = "type.googleapis.com/google.rpc.RetryInfo";

// The ErrorInfo reason used when a status carries none: the catalogue entry
// (base/reasons.h) for the code, e.g. NOT_FOUND → RESOURCE_NOT_FOUND.
std::string DefaultReason(absl::StatusCode code);

}  // namespace cloudplane

#endif  // CLOUDPLANE_BASE_ERRORS_H_
