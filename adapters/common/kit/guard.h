// kit::GuardedTransport: the one retry policy and the per-account limits of
// provider traffic, as an HttpTransport that wraps another one. Every remote
// adapter gets it through kit::MakeHttpClient (account.h), which puts it
// between the account's HttpClient and the shared transport:
//
//   adapter -> HttpClient -> GuardedTransport (one per account) -> libcurl transport
//
// What one request goes through:
//  1. Admission, in arrival order: the circuit breaker (below), then a free
//     slot (ProviderLimits::max_in_flight requests in flight to the
//     endpoint), then a token of the rate limit (requests_per_second,
//     burst). A request that waits is queued with its deadline: if the
//     deadline passes first, it fails DEADLINE_EXCEEDED and is never sent;
//     one that would need a token only after its deadline fails so at once.
//  2. An attempt: the request goes to the inner transport. An idempotent
//     request (http::IsIdempotent) that may be retried goes with the deadline
//     min(deadline, now + attempt_timeout), so a stalled answer is abandoned
//     and retried instead of eating the whole deadline.
//  3. The outcome. Retried (idempotent requests only, up to max_attempts
//     attempts in all): UNAVAILABLE from the transport (connection refused,
//     reset, truncated body, TLS), an attempt timeout, HTTP 5xx (except one
//     HttpRequest::lasting_error calls the provider's lasting word), HTTP
//     429, and a 2xx answer that HttpRequest::validate calls malformed. The wait
//     before retry n is the answer's Retry-After (delay-seconds or an
//     IMF-fixdate) when it has one, else full jitter: uniform in
//     [0, min(max_backoff, initial_backoff * 2^(n-1))]. A retry that would
//     start at or after the deadline is not made (nor one after a Retry-After
//     of more than a minute when there is no deadline); the caller then gets
//     the last attempt's outcome exactly as the transport gave it (an
//     HttpResponse with its status, or the error), except that an attempt
//     timeout is reported as UNAVAILABLE "no answer within <attempt_timeout>".
//     A request that is not idempotent gets exactly one attempt, whatever
//     happens: the kit never sends a mutation twice.
//  4. The circuit breaker counts consecutive failed attempts (transport
//     UNAVAILABLE, attempt timeouts, 5xx other than a lasting_error; an
//     answer of any other status resets the count; the caller's own deadline, a cancellation or a local
//     refusal count for nothing). After breaker_failures of them it opens:
//     for breaker_cooldown every request fails at once with UNAVAILABLE,
//     ErrorInfo reason PROVIDER_UNAVAILABLE (metadata circuitBreaker=open)
//     and a google.rpc.RetryInfo saying when to try again (base/errors.h
//     WithRetryInfo). Then it is half-open: the next request is sent as the
//     probe while others still fail fast; the probe's success closes the
//     breaker, its failure opens it for another cooldown.
//
// Timers (backoff, the rate limit, queued requests' deadlines) run on the
// account's EventLoop. Without a loop there are no retries, no attempt
// timeout and no rate limit; the in-flight limit and the breaker still
// apply, and a queued request whose deadline passed fails when it reaches
// the head of the queue.
//
// Threads: `done` runs on the inner transport's thread, as HttpClient::Send
// promises, except in two cases where it runs on the loop thread: a retry
// whose queued wait outlives its deadline, and a retry the loop drops while
// shutting down (both deliver the last attempt's answer). Start() never
// calls `done` inline unless the guard or the inner transport is shut down.
// validate() runs on the inner transport's thread. Nothing here touches the
// store. All methods are thread-safe.
//
// Lifetime: the guard is one account's; the inner transport is shared and is
// never shut down by it. Destroying the guard cancels nothing: requests
// already handed to it still complete, with their retries (they hold what
// they need). Shutdown() stops it: see there.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_GUARD_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_GUARD_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/http/http_transport.h"
#include "adapters/provider.h"
#include "base/event_loop.h"

namespace cloudplane::adapters::kit {

class GuardedTransport final : public http::HttpTransport {
 public:
  // Requests go to `inner` under `limits` (values as documented on
  // ProviderLimits; out-of-range values are clamped to the nearest sensible
  // one). `loop` (may be nullptr) must outlive the requests.
  static std::shared_ptr<GuardedTransport> Create(std::shared_ptr<http::HttpTransport> inner,
                                                  ProviderLimits limits, EventLoop* loop);

  // Cancels nothing (see the file comment).
  ~GuardedTransport() override = default;

  // Idempotent. Requests waiting in the guard (queued, or between attempts)
  // complete with CANCELLED ("<METHOD> <url>: HTTP transport shut down"), or
  // with their last attempt's outcome when they had one; attempts already
  // handed to the inner transport complete as it completes them, without a
  // retry; later requests complete with CANCELLED at once on the calling
  // thread. Does not wait and does not shut down the inner transport.
  void Shutdown() override;

  // The inner transport's thread.
  bool IsTransportThread() const override;

  // A snapshot for tests and diagnostics.
  struct Snapshot {
    int in_flight = 0;
    int queued = 0;
    bool breaker_open = false;  // open or half-open
  };
  Snapshot snapshot() const;

  struct State;  // Defined in guard.cc.
  explicit GuardedTransport(std::shared_ptr<State> state);  // Use Create().

 private:
  void Start(const http::Endpoint& endpoint, const http::TransferSettings& settings,
             http::HttpRequest request, DoneCallback done) override;
  void Fail(std::string context, absl::Status failure, DoneCallback done) override;

  const std::shared_ptr<State> state_;
};

// The wait a Retry-After header value asks for, from `now` (RFC 9110
// 10.2.3): delay-seconds ("120") or an HTTP-date in the IMF-fixdate form
// every sender must use ("Sun, 06 Nov 1994 08:49:37 GMT"); a date in the
// past is a zero wait. nullopt for anything else (the obsolete RFC 850 and
// asctime date forms included): the caller then uses its own backoff.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", RFC 9110 5.6.7), exactly:
// day name, two-digit day, month name, four-digit year, 24-hour time, "GMT".
// The day name is checked against the date. nullopt otherwise.
std::optional<absl::Time> ParseImfFixdate(absl::string_view text);

}  // namespace cloudplane::adapters::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_GUARD_H_
