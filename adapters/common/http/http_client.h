// Asynchronous HTTP/1.1 and HTTP/2 client for provider adapters.
//
// This is the only place in cloudplane that talks to libcurl. The design
// keeps provider I/O off gRPC threads and the thread count fixed:
//
//  1. An adapter owns an HttpClient (one per provider endpoint). Creating one
//     is cheap; many clients share one HttpTransport.
//  2. HttpClient::Send() validates and prepares the request on the calling
//     thread, queues it on the transport and returns at once.
//  3. The transport's single thread drives libcurl's multi interface
//     (curl_multi_poll, woken by curl_multi_wakeup when work is queued). All
//     transfers of all clients of that transport run on that thread, so
//     connections (and TLS sessions, DNS results) are cached and reused
//     across clients with HTTP keep-alive.
//  4. When a transfer ends, `done` runs on the transport thread with the
//     response or an error status. It must not block: hand slow work to an
//     EventLoop or complete a gRPC reactor, which is cheap.
//
// Threads: one per HttpTransport, whatever the number of requests in flight.
// The process-wide HttpTransport::Default() is what clients use unless told
// otherwise. One caveat belongs to libcurl: this Debian build resolves host
// names with a short-lived thread per lookup that is in progress; results are
// cached per transport (60 s) and kept connections need no lookup, and
// numeric addresses, "localhost" and unix sockets never resolve.
//
// What is never done: following redirects, using proxies from the
// environment, sending "Expect: 100-continue", or putting request headers,
// bodies or query strings in error messages.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_CLIENT_H_
#define CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_CLIENT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/http/endpoint.h"

namespace cloudplane::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

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
};

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

struct HttpTransportOptions {
  // Idle connections kept open for reuse, over all hosts.
  long max_idle_connections = 64;
  // Simultaneous connections to one host; 0 = no limit. Over the limit,
  // transfers wait (inside libcurl) for a free connection.
  long max_connections_per_host = 0;
};

// One thread and one libcurl multi handle; shared by HttpClients.
class HttpTransport {
 public:
  // The process-wide transport, created on first use and never destroyed
  // (so it is safe to use from any static lifetime).
  static std::shared_ptr<HttpTransport> Default();

  // A separate transport (own thread and connection cache); for tests and for
  // isolating traffic. INTERNAL if libcurl cannot be initialised.
  static absl::StatusOr<std::shared_ptr<HttpTransport>> Create(
      HttpTransportOptions options = {});

  // Calls Shutdown(). If the last reference is dropped on the transport
  // thread itself (inside a `done` callback), the thread finishes the
  // shutdown on its own after that callback returns.
  ~HttpTransport();

  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Idempotent. Every queued or in-flight transfer completes with CANCELLED
  // (its `done` runs on the transport thread); then the thread exits and,
  // unless called on the transport thread, Shutdown() waits for that.
  // Send() afterwards completes at once with CANCELLED on the calling thread.
  void Shutdown();

  // True on the transport thread, i.e. inside a `done` callback.
  bool IsTransportThread() const;

 private:
  friend class HttpClient;
  struct Impl;  // Defined in http_client.cc.
  explicit HttpTransport(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

struct HttpClientOptions {
  // Verify the server's certificate chain and host name (https only).
  // Turning it off is for local emulators with self-signed certificates.
  bool verify_tls = true;
  // PEM file of CA certificates to trust instead of the system store.
  std::string ca_file;
  // Time allowed to establish a connection (TCP + TLS), within the request
  // deadline. Running out of it before the deadline is UNAVAILABLE.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Largest response (headers + body) accepted; above it the transfer is
  // aborted with RESOURCE_EXHAUSTED.
  size_t max_response_bytes = 64 << 20;
  std::string user_agent = "cloudplane";
  // Transport to use; nullptr means HttpTransport::Default().
  std::shared_ptr<HttpTransport> transport;
};

class HttpClient {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::StatusOr<HttpResponse>)>;

  // INVALID_ARGUMENT if `endpoint` is not usable (empty or non-http(s)
  // base_url, a unix socket with an https base_url, a relative socket path)
  // or an option is out of range (max_response_bytes 0, non-positive
  // connect_timeout); FAILED_PRECONDITION if `ca_file` cannot be read.
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(
      Endpoint endpoint, HttpClientOptions options = {});

  // Safe while requests are in flight: they hold what they need and still
  // complete.
  ~HttpClient() = default;

  // Starts `request` and returns without waiting. `done` is called exactly
  // once, on the transport thread (or inline if the transport is shut down),
  // with:
  //   - the HttpResponse for ANY HTTP status the server sent, 4xx and 5xx
  //     included (use HttpStatusToStatus for those);
  //   - INVALID_ARGUMENT for a malformed method, path or header (CR/LF, ...);
  //   - DEADLINE_EXCEEDED when the deadline passes, including a deadline
  //     already past at Send() (then nothing is sent);
  //   - UNAVAILABLE when the server cannot be reached, the connection breaks,
  //     TLS fails, or the connect timeout expires before the deadline;
  //   - RESOURCE_EXHAUSTED when the response exceeds max_response_bytes;
  //   - CANCELLED when the transport shuts down first.
  // Thread-safe; may be called from inside a `done` callback.
  void Send(HttpRequest request, DoneCallback done);

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  HttpClient(Endpoint endpoint, HttpClientOptions options);

  const Endpoint endpoint_;
  const HttpClientOptions options_;
};

}  // namespace cloudplane::http

#endif  // CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_CLIENT_H_
