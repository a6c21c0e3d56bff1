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

std::string HttpTransport::Describe(absl::string_view base_url,
                                    const HttpRequest& request) {
  absl::string_view path = request.path_and_query;
  return absl::StrCat(request.method, " ", base_url, path.substr(0, path.find('?')));
}

}  // namespace cloudplane::http
