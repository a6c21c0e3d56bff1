#include "service/operation_runner.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/kit/progress.h"
#include "adapters/dispatch.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/thread_role.h"
#include "cloudplane/v1/common.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/util/time_util.h"
#include "service/operation_runner_internal.h"
#include "service/status_conversion.h"

namespace cloudplane::service {
namespace {

using google::longrunning::Operation;
using google::protobuf::util::TimeUtil;

constexpr char kSubmitted[] = "submitted";
// A single provider call (one poll) never waits longer than this, so a hung
// provider cannot stall an operation past its next poll.
constexpr absl::Duration kMaxCallTime = absl::Seconds(30);

v1::OperationMetadata MetadataOf(const Operation& op) {
  v1::OperationMetadata metadata;
  op.metadata().UnpackTo(&metadata);
  return metadata;
}

// A refusal (the provider said no: nothing was done) drops a just-accepted
// operation or ends a running one. An ambiguous answer (kit::IsAmbiguous: a
// timeout, a reset or lost answer, a 5xx, an unparsable answer — the request
// may have been applied) never does: the operation is kept and the step is
// tried again, and an adapter's re-drive looks for its own work (by the
// operation's tag) before it would send a create again.
using adapters::kit::IsAmbiguous;

}  // namespace

void OperationRunner::ResumeUnfinished() {
  absl::StatusOr<std::vector<store::OperationRecord>> records = store_->ListUnfinishedOperations();
  if (!records.ok()) {
    std::cerr << "cloudplaned: cannot list unfinished operations: " << records.status() << "\n";
    return;
  }
  for (store::OperationRecord& record : *records) {
    if (record.phase == kSubmitted) {
      SchedulePoll(record.op.name(), 0);
    } else {
      loop_->Post([this, record = std::move(record)]() mutable {
        Drive(std::move(record), nullptr, 0);
      });
    }
  }
}

absl::Time OperationRunner::DeadlineOf(const store::OperationRecord& record) const {
  return record.create_time + options_.operation_timeout;
}

adapters::CallContext OperationRunner::ContextFor(const store::OperationRecord& record,
                                                  absl::Time call_deadline) const {
  adapters::CallContext ctx;
  ctx.account = record.account;
  ctx.deadline = call_deadline;
  ctx.request_id = record.request_id;
  ctx.operation = record.op.name();
  return ctx;
}

void OperationRunner::Drive(store::OperationRecord record, Accepted accepted, int attempt) {
  const std::string name = record.op.name();
  auto fail = [&](const absl::Status& status) {
    if (accepted) {
      OnProgress(name, attempt, status, std::move(accepted));
    } else {
      Finish(name, status);
    }
  };
  if (!accepted) {
    absl::MutexLock lock(&mu_);
    if (shutting_down_ || cancelled_.contains(name)) return;
  }
  if (absl::Now() > DeadlineOf(record)) {
    fail(TimedOut(name, "the operation did not start"));
    return;
  }
  absl::StatusOr<adapters::Provider*> provider = accounts_->Provider(record.account, "account");
  if (!provider.ok()) {
    fail(provider.status());
    return;
  }
  google::protobuf::Any request;
  if (!request.ParseFromString(record.poll_token)) {
    fail(absl::DataLossError("the stored request of this operation is unreadable"));
    return;
  }
  adapters::CallContext ctx =
      ContextFor(record, std::min(DeadlineOf(record), absl::Now() + kMaxCallTime));
  // The callback is moved into the dispatch; keep a handle for the case where
  // dispatch fails before calling it.
  auto shared_accepted = std::make_shared<Accepted>(std::move(accepted));
  // A client's Start whose provider answers at once, on this thread, before
  // DispatchMutation returns (the sandbox: its mutations are local
  // transactions), has the answer recorded right here instead of on the
  // loop. This thread (a gRPC one) waits for those commits anyway; recorded
  // here, the commits of concurrent Starts share fsyncs (the store's group
  // commit), where on the one loop thread they would queue one by one.
  // Nothing else acts on the operation before its caller has the answer.
  struct Dispatch {
    std::thread::id thread = std::this_thread::get_id();
    std::atomic<bool> running{true};
  };
  auto dispatch = std::make_shared<Dispatch>();
  absl::Status dispatched = adapters::DispatchMutation(
      record.method, **provider, ctx, request,
      [this, name, attempt, shared_accepted,
       dispatch](absl::StatusOr<adapters::MutationProgress> progress) {
        if (*shared_accepted && dispatch->running.load() &&
            dispatch->thread == std::this_thread::get_id() && TransportThreadName() == nullptr &&
            !loop_->IsLoopThread()) {
          OnProgress(name, attempt, std::move(progress), std::move(*shared_accepted));
          return;
        }
        PostProgress(name, attempt, std::move(progress), std::move(*shared_accepted));
      });
  dispatch->running.store(false);
  if (!dispatched.ok()) {
    accepted = std::move(*shared_accepted);
    fail(dispatched);
  }
}

void OperationRunner::PostProgress(const std::string& name, int attempt,
                                   absl::StatusOr<adapters::MutationProgress> progress,
                                   Accepted accepted) {
  // Adapters answer on whatever thread their transport runs (the HTTP
  // thread, mostly), which must never wait on SQLite: the progress is
  // recorded on the loop.
  auto shared_accepted = std::make_shared<Accepted>(std::move(accepted));
  bool posted = loop_->Post([this, name, attempt, progress = std::move(progress),
                             shared_accepted]() mutable {
    OnProgress(name, attempt, std::move(progress), std::move(*shared_accepted));
  });
  if (!posted && *shared_accepted) {
    // The loop is shutting down: the operation stays recorded as it was and
    // resumes at the next start, where the same request_id finds it.
    std::move(*shared_accepted)(WithErrorInfo(
        absl::UnavailableError("the server is shutting down; retry with the same request_id"),
        reasons::kServerShuttingDown));
  }
}

void OperationRunner::OnProgress(const std::string& name, int attempt,
                                 absl::StatusOr<adapters::MutationProgress> progress,
                                 Accepted accepted) {
  if (!accepted) {
    // A poll that was in flight when a cancel started: the cancel decides.
    absl::MutexLock lock(&mu_);
    if (cancelled_.contains(name)) return;
  }
  if (accepted && !progress.ok() && !IsAmbiguous(progress.status())) {
    // Refused at once: nothing was done, so nothing is kept; the caller gets
    // the provider's status and may retry with the same request_id.
    if (absl::Status status = store_->DeleteOperation(name); !status.ok()) {
      std::cerr << "cloudplaned: cannot drop refused operation " << name << ": " << status
                << "\n";
    }
    std::move(accepted)(progress.status());
    return;
  }
  if (accepted) {
    absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
    if (record.ok()) {
      hub_->Publish(record->account, v1::WatchResponse::CREATED, name, record->op,
                    adapters::WatchSource::kLocal);
    }
  }
  // Answers the caller with the operation as stored after this progress.
  auto answer = [&] {
    if (accepted) std::move(accepted)(Get(name));
  };
  if (!progress.ok()) {
    if (!IsAmbiguous(progress.status())) {
      Finish(name, progress.status());
      return;
    }
    // The provider may or may not have done it: keep the operation (the
    // caller gets it, and the same request_id finds it), note why it waits,
    // and try the same step again until the operation's deadline.
    Remember(name, progress.status());
    absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
    if (!record.ok() || record->op.done()) {
      answer();
      return;
    }
    const bool submitted = record->phase == kSubmitted;
    NoteWaiting(*record, absl::StrCat(submitted ? "polling again after: "
                                                : "checking whether the provider did it after: ",
                                      progress.status().message()));
    answer();
    if (submitted) {
      SchedulePoll(name, attempt + 1);
    } else {
      ScheduleRedrive(name, attempt + 1);
    }
    return;
  }
  Forget(name);
  if (progress->done) {
    Finish(name, progress->result);
    answer();
    return;
  }
  absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
  if (!record.ok() || record->op.done()) {
    answer();
    return;
  }
  // The mutation's own answer is followed by one targeted poll as before;
  // a poll's "not yet" may hand the operation to the observer.
  const bool polled = record->phase == kSubmitted;
  v1::OperationMetadata metadata = MetadataOf(record->op);
  // What clients see changed (published to watchers) ...
  const bool changed = metadata.status_detail() != progress->detail ||
                       record->phase != kSubmitted;
  // ... or only what the runner keeps to resume: either is written. A poll
  // that changes neither (the common "still working") writes nothing, so
  // a pending operation costs no fsync per poll (issue 15).
  const bool rewrite =
      changed || record->poll_token != progress->poll_token ||
      (!progress->provider_operation.empty() &&
       metadata.provider_operation() != progress->provider_operation);
  if (rewrite) {
    metadata.set_status_detail(progress->detail);
    if (!progress->provider_operation.empty()) {
      metadata.set_provider_operation(progress->provider_operation);
    }
    *metadata.mutable_update_time() = TimeUtil::GetCurrentTime();
    SetMetadata(record->op, metadata);
    record->phase = kSubmitted;
    record->poll_token = progress->poll_token;
    if (absl::Status status = store_->UpdateOperation(*record); !status.ok()) {
      std::cerr << "cloudplaned: cannot record progress of " << name << ": " << status << "\n";
    }
  }
  if (changed) {
    hub_->Publish(record->account, v1::WatchResponse::UPDATED, name, record->op, adapters::WatchSource::kLocal);
  }
  answer();
  if (polled && WaitOnObservations(*record, attempt + 1)) return;
  SchedulePoll(name, attempt + 1);
}

void OperationRunner::Observe(const std::string& account, ObservationSource* source) {
  {
    absl::MutexLock lock(&mu_);
    sources_[account] = source;
  }
  source->AddRoundListener([this, account](const ObservationSource::Round& round) {
    OnRound(account, round);
  });
}

bool OperationRunner::WaitOnObservations(const store::OperationRecord& record, int attempt) {
  const std::string& name = record.op.name();
  ObservationSource* source = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_ || cancelled_.contains(name)) return false;
    auto it = sources_.find(record.account);
    if (it == sources_.end()) return false;
    source = it->second;
  }
  absl::StatusOr<adapters::Provider*> provider = accounts_->Provider(record.account, "account");
  if (!provider.ok()) return false;
  std::optional<adapters::ObservedTarget> target =
      (*provider)->ObservationTarget(record.poll_token);
  if (!target.has_value()) return false;
  const std::vector<std::string> kinds = source->Kinds();
  if (std::find(kinds.begin(), kinds.end(), target->kind) == kinds.end()) return false;
  // An observer that lists less than twice within the operation's timeout
  // cannot help before the deadline (e.g. observe_interval_seconds set very
  // large to turn it off in effect): poll as before.
  if (2 * source->interval() >= options_.operation_timeout) return false;
  // One targeted poll near the deadline (the last 10%, at least two
  // rounds), then the deadline itself: the observer may be failing.
  const absl::Time now = absl::Now();
  const absl::Time deadline = DeadlineOf(record);
  const absl::Time near =
      deadline - std::max(options_.operation_timeout / 10, 2 * source->interval());
  const absl::Time wake = now < near ? near : deadline;
  Unwatch(name);
  Watched watched;
  watched.account = record.account;
  watched.poll_token = record.poll_token;
  watched.target = *std::move(target);
  watched.since = now;
  watched.attempt = attempt;
  watched.timer = loop_->RunAt(wake, [this, name, attempt] {
    {
      absl::MutexLock lock(&mu_);
      auto it = watched_.find(name);
      if (it == watched_.end()) return;
      it->second.timer = 0;
      watched_.erase(it);
    }
    // Past the deadline, Poll fails the operation with OPERATION_TIMEOUT.
    Poll(name, attempt);
  });
  if (watched.timer == 0) return false;  // the loop is shutting down
  absl::MutexLock lock(&mu_);
  watched_[name] = std::move(watched);
  return true;
}

