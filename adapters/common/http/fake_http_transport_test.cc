#include "adapters/common/http/fake_http_transport.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_client.h"
#include "base/thread_role.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::http {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;

HttpResponse Response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

class FakeHttpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = FakeHttpTransport::Create();
    HttpClientOptions options;
    options.transport = fake_;
    auto client = HttpClient::Create(Endpoint{.base_url = "http://provider.test/api/"},
                                     std::move(options));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // Sends and blocks the test thread until `done` ran.
  absl::StatusOr<HttpResponse> SendAndWait(HttpRequest request) {
    absl::Notification done;
    absl::StatusOr<HttpResponse> result = absl::InternalError("callback never ran");
    client_->Send(std::move(request), [&](absl::StatusOr<HttpResponse> r) {
      result = std::move(r);
      done.Notify();
    });
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(20))) {
      ADD_FAILURE() << "no completion within 20 s";
      return absl::InternalError("timeout in test");
    }
    return result;
  }

  absl::StatusOr<HttpResponse> Get(std::string path) {
    HttpRequest request;
    request.path_and_query = std::move(path);
    return SendAndWait(std::move(request));
  }

  std::shared_ptr<FakeHttpTransport> fake_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(FakeHttpTransportTest, ScriptedAnswerAndRecording) {
  HttpResponse scripted = Response(201, "{\"id\":1}");
  scripted.headers = {{"content-type", "application/json"}};
  fake_->Expect("POST", "/servers?x=1", scripted);
  EXPECT_EQ(fake_->PendingExpectations(), 1u);

  HttpRequest request;
  request.method = "POST";
  request.path_and_query = "/servers?x=1";
  request.headers = {{"Authorization", "Basic abc"}, {"Content-Type", "application/json"}};
  request.body = "{\"name\":\"a\"}";
  absl::StatusOr<HttpResponse> r = SendAndWait(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, "{\"id\":1}");
  ASSERT_NE(r->FindHeader("Content-Type"), nullptr);
  EXPECT_EQ(*r->FindHeader("Content-Type"), "application/json");
  EXPECT_EQ(fake_->PendingExpectations(), 0u);

  std::vector<FakeHttpTransport::SentRequest> sent = fake_->Sent();
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_EQ(sent[0].base_url, "http://provider.test/api");
  EXPECT_EQ(sent[0].request.method, "POST");
  EXPECT_EQ(sent[0].request.path_and_query, "/servers?x=1");
  EXPECT_THAT(sent[0].request.headers,
              ElementsAre(Pair("Authorization", "Basic abc"),
                          Pair("Content-Type", "application/json")));
  EXPECT_EQ(sent[0].request.body, "{\"name\":\"a\"}");

  fake_->ClearSent();
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

TEST_F(FakeHttpTransportTest, ExpectationsAreConsumedInOrder) {
  fake_->Expect("GET", "/a", Response(200, "first"));
  fake_->Expect("GET", "/b", Response(200, "other"));
  fake_->Expect("GET", "/a", Response(200, "second"));
  fake_->Expect("GET", "/a", absl::UnavailableError("scripted failure"));
  EXPECT_EQ(Get("/a")->body, "first");
  EXPECT_EQ(Get("/a")->body, "second");
  absl::StatusOr<HttpResponse> third = Get("/a");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(third.status().message(), "scripted failure");
  EXPECT_EQ(fake_->PendingExpectations(), 1u);
  EXPECT_EQ(Get("/b")->body, "other");
  EXPECT_EQ(fake_->PendingExpectations(), 0u);
  // The method must match too.
  fake_->Expect("DELETE", "/a", Response(204, ""));
  EXPECT_EQ(Get("/a").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(fake_->PendingExpectations(), 1u);
}

TEST_F(FakeHttpTransportTest, TrailingStarIsAPrefixMatch) {
  fake_->Expect("GET", "/servers/*", Response(200, "prefix"));
  fake_->Expect("GET", "/servers/*", Response(200, "prefix again"));
  EXPECT_EQ(Get("/servers/42?fields=all")->body, "prefix");
  EXPECT_EQ(Get("/servers").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(Get("/servers/")->body, "prefix again");
}

TEST_F(FakeHttpTransportTest, StandingHandlers) {
  int calls = 0;
  fake_->On("GET", "/servers/*", [&](const HttpRequest& r) -> absl::StatusOr<HttpResponse> {
    ++calls;
    return Response(200, "handler " + r.path_and_query);
  });
  fake_->On("GET", "/servers/special", [](const HttpRequest&) {
    return absl::StatusOr<HttpResponse>(Response(200, "exact"));
  });
  EXPECT_EQ(Get("/servers/1")->body, "handler /servers/1");
  EXPECT_EQ(Get("/servers/2")->body, "handler /servers/2");
  EXPECT_EQ(Get("/servers/special")->body, "exact");  // Exact beats prefix.
  EXPECT_EQ(calls, 2);

  // A one-shot expectation wins over a handler.
  fake_->Expect("GET", "/servers/1", Response(404, "gone"));
  EXPECT_EQ(Get("/servers/1")->status, 404);
  EXPECT_EQ(Get("/servers/1")->body, "handler /servers/1");

  // A later On() for the same pattern replaces the earlier one.
  fake_->On("GET", "/servers/*", [](const HttpRequest&) -> absl::StatusOr<HttpResponse> {
    return absl::NotFoundError("replaced");
  });
  EXPECT_EQ(Get("/servers/3").status().message(), "replaced");
  EXPECT_EQ(calls, 3);
  EXPECT_THAT(fake_->Sent(), SizeIs(6));
}

TEST_F(FakeHttpTransportTest, UnmatchedRequestIsUnimplementedAndRecorded) {
  HttpRequest request;
  request.method = "PUT";
  request.path_and_query = "/nothing?q=1";
  absl::StatusOr<HttpResponse> r = SendAndWait(request);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(r.status().message(), "fake transport: no answer for PUT /nothing?q=1");
  ASSERT_THAT(fake_->Sent(), SizeIs(1));
  EXPECT_EQ(fake_->Sent()[0].request.method, "PUT");
}

TEST_F(FakeHttpTransportTest, CompletionsRunInOrderOnAMarkedTransportThread) {
  fake_->On("GET", "*", [](const HttpRequest& r) {
    return absl::StatusOr<HttpResponse>(Response(200, r.path_and_query));
  });
  EXPECT_EQ(TransportThreadName(), nullptr);
  EXPECT_FALSE(fake_->IsTransportThread());
  absl::Mutex mu;
  std::vector<std::string> order;
  int marked = 0;
  absl::Notification all_done;
  constexpr int kRequests = 20;
  for (int i = 0; i < kRequests; ++i) {
    HttpRequest request;
    request.path_and_query = "/" + std::to_string(i);
    client_->Send(std::move(request), [&](absl::StatusOr<HttpResponse> r) {
      absl::MutexLock lock(&mu);
      const char* name = TransportThreadName();
      if (name != nullptr && std::string(name) == "http" && fake_->IsTransportThread()) {
        ++marked;
      }
      order.push_back(r.ok() ? r->body : r.status().ToString());
      if (order.size() == kRequests) all_done.Notify();
    });
  }
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(marked, kRequests);
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(order[i], "/" + std::to_string(i));
}

TEST_F(FakeHttpTransportTest, ExpiredDeadlineSendsNothing) {
  fake_->Expect("GET", "/slow", Response(200, "never"));
  HttpRequest request;
  request.path_and_query = "/slow?token=secret";
  request.deadline = absl::Now() - absl::Seconds(1);
  absl::StatusOr<HttpResponse> r = SendAndWait(request);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r.status().message(), "GET http://provider.test/api/slow: deadline exceeded");
  EXPECT_THAT(fake_->Sent(), IsEmpty());
  EXPECT_EQ(fake_->PendingExpectations(), 1u);
}

TEST_F(FakeHttpTransportTest, MalformedRequestIsRefusedOnTheTransportThread) {
  HttpRequest request;
  request.path_and_query = "no-slash";
  bool on_thread = false;
  absl::Notification done;
  absl::Status status;
  client_->Send(request, [&](absl::StatusOr<HttpResponse> r) {
    on_thread = fake_->IsTransportThread();
    status = r.status();
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_TRUE(on_thread);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fake_->Sent(), IsEmpty());
}

TEST_F(FakeHttpTransportTest, ShutdownCancelsQueuedAndLaterRequests) {
  // The first completion blocks the fake's thread so the second stays queued.
  absl::Notification release, first_running, second_done;
  fake_->On("GET", "/block", [&](const HttpRequest&) {
    first_running.Notify();
    release.WaitForNotification();
    return absl::StatusOr<HttpResponse>(Response(200, "blocked"));
  });
  fake_->Expect("GET", "/queued", Response(200, "never delivered"));
  absl::StatusOr<HttpResponse> first = absl::InternalError("not run");
  absl::StatusOr<HttpResponse> second = absl::InternalError("not run");
  HttpRequest block;
  block.path_and_query = "/block";
  client_->Send(block, [&](absl::StatusOr<HttpResponse> r) { first = std::move(r); });
  ASSERT_TRUE(first_running.WaitForNotificationWithTimeout(absl::Seconds(20)));
  HttpRequest queued;
  queued.path_and_query = "/queued?sig=secret";
  client_->Send(queued, [&](absl::StatusOr<HttpResponse> r) {
    second = std::move(r);
    second_done.Notify();
  });
  std::thread releaser([&] {
    absl::SleepFor(absl::Milliseconds(50));
    release.Notify();
  });
  fake_->Shutdown();  // Waits for the thread, so both completions ran.
  releaser.join();
  EXPECT_TRUE(second_done.HasBeenNotified());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->body, "blocked");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(second.status().message(),
            "GET http://provider.test/api/queued: HTTP transport shut down");

  // After shutdown: CANCELLED at once, on the calling thread; not recorded.
  bool inline_call = false;
  absl::Status later;
  client_->Send(queued, [&](absl::StatusOr<HttpResponse> r) {
    inline_call = !fake_->IsTransportThread();
    later = r.status();
  });
  EXPECT_TRUE(inline_call);
  EXPECT_EQ(later.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(fake_->Sent(), SizeIs(2));
  fake_->Shutdown();  // Idempotent.
}

TEST(FakeHttpTransportLifetimeTest, ReleasedInsideCompletion) {
  auto fake = FakeHttpTransport::Create();
  fake->Expect("GET", "/x", Response(200, "ok"));
  HttpClientOptions options;
  options.transport = fake;
  auto client = HttpClient::Create(Endpoint{.base_url = "http://h"}, std::move(options));
  ASSERT_TRUE(client.ok());
  std::shared_ptr<FakeHttpTransport> holder = std::move(fake);
  absl::Notification done;
  HttpRequest request;
  request.path_and_query = "/x";
  std::unique_ptr<HttpClient> owned = *std::move(client);
  HttpClient* raw = owned.get();
  raw->Send(request, [&, owned = std::move(owned)](absl::StatusOr<HttpResponse> r) mutable {
    EXPECT_TRUE(r.ok());
    owned.reset();   // Drops the client's reference to the transport...
    holder.reset();  // ...and the last one, on the fake's own thread.
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
}

}  // namespace
}  // namespace cloudplane::http
