#include "adapters/common/http/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/test_http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::http {
namespace {

using ::cloudplane::http::testing::CannedResponse;
using ::cloudplane::http::testing::CountThreads;
using ::cloudplane::http::testing::ReceivedRequest;
using ::cloudplane::http::testing::TestHttpServer;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pointee;

// Answers "hello <METHOD>" with a marker header; "/hold" is never answered
// until the test releases it; "/status/<n>" answers with status n.
std::optional<CannedResponse> DefaultHandler(const ReceivedRequest& req) {
  if (absl::StartsWith(req.target, "/hold")) return std::nullopt;
  CannedResponse r;
  if (absl::StartsWith(req.target, "/status/")) {
    (void)absl::SimpleAtoi(req.target.substr(8), &r.status);
  }
  r.headers = {{"X-Reply", "yes"}, {"Content-Type", "text/plain"}};
  r.body = absl::StrCat("hello ", req.method);
  return r;
}

// Sends and blocks the test thread (never the transport) until `done` ran.
absl::StatusOr<HttpResponse> SendAndWait(HttpClient& client,
                                         HttpRequest request) {
  absl::Notification done;
  absl::StatusOr<HttpResponse> result =
      absl::InternalError("callback never ran");
  client.Send(std::move(request), [&](absl::StatusOr<HttpResponse> r) {
    result = std::move(r);
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(20))) {
    ADD_FAILURE() << "no completion within 20 s";
    return absl::InternalError("timeout in test");
  }
  return result;
}

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto transport = HttpTransport::Create();
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    auto server = TestHttpServer::StartTcp(&DefaultHandler);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<HttpClient> MakeClient(absl::string_view endpoint_text,
                                         HttpClientOptions options = {}) {
    auto endpoint = ParseEndpoint(endpoint_text);
    EXPECT_TRUE(endpoint.ok()) << endpoint.status();
    options.transport = transport_;
    options.user_agent = "cloudplane-test";
    auto client = HttpClient::Create(*endpoint, std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  std::shared_ptr<HttpTransport> transport_;
  std::unique_ptr<TestHttpServer> server_;
};

TEST_F(HttpClientTest, GetWithHeadersAndBasePath) {
  auto client = MakeClient(server_->url() + "/base/");
  HttpRequest req;
  req.method = "GET";
  req.path_and_query = "/v1/things?x=1&y=two";
  req.headers = {{"X-Test", "abc"}, {"X-Empty", ""}};
  auto resp = SendAndWait(*client, req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "hello GET");
  EXPECT_THAT(resp->FindHeader("x-reply"), Pointee(std::string("yes")));
  EXPECT_THAT(resp->FindHeader("X-REPLY"), Pointee(std::string("yes")));
  EXPECT_EQ(resp->FindHeader("x-missing"), nullptr);
  for (const auto& [name, value] : resp->headers) {
    EXPECT_EQ(name, absl::AsciiStrToLower(name));
  }

  auto seen = server_->requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/base/v1/things?x=1&y=two");
  EXPECT_THAT(seen[0].FindHeader("x-test"), Pointee(std::string("abc")));
  EXPECT_THAT(seen[0].FindHeader("x-empty"), Pointee(std::string("")));
  EXPECT_THAT(seen[0].FindHeader("user-agent"),
              Pointee(std::string("cloudplane-test")));
  EXPECT_EQ(seen[0].body, "");
}

TEST_F(HttpClientTest, PutSendsBodyWithoutExpectContinue) {
  auto client = MakeClient(server_->url());
  HttpRequest req;
  req.method = "PUT";
  req.path_and_query = "/obj";
  // Large enough that libcurl would normally add "Expect: 100-continue".
  req.body = std::string(2 << 20, 'x');
  req.headers = {{"Content-Type", "application/xml"},
                 {"Expect", "100-continue"}};
  const absl::Time start = absl::Now();
  auto resp = SendAndWait(*client, req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "hello PUT");
  // No 1 s wait for a 100 Continue that this server never sends.
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(900));
  auto seen = server_->requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].body, req.body);
  EXPECT_EQ(seen[0].FindHeader("expect"), nullptr);
  EXPECT_THAT(seen[0].FindHeader("content-type"),
              Pointee(std::string("application/xml")));
  EXPECT_THAT(seen[0].FindHeader("content-length"),
              Pointee(absl::StrCat(req.body.size())));
}