void OperationRunner::Unwatch(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = watched_.find(name);
  if (it == watched_.end()) return;
  if (it->second.timer != 0) loop_->Cancel(it->second.timer);
  watched_.erase(it);
}

void OperationRunner::OnRound(const std::string& account,
                              const ObservationSource::Round& round) {
  struct Candidate {
    std::string name;
    Watched watched;
  };
  std::vector<Candidate> candidates;
  ObservationSource* source = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    auto s = sources_.find(account);
    if (s == sources_.end()) return;
    source = s->second;
    for (const auto& [name, watched] : watched_) {
      if (watched.account != account || watched.since > round.started) continue;
      if (cancelled_.contains(name)) continue;
      if (std::find(round.kinds.begin(), round.kinds.end(), watched.target.kind) ==
          round.kinds.end()) {
        continue;
      }
      candidates.push_back({name, watched});
    }
  }
  if (candidates.empty()) return;
  absl::StatusOr<adapters::Provider*> provider = accounts_->Provider(account, "account");
  if (!provider.ok()) return;
  for (Candidate& c : candidates) {
    std::optional<google::protobuf::Any> any = source->LastObserved(c.watched.target.name);
    std::unique_ptr<google::protobuf::Message> observed;
    if (any.has_value()) {
      std::string type_name(any->type_url().substr(any->type_url().rfind('/') + 1));
      const auto* descriptor =
          google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
      if (descriptor == nullptr) continue;
      observed.reset(
          google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor)->New());
      if (!any->UnpackTo(observed.get())) continue;
    }
    std::optional<absl::StatusOr<adapters::MutationProgress>> judged =
        (*provider)->ProgressFromObservation(c.watched.poll_token, observed.get());
    if (!judged.has_value()) continue;
    Unwatch(c.name);
    if (judged->ok() && !(*judged)->done) {
      // The list cannot confirm it: one targeted poll decides, and a "not
      // yet" from it hands the operation back to the observer.
      Poll(c.name, c.watched.attempt);
      continue;
    }
    OnProgress(c.name, c.watched.attempt, *std::move(judged));
  }
}

