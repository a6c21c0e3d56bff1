#include "adapters/sandbox/sandbox_adapter.h"

#include <stdlib.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_catalog.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace cloudplane::adapters::sandbox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

constexpr char kAccount[] = "lab";
constexpr char kParent[] = "accounts/lab";

std::string Res(absl::string_view collection, absl::string_view id) {
  return absl::StrCat(kParent, "/", collection, "/", id);
}

// Field named by the BadRequest of an INVALID_ARGUMENT status.
std::string BadField(const absl::Status& status) {
  auto bad_request = GetBadRequest(status);
  if (!bad_request.has_value() || bad_request->field_violations().empty()) return "";
  return bad_request->field_violations(0).field();
}

// Records what the sandbox publishes; Publish runs on the loop thread.
class RecordingSink : public ChangeSink {
 public:
  struct Event {
    v1::WatchResponse::ChangeType type;
    std::string name;
    std::string kind;
    std::string state;  // Instance/Volume/Unit/Group state name, when any
    std::string source;
  };

  void Publish(absl::string_view account, v1::WatchResponse::ChangeType type,
               absl::string_view resource_name, const google::protobuf::Message& resource,
               WatchSource source) override {
    Event event{type, std::string(resource_name), resource.GetDescriptor()->name(), "",
                std::string(WatchSourceName(source))};
    if (const auto* instance = dynamic_cast<const v1::Instance*>(&resource)) {
      event.state = v1::Instance::State_Name(instance->state());
    } else if (const auto* volume = dynamic_cast<const v1::Volume*>(&resource)) {
      event.state = v1::Volume::State_Name(volume->state());
    } else if (const auto* unit = dynamic_cast<const v1::Unit*>(&resource)) {
      event.state = v1::Unit::State_Name(unit->current_state());
    } else if (const auto* group = dynamic_cast<const v1::ScalingGroup*>(&resource)) {
      event.state = v1::ScalingGroup::State_Name(group->state());
    }
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(account, kAccount);
    events_.push_back(std::move(event));
  }

