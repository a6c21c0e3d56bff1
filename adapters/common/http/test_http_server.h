// A small real HTTP/1.1 server for tests: plain sockets, one thread, poll().
//
// Listens on 127.0.0.1 with an ephemeral port, or on a unix socket. Keeps
// connections alive, counts accepted connections and records every request,
// so tests can check what went over the wire and whether connections were
// reused. A handler may hold a request unanswered (to test deadlines and
// concurrency) and the test releases held requests later.
//
// Not for production: no chunked request bodies, no pipelining, no TLS.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_HTTP_TEST_HTTP_SERVER_H_
#define CLOUDPLANE_ADAPTERS_COMMON_HTTP_TEST_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/http/http_client.h"

namespace cloudplane::http::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;  // path and query as on the request line
  Headers headers;     // names lower-cased
  std::string body;
  int connection = 0;  // 1 for the first accepted connection, 2 for the next

  // First value of `name` (lower case), or nullptr.
  const std::string* FindHeader(absl::string_view name) const;
};

struct CannedResponse {
  int status = 200;
  Headers headers;
  std::string body;
  // Send no Content-Length: the body ends when the server closes the
  // connection.
  bool close_delimited = false;
  // Close the connection without answering (the request has been received
  // and recorded): what a server does when its keep-alive timeout races a
  // request, or when it crashes after applying it.
  bool drop = false;
};

// Runs on the server thread. std::nullopt holds the request unanswered until
// ReleaseHeld() or until the client goes away.
using Handler =
    std::function<std::optional<CannedResponse>(const ReceivedRequest&)>;

class TestHttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<TestHttpServer>> StartTcp(
      Handler handler);
  // `path` must not exist yet; it is removed again by the destructor.
  static absl::StatusOr<std::unique_ptr<TestHttpServer>> StartUnix(
      std::string path, Handler handler);

  // Stops the thread and closes every socket.
  ~TestHttpServer();

  int port() const { return port_; }
  // "http://127.0.0.1:<port>" (TCP only).
  std::string url() const;

  int accepted_connections() const;
  // Accepted and not yet closed (by either side).
  int open_connections() const;
  std::vector<ReceivedRequest> requests() const;
  int held_requests() const;

  // Blocks until at least `n` requests have been received; false on timeout.
  bool WaitForRequests(int n, absl::Duration timeout) const;
  // Blocks until at least `n` requests are held; false on timeout.
  bool WaitForHeld(int n, absl::Duration timeout) const;

  // Answers every request held so far with `response`.
  void ReleaseHeld(CannedResponse response);

  struct State;  // Defined in the .cc.

 private:
  TestHttpServer() = default;
  int port_ = 0;
  std::string unix_path_;
  std::shared_ptr<State> state_;
};

// Threads of this process, from /proc/self/status.
int CountThreads();

}  // namespace cloudplane::http::testing

#endif  // CLOUDPLANE_ADAPTERS_COMMON_HTTP_TEST_HTTP_SERVER_H_