void OperationRunner::SchedulePoll(const std::string& name, int attempt) {
  double factor = std::pow(options_.poll_growth, std::min(attempt, 30));
  absl::Duration delay = std::min(options_.first_poll * factor, options_.max_poll);
  loop_->RunAfter(delay, [this, name, attempt] { Poll(name, attempt); });
}

void OperationRunner::Poll(const std::string& name, int attempt) {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_ || cancelled_.contains(name)) return;
  }
  absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
  if (!record.ok() || record->op.done()) return;
  absl::Time deadline = DeadlineOf(*record);
  if (absl::Now() > deadline) {
    Finish(name, TimedOut(name, "the operation did not finish"));
    return;
  }
  absl::StatusOr<adapters::Provider*> provider = accounts_->Provider(record->account, "account");
  if (!provider.ok()) {
    Finish(name, provider.status());
    return;
  }
  adapters::CallContext ctx = ContextFor(*record, std::min(deadline, absl::Now() + kMaxCallTime));
  (*provider)->PollOperation(ctx, record->poll_token,
                             [this, name, attempt](absl::StatusOr<adapters::MutationProgress> p) {
                               PostProgress(name, attempt, std::move(p), nullptr);
                             });
}

void OperationRunner::ScheduleRedrive(const std::string& name, int attempt) {
  double factor = std::pow(options_.poll_growth, std::min(attempt, 30));
  absl::Duration delay = std::min(options_.first_poll * factor, options_.max_poll);
  loop_->RunAfter(delay, [this, name, attempt] {
    {
      absl::MutexLock lock(&mu_);
      if (shutting_down_ || cancelled_.contains(name)) return;
    }
    absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
    if (!record.ok() || record->op.done()) return;
    Drive(*std::move(record), nullptr, attempt);
  });
}

