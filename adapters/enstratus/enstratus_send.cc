#include "adapters/enstratus/enstratus_send.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace cloudplane::adapters::enstratus {

void Send(const Account& a, absl::Time deadline, absl::string_view method,
          absl::string_view rel_path, absl::string_view query, std::string body,
          absl::string_view context, kit::ResponseCallback done) {
  http::HttpRequest request;
  request.method = std::string(method);
  request.path_and_query = absl::StrCat("/", rel_path, query);
  request.deadline = deadline;
  request.headers = SignedHeaders(a.keys, method, absl::StrCat(a.basepath, "/", rel_path),
                                  absl::ToUnixMillis(absl::Now()), a.user_agent);
  if (!body.empty()) {
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = std::move(body);
  }
  // A read whose answer is cut short or garbled is sent again (kit/guard.h).
  if (request.method == "GET") request.validate = kit::CheckJsonAnswer;
  kit::Send(*a.client, std::move(request), context, std::move(done));
}

absl::Status AnswerStatus(const absl::StatusOr<http::HttpResponse>& r,
                          absl::string_view context) {
  if (!r.ok()) return r.status();
  return StatusFromResponse(r->status, r->body, context);
}

}  // namespace cloudplane::adapters::enstratus