  std::vector<Event> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }

  // Waits (up to 5 s) for an event of `type` on `name` with `state`.
  bool WaitFor(v1::WatchResponse::ChangeType type, absl::string_view name,
               absl::string_view state = "") {
    auto found = [&]() {
      for (const Event& e : events_) {
        if (e.type == type && e.name == name && (state.empty() || e.state == state)) return true;
      }
      return false;
    };
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&found), absl::Seconds(5));
  }

  int Count(v1::WatchResponse::ChangeType type, absl::string_view name,
            absl::string_view state) {
    int n = 0;
    for (const Event& e : events()) n += e.type == type && e.name == name && e.state == state;
    return n;
  }

 private:
  absl::Mutex mu_;
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
};

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::Store::OpenInMemory();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    provider_ = MakeProvider(store_.get(), 50);
  }

  std::unique_ptr<Provider> MakeProvider(store::Store* store, int transition_ms,
                                         ChangeSink* sink = nullptr) {
    AccountSetup setup;
    setup.account = kAccount;
    setup.options["transition_ms"] = absl::StrCat(transition_ms);
    setup.store = store;
    setup.loop = &loop_;
    setup.changes = sink != nullptr ? sink : &sink_;
    auto provider = NewSandboxProvider(setup);
    EXPECT_TRUE(provider.ok()) << provider.status();
    return provider.ok() ? *std::move(provider) : nullptr;
  }

  static CallContext Ctx(std::string operation = "") {
    CallContext ctx;
    ctx.account = kAccount;
    ctx.operation = std::move(operation);
    return ctx;
  }

  // Calls a provider method and returns what its callback got.
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Call(void (Provider::*method)(const CallContext&, const Req&,
                                                     Callback<Resp>),
                            const Req& request, const CallContext& ctx = Ctx(),
                            Provider* provider = nullptr) {
    std::optional<absl::StatusOr<Resp>> out;
    ((provider != nullptr ? provider : provider_.get())->*method)(
        ctx, request, [&out](absl::StatusOr<Resp> r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value()) << "the sandbox answers before returning";
    if (!out.has_value()) return absl::InternalError("no answer");
    return *std::move(out);
  }

  absl::StatusOr<MutationProgress> Poll(const std::string& token, Provider* provider = nullptr) {
    std::optional<absl::StatusOr<MutationProgress>> out;
    (provider != nullptr ? provider : provider_.get())
        ->PollOperation(Ctx(), token,
                        [&out](absl::StatusOr<MutationProgress> r) { out = std::move(r); });
    if (!out.has_value()) return absl::InternalError("no answer");
    return *std::move(out);
  }

  // Polls until done (at most 5 s) and unpacks the result.
  template <typename T>
  absl::StatusOr<T> Finish(absl::StatusOr<MutationProgress> progress,
                           Provider* provider = nullptr) {
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (progress.ok() && !progress->done && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      progress = Poll(progress->poll_token, provider);
    }
    if (!progress.ok()) return progress.status();
    if (!progress->done) return absl::DeadlineExceededError("never done");
    T result;
    if (!progress->result.UnpackTo(&result)) return absl::InternalError("wrong result type");
    return result;
  }

  absl::StatusOr<MutationProgress> CreateInstance(const std::string& id,
                                                  std::optional<bool> start = std::nullopt,
                                                  const std::string& operation = "") {
    v1::CreateInstanceRequest request;
    request.set_parent(kParent);
    request.set_instance_id(id);
    request.mutable_instance()->set_image(Res("images", "debian-12"));
    request.mutable_instance()->set_display_name("Web " + id);
    request.mutable_instance()->set_user_data("#cloud-config\n");
    if (start.has_value()) request.set_start(*start);
    return Call(&Provider::CreateInstance, request, Ctx(operation));
  }

  v1::Instance RunningInstance(const std::string& id) {
    auto instance = Finish<v1::Instance>(CreateInstance(id));
    EXPECT_TRUE(instance.ok()) << instance.status();
    return instance.value_or(v1::Instance());
  }

  absl::StatusOr<v1::Instance> GetInstance(const std::string& id) {
    v1::GetInstanceRequest request;
    request.set_name(Res("instances", id));
    return Call(&Provider::GetInstance, request);
  }

  absl::StatusOr<MutationProgress> CreateVolume(const std::string& id, int64_t size = 1 << 30) {
    v1::CreateVolumeRequest request;
    request.set_parent(kParent);
    request.set_volume_id(id);
    request.mutable_volume()->set_size_bytes(size);
    return Call(&Provider::CreateVolume, request);
  }

  absl::StatusOr<MutationProgress> CreateFirewall(const std::string& id) {
    v1::CreateFirewallRequest request;
    request.set_parent(kParent);
    request.set_firewall_id(id);
    request.mutable_firewall()->set_display_name(id);
    return Call(&Provider::CreateFirewall, request);
  }

  EventLoop loop_;
  std::unique_ptr<store::Store> store_;
  RecordingSink sink_;
  std::unique_ptr<Provider> provider_;
};

// ---- Factory and registration -------------------------------------------------

TEST_F(SandboxTest, RegistersWithInfo) {
  AdapterRegistry registry;
  ASSERT_TRUE(RegisterSandbox(registry).ok());
  EXPECT_EQ(RegisterSandbox(registry).code(), absl::StatusCode::kAlreadyExists);
  const ProviderInfo* info = registry.Find("sandbox");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->display_name, "Built-in sandbox");
  EXPECT_EQ(info->protocol, "in-process");
  EXPECT_EQ(info->watch_source, WatchSource::kLocal);
  EXPECT_EQ(info->supported_methods, AllAdapterMethods());

  AccountSetup setup;
  setup.account = kAccount;
  setup.store = store_.get();
  auto provider = registry.Create("sandbox", setup);
  ASSERT_TRUE(provider.ok()) << provider.status();
  EXPECT_EQ((*provider)->Info().kind, "sandbox");
}

