#include "service/observer.h"

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace cloudplane::service {
namespace {

using v1::WatchResponse;

// A provider whose lists answer from a script, on a thread of its own (as a
// transport's completion would), counting every call.
class ScriptedProvider : public adapters::Provider {
 public:
  explicit ScriptedProvider(adapters::WatchSource source) {
    info_.kind = "scripted";
    info_.watch_source = source;
    info_.supported_methods = {adapters::FullMethodName("UnitsService", "ListUnits"),
                               adapters::FullMethodName("ComputeService", "ListInstances"),
                               adapters::FullMethodName("ComputeService", "ListImages")};
  }
  ~ScriptedProvider() override {
    for (std::thread& t : threads_) t.join();
  }
  const adapters::ProviderInfo& Info() const override { return info_; }
  bool PushConnected() const override {
    absl::MutexLock lock(&mu_);
    return connected_;
  }

  void ListUnits(const adapters::CallContext& ctx, const v1::ListUnitsRequest& request,
                 adapters::Callback<v1::ListUnitsResponse> done) override {
    absl::MutexLock lock(&mu_);
    ++unit_calls_;
    parents_.push_back(request.parent());
    absl::StatusOr<v1::ListUnitsResponse> answer = v1::ListUnitsResponse();
    if (!units_status_.ok()) {
      answer = units_status_;
    } else if (!request.page_token().empty() && aborts_left_ > 0) {
      --aborts_left_;
      answer = absl::AbortedError("the collection changed since the first page");
    } else {
      v1::ListUnitsResponse page;
      int start = request.page_token().empty() ? 0 : std::stoi(request.page_token());
      int size = request.page_size() > 0 ? request.page_size() : 1000;
      int i = start;
      for (; i < static_cast<int>(units_.size()) && i < start + size; ++i) {
        *page.add_units() = units_[i];
      }
      if (i < static_cast<int>(units_.size())) page.set_next_page_token(std::to_string(i));
      answer = page;
    }
    threads_.emplace_back([answer = std::move(answer), done = std::move(done)]() mutable {
      std::move(done)(std::move(answer));
    });
  }
  void ListInstances(const adapters::CallContext& ctx, const v1::ListInstancesRequest& request,
                     adapters::Callback<v1::ListInstancesResponse> done) override {
    absl::MutexLock lock(&mu_);
    ++instance_calls_;
    absl::StatusOr<v1::ListInstancesResponse> answer = v1::ListInstancesResponse();
    if (!instances_status_.ok()) answer = instances_status_;
    threads_.emplace_back([answer = std::move(answer), done = std::move(done)]() mutable {
      std::move(done)(std::move(answer));
    });
  }

  void SetUnit(const std::string& id, const std::string& desired) {
    absl::MutexLock lock(&mu_);
    v1::Unit unit;
    unit.set_name(absl::StrCat("accounts/lab/units/", id));
    unit.set_desired_state(desired == "launched" ? v1::Unit::LAUNCHED : v1::Unit::LOADED);
    for (v1::Unit& u : units_) {
      if (u.name() == unit.name()) {
        u = unit;
        return;
      }
    }
    units_.push_back(unit);
  }
  void RemoveUnit(const std::string& id) {
    absl::MutexLock lock(&mu_);
    std::erase_if(units_, [&](const v1::Unit& u) { return u.name() == "accounts/lab/units/" + id; });
  }
  void Fail(absl::Status units, absl::Status instances) {
    absl::MutexLock lock(&mu_);
    units_status_ = units;
    instances_status_ = instances;
  }
  // The next `n` ListUnits calls past a first page answer ABORTED, as an
  // offset-paged provider (CloudSigma) does when the listing shifted.
  void AbortContinuedPages(int n) {
    absl::MutexLock lock(&mu_);
    aborts_left_ = n;
  }
  void SetConnected(bool connected) {
    absl::MutexLock lock(&mu_);
    connected_ = connected;
  }
  int unit_calls() const {
    absl::MutexLock lock(&mu_);
    return unit_calls_;
  }
  int instance_calls() const {
    absl::MutexLock lock(&mu_);
    return instance_calls_;
  }
  std::vector<std::string> parents() const {
    absl::MutexLock lock(&mu_);
    return parents_;
  }

 private:
  adapters::ProviderInfo info_;
  mutable absl::Mutex mu_;
  std::vector<v1::Unit> units_;
  absl::Status units_status_, instances_status_;
  bool connected_ = false;
  int aborts_left_ = 0;
  int unit_calls_ = 0, instance_calls_ = 0;
  std::vector<std::string> parents_;
  std::vector<std::thread> threads_;
};

struct Published {
  WatchResponse::ChangeType type;
  std::string name;
  std::string desired;  // the Unit's desired state
  adapters::WatchSource source;
};

class RecordingSink : public adapters::ChangeSink {
 public:
  void Publish(absl::string_view account, WatchResponse::ChangeType type,
               absl::string_view resource_name, const google::protobuf::Message& resource,
               adapters::WatchSource source) override {
    absl::MutexLock lock(&mu_);
    std::string desired;
    if (const auto* unit = dynamic_cast<const v1::Unit*>(&resource)) {
      desired = v1::Unit::State_Name(unit->desired_state());
    }
    published_.push_back({type, std::string(resource_name), desired, source});
  }
  std::vector<Published> Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(published_, {});
  }

 private:
  absl::Mutex mu_;
  std::vector<Published> published_;
};

bool WaitFor(const std::function<bool()>& condition) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return condition();
}

class ObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::Store::OpenInMemory();
    ASSERT_TRUE(opened.ok());
    store_ = *std::move(opened);
  }
  void TearDown() override {
    observer_.reset();
    loop_.Shutdown();
  }

  // An observer whose timer never fires within a test: rounds run on
  // ObserveNow.
  std::unique_ptr<Observer> Make(adapters::Provider& provider, int page_size = 0) {
    Observer::Options options;
    options.interval = absl::Hours(1);
    options.page_size = page_size;
    options.on_health = [this](const Observer::Health& health) {
      absl::MutexLock lock(&mu_);
      healths_.push_back(health);
    };
    options.subscribe = [this](Observer::ChangeListener listener) {
      absl::MutexLock lock(&mu_);
      listener_ = std::move(listener);
      return uint64_t{7};
    };
    options.unsubscribe = [this](uint64_t id) {
      absl::MutexLock lock(&mu_);
      unsubscribed_ = id;
      listener_ = nullptr;
    };
    return std::make_unique<Observer>("lab", &provider, store_.get(), &loop_, &sink_,
                                      std::move(options));
  }

  // Runs one full round and waits for it.
  void Round(Observer& observer) {
    const int64_t before = observer.rounds();
    observer.ObserveNow();
    ASSERT_TRUE(WaitFor([&] { return observer.rounds() > before; }));
  }

  v1::Account::State LastState() {
    absl::MutexLock lock(&mu_);
    return healths_.empty() ? v1::Account::STATE_UNSPECIFIED : healths_.back().state;
  }
  Observer::Health LastHealth() {
    absl::MutexLock lock(&mu_);
    return healths_.back();
  }

  // A change the server published itself, as the WatchHub hands it over.
  void Own(WatchResponse::ChangeType type, const std::string& id, const std::string& source) {
    WatchResponse change;
    change.set_change_type(type);
    change.set_resource_name("accounts/lab/units/" + id);
    change.set_kind("Unit");
    change.set_source(source);
    v1::Unit unit;
    unit.set_name(change.resource_name());
    unit.set_desired_state(v1::Unit::LAUNCHED);
    change.mutable_resource()->PackFrom(unit);
    absl::MutexLock lock(&mu_);
    listener_(change);
  }

  std::unique_ptr<store::Store> store_;
  EventLoop loop_;
  RecordingSink sink_;
  std::unique_ptr<Observer> observer_;
  absl::Mutex mu_;
  std::vector<Observer::Health> healths_;
  Observer::ChangeListener listener_;
  uint64_t unsubscribed_ = 0;
};

