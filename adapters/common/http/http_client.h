// Asynchronous HTTP/1.1 and HTTP/2 client for provider adapters.
//
// The design keeps provider I/O off gRPC threads and the thread count fixed:
//
//  1. An adapter owns an HttpClient (one per provider endpoint). Creating one
//     is cheap; many clients share one HttpTransport (http_transport.h).
//  2. HttpClient::Send() validates the request on the calling thread, hands
//     it to the transport and returns at once.
//  3. The transport's I/O thread runs the transfer. The real transport
//     (HttpTransport::Default()/Create(), curl_transport.cc, the only libcurl
//     code besides curl_status.cc) drives libcurl's multi interface there
//     (curl_multi_poll, woken by curl_multi_wakeup when work is queued). All
//     transfers of all clients of that transport run on that thread, so
//     connections (and TLS sessions, DNS results) are cached and reused
//     across clients with HTTP keep-alive, and over TLS a server that offers
//     HTTP/2 gets many transfers multiplexed on one connection. Tests pass a
//     FakeHttpTransport (fake_http_transport.h) instead, which answers
//     scripted responses.
//  4. When a transfer ends, `done` runs on one of the transport's callback
//     threads (a few, one per core) with the response or an error status, so
//     parsing and translating answers runs in parallel while the I/O thread
//     goes on moving bytes. It must not block: hand slow work to an
//     EventLoop or complete a gRPC reactor, which is cheap.
//
// Threads: a fixed set per HttpTransport (one I/O thread and its callback
// threads), whatever the number of requests in flight; connections to one
// host are capped (HttpTransportOptions::max_connections_per_host).
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

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_transport.h"  // IWYU pragma: export

namespace cloudplane::http {

// HttpRequest, HttpResponse, Headers, HttpTransportOptions and HttpTransport
// are declared in http_transport.h.

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
  // The transport is options.transport or HttpTransport::Default().
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(
      Endpoint endpoint, HttpClientOptions options = {});

  // Safe while requests are in flight: they hold what they need and still
  // complete.
  ~HttpClient() = default;

  // Starts `request` and returns without waiting. `done` is called exactly
  // once, on a transport thread (or inline if the transport is shut down),
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
  // (Through a FakeHttpTransport: the scripted answer, or UNIMPLEMENTED.
  // Through the adapter kit's GuardedTransport: after its retries, or its
  // UNAVAILABLE / DEADLINE_EXCEEDED refusals; see kit/guard.h, also for the
  // two cases where `done` runs on the account's event loop.)
  // Thread-safe; may be called from inside a `done` callback.
  void Send(HttpRequest request, DoneCallback done);

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  HttpClient(Endpoint endpoint, HttpClientOptions options);

  const Endpoint endpoint_;
  const TransferSettings settings_;
  const std::shared_ptr<HttpTransport> transport_;
};

}  // namespace cloudplane::http

#endif  // CLOUDPLANE_ADAPTERS_COMMON_HTTP_HTTP_CLIENT_H_
