// The libcurl HttpTransport: HttpTransport::Default() and Create().
//
// One I/O thread drives libcurl's multi interface through its socket API:
// libcurl tells the thread which sockets to watch and when its next timeout
// is due (OnSocket, OnTimer), the thread waits in epoll and hands libcurl
// only the socket that is ready (curl_multi_socket_action), so the work per
// wake-up follows the sockets that moved, not the number of transfers in
// flight (curl_multi_perform visits, and polls, every transfer each time:
// with 10,000 in flight that was most of the thread). An eventfd in the same
// epoll set wakes the thread when work is queued. All transfers of all clients of a
// transport run on that thread, so connections (and TLS sessions, DNS
// results) are cached and reused across clients with HTTP keep-alive, and
// HTTP/2 streams share connections. A transfer's easy handle is prepared on
// the calling thread in Start() and only touched by the I/O thread once
// queued. What a finished transfer's `done` does (parsing a body,
// translating it, answering an RPC) runs on the callback threads, when the
// transport has them, so the I/O thread only moves bytes. After a quiet
// spell with nothing in flight the thread replaces its multi handle, which
// closes every cached connection (HttpTransportOptions::close_idle_after).
#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/common/http/curl_status.h"
#include "adapters/common/http/http_transport.h"
#include "base/thread_role.h"