TEST_F(HttpClientTest, BodyWithoutContentTypeSendsNone) {
  auto client = MakeClient(server_->url());
  HttpRequest req;
  req.method = "POST";
  req.path_and_query = "/p";
  req.body = "a=b";
  auto resp = SendAndWait(*client, req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  auto seen = server_->requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].body, "a=b");
  EXPECT_EQ(seen[0].FindHeader("content-type"), nullptr);
}

TEST_F(HttpClientTest, DeleteWithAndWithoutBody) {
  auto client = MakeClient(server_->url());
  HttpRequest with_body;
  with_body.method = "DELETE";
  with_body.path_and_query = "/a";
  with_body.body = "<Delete/>";
  with_body.headers = {{"Content-Type", "application/xml"}};
  auto r1 = SendAndWait(*client, with_body);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->body, "hello DELETE");

  HttpRequest plain;
  plain.method = "DELETE";
  plain.path_and_query = "/b";
  auto r2 = SendAndWait(*client, plain);
  ASSERT_TRUE(r2.ok()) << r2.status();

  auto seen = server_->requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "DELETE");
  EXPECT_EQ(seen[0].body, "<Delete/>");
  EXPECT_EQ(seen[1].method, "DELETE");
  EXPECT_EQ(seen[1].target, "/b");
  EXPECT_EQ(seen[1].body, "");
}

TEST_F(HttpClientTest, HeadAndEmptyPost) {
  auto client = MakeClient(server_->url());
  HttpRequest head;
  head.method = "HEAD";
  head.path_and_query = "/h";
  // The answer has a Content-Length but no body; libcurl must not wait for
  // one.
  auto r1 = SendAndWait(*client, head);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->body, "");

  HttpRequest post;
  post.method = "POST";
  post.path_and_query = "/empty";
  auto r2 = SendAndWait(*client, post);
  ASSERT_TRUE(r2.ok()) << r2.status();
  auto seen = server_->requests();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.back().method, "POST");
  EXPECT_THAT(seen.back().FindHeader("content-length"),
              Pointee(std::string("0")));
}

TEST_F(HttpClientTest, ErrorStatusesAreResponsesNotErrors) {
  auto client = MakeClient(server_->url());
  for (int code : {404, 409, 503}) {
    HttpRequest req;
    req.path_and_query = absl::StrCat("/status/", code);
    auto resp = SendAndWait(*client, req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->status, code);
  }
}

TEST_F(HttpClientTest, ReusesConnectionForSequentialRequests) {
  auto client = MakeClient(server_->url());
  for (int i = 0; i < 3; ++i) {
    HttpRequest req;
    req.path_and_query = absl::StrCat("/r", i);
    auto resp = SendAndWait(*client, req);
    ASSERT_TRUE(resp.ok()) << resp.status();
  }
  // A second client on the same transport shares the connection cache.
  auto other = MakeClient(server_->url());
  ASSERT_TRUE(SendAndWait(*other, HttpRequest{}).ok());

  EXPECT_EQ(server_->accepted_connections(), 1);
  auto seen = server_->requests();
  ASSERT_EQ(seen.size(), 4u);
  for (const auto& r : seen) EXPECT_EQ(r.connection, 1);
}