void OperationRunner::NoteWaiting(store::OperationRecord& record, std::string detail) {
  v1::OperationMetadata metadata = MetadataOf(record.op);
  if (metadata.status_detail() == detail) return;
  metadata.set_status_detail(std::move(detail));
  *metadata.mutable_update_time() = TimeUtil::GetCurrentTime();
  SetMetadata(record.op, metadata);
  if (absl::Status status = store_->UpdateOperation(record); !status.ok()) {
    std::cerr << "cloudplaned: cannot record progress of " << record.op.name() << ": " << status
              << "\n";
  }
}

void OperationRunner::Remember(const std::string& name, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  last_error_[name] = status;
}

void OperationRunner::Forget(const std::string& name) {
  absl::MutexLock lock(&mu_);
  last_error_.erase(name);
}

absl::Status OperationRunner::TimedOut(const std::string& name, absl::string_view what) {
  absl::Status last;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = last_error_.find(name); it != last_error_.end()) last = it->second;
  }
  std::map<std::string, std::string> metadata;
  std::string message = absl::StrCat(what, " within ",
                                     absl::FormatDuration(options_.operation_timeout));
  if (!last.ok()) {
    absl::StrAppend(&message, "; the provider's last answer: ", last.message());
    if (auto info = GetErrorInfo(last)) metadata["lastReason"] = info->reason();
  }
  return WithErrorInfo(absl::DeadlineExceededError(message), reasons::kOperationTimeout,
                       metadata);
}