namespace cloudplane::http {
namespace {

// curl_global_init is not thread-safe in every libcurl build; do it once,
// before the first handle exists.
void InitCurlOnce() {
  static absl::once_flag once;
  absl::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One request from Start() to `done`. Owned by the transport while queued or
// in flight; only the transport thread touches it once queued.
struct Transfer {
  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (header_list != nullptr) curl_slist_free_all(header_list);
  }

  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  std::string body;  // CURLOPT_POSTFIELDS points into it.
  HttpResponse response;
  size_t received_bytes = 0;
  size_t max_response_bytes = 0;
  bool too_large = false;
  absl::Time deadline = absl::InfiniteFuture();
  absl::Duration connect_timeout;
  std::string context;  // "GET http://host/path" for error messages.
  char error_buffer[CURL_ERROR_SIZE] = {0};
  // Not OK: complete with this status without sending anything.
  absl::Status early_failure;
  HttpTransport::DoneCallback done;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  t->received_bytes += n;
  if (t->received_bytes > t->max_response_bytes) {
    t->too_large = true;
    return 0;  // Makes libcurl abort the transfer with CURLE_WRITE_ERROR.
  }
  t->response.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  t->received_bytes += n;
  if (t->received_bytes > t->max_response_bytes) {
    t->too_large = true;
    return 0;
  }
  absl::string_view line(data, n);
  // A status line starts each response; an interim one (100 Continue) is
  // followed by the final one, whose headers are the ones that count.
  if (absl::StartsWith(line, "HTTP/")) {
    t->response.headers.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return n;  // Blank line ending headers.
  t->response.headers.emplace_back(
      absl::AsciiStrToLower(line.substr(0, colon)),
      std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return n;
}

// Milliseconds for CURLOPT_TIMEOUT_MS, rounded up so libcurl never gives up
// before the deadline; at least 1 because 0 means "no timeout".
long TimeoutMs(absl::Time deadline, absl::Time now) {
  const absl::Duration left = deadline - now;
  if (left >= absl::Milliseconds(LONG_MAX)) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
  return ms < 1 ? 1 : static_cast<long>(ms);
}

absl::Status DeadlineExceeded(const Transfer& t) {
  return absl::DeadlineExceededError(
      absl::StrCat(t.context, ": deadline exceeded"));
}

absl::Status ShutDown(const Transfer& t) {
  return absl::CancelledError(
      absl::StrCat(t.context, ": HTTP transport shut down"));
}

// Sets up the easy handle of `t` for `request`, whose method, path and
// headers HttpClient has validated.
absl::Status Prepare(const Endpoint& endpoint, const TransferSettings& settings,
                     HttpRequest& request, Transfer& t) {
  bool has_content_type = false;
  for (const auto& [name, value] : request.headers) {
    if (absl::EqualsIgnoreCase(name, "expect")) continue;
    if (absl::EqualsIgnoreCase(name, "content-type")) has_content_type = true;
    // "Name;" is libcurl's spelling of a header with an empty value.
    std::string line = value.empty() ? absl::StrCat(name, ";")
                                     : absl::StrCat(name, ": ", value);
    t.header_list = curl_slist_append(t.header_list, line.c_str());
  }

  t.easy = curl_easy_init();
  if (t.easy == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* e = t.easy;
  const std::string url = absl::StrCat(endpoint.base_url, request.path_and_query);
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());  // libcurl copies strings.
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  // Environment proxies (http_proxy, ...) are ignored: provider traffic
  // goes where the configuration says, and tests stay hermetic.
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  // HTTP/2 when the server offers it in the TLS handshake (ALPN), else
  // HTTP/1.1; cleartext http:// stays HTTP/1.1.
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  if (!IsIdempotent(request)) {
    // libcurl sends a request again, on a new connection, when a reused
    // keep-alive connection turns out dead before any answer byte arrived
    // (Curl_retry_request in lib/transfer.c). The server may have received
    // and applied the first copy (it closed after reading it), so a POST
    // would be applied twice. A fresh connection is never "reused", so
    // libcurl never resends it; the cost is one connection set-up per
    // mutation. The connection is kept for later idempotent requests.
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  } else if (absl::StartsWith(endpoint.base_url, "https:")) {
    // While a TLS connection to the host is being set up, wait for it to
    // learn whether it multiplexes (HTTP/2) instead of opening one
    // connection per transfer: a burst of reads then shares a few
    // connections. (Cleartext is always HTTP/1.1, so nothing to wait for.)
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  }
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer);
  // libcurl gives every transfer in progress a receive buffer of this size
  // (16 KiB by default): 160 MiB with 10,000 reads in flight. 4 KiB costs a
  // few more reads of a large body and keeps a burst's memory down.
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, settings.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(
                       1, absl::ToInt64Milliseconds(settings.connect_timeout))));
  if (!endpoint.unix_socket_path.empty()) {
    curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH,
                     endpoint.unix_socket_path.c_str());
  }
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, settings.verify_tls ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, settings.verify_tls ? 2L : 0L);
  if (!settings.ca_file.empty()) {
    curl_easy_setopt(e, CURLOPT_CAINFO, settings.ca_file.c_str());
  }
  // Content-Length known up front: refuse early instead of downloading.
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(settings.max_response_bytes));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);

  const std::string& method = request.method;
  const bool sends_body = !request.body.empty() || method == "POST" ||
                          method == "PUT" || method == "PATCH";
  if (method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (method == "GET" && !sends_body) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    if (method != "POST") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (sends_body) {
      t.body = std::move(request.body);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(t.body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.body.data());
      // libcurl labels POSTFIELDS as a form unless told otherwise.
      if (!has_content_type) {
        t.header_list = curl_slist_append(t.header_list, "Content-Type:");
      }
    }
  }
  // 100-continue costs a round trip (or a 1 s stall against servers that
  // ignore it) and providers do not need it.
  t.header_list = curl_slist_append(t.header_list, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list);
  return absl::OkStatus();
}

// The threads and the multi handle; shared with the threads so they can
// outlive the CurlTransport when that is dropped on one of them.
struct State {
  ~State() {
    if (multi != nullptr) curl_multi_cleanup(multi);
    if (wake_fd >= 0) close(wake_fd);
    if (epoll_fd >= 0) close(epoll_fd);
  }

  // Queues `t` and wakes the thread. Returns `t` back when shut down.
  std::unique_ptr<Transfer> Submit(std::unique_ptr<Transfer> t) {
    absl::MutexLock lock(&mu);
    if (stopping) return t;
    queue.push_back(std::move(t));
    // Under the lock: the thread closes `wake_fd` only after it has seen
    // `stopping`, which cannot happen while we hold the lock and saw false.
    Wake();
    return nullptr;
  }

  void RequestStop() {
    absl::MutexLock lock(&mu);
    if (stopping) return;
    stopping = true;
    Wake();
  }

  void Wake() {
    const uint64_t one = 1;
    // A full counter (never in practice) still leaves the fd readable.
    (void)!write(wake_fd, &one, sizeof(one));
  }

