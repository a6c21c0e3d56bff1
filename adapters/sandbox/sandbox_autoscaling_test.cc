// The sandbox's AutoscalingService: launch templates and scaling groups.
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_test_fixture.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::sandbox {
namespace {

using ::testing::MatchesRegex;
using ::testing::SizeIs;

TEST_F(SandboxTest, LaunchTemplatesAndScalingGroups) {
  v1::CreateLaunchTemplateRequest templ;
  templ.set_parent(kParent);
  templ.set_launch_template_id("web");
  templ.mutable_launch_template()->set_machine_type(Res("machineTypes", "small"));
  EXPECT_EQ(BadField(Call(&Provider::CreateLaunchTemplate, templ).status()),
            "launch_template.image");
  templ.mutable_launch_template()->set_image(Res("images", "debian-12"));
  templ.mutable_launch_template()->set_user_data("secret-ish");
  v1::CreateLaunchTemplateRequest no_id = templ;
  no_id.clear_launch_template_id();
  EXPECT_EQ(BadField(Call(&Provider::CreateLaunchTemplate, no_id).status()),
            "launch_template_id");
  auto created = Finish<v1::LaunchTemplate>(Call(&Provider::CreateLaunchTemplate, templ));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->user_data().empty());
  EXPECT_EQ(Call(&Provider::CreateLaunchTemplate, templ).status().code(),
            absl::StatusCode::kAlreadyExists);

  v1::CreateScalingGroupRequest group;
  group.set_parent(kParent);
  group.set_scaling_group_id("web");
  group.mutable_scaling_group()->set_launch_template(Res("launchTemplates", "ghost"));
  group.mutable_scaling_group()->set_target_size(2);
  group.mutable_scaling_group()->set_max_size(5);
  group.mutable_scaling_group()->add_locations(Res("locations", "sandbox-1a"));
  group.mutable_scaling_group()->add_locations(Res("locations", "sandbox-1b"));
  EXPECT_EQ(Call(&Provider::CreateScalingGroup, group).status().code(),
            absl::StatusCode::kNotFound);
  group.mutable_scaling_group()->set_launch_template(Res("launchTemplates", "web"));
  v1::CreateScalingGroupRequest too_big = group;
  too_big.mutable_scaling_group()->set_target_size(6);
  EXPECT_EQ(BadField(Call(&Provider::CreateScalingGroup, too_big).status()),
            "scaling_group.target_size");

  auto creating = Call(&Provider::CreateScalingGroup, group);
  ASSERT_TRUE(creating.ok()) << creating.status();
  EXPECT_FALSE(creating->done);
  v1::GetScalingGroupRequest get;
  get.set_name(Res("scalingGroups", "web"));
  EXPECT_EQ(Call(&Provider::GetScalingGroup, get)->state(), v1::ScalingGroup::CREATING);
  auto stable = Finish<v1::ScalingGroup>(creating);
  ASSERT_TRUE(stable.ok()) << stable.status();
  EXPECT_EQ(stable->state(), v1::ScalingGroup::STABLE);
  ASSERT_THAT(stable->instances(), SizeIs(2));
  for (const auto& instance : stable->instances()) {
    EXPECT_EQ(instance.lifecycle_state(), "InService");
    EXPECT_EQ(instance.health(), v1::ScalingGroupInstance::HEALTHY);
    EXPECT_THAT(instance.instance_id(), MatchesRegex("i-[0-9a-f]{12}"));
  }
  EXPECT_NE(stable->instances(0).location(), stable->instances(1).location());

  v1::ResizeScalingGroupRequest resize;
  resize.set_name(get.name());
  resize.set_target_size(3);
  auto three = Finish<v1::ScalingGroup>(Call(&Provider::ResizeScalingGroup, resize));
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ(three->target_size(), 3);
  EXPECT_THAT(three->instances(), SizeIs(3));
  resize.set_target_size(0);
  auto shrinking = Call(&Provider::ResizeScalingGroup, resize);
  ASSERT_TRUE(shrinking.ok());
  auto during = Call(&Provider::GetScalingGroup, get);
  EXPECT_EQ(during->state(), v1::ScalingGroup::RESIZING);
  for (const auto& instance : during->instances()) {
    EXPECT_EQ(instance.lifecycle_state(), "Terminating");
  }
  auto zero = Finish<v1::ScalingGroup>(shrinking);
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->state(), v1::ScalingGroup::STABLE);
  EXPECT_THAT(zero->instances(), SizeIs(0));
  resize.set_target_size(9);
  EXPECT_EQ(BadField(Call(&Provider::ResizeScalingGroup, resize).status()), "target_size");

  v1::DeleteLaunchTemplateRequest del_templ;
  del_templ.set_name(Res("launchTemplates", "web"));
  EXPECT_EQ(Call(&Provider::DeleteLaunchTemplate, del_templ).status().code(),
            absl::StatusCode::kFailedPrecondition);

  v1::DeleteScalingGroupRequest del;
  del.set_name(get.name());
  auto gone = Finish<google::protobuf::Empty>(Call(&Provider::DeleteScalingGroup, del));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(Call(&Provider::GetScalingGroup, get).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Call(&Provider::DeleteLaunchTemplate, del_templ)->done);
  EXPECT_EQ(Call(&Provider::DeleteLaunchTemplate, del_templ).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
