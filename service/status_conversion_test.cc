#include "service/status_conversion.h"

#include <optional>

#include "absl/time/time.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::service {
namespace {

TEST(StatusConversion, DerivesErrorInfoFromCode) {
  google::rpc::Status rpc = ToRpcStatus(absl::NotFoundError("unit does not exist"));
  EXPECT_EQ(rpc.code(), 5);
  EXPECT_EQ(rpc.message(), "unit does not exist");
  ASSERT_EQ(rpc.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "RESOURCE_NOT_FOUND");
  EXPECT_EQ(info.domain(), "cloudplane.dev");
}

TEST(StatusConversion, KeepsAttachedDetails) {
  absl::Status status = InvalidField("volume.size_bytes", "must be positive");
  AddFieldViolation(status, "volume.display_name", "too long");
  grpc::Status grpc_status = ToGrpcStatus(status);
  EXPECT_EQ(grpc_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(grpc_status.error_details()));
  ASSERT_EQ(rpc.details_size(), 2);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "FIELD_INVALID");
  EXPECT_EQ(info.metadata().at("field"), "volume.size_bytes");
  google::rpc::BadRequest bad;
  ASSERT_TRUE(rpc.details(1).UnpackTo(&bad));
  ASSERT_EQ(bad.field_violations_size(), 2);
  EXPECT_EQ(bad.field_violations(1).field(), "volume.display_name");
}

// The RetryInfo among the details of a failed call, if any.
std::optional<google::rpc::RetryInfo> RetryInfoOf(const grpc::Status& status) {
  google::rpc::Status rpc;
  EXPECT_TRUE(rpc.ParseFromString(status.error_details()));
  for (const google::protobuf::Any& detail : rpc.details()) {
    google::rpc::RetryInfo info;
    if (detail.UnpackTo(&info)) return info;
  }
  return std::nullopt;
}

TEST(StatusConversion, CopiesTheRetryInfoAfterTheErrorInfo) {
  absl::Status status = WithRetryInfo(
      WithErrorInfo(absl::UnavailableError("provider is down"), reasons::kProviderUnavailable),
      absl::Milliseconds(2500));
  google::rpc::Status rpc = ToRpcStatus(status);
  ASSERT_EQ(rpc.details_size(), 2);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), reasons::kProviderUnavailable);
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(rpc.details(1).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 2);
  EXPECT_EQ(retry.retry_delay().nanos(), 500000000);

  grpc::Status grpc_status = ToGrpcStatus(status);
  EXPECT_EQ(grpc_status.error_code(), grpc::StatusCode::UNAVAILABLE);
  std::optional<google::rpc::RetryInfo> sent = RetryInfoOf(grpc_status);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->retry_delay().seconds(), 2);
  EXPECT_EQ(sent->retry_delay().nanos(), 500000000);
}

// A RetryInfo its maker attached goes out with any code, e.g.
// RESOURCE_EXHAUSTED from a rate limit.
TEST(StatusConversion, CopiesTheRetryInfoOfOtherCodes) {
  grpc::Status grpc_status =
      ToGrpcStatus(WithRetryInfo(absl::ResourceExhaustedError("rate limit"), absl::Seconds(7)));
  std::optional<google::rpc::RetryInfo> sent = RetryInfoOf(grpc_status);
  ASSERT_TRUE(sent.has_value());
  EXPECT_EQ(sent->retry_delay().seconds(), 7);
}

TEST(StatusConversion, UnavailableCallErrorsGetTheDefaultRetryInfo) {
  grpc::Status grpc_status = ToGrpcStatus(absl::UnavailableError("server is stopping"));
  google::rpc::Status rpc;
  ASSERT_TRUE(rpc.ParseFromString(grpc_status.error_details()));
  ASSERT_EQ(rpc.details_size(), 2);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(rpc.details(0).UnpackTo(&info));
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(rpc.details(1).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), absl::ToInt64Seconds(kDefaultRetryDelay));
  EXPECT_EQ(retry.retry_delay().nanos(), 0);
}

TEST(StatusConversion, NoDefaultRetryInfoForOtherCodesOrOperationErrors) {
  for (const absl::Status& status :
       {absl::InternalError("bug"), absl::FailedPreconditionError("wrong state"),
        absl::DeadlineExceededError("too late"), absl::AbortedError("conflict"),
        InvalidField("volume.size_bytes", "must be positive")}) {
    EXPECT_FALSE(RetryInfoOf(ToGrpcStatus(status)).has_value()) << status;
  }
  // Operation.error: the operation is over for its request_id, whatever the code.
  google::rpc::Status op_error = ToRpcStatus(absl::UnavailableError("provider is down"));
  ASSERT_EQ(op_error.details_size(), 1);
  EXPECT_TRUE(op_error.details(0).Is<google::rpc::ErrorInfo>());
}

TEST(StatusConversion, ProviderTextThatIsNotUtf8IsRepairedNotPassedOn) {
  // A provider's message quoted into the error and its ErrorInfo.
  absl::Status status = WithErrorInfo(
      absl::FailedPreconditionError("oned says: bad \xED\xB5\x9D name"), "PROVIDER_ERROR",
      {{"providerMessage", "bad \xED\xB5\x9D name"}});
  AddFieldViolation(status, "instance.display_name", "provider: \xFF");
  for (const google::rpc::Status& rpc :
       {ToRpcStatus(status), [&] {
          google::rpc::Status r;
          EXPECT_TRUE(r.ParseFromString(ToGrpcStatus(status).error_details()));
          return r;
        }()}) {
    EXPECT_EQ(rpc.message(), "oned says: bad \xEF\xBF\xBD name");
    google::rpc::ErrorInfo info;
    ASSERT_TRUE(rpc.details(0).UnpackTo(&info));
    EXPECT_EQ(info.metadata().at("providerMessage"), "bad \xEF\xBF\xBD name");
    google::rpc::BadRequest bad;
    ASSERT_TRUE(rpc.details(1).UnpackTo(&bad));
    EXPECT_EQ(bad.field_violations(0).description(), "provider: \xEF\xBF\xBD");
  }
  EXPECT_EQ(ToGrpcStatus(status).error_message(), "oned says: bad \xEF\xBF\xBD name");
}

TEST(StatusConversion, OkIsOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace cloudplane::service