  // libcurl's socket callback: watch `s` for what it asks, or stop.
  static int OnSocket(CURL*, curl_socket_t s, int what, void* user, void*) {
    auto* self = static_cast<State*>(user);
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(self->epoll_fd, EPOLL_CTL_DEL, s, nullptr);
      return 0;
    }
    epoll_event ev{};
    ev.data.fd = s;
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    if (epoll_ctl(self->epoll_fd, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT) {
      epoll_ctl(self->epoll_fd, EPOLL_CTL_ADD, s, &ev);
    }
    return 0;
  }

  // libcurl's timer callback: its next timeout in `ms` (-1: none).
  static int OnTimer(CURLM*, long ms, void* user) {
    auto* self = static_cast<State*>(user);
    self->timer_due = ms < 0 ? absl::InfiniteFuture() : absl::Now() + absl::Milliseconds(ms);
    return 0;
  }

  bool IsOwnThread() const {
    const std::thread::id self = std::this_thread::get_id();
    if (self == thread_id) return true;
    return std::find(worker_ids.begin(), worker_ids.end(), self) != worker_ids.end();
  }

  static void Run(std::shared_ptr<State> self);
  static void Work(std::shared_ptr<State> self);

  // I/O thread only from here on.
  void Start(std::unique_ptr<Transfer> t, bool stop);
  void ReapFinished();
  void Finish(std::unique_ptr<Transfer> t, absl::StatusOr<HttpResponse> result);
  absl::StatusOr<HttpResponse> Result(Transfer& t, CURLcode code);
  // The time by which nothing in flight closes the cached connections
  // (InfiniteFuture: not due).
  absl::Time IdleCloseDue() const;
  // Closes every cached connection by replacing the multi handle; only
  // with nothing in flight.
  void CloseIdleConnections();

  // Applies `options` to `multi`; before the first transfer on it.
  void ConfigureMulti();

  CURLM* multi = nullptr;
  HttpTransportOptions options;  // as given to Create(); read-only
  // I/O thread only: since when nothing is in flight (InfiniteFuture while
  // something is), and whether a transfer ran on `multi` since it was made
  // (so it may hold connections).
  absl::Time idle_since = absl::InfiniteFuture();
  bool multi_used = false;
  int epoll_fd = -1;
  int wake_fd = -1;  // an eventfd, readable when work is queued
  absl::Time timer_due = absl::InfiniteFuture();  // I/O thread only
  absl::Mutex mu;
  std::vector<std::unique_ptr<Transfer>> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;

  absl::flat_hash_map<CURL*, std::unique_ptr<Transfer>> active;

  // Completions waiting for a callback thread, in the order the I/O thread
  // finished them. `no_more_work` is set by the I/O thread after its last
  // completion, so the callback threads drain the queue and exit.
  absl::Mutex work_mu;
  std::deque<absl::AnyInvocable<void() &&>> work ABSL_GUARDED_BY(work_mu);
  bool no_more_work ABSL_GUARDED_BY(work_mu) = false;

  // Written before the threads start, read-only afterwards.
  std::mutex join_mu;
  std::thread thread;
  std::thread::id thread_id;
  std::vector<std::thread> workers;
  std::vector<std::thread::id> worker_ids;
};

void State::Work(std::shared_ptr<State> self) {
  MarkTransportThread("http");
  while (true) {
    absl::AnyInvocable<void() &&> next;
    {
      absl::MutexLock lock(&self->work_mu);
      self->work_mu.Await(absl::Condition(
          +[](State* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->work_mu) {
            return !s->work.empty() || s->no_more_work;
          },
          self.get()));
      if (self->work.empty()) return;  // no_more_work and drained
      next = std::move(self->work.front());
      self->work.pop_front();
    }
    std::move(next)();
  }
}