TEST(ObserverJudgeTest, StatesFromTheRoundsResults) {
  const absl::Status ok, down = absl::UnavailableError("refused"),
                         slow = absl::DeadlineExceededError("t"),
                         denied = absl::UnauthenticatedError("401"),
                         forbidden = absl::PermissionDeniedError("403"),
                         broken = absl::InternalError("500");
  EXPECT_EQ(Observer::Judge({}), v1::Account::READY);
  EXPECT_EQ(Observer::Judge({ok, ok}), v1::Account::READY);
  EXPECT_EQ(Observer::Judge({down, slow}), v1::Account::UNREACHABLE);
  EXPECT_EQ(Observer::Judge({ok, down}), v1::Account::DEGRADED);
  EXPECT_EQ(Observer::Judge({broken, down}), v1::Account::DEGRADED);
  EXPECT_EQ(Observer::Judge({ok, denied}), v1::Account::UNAUTHENTICATED);
  EXPECT_EQ(Observer::Judge({down, forbidden}), v1::Account::UNAUTHENTICATED);
}

TEST(ObserverEligibleTest, PollAndPushProvidersOnly) {
  EXPECT_TRUE(Observer::Eligible(ScriptedProvider(adapters::WatchSource::kPoll)));
  EXPECT_TRUE(Observer::Eligible(ScriptedProvider(adapters::WatchSource::kPush)));
  EXPECT_FALSE(Observer::Eligible(ScriptedProvider(adapters::WatchSource::kLocal)));
}

TEST_F(ObserverTest, ListsOnlySupportedTopLevelCollections) {
  ScriptedProvider provider(adapters::WatchSource::kPoll);
  observer_ = Make(provider);
  // ListImages is supported but a catalogue: not observed.
  EXPECT_EQ(observer_->Kinds(), (std::vector<std::string>{"Instance", "Unit"}));
}

TEST_F(ObserverTest, FirstRoundIsASilentBaselineThenChangesArePublished) {
  ScriptedProvider provider(adapters::WatchSource::kPoll);
  provider.SetUnit("a.service", "loaded");
  provider.SetUnit("b.service", "loaded");
  observer_ = Make(provider);
  observer_->Start();
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() == 1; }));
  EXPECT_TRUE(sink_.Take().empty());
  EXPECT_EQ(LastState(), v1::Account::READY);
  EXPECT_EQ(provider.parents(), std::vector<std::string>{"accounts/lab"});

  provider.SetUnit("c.service", "loaded");
  provider.SetUnit("a.service", "launched");
  provider.RemoveUnit("b.service");
  Round(*observer_);
  std::vector<Published> got = sink_.Take();
  ASSERT_EQ(got.size(), 3u);
  // Within a collection: new and changed names in name order, then the gone.
  EXPECT_EQ(got[0].type, WatchResponse::UPDATED);
  EXPECT_EQ(got[0].name, "accounts/lab/units/a.service");
  EXPECT_EQ(got[0].desired, "LAUNCHED");
  EXPECT_EQ(got[1].type, WatchResponse::CREATED);
  EXPECT_EQ(got[1].name, "accounts/lab/units/c.service");
  EXPECT_EQ(got[2].type, WatchResponse::DELETED);
  EXPECT_EQ(got[2].name, "accounts/lab/units/b.service");
  EXPECT_EQ(got[2].desired, "LOADED");  // its last observed value
  for (const Published& p : got) EXPECT_EQ(p.source, adapters::WatchSource::kPoll);

  // Nothing changed: nothing published.
  Round(*observer_);
  EXPECT_TRUE(sink_.Take().empty());

  std::optional<google::protobuf::Any> last =
      observer_->LastObserved("accounts/lab/units/a.service");
  ASSERT_TRUE(last.has_value());
  v1::Unit unit;
  ASSERT_TRUE(last->UnpackTo(&unit));
  EXPECT_EQ(unit.desired_state(), v1::Unit::LAUNCHED);
  EXPECT_FALSE(observer_->LastObserved("accounts/lab/units/b.service").has_value());
}

