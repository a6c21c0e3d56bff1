#include "adapters/common/websocket/websocket_client.h"

#include "base/thread_role.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/ssl.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/ssl.hpp"
#include "boost/beast/websocket.hpp"
#include "boost/beast/websocket/ssl.hpp"

namespace cloudplane::websocket {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ws = boost::beast::websocket;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

// The process-wide io_context and its one thread. Never destroyed, so
// connections may outlive static destructors safely.
struct Context {
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  std::thread::id thread_id;
  std::thread thread;

  Context() {
    std::atomic<bool> started{false};
    thread = std::thread([this, &started] {
      MarkTransportThread("websocket");
      thread_id = std::this_thread::get_id();
      started = true;
      ioc.run();
    });
    while (!started) std::this_thread::yield();
    thread.detach();
  }
  static Context& Get() {
    static Context* const kContext = new Context();
    return *kContext;
  }
};

absl::Status Unavailable(absl::string_view what, const error_code& ec) {
  return absl::UnavailableError(absl::StrCat("websocket ", what, ": ", ec.message()));
}

// One connection over a stream type: plain TCP or TLS over TCP.
template <typename Stream>
class Session final : public WebSocketConnection,
                      public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `pin` keeps alive what the stream refers to (the TLS context).
  template <typename... Args>
  Session(WebSocketUrl url, ConnectOptions options, ConnectCallbacks callbacks,
          std::shared_ptr<void> pin, Args&&... stream_args)
      : url_(std::move(url)),
        options_(std::move(options)),
        callbacks_(std::move(callbacks)),
        pin_(std::move(pin)),
        resolver_(Context::Get().ioc),
        ws_(std::forward<Args>(stream_args)...) {}

  void Start() {
    auto self = this->shared_from_this();
    self_ = self;  // released when on_close runs
    asio::post(Context::Get().ioc, [self] { self->Resolve(); });
  }

  void Close() override {
    if (IsWebSocketThread()) return CloseNow();
    auto self = this->shared_from_this();
    asio::post(Context::Get().ioc, [self] { self->CloseNow(); });
  }

 private:
  void Resolve() {
    if (finished_) return;
    resolver_.async_resolve(
        url_.host, url_.port,
        [self = this->shared_from_this()](const error_code& ec, tcp::resolver::results_type r) {
          if (ec) return self->Finish(Unavailable(absl::StrCat("resolve ", self->url_.host), ec));
          self->Connect(std::move(r));
        });
  }

  void Connect(tcp::resolver::results_type results) {
    if (finished_) return;
    beast::get_lowest_layer(ws_).expires_after(ToChrono(options_.handshake_timeout));
    beast::get_lowest_layer(ws_).async_connect(
        results, [self = this->shared_from_this()](const error_code& ec,
                                                   const tcp::endpoint&) {
          if (ec) return self->Finish(Unavailable("connect", ec));
          self->AfterConnect();
        });
  }

  void AfterConnect() {
    if (finished_) return;
    if constexpr (std::is_same_v<Stream, ws::stream<beast::ssl_stream<beast::tcp_stream>>>) {
      // SNI, and host name verification when verification is on.
      if (!SSL_set_tlsext_host_name(ws_.next_layer().native_handle(), url_.host.c_str())) {
        return Finish(absl::UnavailableError("websocket TLS: cannot set SNI"));
      }
      if (options_.verify_tls) {
        ws_.next_layer().set_verify_callback(asio::ssl::host_name_verification(url_.host));
      }
      ws_.next_layer().async_handshake(
          asio::ssl::stream_base::client, [self = this->shared_from_this()](const error_code& ec) {
            if (ec) return self->Finish(Unavailable("TLS handshake", ec));
            self->Handshake();
          });
    } else {
      Handshake();
    }
  }

  void Handshake() {
    if (finished_) return;
    // Beast's own timers take over from the TCP stream's.
    beast::get_lowest_layer(ws_).expires_never();
    ws::stream_base::timeout timeouts;
    timeouts.handshake_timeout = ToChrono(options_.handshake_timeout);
    timeouts.idle_timeout = ToChrono(options_.idle_timeout);
    timeouts.keep_alive_pings = true;  // ping at half the idle timeout
    ws_.set_option(timeouts);
    ws_.read_message_max(options_.max_message_bytes);
    ws_.set_option(ws::stream_base::decorator(
        [headers = options_.headers, agent = options_.user_agent](ws::request_type& req) {
          req.set(beast::http::field::user_agent, agent);
          for (const auto& [name, value] : headers) req.set(name, value);
        }));
    const bool default_port = url_.port == (url_.tls ? "443" : "80");
    std::string host = absl::StrContains(url_.host, ':') ? absl::StrCat("[", url_.host, "]")
                                                         : url_.host;
    if (!default_port) absl::StrAppend(&host, ":", url_.port);
    ws_.async_handshake(response_, host, url_.target,
                        [self = this->shared_from_this()](const error_code& ec) {
                          if (ec) {
                            if (self->response_.result_int() != 0 &&
                                self->response_.result_int() != 101) {
                              return self->Finish(absl::UnavailableError(absl::StrCat(
                                  "websocket handshake refused with HTTP ",
                                  self->response_.result_int())));
                            }
                            return self->Finish(Unavailable("handshake", ec));
                          }
                          self->open_ = true;
                          if (self->callbacks_.on_open && !self->finished_) {
                            self->callbacks_.on_open();
                          }
                          self->Read();
                        });
  }