TEST_F(SandboxTest, FactoryRejectsBadSetup) {
  AccountSetup setup;
  setup.account = kAccount;
  setup.store = store_.get();

  setup.endpoint = "https://example.com";
  EXPECT_EQ(BadField(NewSandboxProvider(setup).status()), "endpoint");
  setup.endpoint.clear();

  setup.options["colour"] = "blue";
  auto unknown = NewSandboxProvider(setup);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(unknown.status()), "options.colour");
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("colour"));
  setup.options.clear();

  for (const char* bad : {"abc", "-1", "1.5", "99999999999"}) {
    setup.options["transition_ms"] = bad;
    auto status = NewSandboxProvider(setup).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(BadField(status), "options.transition_ms") << bad;
  }
  setup.options["transition_ms"] = "0";
  EXPECT_TRUE(NewSandboxProvider(setup).ok());

  setup.store = nullptr;
  EXPECT_EQ(NewSandboxProvider(setup).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SandboxTest, CallForAnotherAccountIsInternal) {
  v1::GetInstanceRequest request;
  request.set_name("accounts/other/instances/x");
  CallContext ctx = Ctx();
  ctx.account = "other";
  EXPECT_EQ(Call(&Provider::GetInstance, request, ctx).status().code(),
            absl::StatusCode::kInternal);
}

// ---- Catalog ------------------------------------------------------------------

TEST_F(SandboxTest, CatalogIsSeeded) {
  v1::ListLocationsRequest locations;
  locations.set_parent(kParent);
  auto location_list = Call(&Provider::ListLocations, locations);
  ASSERT_TRUE(location_list.ok()) << location_list.status();
  std::vector<std::string> names;
  for (const auto& l : location_list->locations()) names.push_back(l.name());
  EXPECT_THAT(names, ElementsAre(Res("locations", "sandbox-1"), Res("locations", "sandbox-1a"),
                                 Res("locations", "sandbox-1b")));
  EXPECT_EQ(location_list->locations(1).parent_location(), Res("locations", "sandbox-1"));
  EXPECT_EQ(location_list->locations(1).kind(), v1::Location::ZONE);

  v1::GetImageRequest image;
  image.set_name(Res("images", "debian-12"));
  auto debian = Call(&Provider::GetImage, image);
  ASSERT_TRUE(debian.ok());
  EXPECT_EQ(debian->state(), v1::Image::READY);
  image.set_name(Res("images", "windows-95"));
  EXPECT_EQ(Call(&Provider::GetImage, image).status().code(), absl::StatusCode::kNotFound);
  image.set_name("accounts/other/images/debian-12");
  auto wrong = Call(&Provider::GetImage, image);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(wrong.status()), "name");

  v1::ListMachineTypesRequest types;
  types.set_parent(kParent);
  auto type_list = Call(&Provider::ListMachineTypes, types);
  ASSERT_TRUE(type_list.ok());
  ASSERT_THAT(type_list->machine_types(), SizeIs(3));
  EXPECT_EQ(type_list->machine_types(2).name(), Res("machineTypes", "small"));
  EXPECT_EQ(type_list->machine_types(2).cpu_count(), 1);

  v1::ListHostsRequest hosts;
  hosts.set_parent(kParent);
  auto host_list = Call(&Provider::ListHosts, hosts);
  ASSERT_TRUE(host_list.ok());
  EXPECT_THAT(host_list->hosts(), SizeIs(3));

  v1::GetBillingCodeRequest code;
  code.set_name(Res("billingCodes", "default"));
  EXPECT_TRUE(Call(&Provider::GetBillingCode, code).ok());

  v1::ListMachinesRequest machines;
  machines.set_parent(kParent);
  auto machine_list = Call(&Provider::ListMachines, machines);
  ASSERT_TRUE(machine_list.ok());
  ASSERT_THAT(machine_list->machines(), SizeIs(3));
  for (const auto& m : machine_list->machines()) {
    EXPECT_THAT(m.name(), MatchesRegex("accounts/lab/machines/[0-9a-f]{32}"));
    EXPECT_FALSE(m.primary_ip().empty());
  }

  v1::ListImagesRequest bad_parent;
  bad_parent.set_parent("accounts/other");
  auto bad = Call(&Provider::ListImages, bad_parent);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(bad.status()), "parent");
}

