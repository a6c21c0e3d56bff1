// The AWS query protocol (Action=...&Version=... requests, XML answers), as
// spoken by AWS Auto Scaling and by services that imitate it (Phantom's
// pyhantom). Pure functions: building the canonical form-encoded parameter
// string and reading answers, tested in query_test.cc.
//
// Two answer dialects are read by the same code (phantom.md B.4, B.5):
//   - AWS: root `<ActionResponse xmlns=".../doc/2011-01-01/">`, then
//     `<ActionResult>` (NextToken inside it), then ResponseMetadata; errors
//     are `<ErrorResponse><Error><Code/><Message/></Error>` XML.
//   - Phantom: namespace 2009-05-15, ResponseMetadata first, NextToken a
//     child of the root, DescribeAutoScalingInstances without a Result
//     wrapper; errors are plain text "<status> <Code>\n\n<explanation>\n\n
//     <detail>". Element order is never relied on; namespaces are ignored.
//
// Thread-safety: all functions are thread-safe.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_AWS_QUERY_H_
#define CLOUDPLANE_ADAPTERS_COMMON_AWS_QUERY_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/xml/xml.h"

namespace cloudplane::aws {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// "A=1&B=x%20y": parameters sorted by name (then value), names and values
// encoded with UriEncode (unreserved kept, space as %20, never '+'). This
// is the canonical form Phantom rebuilds and verifies (phantom.md B.2 step
// 4), so it is used both as a GET query and as a POST body.
std::string EncodeQueryParams(QueryParams params);

// Adds `prefix.member.N` (1-based) for each value.
void AddMemberList(QueryParams& params, absl::string_view prefix,
                   const std::vector<std::string>& values);

// A parsed success answer.
struct QueryResponse {
  xml::Document document;
  // `<ActionResult>` when present, otherwise the root (Phantom's
  // DescribeAutoScalingInstances, and the answers of mutations that carry
  // only ResponseMetadata).
  const xml::Node* result = nullptr;
  // From the Result (AWS) or the root (Phantom); empty when absent.
  std::string next_token;
  std::string request_id;
};

// Parses the body of a 2xx answer to `action`. INTERNAL with ErrorInfo
// reason PROVIDER_MALFORMED_RESPONSE when it is not XML (hardened parser,
// adapters/common/xml) or its root is not named `<action>Response` (or
// `<action>`, Phantom's DescribeAutoScalingInstances quirk).
absl::StatusOr<QueryResponse> ParseQueryResponse(absl::string_view action,
                                                 absl::string_view body);

// A non-2xx answer, in either dialect.
struct QueryError {
  int http_status = 0;
  std::string code;        // e.g. "ValidationError"; empty when none found
  std::string message;     // the provider's message (never a request body)
  std::string request_id;  // empty when absent
};

// Reads `<ErrorResponse>` XML (AWS, moto) or Phantom's plain text error
// (code from its first line "<status> <Code>", message from its last
// paragraph). Never fails: an unreadable body gives an empty code and a
// message cut to 200 bytes.
QueryError ParseQueryError(int http_status, absl::string_view body);

// The status for a QueryError, by the provider error code table in
// query.cc (e.g. InvalidClientTokenId / SignatureDoesNotMatch →
// UNAUTHENTICATED, AlreadyExists → ALREADY_EXISTS, ValidationError →
// INVALID_ARGUMENT, Throttling → UNAVAILABLE), falling back to the HTTP
// status table. Message "<context>: <code>: <message> (HTTP n)"; ErrorInfo
// metadata providerCode, httpStatus, providerMessage.
absl::Status StatusFromQueryError(const QueryError& error, absl::string_view context);

// Just the code of the provider error code table; kUnknown when the code
// is not in it.
absl::StatusCode QueryErrorCodeToStatusCode(absl::string_view code);

}  // namespace cloudplane::aws

#endif  // CLOUDPLANE_ADAPTERS_COMMON_AWS_QUERY_H_
