// The fixture the sandbox's tests share (sandbox_*_test.cc, one per
// service): a provider on an in-memory store with 50 ms transitions, a sink
// that records what it publishes, and synchronous call helpers (the sandbox
// answers before a method returns).
#ifndef CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_TEST_FIXTURE_H_
#define CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_TEST_FIXTURE_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_adapter.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace cloudplane::adapters::sandbox {

inline constexpr char kAccount[] = "lab";
inline constexpr char kParent[] = "accounts/lab";

inline std::string Res(absl::string_view collection, absl::string_view id) {
  return absl::StrCat(kParent, "/", collection, "/", id);
}

// Field named by the BadRequest of an INVALID_ARGUMENT status.
inline std::string BadField(const absl::Status& status) {
  auto bad_request = GetBadRequest(status);
  if (!bad_request.has_value() || bad_request->field_violations().empty()) return "";
  return bad_request->field_violations(0).field();
}

// The typed token a progress carries (an empty token, and a test failure,
// when it does not decode).
inline PollToken Decoded(const std::string& packed) {
  absl::StatusOr<PollToken> token = ReadPollToken(packed);
  EXPECT_TRUE(token.ok()) << token.status();
  return token.value_or(PollToken());
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

}  // namespace cloudplane::adapters::sandbox

#endif  // CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_TEST_FIXTURE_H_
