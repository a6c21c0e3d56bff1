#include "service/operation_runner.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "cloudplane/v1/common.pb.h"
#include "gtest/gtest.h"
#include "service/runner_test_support.h"
#include "store/store.h"

namespace cloudplane::service {
namespace {

using google::longrunning::Operation;
using testing::ScriptedProvider;

constexpr char kCreate[] = "cloudplane.v1.ComputeService.CreateInstance";

class OperationRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = store::Store::OpenInMemory();
    ASSERT_TRUE(opened.ok());
    store_ = *std::move(opened);
    hub_ = std::make_unique<WatchHub>(store_.get(), &loop_);
    adapters::ProviderInfo info;
    info.kind = "scripted";
    ASSERT_TRUE(registry_
                    .Register(info,
                              [this](const adapters::AccountSetup&)
                                  -> absl::StatusOr<std::unique_ptr<adapters::Provider>> {
                                auto p = std::make_unique<ScriptedProvider>();
                                provider_ = p.get();
                                return p;
                              })
                    .ok());
    config::v1::ServerConfig config;
    auto* account = config.add_accounts();
    account->set_id("a");
    account->set_provider("scripted");
    adapters::AccountSetup shared;
    shared.loop = &loop_;
    accounts_ = AccountTable::Create(config, registry_, shared);
    ASSERT_NE(provider_, nullptr);
  }

  void TearDown() override {
    for (auto& runner : runners_) runner->Shutdown();
    loop_.Shutdown();
  }

  OperationRunner& Runner(absl::Duration timeout = absl::Seconds(30)) {
    OperationRunner::Options options;
    options.operation_timeout = timeout;
    options.first_poll = absl::Milliseconds(5);
    options.max_poll = absl::Milliseconds(20);
    // Runners stay alive until the loop has stopped: their timers point at them.
    runners_.push_back(std::make_unique<OperationRunner>(store_.get(), &loop_, hub_.get(),
                                                         accounts_.get(), options));
    return *runners_.back();
  }

  static v1::CreateInstanceRequest Request(const std::string& id, const std::string& request_id) {
    v1::CreateInstanceRequest r;
    r.set_parent("accounts/a");
    r.set_instance_id(id);
    r.set_request_id(request_id);
    return r;
  }

  absl::StatusOr<Operation> Start(OperationRunner& runner, const v1::CreateInstanceRequest& r) {
    absl::Notification answered;
    absl::StatusOr<Operation> result = absl::UnknownError("not answered");
    runner.Start(kCreate, "a", "accounts/a/instances/" + r.instance_id(), r, r.request_id(), "alice",
                 [&](absl::StatusOr<Operation> op) {
                   result = std::move(op);
                   answered.Notify();
                 });
    answered.WaitForNotification();
    return result;
  }

  Operation WaitDone(OperationRunner& runner, const std::string& name,
                     absl::Duration at_most = absl::Seconds(10)) {
    absl::Notification answered;
    absl::StatusOr<Operation> result = absl::UnknownError("not answered");
    runner.Wait(name, absl::Now() + at_most, [&](absl::StatusOr<Operation> op) {
      result = std::move(op);
      answered.Notify();
    });
    answered.WaitForNotification();
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : Operation();
  }

  EventLoop loop_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<WatchHub> hub_;
  adapters::AdapterRegistry registry_;
  std::unique_ptr<AccountTable> accounts_;
  ScriptedProvider* provider_ = nullptr;
  std::vector<std::unique_ptr<OperationRunner>> runners_;
};

TEST_F(OperationRunnerTest, AcceptedThenPolledToDoneFromATransportThread) {
  OperationRunner& runner = Runner();
  provider_->QueuePoll(ScriptedProvider::Pending("t2"));
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", "r1"));
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_FALSE(op->done());
  Operation done = WaitDone(runner, op->name());
  ASSERT_TRUE(done.done());
  v1::Instance instance;
  ASSERT_TRUE(done.response().UnpackTo(&instance));
  EXPECT_EQ(instance.state(), v1::Instance::RUNNING);
  v1::OperationMetadata metadata;
  ASSERT_TRUE(done.metadata().UnpackTo(&metadata));
  EXPECT_EQ(metadata.principal(), "alice");  // kept through every update
  EXPECT_EQ(provider_->polls.load(), 2);
  EXPECT_EQ(provider_->last_token(), "t2");  // the newest token is what is polled
  absl::StatusOr<store::OperationRecord> stored = store_->GetOperation(op->name());
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->op.done());
  EXPECT_TRUE(stored->poll_token.empty());
}

