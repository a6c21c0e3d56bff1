#include "adapters/common/aws/query.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/aws/sigv4.h"
#include "adapters/common/http/http_status.h"
#include "base/errors.h"
#include "base/utf8.h"

namespace cloudplane::aws {
namespace {

absl::Status Malformed(absl::string_view why) {
  return WithErrorInfo(absl::InternalError(absl::StrCat("malformed query API answer: ", why)),
                       "PROVIDER_MALFORMED_RESPONSE");
}


}  // namespace

std::string EncodeQueryParams(QueryParams params) {
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out.push_back('&');
    absl::StrAppend(&out, UriEncode(name), "=", UriEncode(value));
  }
  return out;
}

void AddMemberList(QueryParams& params, absl::string_view prefix,
                   const std::vector<std::string>& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    params.emplace_back(absl::StrCat(prefix, ".member.", i + 1), values[i]);
  }
}

absl::StatusOr<QueryResponse> ParseQueryResponse(absl::string_view action,
                                                 absl::string_view body) {
  absl::StatusOr<xml::Document> doc = xml::Parse(body);
  if (!doc.ok()) return Malformed(doc.status().message());
  QueryResponse out;
  out.document = *std::move(doc);
  const xml::Node& root = out.document.Root();
  const std::string response_name = absl::StrCat(action, "Response");
  // Phantom's DescribeAutoScalingInstances answers <DescribeAutoScalingInstances>
  // with no Response suffix and no Result wrapper (phantom.md B.4).
  if (root.Name() != response_name && root.Name() != action) {
    return Malformed(absl::StrCat("expected <", response_name, ">, got <", root.Name(), ">"));
  }
  out.result = root.Child(absl::StrCat(action, "Result"));
  if (out.result == nullptr) out.result = &root;
  // AWS puts NextToken in the Result; Phantom puts it under the root (B.8).
  absl::string_view token = out.result->ChildText("NextToken");
  if (token.empty()) token = root.ChildText("NextToken");
  out.next_token = std::string(absl::StripAsciiWhitespace(token));
  if (const xml::Node* meta = root.Child("ResponseMetadata"); meta != nullptr) {
    out.request_id = std::string(absl::StripAsciiWhitespace(meta->ChildText("RequestId")));
  }
  return out;
}

QueryError ParseQueryError(int http_status, absl::string_view body) {
  QueryError out;
  out.http_status = http_status;
  const absl::string_view trimmed = absl::StripAsciiWhitespace(body);
  if (absl::StartsWith(trimmed, "<")) {
    absl::StatusOr<xml::Document> doc = xml::Parse(trimmed);
    if (doc.ok()) {
      const xml::Node& root = doc->Root();
      // <ErrorResponse><Error>…</Error><RequestId/></ErrorResponse>, and the
      // <Response><Errors><Error>… form some AWS query services use.
      const xml::Node* error = root.Name() == "Error" ? &root : root.Child("Error");
      if (error == nullptr) {
        if (const xml::Node* errors = root.Child("Errors"); errors != nullptr) {
          error = errors->Child("Error");
        }
      }
      if (error != nullptr) {
        out.code = std::string(absl::StripAsciiWhitespace(error->ChildText("Code")));
        out.message = ShortText(error->ChildText("Message"), 500);
        out.request_id = std::string(absl::StripAsciiWhitespace(root.ChildText("RequestId")));
        if (out.request_id.empty()) {
          out.request_id = std::string(absl::StripAsciiWhitespace(root.ChildText("RequestID")));
        }
        return out;
      }
    }
  }
  // Phantom (WebOb): "400 InvalidParameterValue\n\n<explanation>\n\n<detail>".
  std::vector<absl::string_view> lines = absl::StrSplit(trimmed, '\n');
  if (!lines.empty()) {
    std::vector<absl::string_view> first =
        absl::StrSplit(absl::StripAsciiWhitespace(lines[0]), ' ', absl::SkipEmpty());
    int status = 0;
    if (first.size() >= 2 && absl::SimpleAtoi(first[0], &status) && status == http_status) {
      // The first line is raw text: a code that is not UTF-8 is repaired
      // (query_fuzz), as it reaches ErrorInfo as providerCode.
      out.code = RepairUtf8(first[1]);
      // The message is the last non-empty paragraph.
      std::vector<std::string> paragraphs;
      std::string current;
      for (size_t i = 1; i < lines.size(); ++i) {
        absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
        if (line.empty()) {
          if (!current.empty()) paragraphs.push_back(std::move(current));
          current.clear();
          continue;
        }
        if (!current.empty()) current.push_back(' ');
        absl::StrAppend(&current, line);
      }
      if (!current.empty()) paragraphs.push_back(std::move(current));
      if (!paragraphs.empty()) out.message = ShortText(paragraphs.back(), 500);
      return out;
    }
  }
  out.message = ShortText(trimmed, 200);
  return out;
}

