#include "clients/cloudplanectl/output.h"

#include "cloudplane/v1/compute.pb.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::ctl {
namespace {

using ::testing::HasSubstr;

TEST(Output, ParseOutputFormat) {
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(ParseOutputFormat("yaml").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Output, TableAlignsColumnsWithoutTrailingSpaces) {
  Table table({"NAME", "STATE", "IP"});
  table.AddRow({"web-1", "RUNNING", "10.0.0.1"});
  table.AddRow({"database-primary", "", "10.0.0.22"});
  EXPECT_EQ(table.Render(),
            "NAME              STATE    IP\n"
            "web-1             RUNNING  10.0.0.1\n"
            "database-primary  -        10.0.0.22\n");
  EXPECT_EQ(Table({"A", "B"}).Render(), "A  B\n");
}

TEST(Output, RenderRowUsesGivenWidths) {
  EXPECT_EQ(Table::RenderRow({"1", "CREATED", "x"}, {3, 8}), "1    CREATED   x\n");
}

TEST(Output, JsonUsesProtoNamesAndExpandsAny) {
  v1::Instance instance;
  instance.set_name("accounts/a/instances/web-1");
  instance.set_machine_type("accounts/a/machineTypes/small");
  instance.set_state(v1::Instance::RUNNING);
  EXPECT_EQ(ToJson(instance, /*compact=*/true),
            "{\"name\":\"accounts/a/instances/web-1\",\"state\":\"RUNNING\","
            "\"machine_type\":\"accounts/a/machineTypes/small\"}\n");
  google::rpc::Status status;
  status.add_details()->PackFrom(instance);
  EXPECT_THAT(ToJson(status),
              HasSubstr("\"@type\": \"type.googleapis.com/cloudplane.v1.Instance\""));
}

TEST(Output, FormatTime) {
  google::protobuf::Timestamp time;
  EXPECT_EQ(FormatTime(time), "-");
  time.set_seconds(1795425553);
  time.set_nanos(123);
  EXPECT_EQ(FormatTime(time), "2026-11-23T09:19:13Z");
}

TEST(Output, CodeName) {
  EXPECT_EQ(CodeName(0), "OK");
  EXPECT_EQ(CodeName(3), "INVALID_ARGUMENT");
  EXPECT_EQ(CodeName(14), "UNAVAILABLE");
  EXPECT_EQ(CodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(CodeName(42), "CODE_42");
}

TEST(Output, RichStatusFromDetailsOrCodeAndMessage) {
  google::rpc::Status rich;
  rich.set_code(5);
  rich.set_message("instance x not found");
  grpc::Status with_details(grpc::StatusCode::NOT_FOUND, "instance x not found",
                            rich.SerializeAsString());
  EXPECT_EQ(RichStatus(with_details).message(), "instance x not found");
  grpc::Status plain(grpc::StatusCode::UNAVAILABLE, "connection refused");
  EXPECT_EQ(RichStatus(plain).code(), 14);
  EXPECT_EQ(RichStatus(plain).message(), "connection refused");
  EXPECT_EQ(RichStatus(plain).details_size(), 0);
}

TEST(Output, FormatErrorShowsReasonMetadataAndFields) {
  google::rpc::Status status;
  status.set_code(3);
  status.set_message("instance_id: must match [a-z]…");
  google::rpc::ErrorInfo info;
  info.set_reason("INVALID_ARGUMENT");
  info.set_domain("cloudplane.dev");
  (*info.mutable_metadata())["field"] = "instance_id";
  (*info.mutable_metadata())["a"] = "1";
  status.add_details()->PackFrom(info);
  google::rpc::BadRequest bad_request;
  auto* v = bad_request.add_field_violations();
  v->set_field("instance_id");
  v->set_description("must match [a-z]…");
  status.add_details()->PackFrom(bad_request);
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(2);
  retry.mutable_retry_delay()->set_nanos(500000000);
  status.add_details()->PackFrom(retry);
  google::rpc::Help help;
  status.add_details()->PackFrom(help);
  EXPECT_EQ(FormatError(status),
            "error: INVALID_ARGUMENT: instance_id: must match [a-z]…\n"
            "  reason: INVALID_ARGUMENT (cloudplane.dev) a=1 field=instance_id\n"
            "  field instance_id: must match [a-z]…\n"
            "  retry after 2.5s\n"
            "  detail: type.googleapis.com/google.rpc.Help\n");
}

}  // namespace
}  // namespace cloudplane::ctl
