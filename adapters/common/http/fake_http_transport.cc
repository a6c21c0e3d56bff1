#include "adapters/common/http/fake_http_transport.h"

#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/thread_role.h"

namespace cloudplane::http {
namespace {

// How well `pattern` matches `path`: -1 no match; for a prefix pattern the
// prefix length; for an exact pattern more than any prefix can score.
ptrdiff_t MatchScore(absl::string_view pattern, absl::string_view path) {
  if (absl::EndsWith(pattern, "*")) {
    pattern.remove_suffix(1);
    return absl::StartsWith(path, pattern) ? static_cast<ptrdiff_t>(pattern.size()) : -1;
  }
  return pattern == path ? static_cast<ptrdiff_t>(path.size()) + 1 : -1;
}

bool MethodMatches(absl::string_view pattern, absl::string_view method) {
  return pattern == "*" || pattern == method;
}

struct Expectation {
  std::string method;
  std::string pattern;
  absl::StatusOr<HttpResponse> answer;
};

struct HandlerEntry {
  std::string method;
  std::string pattern;
  std::shared_ptr<FakeHttpTransport::Handler> handler;
};

// One queued completion. Either `answer` is set, or `handler` is called with
// `request` on the fake's thread.
struct Job {
  std::string context;  // For the CANCELLED message.
  std::optional<absl::StatusOr<HttpResponse>> answer;
  std::shared_ptr<FakeHttpTransport::Handler> handler;
  HttpRequest request;
  HttpTransport::DoneCallback done;
};

absl::Status ShutDown(absl::string_view context) {
  return absl::CancelledError(absl::StrCat(context, ": HTTP transport shut down"));
}

}  // namespace

struct FakeHttpTransport::State {
  // Queues `job`, or completes it with CANCELLED at once when shut down.
  void Enqueue(Job job) {
    {
      absl::MutexLock lock(&mu);
      if (!stopping) {
        queue.push_back(std::move(job));
        return;
      }
    }
    std::move(job.done)(ShutDown(job.context));
  }

  // Records `request` and decides its answer in `job`: Expect, On, or
  // UNIMPLEMENTED.
  void Record(const Endpoint& endpoint, HttpRequest request, Job& job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  static void Run(std::shared_ptr<State> self);

  mutable absl::Mutex mu;
  std::deque<Job> queue ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::deque<Expectation> expectations ABSL_GUARDED_BY(mu);
  std::vector<HandlerEntry> handlers ABSL_GUARDED_BY(mu);
  std::vector<SentRequest> sent ABSL_GUARDED_BY(mu);

  std::mutex join_mu;
  std::thread thread;
  std::thread::id thread_id;
};

void FakeHttpTransport::State::Run(std::shared_ptr<State> self) {
  MarkTransportThread("http");
  while (true) {
    Job job;
    {
      absl::MutexLock lock(&self->mu);
      self->mu.Await(absl::Condition(
          +[](State* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
            return s->stopping || !s->queue.empty();
          },
          self.get()));
      if (self->stopping) break;
      job = std::move(self->queue.front());
      self->queue.pop_front();
    }
    absl::StatusOr<HttpResponse> result =
        job.answer.has_value() ? *std::move(job.answer) : (*job.handler)(job.request);
    std::move(job.done)(std::move(result));
  }
  // Shutting down: what is still queued is cancelled, in order.
  std::deque<Job> leftover;
  {
    absl::MutexLock lock(&self->mu);
    leftover.swap(self->queue);
  }
  for (Job& job : leftover) std::move(job.done)(ShutDown(job.context));
}

std::shared_ptr<FakeHttpTransport> FakeHttpTransport::Create() {
  auto state = std::make_shared<State>();
  {
    absl::MutexLock lock(&state->mu);
    state->thread = std::thread(&State::Run, state);
    state->thread_id = state->thread.get_id();
  }
  return std::make_shared<FakeHttpTransport>(std::move(state));
}

FakeHttpTransport::FakeHttpTransport(std::shared_ptr<State> state)
    : state_(std::move(state)) {}

FakeHttpTransport::~FakeHttpTransport() {
  Shutdown();
  if (IsTransportThread()) {
    // Dropped inside a completion: the thread cannot join itself. It holds
    // its own reference to `state_` and exits once the completion returns.
    std::lock_guard<std::mutex> join_lock(state_->join_mu);
    if (state_->thread.joinable()) state_->thread.detach();
  }
}

void FakeHttpTransport::Shutdown() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopping = true;
  }
  if (IsTransportThread()) return;
  std::lock_guard<std::mutex> join_lock(state_->join_mu);
  if (state_->thread.joinable()) state_->thread.join();
}

