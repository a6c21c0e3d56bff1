// The libcurl HttpTransport: HttpTransport::Default() and Create().
//
// One thread drives libcurl's multi interface (curl_multi_poll, woken by
// curl_multi_wakeup when work is queued). All transfers of all clients of a
// transport run on that thread, so connections (and TLS sessions, DNS
// results) are cached and reused across clients with HTTP keep-alive. A
// transfer's easy handle is prepared on the calling thread in Start() and
// only touched by the transport thread once queued.
#include <curl/curl.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
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
  if (!IsIdempotent(request)) {
    // libcurl sends a request again, on a new connection, when a reused
    // keep-alive connection turns out dead before any answer byte arrived
    // (Curl_retry_request in lib/transfer.c). The server may have received
    // and applied the first copy (it closed after reading it), so a POST
    // would be applied twice. A fresh connection is never "reused", so
    // libcurl never resends it; the cost is one connection set-up per
    // mutation. The connection is kept for later idempotent requests.
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  }
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error_buffer);
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

// The thread and the multi handle; shared with the thread so it can outlive
// the CurlTransport when that is dropped on the thread itself.
struct State {
  ~State() {
    if (multi != nullptr) curl_multi_cleanup(multi);
  }

  // Queues `t` and wakes the thread. Returns `t` back when shut down.
  std::unique_ptr<Transfer> Submit(std::unique_ptr<Transfer> t) {
    absl::MutexLock lock(&mu);
    if (stopping) return t;
    queue.push_back(std::move(t));
    // Under the lock: the thread frees `multi` only after it has seen
    // `stopping`, which cannot happen while we hold the lock and saw false.
    curl_multi_wakeup(multi);
    return nullptr;
  }

  void RequestStop() {
    absl::MutexLock lock(&mu);
    if (stopping) return;
    stopping = true;
    curl_multi_wakeup(multi);
  }

  static void Run(std::shared_ptr<State> self);

  // Transport thread only from here on.
  void Start(std::unique_ptr<Transfer> t, bool stop);
  void ReapFinished();
  void Finish(std::unique_ptr<Transfer> t, absl::StatusOr<HttpResponse> result);
  absl::StatusOr<HttpResponse> Result(Transfer& t, CURLcode code);

  CURLM* multi = nullptr;
  absl::Mutex mu;
  std::vector<std::unique_ptr<Transfer>> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;

  absl::flat_hash_map<CURL*, std::unique_ptr<Transfer>> active;

  std::mutex join_mu;
  std::thread thread;
  std::thread::id thread_id;
};

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
    int running = 0;
    curl_multi_perform(self->multi, &running);
    self->ReapFinished();
    // Sleeps until a socket is ready, libcurl's next internal timeout (which
    // it applies itself, so transfer timeouts fire on time), or a wakeup from
    // Submit()/RequestStop(). The 1 s cap only bounds a lost wakeup.
    curl_multi_poll(self->multi, nullptr, 0, 1000, nullptr);
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
  const CURLMcode rc = curl_multi_add_handle(multi, easy);
  if (rc != CURLM_OK) {
    absl::Status failure = absl::InternalError(absl::StrCat(
        t->context, ": cannot start transfer: ", curl_multi_strerror(rc)));
    Finish(std::move(t), std::move(failure));
    return;
  }
  active.emplace(easy, std::move(t));
}

void State::ReapFinished() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode code = msg->data.result;
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
  std::move(done)(std::move(result));
}

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(std::shared_ptr<State> state)
      : state_(std::move(state)) {}

  ~CurlTransport() override {
    Shutdown();
    if (IsTransportThread()) {
      // Dropped inside a callback: the thread cannot join itself. It holds
      // its own reference to `state_` and exits once the callback returns.
      std::lock_guard<std::mutex> join_lock(state_->join_mu);
      if (state_->thread.joinable()) state_->thread.detach();
    }
  }

  void Shutdown() override {
    state_->RequestStop();
    if (IsTransportThread()) return;
    std::lock_guard<std::mutex> join_lock(state_->join_mu);
    if (state_->thread.joinable()) state_->thread.join();
  }

  bool IsTransportThread() const override {
    return std::this_thread::get_id() == state_->thread_id;
  }

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

}  // namespace

absl::StatusOr<std::shared_ptr<HttpTransport>> HttpTransport::Create(
    HttpTransportOptions options) {
  InitCurlOnce();
  auto state = std::make_shared<State>();
  state->multi = curl_multi_init();
  if (state->multi == nullptr) {
    return absl::InternalError("curl_multi_init failed");
  }
  curl_multi_setopt(state->multi, CURLMOPT_MAXCONNECTS,
                    options.max_idle_connections);
  curl_multi_setopt(state->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    options.max_connections_per_host);
  {
    absl::MutexLock lock(&state->mu);
    state->thread = std::thread(&State::Run, state);
    state->thread_id = state->thread.get_id();
  }
  return std::shared_ptr<HttpTransport>(
      std::make_shared<CurlTransport>(std::move(state)));
}

std::shared_ptr<HttpTransport> HttpTransport::Default() {
  static const std::shared_ptr<HttpTransport>* transport = [] {
    absl::StatusOr<std::shared_ptr<HttpTransport>> created = Create();
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