void State::Run(std::shared_ptr<State> self) {
  MarkTransportThread("http");
  std::vector<std::unique_ptr<Transfer>> incoming;
  bool stop = false;
  while (!stop) {
    {
      absl::MutexLock lock(&self->mu);
      incoming.swap(self->queue);
      stop = self->stopping;
    }
    for (auto& t : incoming) self->Start(std::move(t), stop);
    incoming.clear();
    if (stop) break;
    // Sleeps until a socket is ready, libcurl's next timeout (transfer
    // timeouts included, so they fire on time) or a wake-up from
    // Submit()/RequestStop(). The 1 s cap only bounds a lost wake-up.
    int wait_ms = 1000;
    const absl::Time due = std::min(self->timer_due, self->IdleCloseDue());
    if (due != absl::InfiniteFuture()) {
      const absl::Duration left = due - absl::Now();
      wait_ms = left <= absl::ZeroDuration()
                    ? 0
                    : static_cast<int>(std::min<int64_t>(
                          1000, absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)))));
    }
    epoll_event events[64];
    const int n = epoll_wait(self->epoll_fd, events, 64, wait_ms);
    int running = 0;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == self->wake_fd) {
        uint64_t count;
        (void)!read(self->wake_fd, &count, sizeof(count));
        continue;
      }
      int mask = 0;
      if (events[i].events & EPOLLIN) mask |= CURL_CSELECT_IN;
      if (events[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
      curl_multi_socket_action(self->multi, fd, mask, &running);
    }
    if (self->timer_due <= absl::Now()) {
      // Cleared first: libcurl sets the next one from inside the call.
      self->timer_due = absl::InfiniteFuture();
      curl_multi_socket_action(self->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    self->ReapFinished();
    if (!self->active.empty()) {
      self->idle_since = absl::InfiniteFuture();
    } else if (self->idle_since == absl::InfiniteFuture()) {
      self->idle_since = absl::Now();
    }
    if (self->IdleCloseDue() <= absl::Now()) self->CloseIdleConnections();
  }
  // Shutting down: what is still in flight is cancelled.
  std::vector<std::unique_ptr<Transfer>> leftover;
  for (auto& [easy, t] : self->active) {
    curl_multi_remove_handle(self->multi, easy);
    leftover.push_back(std::move(t));
  }
  self->active.clear();
  for (auto& t : leftover) {
    absl::Status cancelled = ShutDown(*t);
    self->Finish(std::move(t), std::move(cancelled));
  }
  absl::MutexLock lock(&self->work_mu);
  self->no_more_work = true;
}

void State::Start(std::unique_ptr<Transfer> t, bool stop) {
  if (stop) {
    absl::Status cancelled = ShutDown(*t);
    Finish(std::move(t), std::move(cancelled));
    return;
  }
  if (!t->early_failure.ok()) {
    absl::Status failure = t->early_failure;
    Finish(std::move(t), std::move(failure));
    return;
  }
  // The deadline is turned into a timeout only now, so time spent queued
  // counts against it; already past means nothing is sent.
  const absl::Time now = absl::Now();
  if (t->deadline <= now) {
    absl::Status failure = DeadlineExceeded(*t);
    Finish(std::move(t), std::move(failure));
    return;
  }
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, TimeoutMs(t->deadline, now));
  CURL* easy = t->easy;
  multi_used = true;
  idle_since = absl::InfiniteFuture();
  const CURLMcode rc = curl_multi_add_handle(multi, easy);
  if (rc != CURLM_OK) {
    absl::Status failure = absl::InternalError(absl::StrCat(
        t->context, ": cannot start transfer: ", curl_multi_strerror(rc)));
    Finish(std::move(t), std::move(failure));
    return;
  }
  active.emplace(easy, std::move(t));
}

absl::Time State::IdleCloseDue() const {
  if (!multi_used || options.close_idle_after <= absl::ZeroDuration() ||
      idle_since == absl::InfiniteFuture()) {
    return absl::InfiniteFuture();
  }
  return idle_since + options.close_idle_after;
}

void State::CloseIdleConnections() {
  // A fresh handle first: if libcurl cannot make one, the old one (and its
  // connections) stays in service.
  CURLM* fresh = curl_multi_init();
  if (fresh == nullptr) return;
  // Closing a connection may call OnSocket (CURL_POLL_REMOVE) for its socket
  // and OnTimer; both only touch the epoll set and `timer_due`.
  curl_multi_cleanup(multi);
  multi = fresh;
  timer_due = absl::InfiniteFuture();
  multi_used = false;
  ConfigureMulti();
}