// ---- Instances ----------------------------------------------------------------

TEST_F(SandboxTest, InstanceLifecycleByPolling) {
  auto created = CreateInstance("web-1");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->done);
  EXPECT_EQ(created->poll_token, "instances:web-1:RUNNING");

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
  EXPECT_THAT(generated->poll_token, MatchesRegex("instances:i-[0-9a-f]{12}:RUNNING"));
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

// ---- Volumes ------------------------------------------------------------------

TEST_F(SandboxTest, VolumeLifecycleAndAttachments) {
  auto too_small = CreateVolume("data", 0);
  EXPECT_EQ(too_small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BadField(too_small.status()), "volume.size_bytes");

  auto created = CreateVolume("data");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->poll_token, "volumes:data:AVAILABLE");
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

// ---- Firewalls ----------------------------------------------------------------

TEST_F(SandboxTest, FirewallsAndRules) {
  v1::CreateFirewallRequest create;
  create.set_parent(kParent);
  create.set_firewall_id("web");
  v1::FirewallRule* ssh = create.mutable_firewall()->add_rules();
  ssh->set_protocol("TCP");
  ssh->set_port_range_start(22);
  ssh->add_source_ranges("203.0.113.0/24");
  v1::FirewallRule* ping = create.mutable_firewall()->add_rules();
  ping->set_protocol("icmp");

  v1::CreateFirewallRequest bad = create;
  bad.mutable_firewall()->mutable_rules(1)->set_protocol("gre");
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[1].protocol");
  bad = create;
  bad.mutable_firewall()->mutable_rules(0)->set_source_ranges(0, "203.0.113.0/33");
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[0].source_ranges[0]");
  bad = create;
  bad.mutable_firewall()->mutable_rules(0)->set_port_range_end(10);
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[0].port_range_end");

  auto firewall = Finish<v1::Firewall>(Call(&Provider::CreateFirewall, create));
  ASSERT_TRUE(firewall.ok()) << firewall.status();
  ASSERT_THAT(firewall->rules(), SizeIs(2));
  EXPECT_EQ(firewall->rules(0).name(), Res("firewalls", "web") + "/rules/1");
  EXPECT_EQ(firewall->rules(0).protocol(), "tcp");
  EXPECT_EQ(firewall->rules(0).direction(), v1::FirewallRule::INGRESS);
  EXPECT_EQ(firewall->rules(0).action(), v1::FirewallRule::ALLOW);
  EXPECT_EQ(Call(&Provider::CreateFirewall, create).status().code(),
            absl::StatusCode::kAlreadyExists);

  v1::CreateFirewallRuleRequest add;
  add.set_parent(Res("firewalls", "web"));
  add.mutable_rule()->set_protocol("udp");
  add.mutable_rule()->set_port_range_start(53);
  for (int i = 0; i < 9; ++i) {
    auto rule = Finish<v1::FirewallRule>(Call(&Provider::CreateFirewallRule, add));
    ASSERT_TRUE(rule.ok()) << rule.status();
    EXPECT_EQ(rule->name(), absl::StrCat(Res("firewalls", "web"), "/rules/", i + 3));
  }

  // Rules page in number order: 1, 2, ..., 10, 11.
  std::vector<std::string> names;
  v1::ListFirewallRulesRequest list;
  list.set_parent(Res("firewalls", "web"));
  list.set_page_size(4);
  do {
    auto page = Call(&Provider::ListFirewallRules, list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& r : page->rules()) names.push_back(std::string(LastSegment(r.name())));
    list.set_page_token(page->next_page_token());
  } while (!list.page_token().empty());
  EXPECT_THAT(names, ElementsAre("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"));

  v1::DeleteFirewallRuleRequest del_rule;
  del_rule.set_name(Res("firewalls", "web") + "/rules/2");
  ASSERT_TRUE(Finish<google::protobuf::Empty>(Call(&Provider::DeleteFirewallRule, del_rule)).ok());
  v1::GetFirewallRuleRequest get_rule;
  get_rule.set_name(del_rule.name());
  EXPECT_EQ(Call(&Provider::GetFirewallRule, get_rule).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Call(&Provider::DeleteFirewallRule, del_rule).status().code(),
            absl::StatusCode::kNotFound);
  del_rule.set_allow_missing(true);
  EXPECT_TRUE(Call(&Provider::DeleteFirewallRule, del_rule)->done);
  // Numbers are not reused.
  auto next = Finish<v1::FirewallRule>(Call(&Provider::CreateFirewallRule, add));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->name(), Res("firewalls", "web") + "/rules/12");
  add.set_parent(Res("firewalls", "ghost"));
  EXPECT_EQ(Call(&Provider::CreateFirewallRule, add).status().code(),
            absl::StatusCode::kNotFound);

  // A firewall in use cannot be deleted.
  v1::CreateInstanceRequest instance;
  instance.set_parent(kParent);
  instance.set_instance_id("guarded");
  instance.mutable_instance()->set_image(Res("images", "debian-12"));
  instance.mutable_instance()->add_firewalls(Res("firewalls", "web"));
  ASSERT_TRUE(Call(&Provider::CreateInstance, instance).ok());
  v1::DeleteFirewallRequest del;
  del.set_name(Res("firewalls", "web"));
  EXPECT_EQ(Call(&Provider::DeleteFirewall, del).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::DeleteInstanceRequest del_instance;
  del_instance.set_name(Res("instances", "guarded"));
  ASSERT_TRUE(Finish<google::protobuf::Empty>(Call(&Provider::DeleteInstance, del_instance)).ok());
  auto deleted = Call(&Provider::DeleteFirewall, del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->done);
  v1::GetFirewallRequest get;
  get.set_name(del.name());
  EXPECT_EQ(Call(&Provider::GetFirewall, get).status().code(), absl::StatusCode::kNotFound);
}

