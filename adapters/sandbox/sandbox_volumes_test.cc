// The sandbox's VolumesService: volumes, their states and attachments.
#include <memory>
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

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

TEST_F(SandboxTest, VolumeLifecycleAndAttachments) {
  auto too_small = CreateVolume("data", 0);
  EXPECT_EQ(too_small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(too_small.status()), "volume.size_bytes");

  auto created = CreateVolume("data");
  ASSERT_TRUE(created.ok()) << created.status();
  const PollToken token = Decoded(created->poll_token);
  EXPECT_EQ(token.collection(), "volumes");
  EXPECT_EQ(token.id(), "data");
  EXPECT_EQ(token.state(), "AVAILABLE");
  auto volume = Finish<v1::Volume>(*created);
  ASSERT_TRUE(volume.ok()) << volume.status();
  EXPECT_EQ(volume->state(), v1::Volume::AVAILABLE);
  EXPECT_EQ(volume->media(), v1::Volume::DISK);

  v1::CloneVolumeRequest clone;
  clone.set_name(Res("volumes", "data"));
  clone.set_volume_id("data-copy");
  auto copy = Finish<v1::Volume>(Call(&Provider::CloneVolume, clone));
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->source_volume(), Res("volumes", "data"));
  EXPECT_EQ(copy->size_bytes(), volume->size_bytes());
  EXPECT_EQ(copy->state(), v1::Volume::AVAILABLE);

  v1::AttachVolumeRequest attach;
  attach.set_name(Res("volumes", "data"));
  attach.set_instance(Res("instances", "ghost"));
  auto no_instance = Call(&Provider::AttachVolume, attach);
  EXPECT_EQ(no_instance.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_instance.status().message()), HasSubstr(Res("instances", "ghost")));

  RunningInstance("web-1");
  attach.set_instance(Res("instances", "web-1"));
  auto attached = Finish<v1::Volume>(Call(&Provider::AttachVolume, attach));
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_EQ(attached->state(), v1::Volume::ATTACHED);
  EXPECT_THAT(attached->attached_to(), ElementsAre(Res("instances", "web-1")));
  auto instance = GetInstance("web-1");
  ASSERT_THAT(instance->volumes(), SizeIs(1));
  EXPECT_EQ(instance->volumes(0).volume(), Res("volumes", "data"));
  EXPECT_EQ(instance->volumes(0).device(), "vda");

  // Attaching again to the same instance is a no-op; the copy gets vdb.
  EXPECT_TRUE(Call(&Provider::AttachVolume, attach).ok());
  v1::AttachVolumeRequest attach_copy = attach;
  attach_copy.set_name(Res("volumes", "data-copy"));
  ASSERT_TRUE(Call(&Provider::AttachVolume, attach_copy).ok());
  EXPECT_EQ(GetInstance("web-1")->volumes(1).device(), "vdb");

  v1::DeleteVolumeRequest del;
  del.set_name(Res("volumes", "data"));
  EXPECT_EQ(Call(&Provider::DeleteVolume, del).status().code(),
            absl::StatusCode::kFailedPrecondition);

  v1::DetachVolumeRequest detach;
  detach.set_name(Res("volumes", "data"));
  detach.set_instance(Res("instances", "web-1"));
  auto detached = Finish<v1::Volume>(Call(&Provider::DetachVolume, detach));
  ASSERT_TRUE(detached.ok()) << detached.status();
  EXPECT_EQ(detached->state(), v1::Volume::AVAILABLE);
  EXPECT_TRUE(detached->attached_to().empty());
  ASSERT_THAT(GetInstance("web-1")->volumes(), SizeIs(1));
  EXPECT_EQ(Call(&Provider::DetachVolume, detach).status().code(),
            absl::StatusCode::kFailedPrecondition);

  // Growing takes a transition; shrinking is refused.
  v1::UpdateVolumeRequest grow;
  grow.mutable_volume()->set_name(Res("volumes", "data"));
  grow.mutable_volume()->set_size_bytes(int64_t{2} << 30);
  grow.mutable_update_mask()->add_paths("size_bytes");
  auto growing = Call(&Provider::UpdateVolume, grow);
  ASSERT_TRUE(growing.ok()) << growing.status();
  EXPECT_FALSE(growing->done);
  auto grown = Finish<v1::Volume>(growing);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(grown->size_bytes(), int64_t{2} << 30);
  EXPECT_EQ(grown->state(), v1::Volume::AVAILABLE);
  grow.mutable_volume()->set_size_bytes(1);
  EXPECT_EQ(BadField(Call(&Provider::UpdateVolume, grow).status()), "volume.size_bytes");
  v1::UpdateVolumeRequest media = grow;
  media.mutable_update_mask()->set_paths(0, "media");
  EXPECT_EQ(BadField(Call(&Provider::UpdateVolume, media).status()), "update_mask");

  auto deleted = Finish<google::protobuf::Empty>(Call(&Provider::DeleteVolume, del));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  v1::GetVolumeRequest get;
  get.set_name(Res("volumes", "data"));
  EXPECT_EQ(Call(&Provider::GetVolume, get).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Call(&Provider::DeleteVolume, del).status().code(), absl::StatusCode::kNotFound);
  del.set_allow_missing(true);
  EXPECT_TRUE(Call(&Provider::DeleteVolume, del)->done);

  // Deleting the instance releases the copy.
  v1::DeleteInstanceRequest delete_instance;
  delete_instance.set_name(Res("instances", "web-1"));
  ASSERT_TRUE(Call(&Provider::DeleteInstance, delete_instance).ok());
  get.set_name(Res("volumes", "data-copy"));
  auto released = Call(&Provider::GetVolume, get);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->state(), v1::Volume::AVAILABLE);
  EXPECT_TRUE(released->attached_to().empty());
}

TEST_F(SandboxTest, VolumeWrongStates) {
  // Slow transitions so nothing settles during the test.
  std::unique_ptr<Provider> slow = MakeProvider(store_.get(), 60000);
  v1::CreateVolumeRequest create;
  create.set_parent(kParent);
  create.set_volume_id("slow");
  create.mutable_volume()->set_size_bytes(1024);
  ASSERT_TRUE(Call(&Provider::CreateVolume, create, Ctx(), slow.get()).ok());

  v1::CloneVolumeRequest clone;
  clone.set_name(Res("volumes", "slow"));
  EXPECT_EQ(Call(&Provider::CloneVolume, clone, Ctx(), slow.get()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::DeleteVolumeRequest del;
  del.set_name(Res("volumes", "slow"));
  EXPECT_EQ(Call(&Provider::DeleteVolume, del, Ctx(), slow.get()).status().code(),
            absl::StatusCode::kFailedPrecondition);

  v1::CreateInstanceRequest instance;
  instance.set_parent(kParent);
  instance.set_instance_id("booting");
  instance.mutable_instance()->set_image(Res("images", "ubuntu-24-04"));
  ASSERT_TRUE(Call(&Provider::CreateInstance, instance, Ctx(), slow.get()).ok());
  // Stopping a provisioning instance is refused, as on EC2.
  v1::StopInstanceRequest stop;
  stop.set_name(Res("instances", "booting"));
  EXPECT_EQ(Call(&Provider::StopInstance, stop, Ctx(), slow.get()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
