#include "adapters/common/kit/account.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/guard.h"
#include "base/errors.h"

namespace cloudplane::adapters::kit {

absl::Status CheckOptions(const AccountSetup& setup,
                          std::initializer_list<absl::string_view> known,
                          absl::string_view provider) {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : setup.options) {
    if (std::find(known.begin(), known.end(), key) == known.end()) unknown.push_back(key);
  }
  std::sort(unknown.begin(), unknown.end());
  absl::Status status;
  for (const std::string& key : unknown) {
    AddFieldViolation(status, absl::StrCat("options.", key),
                      known.size() == 0
                          ? absl::StrCat("the ", provider, " provider takes no options")
                          : absl::StrCat("unknown option \"", key, "\" for the ", provider,
                                         " provider"));
  }
  return status;
}

absl::StatusOr<http::Endpoint> ParseAccountEndpoint(const AccountSetup& setup) {
  absl::StatusOr<http::Endpoint> endpoint = http::ParseEndpoint(setup.endpoint);
  if (!endpoint.ok()) return InvalidField("endpoint", endpoint.status().message());
  return endpoint;
}

absl::StatusOr<std::unique_ptr<http::HttpClient>> MakeHttpClient(
    http::Endpoint endpoint, const AccountSetup& setup,
    std::shared_ptr<http::HttpTransport> transport) {
  http::HttpClientOptions options;
  options.verify_tls = setup.verify_tls;
  options.ca_file = setup.ca_file;
  if (transport == nullptr) transport = http::HttpTransport::Default();
  options.transport = GuardedTransport::Create(std::move(transport), setup.limits, setup.loop);
  absl::StatusOr<std::unique_ptr<http::HttpClient>> client =
      http::HttpClient::Create(std::move(endpoint), std::move(options));
  if (!client.ok() && client.status().code() == absl::StatusCode::kInvalidArgument) {
    return InvalidField("endpoint", client.status().message());
  }
  return client;
}

absl::StatusOr<std::unique_ptr<http::HttpClient>> MakeHttpClient(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  absl::StatusOr<http::Endpoint> endpoint = ParseAccountEndpoint(setup);
  if (!endpoint.ok()) return endpoint.status();
  return MakeHttpClient(*std::move(endpoint), setup, std::move(transport));
}

void AddMethods(std::vector<std::string>& out, absl::string_view service,
                std::initializer_list<absl::string_view> methods) {
  for (absl::string_view m : methods) out.push_back(FullMethodName(service, m));
}

void Honour(ProviderInfo& info, absl::string_view service, absl::string_view method,
            std::initializer_list<absl::string_view> fields) {
  std::vector<std::string>& out = info.honoured_fields[FullMethodName(service, method)];
  for (absl::string_view f : fields) out.emplace_back(f);
}

}  // namespace cloudplane::adapters::kit