void OperationRunner::Finish(const std::string& name,
                             const absl::StatusOr<google::protobuf::Any>& result) {
  Unwatch(name);
  absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
  if (!record.ok()) {
    std::cerr << "cloudplaned: operation " << name << " vanished: " << record.status() << "\n";
    return;
  }
  Forget(name);
  if (record->op.done()) return;
  Operation& op = record->op;
  op.set_done(true);
  if (result.ok()) {
    *op.mutable_response() = *result;
  } else {
    *op.mutable_error() = ToRpcStatus(result.status());
  }
  v1::OperationMetadata metadata = MetadataOf(op);
  *metadata.mutable_update_time() = TimeUtil::GetCurrentTime();
  *metadata.mutable_end_time() = metadata.update_time();
  metadata.set_status_detail(result.ok() ? "done" : std::string(result.status().message()));
  SetMetadata(op, metadata);
  record->poll_token.clear();
  if (absl::Status status = store_->UpdateOperation(*record); !status.ok()) {
    std::cerr << "cloudplaned: cannot record the end of " << name << ": " << status << "\n";
    return;
  }
  hub_->Publish(record->account, v1::WatchResponse::UPDATED, name, op, adapters::WatchSource::kLocal);
  if (result.ok() && !ReportsOwnChanges(record->account)) PublishResult(*record, *result);
  NotifyWaiters(op);
}

bool OperationRunner::ReportsOwnChanges(const std::string& account) const {
  absl::StatusOr<adapters::Provider*> provider = accounts_->Provider(account, "account");
  return provider.ok() && (*provider)->Info().watch_source == adapters::WatchSource::kLocal;
}

void OperationRunner::PublishResult(const store::OperationRecord& record,
                                    const google::protobuf::Any& result) {
  // For providers that do not publish their own changes, the result is the
  // change: a Create* made it, a Delete* removed the operation's target,
  // anything else changed it.
  v1::OperationMetadata metadata = MetadataOf(record.op);
  absl::string_view method = record.method;
  method.remove_prefix(std::min(method.size(), method.rfind('.') + 1));
  if (absl::StartsWith(method, "Delete")) {
    google::protobuf::Empty empty;
    hub_->Publish(record.account, v1::WatchResponse::DELETED, metadata.target(), empty, adapters::WatchSource::kLocal);
    return;
  }
  std::string type_name(result.type_url().substr(result.type_url().rfind('/') + 1));
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type_name);
  if (descriptor == nullptr) return;
  std::unique_ptr<google::protobuf::Message> resource(
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor)->New());
  if (!result.UnpackTo(resource.get())) return;
  std::string resource_name = metadata.target();
  if (const auto* name_field = descriptor->FindFieldByName("name");
      name_field != nullptr && name_field->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
    resource_name = resource->GetReflection()->GetString(*resource, name_field);
  }
  hub_->Publish(record.account,
                absl::StartsWith(method, "Create") ? v1::WatchResponse::CREATED
                                                   : v1::WatchResponse::UPDATED,
                resource_name, *resource, adapters::WatchSource::kLocal);
}