// A server whose kept-alive connections die under the next request: it
// answers the first request on each connection and closes the connection,
// unanswered, on the second (a server's idle timeout racing a client that
// reuses the connection, or a server that applied the request and crashed).
// "/drop..." is never answered on any connection.
std::unique_ptr<TestHttpServer> StartStaleConnectionServer() {
  auto per_connection = std::make_shared<std::map<int, int>>();  // server thread only
  auto server = TestHttpServer::StartTcp(
      [per_connection](const ReceivedRequest& req) -> std::optional<CannedResponse> {
        CannedResponse r;
        if (++(*per_connection)[req.connection] > 1 || absl::StartsWith(req.target, "/drop")) {
          r.drop = true;
          return r;
        }
        r.body = absl::StrCat("hello ", req.method);
        return r;
      });
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

int CountReceived(const TestHttpServer& server, absl::string_view method,
                  absl::string_view target) {
  int n = 0;
  for (const ReceivedRequest& r : server.requests()) {
    if (r.method == method && r.target == target) ++n;
  }
  return n;
}

TEST_F(HttpClientTest, IdempotentRequestMayBeResentOnADeadKeptConnection) {
  // The control for the test below: libcurl does resend on a reused
  // connection that dies, so the server really produces that situation.
  auto server = StartStaleConnectionServer();
  auto client = MakeClient(server->url());
  HttpRequest warm;
  warm.path_and_query = "/warm";
  ASSERT_TRUE(SendAndWait(*client, warm).ok());
  HttpRequest get;
  get.path_and_query = "/again";
  auto resp = SendAndWait(*client, get);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(CountReceived(*server, "GET", "/again"), 2);  // sent on connection 1, then 2

  // A POST marked idempotent (an XML-RPC read) may be resent the same way.
  HttpRequest read;
  read.method = "POST";
  read.path_and_query = "/rpc-read";
  read.body = "<methodCall/>";
  read.idempotent = true;
  resp = SendAndWait(*client, read);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(CountReceived(*server, "POST", "/rpc-read"), 2);
}

TEST_F(HttpClientTest, PostIsNeverResentByTheTransport) {
  auto server = StartStaleConnectionServer();
  auto client = MakeClient(server->url());
  HttpRequest warm;
  warm.path_and_query = "/warm";
  ASSERT_TRUE(SendAndWait(*client, warm).ok());  // leaves connection 1 kept alive

  // On the kept connection the server would drop it, and libcurl would send
  // it again: a POST goes out on a fresh connection instead, once.
  HttpRequest create;
  create.method = "POST";
  create.path_and_query = "/create";
  create.body = "{}";
  auto resp = SendAndWait(*client, create);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(CountReceived(*server, "POST", "/create"), 1);

  // A POST the server receives and never answers fails, and was sent once.
  HttpRequest dropped;
  dropped.method = "POST";
  dropped.path_and_query = "/drop";
  dropped.body = "{}";
  resp = SendAndWait(*client, dropped);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable) << resp.status();
  EXPECT_EQ(CountReceived(*server, "POST", "/drop"), 1);
  // PATCH likewise; an explicit idempotent = false on a DELETE too.
  HttpRequest patch;
  patch.method = "PATCH";
  patch.path_and_query = "/drop-patch";
  patch.body = "{}";
  EXPECT_EQ(SendAndWait(*client, patch).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CountReceived(*server, "PATCH", "/drop-patch"), 1);
  HttpRequest del;
  del.method = "DELETE";
  del.path_and_query = "/drop-delete";
  del.idempotent = false;
  EXPECT_EQ(SendAndWait(*client, del).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CountReceived(*server, "DELETE", "/drop-delete"), 1);
}

TEST(IsIdempotentTest, ByMethodUnlessSet) {
  HttpRequest r;
  for (const char* m : {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}) {
    r.method = m;
    EXPECT_TRUE(IsIdempotent(r)) << m;
  }
  for (const char* m : {"POST", "PATCH"}) {
    r.method = m;
    EXPECT_FALSE(IsIdempotent(r)) << m;
  }
  r.method = "POST";
  r.idempotent = true;
  EXPECT_TRUE(IsIdempotent(r));
  r.method = "PUT";
  r.idempotent = false;
  EXPECT_FALSE(IsIdempotent(r));
}