  void Read() {
    if (finished_) return;
    ws_.async_read(buffer_, [self = this->shared_from_this()](const error_code& ec, size_t) {
      if (ec == ws::error::closed) return self->Finish(absl::OkStatus());
      if (ec == ws::error::message_too_big || ec == ws::error::buffer_overflow) {
        return self->Finish(absl::ResourceExhaustedError(
            "websocket message larger than max_message_bytes"));
      }
      if (ec) return self->Finish(Unavailable("read", ec));
      std::string message = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      if (self->finished_) return;
      if (self->callbacks_.on_message) self->callbacks_.on_message(std::move(message));
      self->Read();
    });
  }

  void CloseNow() {
    if (finished_) return;
    const bool was_open = open_;
    Finish(absl::CancelledError("websocket closed by the client"));
    if (was_open) {
      // A polite close frame; whatever happens to it, the socket goes.
      ws_.async_close(ws::close_code::normal,
                      [self = this->shared_from_this()](const error_code&) {
                        error_code ignored;
                        beast::get_lowest_layer(self->ws_).socket().close(ignored);
                      });
    } else {
      resolver_.cancel();
      error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
    }
  }

  void Finish(absl::Status status) {
    if (finished_) return;
    finished_ = true;
    if (callbacks_.on_close) std::move(callbacks_.on_close)(std::move(status));
    callbacks_ = {};
    // The pending operation's handler still holds a reference, so this does
    // not destroy us in the middle of a handler.
    asio::post(Context::Get().ioc, [keep = std::move(self_)] {});
  }

  const WebSocketUrl url_;
  const ConnectOptions options_;
  ConnectCallbacks callbacks_;
  // Only touched on the websocket thread.
  bool finished_ = false;
  bool open_ = false;
  std::shared_ptr<Session> self_;
  const std::shared_ptr<void> pin_;  // declared before ws_: outlives it
  tcp::resolver resolver_;
  Stream ws_;
  beast::flat_buffer buffer_;
  ws::response_type response_;
};

using PlainStream = ws::stream<beast::tcp_stream>;
using TlsStream = ws::stream<beast::ssl_stream<beast::tcp_stream>>;

// Owns the TLS context of one wss connection (it must outlive the stream).
struct TlsHolder {
  asio::ssl::context ctx{asio::ssl::context::tls_client};
};

class Failed final : public WebSocketConnection {
 public:
  void Close() override {}
};

}  // namespace

absl::StatusOr<WebSocketUrl> ParseWebSocketUrl(absl::string_view url) {
  WebSocketUrl out;
  absl::string_view rest = url;
  const std::string lower = absl::AsciiStrToLower(url.substr(0, 6));
  if (absl::StartsWith(lower, "wss://")) {
    out.tls = true;
    rest.remove_prefix(6);
  } else if (absl::StartsWith(lower, "ws://")) {
    rest.remove_prefix(5);
  } else {
    return absl::InvalidArgumentError("websocket URL must start with ws:// or wss://");
  }
  if (absl::StrContains(rest, '#')) {
    return absl::InvalidArgumentError("websocket URL must not have a fragment");
  }
  const size_t slash = rest.find_first_of("/?");
  absl::string_view authority = rest.substr(0, slash);
  out.target = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (absl::StartsWith(out.target, "?")) out.target = absl::StrCat("/", out.target);
  if (absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError("websocket URL must not hold credentials");
  }
  absl::string_view port;
  if (absl::StartsWith(authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("websocket URL has an unterminated IPv6 address");
    }
    out.host = std::string(authority.substr(1, close - 1));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return absl::InvalidArgumentError("websocket URL has a bad port");
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return absl::InvalidArgumentError("websocket URL has no host");
  if (port.empty()) {
    out.port = out.tls ? "443" : "80";
  } else {
    int n = 0;
    if (!absl::SimpleAtoi(port, &n) || n < 1 || n > 65535) {
      return absl::InvalidArgumentError("websocket URL has a bad port");
    }
    out.port = std::string(port);
  }
  return out;
}

bool WebSocketConnection::IsWebSocketThread() {
  return std::this_thread::get_id() == Context::Get().thread_id;
}

std::shared_ptr<WebSocketConnection> WebSocketConnection::Connect(absl::string_view url,
                                                                  ConnectOptions options,
                                                                  ConnectCallbacks callbacks) {
  absl::StatusOr<WebSocketUrl> parsed = ParseWebSocketUrl(url);
  auto fail = [&callbacks](absl::Status status) -> std::shared_ptr<WebSocketConnection> {
    if (callbacks.on_close) std::move(callbacks.on_close)(std::move(status));
    return std::make_shared<Failed>();
  };
  if (!parsed.ok()) return fail(parsed.status());
  asio::io_context& ioc = Context::Get().ioc;
  if (!parsed->tls) {
    auto session = std::make_shared<Session<PlainStream>>(*std::move(parsed), std::move(options),
                                                          std::move(callbacks), nullptr, ioc);
    session->Start();
    return session;
  }
  auto tls = std::make_shared<TlsHolder>();
  error_code ec;
  tls->ctx.set_verify_mode(options.verify_tls ? asio::ssl::verify_peer : asio::ssl::verify_none,
                           ec);
  if (!ec) {
    if (!options.ca_file.empty()) {
      tls->ctx.load_verify_file(options.ca_file, ec);
      if (ec) {
        return fail(absl::FailedPreconditionError("websocket: cannot read the CA file"));
      }
    } else {
      tls->ctx.set_default_verify_paths(ec);
    }
  }
  if (ec) return fail(absl::InternalError(absl::StrCat("websocket TLS setup: ", ec.message())));
  auto session = std::make_shared<Session<TlsStream>>(*std::move(parsed), std::move(options),
                                                      std::move(callbacks), tls, ioc, tls->ctx);
  session->Start();
  return session;
}

}  // namespace cloudplane::websocket