absl::Status OperationRunner::NotFound(absl::string_view name) {
  // The store's wording (store_operations.cc), so both read the same.
  return absl::NotFoundError(absl::StrCat("operation ", name, " not found"));
}

absl::StatusOr<Operation> OperationRunner::Get(const std::string& name) {
  absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
  if (!record.ok()) return record.status();
  return record->op;
}

absl::StatusOr<store::OperationPage> OperationRunner::List(const store::ListOperationsQuery& query) {
  return store_->ListOperations(query);
}

void OperationRunner::Cancel(const std::string& name,
                             absl::AnyInvocable<void(absl::Status) &&> done) {
  absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
  if (!record.ok()) return std::move(done)(record.status());
  if (record->op.done()) {
    return std::move(done)(absl::FailedPreconditionError(absl::StrCat(name, " is already done")));
  }
  auto unsupported = [&](absl::string_view why) {
    return WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(name, " (", record->method, ") cannot be "
                                                   "cancelled: ", why, "; it goes on")),
        reasons::kCancelUnsupported, {{"method", record->method}});
  };
  absl::StatusOr<adapters::Provider*> provider = accounts_->Provider(record->account, "account");
  if (!provider.ok()) return std::move(done)(provider.status());
  const std::vector<std::string> cancellable = (*provider)->CancellableMethods();
  if (std::find(cancellable.begin(), cancellable.end(), record->method) == cancellable.end()) {
    return std::move(done)(unsupported(absl::StrCat(
        "providers/", (*provider)->Info().kind, " cannot stop or undo it")));
  }
  if (record->phase != kSubmitted) {
    return std::move(done)(unsupported(
        "the provider has not yet confirmed it took the request; try again once it has"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!cancelled_.insert(name).second) {
      return std::move(done)(absl::FailedPreconditionError(
          absl::StrCat(name, " is already being cancelled")));
    }
  }
  adapters::CallContext ctx =
      ContextFor(*record, std::min(DeadlineOf(*record), absl::Now() + kMaxCallTime));
  ctx.deadline = std::max(ctx.deadline, absl::Now() + absl::Seconds(5));
  auto shared_done =
      std::make_shared<absl::AnyInvocable<void(absl::Status) &&>>(std::move(done));
  (*provider)->CancelMutation(
      ctx, record->method, record->poll_token,
      [this, name, shared_done](absl::StatusOr<adapters::MutationProgress> progress) mutable {
        bool posted = loop_->Post([this, name, shared_done,
                                   progress = std::move(progress)]() mutable {
          OnCancelled(name, std::move(progress), std::move(*shared_done));
        });
        if (!posted) {
          std::move (*shared_done)(WithErrorInfo(
              absl::UnavailableError("the server is shutting down"),
              reasons::kServerShuttingDown));
        }
      });
}

