#include "adapters/common/kit/guard.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/common/http/fake_http_transport.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/http/test_http_server.h"
#include "adapters/common/kit/account.h"
#include "adapters/common/kit/send.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::kit {
namespace {

using http::FakeHttpTransport;
using http::HttpRequest;
using http::HttpResponse;
using ::testing::HasSubstr;

// Limits that make tests quick: short backoff, no breaker unless asked.
ProviderLimits FastLimits() {
  ProviderLimits l;
  l.initial_backoff = absl::Milliseconds(10);
  l.max_backoff = absl::Milliseconds(50);
  l.breaker_failures = 0;
  return l;
}

HttpResponse Answer(int status, std::string body = "{}", http::Headers headers = {}) {
  return HttpResponse{status, std::move(headers), std::move(body)};
}

HttpRequest Get(std::string path, absl::Duration timeout = absl::Seconds(10)) {
  HttpRequest r;
  r.path_and_query = std::move(path);
  r.deadline = absl::Now() + timeout;
  return r;
}

HttpRequest Post(std::string path, absl::Duration timeout = absl::Seconds(10)) {
  HttpRequest r = Get(std::move(path), timeout);
  r.method = "POST";
  r.body = "{}";
  return r;
}

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_ = FakeHttpTransport::Create(); }

  // A client on a guard over `inner` (the fake unless given).
  std::unique_ptr<http::HttpClient> Client(ProviderLimits limits, bool with_loop = true,
                                           std::shared_ptr<http::HttpTransport> inner = nullptr,
                                           std::string base_url = "http://provider.test") {
    guard_ = GuardedTransport::Create(inner != nullptr ? inner : fake_, limits,
                                      with_loop ? &loop_ : nullptr);
    http::HttpClientOptions options;
    options.transport = guard_;
    auto client = http::HttpClient::Create(http::Endpoint{.base_url = base_url}, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return *std::move(client);
  }

  // Sends and waits (the test thread only). `on_transport_thread` tells
  // where `done` ran.
  absl::StatusOr<HttpResponse> SendAndWait(http::HttpClient& client, HttpRequest request,
                                           bool* on_transport_thread = nullptr) {
    absl::Notification done;
    absl::StatusOr<HttpResponse> result = absl::InternalError("never completed");
    client.Send(std::move(request), [&](absl::StatusOr<HttpResponse> r) {
      if (on_transport_thread != nullptr) *on_transport_thread = guard_->IsTransportThread();
      result = std::move(r);
      done.Notify();
    });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    return result;
  }

  EventLoop loop_;
  std::shared_ptr<FakeHttpTransport> fake_;
  std::shared_ptr<GuardedTransport> guard_;
};

// ---------------------------------------------------------------------------
// Retries.

TEST_F(GuardTest, RetriesA503ThenSucceedsOnTheTransportThread) {
  auto client = Client(FastLimits());
  fake_->Expect("GET", "/x", Answer(503));
  fake_->Expect("GET", "/x", Answer(200, R"({"ok":true})"));
  bool on_transport_thread = false;
  auto r = SendAndWait(*client, Get("/x"), &on_transport_thread);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_EQ(fake_->Sent().size(), 2u);
  EXPECT_TRUE(on_transport_thread);
}

TEST_F(GuardTest, RetriesConnectionErrorsAnd429AndOtherIdempotentMethods) {
  auto client = Client(FastLimits());
  fake_->Expect("DELETE", "/d", absl::UnavailableError("connection reset"));
  fake_->Expect("DELETE", "/d", Answer(429));
  fake_->Expect("DELETE", "/d", Answer(204, ""));
  HttpRequest del = Get("/d");
  del.method = "DELETE";
  auto r = SendAndWait(*client, del);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(fake_->Sent().size(), 3u);

  // A POST that only reads (an XML-RPC info call) is retried when marked so.
  fake_->Expect("POST", "/rpc", Answer(502));
  fake_->Expect("POST", "/rpc", Answer(200));
  HttpRequest read = Post("/rpc");
  read.idempotent = true;
  r = SendAndWait(*client, read);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(fake_->Sent().size(), 5u);
}