bool FakeHttpTransport::IsTransportThread() const {
  return std::this_thread::get_id() == state_->thread_id;
}

void FakeHttpTransport::Expect(std::string method, std::string path_and_query,
                               absl::StatusOr<HttpResponse> answer) {
  absl::MutexLock lock(&state_->mu);
  state_->expectations.push_back(
      {std::move(method), std::move(path_and_query), std::move(answer)});
}

void FakeHttpTransport::On(std::string method, std::string path_pattern,
                           Handler handler) {
  auto shared = std::make_shared<Handler>(std::move(handler));
  absl::MutexLock lock(&state_->mu);
  for (HandlerEntry& entry : state_->handlers) {
    if (entry.method == method && entry.pattern == path_pattern) {
      entry.handler = std::move(shared);
      return;
    }
  }
  state_->handlers.push_back(
      {std::move(method), std::move(path_pattern), std::move(shared)});
}

std::vector<FakeHttpTransport::SentRequest> FakeHttpTransport::Sent() const {
  absl::MutexLock lock(&state_->mu);
  return state_->sent;
}

void FakeHttpTransport::ClearSent() {
  absl::MutexLock lock(&state_->mu);
  state_->sent.clear();
}

size_t FakeHttpTransport::PendingExpectations() const {
  absl::MutexLock lock(&state_->mu);
  return state_->expectations.size();
}

void FakeHttpTransport::Start(const Endpoint& endpoint,
                              const TransferSettings& /*settings*/,
                              HttpRequest request, DoneCallback done) {
  Job job;
  job.context = Describe(endpoint.base_url, request);
  job.done = std::move(done);
  if (request.deadline <= absl::Now()) {
    // Like the real transport: nothing is sent, so nothing is recorded.
    job.answer = absl::DeadlineExceededError(
        absl::StrCat(job.context, ": deadline exceeded"));
    state_->Enqueue(std::move(job));
    return;
  }
  {
    absl::MutexLock lock(&state_->mu);
    if (!state_->stopping) {
      state_->Record(endpoint, std::move(request), job);
      state_->queue.push_back(std::move(job));
      return;
    }
  }
  std::move(job.done)(ShutDown(job.context));
}

void FakeHttpTransport::State::Record(const Endpoint& endpoint, HttpRequest request,
                                      Job& job) {
  sent.push_back({endpoint.base_url, request});
  for (auto it = expectations.begin(); it != expectations.end(); ++it) {
    if (MethodMatches(it->method, request.method) &&
        MatchScore(it->pattern, request.path_and_query) >= 0) {
      job.answer = std::move(it->answer);
      expectations.erase(it);
      break;
    }
  }
  if (!job.answer.has_value()) {
    ptrdiff_t best = -1;
    for (const HandlerEntry& entry : handlers) {
      if (!MethodMatches(entry.method, request.method)) continue;
      const ptrdiff_t score = MatchScore(entry.pattern, request.path_and_query);
      if (score > best) {
        best = score;
        job.handler = entry.handler;
      }
    }
    if (job.handler != nullptr) {
      job.request = std::move(request);
    } else {
      job.answer = absl::UnimplementedError(absl::StrCat(
          "fake transport: no answer for ", request.method, " ", request.path_and_query));
    }
  }
}

void FakeHttpTransport::Fail(std::string context, absl::Status failure,
                             DoneCallback done) {
  Job job;
  job.context = std::move(context);
  job.answer = std::move(failure);
  job.done = std::move(done);
  state_->Enqueue(std::move(job));
}

}  // namespace cloudplane::http