// ---- Autoscaling --------------------------------------------------------------

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

// ---- Units --------------------------------------------------------------------

void AddOption(v1::Unit& unit, const char* section, const char* name, const char* value) {
  v1::UnitOption* option = unit.add_options();
  option->set_section(section);
  option->set_name(name);
  option->set_value(value);
}

TEST_F(SandboxTest, UnitsConvergeWithUnitStates) {
  v1::CreateUnitRequest create;
  create.set_parent(kParent);
  create.set_unit_id("hello.service");
  AddOption(*create.mutable_unit(), "Unit", "Description", "Hello");
  AddOption(*create.mutable_unit(), "Service", "ExecStart", "/usr/bin/sleep 1d");
  create.mutable_unit()->set_desired_state(v1::Unit::LAUNCHED);

  v1::CreateUnitRequest bad_name = create;
  bad_name.set_unit_id("hello");
  EXPECT_EQ(BadField(Call(&Provider::CreateUnit, bad_name).status()), "unit_id");
  v1::CreateUnitRequest no_options = create;
  no_options.mutable_unit()->clear_options();
  EXPECT_EQ(BadField(Call(&Provider::CreateUnit, no_options).status()), "unit.options");
  v1::CreateUnitRequest template_unit = create;
  template_unit.set_unit_id("hello@.service");
  EXPECT_EQ(Call(&Provider::CreateUnit, template_unit).status().code(),
            absl::StatusCode::kFailedPrecondition);

  auto creating = Call(&Provider::CreateUnit, create);
  ASSERT_TRUE(creating.ok()) << creating.status();
  EXPECT_EQ(creating->poll_token, "units:hello.service:LAUNCHED");
  auto launched = Finish<v1::Unit>(*creating);
  ASSERT_TRUE(launched.ok()) << launched.status();
  EXPECT_EQ(launched->current_state(), v1::Unit::LAUNCHED);
  EXPECT_THAT(launched->machine(), MatchesRegex("accounts/lab/machines/[0-9a-f]{32}"));
  EXPECT_EQ(Call(&Provider::CreateUnit, create).status().code(), absl::StatusCode::kAlreadyExists);

  v1::ListUnitStatesRequest states;
  states.set_parent(kParent);
  auto running = Call(&Provider::ListUnitStates, states);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_THAT(running->unit_states(), SizeIs(1));
  const v1::UnitState& state = running->unit_states(0);
  EXPECT_EQ(state.unit(), Res("units", "hello.service"));
  EXPECT_EQ(state.machine(), launched->machine());
  // sha1sum of "[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/usr/bin/sleep 1d\n"
  EXPECT_EQ(state.hash(), "076bfff1f68e6e8f938d34dde10354bc7a534f6a");
  EXPECT_EQ(state.systemd_load_state(), "loaded");
  EXPECT_EQ(state.systemd_active_state(), "active");
  EXPECT_EQ(state.systemd_sub_state(), "running");

  v1::SetUnitDesiredStateRequest set;
  set.set_name(Res("units", "hello.service"));
  set.set_desired_state(v1::Unit::LOADED);
  auto loaded = Finish<v1::Unit>(Call(&Provider::SetUnitDesiredState, set));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->current_state(), v1::Unit::LOADED);
  auto loaded_states = Call(&Provider::ListUnitStates, states);
  ASSERT_THAT(loaded_states->unit_states(), SizeIs(1));
  EXPECT_EQ(loaded_states->unit_states(0).systemd_active_state(), "inactive");
  EXPECT_EQ(loaded_states->unit_states(0).systemd_sub_state(), "dead");

  set.set_desired_state(v1::Unit::INACTIVE);
  auto inactive = Finish<v1::Unit>(Call(&Provider::SetUnitDesiredState, set));
  ASSERT_TRUE(inactive.ok()) << inactive.status();
  EXPECT_EQ(inactive->current_state(), v1::Unit::INACTIVE);
  EXPECT_TRUE(inactive->machine().empty());
  EXPECT_THAT(Call(&Provider::ListUnitStates, states)->unit_states(), SizeIs(0));

  set.set_desired_state(v1::Unit::STATE_UNSPECIFIED);
  EXPECT_EQ(BadField(Call(&Provider::SetUnitDesiredState, set).status()), "desired_state");

  // A global unit runs on every machine; filters narrow the states.
  v1::CreateUnitRequest global = create;
  global.set_unit_id("agent.service");
  AddOption(*global.mutable_unit(), "X-Fleet", "Global", "true");
  auto everywhere = Finish<v1::Unit>(Call(&Provider::CreateUnit, global));
  ASSERT_TRUE(everywhere.ok()) << everywhere.status();
  EXPECT_TRUE(everywhere->machine().empty());
  auto all = Call(&Provider::ListUnitStates, states);
  ASSERT_THAT(all->unit_states(), SizeIs(3));
  states.set_machine(all->unit_states(1).machine());
  EXPECT_THAT(Call(&Provider::ListUnitStates, states)->unit_states(), SizeIs(1));
  states.set_machine("accounts/lab/machines/nothex");
  EXPECT_EQ(BadField(Call(&Provider::ListUnitStates, states).status()), "machine");

  // A pinned unit goes to its machine.
  v1::CreateUnitRequest pinned = create;
  pinned.set_unit_id("pinned.service");
  AddOption(*pinned.mutable_unit(), "X-Fleet", "MachineID", "b4104f4b83fd48b2acc16a085b0ec2ce");
  auto pinned_unit = Finish<v1::Unit>(Call(&Provider::CreateUnit, pinned));
  ASSERT_TRUE(pinned_unit.ok()) << pinned_unit.status();
  EXPECT_EQ(pinned_unit->machine(), Res("machines", "b4104f4b83fd48b2acc16a085b0ec2ce"));

  v1::DeleteUnitRequest del;
  del.set_name(Res("units", "hello.service"));
  EXPECT_TRUE(Call(&Provider::DeleteUnit, del)->done);
  EXPECT_EQ(Call(&Provider::DeleteUnit, del).status().code(), absl::StatusCode::kNotFound);
  v1::GetUnitRequest get;
  get.set_name(del.name());
  EXPECT_EQ(Call(&Provider::GetUnit, get).status().code(), absl::StatusCode::kNotFound);
}

