// The sandbox's ComputeService: instances, their lifecycle and metadata.
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_test_fixture.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::sandbox {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::SizeIs;

TEST_F(SandboxTest, InstanceLifecycleByPolling) {
  auto created = CreateInstance("web-1");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->done);
  const PollToken token = Decoded(created->poll_token);
  EXPECT_EQ(token.collection(), "instances");
  EXPECT_EQ(token.id(), "web-1");
  EXPECT_EQ(token.state(), "RUNNING");

  auto provisioning = GetInstance("web-1");
  ASSERT_TRUE(provisioning.ok());
  EXPECT_EQ(provisioning->state(), v1::Instance::PROVISIONING);
  EXPECT_EQ(provisioning->name(), Res("instances", "web-1"));
  EXPECT_EQ(provisioning->location(), Res("locations", "sandbox-1a"));
  EXPECT_EQ(provisioning->machine_type(), Res("machineTypes", "small"));
  EXPECT_TRUE(provisioning->user_data().empty()) << "INPUT_ONLY";
  EXPECT_FALSE(provisioning->host().empty());
  EXPECT_THAT(provisioning->ip_addresses(), SizeIs(1));

  auto running = Finish<v1::Instance>(*created);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->state(), v1::Instance::RUNNING);
  EXPECT_EQ(running->provider_state(), "running");
  EXPECT_NE(running->etag(), provisioning->etag());

  // Starting a running instance is a no-op success, as on EC2.
  v1::StartInstanceRequest start;
  start.set_name(Res("instances", "web-1"));
  auto noop = Call(&Provider::StartInstance, start);
  ASSERT_TRUE(noop.ok());
  EXPECT_TRUE(noop->done);

  v1::StopInstanceRequest stop;
  stop.set_name(Res("instances", "web-1"));
  auto stopping = Call(&Provider::StopInstance, stop);
  ASSERT_TRUE(stopping.ok());
  EXPECT_FALSE(stopping->done);
  EXPECT_EQ(GetInstance("web-1")->state(), v1::Instance::STOPPING);
  auto stopped = Finish<v1::Instance>(stopping);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->state(), v1::Instance::STOPPED);

  v1::RebootInstanceRequest reboot;
  reboot.set_name(Res("instances", "web-1"));
  auto bad_reboot = Call(&Provider::RebootInstance, reboot);
  EXPECT_EQ(bad_reboot.status().code(), absl::StatusCode::kFailedPrecondition);

  auto started = Finish<v1::Instance>(Call(&Provider::StartInstance, start));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->state(), v1::Instance::RUNNING);

  auto rebooting = Call(&Provider::RebootInstance, reboot);
  ASSERT_TRUE(rebooting.ok());
  EXPECT_EQ(GetInstance("web-1")->state(), v1::Instance::REBOOTING);
  auto rebooted = Finish<v1::Instance>(rebooting);
  ASSERT_TRUE(rebooted.ok()) << rebooted.status();
  EXPECT_EQ(rebooted->state(), v1::Instance::RUNNING);

  // A forced stop is immediate.
  stop.set_force(true);
  auto forced = Call(&Provider::StopInstance, stop);
  ASSERT_TRUE(forced.ok());
  EXPECT_TRUE(forced->done);
  stop.set_force(false);
  // Stopping a stopped instance is a no-op success.
  auto again = Call(&Provider::StopInstance, stop);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->done);

  v1::DeleteInstanceRequest del;
  del.set_name(Res("instances", "web-1"));
  auto deleting = Call(&Provider::DeleteInstance, del);
  ASSERT_TRUE(deleting.ok());
  EXPECT_FALSE(deleting->done);
  EXPECT_EQ(GetInstance("web-1")->state(), v1::Instance::TERMINATING);
  EXPECT_EQ(Call(&Provider::StartInstance, start).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto gone = Finish<google::protobuf::Empty>(deleting);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(GetInstance("web-1").status().code(), absl::StatusCode::kNotFound);

  EXPECT_EQ(Call(&Provider::DeleteInstance, del).status().code(), absl::StatusCode::kNotFound);
  del.set_allow_missing(true);
  auto missing = Call(&Provider::DeleteInstance, del);
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->done);
}

TEST_F(SandboxTest, CreateStoppedInstance) {
  auto stopped = Finish<v1::Instance>(CreateInstance("cold", false));
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->state(), v1::Instance::STOPPED);
}