TEST_F(HttpClientTest, UnixSocket) {
  char dir_template[] = "/tmp/cphttpXXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string path = dir + "/api.sock";
  auto server = TestHttpServer::StartUnix(path, &DefaultHandler);
  ASSERT_TRUE(server.ok()) << server.status();

  auto client = MakeClient("unix://" + path);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->endpoint().unix_socket_path, path);
  for (int i = 0; i < 2; ++i) {
    HttpRequest req;
    req.method = "PUT";
    req.path_and_query = "/v1/ping";
    req.body = "ping";
    auto resp = SendAndWait(*client, req);
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_EQ(resp->body, "hello PUT");
  }
  auto seen = (*server)->requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, "/v1/ping");
  EXPECT_EQ(seen[0].body, "ping");
  EXPECT_THAT(seen[0].FindHeader("host"), Pointee(std::string("localhost")));
  EXPECT_EQ((*server)->accepted_connections(), 1);
  server->reset();
  rmdir(dir.c_str());
}

TEST_F(HttpClientTest, DeadlineExceededAgainstSilentServer) {
  auto client = MakeClient(server_->url());
  HttpRequest req;
  req.path_and_query = "/hold?sig=secret";
  req.deadline = absl::Now() + absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  auto resp = SendAndWait(*client, req);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded)
      << resp.status();
  EXPECT_THAT(resp.status().message(), HasSubstr("GET"));
  EXPECT_THAT(resp.status().message(), Not(HasSubstr("secret")));
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(HttpClientTest, ExpiredDeadlineSendsNothing) {
  auto client = MakeClient(server_->url());
  HttpRequest req;
  req.path_and_query = "/never";
  req.deadline = absl::Now() - absl::Seconds(1);
  auto resp = SendAndWait(*client, req);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(server_->accepted_connections(), 0);
  EXPECT_THAT(server_->requests(), IsEmpty());
}

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailable) {
  // A bound but not listening socket: the kernel refuses connections to it,
  // and holding it keeps anyone else from taking the port meanwhile.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto client = MakeClient(absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port)));
  HttpRequest req;
  req.path_and_query = "/x?token=secret";
  req.headers = {{"Authorization", "Bearer topsecret"}};
  req.method = "PUT";
  req.body = "body-secret";
  auto resp = SendAndWait(*client, req);
  close(fd);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable)
      << resp.status();
  EXPECT_THAT(resp.status().message(), HasSubstr("could not connect"));
  EXPECT_THAT(resp.status().message(), HasSubstr("PUT http://127.0.0.1:"));
  EXPECT_THAT(resp.status().message(), Not(HasSubstr("secret")));
}

// A listener whose accept queue is full drops further SYNs, so connecting to
// it hangs: the loopback stand-in for an unreachable host.
class FullListener {
 public:
  FullListener() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listener_, 0);
    socklen_t len = sizeof(addr);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    for (int i = 0; i < 8; ++i) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fillers_.push_back(fd);
    }
  }
  ~FullListener() {
    for (int fd : fillers_) close(fd);
    close(listener_);
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

TEST_F(HttpClientTest, ConnectTimeoutBeforeDeadlineIsUnavailable) {
  FullListener unreachable;
  HttpClientOptions options;
  options.connect_timeout = absl::Milliseconds(300);
  auto client = MakeClient(unreachable.url(), options);
  HttpRequest req;
  req.deadline = absl::Now() + absl::Seconds(10);
  const absl::Time start = absl::Now();
  auto resp = SendAndWait(*client, req);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable)
      << resp.status();
  EXPECT_THAT(resp.status().message(), HasSubstr("could not connect within"));
}

TEST_F(HttpClientTest, DeadlineBeforeConnectTimeoutIsDeadlineExceeded) {
  FullListener unreachable;
  auto client = MakeClient(unreachable.url());  // connect_timeout 10 s
  HttpRequest req;
  req.deadline = absl::Now() + absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  auto resp = SendAndWait(*client, req);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kDeadlineExceeded)
      << resp.status();
}

TEST_F(HttpClientTest, TlsFailureIsUnavailableWithClearMessage) {
  // Speaking TLS to a plain HTTP server fails the handshake.
  auto client = MakeClient(absl::StrCat("https://127.0.0.1:", server_->port()));
  auto resp = SendAndWait(*client, HttpRequest{});
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kUnavailable)
      << resp.status();
  EXPECT_THAT(resp.status().message(), HasSubstr("TLS"));
}