// Waits until the provider has been polled `n` times. A poll is scheduled
// only once the answer to the one before has been recorded, so after the
// (n)th poll the answers to polls 1..n-1 are fully handled.
void WaitPolls(ScriptedProvider& provider, int n) {
  while (provider.polls.load() < n) absl::SleepFor(absl::Milliseconds(1));
}

TEST_F(OperationRunnerTest, AnUnchangedPollWritesNothingAChangedOneWritesOnce) {
  OperationRunner& runner = Runner();
  provider_->hold = true;  // every poll: pending, same token, same detail
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", "r1"));
  ASSERT_TRUE(op.ok()) << op.status();
  // The create's answer recorded the submitted phase; then polls 1 and 2
  // (handled once poll 3 is asked) said nothing new.
  WaitPolls(*provider_, 1);
  const store::Store::Stats after_first = store_->GetStats();
  absl::StatusOr<store::OperationRecord> first = store_->GetOperation(op->name());
  ASSERT_TRUE(first.ok());
  WaitPolls(*provider_, 4);
  EXPECT_EQ(store_->GetStats().writes, after_first.writes);
  absl::StatusOr<store::OperationRecord> same = store_->GetOperation(op->name());
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->update_time, first->update_time);

  // A new poll token is progress the runner must keep: one write.
  const int polls = provider_->polls.load();
  provider_->QueuePoll(ScriptedProvider::Pending("t2"));
  // The poll that answers t2, then the one after it (which asks with t2).
  WaitPolls(*provider_, polls + 3);
  EXPECT_EQ(provider_->last_token(), "t2");
  EXPECT_EQ(store_->GetStats().writes, after_first.writes + 1);
  absl::StatusOr<store::OperationRecord> moved = store_->GetOperation(op->name());
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->poll_token, "t2");
  EXPECT_GT(moved->update_time, first->update_time);

  provider_->hold = false;
  EXPECT_TRUE(WaitDone(runner, op->name()).done());
}

TEST_F(OperationRunnerTest, NotFoundReadsLikeAMissingOperation) {
  OperationRunner& runner = Runner();
  absl::StatusOr<Operation> missing = runner.Get("operations/none-such");
  EXPECT_EQ(missing.status(), OperationRunner::NotFound("operations/none-such"));
}