TEST_F(GuardTest, NoRetryOfANonIdempotentRequest) {
  auto client = Client(FastLimits());
  int validated = 0;
  fake_->On("POST", "/create", [](const HttpRequest&) { return Answer(503); });
  auto r = SendAndWait(*client, Post("/create"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(fake_->Sent().size(), 1u);

  fake_->ClearSent();
  fake_->On("POST", "/create", [](const HttpRequest&) -> absl::StatusOr<HttpResponse> {
    return absl::UnavailableError("POST http://provider.test/create: connection reset");
  });
  r = SendAndWait(*client, Post("/create"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fake_->Sent().size(), 1u);

  fake_->ClearSent();
  fake_->On("POST", "/create", [](const HttpRequest&) { return Answer(200, "{garbage"); });
  HttpRequest post = Post("/create");
  post.validate = [&validated](const HttpResponse&) {
    ++validated;
    return absl::InternalError("malformed");
  };
  r = SendAndWait(*client, post);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "{garbage");
  EXPECT_EQ(fake_->Sent().size(), 1u);
  EXPECT_EQ(validated, 0);

  // PATCH, and a PUT marked non-idempotent, likewise.
  fake_->ClearSent();
  fake_->On("*", "/p", [](const HttpRequest&) { return Answer(500); });
  HttpRequest patch = Post("/p");
  patch.method = "PATCH";
  EXPECT_EQ(SendAndWait(*client, patch)->status, 500);
  HttpRequest put = Post("/p");
  put.method = "PUT";
  put.idempotent = false;
  EXPECT_EQ(SendAndWait(*client, put)->status, 500);
  EXPECT_EQ(fake_->Sent().size(), 2u);
}

TEST_F(GuardTest, GivesUpAfterMaxAttemptsWithTheLastFailure) {
  ProviderLimits limits = FastLimits();
  limits.max_attempts = 3;
  auto client = Client(limits);
  for (int i = 1; i <= 4; ++i) {
    fake_->Expect("GET", "/x", absl::UnavailableError(absl::StrCat("reset #", i)));
  }
  auto r = SendAndWait(*client, Get("/x"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "reset #3");
  EXPECT_EQ(fake_->Sent().size(), 3u);

  // Errors that retrying cannot cure are not retried.
  fake_->ClearSent();
  fake_->Expect("GET", "/big", absl::ResourceExhaustedError("too large"));
  fake_->Expect("GET", "/gone", Answer(404));
  EXPECT_EQ(SendAndWait(*client, Get("/big")).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(SendAndWait(*client, Get("/gone"))->status, 404);
  EXPECT_EQ(fake_->Sent().size(), 2u);
}

TEST_F(GuardTest, BackoffIsJitteredAndCapped) {
  ProviderLimits limits = FastLimits();
  limits.max_attempts = 6;
  limits.initial_backoff = absl::Milliseconds(20);
  limits.max_backoff = absl::Milliseconds(40);
  auto client = Client(limits);
  std::vector<absl::Time> at;
  absl::Mutex mu;
  fake_->On("GET", "/x", [&](const HttpRequest&) {
    absl::MutexLock lock(&mu);
    at.push_back(absl::Now());
    return Answer(503);
  });
  auto r = SendAndWait(*client, Get("/x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  absl::MutexLock lock(&mu);
  ASSERT_EQ(at.size(), 6u);
  // Waits are at most 20, 40, 40, 40, 40 ms (plus scheduling slack).
  for (size_t i = 1; i < at.size(); ++i) {
    EXPECT_LT(at[i] - at[i - 1], absl::Milliseconds(40 + 150)) << i;
  }
}

TEST_F(GuardTest, RetryAfterSecondsIsHonoured) {
  auto client = Client(FastLimits());
  std::vector<absl::Time> at;
  absl::Mutex mu;
  std::atomic<int> n{0};
  fake_->On("GET", "/x", [&](const HttpRequest&) {
    absl::MutexLock lock(&mu);
    at.push_back(absl::Now());
    return ++n == 1 ? Answer(429, "", {{"retry-after", "1"}}) : Answer(200);
  });
  auto r = SendAndWait(*client, Get("/x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  absl::MutexLock lock(&mu);
  ASSERT_EQ(at.size(), 2u);
  EXPECT_GE(at[1] - at[0], absl::Milliseconds(990));
}

TEST_F(GuardTest, RetryAfterHttpDateIsHonoured) {
  auto client = Client(FastLimits());
  std::vector<absl::Time> at;
  absl::Mutex mu;
  std::atomic<int> n{0};
  absl::Time retry_at;
  fake_->On("GET", "/x", [&](const HttpRequest&) {
    absl::MutexLock lock(&mu);
    at.push_back(absl::Now());
    if (++n > 1) return Answer(200);
    // Whole seconds: the date two seconds on, rounded down.
    retry_at = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 2);
    return Answer(503, "", {{"retry-after", absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                                                             retry_at, absl::UTCTimeZone())}});
  });
  auto r = SendAndWait(*client, Get("/x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  absl::MutexLock lock(&mu);
  ASSERT_EQ(at.size(), 2u);
  EXPECT_GE(at[1], retry_at - absl::Milliseconds(10));
  EXPECT_GE(at[1] - at[0], absl::Seconds(1));
}

TEST_F(GuardTest, RetryAfterBeyondTheDeadlineEndsTheRetries) {
  auto client = Client(FastLimits());
  fake_->On("GET", "/x", [](const HttpRequest&) {
    return Answer(503, "busy", {{"retry-after", "5"}});
  });
  const absl::Time start = absl::Now();
  auto r = SendAndWait(*client, Get("/x", absl::Seconds(2)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);  // the last answer, at once
  EXPECT_EQ(r->body, "busy");
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(fake_->Sent().size(), 1u);
}

TEST_F(GuardTest, NoAttemptStartsAfterTheDeadline) {
  ProviderLimits limits = FastLimits();
  limits.max_attempts = 100;
  limits.initial_backoff = absl::Milliseconds(50);
  limits.max_backoff = absl::Milliseconds(100);
  auto client = Client(limits);
  std::vector<absl::Time> at;
  absl::Mutex mu;
  fake_->On("GET", "/x", [&](const HttpRequest&) {
    absl::MutexLock lock(&mu);
    at.push_back(absl::Now());
    return Answer(500);
  });
  HttpRequest get = Get("/x", absl::Milliseconds(600));
  const absl::Time deadline = get.deadline;
  auto r = SendAndWait(*client, get);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 500);
  EXPECT_LE(absl::Now(), deadline + absl::Milliseconds(200));
  absl::MutexLock lock(&mu);
  EXPECT_GT(at.size(), 2u);
  for (absl::Time t : at) EXPECT_LT(t, deadline);
}

TEST_F(GuardTest, MalformedReadIsRetriedThroughValidate) {
  auto client = Client(FastLimits());
  fake_->Expect("GET", "/x", Answer(200, R"({"trunc)"));
  fake_->Expect("GET", "/x", Answer(200, R"({"whole":1})"));
  HttpRequest get = Get("/x");
  get.validate = [](const HttpResponse& r) {
    return absl::EndsWith(r.body, "}") ? absl::OkStatus() : absl::InternalError("malformed");
  };
  auto r = SendAndWait(*client, get);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, R"({"whole":1})");
  EXPECT_EQ(fake_->Sent().size(), 2u);

  // Malformed every time: the last answer goes back for the adapter to judge.
  ProviderLimits limits = FastLimits();
  limits.max_attempts = 2;
  client = Client(limits);
  fake_->ClearSent();
  fake_->On("GET", "/bad", [](const HttpRequest&) { return Answer(200, "<html>"); });
  get.path_and_query = "/bad";
  r = SendAndWait(*client, get);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "<html>");
  EXPECT_EQ(fake_->Sent().size(), 2u);
}

TEST_F(GuardTest, EachAttemptHasItsOwnTimeout) {
  ProviderLimits limits = FastLimits();
  limits.attempt_timeout = absl::Milliseconds(300);
  auto client = Client(limits);
  // The fake cannot stall; an attempt that ran out of its own time answers
  // DEADLINE_EXCEEDED, as the real transport does.
  fake_->Expect("GET", "/x", absl::DeadlineExceededError("GET http://provider.test/x: deadline"));
  fake_->Expect("GET", "/x", Answer(200));
  const absl::Time before = absl::Now();
  auto r = SendAndWait(*client, Get("/x", absl::Seconds(20)));
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<FakeHttpTransport::SentRequest> sent = fake_->Sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_LE(sent[0].request.deadline, absl::Now() + absl::Milliseconds(300));
  EXPECT_GE(sent[0].request.deadline, before + absl::Milliseconds(300));

  // A POST keeps the caller's deadline: it is never retried.
  fake_->Expect("POST", "/p", Answer(200));
  HttpRequest post = Post("/p", absl::Seconds(20));
  const absl::Time post_deadline = post.deadline;
  ASSERT_TRUE(SendAndWait(*client, post).ok());
  EXPECT_EQ(fake_->Sent().back().request.deadline, post_deadline);

  // The caller's own deadline is not retried.
  fake_->ClearSent();
  fake_->Expect("GET", "/late", absl::DeadlineExceededError("deadline exceeded"));
  r = SendAndWait(*client, Get("/late", absl::Milliseconds(200)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(fake_->Sent().size(), 1u);
}

// A stalled answer over the real transport: the first request is held by the
// server, the attempt times out and the retry is answered.
TEST_F(GuardTest, StalledAnswerIsAbandonedAndRetried) {
  std::atomic<int> seen{0};
  std::atomic<bool> stall_all{false};
  auto server = http::testing::TestHttpServer::StartTcp(
      [&](const http::testing::ReceivedRequest&)
          -> std::optional<http::testing::CannedResponse> {
        if (++seen == 1 || stall_all) return std::nullopt;  // stall
        http::testing::CannedResponse r;
        r.body = "fresh";
        return r;
      });
  ASSERT_TRUE(server.ok());
  auto curl = http::HttpTransport::Create();
  ASSERT_TRUE(curl.ok());
  ProviderLimits limits = FastLimits();
  limits.attempt_timeout = absl::Milliseconds(300);
  auto client = Client(limits, true, *curl, (*server)->url());
  const absl::Time start = absl::Now();
  auto r = SendAndWait(*client, Get("/slow", absl::Seconds(20)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "fresh");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ((*server)->requests().size(), 2u);

  // Stalled every time: UNAVAILABLE naming the attempt timeout, not the
  // caller's DEADLINE_EXCEEDED (the caller's deadline is still ahead).
  stall_all = true;
  limits.max_attempts = 2;
  client = Client(limits, true, *curl, (*server)->url());
  r = SendAndWait(*client, Get("/slow", absl::Seconds(20)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("attempt timeout"));
  (*curl)->Shutdown();
}

TEST_F(GuardTest, WithoutALoopThereAreNoRetries) {
  auto client = Client(FastLimits(), /*with_loop=*/false);
  fake_->On("GET", "/x", [](const HttpRequest&) { return Answer(503); });
  auto r = SendAndWait(*client, Get("/x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  ASSERT_EQ(fake_->Sent().size(), 1u);
  EXPECT_GT(fake_->Sent()[0].request.deadline, absl::Now() + absl::Seconds(5));
}

// ---------------------------------------------------------------------------
// Limits.

TEST_F(GuardTest, InFlightLimitQueuesInOrder) {
  ProviderLimits limits = FastLimits();
  limits.max_in_flight = 1;
  auto client = Client(limits);
  absl::Notification entered, release;
  fake_->On("GET", "/slow", [&](const HttpRequest&) {
    entered.Notify();
    release.WaitForNotification();  // holds the fake's thread: A stays in flight
    return Answer(200, "a");
  });
  fake_->On("GET", "/fast", [](const HttpRequest&) { return Answer(200, "b"); });
  absl::Notification a_done, b_done;
  std::vector<std::string> order;
  absl::Mutex mu;
  auto record = [&](absl::Notification& n) {
    return [&](absl::StatusOr<HttpResponse> r) {
      absl::MutexLock lock(&mu);
      order.push_back(r.ok() ? r->body : std::string(r.status().message()));
      n.Notify();
    };
  };
  client->Send(Get("/slow"), record(a_done));
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  client->Send(Get("/fast"), record(b_done));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(fake_->Sent().size(), 1u);  // B waits in the guard
  EXPECT_EQ(guard_->snapshot().in_flight, 1);
  EXPECT_EQ(guard_->snapshot().queued, 1);
  release.Notify();
  ASSERT_TRUE(b_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(a_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(fake_->Sent().size(), 2u);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
}

TEST_F(GuardTest, QueuedRequestTimesOutWithoutBeingSent) {
  auto server = http::testing::TestHttpServer::StartTcp(
      [](const http::testing::ReceivedRequest& req)
          -> std::optional<http::testing::CannedResponse> {
        if (req.target == "/hold") return std::nullopt;
        return http::testing::CannedResponse{};
      });
  ASSERT_TRUE(server.ok());
  auto curl = http::HttpTransport::Create();
  ASSERT_TRUE(curl.ok());
  ProviderLimits limits = FastLimits();
  limits.max_in_flight = 1;
  limits.attempt_timeout = absl::ZeroDuration();
  auto client = Client(limits, true, *curl, (*server)->url());
  absl::Notification held_done;
  client->Send(Get("/hold", absl::Seconds(20)), [&](absl::StatusOr<HttpResponse>) {
    held_done.Notify();
  });
  ASSERT_TRUE((*server)->WaitForHeld(1, absl::Seconds(10)));
  const absl::Time start = absl::Now();
  bool on_transport_thread = false;
  auto r = SendAndWait(*client, Get("/queued", absl::Milliseconds(300)), &on_transport_thread);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("waiting to be sent"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_TRUE(on_transport_thread);
  EXPECT_EQ((*server)->requests().size(), 1u);  // only /hold
  (*server)->ReleaseHeld(http::testing::CannedResponse{});
  ASSERT_TRUE(held_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  (*curl)->Shutdown();
}

TEST_F(GuardTest, TokenBucketPacesRequests) {
  ProviderLimits limits = FastLimits();
  limits.requests_per_second = 10;
  limits.burst = 2;
  auto client = Client(limits);
  std::vector<absl::Time> at;
  absl::Mutex mu;
  fake_->On("GET", "/x", [&](const HttpRequest&) {
    absl::MutexLock lock(&mu);
    at.push_back(absl::Now());
    return Answer(200);
  });
  const absl::Time start = absl::Now();
  std::atomic<int> done{0};
  absl::Notification all;
  for (int i = 0; i < 4; ++i) {
    client->Send(Get("/x"), [&](absl::StatusOr<HttpResponse> r) {
      EXPECT_TRUE(r.ok());
      if (++done == 4) all.Notify();
    });
  }
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  ASSERT_EQ(at.size(), 4u);
  EXPECT_LT(at[1] - start, absl::Milliseconds(50));  // the burst
  EXPECT_GE(at[2] - start, absl::Milliseconds(90));  // then one per 100 ms
  EXPECT_GE(at[3] - start, absl::Milliseconds(190));
}

TEST_F(GuardTest, TokenBucketRefusesARequestThatCannotGoBeforeItsDeadline) {
  ProviderLimits limits = FastLimits();
  limits.requests_per_second = 1;
  limits.burst = 1;
  auto client = Client(limits);
  fake_->On("GET", "/x", [](const HttpRequest&) { return Answer(200); });
  ASSERT_TRUE(SendAndWait(*client, Get("/x")).ok());
  const absl::Time start = absl::Now();
  auto r = SendAndWait(*client, Get("/x", absl::Milliseconds(200)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("rate limit"));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(150));  // said at once
  EXPECT_EQ(fake_->Sent().size(), 1u);
}

// ---------------------------------------------------------------------------
// The circuit breaker.

ProviderLimits BreakerLimits() {
  ProviderLimits limits = FastLimits();
  limits.max_attempts = 1;
  limits.breaker_failures = 3;
  limits.breaker_cooldown = absl::Milliseconds(300);
  return limits;
}

TEST_F(GuardTest, BreakerOpensFailsFastWithRetryInfoThenProbesAndCloses) {
  auto client = Client(BreakerLimits());
  bool healthy = false;
  absl::Mutex mu;
  fake_->On("*", "/x", [&](const HttpRequest&) {
    absl::MutexLock lock(&mu);
    return healthy ? Answer(200) : Answer(503);
  });
  // Failures of any request count, a POST's too.
  EXPECT_EQ(SendAndWait(*client, Get("/x"))->status, 503);
  EXPECT_EQ(SendAndWait(*client, Post("/x"))->status, 503);
  EXPECT_FALSE(guard_->snapshot().breaker_open);
  EXPECT_EQ(SendAndWait(*client, Get("/x"))->status, 503);
  EXPECT_TRUE(guard_->snapshot().breaker_open);
  EXPECT_EQ(fake_->Sent().size(), 3u);

  bool on_transport_thread = false;
  auto r = SendAndWait(*client, Get("/x"), &on_transport_thread);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(on_transport_thread);
  EXPECT_THAT(r.status().message(), HasSubstr("circuit breaker open"));
  ASSERT_TRUE(GetErrorInfo(r.status()).has_value());
  EXPECT_EQ(GetErrorInfo(r.status())->reason(), "PROVIDER_UNAVAILABLE");
  EXPECT_EQ(GetErrorInfo(r.status())->metadata().at("circuitBreaker"), "open");
  std::optional<google::rpc::RetryInfo> retry = GetRetryInfo(r.status());
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(retry->retry_delay().seconds(), 0);
  EXPECT_GT(retry->retry_delay().nanos(), 0);
  EXPECT_LE(retry->retry_delay().nanos(), 300'000'000);
  EXPECT_EQ(fake_->Sent().size(), 3u);  // nothing sent while open

  // kit::Send keeps the RetryInfo when it adds its context.
  absl::Notification sent_done;
  absl::Status through_kit;
  kit::Send(*client, Get("/x"), "GET thing x", [&](absl::StatusOr<HttpResponse> r) {
    through_kit = r.status();
    sent_done.Notify();
  });
  ASSERT_TRUE(sent_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_THAT(through_kit.message(), HasSubstr("GET thing x: "));
  EXPECT_TRUE(GetRetryInfo(through_kit).has_value());

  // After the cooldown one probe goes; its success closes the breaker.
  absl::SleepFor(absl::Milliseconds(350));
  {
    absl::MutexLock lock(&mu);
    healthy = true;
  }
  EXPECT_EQ(SendAndWait(*client, Get("/x"))->status, 200);
  EXPECT_FALSE(guard_->snapshot().breaker_open);
  EXPECT_EQ(SendAndWait(*client, Get("/x"))->status, 200);
  EXPECT_EQ(fake_->Sent().size(), 5u);
}

TEST_F(GuardTest, AFailedProbeReopensAndOthersWaitForTheProbe) {
  auto client = Client(BreakerLimits());
  for (int i = 0; i < 3; ++i) {
    fake_->Expect("GET", "/x", Answer(500));
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(SendAndWait(*client, Get("/x"))->status, 500);
  ASSERT_TRUE(guard_->snapshot().breaker_open);

  absl::SleepFor(absl::Milliseconds(350));
  fake_->Expect("GET", "/x", Answer(500));  // the probe fails
  EXPECT_EQ(SendAndWait(*client, Get("/x"))->status, 500);
  auto r = SendAndWait(*client, Get("/x"));  // open again at once
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(fake_->Sent().size(), 4u);

  // Half-open with the probe in flight: others fail fast.
  absl::SleepFor(absl::Milliseconds(350));
  absl::Notification entered, release;
  fake_->On("GET", "/probe", [&](const HttpRequest&) {
    entered.Notify();
    release.WaitForNotification();
    return Answer(200);
  });
  absl::Notification probe_done;
  client->Send(Get("/probe"), [&](absl::StatusOr<HttpResponse> r) {
    EXPECT_TRUE(r.ok());
    probe_done.Notify();
  });
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::Notification other_done;
  absl::Status other;
  client->Send(Get("/x"), [&](absl::StatusOr<HttpResponse> r) {
    other = r.status();
    other_done.Notify();
  });
  release.Notify();
  ASSERT_TRUE(probe_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(other_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(other.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(GetRetryInfo(other).has_value());
  EXPECT_FALSE(guard_->snapshot().breaker_open);
}

TEST_F(GuardTest, AnswersOtherThan5xxResetTheCount) {
  auto client = Client(BreakerLimits());
  fake_->Expect("GET", "/x", Answer(503));
  fake_->Expect("GET", "/x", Answer(503));
  fake_->Expect("GET", "/x", Answer(404));
  fake_->Expect("GET", "/x", Answer(503));
  fake_->Expect("GET", "/x", Answer(503));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(SendAndWait(*client, Get("/x")).ok());
  EXPECT_FALSE(guard_->snapshot().breaker_open);
  EXPECT_EQ(fake_->Sent().size(), 5u);
}

TEST_F(GuardTest, ALastingErrorIsNeitherRetriedNorCountedAgainstTheEndpoint) {
  // Retries allowed (3 attempts) and a breaker that opens after 3 failures.
  ProviderLimits limits = FastLimits();
  limits.max_attempts = 3;
  limits.breaker_failures = 3;
  limits.breaker_cooldown = absl::Seconds(30);
  auto client = Client(limits);
  fake_->On("*", "/broken", [](const HttpRequest&) { return Answer(500, "lasting"); });
  HttpRequest get = Get("/broken");
  get.lasting_error = [](const HttpResponse& r) { return r.body == "lasting"; };
  HttpRequest put = get;
  put.method = "PUT";
  put.idempotent = false;  // the last (only) attempt takes the request
  for (int i = 0; i < 4; ++i) {
    auto r = SendAndWait(*client, i % 2 == 0 ? get : put);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 500);
  }
  EXPECT_EQ(fake_->Sent().size(), 4u);  // one attempt each
  EXPECT_FALSE(guard_->snapshot().breaker_open);

  // Any other 5xx of the same request is retried and counted as before.
  fake_->ClearSent();
  fake_->On("GET", "/flaky", [](const HttpRequest&) { return Answer(500, "proxy says no"); });
  get.path_and_query = "/flaky";
  auto r = SendAndWait(*client, get);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(fake_->Sent().size(), 3u);
  EXPECT_TRUE(guard_->snapshot().breaker_open);
}

// ---------------------------------------------------------------------------
// Shutdown, and MakeHttpClient.

TEST_F(GuardTest, ShutdownCancelsWhatWaitsInTheGuard) {
  ProviderLimits limits = FastLimits();
  limits.max_in_flight = 1;
  auto client = Client(limits);
  absl::Notification entered, release;
  fake_->On("GET", "/slow", [&](const HttpRequest&) {
    entered.Notify();
    release.WaitForNotification();
    return Answer(200);
  });
  absl::Notification a_done, b_done;
  absl::StatusOr<HttpResponse> a = absl::InternalError(""), b = absl::InternalError("");
  client->Send(Get("/slow"), [&](absl::StatusOr<HttpResponse> r) {
    a = std::move(r);
    a_done.Notify();
  });
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  client->Send(Get("/queued"), [&](absl::StatusOr<HttpResponse> r) {
    b = std::move(r);
    b_done.Notify();
  });
  guard_->Shutdown();
  release.Notify();
  ASSERT_TRUE(a_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(b_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(a.ok());  // in flight on the inner transport: completes
  EXPECT_EQ(b.status().code(), absl::StatusCode::kCancelled);
  bool inline_called = false;
  client->Send(Get("/later"), [&](absl::StatusOr<HttpResponse> r) {
    inline_called = true;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  });
  EXPECT_TRUE(inline_called);
  EXPECT_EQ(fake_->Sent().size(), 1u);
}

TEST_F(GuardTest, MakeHttpClientPutsTheGuardUnderEveryAdapter) {
  AccountSetup setup;
  setup.account = "a";
  setup.endpoint = "http://provider.test";
  setup.loop = &loop_;
  setup.limits = FastLimits();
  auto client = MakeHttpClient(setup, fake_);
  ASSERT_TRUE(client.ok()) << client.status();
  fake_->Expect("GET", "/x", Answer(503));
  fake_->Expect("GET", "/x", Answer(200));
  absl::Notification done;
  absl::StatusOr<HttpResponse> result = absl::InternalError("");
  (*client)->Send(Get("/x"), [&](absl::StatusOr<HttpResponse> r) {
    result = std::move(r);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(fake_->Sent().size(), 2u);
}

TEST(CheckJsonAnswerTest, JsonOrANoContentAnswer) {
  EXPECT_TRUE(CheckJsonAnswer(Answer(200, R"({"a":[1,2]})")).ok());
  EXPECT_TRUE(CheckJsonAnswer(Answer(200, R"({"a":[1,2,],})")).ok());
  EXPECT_TRUE(CheckJsonAnswer(Answer(204, "")).ok());
  EXPECT_FALSE(CheckJsonAnswer(Answer(200, "")).ok());
  EXPECT_FALSE(CheckJsonAnswer(Answer(200, R"({"a":[1,)")).ok());
  EXPECT_FALSE(CheckJsonAnswer(Answer(200, "<html>")).ok());
}

// ---------------------------------------------------------------------------
// Retry-After parsing.

TEST(RetryAfterTest, DelaySeconds) {
  const absl::Time now = absl::FromUnixSeconds(1000);
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now), absl::InfiniteDuration());
  EXPECT_EQ(ParseRetryAfter("-1", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("1.5", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
}

TEST(RetryAfterTest, ImfFixdate) {
  // RFC 9110's own example.
  std::optional<absl::Time> t = ParseImfFixdate("Sun, 06 Nov 1994 08:49:37 GMT");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(absl::ToUnixSeconds(*t), 784111777);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT", *t), absl::Seconds(10));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:27 GMT", *t), absl::ZeroDuration());
  EXPECT_TRUE(ParseImfFixdate("Thu, 29 Feb 2024 23:59:59 GMT").has_value());

  EXPECT_FALSE(ParseImfFixdate("Mon, 06 Nov 1994 08:49:37 GMT").has_value());  // wrong day
  EXPECT_FALSE(ParseImfFixdate("Fri, 30 Feb 2024 00:00:00 GMT").has_value());  // no such date
  EXPECT_FALSE(ParseImfFixdate("Sun, 06 Nov 1994 24:00:00 GMT").has_value());
  EXPECT_FALSE(ParseImfFixdate("Sun, 06 Nov 1994 08:49:37 UTC").has_value());
  EXPECT_FALSE(ParseImfFixdate("Sun, 6 Nov 1994 08:49:37 GMT").has_value());
  EXPECT_FALSE(ParseImfFixdate("Sun, 06 Now 1994 08:49:37 GMT").has_value());
  // The obsolete forms are not read (senders must use IMF-fixdate).
  EXPECT_FALSE(ParseImfFixdate("Sunday, 06-Nov-94 08:49:37 GMT").has_value());
  EXPECT_FALSE(ParseImfFixdate("Sun Nov  6 08:49:37 1994").has_value());
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", absl::Now()), std::nullopt);
}

}  // namespace
}  // namespace cloudplane::adapters::kit
