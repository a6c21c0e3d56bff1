// Durable long-running operations.
//
// Start() records an Operation in the store before anything reaches the
// provider, makes the provider call, and answers once the provider has taken
// (or refused) the request; the runner then polls on the event loop:
//
//   accepted  --provider call-->  submitted --PollOperation...-->  done
//   (poll_token = the request)    (poll_token = the adapter's)
//
// Waiting on observations: once a submitted operation's first poll says
// "not yet", and its account has an observer (Observe) listing the kind of
// the operation's target (Provider::ObservationTarget), the runner stops
// polling it. After each observer round that listed that kind completely
// and started after the operation's last poll, the adapter judges the
// operation from the listed value (Provider::ProgressFromObservation): done,
// failed, not yet, or "poll once now" (the list cannot confirm it). Near the
// deadline (its last 10%, at least two observe intervals) one targeted poll
// runs; at the deadline the operation fails with OPERATION_TIMEOUT as when
// polled. So N pending operations on an account cost one list per
// collection per interval plus one poll each at their start, not N polls
// every few seconds. Everything about it runs on the event loop.
//
// Both phases are persisted, so after a crash ResumeUnfinished() re-drives
// accepted operations (adapters make mutations idempotent per operation
// name) and resumes polling submitted ones. An ambiguous provider answer
// (see Start) never ends an operation: the step (call or poll) is tried
// again with backoff until the deadline, whose error then quotes the last
// answer. Provider answers are recorded on the event loop, never on the
// transport thread that delivered them; the one exception is the first
// answer to a Start that the provider gives at once on the start thread
// (a local provider such as the sandbox), recorded there so that concurrent
// Starts share commits (group commit, store/store.h). Start itself only
// fingerprints the request on the calling thread and queues the rest for
// the start threads (Options::start_threads). A poll that changes
// nothing (same status detail, poll token and provider operation) writes
// nothing: a pending operation costs no fsync per poll. A repeated request_id returns
// the first Operation instead of starting another one, also after a restart.
//
// Thread-safety: all methods may be called from any thread.
#ifndef CLOUDPLANE_SERVICE_OPERATION_RUNNER_H_
#define CLOUDPLANE_SERVICE_OPERATION_RUNNER_H_

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/provider.h"
#include "base/event_loop.h"
#include "google/longrunning/operations.pb.h"
#include "service/accounts.h"
#include "service/observation_source.h"
#include "service/watch_hub.h"
#include "store/store.h"

namespace cloudplane::service {

class OperationRunner {
 public:
  struct Options {
    // How long an operation may run before it fails with DEADLINE_EXCEEDED.
    absl::Duration operation_timeout = absl::Minutes(10);
    // Polling backoff: first interval, growth factor, cap.
    absl::Duration first_poll = absl::Milliseconds(100);
    double poll_growth = 1.5;
    absl::Duration max_poll = absl::Seconds(5);
    // Threads that carry out Start: the operation's insert and, for a
    // provider that answers at once (the sandbox), its transaction and the
    // recording of its answer. They wait on store commits, so concurrent
    // Starts share them (group commit) instead of holding gRPC's callback
    // threads (about one per core) one commit at a time. A fixed number: it
    // does not grow with the calls in flight, which queue for a thread.
    int start_threads = 16;
  };

  OperationRunner(store::Store* store, EventLoop* loop, WatchHub* hub,
                  const AccountTable* accounts, Options options);
  // Runs the Starts still queued, then joins the start threads.
  ~OperationRunner();

  // Records and starts the mutation `method` (full name) on `account`, or
  // finds the operation already recorded for the same request_id. `request`
  // is the whole request message; `target` is the resource the operation
  // acts on. `done` gets the Operation once the provider accepted the
  // request (it may already be finished), or the provider's refusal (e.g.
  // INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS): a refused request leaves no
  // operation behind, so it can be corrected and retried with the same
  // request_id. When the provider's answer is ambiguous (UNAVAILABLE,
  // DEADLINE_EXCEEDED, INTERNAL, …: the request may have been applied),
  // `done` gets the Operation, not done, and the runner calls the mutation
  // again for the same operation until it is accepted, refused, or the
  // operation's deadline passes. ALREADY_EXISTS when the request_id was used
  // for a different request. `principal` (the authenticated caller, empty
  // without authentication) is recorded in the operation's metadata.
  void Start(const std::string& method, const std::string& account, const std::string& target,
             const google::protobuf::Message& request, const std::string& request_id,
             const std::string& principal,
             adapters::Callback<google::longrunning::Operation> done);

  // Picks up every unfinished operation in the store (call once at start-up,
  // after the accounts exist).
  void ResumeUnfinished();

  // Completes `account`'s pending operations from `source`'s rounds (see the
  // file comment) from now on. `source` outlives the runner's use of it:
  // call before the loop runs its rounds and keep it until Shutdown. One
  // source per account; a second call replaces the first.
  void Observe(const std::string& account, ObservationSource* source);

  // What a name that matches no operation answers (NOT_FOUND). The gate
  // answers the same for an operation in an account the caller has no role
  // on, so operation names cannot be probed.
  static absl::Status NotFound(absl::string_view name);

