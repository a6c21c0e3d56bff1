// Fuzz harness of the AWS query protocol's answer parsers (AWS Auto Scaling,
// Phantom), tools/bazel/fuzz.bzl. Properties, for any body:
//   - a success answer's NextToken and RequestId are valid UTF-8;
//   - an error answer (either dialect) never fails to parse, its code,
//     message and request id are valid UTF-8, the message is cut to at most
//     500 bytes plus "...", and the status made from it converts to a gRPC
//     status a client can read (message and ErrorInfo valid UTF-8).
#include <cstddef>
#include <cstdint>

#include "adapters/common/aws/query.h"
#include "base/fuzzing/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudplane;
  const absl::string_view body = fuzzing::AsText(data, size);
  // Two actions: one whose answer has a Result wrapper, and Phantom's
  // DescribeAutoScalingInstances, whose root is named after the action.
  for (absl::string_view action : {"DescribeAutoScalingGroups", "DescribeAutoScalingInstances"}) {
    auto response = aws::ParseQueryResponse(action, body);
    if (response.ok()) {
      fuzzing::CheckUtf8(response->next_token, "NextToken");
      fuzzing::CheckUtf8(response->request_id, "RequestId");
      FUZZ_CHECK(response->result != nullptr, "a parsed answer without a result node");
    } else {
      fuzzing::CheckStatus(response.status(), "ParseQueryResponse");
    }
  }
  // 400 takes the Phantom plain-text path when the first line says 400.
  for (int http_status : {400, 503}) {
    const aws::QueryError error = aws::ParseQueryError(http_status, body);
    fuzzing::CheckUtf8(error.code, "error code");
    fuzzing::CheckUtf8(error.message, "error message");
    fuzzing::CheckUtf8(error.request_id, "error request id");
    FUZZ_CHECK(error.message.size() <= 503, "an error message was not cut");
    fuzzing::CheckStatus(aws::StatusFromQueryError(error, "DescribeAutoScalingGroups"),
                         "StatusFromQueryError");
  }
  return 0;
}
