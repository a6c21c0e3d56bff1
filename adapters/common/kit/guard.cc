#include "adapters/common/kit/guard.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters::kit {
namespace {

using http::HttpRequest;
using http::HttpResponse;
using Result = absl::StatusOr<HttpResponse>;

// With no deadline, a Retry-After longer than this is not waited for.
constexpr absl::Duration kLongestRetryAfter = absl::Minutes(1);

// While a half-open breaker's probe is out, others are told to come back
// after this (or the cooldown, if shorter).
constexpr absl::Duration kProbeWait = absl::Seconds(1);

enum class Breaker { kClosed, kOpen, kHalfOpen };

// What an attempt's outcome tells the breaker.
enum class Health {
  kAlive,    // the provider answered (any status but 5xx)
  kFailing,  // connection trouble, an attempt timeout, 5xx
  kUnknown,  // the caller's deadline, a cancellation, a local refusal
};

ProviderLimits Clamp(ProviderLimits l) {
  l.max_in_flight = std::max(0, l.max_in_flight);
  // NaN and negative: no limit; more than a million per second is no limit either.
  if (!(l.requests_per_second > 0)) l.requests_per_second = 0;
  l.requests_per_second = std::min(l.requests_per_second, 1e6);
  if (l.burst <= 0) l.burst = std::max(1, static_cast<int>(std::ceil(l.requests_per_second)));
  l.max_attempts = std::max(1, l.max_attempts);
  l.initial_backoff = std::max(l.initial_backoff, absl::Milliseconds(1));
  l.max_backoff = std::max(l.max_backoff, l.initial_backoff);
  l.attempt_timeout = std::max(l.attempt_timeout, absl::ZeroDuration());
  l.breaker_failures = std::max(0, l.breaker_failures);
  l.breaker_cooldown = std::max(l.breaker_cooldown, absl::Milliseconds(1));
  return l;
}

absl::Status Cancelled(absl::string_view context) {
  return absl::CancelledError(absl::StrCat(context, ": HTTP transport shut down"));
}

// One request through all its attempts.
struct Call {
  http::Endpoint endpoint;
  http::TransferSettings settings;
  HttpRequest request;  // as the caller gave it; each attempt sends a copy
  http::HttpTransport::DoneCallback done;
  std::string context;  // "GET http://host/path"
  bool idempotent = false;
  absl::Time deadline;  // the caller's
  // request.lasting_error, kept here: the last attempt takes the request.
  std::function<bool(const HttpResponse&)> lasting_error;

  // Guarded by State::mu from here on.
  int attempts = 0;                 // attempts started
  bool probe = false;               // the attempt in flight is the breaker's probe
  absl::Time attempt_deadline;      // of the attempt in flight
  std::optional<Result> last;       // the previous attempt's outcome
  bool queued = false;
  TimerId expiry = 0;               // the loop timer at the deadline, while queued
};
using CallPtr = std::shared_ptr<Call>;

}  // namespace

struct GuardedTransport::State : std::enable_shared_from_this<GuardedTransport::State> {
  // What to do once the lock is released: callbacks and transport calls never
  // run under `mu`.
  struct Actions {
    std::vector<CallPtr> start;
    std::vector<std::pair<CallPtr, Result>> finish;
    std::vector<TimerId> cancel;
    std::optional<absl::Time> wake_at;
  };

  State(std::shared_ptr<http::HttpTransport> inner_in, ProviderLimits limits_in,
        EventLoop* loop_in)
      : inner(std::move(inner_in)),
        limits(Clamp(limits_in)),
        loop(loop_in),
        retries(loop_in != nullptr && limits.max_attempts > 1),
        rate_limited(loop_in != nullptr && limits.requests_per_second > 0),
        tokens(limits.burst),
        refilled(absl::Now()) {}

  void Admit(CallPtr call);
  void StartAttempt(const CallPtr& call);
  void OnAttemptDone(const CallPtr& call, Result result);
  void Expire(const CallPtr& call);
  void ScheduleWake(absl::Time at);
  void Wake();
  void Shutdown();

