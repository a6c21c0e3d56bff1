#include "adapters/common/http/curl_status.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace cloudplane::http::internal {
namespace {

// What went wrong, in words a reader of a gRPC error understands without
// knowing libcurl. nullptr: use curl_easy_strerror().
const char* Describe(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST: return "could not resolve host";
    case CURLE_COULDNT_CONNECT: return "could not connect";
    case CURLE_OPERATION_TIMEDOUT: return "deadline exceeded";
    case CURLE_SEND_ERROR: return "connection failed while sending";
    case CURLE_RECV_ERROR: return "connection failed while receiving";
    case CURLE_GOT_NOTHING: return "server closed the connection without a reply";
    case CURLE_PARTIAL_FILE: return "response was cut short";
    case CURLE_SSL_CONNECT_ERROR: return "TLS handshake failed";
    case CURLE_PEER_FAILED_VERIFICATION:
      return "TLS verification of the server certificate failed";
    case CURLE_SSL_CACERT_BADFILE: return "cannot load the CA certificate file";
    case CURLE_FILESIZE_EXCEEDED: return "response too large";
    default: return nullptr;
  }
}

}  // namespace

absl::StatusCode CurlCodeToStatusCode(CURLcode code) {
  using C = absl::StatusCode;
  switch (code) {
    case CURLE_OK:
      return C::kOk;

    // The server could not be reached or the connection broke: nothing or an
    // unknown part of the request was processed; callers retry idempotent
    // calls.
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:  // often a stale keep-alive connection
    case CURLE_PROXY:
      return C::kUnavailable;

    case CURLE_OPERATION_TIMEDOUT:
      return C::kDeadlineExceeded;

    // TLS trouble with the peer: UNAVAILABLE with a message saying it is
    // TLS, so an operator sees "certificate" rather than "connection failed".
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_USE_SSL_FAILED:
      return C::kUnavailable;

    // Local TLS configuration (CA file, client certificate, engine) is broken:
    // retrying cannot help until the configuration changes.
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
      return C::kFailedPrecondition;

    // The URL itself is unusable.
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return C::kInvalidArgument;

    // Redirects are disabled; a redirect limit can only mean misconfiguration.
    case CURLE_TOO_MANY_REDIRECTS:
      return C::kFailedPrecondition;

    // The response exceeded HttpClientOptions::max_response_bytes.
    case CURLE_FILESIZE_EXCEEDED:
    case CURLE_OUT_OF_MEMORY:
      return C::kResourceExhausted;

    case CURLE_ABORTED_BY_CALLBACK:
      return C::kCancelled;

    // Our own misuse of libcurl or a libcurl built without a feature.
    case CURLE_FAILED_INIT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_BAD_CONTENT_ENCODING:
      return C::kInternal;

    default:
      return C::kUnknown;
  }
}

absl::Status CurlCodeToStatus(CURLcode code, absl::string_view context,
                              absl::string_view detail) {
  const absl::StatusCode status_code = CurlCodeToStatusCode(code);
  if (status_code == absl::StatusCode::kOk) return absl::OkStatus();
  const char* what = Describe(code);
  std::string message =
      absl::StrCat(context, context.empty() ? "" : ": ",
                   what != nullptr ? what : curl_easy_strerror(code));
  // libcurl's error buffer names host, port and the failing step (it never
  // holds headers or bodies), which is what an operator needs.
  if (!detail.empty()) absl::StrAppend(&message, " (", detail, ")");
  return absl::Status(status_code, message);
}

}  // namespace cloudplane::http::internal