// user_data is INPUT_ONLY and may hold secrets: the sandbox keeps and
// shows only its SHA-256 (of "#cloud-config\n", the fixture's), never the
// data; more than 16 KiB is refused naming the field.
TEST_F(SandboxTest, UserDataIsKeptAsItsDigestOnly) {
  auto instance = Finish<v1::Instance>(CreateInstance("ud"));
  ASSERT_TRUE(instance.ok()) << instance.status();
  EXPECT_TRUE(instance->user_data().empty());
  EXPECT_EQ(instance->provider_details().fields().at("userDataSha256").string_value(),
            "88c95955b024402aa9572b663f7eeb134f01343bb92af27b50e97e72b22c565f");
  v1::CreateInstanceRequest big;
  big.set_parent(kParent);
  big.set_instance_id("big");
  big.mutable_instance()->set_image(Res("images", "debian-12"));
  big.mutable_instance()->set_user_data(std::string(16385, 'x'));
  auto refused = Call(&Provider::CreateInstance, big, Ctx(""));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("instance.user_data"));
}

TEST_F(SandboxTest, TimerPublishesTransitions) {
  auto created = CreateInstance("web-1");
  ASSERT_TRUE(created.ok());
  const std::string name = Res("instances", "web-1");
  // No read or poll: the timer alone brings and announces RUNNING.
  ASSERT_TRUE(sink_.WaitFor(v1::WatchResponse::UPDATED, name, "RUNNING"));
  // Reads afterwards change nothing and publish nothing more.
  EXPECT_EQ(GetInstance("web-1")->state(), v1::Instance::RUNNING);
  EXPECT_EQ(sink_.Count(v1::WatchResponse::UPDATED, name, "RUNNING"), 1);
  for (const auto& event : sink_.events()) {
    EXPECT_EQ(event.source, "local");
    EXPECT_EQ(event.kind, "Instance");
  }
  // The mutation published the new instance once, before the transition.
  EXPECT_EQ(sink_.Count(v1::WatchResponse::CREATED, name, "PROVISIONING"), 1);
  EXPECT_EQ(sink_.events().front().type, v1::WatchResponse::CREATED);

  v1::DeleteInstanceRequest del;
  del.set_name(name);
  ASSERT_TRUE(Call(&Provider::DeleteInstance, del).ok());
  ASSERT_TRUE(sink_.WaitFor(v1::WatchResponse::DELETED, name, "TERMINATED"));

  ASSERT_TRUE(CreateVolume("data").ok());
  ASSERT_TRUE(sink_.WaitFor(v1::WatchResponse::UPDATED, Res("volumes", "data"), "AVAILABLE"));
}

TEST_F(SandboxTest, MutationAppliesDueTransitionAndPublishesItOnce) {
  // No loop timers here: a later mutation finds the due transition first.
  AccountSetup setup;
  setup.account = kAccount;
  setup.options["transition_ms"] = "20";
  setup.store = store_.get();
  setup.changes = &sink_;
  auto provider = NewSandboxProvider(setup);
  ASSERT_TRUE(provider.ok());
  v1::CreateInstanceRequest create;
  create.set_parent(kParent);
  create.set_instance_id("lazy");
  create.mutable_instance()->set_image(Res("images", "debian-12"));
  ASSERT_TRUE(Call(&Provider::CreateInstance, create, Ctx(), provider->get()).ok());
  absl::SleepFor(absl::Milliseconds(40));
  v1::GetInstanceRequest get;
  get.set_name(Res("instances", "lazy"));
  EXPECT_EQ(Call(&Provider::GetInstance, get, Ctx(), provider->get())->state(),
            v1::Instance::RUNNING);
  ASSERT_EQ(sink_.events().size(), 1u) << "only the create; reads do not publish";
  EXPECT_EQ(sink_.events()[0].type, v1::WatchResponse::CREATED);
  v1::StopInstanceRequest stop;
  stop.set_name(Res("instances", "lazy"));
  ASSERT_TRUE(Call(&Provider::StopInstance, stop, Ctx(), provider->get()).ok());
  EXPECT_EQ(sink_.Count(v1::WatchResponse::UPDATED, Res("instances", "lazy"), "RUNNING"), 1);
}

