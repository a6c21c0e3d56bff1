#include "service/status_conversion.h"

#include "base/errors.h"
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

TEST(StatusConversion, OkIsOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace cloudplane::service