TEST_F(OperationRunnerTest, RefusalLeavesNoOperationAndFreesTheRequestId) {
  OperationRunner& runner = Runner();
  provider_->create_answer = InvalidField("instance_id", "bad");
  absl::StatusOr<Operation> refused = Start(runner, Request("web-1", "r1"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  auto page = store_->ListOperations({});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->records.empty());
  provider_->create_answer = ScriptedProvider::Pending();
  absl::StatusOr<Operation> accepted = Start(runner, Request("web-1", "r1"));
  EXPECT_TRUE(accepted.ok()) << accepted.status();
}

TEST_F(OperationRunnerTest, RequestIdReturnsTheFirstOperationOrRefusesAnotherRequest) {
  OperationRunner& runner = Runner();
  absl::StatusOr<Operation> first = Start(runner, Request("web-1", "same"));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<Operation> again = Start(runner, Request("web-1", "same"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->name(), first->name());
  EXPECT_EQ(provider_->creates.load(), 1);
  absl::StatusOr<Operation> other = Start(runner, Request("web-2", "same"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(GetErrorInfo(other.status())->reason(), "REQUEST_ID_REUSED");
}

TEST_F(OperationRunnerTest, TransientPollErrorsKeepPollingAFailureEndsIt) {
  OperationRunner& runner = Runner();
  provider_->QueuePoll(absl::UnavailableError("503"));
  provider_->QueuePoll(absl::DeadlineExceededError("slow"));
  provider_->QueuePoll(absl::InternalError("the provider sent malformed JSON"));
  absl::StatusOr<Operation> ok_op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(ok_op.ok());
  Operation done = WaitDone(runner, ok_op->name());
  EXPECT_FALSE(done.has_error()) << done.error().message();
  EXPECT_EQ(provider_->polls.load(), 4);

  provider_->QueuePoll(absl::FailedPreconditionError("the provider says no"));
  absl::StatusOr<Operation> failing = Start(runner, Request("web-2", ""));
  ASSERT_TRUE(failing.ok());
  Operation failed = WaitDone(runner, failing->name());
  ASSERT_TRUE(failed.has_error());
  EXPECT_EQ(failed.error().code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
}

TEST_F(OperationRunnerTest, TheProvidersOwnWordThatTheWorkFailedIsFinal) {
  OperationRunner& runner = Runner();
  provider_->QueuePoll(WithErrorInfo(absl::InternalError("job 42 ended in ERROR: no capacity"),
                                     "PROVIDER_JOB_FAILED"));
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  Operation done = WaitDone(runner, op->name());
  ASSERT_TRUE(done.has_error());
  EXPECT_EQ(done.error().code(), static_cast<int>(absl::StatusCode::kInternal));
  EXPECT_EQ(provider_->polls.load(), 1);
}

TEST_F(OperationRunnerTest, TimeoutFailsWithOperationTimeout) {
  OperationRunner& runner = Runner(absl::Milliseconds(200));
  for (int i = 0; i < 1000; ++i) provider_->QueuePoll(ScriptedProvider::Pending());
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  Operation done = WaitDone(runner, op->name());
  ASSERT_TRUE(done.has_error());
  EXPECT_EQ(done.error().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(OperationRunnerTest, TimeoutAfterTransientTroubleSaysWhichTrouble) {
  OperationRunner& runner = Runner(absl::Milliseconds(300));
  for (int i = 0; i < 1000; ++i) provider_->QueuePoll(absl::UnavailableError("HTTP 503 from x"));
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  Operation done = WaitDone(runner, op->name());
  ASSERT_TRUE(done.has_error());
  EXPECT_EQ(done.error().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_NE(done.error().message().find("the provider's last answer: HTTP 503 from x"),
            std::string::npos)
      << done.error().message();
}

// The first answer is lost (UNAVAILABLE: the provider may have done it): the
// operation is kept, the caller gets it, and the same operation is re-driven
// (same CallContext::operation, so the adapter can find its own work) until
// it is accepted.
TEST_F(OperationRunnerTest, AmbiguousFirstAnswerKeepsTheOperationAndRedrivesIt) {
  OperationRunner& runner = Runner();
  provider_->QueueCreate(absl::UnavailableError("connection reset"));
  provider_->QueueCreate(absl::InternalError("truncated answer"));
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", "amb-1"));
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_FALSE(op->done());
  const std::string first_operation = provider_->last_operation();
  EXPECT_EQ(first_operation, op->name());
  Operation done = WaitDone(runner, op->name());
  EXPECT_TRUE(done.done());
  EXPECT_FALSE(done.has_error()) << done.error().message();
  EXPECT_EQ(provider_->creates.load(), 3);
  EXPECT_EQ(provider_->last_operation(), op->name());
  // A client retry with the same request_id gets the same operation.
  absl::StatusOr<Operation> again = Start(runner, Request("web-1", "amb-1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->name(), op->name());
  EXPECT_EQ(provider_->creates.load(), 3);
}

TEST_F(OperationRunnerTest, ARefusalOnARedriveFailsTheKeptOperation) {
  OperationRunner& runner = Runner();
  provider_->QueueCreate(absl::DeadlineExceededError("no answer"));
  provider_->QueueCreate(absl::AlreadyExistsError("someone else made web-1"));
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", "amb-2"));
  ASSERT_TRUE(op.ok()) << op.status();
  Operation done = WaitDone(runner, op->name());
  ASSERT_TRUE(done.has_error());
  EXPECT_EQ(done.error().code(), static_cast<int>(absl::StatusCode::kAlreadyExists));
}

TEST_F(OperationRunnerTest, AResumedOperationRidesOutTransientTroubleOnItsFirstPoll) {
  // The provider is down when the server comes back: the resumed
  // operation's first polls fail, and it must not fail with them.
  for (int i = 0; i < 3; ++i) provider_->QueuePoll(absl::UnavailableError("503 after restart"));
  OperationRunner& first = Runner();
  absl::StatusOr<Operation> op = Start(first, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  first.Shutdown();  // at most one poll (5 ms) ran before this
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_FALSE(store_->GetOperation(op->name())->op.done());
  OperationRunner& second = Runner();
  second.ResumeUnfinished();
  Operation done = WaitDone(second, op->name());
  EXPECT_TRUE(done.done());
  EXPECT_FALSE(done.has_error()) << done.error().message();
  EXPECT_GE(provider_->polls.load(), 3);
}

absl::Status CancelNow(OperationRunner& runner, const std::string& name) {
  absl::Notification answered;
  absl::Status result = absl::UnknownError("not answered");
  runner.Cancel(name, [&](absl::Status status) {
    result = std::move(status);
    answered.Notify();
  });
  answered.WaitForNotification();
  return result;
}

std::string ReasonOf(const absl::Status& status) {
  auto info = GetErrorInfo(status);
  return info ? info->reason() : "";
}

TEST_F(OperationRunnerTest, ACancelReachesTheProviderAndEndsCancelledSayingWhatItDid) {
  OperationRunner& runner = Runner();
  provider_->cancellable = {kCreate};
  provider_->hold = true;
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", "r1"));
  ASSERT_TRUE(op.ok()) << op.status();
  ASSERT_FALSE(op->done());
  ASSERT_TRUE(CancelNow(runner, op->name()).ok());
  EXPECT_EQ(provider_->cancels.load(), 1);
  EXPECT_EQ(provider_->last_cancel(), std::string(kCreate) + " t");  // the stored poll token
  absl::StatusOr<Operation> done = runner.Get(op->name());
  ASSERT_TRUE(done.ok());
  ASSERT_TRUE(done->done());
  EXPECT_EQ(done->error().code(), static_cast<int>(absl::StatusCode::kCancelled));
  EXPECT_NE(done->error().message().find("deleted what the create made"), std::string::npos)
      << done->error().message();
  v1::OperationMetadata metadata;
  ASSERT_TRUE(done->metadata().UnpackTo(&metadata));
  EXPECT_TRUE(metadata.cancel_requested());
  EXPECT_NE(metadata.status_detail().find("at the provider: deleted what the create made"),
            std::string::npos)
      << metadata.status_detail();
  // Nothing polls a cancelled operation any more.
  const int polls = provider_->polls.load();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(provider_->polls.load(), polls);
  EXPECT_EQ(CancelNow(runner, op->name()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(provider_->cancels.load(), 1);
}

TEST_F(OperationRunnerTest, AProviderThatCannotCancelLeavesTheOperationRunning) {
  OperationRunner& runner = Runner();
  provider_->hold = true;  // cancellable is empty
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", "r1"));
  ASSERT_TRUE(op.ok()) << op.status();
  absl::Status refused = CancelNow(runner, op->name());
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(refused), "CANCEL_UNSUPPORTED");
  EXPECT_NE(refused.message().find("providers/scripted cannot stop or undo it"),
            std::string::npos)
      << refused.message();
  EXPECT_EQ(provider_->cancels.load(), 0);
  provider_->hold = false;
  Operation done = WaitDone(runner, op->name());
  ASSERT_TRUE(done.done());
  EXPECT_TRUE(done.has_response());
  v1::OperationMetadata metadata;
  ASSERT_TRUE(done.metadata().UnpackTo(&metadata));
  EXPECT_FALSE(metadata.cancel_requested());
}

TEST_F(OperationRunnerTest, AnUndoTheProviderRefusesLetsTheOperationGoOn) {
  OperationRunner& runner = Runner();
  provider_->cancellable = {kCreate};
  provider_->cancel_answer = absl::FailedPreconditionError("too late to undo");
  provider_->hold = true;
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", "r1"));
  ASSERT_TRUE(op.ok()) << op.status();
  absl::Status refused = CancelNow(runner, op->name());
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.message(), "too late to undo");
  EXPECT_EQ(provider_->cancels.load(), 1);
  // Polling resumed: the operation finishes as the provider says.
  provider_->hold = false;
  Operation done = WaitDone(runner, op->name());
  ASSERT_TRUE(done.done());
  EXPECT_TRUE(done.has_response());
}

TEST_F(OperationRunnerTest, NoCancelBeforeTheProviderTookTheRequest) {
  OperationRunner& runner = Runner();
  provider_->cancellable = {kCreate};
  // Ambiguous answers (~20 ms apart): the operation stays accepted a while.
  for (int i = 0; i < 30; ++i) provider_->QueueCreate(absl::UnavailableError("connection reset"));
  provider_->hold = true;
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", "r1"));
  ASSERT_TRUE(op.ok()) << op.status();
  absl::StatusOr<store::OperationRecord> record = store_->GetOperation(op->name());
  ASSERT_TRUE(record.ok());
  ASSERT_EQ(record->phase, "accepted");
  absl::Status refused = CancelNow(runner, op->name());
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(refused), "CANCEL_UNSUPPORTED");
  EXPECT_NE(refused.message().find("not yet confirmed"), std::string::npos);
  EXPECT_EQ(provider_->cancels.load(), 0);
  provider_->hold = false;
  Operation done = WaitDone(runner, op->name());
  EXPECT_TRUE(done.has_response());
}


// An ObservationSource driven by hand: the test sets what the "lists" hold
// and ends rounds.
class FakeObservations : public ObservationSource {
 public:
  FakeObservations(EventLoop* loop, std::vector<std::string> kinds, absl::Duration interval)
      : loop_(loop), kinds_(std::move(kinds)), interval_(interval) {}

  std::vector<std::string> Kinds() const override { return kinds_; }
  absl::Duration interval() const override { return interval_; }
  std::optional<google::protobuf::Any> LastObserved(absl::string_view name) const override {
    absl::MutexLock lock(&mu_);
    auto it = snapshot_.find(std::string(name));
    if (it == snapshot_.end()) return std::nullopt;
    return it->second;
  }
  uint64_t AddRoundListener(RoundListener listener) override {
    absl::MutexLock lock(&mu_);
    listeners_.push_back(std::make_shared<RoundListener>(std::move(listener)));
    return listeners_.size();
  }
  void RemoveRoundListener(uint64_t) override {}

  void Set(const std::string& name, const google::protobuf::Message& value) {
    absl::MutexLock lock(&mu_);
    snapshot_[name].PackFrom(value);
  }
  void Remove(const std::string& name) {
    absl::MutexLock lock(&mu_);
    snapshot_.erase(name);
  }
  // Ends a round that listed `kinds` (default: all) and started at
  // `started` (default: now); returns once the listeners ran on the loop.
  void Round(std::optional<std::vector<std::string>> kinds = std::nullopt,
             absl::Time started = absl::Now()) {
    ObservationSource::Round round;
    round.started = started;
    round.kinds = kinds.has_value() ? *kinds : kinds_;
    std::vector<std::shared_ptr<RoundListener>> listeners;
    {
      absl::MutexLock lock(&mu_);
      listeners = listeners_;
    }
    absl::Notification ran;
    loop_->Post([&] {
      for (auto& l : listeners) (*l)(round);
      ran.Notify();
    });
    ran.WaitForNotification();
  }

 private:
  EventLoop* const loop_;
  const std::vector<std::string> kinds_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  std::map<std::string, google::protobuf::Any> snapshot_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<RoundListener>> listeners_ ABSL_GUARDED_BY(mu_);
};

constexpr char kTarget[] = "accounts/a/instances/web-1";

// A judge like an adapter's: done when the listed instance runs.
std::optional<absl::StatusOr<adapters::MutationProgress>> RunningIsDone(
    const google::protobuf::Message* observed) {
  const auto* instance = dynamic_cast<const v1::Instance*>(observed);
  if (instance == nullptr || instance->state() != v1::Instance::RUNNING) return std::nullopt;
  adapters::MutationProgress p;
  p.done = true;
  p.result.PackFrom(*instance);
  return p;
}

class ObservedOperationsTest : public OperationRunnerTest {
 protected:
  void SetUp() override {
    OperationRunnerTest::SetUp();
    provider_->observation_target = adapters::ObservedTarget{"Instance", kTarget};
    provider_->judge = RunningIsDone;
    provider_->hold = true;
  }
  OperationRunner& ObservedRunner(absl::Duration timeout = absl::Seconds(30),
                                  absl::Duration interval = absl::Seconds(1)) {
    source_ = std::make_unique<FakeObservations>(&loop_, std::vector<std::string>{"Instance"},
                                                 interval);
    OperationRunner& runner = Runner(timeout);
    runner.Observe("a", source_.get());
    return runner;
  }
  void WaitForPolls(int n) {
    for (int i = 0; i < 500 && provider_->polls.load() < n; ++i) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    ASSERT_EQ(provider_->polls.load(), n);
  }
  static v1::Instance Instance(v1::Instance::State state) {
    v1::Instance instance;
    instance.set_name(kTarget);
    instance.set_state(state);
    return instance;
  }
  std::unique_ptr<FakeObservations> source_;
};

TEST_F(ObservedOperationsTest, PendingOperationsWaitOnRoundsInsteadOfPolls) {
  OperationRunner& runner = ObservedRunner();
  std::vector<std::string> names;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Operation> op = Start(runner, Request("web-1", absl::StrCat("r", i)));
    ASSERT_TRUE(op.ok()) << op.status();
    names.push_back(op->name());
  }
  WaitForPolls(20);  // one targeted poll each at the start
  // Polled, they would have been polled ~15 more times each by now (5 ms
  // growing to 20 ms).
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(provider_->polls.load(), 20);
  source_->Set(kTarget, Instance(v1::Instance::PROVISIONING));
  source_->Round();
  EXPECT_EQ(provider_->judged.load(), 20);
  EXPECT_FALSE(runner.Get(names[0])->done());
  source_->Set(kTarget, Instance(v1::Instance::RUNNING));
  source_->Round();
  for (const std::string& name : names) {
    Operation done = WaitDone(runner, name, absl::Seconds(1));
    ASSERT_TRUE(done.done()) << name;
    v1::Instance instance;
    ASSERT_TRUE(done.response().UnpackTo(&instance));
    EXPECT_EQ(instance.state(), v1::Instance::RUNNING);  // the listed value
  }
  EXPECT_EQ(provider_->polls.load(), 20);
}

TEST_F(ObservedOperationsTest, ARoundThatStartedBeforeTheLastPollDoesNotJudge) {
  OperationRunner& runner = ObservedRunner();
  const absl::Time before = absl::Now();
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  WaitForPolls(1);
  absl::SleepFor(absl::Milliseconds(20));
  source_->Set(kTarget, Instance(v1::Instance::RUNNING));
  source_->Round(std::nullopt, before);  // its list may predate the work
  EXPECT_EQ(provider_->judged.load(), 0);
  EXPECT_FALSE(runner.Get(op->name())->done());
  source_->Round();
  EXPECT_TRUE(WaitDone(runner, op->name(), absl::Seconds(1)).done());
}

TEST_F(ObservedOperationsTest, AKindWhoseListFailedIsNotJudged) {
  OperationRunner& runner = ObservedRunner();
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  WaitForPolls(1);
  absl::SleepFor(absl::Milliseconds(20));
  source_->Round(std::vector<std::string>{});  // the instance list failed
  EXPECT_EQ(provider_->judged.load(), 0);
  EXPECT_FALSE(runner.Get(op->name())->done());
}

TEST_F(ObservedOperationsTest, WhatTheListCannotConfirmOneTargetedPollDecides) {
  OperationRunner& runner = ObservedRunner();
  provider_->judge = [](const google::protobuf::Message* observed)
      -> std::optional<absl::StatusOr<adapters::MutationProgress>> {
    if (observed != nullptr) return std::nullopt;
    adapters::MutationProgress p;  // gone from the list: ask the provider
    p.detail = "not listed";
    return p;
  };
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  WaitForPolls(1);
  absl::SleepFor(absl::Milliseconds(20));
  provider_->QueuePoll(absl::NotFoundError("instance web-1 is gone"));
  source_->Round();
  Operation done = WaitDone(runner, op->name(), absl::Seconds(1));
  ASSERT_TRUE(done.has_error());
  EXPECT_EQ(done.error().code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_EQ(provider_->polls.load(), 2);
}

TEST_F(ObservedOperationsTest, AFailureJudgedFromTheListEndsTheOperation) {
  OperationRunner& runner = ObservedRunner();
  provider_->judge = [](const google::protobuf::Message* observed)
      -> std::optional<absl::StatusOr<adapters::MutationProgress>> {
    return absl::FailedPreconditionError("entered the failure state FAILURE");
  };
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  WaitForPolls(1);
  absl::SleepFor(absl::Milliseconds(20));
  source_->Set(kTarget, Instance(v1::Instance::ERROR));
  source_->Round();
  Operation done = WaitDone(runner, op->name(), absl::Seconds(1));
  ASSERT_TRUE(done.has_error());
  EXPECT_EQ(done.error().code(), static_cast<int>(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(provider_->polls.load(), 1);
}

TEST_F(ObservedOperationsTest, OneTargetedPollNearTheDeadlineThenTheTimeout) {
  // Timeout 1 s, interval 50 ms: the near-deadline poll at 0.9 s.
  OperationRunner& runner = ObservedRunner(absl::Seconds(1), absl::Milliseconds(50));
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  WaitForPolls(1);
  absl::SleepFor(absl::Milliseconds(700));
  EXPECT_EQ(provider_->polls.load(), 1);
  Operation done = WaitDone(runner, op->name(), absl::Seconds(2));
  ASSERT_TRUE(done.has_error());
  EXPECT_EQ(done.error().code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(provider_->polls.load(), 2);
}

TEST_F(ObservedOperationsTest, AResumedOperationWaitsOnRoundsAfterItsFirstPoll) {
  OperationRunner& first = Runner();  // no observer
  absl::StatusOr<Operation> op = Start(first, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  first.Shutdown();
  absl::SleepFor(absl::Milliseconds(50));
  const int polls = provider_->polls.load();
  OperationRunner& second = ObservedRunner();
  second.ResumeUnfinished();
  WaitForPolls(polls + 1);
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(provider_->polls.load(), polls + 1);
  source_->Set(kTarget, Instance(v1::Instance::RUNNING));
  source_->Round();
  EXPECT_TRUE(WaitDone(second, op->name(), absl::Seconds(1)).done());
}

TEST_F(ObservedOperationsTest, ATargetOfAKindNotObservedIsPolledAsBefore) {
  provider_->observation_target = adapters::ObservedTarget{"Volume", "accounts/a/volumes/v"};
  OperationRunner& runner = ObservedRunner();
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_GT(provider_->polls.load(), 5);
  provider_->hold = false;
  EXPECT_TRUE(WaitDone(runner, op->name()).done());
}

TEST_F(ObservedOperationsTest, AnObserverThatListsLessThanTwiceWithinTheTimeoutIsNotWaitedOn) {
  // Timeout 1 s, interval 500 ms: two intervals reach the timeout (e.g.
  // observe_interval_seconds set very large), so the observer could not
  // help before the deadline: the operation is polled with backoff.
  OperationRunner& runner = ObservedRunner(absl::Seconds(1), absl::Milliseconds(500));
  absl::StatusOr<Operation> op = Start(runner, Request("web-1", ""));
  ASSERT_TRUE(op.ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_GT(provider_->polls.load(), 5);
  source_->Set(kTarget, Instance(v1::Instance::RUNNING));
  source_->Round();
  EXPECT_EQ(provider_->judged.load(), 0);  // not watched: rounds do not judge it
  provider_->hold = false;
  EXPECT_TRUE(WaitDone(runner, op->name()).done());
}

}  // namespace
}  // namespace cloudplane::service