  // google.longrunning.Operations semantics over the store.
  absl::StatusOr<google::longrunning::Operation> Get(const std::string& name);
  absl::StatusOr<store::OperationPage> List(const store::ListOperationsQuery& query);
  // Cancels a running operation at its provider, then `done` gets the
  // answer (on the event loop or the calling thread). When the account's
  // Provider lists the method in CancellableMethods and the operation is
  // submitted (the provider took the request), the runner stops polling and
  // calls Provider::CancelMutation with the operation's poll token; once the
  // provider has stopped or undone the work the operation ends CANCELLED
  // (reason OPERATION_CANCELLED) with `cancel_requested` set and its
  // `status_detail` saying what the provider did, and `done` gets OK. If the
  // provider refuses the undo, `done` gets its status and the operation goes
  // on. FAILED_PRECONDITION with CANCEL_UNSUPPORTED, the operation going on
  // untouched, when the provider cannot cancel the method or has not yet
  // confirmed it took the request; FAILED_PRECONDITION when the operation is
  // done or a cancel of it is under way; NOT_FOUND when there is none.
  void Cancel(const std::string& name, absl::AnyInvocable<void(absl::Status) &&> done);
  // Deletes a finished operation's record. FAILED_PRECONDITION while it runs.
  absl::Status Delete(const std::string& name);
  // Calls `done` with the operation once it is done or at `until`, whichever
  // comes first (the operation as it is then).
  void Wait(const std::string& name, absl::Time until,
            adapters::Callback<google::longrunning::Operation> done);

  // Stops scheduling provider calls; waiters are answered with the current
  // state. Operations stay recorded and resume at the next start.
  void Shutdown();

 private:
  struct Waiter {
    adapters::Callback<google::longrunning::Operation> done;
    TimerId timer = 0;
  };

  using Accepted = adapters::Callback<google::longrunning::Operation>;
  // Start's work on a start thread: records the operation and drives it.
  void Begin(store::OperationRecord record, std::string request_id, Accepted done);
  void StartThreadMain();
  // `accepted`, when set, is answered with the first provider response.
  // `attempt` counts the calls of this step so far (backoff after the next
  // ambiguous answer).
  void Drive(store::OperationRecord record, Accepted accepted, int attempt);
  // Calls the mutation again (same operation name) after an ambiguous answer.
  void ScheduleRedrive(const std::string& name, int attempt);
  // Records why the operation waits, in its status_detail.
  void NoteWaiting(store::OperationRecord& record, std::string detail);
  // The last ambiguous answer of each waiting operation, for the timeout's
  // message.
  void Remember(const std::string& name, const absl::Status& status);
  void Forget(const std::string& name);
  absl::Status TimedOut(const std::string& name, absl::string_view what);
  // Hands a provider's answer to OnProgress on the event loop.
  void PostProgress(const std::string& name, int attempt,
                    absl::StatusOr<adapters::MutationProgress> progress, Accepted accepted);
  // Runs on the event loop only.
  void OnProgress(const std::string& name, int attempt,
                  absl::StatusOr<adapters::MutationProgress> progress,
                  Accepted accepted = nullptr);
  // The provider's answer to CancelMutation, on the event loop.
  void OnCancelled(const std::string& name, absl::StatusOr<adapters::MutationProgress> progress,
                   absl::AnyInvocable<void(absl::Status) &&> done);
  void SchedulePoll(const std::string& name, int attempt);
  // After a poll said "not yet": waits on the account's observer when it
  // can judge the operation (returns true), else false.
  bool WaitOnObservations(const store::OperationRecord& record, int attempt);
  // An observer round of `account` finished (on the loop).
  void OnRound(const std::string& account, const ObservationSource::Round& round);
  // The watch of `name` ends (finished, or a targeted poll takes over).
  void Unwatch(const std::string& name);
  void Poll(const std::string& name, int attempt);
  void Finish(const std::string& name, const absl::StatusOr<google::protobuf::Any>& result);
  void NotifyWaiters(const google::longrunning::Operation& op);
  absl::Time DeadlineOf(const store::OperationRecord& record) const;
  adapters::CallContext ContextFor(const store::OperationRecord& record,
                                   absl::Time call_deadline) const;
  void PublishResult(const store::OperationRecord& record, const google::protobuf::Any& result);
  // True for providers (watch_source "local") that publish every change they
  // make themselves, so results must not be published twice.
  bool ReportsOwnChanges(const std::string& account) const;

  store::Store* const store_;
  EventLoop* const loop_;
  WatchHub* const hub_;
  const AccountTable* const accounts_;
  const Options options_;

  absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Operations no longer driven: cancelled, or being cancelled at the
  // provider (answers of polls in flight are then dropped).
  absl::flat_hash_set<std::string> cancelled_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Status> last_error_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<uint64_t>> waiter_ids_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // Operations waiting on their account's observer.
  struct Watched {
    std::string account;
    std::string poll_token;
    adapters::ObservedTarget target;
    // Only rounds started after this judge it (older lists may predate the
    // work).
    absl::Time since;
    int attempt = 0;
    // The near-deadline poll, or the deadline itself.
    TimerId timer = 0;
  };
  absl::flat_hash_map<std::string, ObservationSource*> sources_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Watched> watched_ ABSL_GUARDED_BY(mu_);
  uint64_t next_waiter_ ABSL_GUARDED_BY(mu_) = 1;

  // The start threads (Options::start_threads) and their queue.
  absl::Mutex start_mu_;
  std::deque<absl::AnyInvocable<void() &&>> start_queue_ ABSL_GUARDED_BY(start_mu_);
  bool start_stop_ ABSL_GUARDED_BY(start_mu_) = false;
  std::vector<std::thread> start_threads_;
};

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_OPERATION_RUNNER_H_