// ---- Lists --------------------------------------------------------------------

TEST_F(SandboxTest, PaginationReturnsEveryItemOnce) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(CreateFirewall(absl::StrCat("fw-", i < 10 ? "0" : "", i)).ok());
  }
  std::vector<std::string> seen;
  v1::ListFirewallsRequest list;
  list.set_parent(kParent);
  list.set_page_size(7);
  int pages = 0;
  do {
    auto page = Call(&Provider::ListFirewalls, list);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const auto& f : page->firewalls()) seen.push_back(f.name());
    if (pages == 2) {
      // Changes between pages move nothing twice or out of sight: one item
      // before the cursor appears nowhere, one after appears once.
      ASSERT_TRUE(CreateFirewall("fw-00a").ok());
      ASSERT_TRUE(CreateFirewall("fw-99").ok());
    }
    list.set_page_token(page->next_page_token());
  } while (!list.page_token().empty());
  EXPECT_EQ(pages, 4);
  ASSERT_THAT(seen, SizeIs(26));
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size());
  EXPECT_EQ(seen.back(), Res("firewalls", "fw-99"));

  list.set_page_token("garbage");
  EXPECT_EQ(BadField(Call(&Provider::ListFirewalls, list).status()), "page_token");
  list.clear_page_token();
  list.set_page_size(-1);
  EXPECT_EQ(BadField(Call(&Provider::ListFirewalls, list).status()), "page_size");
}