TEST_F(HttpClientTest, ConcurrentRequestsDoNotAddThreads) {
  auto client = MakeClient(server_->url());
  ASSERT_TRUE(SendAndWait(*client, HttpRequest{}).ok());  // warm up
  const int threads_before = CountThreads();
  ASSERT_GT(threads_before, 0);

  // As many as the default cap of connections to one host allows at once.
  constexpr int kRequests = 64;
  std::atomic<int> ok{0};
  std::atomic<int> completed{0};
  std::atomic<int> off_thread{0};
  absl::Notification all_done;
  for (int i = 0; i < kRequests; ++i) {
    HttpRequest req;
    req.path_and_query = absl::StrCat("/hold/", i);
    client->Send(std::move(req), [&](absl::StatusOr<HttpResponse> r) {
      if (!transport_->IsTransportThread()) ++off_thread;
      if (r.ok() && r->status == 200 && r->body == "released") ++ok;
      if (++completed == kRequests) all_done.Notify();
    });
  }
  // All 64 are on the server at once, each on its own connection...
  ASSERT_TRUE(server_->WaitForHeld(kRequests, absl::Seconds(20)))
      << "held " << server_->held_requests();
  // ...and the client side did not grow a thread for them.
  EXPECT_EQ(CountThreads(), threads_before);
  CannedResponse released;
  released.body = "released";
  server_->ReleaseHeld(released);
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(off_thread, 0);
  EXPECT_EQ(CountThreads(), threads_before);
}

