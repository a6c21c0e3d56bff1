#include "service/field_contract.h"

#include <optional>
#include <string>
#include <vector>

#include "base/errors.h"
#include "cloudplane/v1/compute.pb.h"
#include "cloudplane/v1/units.pb.h"
#include "cloudplane/v1/volumes.pb.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::service {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(ContractFieldPaths, TheServersOwnAndOutputOnlyFieldsDoNotCount) {
  v1::CreateInstanceRequest r;
  r.set_parent("accounts/lab");
  r.set_instance_id("web-1");
  r.set_request_id("8c2c6a44-0a7e-4d7c-9a66-14a3d1c0a1b2");
  r.set_validate_only(true);
  r.mutable_instance()->set_name("accounts/lab/instances/ignored");  // IDENTIFIER
  r.mutable_instance()->set_state(v1::Instance::RUNNING);            // OUTPUT_ONLY
  r.mutable_instance()->add_ip_addresses("10.0.0.1");                // OUTPUT_ONLY
  r.mutable_instance()->set_image("accounts/lab/images/1");
  EXPECT_THAT(ContractFieldPaths(r), ElementsAre("instance.image", "instance_id"));
}

TEST(ContractFieldPaths, DefaultsAreNotSetAndPresenceIs) {
  v1::CreateInstanceRequest r;
  r.mutable_instance()->set_cpu_count(0);
  r.mutable_instance()->set_display_name("");
  EXPECT_THAT(ContractFieldPaths(r), ElementsAre("instance"));  // present, sets nothing
  r.set_start(false);  // `optional bool`: sent, so it counts
  r.mutable_instance()->set_memory_bytes(1 << 30);
  (*r.mutable_instance()->mutable_labels())["team"] = "db";
  r.mutable_instance()->mutable_provider_options();  // a Struct counts whole
  EXPECT_THAT(ContractFieldPaths(r),
              ElementsAre("instance.labels", "instance.memory_bytes", "instance.provider_options",
                          "start"));
}

TEST(ContractFieldPaths, RepeatedMessagesAreWalkedWithoutIndexes) {
  v1::CreateUnitRequest r;
  r.set_parent("accounts/lab");
  r.set_unit_id("web.service");
  auto* o = r.mutable_unit()->add_options();
  o->set_section("Service");
  o->set_name("ExecStart");
  o->set_value("/usr/bin/sleep 1d");
  r.mutable_unit()->add_options()->set_section("X-Fleet");
  EXPECT_THAT(ContractFieldPaths(r),
              ElementsAre("unit.options.name", "unit.options.section", "unit.options.value",
                          "unit_id"));
}

TEST(ContractFieldPaths, AnUpdateCountsItsMaskNotItsResource) {
  v1::UpdateInstanceRequest r;
  r.mutable_instance()->set_name("accounts/lab/instances/web-1");
  r.mutable_instance()->set_display_name("web");
  r.mutable_instance()->set_memory_bytes(1 << 30);  // not in the mask: not applied
  r.mutable_update_mask()->add_paths("display_name");
  r.mutable_update_mask()->add_paths("labels");
  EXPECT_THAT(ContractFieldPaths(r), ElementsAre("instance.display_name", "instance.labels"));
}

TEST(IsHonoured, EqualUnderOrAbove) {
  const std::vector<std::string> honoured = {"instance.labels", "unit.options.value"};
  EXPECT_TRUE(IsHonoured("instance.labels", honoured));
  EXPECT_TRUE(IsHonoured("unit.options.value", honoured));
  EXPECT_TRUE(IsHonoured("unit.options", honoured));  // an element that sets nothing
  EXPECT_FALSE(IsHonoured("instance.label", honoured));
  EXPECT_FALSE(IsHonoured("instance.labelsx", honoured));
  EXPECT_FALSE(IsHonoured("unit.options.name", honoured));
  EXPECT_TRUE(IsHonoured("instance.labels.x", {"instance"}));
}

TEST(CheckFieldContract, RefusesEachFieldNotHonouredByName) {
  v1::CreateInstanceRequest r;
  r.set_parent("accounts/lab");
  r.mutable_instance()->set_image("accounts/lab/images/1");
  r.mutable_instance()->set_user_data("#cloud-config");
  r.mutable_instance()->set_key_name("ops");
  const std::vector<std::string> honoured = {"instance.image", "instance.labels"};
  absl::Status s =
      CheckFieldContract(r, honoured, "opennebula", "cloudplane.v1.ComputeService.CreateInstance");
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("instance.key_name"));
  std::optional<google::rpc::ErrorInfo> info = GetErrorInfo(s);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "FIELD_UNSUPPORTED");
  EXPECT_EQ(info->metadata().at("provider"), "opennebula");
  EXPECT_EQ(info->metadata().at("method"), "cloudplane.v1.ComputeService.CreateInstance");
  EXPECT_EQ(info->metadata().at("field"), "instance.key_name");
  std::optional<google::rpc::BadRequest> bad = GetBadRequest(s);
  ASSERT_TRUE(bad.has_value());
  ASSERT_EQ(bad->field_violations_size(), 2);
  EXPECT_EQ(bad->field_violations(0).field(), "instance.key_name");
  EXPECT_EQ(bad->field_violations(1).field(), "instance.user_data");
  EXPECT_THAT(bad->field_violations(1).description(),
              ::testing::HasSubstr("instance.image, instance.labels"));

  r.mutable_instance()->clear_user_data();
  r.mutable_instance()->clear_key_name();
  (*r.mutable_instance()->mutable_labels())["a"] = "b";
  EXPECT_TRUE(CheckFieldContract(r, honoured, "opennebula", "m").ok());
}

TEST(CheckFieldContract, NothingHonouredRefusesEveryOwnField) {
  v1::DeleteVolumeRequest r;
  r.set_name("accounts/lab/volumes/v1");
  r.set_request_id("8c2c6a44-0a7e-4d7c-9a66-14a3d1c0a1b2");
  EXPECT_TRUE(CheckFieldContract(r, {}, "sandbox", "m").ok());
  r.set_allow_missing(true);
  absl::Status s = CheckFieldContract(r, {}, "sandbox", "m");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("none"));
}

}  // namespace
}  // namespace cloudplane::service