// ---- Durability and idempotency -------------------------------------------------

std::string TempDbPath() {
  std::string dir = ::testing::TempDir() + "/sandbox_XXXXXX";
  char* made = mkdtemp(dir.data());
  EXPECT_NE(made, nullptr);
  return dir + "/state.db";
}

TEST_F(SandboxTest, StateSurvivesReopeningTheStore) {
  const std::string path = TempDbPath();
  {
    auto store = store::Store::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    std::unique_ptr<Provider> provider = MakeProvider(store->get(), 20);
    v1::CreateVolumeRequest volume;
    volume.set_parent(kParent);
    volume.set_volume_id("kept");
    volume.mutable_volume()->set_size_bytes(4096);
    ASSERT_TRUE(Finish<v1::Volume>(Call(&Provider::CreateVolume, volume, Ctx(), provider.get()),
                                   provider.get())
                    .ok());
    // This transition is still pending when the "server" stops.
    AccountSetup setup;
    setup.account = kAccount;
    setup.options["transition_ms"] = "300";
    setup.store = store->get();
    auto slow = NewSandboxProvider(setup);
    ASSERT_TRUE(slow.ok());
    v1::CreateInstanceRequest create;
    create.set_parent(kParent);
    create.set_instance_id("survivor");
    create.mutable_instance()->set_image(Res("images", "debian-12"));
    ASSERT_TRUE(Call(&Provider::CreateInstance, create, Ctx(), slow->get()).ok());
  }
  auto store = store::Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  RecordingSink sink;
  std::unique_ptr<Provider> provider = MakeProvider(store->get(), 20, &sink);
  v1::GetVolumeRequest get_volume;
  get_volume.set_name(Res("volumes", "kept"));
  auto volume = Call(&Provider::GetVolume, get_volume, Ctx(), provider.get());
  ASSERT_TRUE(volume.ok()) << volume.status();
  EXPECT_EQ(volume->state(), v1::Volume::AVAILABLE);
  EXPECT_EQ(volume->size_bytes(), 4096);
  // The new provider picked up the pending transition and its timer
  // announces it.
  ASSERT_TRUE(sink.WaitFor(v1::WatchResponse::UPDATED, Res("instances", "survivor"), "RUNNING"));
  provider.reset();
}

