#include "adapters/common/http/curl_status.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::http::internal {
namespace {

using C = absl::StatusCode;
using ::testing::HasSubstr;

TEST(CurlCodeToStatusTest, Table) {
  const struct {
    CURLcode curl;
    C code;
  } cases[] = {
      {CURLE_OK, C::kOk},
      {CURLE_COULDNT_RESOLVE_HOST, C::kUnavailable},
      {CURLE_COULDNT_CONNECT, C::kUnavailable},
      {CURLE_SEND_ERROR, C::kUnavailable},
      {CURLE_RECV_ERROR, C::kUnavailable},
      {CURLE_GOT_NOTHING, C::kUnavailable},
      {CURLE_PARTIAL_FILE, C::kUnavailable},
      {CURLE_HTTP2_STREAM, C::kUnavailable},
      {CURLE_WEIRD_SERVER_REPLY, C::kUnavailable},
      {CURLE_OPERATION_TIMEDOUT, C::kDeadlineExceeded},
      {CURLE_SSL_CONNECT_ERROR, C::kUnavailable},
      {CURLE_PEER_FAILED_VERIFICATION, C::kUnavailable},
      {CURLE_SSL_CACERT_BADFILE, C::kFailedPrecondition},
      {CURLE_SSL_CERTPROBLEM, C::kFailedPrecondition},
      {CURLE_URL_MALFORMAT, C::kInvalidArgument},
      {CURLE_UNSUPPORTED_PROTOCOL, C::kInvalidArgument},
      {CURLE_FILESIZE_EXCEEDED, C::kResourceExhausted},
      {CURLE_OUT_OF_MEMORY, C::kResourceExhausted},
      {CURLE_ABORTED_BY_CALLBACK, C::kCancelled},
      {CURLE_BAD_FUNCTION_ARGUMENT, C::kInternal},
      {CURLE_TOO_MANY_REDIRECTS, C::kFailedPrecondition},
      {CURLE_LDAP_CANNOT_BIND, C::kUnknown},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(CurlCodeToStatusCode(c.curl), c.code) << c.curl;
    EXPECT_EQ(CurlCodeToStatus(c.curl, "GET http://h/p", "").code(), c.code)
        << c.curl;
  }
}

TEST(CurlCodeToStatusTest, MessageHasContextDescriptionAndDetail) {
  absl::Status s = CurlCodeToStatus(CURLE_PEER_FAILED_VERIFICATION,
                                    "GET https://h/p",
                                    "SSL certificate problem: self-signed");
  EXPECT_EQ(s.message(),
            "GET https://h/p: TLS verification of the server certificate "
            "failed (SSL certificate problem: self-signed)");
  // Codes without a description of ours fall back to libcurl's text.
  absl::Status other = CurlCodeToStatus(CURLE_LDAP_CANNOT_BIND, "", "");
  EXPECT_EQ(other.message(), curl_easy_strerror(CURLE_LDAP_CANNOT_BIND));
  EXPECT_THAT(CurlCodeToStatus(CURLE_COULDNT_CONNECT, "GET x", "").message(),
              HasSubstr("could not connect"));
}

}  // namespace
}  // namespace cloudplane::http::internal
