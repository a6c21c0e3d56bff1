#include "adapters/common/http/test_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"

namespace cloudplane::http::testing {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

void SetNonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}

struct Connection {
  int fd = -1;
  int id = 0;
  std::string in;
  std::string out;
  bool held = false;          // a request waits for ReleaseHeld()
  bool close_after_write = false;
};

// `head`: the answer to a HEAD request, which has headers only.
std::string Serialize(const CannedResponse& r, bool head = false) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " Test\r\n");
  for (const auto& [name, value] : r.headers) {
    absl::StrAppend(&out, name, ": ", value, "\r\n");
  }
  if (r.close_delimited) {
    absl::StrAppend(&out, "Connection: close\r\n");
  } else {
    absl::StrAppend(&out, "Content-Length: ", r.body.size(), "\r\n");
  }
  absl::StrAppend(&out, "\r\n");
  if (!head) absl::StrAppend(&out, r.body);
  return out;
}

// Parses one complete request from the front of `in`; returns false when
// more bytes are needed.
bool ParseRequest(std::string& in, ReceivedRequest& req) {
  const size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::vector<std::string> lines =
      absl::StrSplit(in.substr(0, end), "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  req.method = first.size() > 0 ? first[0] : "";
  req.target = first.size() > 1 ? first[1] : "";
  req.headers.clear();
  size_t content_length = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length") {
      (void)absl::SimpleAtoi(value, &content_length);
    }
    req.headers.emplace_back(std::move(name), std::move(value));
  }
  if (in.size() < end + 4 + content_length) return false;
  req.body = in.substr(end + 4, content_length);
  in.erase(0, end + 4 + content_length);
  return true;
}

}  // namespace

const std::string* ReceivedRequest::FindHeader(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

struct TestHttpServer::State {
  Handler handler;
  int listen_fd = -1;
  int wake_read = -1;
  int wake_write = -1;
  std::thread thread;

  mutable absl::Mutex mu;
  bool stop ABSL_GUARDED_BY(mu) = false;
  int accepted ABSL_GUARDED_BY(mu) = 0;
  int closed ABSL_GUARDED_BY(mu) = 0;  // by either side
  int held ABSL_GUARDED_BY(mu) = 0;
  std::vector<ReceivedRequest> requests ABSL_GUARDED_BY(mu);
  std::vector<CannedResponse> releases ABSL_GUARDED_BY(mu);

  void Wake() {
    char c = 1;
    (void)!write(wake_write, &c, 1);
  }

  void Run();
  void ServeInput(Connection& c);
};

void TestHttpServer::State::ServeInput(Connection& c) {
  // A TLS ClientHello (record type 0x16) on this plain port gets the answer
  // real servers give, so TLS clients fail fast instead of timing out.
  if (!c.in.empty() && c.in[0] == '\x16') {
    c.in.clear();
    c.out = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    c.close_after_write = true;
    return;
  }
  ReceivedRequest req;
  while (!c.held && ParseRequest(c.in, req)) {
    req.connection = c.id;
    {
      absl::MutexLock lock(&mu);
      requests.push_back(req);
    }
    std::optional<CannedResponse> response = handler(req);
    if (!response.has_value()) {
      c.held = true;
      absl::MutexLock lock(&mu);
      ++held;
      return;
    }
    if (response->drop) {
      c.in.clear();
      c.close_after_write = true;
      return;
    }
    c.out += Serialize(*response, req.method == "HEAD");
    if (response->close_delimited) c.close_after_write = true;
    const std::string* conn = req.FindHeader("connection");
    if (conn != nullptr && absl::EqualsIgnoreCase(*conn, "close")) {
      c.close_after_write = true;
    }
  }
}

void TestHttpServer::State::Run() {
  std::map<int, Connection> conns;  // by fd
  int next_id = 1;
  auto close_conn = [&](int fd) {
    {
      absl::MutexLock lock(&mu);
      if (conns[fd].held) --held;
      ++closed;
    }
    close(fd);
    conns.erase(fd);
  };
  while (true) {
    std::vector<pollfd> fds;
    fds.push_back({wake_read, POLLIN, 0});
    fds.push_back({listen_fd, POLLIN, 0});
    for (auto& [fd, c] : conns) {
      short events = POLLIN;
      if (!c.out.empty()) events |= POLLOUT;
      fds.push_back({fd, events, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;

    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (read(wake_read, buf, sizeof(buf)) > 0) {
      }
      std::vector<CannedResponse> to_release;
      {
        absl::MutexLock lock(&mu);
        if (stop) break;
        to_release.swap(releases);
      }
      for (const CannedResponse& r : to_release) {
        for (auto& [fd, c] : conns) {
          if (!c.held) continue;
          c.held = false;
          {
            absl::MutexLock lock(&mu);
            --held;
          }
          c.out += Serialize(r);
          if (r.close_delimited) c.close_after_write = true;
          ServeInput(c);  // requests that queued up behind the held one
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      while (true) {
        int fd = accept(listen_fd, nullptr, nullptr);
        if (fd < 0) break;
        SetNonBlocking(fd);
        Connection& c = conns[fd];
        c.fd = fd;
        c.id = next_id++;
        absl::MutexLock lock(&mu);
        ++accepted;
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      const int fd = fds[i].fd;
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Connection& c = it->second;
      bool closed = false;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[16384];
        while (true) {
          ssize_t n = read(fd, buf, sizeof(buf));
          if (n > 0) {
            c.in.append(buf, n);
            continue;
          }
          if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            closed = true;
          }
          break;
        }
        if (closed) {
          close_conn(fd);
          continue;
        }
        ServeInput(c);
      }
      if (!c.out.empty()) {
        ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) c.out.erase(0, n);
      }
      if (c.out.empty() && c.close_after_write) close_conn(fd);
    }
  }
  for (auto& [fd, c] : conns) close(fd);
}

namespace {

absl::StatusOr<std::unique_ptr<TestHttpServer>> Finish(
    std::unique_ptr<TestHttpServer> server,
    std::shared_ptr<TestHttpServer::State> state, Handler handler,
    int listen_fd) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) return Errno("pipe2");
  SetNonBlocking(listen_fd);
  state->handler = std::move(handler);
  state->listen_fd = listen_fd;
  state->wake_read = pipe_fds[0];
  state->wake_write = pipe_fds[1];
  state->thread = std::thread([s = state.get()] { s->Run(); });
  return server;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestHttpServer>> TestHttpServer::StartTcp(
    Handler handler) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 512) != 0) {
    absl::Status s = Errno("bind/listen 127.0.0.1:0");
    close(fd);
    return s;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::unique_ptr<TestHttpServer> server(new TestHttpServer);
  server->port_ = ntohs(addr.sin_port);
  server->state_ = std::make_shared<State>();
  return Finish(std::move(server), server->state_, std::move(handler), fd);
}

absl::StatusOr<std::unique_ptr<TestHttpServer>> TestHttpServer::StartUnix(
    std::string path, Handler handler) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    close(fd);
    return absl::InvalidArgumentError("unix socket path too long");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 512) != 0) {
    absl::Status s = Errno(absl::StrCat("bind/listen ", path));
    close(fd);
    return s;
  }
  std::unique_ptr<TestHttpServer> server(new TestHttpServer);
  server->unix_path_ = std::move(path);
  server->state_ = std::make_shared<State>();
  return Finish(std::move(server), server->state_, std::move(handler), fd);
}