void State::ConfigureMulti() {
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &State::OnSocket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &State::OnTimer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, options.max_idle_connections);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, options.max_connections_per_host);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, options.max_connections);
  // HTTP/2 streams per connection: libcurl's own cap is 100; above the
  // server's SETTINGS_MAX_CONCURRENT_STREAMS it takes the server's (Go and
  // many providers allow 250), so a burst needs fewer connections.
  curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
}

void State::ReapFinished() {
  // Every finished message is read before any handle is removed:
  // curl_multi_remove_handle walks the queue of unread messages, so removing
  // each handle as its message is read cost O(n^2) when thousands of
  // transfers finish at once.
  std::vector<std::pair<CURL*, CURLcode>> finished;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg == CURLMSG_DONE) finished.emplace_back(msg->easy_handle, msg->data.result);
  }
  for (const auto& [easy, code] : finished) {
    curl_multi_remove_handle(multi, easy);
    auto node = active.extract(easy);
    if (node.empty()) continue;
    std::unique_ptr<Transfer> t = std::move(node.mapped());
    absl::StatusOr<HttpResponse> result = Result(*t, code);
    Finish(std::move(t), std::move(result));
  }
}

absl::StatusOr<HttpResponse> State::Result(Transfer& t, CURLcode code) {
  if (t.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    return absl::ResourceExhaustedError(
        absl::StrCat(t.context, ": response larger than ",
                     t.max_response_bytes, " bytes"));
  }
  if (code == CURLE_OPERATION_TIMEDOUT) {
    // One CURLcode covers both the whole-transfer timeout (our deadline) and
    // the connect timeout. The latter, hit well before the deadline, means
    // "cannot reach the server": retryable, like a refused connection.
    if (absl::Now() + absl::Milliseconds(5) < t.deadline) {
      return absl::UnavailableError(absl::StrCat(
          t.context, ": could not connect within ",
          absl::FormatDuration(t.connect_timeout)));
    }
    return DeadlineExceeded(t);
  }
  if (code != CURLE_OK) {
    return internal::CurlCodeToStatus(code, t.context, t.error_buffer);
  }
  long status = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
  t.response.status = static_cast<int>(status);
  return std::move(t.response);
}

void State::Finish(std::unique_ptr<Transfer> t,
                   absl::StatusOr<HttpResponse> result) {
  HttpTransport::DoneCallback done = std::move(t->done);
  t.reset();  // Release the easy handle and buffers before user code runs.
  if (workers.empty()) {
    std::move(done)(std::move(result));
    return;
  }
  absl::MutexLock lock(&work_mu);
  work.push_back([done = std::move(done), result = std::move(result)]() mutable {
    std::move(done)(std::move(result));
  });
}

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(std::shared_ptr<State> state)
      : state_(std::move(state)) {}

  ~CurlTransport() override {
    Shutdown();
    if (IsTransportThread()) {
      // Dropped inside a callback: a thread cannot join itself. Each thread
      // holds its own reference to `state_` and exits once the callbacks
      // queued before the shutdown have run.
      std::lock_guard<std::mutex> join_lock(state_->join_mu);
      if (state_->thread.joinable()) state_->thread.detach();
      for (std::thread& w : state_->workers) {
        if (w.joinable()) w.detach();
      }
    }
  }

  void Shutdown() override {
    state_->RequestStop();
    if (IsTransportThread()) return;
    std::lock_guard<std::mutex> join_lock(state_->join_mu);
    // The I/O thread first: it completes what is in flight with CANCELLED
    // and then lets the callback threads run out of work.
    if (state_->thread.joinable()) state_->thread.join();
    for (std::thread& w : state_->workers) {
      if (w.joinable()) w.join();
    }
  }

  bool IsTransportThread() const override { return state_->IsOwnThread(); }

 private:
  void Start(const Endpoint& endpoint, const TransferSettings& settings,
             HttpRequest request, DoneCallback done) override {
    auto t = std::make_unique<Transfer>();
    t->done = std::move(done);
    t->deadline = request.deadline;
    t->connect_timeout = settings.connect_timeout;
    t->max_response_bytes = settings.max_response_bytes;
    t->context = Describe(endpoint.base_url, request);
    // A failure leaves `early_failure` set and the transfer is completed by
    // the thread like any other, so `done` always runs there.
    t->early_failure = Prepare(endpoint, settings, request, *t);
    Submit(std::move(t));
  }

  void Fail(std::string context, absl::Status failure,
            DoneCallback done) override {
    auto t = std::make_unique<Transfer>();
    t->done = std::move(done);
    t->context = std::move(context);
    t->early_failure = std::move(failure);
    Submit(std::move(t));
  }

  void Submit(std::unique_ptr<Transfer> t) {
    std::unique_ptr<Transfer> refused = state_->Submit(std::move(t));
    if (refused == nullptr) return;
    DoneCallback cb = std::move(refused->done);
    absl::Status status = ShutDown(*refused);
    refused.reset();
    std::move(cb)(std::move(status));
  }

  const std::shared_ptr<State> state_;
};

