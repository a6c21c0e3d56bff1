#include "adapters/common/websocket/websocket_client.h"

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "boost/beast/websocket.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::websocket {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ws = boost::beast::websocket;
using tcp = asio::ip::tcp;

// A one-connection websocket server on 127.0.0.1:0 (a test double, built on
// Beast's server side). `script` runs with the accepted stream; a handshake
// whose Cookie is not "c=1" is refused with HTTP 401.
class TestServer {
 public:
  using Script = std::function<void(ws::stream<tcp::socket>&)>;
  explicit TestServer(Script script) : acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this, script = std::move(script)] {
      boost::system::error_code ec;
      tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (ec) return;
      beast::flat_buffer buffer;
      beast::http::request<beast::http::string_body> req;
      beast::http::read(socket, buffer, req, ec);
      if (ec) return;
      cookie_ = std::string(req[beast::http::field::cookie]);
      if (cookie_ != "c=1") {
        beast::http::response<beast::http::string_body> res{beast::http::status::unauthorized,
                                                            11};
        res.body() = "no";
        res.prepare_payload();
        beast::http::write(socket, res, ec);
        return;
      }
      ws::stream<tcp::socket> stream(std::move(socket));
      stream.accept(req, ec);
      if (ec) return;
      script(stream);
    });
  }
  ~TestServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/websocket"; }
  std::string cookie() const { return cookie_; }

 private:
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::string cookie_;
  std::thread thread_;
};

struct Recorder {
  absl::Mutex mu;
  std::vector<std::string> messages;
  bool opened = false;
  std::promise<absl::Status> closed;

  ConnectCallbacks Callbacks() {
    return {.on_open = [this] { absl::MutexLock l(&mu); opened = true; },
            .on_message = [this](std::string m) {
              absl::MutexLock l(&mu);
              messages.push_back(std::move(m));
            },
            .on_close = [this](absl::Status s) { closed.set_value(s); }};
  }
};

TEST(ParseWebSocketUrl, Forms) {
  auto u = ParseWebSocketUrl("wss://direct.zrh.cloudsigma.com/websocket");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "direct.zrh.cloudsigma.com");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->target, "/websocket");
  u = ParseWebSocketUrl("ws://[::1]:8080");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->target, "/");
  for (const char* bad : {"http://x/", "ws://", "ws://u:p@host/", "ws://h:0/", "ws://h:99999/",
                          "ws://h/#frag", "ws://[::1/"}) {
    EXPECT_EQ(ParseWebSocketUrl(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(WebSocketConnection, ReceivesMessagesAndSeesAnOrderlyClose) {
  TestServer server([](ws::stream<tcp::socket>& s) {
    s.text(true);
    s.write(asio::buffer(std::string(R"({"resource_type":"drives"})")));
    s.write(asio::buffer(std::string(100000, 'x')));  // fragmented by nobody, large
    s.close(ws::close_code::normal);
    beast::flat_buffer b;
    boost::system::error_code ec;
    s.read(b, ec);  // until the client's close reply
  });
  Recorder rec;
  auto conn = WebSocketConnection::Connect(server.url(), {.headers = {{"Cookie", "c=1"}}},
                                           rec.Callbacks());
  auto status = rec.closed.get_future().get();
  EXPECT_TRUE(status.ok()) << status;
  absl::MutexLock l(&rec.mu);
  EXPECT_TRUE(rec.opened);
  ASSERT_EQ(rec.messages.size(), 2u);
  EXPECT_EQ(rec.messages[0], R"({"resource_type":"drives"})");
  EXPECT_EQ(rec.messages[1].size(), 100000u);
}

TEST(WebSocketConnection, CloseByTheClientIsCancelled) {
  absl::Notification server_saw_close;
  TestServer server([&](ws::stream<tcp::socket>& s) {
    beast::flat_buffer b;
    boost::system::error_code ec;
    s.read(b, ec);  // the client's close frame
    if (ec == ws::error::closed) server_saw_close.Notify();
  });
  Recorder rec;
  absl::Notification opened;
  auto callbacks = rec.Callbacks();
  callbacks.on_open = [&] { opened.Notify(); };
  auto conn = WebSocketConnection::Connect(server.url(), {.headers = {{"Cookie", "c=1"}}},
                                           std::move(callbacks));
  ASSERT_TRUE(opened.WaitForNotificationWithTimeout(absl::Seconds(10)));
  conn->Close();
  conn->Close();  // idempotent
  EXPECT_EQ(rec.closed.get_future().get().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(server_saw_close.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(WebSocketConnection, RefusedHandshakeIsUnavailableWithoutTheCookie) {
  TestServer server([](ws::stream<tcp::socket>&) {});
  Recorder rec;
  auto conn = WebSocketConnection::Connect(
      server.url(), {.headers = {{"Cookie", "secret-cookie"}}}, rec.Callbacks());
  absl::Status status = rec.closed.get_future().get();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), testing::HasSubstr("HTTP 401"));
  EXPECT_THAT(std::string(status.message()), testing::Not(testing::HasSubstr("secret")));
  EXPECT_EQ(server.cookie(), "secret-cookie");
}

TEST(WebSocketConnection, UnreachableAndBadUrl) {
  // A port nobody listens on: bind one, then close it.
  int port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  Recorder rec;
  auto conn = WebSocketConnection::Connect("ws://127.0.0.1:" + std::to_string(port) + "/",
                                           {}, rec.Callbacks());
  EXPECT_EQ(rec.closed.get_future().get().code(), absl::StatusCode::kUnavailable);
  Recorder bad;
  WebSocketConnection::Connect("http://127.0.0.1/", {}, bad.Callbacks());
  EXPECT_EQ(bad.closed.get_future().get().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WebSocketConnection, OversizedMessageIsResourceExhausted) {
  TestServer server([](ws::stream<tcp::socket>& s) {
    boost::system::error_code ec;
    s.write(asio::buffer(std::string(5000, 'y')), ec);
    beast::flat_buffer b;
    s.read(b, ec);
  });
  Recorder rec;
  auto conn = WebSocketConnection::Connect(
      server.url(), {.headers = {{"Cookie", "c=1"}}, .max_message_bytes = 1000},
      rec.Callbacks());
  EXPECT_EQ(rec.closed.get_future().get().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace cloudplane::websocket
