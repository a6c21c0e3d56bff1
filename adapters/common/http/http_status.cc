#include "adapters/common/http/http_status.h"

#include "absl/strings/str_cat.h"

namespace cloudplane::http {

absl::StatusCode HttpStatusToCode(int http_status) {
  using C = absl::StatusCode;
  if (http_status >= 200 && http_status <= 299) return C::kOk;
  switch (http_status) {
    // Redirects are never followed (a signed request must not be replayed
    // elsewhere), so one reaching a caller means the endpoint or region is
    // configured wrong; 304 answers a conditional request.
    case 300: case 301: case 302: case 303: case 304: case 307: case 308:
      return C::kFailedPrecondition;
    case 400: return C::kInvalidArgument;     // Bad Request
    case 401: return C::kUnauthenticated;     // credentials missing/invalid
    case 403: return C::kPermissionDenied;    // authenticated, not allowed
    case 404: return C::kNotFound;
    case 405: return C::kUnimplemented;       // Method Not Allowed
    // The server gave up waiting for the request: nothing happened, retry.
    case 408: return C::kUnavailable;
    // Conflict: concurrent modification or "already exists"; ABORTED means
    // "retry at a higher level". Adapters whose provider uses 409 for "wrong
    // state" (fleet) override it with FAILED_PRECONDITION.
    case 409: return C::kAborted;
    case 410: return C::kNotFound;            // Gone
    case 411: return C::kInvalidArgument;     // Length Required
    case 412: return C::kFailedPrecondition;  // If-Match etc. failed
    case 413: return C::kInvalidArgument;     // Payload Too Large
    case 414: return C::kInvalidArgument;     // URI Too Long
    case 415: return C::kInvalidArgument;     // Unsupported Media Type
    case 416: return C::kOutOfRange;          // Range Not Satisfiable
    case 422: return C::kInvalidArgument;     // Unprocessable Entity
    // Throttling. UNAVAILABLE rather than RESOURCE_EXHAUSTED: the request is
    // safe to retry after a backoff, which is what UNAVAILABLE tells gRPC
    // clients; RESOURCE_EXHAUSTED reads as a hard quota and is not retried.
    case 429: return C::kUnavailable;
    case 501: return C::kUnimplemented;       // Not Implemented
    case 504: return C::kDeadlineExceeded;    // Gateway Timeout
    default: break;
  }
  // Other 5xx (500, 502, 503, ...) are the provider's trouble: retryable.
  if (http_status >= 500 && http_status <= 599) return C::kUnavailable;
  // Other 4xx: the request was wrong in a way this table cannot name.
  if (http_status >= 400 && http_status <= 499) return C::kFailedPrecondition;
  // 1xx as a final answer, unknown 3xx, or not an HTTP status at all.
  return C::kUnknown;
}

absl::Status HttpStatusToStatus(int http_status, absl::string_view message) {
  const absl::StatusCode code = HttpStatusToCode(http_status);
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  if (message.empty()) {
    return absl::Status(code, absl::StrCat("HTTP ", http_status));
  }
  return absl::Status(code, absl::StrCat(message, " (HTTP ", http_status, ")"));
}

}  // namespace cloudplane::http
