// Asynchronous websocket client (RFC 6455) for provider event streams, on
// Boost.Beast.
//
// Why a library and not our own framing: Beast implements the handshake,
// masking, fragmentation, control frames (ping/pong/close), UTF-8 checks and
// TLS (through Boost.Asio's OpenSSL stream), and ships with Debian's
// libboost-dev (header-only, Boost 1.74).
//
// Threads: every connection of the process runs on ONE io_context thread,
// started on first use and never destroyed (like HttpTransport::Default()).
// No gRPC thread ever does websocket I/O; the number of threads does not grow
// with connections. All callbacks run on that thread and must not block.
//
// Usage:
//   auto conn = WebSocketConnection::Connect(
//       "wss://direct.zrh.cloudsigma.com/websocket",
//       {.headers = {{"Cookie", "async_auth=..."}}},
//       {.on_open = ..., .on_message = ..., .on_close = ...});
//   ...
//   conn->Close();  // idempotent; on_close then runs with CANCELLED
//
// What is never done: following redirects, using proxies, or putting header
// values (cookies) in error messages.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_WEBSOCKET_WEBSOCKET_CLIENT_H_
#define CLOUDPLANE_ADAPTERS_COMMON_WEBSOCKET_WEBSOCKET_CLIENT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cloudplane::websocket {

// A parsed `ws://` or `wss://` URL.
struct WebSocketUrl {
  bool tls = false;
  std::string host;    // without brackets for IPv6
  std::string port;    // "80"/"443" when the URL has none
  std::string target;  // path and query, "/" at least
};

// INVALID_ARGUMENT for another scheme, a missing host, a bad port,
// credentials (user:pass@) or a fragment. Messages never repeat the query.
absl::StatusOr<WebSocketUrl> ParseWebSocketUrl(absl::string_view url);

struct ConnectOptions {
  // Extra handshake request headers, e.g. {"Cookie", "async_auth=…"}.
  std::vector<std::pair<std::string, std::string>> headers;
  // wss only: verify the certificate chain and host name.
  bool verify_tls = true;
  // wss only: PEM CA bundle instead of the system store.
  std::string ca_file;
  // TCP connect + TLS + websocket handshake must finish within this.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // With nothing received for half of this, a ping is sent; with nothing for
  // all of it, the connection is closed (on_close gets UNAVAILABLE).
  absl::Duration idle_timeout = absl::Seconds(60);
  // Larger messages close the connection (RESOURCE_EXHAUSTED).
  size_t max_message_bytes = 4 << 20;
  std::string user_agent = "cloudplane";
};

struct ConnectCallbacks {
  // The handshake succeeded. Optional.
  absl::AnyInvocable<void()> on_open;
  // One complete text or binary message.
  absl::AnyInvocable<void(std::string message)> on_message;
  // Runs exactly once, last: UNAVAILABLE when the server cannot be reached,
  // the handshake is refused (message names the HTTP status), the
  // connection breaks or the idle timeout passes; OK when the server closed
  // the connection in order; CANCELLED after Close(); RESOURCE_EXHAUSTED for
  // an oversized message; INVALID_ARGUMENT for a bad URL.
  absl::AnyInvocable<void(absl::Status)> on_close;
};

class WebSocketConnection {
 public:
  // Starts connecting and returns at once. The connection keeps itself
  // alive until on_close has run, whether or not the caller keeps the
  // returned pointer. Thread-safe.
  static std::shared_ptr<WebSocketConnection> Connect(absl::string_view url,
                                                      ConnectOptions options,
                                                      ConnectCallbacks callbacks);

  virtual ~WebSocketConnection() = default;

  // Closes the connection (a close frame when open, else the socket) and
  // makes on_close run with CANCELLED unless it ran already. Idempotent,
  // thread-safe, never blocks; no on_message runs after Close() returns
  // when called on the websocket thread.
  virtual void Close() = 0;

  // True on the websocket thread (inside a callback).
  static bool IsWebSocketThread();
};

}  // namespace cloudplane::websocket

#endif  // CLOUDPLANE_ADAPTERS_COMMON_WEBSOCKET_WEBSOCKET_CLIENT_H_