void OperationRunner::OnCancelled(const std::string& name,
                                  absl::StatusOr<adapters::MutationProgress> progress,
                                  absl::AnyInvocable<void(absl::Status) &&> done) {
  if (!progress.ok()) {
    // The provider did not undo anything: the operation goes on.
    {
      absl::MutexLock lock(&mu_);
      cancelled_.erase(name);
    }
    SchedulePoll(name, 0);
    return std::move(done)(progress.status());
  }
  absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
  if (!record.ok()) return std::move(done)(record.status());
  v1::OperationMetadata metadata = MetadataOf(record->op);
  metadata.set_cancel_requested(true);
  if (!progress->provider_operation.empty()) {
    metadata.set_provider_operation(progress->provider_operation);
  }
  SetMetadata(record->op, metadata);
  if (absl::Status status = store_->UpdateOperation(*record); !status.ok()) {
    return std::move(done)(status);
  }
  std::string what = progress->detail.empty() ? "the provider stopped the work" : progress->detail;
  Finish(name, WithErrorInfo(absl::CancelledError(absl::StrCat(
                                 "cancelled by a client; at the provider: ", what)),
                             reasons::kOperationCancelled));
  std::move(done)(absl::OkStatus());
}

absl::Status OperationRunner::Delete(const std::string& name) {
  absl::StatusOr<store::OperationRecord> record = store_->GetOperation(name);
  if (!record.ok()) return record.status();
  if (!record->op.done()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is still running; cancel it or wait for it first"));
  }
  return store_->DeleteOperation(name);
}

void OperationRunner::Wait(const std::string& name, absl::Time until,
                           adapters::Callback<Operation> done) {
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = next_waiter_++;
    waiters_[id].done = std::move(done);
    waiter_ids_[name].push_back(id);
  }
  auto take = [this, name](uint64_t waiter) -> adapters::Callback<Operation> {
    absl::MutexLock lock(&mu_);
    auto it = waiters_.find(waiter);
    if (it == waiters_.end()) return nullptr;
    adapters::Callback<Operation> cb = std::move(it->second.done);
    if (it->second.timer != 0) loop_->Cancel(it->second.timer);
    waiters_.erase(it);
    auto& ids = waiter_ids_[name];
    ids.erase(std::remove(ids.begin(), ids.end(), waiter), ids.end());
    if (ids.empty()) waiter_ids_.erase(name);
    return cb;
  };
  // Registered first, read second: either this read sees the operation done
  // or Finish() sees the waiter.
  absl::StatusOr<Operation> current = Get(name);
  if (!current.ok() || current->done()) {
    if (auto cb = take(id)) std::move(cb)(std::move(current));
    return;
  }
  TimerId timer = loop_->RunAt(until, [this, id, name, take] {
    if (auto cb = take(id)) std::move(cb)(Get(name));
  });
  if (timer == 0) {
    // The loop is shutting down and refused the timer: answer now.
    if (auto cb = take(id)) std::move(cb)(Get(name));
    return;
  }
  absl::MutexLock lock(&mu_);
  if (auto it = waiters_.find(id); it != waiters_.end()) it->second.timer = timer;
}

void OperationRunner::NotifyWaiters(const Operation& op) {
  std::vector<adapters::Callback<Operation>> callbacks;
  {
    absl::MutexLock lock(&mu_);
    auto ids = waiter_ids_.find(op.name());
    if (ids == waiter_ids_.end()) return;
    for (uint64_t id : ids->second) {
      auto it = waiters_.find(id);
      if (it == waiters_.end()) continue;
      if (it->second.timer != 0) loop_->Cancel(it->second.timer);
      callbacks.push_back(std::move(it->second.done));
      waiters_.erase(it);
    }
    waiter_ids_.erase(ids);
  }
  for (auto& cb : callbacks) std::move(cb)(op);
}

void OperationRunner::Shutdown() {
  std::vector<std::pair<std::string, adapters::Callback<Operation>>> pending;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (auto& [name, ids] : waiter_ids_) {
      for (uint64_t id : ids) {
        auto it = waiters_.find(id);
        if (it == waiters_.end()) continue;
        if (it->second.timer != 0) loop_->Cancel(it->second.timer);
        pending.emplace_back(name, std::move(it->second.done));
        waiters_.erase(it);
      }
    }
    waiter_ids_.clear();
  }
  for (auto& [name, cb] : pending) std::move(cb)(Get(name));
}

}  // namespace cloudplane::service