  // Admits what can go from the head of the queue.
  void Pump(absl::Time now, Actions& actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // OK to send now; `probe` is set when the attempt would be the half-open
  // breaker's probe. Else the fail-fast status.
  absl::Status Gate(absl::Time now, const Call& call, bool& probe)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Record(absl::Time now, Health health, bool probe) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::Duration Backoff(int retry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Run(Actions actions);
  // Completes `call` with `result`: on this thread if `here` (the inner
  // transport's thread, or the loop's when a retry is dropped), else an error
  // through the inner transport's thread and an answer through the loop.
  void Finish(const CallPtr& call, Result result, bool here);

  const std::shared_ptr<http::HttpTransport> inner;
  const ProviderLimits limits;
  EventLoop* const loop;
  const bool retries;
  const bool rate_limited;

  mutable absl::Mutex mu;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  int in_flight ABSL_GUARDED_BY(mu) = 0;
  std::deque<CallPtr> queue ABSL_GUARDED_BY(mu);
  double tokens ABSL_GUARDED_BY(mu);
  absl::Time refilled ABSL_GUARDED_BY(mu);
  // A wake-up for the rate limit is set (at most one: the time the bucket
  // holds a token again does not depend on which request waits for it).
  bool wake_pending ABSL_GUARDED_BY(mu) = false;
  TimerId wake ABSL_GUARDED_BY(mu) = 0;
  Breaker breaker ABSL_GUARDED_BY(mu) = Breaker::kClosed;
  absl::Time open_until ABSL_GUARDED_BY(mu);
  bool probe_out ABSL_GUARDED_BY(mu) = false;
  int failures ABSL_GUARDED_BY(mu) = 0;
  absl::BitGen gen ABSL_GUARDED_BY(mu);
};

namespace {

// A retry waiting on the loop. Dropped without running (the loop shuts
// down), it completes the call with its last outcome.
class RetryTask {
 public:
  RetryTask(std::shared_ptr<GuardedTransport::State> state, CallPtr call)
      : state_(std::move(state)), call_(std::move(call)) {}
  RetryTask(RetryTask&& other) = default;
  RetryTask& operator=(RetryTask&&) = delete;
  ~RetryTask() {
    if (call_ == nullptr) return;
    Result last = absl::CancelledError("retry dropped");
    {
      absl::MutexLock lock(&state_->mu);
      if (call_->last.has_value()) last = *std::move(call_->last);
    }
    state_->Finish(call_, std::move(last), /*here=*/true);
  }

  void operator()() {
    std::shared_ptr<GuardedTransport::State> state = std::move(state_);
    CallPtr call = std::move(call_);
    state->Admit(std::move(call));
  }

 private:
  std::shared_ptr<GuardedTransport::State> state_;
  CallPtr call_;
};

}  // namespace

void GuardedTransport::State::Finish(const CallPtr& call, Result result, bool here) {
  http::HttpTransport::DoneCallback done = std::move(call->done);
  if (done == nullptr) return;  // already completed
  if (here) return std::move(done)(std::move(result));
  if (!result.ok()) {
    return FailOn(*inner, call->context, std::move(result).status(), std::move(done));
  }
  // Only a retry has an answer to give back from here, and retries exist only
  // with a loop. Never inline: this may run inside another request's Start().
  auto task = std::make_shared<std::pair<http::HttpTransport::DoneCallback, Result>>(
      std::move(done), std::move(result));
  if (!loop->Post([task] { std::move(task->first)(std::move(task->second)); })) {
    std::move(task->first)(std::move(task->second));  // the loop is shutting down
  }
}

void GuardedTransport::State::Run(Actions actions) {
  if (loop != nullptr) {
    for (TimerId id : actions.cancel) loop->Cancel(id);
  }
  if (actions.wake_at.has_value()) ScheduleWake(*actions.wake_at);
  for (auto& [call, result] : actions.finish) Finish(call, std::move(result), /*here=*/false);
  for (const CallPtr& call : actions.start) StartAttempt(call);
}

void GuardedTransport::State::ScheduleWake(absl::Time at) {
  std::weak_ptr<State> weak = weak_from_this();
  const TimerId id = loop->RunAt(at, [weak] {
    if (std::shared_ptr<State> self = weak.lock()) self->Wake();
  });
  absl::MutexLock lock(&mu);
  if (id == 0) {
    wake_pending = false;  // the loop is shutting down
  } else if (wake_pending) {
    wake = id;  // for Shutdown(); stale if it fired already, which is harmless
  }
}

absl::Status GuardedTransport::State::Gate(absl::Time now, const Call& call, bool& probe) {
  probe = false;
  if (limits.breaker_failures == 0 || breaker == Breaker::kClosed) return absl::OkStatus();
  absl::Duration wait;
  if (breaker == Breaker::kOpen && now < open_until) {
    wait = open_until - now;
  } else {
    breaker = Breaker::kHalfOpen;
    if (!probe_out) {
      probe = true;
      return absl::OkStatus();
    }
    wait = std::min(kProbeWait, limits.breaker_cooldown);
  }
  absl::Status status = absl::UnavailableError(absl::StrCat(
      call.context, ": not sent: the provider failed ", limits.breaker_failures,
      " times in a row (circuit breaker open); retry after ", absl::FormatDuration(wait)));
  status = WithErrorInfo(std::move(status), reasons::kProviderUnavailable,
                         {{"circuitBreaker", "open"}});
  return WithRetryInfo(std::move(status), wait);
}

void GuardedTransport::State::Pump(absl::Time now, Actions& actions) {
  while (!queue.empty()) {
    CallPtr call = queue.front();
    auto pop = [&] {
      queue.pop_front();
      call->queued = false;
      if (call->expiry != 0) actions.cancel.push_back(std::exchange(call->expiry, 0));
    };
    if (call->deadline <= now) {
      pop();
      // A retry that could not go in time: the last outcome is the answer.
      actions.finish.emplace_back(
          call, call->last.has_value()
                    ? *std::move(call->last)
                    : Result(absl::DeadlineExceededError(absl::StrCat(
                          call->context, ": deadline exceeded while waiting to be sent (",
                          in_flight, " requests in flight to the provider)"))));
      continue;
    }
    bool probe = false;
    if (absl::Status gate = Gate(now, *call, probe); !gate.ok()) {
      pop();
      actions.finish.emplace_back(call, std::move(gate));
      continue;
    }
    if (limits.max_in_flight > 0 && in_flight >= limits.max_in_flight) break;
    if (rate_limited) {
      const double rate = limits.requests_per_second;
      tokens = std::min<double>(limits.burst,
                                tokens + rate * absl::ToDoubleSeconds(now - refilled));
      refilled = now;
      if (tokens < 1) {
        const absl::Time ready = now + absl::Seconds((1 - tokens) / rate);
        if (call->deadline <= ready) {
          pop();
          actions.finish.emplace_back(
              call, call->last.has_value()
                        ? *std::move(call->last)
                        : Result(absl::DeadlineExceededError(absl::StrCat(
                              call->context, ": the account's rate limit (",
                              limits.requests_per_second,
                              " requests per second) allows no request before the deadline"))));
          continue;
        }
        if (!wake_pending) {
          wake_pending = true;
          actions.wake_at = ready;
        }
        break;
      }
      tokens -= 1;
    }
    pop();
    ++in_flight;
    call->probe = probe;
    if (probe) probe_out = true;
    actions.start.push_back(std::move(call));
  }
}

void GuardedTransport::State::Admit(CallPtr call) {
  Actions actions;
  bool schedule_expiry = false;
  {
    absl::MutexLock lock(&mu);
    if (stopping) {
      Result last =
          call->last.has_value() ? *std::move(call->last) : Result(Cancelled(call->context));
      actions.finish.emplace_back(std::move(call), std::move(last));
    } else {
      call->queued = true;
      queue.push_back(call);
      Pump(absl::Now(), actions);
      schedule_expiry = call->queued && loop != nullptr &&
                        call->deadline != absl::InfiniteFuture();
    }
  }
  if (schedule_expiry) {
    std::weak_ptr<State> weak = weak_from_this();
    const TimerId id = loop->RunAt(call->deadline, [weak, call] {
      if (std::shared_ptr<State> self = weak.lock()) self->Expire(call);
    });
    absl::MutexLock lock(&mu);
    if (call->queued) {
      call->expiry = id;
    } else if (id != 0) {
      actions.cancel.push_back(id);
    }
  }
  Run(std::move(actions));
}

void GuardedTransport::State::Expire(const CallPtr& call) {
  std::optional<Result> result;
  {
    absl::MutexLock lock(&mu);
    if (!call->queued) return;
    queue.erase(std::find(queue.begin(), queue.end(), call));
    call->queued = false;
    call->expiry = 0;
    result = call->last.has_value()
                 ? *std::move(call->last)
                 : Result(absl::DeadlineExceededError(absl::StrCat(
                       call->context, ": deadline exceeded while waiting to be sent (",
                       in_flight, " requests in flight to the provider)")));
  }
  Finish(call, *std::move(result), /*here=*/false);
}

void GuardedTransport::State::Wake() {
  Actions actions;
  {
    absl::MutexLock lock(&mu);
    wake_pending = false;
    wake = 0;
    if (stopping) return;
    Pump(absl::Now(), actions);
  }
  Run(std::move(actions));
}

void GuardedTransport::State::StartAttempt(const CallPtr& call) {
  HttpRequest attempt;
  {
    absl::MutexLock lock(&mu);
    ++call->attempts;
    const bool may_retry = call->idempotent && retries && call->attempts < limits.max_attempts;
    // The last attempt takes the request itself; earlier ones a copy.
    attempt = may_retry ? call->request : std::move(call->request);
    if (call->idempotent && retries && limits.attempt_timeout > absl::ZeroDuration()) {
      attempt.deadline = std::min(attempt.deadline, absl::Now() + limits.attempt_timeout);
    }
    call->attempt_deadline = attempt.deadline;
  }
  StartOn(*inner, call->endpoint, call->settings, std::move(attempt),
          [self = shared_from_this(), call](Result result) {
            self->OnAttemptDone(call, std::move(result));
          });
}

absl::Duration GuardedTransport::State::Backoff(int retry) {
  absl::Duration cap = limits.initial_backoff;
  for (int i = 1; i < retry && cap < limits.max_backoff; ++i) cap *= 2;
  cap = std::min(cap, limits.max_backoff);
  return absl::Seconds(absl::Uniform(gen, 0.0, absl::ToDoubleSeconds(cap)));
}

void GuardedTransport::State::Record(absl::Time now, Health health, bool probe) {
  if (limits.breaker_failures == 0 || health == Health::kUnknown) {
    if (probe) probe_out = false;  // still half-open: the next request probes
    return;
  }
  if (probe) {
    probe_out = false;
    if (health == Health::kAlive) {
      breaker = Breaker::kClosed;
      failures = 0;
    } else {
      breaker = Breaker::kOpen;
      open_until = now + limits.breaker_cooldown;
    }
    return;
  }
  // Attempts sent before the breaker opened say nothing the probe will not.
  if (breaker != Breaker::kClosed) return;
  if (health == Health::kAlive) {
    failures = 0;
  } else if (++failures >= limits.breaker_failures) {
    breaker = Breaker::kOpen;
    open_until = now + limits.breaker_cooldown;
  }
}

void GuardedTransport::State::OnAttemptDone(const CallPtr& call, Result result) {
  const absl::Time now = absl::Now();
  // Classify the outcome (outside the lock: validate is the adapter's code).
  Health health = Health::kUnknown;
  bool retryable = false;
  std::optional<absl::Duration> retry_after;
  if (result.ok()) {
    const int status = result->status;
    const bool lasting =
        status >= 500 && call->lasting_error && call->lasting_error(*result);
    health = status >= 500 && !lasting ? Health::kFailing : Health::kAlive;
    retryable = (status >= 500 && !lasting) || status == 429;
    if (retryable) {
      if (const std::string* value = result->FindHeader("retry-after")) {
        retry_after = ParseRetryAfter(*value, now);
      }
    } else if (status >= 200 && status <= 299 && call->idempotent && retries &&
               call->request.validate) {
      retryable = !call->request.validate(*result).ok();
    }
  } else if (result.status().code() == absl::StatusCode::kUnavailable) {
    health = Health::kFailing;
    retryable = true;
  } else if (result.status().code() == absl::StatusCode::kDeadlineExceeded &&
             call->attempt_deadline < call->deadline && now < call->deadline) {
    // Our attempt timeout, not the caller's deadline: the provider stalled.
    health = Health::kFailing;
    retryable = true;
    result = absl::UnavailableError(
        absl::StrCat(call->context, ": no answer within ",
                     absl::FormatDuration(limits.attempt_timeout), " (the attempt timeout)"));
  }

  Actions actions;
  std::optional<absl::Duration> delay;
  {
    absl::MutexLock lock(&mu);
    --in_flight;
    const bool probe = std::exchange(call->probe, false);
    Record(now, health, probe);
    if (retryable && call->idempotent && retries && !stopping &&
        call->attempts < limits.max_attempts) {
      absl::Duration wait;
      bool ok = true;
      if (retry_after.has_value()) {
        wait = *retry_after;
        if (call->deadline == absl::InfiniteFuture() && wait > kLongestRetryAfter) {
          ok = false;
        }
      } else {
        wait = Backoff(call->attempts);
      }
      if (ok && now + wait < call->deadline) delay = wait;
    }
    if (delay.has_value()) call->last = result;
    Pump(now, actions);
  }
  Run(std::move(actions));
  if (!delay.has_value()) return Finish(call, std::move(result), /*here=*/true);
  // RunAfter destroys the task at once when the loop is shutting down; the
  // task then completes the call with `last`.
  loop->RunAfter(*delay, RetryTask(shared_from_this(), call));
}

void GuardedTransport::State::Shutdown() {
  Actions actions;
  {
    absl::MutexLock lock(&mu);
    if (stopping) return;
    stopping = true;
    for (CallPtr& call : queue) {
      call->queued = false;
      if (call->expiry != 0) actions.cancel.push_back(std::exchange(call->expiry, 0));
      Result last =
          call->last.has_value() ? *std::move(call->last) : Result(Cancelled(call->context));
      actions.finish.emplace_back(std::move(call), std::move(last));
    }
    queue.clear();
    if (wake != 0) actions.cancel.push_back(std::exchange(wake, 0));
    wake_pending = false;
  }
  Run(std::move(actions));
}

std::shared_ptr<GuardedTransport> GuardedTransport::Create(
    std::shared_ptr<http::HttpTransport> inner, ProviderLimits limits, EventLoop* loop) {
  return std::make_shared<GuardedTransport>(
      std::make_shared<State>(std::move(inner), limits, loop));
}

GuardedTransport::GuardedTransport(std::shared_ptr<State> state) : state_(std::move(state)) {}

void GuardedTransport::Shutdown() { state_->Shutdown(); }

bool GuardedTransport::IsTransportThread() const { return state_->inner->IsTransportThread(); }

GuardedTransport::Snapshot GuardedTransport::snapshot() const {
  absl::MutexLock lock(&state_->mu);
  Snapshot s;
  s.in_flight = state_->in_flight;
  s.queued = static_cast<int>(state_->queue.size());
  s.breaker_open = state_->breaker != Breaker::kClosed;
  return s;
}

void GuardedTransport::Start(const http::Endpoint& endpoint,
                             const http::TransferSettings& settings, HttpRequest request,
                             DoneCallback done) {
  auto call = std::make_shared<Call>();
  call->context = Describe(endpoint.base_url, request);
  call->idempotent = http::IsIdempotent(request);
  call->deadline = request.deadline;
  bool stopping;
  {
    absl::MutexLock lock(&state_->mu);
    stopping = state_->stopping;
  }
  // As every transport: after Shutdown(), CANCELLED at once, here.
  if (stopping) return std::move(done)(Cancelled(call->context));
  call->endpoint = endpoint;
  call->settings = settings;
  call->lasting_error = request.lasting_error;
  call->request = std::move(request);
  call->done = std::move(done);
  state_->Admit(std::move(call));
}

void GuardedTransport::Fail(std::string context, absl::Status failure, DoneCallback done) {
  FailOn(*state_->inner, std::move(context), std::move(failure), std::move(done));
}

// ---------------------------------------------------------------------------
// Retry-After.

std::optional<absl::Time> ParseImfFixdate(absl::string_view text) {
  // "Sun, 06 Nov 1994 08:49:37 GMT": 29 characters, fixed positions.
  static constexpr absl::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu",
                                                "Fri", "Sat", "Sun"};
  static constexpr absl::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  auto number = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (!absl::ascii_isdigit(text[i])) return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int day, year, hour, minute, second;
  if (!number(5, 2, day) || !number(12, 4, year) || !number(17, 2, hour) ||
      !number(20, 2, minute) || !number(23, 2, second)) {
    return std::nullopt;
  }
  int month = 0;
  while (month < 12 && kMonths[month] != text.substr(8, 3)) ++month;
  if (month == 12) return std::nullopt;
  // A leap second (60) is allowed by the grammar; it reads as the next second.
  if (day < 1 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  const absl::CivilDay civil_day(year, month + 1, day);
  // CivilDay normalises out-of-range days (31 Feb -> 3 Mar); refuse those.
  if (civil_day.day() != day || civil_day.month() != month + 1) return std::nullopt;
  if (kDays[static_cast<int>(absl::GetWeekday(civil_day))] != text.substr(0, 3)) {
    return std::nullopt;
  }
  return absl::FromCivil(absl::CivilSecond(year, month + 1, day, hour, minute, second),
                         absl::UTCTimeZone());
}

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (!value.empty() && absl::ascii_isdigit(value[0])) {
    for (char c : value) {
      if (!absl::ascii_isdigit(c)) return std::nullopt;
    }
    int64_t seconds = 0;
    // More digits than an int64 holds: a wait longer than anyone will honour.
    if (!absl::SimpleAtoi(value, &seconds)) return absl::InfiniteDuration();
    return absl::Seconds(seconds);
  }
  std::optional<absl::Time> when = ParseImfFixdate(value);
  if (!when.has_value()) return std::nullopt;
  return std::max(absl::ZeroDuration(), *when - now);
}

}  // namespace cloudplane::adapters::kit
