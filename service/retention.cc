#include "service/retention.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace cloudplane::service {
namespace {

bool Keeps(absl::Duration retention) {
  return retention == absl::InfiniteDuration() || retention <= absl::ZeroDuration();
}

std::string Utc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::Duration Retention::DefaultInterval(const Options& options) {
  absl::Duration shortest = absl::InfiniteDuration();
  if (!Keeps(options.operation_retention)) shortest = options.operation_retention;
  if (!Keeps(options.change_log_retention)) {
    shortest = std::min(shortest, options.change_log_retention);
  }
  return std::clamp(shortest / 10, absl::Seconds(1), absl::Minutes(1));
}

struct Retention::State : std::enable_shared_from_this<State> {
  State(store::Store* store, EventLoop* loop, std::ostream* log, Options options)
      : store(store), loop(loop), log(log), options(std::move(options)) {
    if (!this->options.clock) this->options.clock = [] { return absl::Now(); };
    if (this->options.interval <= absl::ZeroDuration()) {
      this->options.interval = DefaultInterval(this->options);
    }
    this->options.batch = std::clamp(this->options.batch, 1, 10000);
  }

  // Fixes the cut-offs of a new pass and runs its first batch.
  void BeginPass() ABSL_LOCKS_EXCLUDED(mu) {
    {
      absl::MutexLock lock(&mu);
      if (stopped) return;
      timer = 0;
      const absl::Time now = options.clock();
      operations_left = !Keeps(options.operation_retention);
      if (operations_left) operation_cut = now - options.operation_retention;
      age_left = !Keeps(options.change_log_retention);
      if (age_left) change_cut = now - options.change_log_retention;
      count_left = options.change_log_max_entries > 0;
      pass_operations = pass_changes = 0;
    }
    Step();
  }

  // One batch of each kind that still has work, then either the next batch
  // as a new loop task or the end of the pass.
  void Step() ABSL_LOCKS_EXCLUDED(mu) {
    absl::MutexLock lock(&mu);
    if (stopped) return;
    absl::Status error;
    // A full batch means there may be more.
    auto run = [&](bool& left, absl::StatusOr<int64_t> removed, int64_t& pass_total,
                   int64_t& total) {
      ++stats.batches;
      if (!removed.ok()) {
        if (error.ok()) error = removed.status();
        left = false;
        return;
      }
      pass_total += *removed;
      total += *removed;
      left = *removed >= options.batch;
    };
    if (operations_left) {
      run(operations_left, store->PruneFinishedOperations(operation_cut, options.batch),
          pass_operations, stats.operations_removed);
    }
    if (age_left && error.ok()) {
      run(age_left, store->TrimChangesOlderThan(change_cut, options.batch), pass_changes,
          stats.changes_removed);
    }
    if (count_left && error.ok()) {
      run(count_left, store->TrimChangesToCount(options.change_log_max_entries, options.batch),
          pass_changes, stats.changes_removed);
    }
    if (!error.ok()) {
      operations_left = age_left = count_left = false;
      ++stats.failures;
      Write(absl::StrCat("cloudplaned: retention: pass stopped (next in ",
                         absl::FormatDuration(options.interval), "): ", error.ToString(),
                         "\n"));
    }
    if (operations_left || age_left || count_left) {
      // Behind whatever the loop has queued meanwhile.
      loop->Post([self = shared_from_this()] { self->Step(); });
      return;
    }
    ++stats.passes;
    if (pass_operations > 0 || pass_changes > 0) Report();
    timer = loop->RunAfter(options.interval, [self = shared_from_this()] { self->BeginPass(); });
  }

  void Report() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::string line =
        absl::StrCat("cloudplaned: retention: removed ", pass_operations,
                     " finished operation(s)");
    if (!Keeps(options.operation_retention)) {
      absl::StrAppend(&line, " last changed before ", Utc(operation_cut));
    }
    absl::StrAppend(&line, " and ", pass_changes, " change-log entries");
    if (!Keeps(options.change_log_retention)) {
      absl::StrAppend(&line, " (older than ", Utc(change_cut));
      if (options.change_log_max_entries > 0) {
        absl::StrAppend(&line, " or beyond the newest ", options.change_log_max_entries);
      }
      absl::StrAppend(&line, ")");
    } else if (options.change_log_max_entries > 0) {
      absl::StrAppend(&line, " (beyond the newest ", options.change_log_max_entries, ")");
    }
    Write(line + "\n");
  }

  void Write(const std::string& line) {
    if (log != nullptr) *log << line << std::flush;
  }

  store::Store* const store;
  EventLoop* const loop;
  std::ostream* const log;
  Options options;

  mutable absl::Mutex mu;
  bool started ABSL_GUARDED_BY(mu) = false;
  bool stopped ABSL_GUARDED_BY(mu) = false;
  TimerId timer ABSL_GUARDED_BY(mu) = 0;
  Stats stats ABSL_GUARDED_BY(mu);
  // The pass in progress.
  absl::Time operation_cut ABSL_GUARDED_BY(mu);
  absl::Time change_cut ABSL_GUARDED_BY(mu);
  bool operations_left ABSL_GUARDED_BY(mu) = false;
  bool age_left ABSL_GUARDED_BY(mu) = false;
  bool count_left ABSL_GUARDED_BY(mu) = false;
  int64_t pass_operations ABSL_GUARDED_BY(mu) = 0;
  int64_t pass_changes ABSL_GUARDED_BY(mu) = 0;
};

Retention::Retention(store::Store* store, EventLoop* loop, std::ostream* log, Options options)
    : state_(std::make_shared<State>(store, loop, log, std::move(options))) {}

Retention::~Retention() { Stop(); }

void Retention::Start() {
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->started || state_->stopped) return;
    state_->started = true;
  }
  state_->loop->Post([state = state_] { state->BeginPass(); });
}

void Retention::Stop() {
  TimerId timer = 0;
  {
    // Waits for a batch in progress (it holds mu).
    absl::MutexLock lock(&state_->mu);
    state_->stopped = true;
    timer = std::exchange(state_->timer, 0);
  }
  // Outside mu: Cancel destroys the callback (a State reference) here.
  if (timer != 0) state_->loop->Cancel(timer);
}

Retention::Stats Retention::stats() const {
  absl::MutexLock lock(&state_->mu);
  return state_->stats;
}

}  // namespace cloudplane::service
