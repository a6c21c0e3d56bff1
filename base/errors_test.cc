#include "base/errors.h"

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace cloudplane {
namespace {

TEST(RetryInfoTest, StoresTheDelayUnderItsTypeUrl) {
  absl::Status s = WithRetryInfo(absl::UnavailableError("down"), absl::Milliseconds(2500));
  ASSERT_TRUE(s.GetPayload("type.googleapis.com/google.rpc.RetryInfo").has_value());
  std::optional<google::rpc::RetryInfo> info = GetRetryInfo(s);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->retry_delay().seconds(), 2);
  EXPECT_EQ(info->retry_delay().nanos(), 500000000);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "down");
}

TEST(RetryInfoTest, NegativeDelayIsZeroAndOkStaysOk) {
  std::optional<google::rpc::RetryInfo> info =
      GetRetryInfo(WithRetryInfo(absl::UnavailableError("x"), absl::Seconds(-3)));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->retry_delay().seconds(), 0);
  EXPECT_EQ(info->retry_delay().nanos(), 0);
  EXPECT_TRUE(WithRetryInfo(absl::OkStatus(), absl::Seconds(1)).ok());
  EXPECT_FALSE(GetRetryInfo(absl::UnavailableError("x")).has_value());
}

TEST(RetryInfoTest, KeepsTheErrorInfo) {
  absl::Status s = WithRetryInfo(
      WithErrorInfo(absl::UnavailableError("x"), "PROVIDER_UNAVAILABLE"), absl::Seconds(1));
  ASSERT_TRUE(GetErrorInfo(s).has_value());
  EXPECT_EQ(GetErrorInfo(s)->reason(), "PROVIDER_UNAVAILABLE");
}

}  // namespace
}  // namespace cloudplane