TestHttpServer::~TestHttpServer() {
  if (state_ == nullptr) return;
  {
    absl::MutexLock lock(&state_->mu);
    state_->stop = true;
  }
  state_->Wake();
  if (state_->thread.joinable()) state_->thread.join();
  close(state_->listen_fd);
  close(state_->wake_read);
  close(state_->wake_write);
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
}

std::string TestHttpServer::url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

int TestHttpServer::accepted_connections() const {
  absl::MutexLock lock(&state_->mu);
  return state_->accepted;
}

int TestHttpServer::open_connections() const {
  absl::MutexLock lock(&state_->mu);
  return state_->accepted - state_->closed;
}

std::vector<ReceivedRequest> TestHttpServer::requests() const {
  absl::MutexLock lock(&state_->mu);
  return state_->requests;
}

int TestHttpServer::held_requests() const {
  absl::MutexLock lock(&state_->mu);
  return state_->held;
}

bool TestHttpServer::WaitForRequests(int n, absl::Duration timeout) const {
  State* s = state_.get();
  absl::MutexLock lock(&s->mu);
  auto enough = [s, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return static_cast<int>(s->requests.size()) >= n;
  };
  return s->mu.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool TestHttpServer::WaitForHeld(int n, absl::Duration timeout) const {
  State* s = state_.get();
  absl::MutexLock lock(&s->mu);
  auto enough = [s, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return s->held >= n;
  };
  return s->mu.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

void TestHttpServer::ReleaseHeld(CannedResponse response) {
  {
    absl::MutexLock lock(&state_->mu);
    state_->releases.push_back(std::move(response));
  }
  state_->Wake();
}

int CountThreads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "Threads:")) {
      int n = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(8)), &n)) {
        return n;
      }
    }
  }
  return -1;
}

}  // namespace cloudplane::http::testing