TEST_F(ObserverTest, EveryPageIsWalkedOnceAListPerCollectionPerRound) {
  ScriptedProvider provider(adapters::WatchSource::kPoll);
  for (int i = 0; i < 5; ++i) provider.SetUnit(absl::StrCat("u", i, ".service"), "loaded");
  observer_ = Make(provider, /*page_size=*/2);
  observer_->Start();
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() == 1; }));
  EXPECT_EQ(provider.unit_calls(), 3);  // pages of 2, 2, 1
  EXPECT_EQ(provider.instance_calls(), 1);
  provider.RemoveUnit("u4.service");
  Round(*observer_);
  EXPECT_EQ(provider.unit_calls(), 5);  // 2, 2
  EXPECT_EQ(provider.instance_calls(), 2);
  std::vector<Published> got = sink_.Take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, WatchResponse::DELETED);
  EXPECT_EQ(got[0].name, "accounts/lab/units/u4.service");
}

TEST_F(ObserverTest, AListingAbortedPastItsFirstPageIsWalkedAgain) {
  ScriptedProvider provider(adapters::WatchSource::kPoll);
  for (int i = 0; i < 5; ++i) provider.SetUnit(absl::StrCat("u", i, ".service"), "loaded");
  observer_ = Make(provider, /*page_size=*/2);
  observer_->Start();
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() == 1; }));
  ASSERT_EQ(provider.unit_calls(), 3);

  // Aborted once: the walk starts again (1 + 1 aborted + 3) and the round is clean.
  provider.AbortContinuedPages(1);
  provider.RemoveUnit("u4.service");
  Round(*observer_);
  EXPECT_EQ(provider.unit_calls(), 3 + 1 + 1 + 2);  // first page, aborted, then 2, 2
  EXPECT_EQ(LastState(), v1::Account::READY);
  std::vector<Published> got = sink_.Take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, WatchResponse::DELETED);
  EXPECT_EQ(got[0].name, "accounts/lab/units/u4.service");

  // Aborted every time: after two fresh walks the round fails, and nothing
  // is published from the half-read listing.
  provider.AbortContinuedPages(100);
  Round(*observer_);
  EXPECT_EQ(LastHealth().error.code(), absl::StatusCode::kAborted);
  EXPECT_NE(LastState(), v1::Account::READY);
  EXPECT_TRUE(sink_.Take().empty());
}

TEST_F(ObserverTest, AFailedListKeepsItsSnapshotAndSetsTheHealth) {
  ScriptedProvider provider(adapters::WatchSource::kPoll);
  provider.SetUnit("a.service", "loaded");
  observer_ = Make(provider);
  observer_->Start();
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() == 1; }));

  provider.Fail(absl::UnavailableError("connection refused"),
                absl::DeadlineExceededError("slow"));
  Round(*observer_);
  EXPECT_TRUE(sink_.Take().empty());  // no DELETED from an error
  EXPECT_EQ(LastState(), v1::Account::UNREACHABLE);
  // The first failure in collection order (instances before units).
  EXPECT_EQ(LastHealth().error.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(LastHealth().error.message(), "ListInstances: slow");

  provider.Fail(absl::InternalError("500"), absl::OkStatus());
  Round(*observer_);
  EXPECT_EQ(LastState(), v1::Account::DEGRADED);
  provider.Fail(absl::UnauthenticatedError("401"), absl::OkStatus());
  Round(*observer_);
  EXPECT_EQ(LastState(), v1::Account::UNAUTHENTICATED);

  provider.Fail(absl::OkStatus(), absl::OkStatus());
  Round(*observer_);
  EXPECT_EQ(LastState(), v1::Account::READY);
  EXPECT_TRUE(LastHealth().error.ok());
  EXPECT_TRUE(sink_.Take().empty());  // a.service was there all along
}

