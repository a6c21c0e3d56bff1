#include "adapters/common/http/http_status.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::http {
namespace {

using C = absl::StatusCode;

TEST(HttpStatusToStatusTest, Table) {
  const struct {
    int http;
    C code;
  } cases[] = {
      {200, C::kOk},
      {201, C::kOk},
      {204, C::kOk},
      {299, C::kOk},
      {100, C::kUnknown},
      {301, C::kFailedPrecondition},
      {304, C::kFailedPrecondition},
      {307, C::kFailedPrecondition},
      {400, C::kInvalidArgument},
      {401, C::kUnauthenticated},
      {403, C::kPermissionDenied},
      {404, C::kNotFound},
      {405, C::kUnimplemented},
      {408, C::kUnavailable},
      {409, C::kAborted},
      {410, C::kNotFound},
      {412, C::kFailedPrecondition},
      {413, C::kInvalidArgument},
      {415, C::kInvalidArgument},
      {416, C::kOutOfRange},
      {418, C::kFailedPrecondition},
      {422, C::kInvalidArgument},
      {429, C::kUnavailable},
      {500, C::kUnavailable},
      {501, C::kUnimplemented},
      {502, C::kUnavailable},
      {503, C::kUnavailable},
      {504, C::kDeadlineExceeded},
      {599, C::kUnavailable},
      {0, C::kUnknown},
      {600, C::kUnknown},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(HttpStatusToCode(c.http), c.code) << c.http;
    EXPECT_EQ(HttpStatusToStatus(c.http, "m").code(), c.code) << c.http;
  }
}

TEST(HttpStatusToStatusTest, Message) {
  EXPECT_TRUE(HttpStatusToStatus(200, "ignored").ok());
  absl::Status s = HttpStatusToStatus(404, "The bucket does not exist");
  EXPECT_EQ(s.message(), "The bucket does not exist (HTTP 404)");
  EXPECT_EQ(HttpStatusToStatus(503, "").message(), "HTTP 503");
}

}  // namespace
}  // namespace cloudplane::http
