#include "adapters/common/http/http_transport.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace cloudplane::http {

const std::string* HttpResponse::FindHeader(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

bool IsIdempotent(const HttpRequest& request) {
  if (request.idempotent.has_value()) return *request.idempotent;
  const std::string& m = request.method;
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" ||
         m == "TRACE";
}

std::string HttpTransport::Describe(absl::string_view base_url,
                                    const HttpRequest& request) {
  absl::string_view path = request.path_and_query;
  return absl::StrCat(request.method, " ", base_url, path.substr(0, path.find('?')));
}

}  // namespace cloudplane::http