TEST_F(HttpClientTest, ConnectionsToOneHostAreCapped) {
  HttpTransportOptions capped;
  capped.max_connections_per_host = 4;
  auto transport = HttpTransport::Create(capped);
  ASSERT_TRUE(transport.ok()) << transport.status();
  auto endpoint = ParseEndpoint(server_->url());
  ASSERT_TRUE(endpoint.ok());
  HttpClientOptions options;
  options.transport = *transport;
  auto client = HttpClient::Create(*endpoint, options);
  ASSERT_TRUE(client.ok()) << client.status();

  constexpr int kRequests = 20;
  std::atomic<int> ok{0};
  std::atomic<int> completed{0};
  absl::Notification all_done;
  for (int i = 0; i < kRequests; ++i) {
    HttpRequest req;
    req.path_and_query = absl::StrCat("/hold/", i);
    (*client)->Send(std::move(req), [&](absl::StatusOr<HttpResponse> r) {
      if (r.ok() && r->status == 200) ++ok;
      if (++completed == kRequests) all_done.Notify();
    });
  }
  // Four reach the server; the other sixteen wait in the transport for one
  // of those connections instead of opening their own.
  ASSERT_TRUE(server_->WaitForHeld(4, absl::Seconds(20)));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(server_->held_requests(), 4);
  EXPECT_EQ(server_->accepted_connections(), 4);
  // Each release lets the next four through on the same connections.
  for (int round = 0; round < kRequests / 4; ++round) {
    ASSERT_TRUE(server_->WaitForRequests(4 * (round + 1), absl::Seconds(20))) << round;
    ASSERT_TRUE(server_->WaitForHeld(4, absl::Seconds(20))) << "round " << round;
    EXPECT_LE(server_->held_requests(), 4);
    server_->ReleaseHeld(CannedResponse{});
    // The release is done once the next four have arrived (or all did).
    if (round + 1 < kRequests / 4) {
      ASSERT_TRUE(server_->WaitForRequests(4 * (round + 2), absl::Seconds(20))) << round;
    }
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(server_->accepted_connections(), 4);
}

TEST_F(HttpClientTest, CallbacksRunInParallelOnCallbackThreads) {
  HttpTransportOptions two;
  two.callback_threads = 2;
  auto transport = HttpTransport::Create(two);
  ASSERT_TRUE(transport.ok()) << transport.status();
  auto endpoint = ParseEndpoint(server_->url());
  HttpClientOptions options;
  options.transport = *transport;
  auto client = HttpClient::Create(*endpoint, options);
  ASSERT_TRUE(client.ok()) << client.status();

  // Each callback waits until both have started: that only ends if they
  // run on two threads at once.
  absl::Mutex mu;
  int entered = 0;
  std::atomic<int> on_transport{0};
  std::atomic<int> met{0};
  absl::Notification both_done;
  std::atomic<int> finished{0};
  auto callback = [&](absl::StatusOr<HttpResponse> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    if ((*transport)->IsTransportThread()) ++on_transport;
    absl::MutexLock lock(&mu);
    ++entered;
    if (mu.AwaitWithTimeout(absl::Condition(
                                +[](int* n) { return *n >= 2; }, &entered),
                            absl::Seconds(10))) {
      ++met;
    }
    if (++finished == 2) both_done.Notify();
  };
  (*client)->Send(HttpRequest{}, callback);
  (*client)->Send(HttpRequest{}, callback);
  ASSERT_TRUE(both_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(met, 2);
  EXPECT_EQ(on_transport, 2);

  // With no callback threads the I/O thread runs them one after the other,
  // and the same pair of callbacks cannot meet.
  HttpTransportOptions none;
  none.callback_threads = 0;
  auto serial = HttpTransport::Create(none);
  ASSERT_TRUE(serial.ok());
  options.transport = *serial;
  auto serial_client = HttpClient::Create(*endpoint, options);
  ASSERT_TRUE(serial_client.ok());
  std::atomic<int> serial_finished{0};
  std::atomic<int> serial_met{0};
  int serial_entered = 0;
  absl::Notification serial_done;
  auto alone = [&](absl::StatusOr<HttpResponse>) {
    absl::MutexLock lock(&mu);
    ++serial_entered;
    if (mu.AwaitWithTimeout(absl::Condition(
                                +[](int* n) { return *n >= 2; }, &serial_entered),
                            absl::Milliseconds(300))) {
      ++serial_met;
    }
    if (++serial_finished == 2) serial_done.Notify();
  };
  (*serial_client)->Send(HttpRequest{}, alone);
  (*serial_client)->Send(HttpRequest{}, alone);
  ASSERT_TRUE(serial_done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // The first callback times out alone; the second finds the count at 2.
  EXPECT_EQ(serial_met, 1);
}

TEST(HttpTransportCreateTest, RejectsCallbackThreadsOutOfRange) {
  HttpTransportOptions options;
  options.callback_threads = -1;
  EXPECT_EQ(HttpTransport::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.callback_threads = 65;
  EXPECT_EQ(HttpTransport::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HttpTransportDefaultTest, ConfiguredOnlyBeforeFirstUse) {
  HttpTransportOptions bad;
  bad.max_connections_per_host = -1;
  EXPECT_EQ(HttpTransport::ConfigureDefault(bad).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_NE(HttpTransport::Default(), nullptr);
  EXPECT_EQ(HttpTransport::ConfigureDefault({}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HttpTransportCreateTest, RejectsNegativeIdleClose) {
  HttpTransportOptions options;
  options.close_idle_after = absl::Milliseconds(-1);
  EXPECT_EQ(HttpTransport::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Polls `open` until it equals `want`; false after `limit`.
bool OpenBecomes(const TestHttpServer& server, int want, absl::Duration limit) {
  const absl::Time end = absl::Now() + limit;
  while (server.open_connections() != want) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

TEST_F(HttpClientTest, IdleConnectionsCloseAfterAQuietSpell) {
  HttpTransportOptions quick;
  quick.close_idle_after = absl::Milliseconds(400);
  auto transport = HttpTransport::Create(quick);
  ASSERT_TRUE(transport.ok()) << transport.status();
  transport_ = *transport;
  auto client = MakeClient(server_->url());
  // Four at once: four connections, kept while anything is in flight.
  std::vector<HttpRequest> held(4);
  std::atomic<int> answered{0};
  for (HttpRequest& r : held) {
    r.path_and_query = "/hold";
    client->Send(std::move(r), [&](absl::StatusOr<HttpResponse> resp) {
      EXPECT_TRUE(resp.ok()) << resp.status();
      ++answered;
    });
  }
  ASSERT_TRUE(server_->WaitForHeld(4, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(800));  // longer than the quiet spell
  EXPECT_EQ(server_->open_connections(), 4) << "closed while transfers were in flight";
  const absl::Time released = absl::Now();
  CannedResponse ok;
  ok.body = "late";
  server_->ReleaseHeld(ok);
  // Kept for reuse at first, then all four closed by the client once
  // nothing has been in flight for 400 ms.
  ASSERT_TRUE(OpenBecomes(*server_, 0, absl::Seconds(10)));
  EXPECT_GE(absl::Now() - released, absl::Milliseconds(350));
  EXPECT_EQ(answered.load(), 4);
  EXPECT_EQ(server_->accepted_connections(), 4);
  // The next request connects again and works.
  ASSERT_TRUE(SendAndWait(*client, HttpRequest{}).ok());
  EXPECT_EQ(server_->accepted_connections(), 5);
  ASSERT_TRUE(OpenBecomes(*server_, 0, absl::Seconds(10)));
}

TEST_F(HttpClientTest, ZeroIdleCloseKeepsConnections) {
  HttpTransportOptions keep;
  keep.close_idle_after = absl::ZeroDuration();
  auto transport = HttpTransport::Create(keep);
  ASSERT_TRUE(transport.ok()) << transport.status();
  transport_ = *transport;
  auto client = MakeClient(server_->url());
  ASSERT_TRUE(SendAndWait(*client, HttpRequest{}).ok());
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(server_->open_connections(), 1);
  ASSERT_TRUE(SendAndWait(*client, HttpRequest{}).ok());
  EXPECT_EQ(server_->accepted_connections(), 1);
}

TEST_F(HttpClientTest, ResponseSizeCap) {
  auto big = TestHttpServer::StartTcp([](const ReceivedRequest& req) {
    CannedResponse r;
    r.body = std::string(req.target == "/small" ? 500 : 5000, 'z');
    r.close_delimited = req.target == "/streamed";
    return std::optional<CannedResponse>(r);
  });
  ASSERT_TRUE(big.ok());
  HttpClientOptions options;
  options.max_response_bytes = 1000;
  auto client = MakeClient((*big)->url(), options);
  for (const char* path : {"/known-length", "/streamed"}) {
    HttpRequest req;
    req.path_and_query = path;
    auto resp = SendAndWait(*client, req);
    EXPECT_EQ(resp.status().code(), absl::StatusCode::kResourceExhausted)
        << path << ": " << resp.status();
    EXPECT_THAT(resp.status().message(), HasSubstr("1000 bytes"));
  }
  HttpRequest small;
  small.path_and_query = "/small";
  auto resp = SendAndWait(*client, small);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->body.size(), 500u);
}

TEST_F(HttpClientTest, MalformedRequestsFailWithoutSending) {
  auto client = MakeClient(server_->url());
  HttpRequest bad_header;
  bad_header.headers = {{"X-Inject", "a\r\nEvil: secret"}};
  auto r1 = SendAndWait(*client, bad_header);
  EXPECT_EQ(r1.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r1.status().message(), HasSubstr("X-Inject"));
  EXPECT_THAT(r1.status().message(), Not(HasSubstr("secret")));

  HttpRequest bad_name;
  bad_name.headers = {{"Bad Name", "v"}};
  EXPECT_EQ(SendAndWait(*client, bad_name).status().code(),
            absl::StatusCode::kInvalidArgument);

  HttpRequest bad_path;
  bad_path.path_and_query = "no-slash";
  EXPECT_EQ(SendAndWait(*client, bad_path).status().code(),
            absl::StatusCode::kInvalidArgument);

  HttpRequest space_path;
  space_path.path_and_query = "/a b";
  EXPECT_EQ(SendAndWait(*client, space_path).status().code(),
            absl::StatusCode::kInvalidArgument);

  HttpRequest bad_method;
  bad_method.method = "GE T";
  EXPECT_EQ(SendAndWait(*client, bad_method).status().code(),
            absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(server_->accepted_connections(), 0);
}

TEST_F(HttpClientTest, SendFromCallbackAndClientDestroyedWhileInFlight) {
  auto client = MakeClient(server_->url());
  absl::Notification done;
  std::vector<int> statuses;
  HttpClient* raw = client.get();
  HttpRequest first;
  first.path_and_query = "/status/201";
  raw->Send(first, [&](absl::StatusOr<HttpResponse> r) {
    statuses.push_back(r.ok() ? r->status : -1);
    HttpRequest second;
    second.path_and_query = "/status/202";
    raw->Send(second, [&](absl::StatusOr<HttpResponse> r2) {
      statuses.push_back(r2.ok() ? r2->status : -1);
      done.Notify();
    });
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(statuses, (std::vector<int>{201, 202}));

  // In-flight requests survive their client.
  absl::Notification late;
  int late_status = 0;
  HttpRequest held;
  held.path_and_query = "/hold";
  client->Send(held, [&](absl::StatusOr<HttpResponse> r) {
    late_status = r.ok() ? r->status : -1;
    late.Notify();
  });
  client.reset();
  ASSERT_TRUE(server_->WaitForHeld(1, absl::Seconds(20)));
  server_->ReleaseHeld(CannedResponse{});
  ASSERT_TRUE(late.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(late_status, 200);
}

TEST_F(HttpClientTest, ShutdownCancelsInFlightAndLaterSends) {
  auto client = MakeClient(server_->url());
  absl::Notification done;
  absl::Status status;
  HttpRequest held;
  held.path_and_query = "/hold";
  client->Send(held, [&](absl::StatusOr<HttpResponse> r) {
    status = r.status();
    done.Notify();
  });
  ASSERT_TRUE(server_->WaitForHeld(1, absl::Seconds(20)));
  transport_->Shutdown();
  ASSERT_TRUE(done.HasBeenNotified());  // Shutdown waited for the callback.
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);

  bool inline_called = false;
  client->Send(HttpRequest{}, [&](absl::StatusOr<HttpResponse> r) {
    inline_called = true;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  });
  EXPECT_TRUE(inline_called);
}

TEST_F(HttpClientTest, TransportReleasedInsideCallback) {
  auto transport = HttpTransport::Create();
  ASSERT_TRUE(transport.ok());
  auto endpoint = ParseEndpoint(server_->url());
  HttpClientOptions options;
  options.transport = *transport;
  transport->reset();
  auto client = HttpClient::Create(*endpoint, options);
  ASSERT_TRUE(client.ok());
  options.transport.reset();
  absl::Notification done;
  HttpClient* raw = client->release();
  raw->Send(HttpRequest{}, [&, raw](absl::StatusOr<HttpResponse> r) {
    EXPECT_TRUE(r.ok());
    delete raw;  // Drops the last reference to the transport, on its thread.
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
}

TEST(HttpClientCreateTest, RejectsBadConfiguration) {
  Endpoint bad_scheme{"ftp://x", ""};
  EXPECT_EQ(HttpClient::Create(bad_scheme).status().code(),
            absl::StatusCode::kInvalidArgument);
  Endpoint tls_unix{"https://localhost", "/tmp/x.sock"};
  EXPECT_EQ(HttpClient::Create(tls_unix).status().code(),
            absl::StatusCode::kInvalidArgument);
  Endpoint relative{"http://localhost", "x.sock"};
  EXPECT_EQ(HttpClient::Create(relative).status().code(),
            absl::StatusCode::kInvalidArgument);
  HttpClientOptions no_ca;
  no_ca.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(HttpClient::Create(Endpoint{"https://h", ""}, no_ca).status().code(),
            absl::StatusCode::kFailedPrecondition);
  HttpClientOptions zero_cap;
  zero_cap.max_response_bytes = 0;
  EXPECT_EQ(
      HttpClient::Create(Endpoint{"https://h", ""}, zero_cap).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloudplane::http