TEST_F(SandboxTest, RedrivenMutationsDoTheWorkOnce) {
  // An operation that generated its id: the re-drive reports the same one.
  v1::CreateInstanceRequest create;
  create.set_parent(kParent);
  create.mutable_instance()->set_image(Res("images", "debian-12"));
  auto first = Call(&Provider::CreateInstance, create, Ctx("operations/op-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = Call(&Provider::CreateInstance, create, Ctx("operations/op-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->poll_token, first->poll_token);
  v1::ListInstancesRequest list;
  list.set_parent(kParent);
  EXPECT_THAT(Call(&Provider::ListInstances, list)->instances(), SizeIs(1));

  // A chosen id: the re-drive is not ALREADY_EXISTS.
  auto named = CreateInstance("web-1", std::nullopt, "operations/op-2");
  ASSERT_TRUE(named.ok());
  auto named_again = CreateInstance("web-1", std::nullopt, "operations/op-2");
  ASSERT_TRUE(named_again.ok()) << named_again.status();
  ASSERT_TRUE(Finish<v1::Instance>(named_again).ok());
  EXPECT_EQ(CreateInstance("web-1", std::nullopt, "operations/op-3").status().code(),
            absl::StatusCode::kAlreadyExists);

  // A delete re-driven after the instance is gone still succeeds.
  v1::DeleteInstanceRequest del;
  del.set_name(Res("instances", "web-1"));
  ASSERT_TRUE(
      Finish<google::protobuf::Empty>(Call(&Provider::DeleteInstance, del, Ctx("operations/op-4")))
          .ok());
  auto redriven = Call(&Provider::DeleteInstance, del, Ctx("operations/op-4"));
  ASSERT_TRUE(redriven.ok()) << redriven.status();
  EXPECT_TRUE(redriven->done);

  // A firewall rule added once, however often the call is repeated.
  ASSERT_TRUE(CreateFirewall("web").ok());
  v1::CreateFirewallRuleRequest rule;
  rule.set_parent(Res("firewalls", "web"));
  rule.mutable_rule()->set_protocol("tcp");
  rule.mutable_rule()->set_port_range_start(80);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Call(&Provider::CreateFirewallRule, rule, Ctx("operations/op-5")).ok());
  }
  v1::GetFirewallRequest get_fw;
  get_fw.set_name(Res("firewalls", "web"));
  EXPECT_THAT(Call(&Provider::GetFirewall, get_fw)->rules(), SizeIs(1));
}

TEST_F(SandboxTest, PollReportsVanishedAndConflictingWork) {
  std::unique_ptr<Provider> slow = MakeProvider(store_.get(), 60000);
  v1::CreateInstanceRequest create;
  create.set_parent(kParent);
  create.set_instance_id("doomed");
  create.mutable_instance()->set_image(Res("images", "debian-12"));
  auto created = Call(&Provider::CreateInstance, create, Ctx(), slow.get());
  ASSERT_TRUE(created.ok());
  auto pending = Poll(created->poll_token, slow.get());
  ASSERT_TRUE(pending.ok());
  EXPECT_FALSE(pending->done);
  EXPECT_THAT(pending->detail, HasSubstr("PROVISIONING"));

  // Deleted meanwhile: the create can never finish.
  v1::DeleteInstanceRequest del;
  del.set_name(Res("instances", "doomed"));
  ASSERT_TRUE(Call(&Provider::DeleteInstance, del, Ctx(), slow.get()).ok());
  EXPECT_EQ(Poll(created->poll_token, slow.get()).status().code(), absl::StatusCode::kAborted);

  EXPECT_EQ(Poll("instances:never-was:RUNNING").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Poll("nonsense").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
