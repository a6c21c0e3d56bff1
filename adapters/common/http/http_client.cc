#include "adapters/common/http/http_client.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace cloudplane::http {
namespace {

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(c) || absl::string_view("!#$%&'*+-.^_`|~").find(c) !=
                                       absl::string_view::npos;
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// The checks every transport relies on; `context` names the request in the
// DEADLINE_EXCEEDED message.
absl::Status Validate(const HttpRequest& request, absl::string_view context) {
  if (!IsToken(request.method)) {
    return absl::InvalidArgumentError("HTTP method is not a valid token");
  }
  const std::string& path = request.path_and_query;
  if (!path.empty() && path[0] != '/') {
    return absl::InvalidArgumentError(
        "path_and_query must be empty or start with '/'");
  }
  for (char c : path) {
    if (c <= 0x20 || c >= 0x7f) {
      return absl::InvalidArgumentError(
          "path_and_query must be percent-encoded printable ASCII");
    }
  }
  if (request.method == "HEAD" && !request.body.empty()) {
    return absl::InvalidArgumentError("a HEAD request cannot have a body");
  }
  if (request.deadline <= absl::Now()) {
    return absl::DeadlineExceededError(absl::StrCat(context, ": deadline exceeded"));
  }
  for (const auto& [name, value] : request.headers) {
    if (!IsToken(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("header name \"", absl::CHexEscape(name),
                       "\" is not a valid token"));
    }
    // Values are not echoed: they may be credentials.
    if (value.find_first_of("\r\n\0", 0, 3) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "value of header \"", name, "\" contains CR, LF or NUL"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

HttpClient::HttpClient(Endpoint endpoint, HttpClientOptions options)
    : endpoint_(std::move(endpoint)),
      settings_{options.verify_tls, std::move(options.ca_file),
                options.connect_timeout, options.max_response_bytes,
                std::move(options.user_agent)},
      transport_(std::move(options.transport)) {}

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Create(
    Endpoint endpoint, HttpClientOptions options) {
  const bool https = absl::StartsWithIgnoreCase(endpoint.base_url, "https://");
  if (!https && !absl::StartsWithIgnoreCase(endpoint.base_url, "http://")) {
    return absl::InvalidArgumentError(
        "endpoint.base_url must start with http:// or https://");
  }
  if (!endpoint.unix_socket_path.empty()) {
    if (endpoint.unix_socket_path[0] != '/') {
      return absl::InvalidArgumentError(
          "endpoint.unix_socket_path must be an absolute path");
    }
    if (https) {
      return absl::InvalidArgumentError(
          "endpoint: TLS over a unix socket is not supported; use http://");
    }
  }
  while (absl::EndsWith(endpoint.base_url, "/")) endpoint.base_url.pop_back();
  if (options.max_response_bytes == 0) {
    return absl::InvalidArgumentError("max_response_bytes must be positive");
  }
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect_timeout must be positive");
  }
  if (!options.ca_file.empty() && access(options.ca_file.c_str(), R_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("ca_file \"", options.ca_file, "\" cannot be read"));
  }
  if (options.transport == nullptr) options.transport = HttpTransport::Default();
  return std::unique_ptr<HttpClient>(
      new HttpClient(std::move(endpoint), std::move(options)));
}

void HttpClient::Send(HttpRequest request, DoneCallback done) {
  std::string context = HttpTransport::Describe(endpoint_.base_url, request);
  absl::Status valid = Validate(request, context);
  // A refused request is still completed by the transport, so `done` always
  // runs on its thread.
  if (!valid.ok()) {
    transport_->Fail(std::move(context), std::move(valid), std::move(done));
    return;
  }
  transport_->Start(endpoint_, settings_, std::move(request), std::move(done));
}

}  // namespace cloudplane::http
