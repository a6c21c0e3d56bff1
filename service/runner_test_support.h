// A scriptable Provider for tests of the operation runner: it answers from
// its own thread, marked as a transport thread (base/thread_role.h), as the
// HTTP adapters do, so a runner that touched the store in a provider's
// completion would abort the test.
#ifndef CLOUDPLANE_SERVICE_RUNNER_TEST_SUPPORT_H_
#define CLOUDPLANE_SERVICE_RUNNER_TEST_SUPPORT_H_

#include <atomic>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "adapters/provider.h"
#include "base/thread_role.h"

namespace cloudplane::service::testing {

class ScriptedProvider : public adapters::Provider {
 public:
  ScriptedProvider() {
    info_.kind = "scripted";
    info_.watch_source = adapters::WatchSource::kPoll;
    info_.supported_methods = {adapters::FullMethodName("ComputeService", "CreateInstance")};
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedProvider() override {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  const adapters::ProviderInfo& Info() const override { return info_; }

  // What CreateInstance answers: the queued answers first, then
  // `create_answer` (default: pending with token "t").
  absl::StatusOr<adapters::MutationProgress> create_answer = Pending();
  void QueueCreate(absl::StatusOr<adapters::MutationProgress> answer) {
    absl::MutexLock lock(&mu_);
    creates_.push_back(std::move(answer));
  }
  // What the polls answer, in order; when empty, a finished Instance.
  void QueuePoll(absl::StatusOr<adapters::MutationProgress> answer) {
    absl::MutexLock lock(&mu_);
    polls_.push_back(std::move(answer));
  }

  void CreateInstance(const adapters::CallContext& ctx, const v1::CreateInstanceRequest& request,
                      adapters::Callback<adapters::MutationProgress> done) override {
    creates.fetch_add(1);
    absl::StatusOr<adapters::MutationProgress> answer = create_answer;
    {
      absl::MutexLock lock(&mu_);
      last_operation_ = ctx.operation;
      if (!creates_.empty()) {
        answer = std::move(creates_.front());
        creates_.pop_front();
      }
    }
    Answer(std::move(answer), std::move(done));
  }

  // The methods CancelMutation serves (set before the runner asks), and
  // what it answers.
  std::vector<std::string> cancellable;
  absl::StatusOr<adapters::MutationProgress> cancel_answer = CancelledAtProvider();
  std::vector<std::string> CancellableMethods() const override { return cancellable; }
  void CancelMutation(const adapters::CallContext& ctx, const std::string& method,
                      const std::string& poll_token,
                      adapters::Callback<adapters::MutationProgress> done) override {
    cancels.fetch_add(1);
    {
      absl::MutexLock lock(&mu_);
      last_cancel_ = method + " " + poll_token;
    }
    Answer(cancel_answer, std::move(done));
  }
  // "<method> <poll token>" of the last CancelMutation.
  std::string last_cancel() {
    absl::MutexLock lock(&mu_);
    return last_cancel_;
  }
  static adapters::MutationProgress CancelledAtProvider() {
    adapters::MutationProgress p;
    p.done = true;
    p.detail = "deleted what the create made";
    return p;
  }
  // While set, polls answer pending (the queued answers first).
  std::atomic<bool> hold{false};

  void PollOperation(const adapters::CallContext& ctx, const std::string& poll_token,
                     adapters::Callback<adapters::MutationProgress> done) override {
    polls.fetch_add(1);
    absl::StatusOr<adapters::MutationProgress> answer =
        hold.load() ? absl::StatusOr<adapters::MutationProgress>(Pending(poll_token))
                    : absl::StatusOr<adapters::MutationProgress>(FinishedInstance());
    {
      absl::MutexLock lock(&mu_);
      last_token_ = poll_token;
      if (!polls_.empty()) {
        answer = std::move(polls_.front());
        polls_.pop_front();
      }
    }
    Answer(std::move(answer), std::move(done));
  }

  // Observation (Provider::ObservationTarget / ProgressFromObservation):
  // the target every token maps to (unset: lists cannot judge), and the
  // judgement of the listed value (null: absent). Set before the runner
  // starts; `judged` counts the calls.
  std::optional<adapters::ObservedTarget> observation_target;
  std::function<std::optional<absl::StatusOr<adapters::MutationProgress>>(
      const google::protobuf::Message*)>
      judge;
  mutable std::atomic<int> judged{0};
  std::optional<adapters::ObservedTarget> ObservationTarget(
      const std::string& poll_token) const override {
    return observation_target;
  }
  std::optional<absl::StatusOr<adapters::MutationProgress>> ProgressFromObservation(
      const std::string& poll_token, const google::protobuf::Message* observed) const override {
    judged.fetch_add(1);
    if (!judge) return std::nullopt;
    return judge(observed);
  }

  std::string last_token() {
    absl::MutexLock lock(&mu_);
    return last_token_;
  }
  // The CallContext::operation of the last CreateInstance call.
  std::string last_operation() {
    absl::MutexLock lock(&mu_);
    return last_operation_;
  }

  static adapters::MutationProgress Pending(std::string token = "t") {
    adapters::MutationProgress p;
    p.poll_token = std::move(token);
    p.detail = "working";
    return p;
  }
  static adapters::MutationProgress FinishedInstance() {
    adapters::MutationProgress p;
    p.done = true;
    v1::Instance instance;
    instance.set_name("accounts/a/instances/web-1");
    instance.set_state(v1::Instance::RUNNING);
    p.result.PackFrom(instance);
    return p;
  }

  std::atomic<int> creates{0};
  std::atomic<int> polls{0};
  std::atomic<int> cancels{0};

 private:
  void Answer(absl::StatusOr<adapters::MutationProgress> answer,
              adapters::Callback<adapters::MutationProgress> done) {
    absl::MutexLock lock(&mu_);
    work_.emplace_back(std::move(answer), std::move(done));
  }

  void Run() {
    MarkTransportThread("http");
    for (;;) {
      std::pair<absl::StatusOr<adapters::MutationProgress>,
                adapters::Callback<adapters::MutationProgress>>
          item{absl::UnknownError(""), nullptr};
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](ScriptedProvider* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
              return p->stop_ || !p->work_.empty();
            },
            this));
        if (work_.empty()) return;
        item = std::move(work_.front());
        work_.pop_front();
      }
      std::move(item.second)(std::move(item.first));
    }
  }

  adapters::ProviderInfo info_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<absl::StatusOr<adapters::MutationProgress>> polls_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::StatusOr<adapters::MutationProgress>> creates_ ABSL_GUARDED_BY(mu_);
  std::string last_operation_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<absl::StatusOr<adapters::MutationProgress>,
                       adapters::Callback<adapters::MutationProgress>>>
      work_ ABSL_GUARDED_BY(mu_);
  std::string last_token_ ABSL_GUARDED_BY(mu_);
  std::string last_cancel_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace cloudplane::service::testing

#endif  // CLOUDPLANE_SERVICE_RUNNER_TEST_SUPPORT_H_
