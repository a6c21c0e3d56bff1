// The transport under HttpClient: what moves an HTTP request to a server and
// brings the response back, on a thread of its own.
//
// HttpClient (http_client.h) is what adapters call; it validates a request on
// the caller's thread and hands it to an HttpTransport. Two implementations:
//
//  - the libcurl transport (curl_transport.cc, the only file here besides
//    curl_status.cc that includes curl.h), returned by HttpTransport::Default()
//    and HttpTransport::Create(): one thread driving libcurl's multi interface
//    for every client that shares it, with connection reuse;
//  - FakeHttpTransport (fake_http_transport.h, testonly), which answers
//    scripted request -> response pairs and records what was sent, so adapter
//    tests need no server.
// and one that wraps another: kit::GuardedTransport (adapters/common/kit/
// guard.h), one per account, which retries idempotent requests and applies
// the account's limits and circuit breaker before handing each attempt on.
//
// The contract every transport keeps (HttpClient::Send documents it to
// callers):
//  1. Start() and Fail() are called by HttpClient on any thread, never block,
//     and queue the transfer. `done` is called exactly once, on one of the
//     transport's own threads: IsTransportThread() is true there, and the
//     thread is marked with MarkTransportThread("http"), so code that must
//     not run there (store::Store) aborts in tests. The libcurl transport has
//     one I/O thread and, by default, a few callback threads that run the
//     `done` callbacks (HttpTransportOptions::callback_threads), so two
//     callbacks may run at the same time; callbacks start in the order their
//     transfers finished. Transfers that complete without I/O (refusals,
//     expired deadlines, scripted answers) finish in the order they were
//     queued.
//  2. A deadline that has passed when the transport picks the transfer up
//     gives DEADLINE_EXCEEDED and nothing is sent.
//  3. After Shutdown() (or when the transport is destroyed), queued and
//     in-flight transfers complete with CANCELLED on the transport thread;
//     transfers queued later complete with CANCELLED at once, on the calling
//     thread. Message: "<METHOD> <base_url><path>: HTTP transport shut down".
//  4. Never: following redirects, using proxies from the environment,
//     sending "Expect: 100-continue", putting request headers, bodies or
//     query strings in error messages, or sending a request that is not
//     idempotent (IsIdempotent) more than once.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_TRANSPORT_H_
#define CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_TRANSPORT_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/http/endpoint.h"

namespace cloudplane::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  // In the order received, names lower-cased, values trimmed. Only the final
  // response's headers (not those of a 100 Continue).
  Headers headers;
  std::string body;

  // The first value of header `name` (compared case-insensitively), or
  // nullptr when absent.
  const std::string* FindHeader(absl::string_view name) const;
};

struct HttpRequest {
  // An HTTP token in upper case: GET, HEAD, PUT, POST, DELETE, PATCH, ...
  std::string method = "GET";
  // Appended to Endpoint::base_url. Empty or starting with '/'; already
  // percent-encoded (printable ASCII, no spaces).
  std::string path_and_query;
  // Sent in this order. libcurl adds Host, User-Agent, Accept and
  // Content-Length itself; an "Expect" header given here is dropped. When a
  // body is sent without a Content-Type here, none is sent.
  Headers headers;
  std::string body;
  // absl::InfiniteFuture(): no deadline (only the connect timeout applies).
  absl::Time deadline = absl::InfiniteFuture();
  // May the request be sent twice with the same effect as once? Unset: by
  // the method (IsIdempotent below). A POST that only reads (an XML-RPC
  // `one.vm.info`, an AWS query Describe*) sets true. A request that is not
  // idempotent is never sent twice by accident: the libcurl transport gives
  // it a fresh connection (so libcurl's silent resend on a dead keep-alive
  // connection cannot happen) and the adapter kit never retries it.
  std::optional<bool> idempotent;
  // Optional check of a read's answer, for transports that retry
  // (kit::GuardedTransport): called with each 2xx answer of an idempotent
  // request, on the transport thread; non-OK means the body is malformed
  // (truncated, not the protocol's format) and the request is worth sending
  // again. Must be cheap, thread-safe and free of side effects. Transports
  // that do not retry ignore it; the answer that reaches the caller is
  // checked by the adapter as before.
  std::function<absl::Status(const HttpResponse&)> validate;
  // Optional, for transports that retry and keep a circuit breaker
  // (kit::GuardedTransport): called with each 5xx answer, on the transport
  // thread; true means the provider itself gave a considered, lasting answer
  // about this request's subject (fleet's own 500 envelope for one unit its
  // registry cannot read) rather than a failure of the endpoint or of
  // something in between. Such an answer is not retried and counts as the
  // endpoint alive. Must be cheap, thread-safe and free of side effects.
  std::function<bool(const HttpResponse&)> lasting_error;
};

// request.idempotent when set, else true for GET, HEAD, PUT, DELETE, OPTIONS
// and TRACE (RFC 9110 9.2.2) and false for every other method (POST, PATCH).
bool IsIdempotent(const HttpRequest& request);