absl::Status CheckOptions(const HttpTransportOptions& options) {
  if (options.callback_threads.has_value() &&
      (*options.callback_threads < 0 || *options.callback_threads > 64)) {
    return absl::InvalidArgumentError("callback_threads must be between 0 and 64");
  }
  if (options.close_idle_after < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("close_idle_after must not be negative");
  }
  if (options.max_idle_connections < 0 || options.max_connections_per_host < 0 ||
      options.max_connections < 0) {
    return absl::InvalidArgumentError("connection limits must not be negative");
  }
  return absl::OkStatus();
}

// What ConfigureDefault() set, and whether Default() exists yet.
struct DefaultSetup {
  absl::Mutex mu;
  HttpTransportOptions options ABSL_GUARDED_BY(mu);
  bool created ABSL_GUARDED_BY(mu) = false;
};

DefaultSetup& TheDefaultSetup() {
  static DefaultSetup* setup = new DefaultSetup;
  return *setup;
}

}  // namespace

absl::StatusOr<std::shared_ptr<HttpTransport>> HttpTransport::Create(
    HttpTransportOptions options) {
  if (absl::Status valid = CheckOptions(options); !valid.ok()) return valid;
  const int callback_threads =
      options.callback_threads.has_value()
          ? *options.callback_threads
          : std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 8);
  InitCurlOnce();
  auto state = std::make_shared<State>();
  state->options = options;
  state->multi = curl_multi_init();
  if (state->multi == nullptr) {
    return absl::InternalError("curl_multi_init failed");
  }
  state->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  state->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (state->epoll_fd < 0 || state->wake_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create the transport's epoll set: errno ", errno));
  }
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = state->wake_fd;
  epoll_ctl(state->epoll_fd, EPOLL_CTL_ADD, state->wake_fd, &wake);
  state->ConfigureMulti();
  {
    std::lock_guard<std::mutex> join_lock(state->join_mu);
    for (int i = 0; i < callback_threads; ++i) {
      state->workers.emplace_back(&State::Work, state);
      state->worker_ids.push_back(state->workers.back().get_id());
    }
    state->thread = std::thread(&State::Run, state);
    state->thread_id = state->thread.get_id();
  }
  return std::shared_ptr<HttpTransport>(
      std::make_shared<CurlTransport>(std::move(state)));
}

absl::Status HttpTransport::ConfigureDefault(HttpTransportOptions options) {
  if (absl::Status valid = CheckOptions(options); !valid.ok()) return valid;
  DefaultSetup& setup = TheDefaultSetup();
  absl::MutexLock lock(&setup.mu);
  if (setup.created) {
    return absl::FailedPreconditionError("the default HTTP transport is already in use");
  }
  setup.options = std::move(options);
  return absl::OkStatus();
}

std::shared_ptr<HttpTransport> HttpTransport::Default() {
  static const std::shared_ptr<HttpTransport>* transport = [] {
    HttpTransportOptions options;
    {
      DefaultSetup& setup = TheDefaultSetup();
      absl::MutexLock lock(&setup.mu);
      setup.created = true;
      options = setup.options;
    }
    absl::StatusOr<std::shared_ptr<HttpTransport>> created = Create(std::move(options));
    if (!created.ok()) {
      std::fprintf(stderr, "cloudplane: cannot create HTTP transport: %s\n",
                   created.status().ToString().c_str());
      std::abort();
    }
    // Leaked on purpose: usable until the process exits.
    return new std::shared_ptr<HttpTransport>(*std::move(created));
  }();
  return *transport;
}

}  // namespace cloudplane::http