TEST_F(SandboxTest, CreateInstanceValidation) {
  v1::CreateInstanceRequest request;
  request.set_parent(kParent);
  request.mutable_instance()->set_image(Res("images", "debian-12"));

  request.set_instance_id("Bad_Id");
  auto bad_id = Call(&Provider::CreateInstance, request);
  EXPECT_EQ(bad_id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(bad_id.status()), "instance_id");
  request.clear_instance_id();

  v1::CreateInstanceRequest no_image = request;
  no_image.mutable_instance()->clear_image();
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance, no_image).status()), "instance.image");

  v1::CreateInstanceRequest unknown_image = request;
  unknown_image.mutable_instance()->set_image(Res("images", "plan9"));
  auto not_found = Call(&Provider::CreateInstance, unknown_image);
  EXPECT_EQ(not_found.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(not_found.status().message()), HasSubstr(Res("images", "plan9")));

  v1::CreateInstanceRequest wrong_parent = request;
  wrong_parent.set_parent("accounts/elsewhere");
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance, wrong_parent).status()), "parent");

  v1::CreateInstanceRequest options = request;
  (*options.mutable_instance()->mutable_provider_options()->mutable_fields())["vnc"]
      .set_string_value("x");
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance, options).status()),
            "instance.provider_options.vnc");

  v1::CreateInstanceRequest half_size = request;
  half_size.mutable_instance()->set_cpu_count(2);
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance, half_size).status()),
            "instance.memory_bytes");

  v1::CreateInstanceRequest missing_fw = request;
  missing_fw.mutable_instance()->add_firewalls(Res("firewalls", "nope"));
  EXPECT_EQ(Call(&Provider::CreateInstance, missing_fw).status().code(),
            absl::StatusCode::kNotFound);

  // A generated id, then the same id taken.
  auto generated = Call(&Provider::CreateInstance, request);
  ASSERT_TRUE(generated.ok()) << generated.status();
  const PollToken generated_token = Decoded(generated->poll_token);
  EXPECT_EQ(generated_token.collection(), "instances");
  EXPECT_THAT(generated_token.id(), MatchesRegex("i-[0-9a-f]{12}"));
  EXPECT_EQ(generated_token.state(), "RUNNING");
  ASSERT_TRUE(CreateInstance("web-1").ok());
  auto taken = CreateInstance("web-1");
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);

  // Custom size and a region placed into its first zone.
  v1::CreateInstanceRequest custom = request;
  custom.mutable_instance()->set_cpu_count(3);
  custom.mutable_instance()->set_memory_bytes(int64_t{3} << 30);
  custom.mutable_instance()->set_location(Res("locations", "sandbox-1"));
  custom.set_instance_id("custom");
  ASSERT_TRUE(Call(&Provider::CreateInstance, custom).ok());
  auto got = GetInstance("custom");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->cpu_count(), 3);
  EXPECT_TRUE(got->machine_type().empty());
  EXPECT_EQ(got->location(), Res("locations", "sandbox-1a"));
}

TEST_F(SandboxTest, UpdateInstanceChangesOnlyMaskedFields) {
  v1::Instance before = RunningInstance("web-1");
  v1::UpdateInstanceRequest request;
  request.mutable_instance()->set_name(before.name());
  request.mutable_instance()->set_display_name("renamed");
  (*request.mutable_instance()->mutable_labels())["env"] = "prod";
  request.mutable_instance()->set_cpu_mhz(999);  // not in the mask: ignored
  request.mutable_update_mask()->add_paths("display_name");
  request.mutable_update_mask()->add_paths("labels");
  absl::SleepFor(absl::Milliseconds(2));
  auto updated = Finish<v1::Instance>(Call(&Provider::UpdateInstance, request));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->display_name(), "renamed");
  EXPECT_EQ(updated->labels().at("env"), "prod");
  EXPECT_EQ(updated->cpu_mhz(), 0);
  EXPECT_NE(updated->etag(), before.etag());
  EXPECT_GT(google::protobuf::util::TimeUtil::TimestampToMicroseconds(updated->update_time()),
            google::protobuf::util::TimeUtil::TimestampToMicroseconds(before.update_time()));
  EXPECT_EQ(updated->create_time(), before.create_time());

  // One label by key.
  v1::UpdateInstanceRequest one_label;
  one_label.mutable_instance()->set_name(before.name());
  (*one_label.mutable_instance()->mutable_labels())["team"] = "ops";
  one_label.mutable_update_mask()->add_paths("labels.team");
  one_label.mutable_update_mask()->add_paths("labels.env");  // absent: removed
  auto labelled = Finish<v1::Instance>(Call(&Provider::UpdateInstance, one_label));
  ASSERT_TRUE(labelled.ok());
  EXPECT_EQ(labelled->labels().size(), 1);
  EXPECT_EQ(labelled->labels().at("team"), "ops");

  v1::UpdateInstanceRequest immutable = request;
  immutable.mutable_update_mask()->add_paths("image");
  auto bad = Call(&Provider::UpdateInstance, immutable);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(bad.status()), "update_mask");

  v1::UpdateInstanceRequest unknown = request;
  unknown.mutable_update_mask()->add_paths("state");
  EXPECT_EQ(BadField(Call(&Provider::UpdateInstance, unknown).status()), "update_mask");

  v1::UpdateInstanceRequest empty = request;
  empty.clear_update_mask();
  EXPECT_EQ(BadField(Call(&Provider::UpdateInstance, empty).status()), "update_mask");

  v1::UpdateInstanceRequest wrong_name = request;
  wrong_name.mutable_instance()->set_name(Res("volumes", "web-1"));
  EXPECT_EQ(BadField(Call(&Provider::UpdateInstance, wrong_name).status()), "instance.name");

  v1::UpdateInstanceRequest missing = request;
  missing.mutable_instance()->set_name(Res("instances", "ghost"));
  EXPECT_EQ(Call(&Provider::UpdateInstance, missing).status().code(),
            absl::StatusCode::kNotFound);

  // Resizing needs a stopped instance.
  v1::UpdateInstanceRequest resize;
  resize.mutable_instance()->set_name(before.name());
  resize.mutable_instance()->set_machine_type(Res("machineTypes", "medium"));
  resize.mutable_update_mask()->add_paths("machine_type");
  EXPECT_EQ(Call(&Provider::UpdateInstance, resize).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::StopInstanceRequest stop;
  stop.set_name(before.name());
  ASSERT_TRUE(Finish<v1::Instance>(Call(&Provider::StopInstance, stop)).ok());
  auto resized = Finish<v1::Instance>(Call(&Provider::UpdateInstance, resize));
  ASSERT_TRUE(resized.ok()) << resized.status();
  EXPECT_EQ(resized->cpu_count(), 2);
  EXPECT_EQ(resized->memory_bytes(), int64_t{4} << 30);
}

