// One way for a remote adapter to send an HTTP request and report a
// transport failure.
//
// The deadline rule, decided once: the adapter passes the call's deadline on
// in HttpRequest::deadline and checks nothing itself. The transport refuses a
// request whose deadline has already passed before anything is sent
// (DEADLINE_EXCEEDED) and aborts one that runs past it; Send() reports either
// with the request's context.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_SEND_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_SEND_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/http/http_client.h"

namespace cloudplane::adapters::kit {

using ResponseCallback = absl::AnyInvocable<void(absl::StatusOr<http::HttpResponse>)>;

// `status` (a transport failure) with "<context>: " before its message and an
// ErrorInfo: the one it carries, else the default reason of its code. Its
// other payloads (a RetryInfo) are kept.
absl::Status TransportError(absl::string_view context, const absl::Status& status);

// For HttpRequest::validate on the reads of a JSON API (one line in each
// adapter's send helper): a 2xx answer is well-formed when its body is JSON
// (trailing commas allowed; checked without building a document, see
// json::CheckSyntax), or empty with 204 No Content. The guard
// (guard.h) sends a read again when its answer is not; the adapter still
// parses the answer it finally gets and reports what it cannot read.
absl::Status CheckJsonAnswer(const http::HttpResponse& response);

// Sends `request` on `client`. `done` gets every HTTP response (any status:
// mapping 4xx/5xx is the adapter's), or TransportError(context, …) when the
// request failed in transport. `context` names what was asked ("GET drive
// <uuid>"), never a body, a header or a query value that may hold a secret.
// `done` runs on the transport thread, or inline.
void Send(http::HttpClient& client, http::HttpRequest request, absl::string_view context,
          ResponseCallback done);

}  // namespace cloudplane::adapters::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_SEND_H_