TEST_F(ObserverTest, ARestartReplaysNothingButRealDifferences) {
  ScriptedProvider provider(adapters::WatchSource::kPoll);
  provider.SetUnit("a.service", "loaded");
  provider.SetUnit("b.service", "loaded");
  observer_ = Make(provider);
  observer_->Start();
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() == 1; }));
  observer_->Stop();
  EXPECT_EQ(unsubscribed_, 7u);

  // While no server runs: b goes, c comes.
  provider.RemoveUnit("b.service");
  provider.SetUnit("c.service", "loaded");
  observer_ = Make(provider);  // same store: the snapshot persisted
  observer_->Start();
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() == 1; }));
  std::vector<Published> got = sink_.Take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, WatchResponse::CREATED);
  EXPECT_EQ(got[0].name, "accounts/lab/units/c.service");
  EXPECT_EQ(got[1].type, WatchResponse::DELETED);
  EXPECT_EQ(got[1].name, "accounts/lab/units/b.service");

  // The stored snapshot follows: one row per observed unit.
  auto page = store_->ListResources("lab", "observed.Unit", 100, "");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->resources.size(), 2u);
  EXPECT_EQ(page->resources[0].id, "accounts/lab/units/a.service");
  EXPECT_EQ(page->resources[1].id, "accounts/lab/units/c.service");
}

TEST_F(ObserverTest, ChangesTheServerPublishedItselfAreNotRepeated) {
  ScriptedProvider provider(adapters::WatchSource::kPoll);
  observer_ = Make(provider);
  observer_->Start();
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() == 1; }));

  provider.SetUnit("x.service", "launched");
  Own(WatchResponse::CREATED, "x.service", "local");
  Round(*observer_);
  EXPECT_TRUE(sink_.Take().empty());

  provider.RemoveUnit("x.service");
  Own(WatchResponse::DELETED, "x.service", "push");
  Round(*observer_);
  EXPECT_TRUE(sink_.Take().empty());

  // The observer's own (poll) changes coming back from the hub change nothing.
  provider.SetUnit("y.service", "launched");
  Own(WatchResponse::CREATED, "y.service", "poll");
  Round(*observer_);
  std::vector<Published> got = sink_.Take();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].name, "accounts/lab/units/y.service");
}

TEST_F(ObserverTest, APushProviderIsListedOnlyWhileItsFeedIsDown) {
  ScriptedProvider provider(adapters::WatchSource::kPush);
  provider.SetConnected(true);
  provider.SetUnit("a.service", "loaded");
  observer_ = Make(provider);
  observer_->Start();
  // With the feed up: one listing per collection, for the baseline only.
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() == 1; }));
  EXPECT_EQ(provider.unit_calls(), 1);
  EXPECT_EQ(provider.instance_calls(), 1);
  EXPECT_TRUE(sink_.Take().empty());
  EXPECT_EQ(LastState(), v1::Account::READY);
  Round(*observer_);
  EXPECT_EQ(provider.unit_calls(), 1);
  EXPECT_EQ(provider.instance_calls(), 1);
  EXPECT_EQ(LastState(), v1::Account::READY);

  // Changed while the feed goes down: the first round after it publishes
  // them (it is not a new silent baseline).
  provider.SetConnected(false);
  provider.SetUnit("b.service", "loaded");
  provider.RemoveUnit("a.service");
  Round(*observer_);
  EXPECT_EQ(provider.unit_calls(), 2);
  EXPECT_EQ(provider.instance_calls(), 2);
  std::vector<Published> got = sink_.Take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].type, WatchResponse::CREATED);
  EXPECT_EQ(got[0].name, "accounts/lab/units/b.service");
  EXPECT_EQ(got[1].type, WatchResponse::DELETED);
  EXPECT_EQ(got[1].name, "accounts/lab/units/a.service");
  for (const Published& p : got) EXPECT_EQ(p.source, adapters::WatchSource::kPoll);
}

TEST_F(ObserverTest, RoundsFollowTheIntervalWithJitter) {
  ScriptedProvider provider(adapters::WatchSource::kPoll);
  Observer::Options options;
  options.interval = absl::Milliseconds(50);
  observer_ = std::make_unique<Observer>("lab", &provider, store_.get(), &loop_, &sink_,
                                         std::move(options));
  const absl::Time start = absl::Now();
  observer_->Start();
  ASSERT_TRUE(WaitFor([&] { return observer_->rounds() >= 6; }));
  const absl::Duration took = absl::Now() - start;
  // 5 intervals of 40-60 ms each after the first round.
  EXPECT_GE(took, absl::Milliseconds(200));
  observer_->Stop();
  const int calls = provider.unit_calls();
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_EQ(provider.unit_calls(), calls);  // nothing after Stop
}

}  // namespace
}  // namespace cloudplane::service