TEST_F(SandboxTest, InstanceMetadataReplaceAndMerge) {
  RunningInstance("web-1");
  const std::string name = Res("instances", "web-1") + "/metadata";
  v1::GetInstanceMetadataRequest get;
  get.set_name(name);
  auto empty = Call(&Provider::GetInstanceMetadata, get);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->name(), name);
  EXPECT_TRUE(empty->items().empty());

  v1::UpdateInstanceMetadataRequest replace;
  replace.mutable_metadata()->set_name(name);
  (*replace.mutable_metadata()->mutable_items())["a"] = "1";
  (*replace.mutable_metadata()->mutable_items())["b"] = "2";
  auto first = Call(&Provider::UpdateInstanceMetadata, replace);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->done);
  v1::InstanceMetadata v1_items;
  ASSERT_TRUE(first->result.UnpackTo(&v1_items));
  EXPECT_EQ(v1_items.items().size(), 2);
  EXPECT_NE(v1_items.etag(), empty->etag());

  v1::UpdateInstanceMetadataRequest merge;
  merge.mutable_metadata()->set_name(name);
  merge.set_merge(true);
  (*merge.mutable_metadata()->mutable_items())["b"] = "3";
  (*merge.mutable_metadata()->mutable_items())["c"] = "4";
  auto merged = Finish<v1::InstanceMetadata>(Call(&Provider::UpdateInstanceMetadata, merge));
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(merged->items().size(), 3);
  EXPECT_EQ(merged->items().at("a"), "1");
  EXPECT_EQ(merged->items().at("b"), "3");
  EXPECT_EQ(merged->items().at("c"), "4");
  EXPECT_NE(merged->etag(), v1_items.etag());

  v1::UpdateInstanceMetadataRequest replace2;
  replace2.mutable_metadata()->set_name(name);
  (*replace2.mutable_metadata()->mutable_items())["z"] = "9";
  auto replaced = Finish<v1::InstanceMetadata>(Call(&Provider::UpdateInstanceMetadata, replace2));
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->items().size(), 1);
  EXPECT_EQ(Call(&Provider::GetInstanceMetadata, get)->items().at("z"), "9");
  // Writing the same items again keeps the etag.
  auto same = Finish<v1::InstanceMetadata>(Call(&Provider::UpdateInstanceMetadata, replace2));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->etag(), replaced->etag());

  get.set_name(Res("instances", "ghost") + "/metadata");
  EXPECT_EQ(Call(&Provider::GetInstanceMetadata, get).status().code(),
            absl::StatusCode::kNotFound);
  get.set_name(Res("instances", "web-1"));
  EXPECT_EQ(BadField(Call(&Provider::GetInstanceMetadata, get).status()), "name");
  replace.mutable_metadata()->set_name("accounts/lab/instances/web-1/meta");
  EXPECT_EQ(BadField(Call(&Provider::UpdateInstanceMetadata, replace).status()),
            "metadata.name");
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