absl::StatusCode QueryErrorCodeToStatusCode(absl::string_view code) {
  struct Row {
    absl::string_view code;
    absl::StatusCode status;
  };
  // Provider error code → status. Auth failures are UNAUTHENTICATED whatever
  // the HTTP status (Phantom answers IncompleteSignature with 400).
  static constexpr Row kTable[] = {
      {"InvalidClientTokenId", absl::StatusCode::kUnauthenticated},
      {"SignatureDoesNotMatch", absl::StatusCode::kUnauthenticated},
      {"IncompleteSignature", absl::StatusCode::kUnauthenticated},
      {"MissingAuthenticationToken", absl::StatusCode::kUnauthenticated},
      {"AuthFailure", absl::StatusCode::kUnauthenticated},
      {"UnrecognizedClientException", absl::StatusCode::kUnauthenticated},
      // A clock more than 15 minutes off: the request will not pass until
      // the clock is fixed; not retryable as is.
      {"RequestExpired", absl::StatusCode::kUnauthenticated},
      {"AccessDenied", absl::StatusCode::kPermissionDenied},
      {"AccessDeniedException", absl::StatusCode::kPermissionDenied},
      {"OptInRequired", absl::StatusCode::kPermissionDenied},
      {"AlreadyExists", absl::StatusCode::kAlreadyExists},
      {"ValidationError", absl::StatusCode::kInvalidArgument},
      {"InvalidParameterValue", absl::StatusCode::kInvalidArgument},
      {"InvalidParameterCombination", absl::StatusCode::kInvalidArgument},
      {"MissingParameter", absl::StatusCode::kInvalidArgument},
      {"InvalidQueryParameter", absl::StatusCode::kInvalidArgument},
      {"MalformedQueryString", absl::StatusCode::kInvalidArgument},
      {"InvalidNextToken", absl::StatusCode::kInvalidArgument},
      {"InvalidAction", absl::StatusCode::kUnimplemented},
      {"MissingAction", absl::StatusCode::kInvalidArgument},
      {"ResourceInUse", absl::StatusCode::kFailedPrecondition},
      {"ScalingActivityInProgress", absl::StatusCode::kAborted},
      {"ResourceContention", absl::StatusCode::kAborted},
      {"LimitExceeded", absl::StatusCode::kResourceExhausted},
      {"Throttling", absl::StatusCode::kUnavailable},
      {"ServiceUnavailable", absl::StatusCode::kUnavailable},
      {"InternalFailure", absl::StatusCode::kUnavailable},
      {"InternalError", absl::StatusCode::kUnavailable},
  };
  for (const Row& row : kTable) {
    if (row.code == code) return row.status;
  }
  return absl::StatusCode::kUnknown;
}

absl::Status StatusFromQueryError(const QueryError& error, absl::string_view context) {
  absl::StatusCode code = QueryErrorCodeToStatusCode(error.code);
  if (code == absl::StatusCode::kUnknown) code = http::HttpStatusToCode(error.http_status);
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
  std::string message = absl::StrCat(context, ": ");
  if (!error.code.empty()) absl::StrAppend(&message, error.code, ": ");
  absl::StrAppend(&message, error.message.empty() ? "(no message)" : error.message, " (HTTP ",
                  error.http_status, ")");
  std::map<std::string, std::string> metadata = {
      {"httpStatus", absl::StrCat(error.http_status)},
      {"providerMessage", error.message},
  };
  if (!error.code.empty()) metadata["providerCode"] = error.code;
  if (!error.request_id.empty()) metadata["providerRequestId"] = error.request_id;
  return WithErrorInfo(absl::Status(code, message), DefaultReason(code), metadata);
}

}  // namespace cloudplane::aws
