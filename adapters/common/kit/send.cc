#include "adapters/common/kit/send.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/common/json/json.h"
#include "base/errors.h"

namespace cloudplane::adapters::kit {

absl::Status TransportError(absl::string_view context, const absl::Status& status) {
  absl::Status prefixed(status.code(), absl::StrCat(context, ": ", status.message()));
  // Other details (a RetryInfo from the guard's circuit breaker) go along.
  status.ForEachPayload([&prefixed](absl::string_view url, const absl::Cord& payload) {
    prefixed.SetPayload(url, payload);
  });
  std::optional<google::rpc::ErrorInfo> info = GetErrorInfo(status);
  if (!info.has_value()) return WithErrorInfo(prefixed, DefaultReason(status.code()));
  std::map<std::string, std::string> metadata(info->metadata().begin(), info->metadata().end());
  return WithErrorInfo(prefixed, info->reason(), metadata);
}

absl::Status CheckJsonAnswer(const http::HttpResponse& response) {
  if (response.status == 204 && response.body.empty()) return absl::OkStatus();
  return json::CheckSyntax(response.body, "the provider", {.trailing_commas = true});
}

void Send(http::HttpClient& client, http::HttpRequest request, absl::string_view context,
          ResponseCallback done) {
  client.Send(std::move(request), [context = std::string(context), done = std::move(done)](
                                      absl::StatusOr<http::HttpResponse> r) mutable {
    if (!r.ok()) return done(TransportError(context, r.status()));
    done(std::move(r));
  });
}

}  // namespace cloudplane::adapters::kit