struct HttpTransportOptions {
  // Idle connections kept open for reuse, over all hosts.
  long max_idle_connections = 64;
  // Simultaneous connections to one host; 0 = no limit. Over the limit,
  // transfers wait (inside libcurl, counting against their deadline) for a
  // free connection or, on HTTP/2, a free stream of an open one (up to the
  // server's SETTINGS_MAX_CONCURRENT_STREAMS per connection, commonly 100 to
  // 250). 64 is the default per-account limit (ProviderLimits::max_in_flight)
  // again: one HTTP/1.1 account at its limit fits, accounts sharing an
  // HTTP/1.1 host share the 64, and an HTTP/2 host takes thousands of
  // streams on them. A 10,000-read burst against an HTTP/2 responder opened
  // 40-63 connections at 64, 127 at 128 and 255 at 256, and finished
  // sooner with fewer (bench/inflight.py: each TLS handshake costs the I/O
  // thread).
  long max_connections_per_host = 64;
  // Simultaneous connections over all hosts; 0 = no limit.
  long max_connections = 0;
  // With nothing in flight for this long, every cached connection is closed
  // (and its TLS and HTTP/2 state freed), so the connections a burst opened
  // do not stay for good; the next transfer connects again. Zero: never
  // (libcurl then closes a kept connection only when it finds it dead or
  // over max_idle_connections). Not negative.
  absl::Duration close_idle_after = absl::Seconds(30);
  // Threads that run `done` callbacks, so the I/O thread only moves bytes
  // while responses are parsed and translated in parallel. Unset: one per
  // core, between 1 and 8. 0: callbacks run on the I/O thread itself, in
  // the order transfers finish. At most 64.
  std::optional<int> callback_threads;
};

// What an HttpClient fixed at creation and passes with each transfer (see
// HttpClientOptions for the meaning of each field). Already validated.
struct TransferSettings {
  bool verify_tls = true;
  std::string ca_file;
  absl::Duration connect_timeout = absl::Seconds(10);
  size_t max_response_bytes = 64 << 20;
  std::string user_agent = "cloudplane";
};

// A fixed set of threads, whatever the number of transfers; shared by
// HttpClients. Thread-safe.
class HttpTransport {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::StatusOr<HttpResponse>)>;

  // The process-wide libcurl transport, created on first use and never
  // destroyed (so it is safe to use from any static lifetime).
  static std::shared_ptr<HttpTransport> Default();

  // The options Default() is created with (cloudplaned sets them from its
  // config before the first account exists). INVALID_ARGUMENT for options
  // Create() refuses; FAILED_PRECONDITION once Default() has been created.
  static absl::Status ConfigureDefault(HttpTransportOptions options);

  // A separate libcurl transport (own thread and connection cache); for tests
  // and for isolating traffic. INTERNAL if libcurl cannot be initialised.
  static absl::StatusOr<std::shared_ptr<HttpTransport>> Create(
      HttpTransportOptions options = {});

  // Implementations call Shutdown(). If the last reference is dropped on the
  // transport thread itself (inside a `done` callback), the thread finishes
  // the shutdown on its own after that callback returns.
  virtual ~HttpTransport() = default;

  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Idempotent. Every queued or in-flight transfer completes with CANCELLED
  // (its `done` runs on the transport thread); then the thread exits and,
  // unless called on the transport thread, Shutdown() waits for that.
  // Sends afterwards complete at once with CANCELLED on the calling thread.
  virtual void Shutdown() = 0;

  // True on the transport's threads, e.g. inside a `done` callback.
  virtual bool IsTransportThread() const = 0;

 protected:
  HttpTransport() = default;

  // For transports that wrap another one (kit::GuardedTransport): hand a
  // transfer to `inner` exactly as HttpClient would, under the same
  // contract (see Start() and Fail() below).
  static void StartOn(HttpTransport& inner, const Endpoint& endpoint,
                      const TransferSettings& settings, HttpRequest request,
                      DoneCallback done) {
    inner.Start(endpoint, settings, std::move(request), std::move(done));
  }
  static void FailOn(HttpTransport& inner, std::string context, absl::Status failure,
                     DoneCallback done) {
    inner.Fail(std::move(context), std::move(failure), std::move(done));
  }

  // "GET http://host/base/path": names a transfer in error messages, without
  // the query string (which may carry pre-signed credentials).
  static std::string Describe(absl::string_view base_url,
                              const HttpRequest& request);

 private:
  friend class HttpClient;

  // Entry points for HttpClient::Send; see the contract at the top.
  //
  // Starts `request` (method, path and headers already validated by
  // HttpClient; `endpoint.base_url` without a trailing '/').
  virtual void Start(const Endpoint& endpoint, const TransferSettings& settings,
                     HttpRequest request, DoneCallback done) = 0;
  // Completes `done` with `failure` (a request HttpClient refused) on the
  // transport thread, in order with started transfers, sending nothing.
  // `context` is Describe() of the refused request.
  virtual void Fail(std::string context, absl::Status failure,
                    DoneCallback done) = 0;
};

}  // namespace cloudplane::http

#endif  // CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_TRANSPORT_H_
