// HTTP status code -> absl::Status, the one table every adapter shares.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_STATUS_H_
#define CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cloudplane::http {

// Returns OK for 2xx, otherwise an error whose code follows the table in
// http_status.cc (404 NOT_FOUND, 429 UNAVAILABLE, ...) and whose message is
// `message` (typically the provider's error text; never a request body or
// header) followed by " (HTTP <code>)". Callers that know better for a
// specific provider (for instance a 409 that means "wrong state") override
// the code after calling this.
absl::Status HttpStatusToStatus(int http_status, absl::string_view message);

// Just the code of that table.
absl::StatusCode HttpStatusToCode(int http_status);

}  // namespace cloudplane::http

#endif  // CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_STATUS_H_
