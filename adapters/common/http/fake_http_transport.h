// A scripted HttpTransport for tests (testonly), in the manner of
// tensorstore's mock_http_transport.h: no sockets, no libcurl.
//
//   auto fake = http::FakeHttpTransport::Create();
//   fake->Expect("GET", "/api/servers?limit=0",
//                http::HttpResponse{200, {{"content-type", "application/json"}}, R"({...})"});
//   fake->On("DELETE", "/api/servers/*", [](const http::HttpRequest& r) {
//     return http::HttpResponse{204};
//   });
//   ... build the adapter with `fake` as its transport (HttpClientOptions::
//   transport, or the adapter factory's transport parameter) and call it ...
//   EXPECT_EQ(fake->Sent()[0].request.method, "GET");
//
// Answering a request (in this order):
//  1. A request whose deadline has passed gets DEADLINE_EXCEEDED
//     ("<METHOD> <base_url><path>: deadline exceeded") and is NOT recorded in
//     Sent(): the real transport sends nothing then. (HttpClient::Send refuses
//     such a request before it reaches any transport.) Requests HttpClient
//     refuses as malformed are not recorded either.
//  2. Every other request is recorded in Sent() at once, during Send().
//  3. The oldest Expect() whose method and pattern match is consumed and its
//     answer (a response or a status, exactly as scripted) is delivered.
//  4. Otherwise the On() handler whose pattern matches is called (on the
//     fake's thread) and its result delivered: an exact pattern wins over a
//     prefix pattern, a longer prefix over a shorter one.
//  5. Otherwise UNIMPLEMENTED "fake transport: no answer for <METHOD> <path>"
//     (path with its query string).
//
// Patterns: `method` equals the request's method ("*" matches any method);
// `path_pattern` equals the request's path_and_query (query included), or,
// when it ends in '*', is a prefix of it (without the '*').
//
// Threads: like the real transport, completions run on the fake's single
// thread, marked with MarkTransportThread("http") (so store::Store aborts when
// called from a completion), one at a time, in the order requests were sent.
// IsTransportThread() is true there. Expect/On/Sent/... are thread-safe and may
// be called from completions and handlers. Shutdown() (also run by the
// destructor) completes requests still queued with CANCELLED ("<METHOD>
// <base_url><path>: HTTP transport shut down") and joins the thread; requests
// sent afterwards complete with CANCELLED at once on the sending thread (and
// are not recorded).
//
// The fake records requests as HttpClient hands them over: headers exactly as
// given (an "Expect" header is not dropped, none is added). TransferSettings
// (TLS, timeouts, max_response_bytes, user agent) are ignored.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_HTTP_FAKE_HTTP_TRANSPORT_H_
#define CLOUDPLANE_ADAPTERS_COMMON_HTTP_FAKE_HTTP_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_transport.h"

namespace cloudplane::http {

class FakeHttpTransport final : public HttpTransport {
 public:
  using Handler =
      absl::AnyInvocable<absl::StatusOr<HttpResponse>(const HttpRequest&)>;

  struct SentRequest {
    std::string base_url;  // Endpoint::base_url of the client, no trailing '/'.
    HttpRequest request;
  };

  // Starts the fake's thread.
  static std::shared_ptr<FakeHttpTransport> Create();

  // Calls Shutdown(); if dropped inside a completion, the thread finishes on
  // its own after that completion returns.
  ~FakeHttpTransport() override;

  // Queues a one-shot answer for the next request matching `method` and
  // `path_and_query` (a trailing '*' makes it a prefix). Consumed in FIFO
  // order among the expectations that match a request.
  void Expect(std::string method, std::string path_and_query,
              absl::StatusOr<HttpResponse> answer);

  // A standing handler, used when no Expect() matches. A later On() with the
  // same method and pattern replaces the earlier one.
  void On(std::string method, std::string path_pattern, Handler handler);

  // Every request received (matched or not, in the order sent), except those
  // refused for an expired deadline or after Shutdown().
  std::vector<SentRequest> Sent() const;
  void ClearSent();

  // Expect() answers not consumed yet.
  size_t PendingExpectations() const;

  void Shutdown() override;
  bool IsTransportThread() const override;

  struct State;  // Defined in fake_http_transport.cc.
  explicit FakeHttpTransport(std::shared_ptr<State> state);  // Use Create().

 private:
  void Start(const Endpoint& endpoint, const TransferSettings& settings,
             HttpRequest request, DoneCallback done) override;
  void Fail(std::string context, absl::Status failure,
            DoneCallback done) override;

  const std::shared_ptr<State> state_;
};

}  // namespace cloudplane::http

#endif  // CLOUDPLANE_ADAPTERS_COMMON_HTTP_FAKE_HTTP_TRANSPORT_H_
