// The factory of phantom accounts: options, secret, the two endpoints.
#include "adapters/phantom/phantom_adapter.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/kit/account.h"
#include "adapters/phantom/phantom_provider.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::phantom {
namespace {

// boto 2's scope rule (boto/auth.py, HmacAuthV4Handler): service = first label of the host name;
// region = the second label, or us-east-1 when the name has exactly three.
std::pair<std::string, std::string> BotoScope(absl::string_view host) {
  std::vector<std::string> labels = absl::StrSplit(host, '.');
  const std::string service = labels[0];
  std::string region = "us-east-1";
  if (labels.size() != 3 && labels.size() > 1) region = labels[1];
  return {region, service};
}

// host and path of "scheme://host[:port][/base]".
void SplitBaseUrl(absl::string_view base_url, std::string* host_port, std::string* host,
                  std::string* path) {
  absl::string_view rest = base_url;
  const size_t scheme = rest.find("://");
  if (scheme != absl::string_view::npos) rest.remove_prefix(scheme + 3);
  const size_t slash = rest.find('/');
  *host_port = std::string(rest.substr(0, slash));
  *path = slash == absl::string_view::npos ? "" : std::string(rest.substr(slash));
  absl::string_view h = *host_port;
  if (absl::StartsWith(h, "[")) {
    *host = std::string(h.substr(0, h.find(']') + 1));
  } else {
    *host = std::string(h.substr(0, h.find(':')));
  }
}

// Secret: "AK:SK" [ "\n" "USER:PASSWORD" ]. Messages never repeat it.
absl::Status ReadSecret(absl::string_view secret, Account& account) {
  std::vector<std::string> lines =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(secret), '\n', absl::SkipEmpty());
  for (std::string& line : lines) line = std::string(absl::StripAsciiWhitespace(line));
  if (lines.empty() || lines.size() > 2) {
    return InvalidField("secret",
                        "must be ACCESS_KEY:SECRET_KEY, optionally followed by a line "
                        "USERNAME:PASSWORD for Phantom's REST API");
  }
  const size_t colon = lines[0].find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == lines[0].size()) {
    return InvalidField("secret", "the first line must be ACCESS_KEY:SECRET_KEY");
  }
  account.credentials.access_key_id = lines[0].substr(0, colon);
  account.credentials.secret_access_key = lines[0].substr(colon + 1);
  if (lines.size() == 2) {
    const size_t user_colon = lines[1].find(':');
    if (user_colon == std::string::npos || user_colon == 0) {
      return InvalidField("secret", "the second line must be USERNAME:PASSWORD");
    }
    account.username = lines[1].substr(0, user_colon);
    account.password = lines[1].substr(user_colon + 1);
  }
  return absl::OkStatus();
}

// The query API's client, path, signed host and SigV4 scope.
absl::Status SetUpQueryApi(const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport,
                           Account& account) {
  ASSIGN_OR_RETURN(http::Endpoint endpoint, kit::ParseAccountEndpoint(setup));
  if (!endpoint.unix_socket_path.empty()) {
    return InvalidField("endpoint", "Phantom is reached over http(s), not a unix socket");
  }
  std::string host_port, host, base_path;
  SplitBaseUrl(endpoint.base_url, &host_port, &host, &base_path);
  ASSIGN_OR_RETURN(account.query, kit::MakeHttpClient(std::move(endpoint), setup, transport));
  account.query_path = base_path + "/";
  // Phantom strips the port before it checks the signature (pyhantom/util.py);
  // AWS (and moto) check the Host header as sent, port included.
  account.signed_host = account.dialect == Dialect::kPhantom ? host : host_port;
  if (account.dialect == Dialect::kAws) {
    account.region = "us-east-1";
    account.service = "autoscaling";
  } else {
    std::tie(account.region, account.service) = BotoScope(host);
  }
  return absl::OkStatus();
}

// The strict field contract in the phantom dialect (Info()): each field
// reaches a CreateLaunchConfiguration, CreateAutoScalingGroup,
// SetDesiredCapacity or the existence check of a delete (phantom_wire.cc).
// Left out: launch_template.key_name. Phantom's EPU back-end launches every
// VM with its own key, the one registered for the site through the REST API
// ("phantomkey", phantom_get_default_key_name in pyhantom's
// system/epu/epu_client.py), keeps the requested name only as
// RequestedKeyName and describes every launch configuration with
// "phantomkey".
void HonourPhantomFields(ProviderInfo& info) {
  kit::Honour(info, "AutoscalingService", "CreateLaunchTemplate",
              {"launch_template_id", "launch_template.image", "launch_template.machine_type",
               "launch_template.user_data", "launch_template.locations.location",
               "launch_template.locations.image", "launch_template.locations.machine_type"});
  kit::Honour(info, "AutoscalingService", "DeleteLaunchTemplate", {"allow_missing"});
  // Phantom keeps min = max = target_size; GroupSpecFor refuses other bounds.
  kit::Honour(info, "AutoscalingService", "CreateScalingGroup",
              {"scaling_group_id", "scaling_group.launch_template", "scaling_group.target_size",
               "scaling_group.min_size", "scaling_group.max_size", "scaling_group.locations"});
  kit::Honour(info, "AutoscalingService", "ResizeScalingGroup", {"target_size"});
  kit::Honour(info, "AutoscalingService", "DeleteScalingGroup", {"allow_missing"});
}

// The aws dialect's contract: the phantom dialect's but for
// CreateLaunchTemplate, whose AWS launch configuration takes KeyName and has
// no per-location settings (LaunchConfigsFor refuses locations).
const ProviderInfo& AwsDialectInfo() {
  static const auto* const kInfo = [] {
    auto* info = new ProviderInfo(PhantomProviderInfo());
    info->honoured_fields.erase(FullMethodName("AutoscalingService", "CreateLaunchTemplate"));
    kit::Honour(*info, "AutoscalingService", "CreateLaunchTemplate",
                {"launch_template_id", "launch_template.image", "launch_template.machine_type",
                 "launch_template.key_name", "launch_template.user_data"});
    return info;
  }();
  return *kInfo;
}

}  // namespace

const ProviderInfo& PhantomProvider::Info() const {
  static const auto* const kInfo = new ProviderInfo(PhantomProviderInfo());
  return *kInfo;
}

std::vector<std::string> PhantomProvider::SupportedMethods() const {
  std::vector<std::string> methods = Info().supported_methods;
  if (account_->rest == nullptr) {
    for (const char* method : {"ListLocations", "GetLocation"}) {
      const std::string full = FullMethodName("ComputeService", method);
      methods.erase(std::remove(methods.begin(), methods.end(), full), methods.end());
    }
  }
  return methods;
}

std::vector<std::string> PhantomProvider::HonouredFields(const std::string& method) const {
  const ProviderInfo& info = account_->dialect == Dialect::kAws ? AwsDialectInfo() : Info();
  auto it = info.honoured_fields.find(method);
  return it == info.honoured_fields.end() ? std::vector<std::string>{} : it->second;
}

ProviderInfo PhantomProviderInfo() {
  ProviderInfo info;
  info.kind = "phantom";
  info.display_name = "Nimbus Phantom (and AWS Auto Scaling)";
  info.protocol =
      "AWS Auto Scaling query API with SigV4 (Phantom or AWS dialect); Phantom REST API "
      "with tokens for sites";
  info.watch_source = WatchSource::kPoll;
  kit::AddMethods(info.supported_methods, "AutoscalingService",
                  {"ListLaunchTemplates", "GetLaunchTemplate", "CreateLaunchTemplate",
                   "DeleteLaunchTemplate", "ListScalingGroups", "GetScalingGroup",
                   "CreateScalingGroup", "ResizeScalingGroup", "DeleteScalingGroup"});
  kit::AddMethods(info.supported_methods, "ComputeService", {"ListLocations", "GetLocation"});
  HonourPhantomFields(info);
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreatePhantomProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  auto account = std::make_shared<Account>();
  account->id = setup.account;
  RETURN_IF_ERROR(kit::CheckOptions(setup,
                                    {"dialect", "region", "service", "rest_endpoint",
                                     "default_location", "max_records"},
                                    "phantom"));
  auto option = [&](absl::string_view key) -> std::string {
    auto it = setup.options.find(std::string(key));
    return it == setup.options.end() ? "" : it->second;
  };
  const std::string dialect = option("dialect");
  if (dialect.empty() || dialect == "phantom") {
    account->dialect = Dialect::kPhantom;
  } else if (dialect == "aws") {
    account->dialect = Dialect::kAws;
  } else {
    return InvalidField("options.dialect", "must be \"phantom\" or \"aws\"");
  }
  if (const std::string mr = option("max_records"); !mr.empty()) {
    if (!absl::SimpleAtoi(mr, &account->max_records) || account->max_records < 1 ||
        account->max_records > 100) {
      return InvalidField("options.max_records", "must be an integer from 1 to 100");
    }
  }
  account->default_location = option("default_location");
  if (!account->default_location.empty()) {
    RETURN_IF_ERROR(ValidateId("options.default_location", account->default_location));
  }
  RETURN_IF_ERROR(ReadSecret(setup.secret, *account));

  RETURN_IF_ERROR(SetUpQueryApi(setup, transport, *account));
  if (const std::string r = option("region"); !r.empty()) account->region = r;
  if (const std::string s = option("service"); !s.empty()) account->service = s;
  for (const auto& [field, value] : {std::pair{"options.region", account->region},
                                     std::pair{"options.service", account->service}}) {
    for (char c : value) {
      if (!(absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.')) {
        return InvalidField(field, "may only hold letters, digits, '-', '_' and '.'");
      }
    }
  }

  if (const std::string rest = option("rest_endpoint"); !rest.empty()) {
    if (account->dialect != Dialect::kPhantom) {
      return InvalidField("options.rest_endpoint", "only the phantom dialect has a REST API");
    }
    if (account->username.empty()) {
      return InvalidField("secret",
                          "rest_endpoint needs a second line USERNAME:PASSWORD in the secret");
    }
    absl::StatusOr<http::Endpoint> endpoint = http::ParseEndpoint(rest);
    if (!endpoint.ok()) return InvalidField("options.rest_endpoint", endpoint.status().message());
    if (!endpoint->unix_socket_path.empty()) {
      return InvalidField("options.rest_endpoint",
                          "Phantom is reached over http(s), not a unix socket");
    }
    ASSIGN_OR_RETURN(account->rest, kit::MakeHttpClient(*std::move(endpoint), setup, transport));
  }

  // Loaded here, at start-up: later reads are memory, safe in completions.
  if (setup.scratch != nullptr) {
    RETURN_IF_ERROR(setup.scratch->Load(kCreatesCollection));
    account->scratch = setup.scratch;
  }
  return std::make_unique<PhantomProvider>(std::move(account));
}

absl::Status RegisterPhantom(AdapterRegistry& registry) {
  return registry.Register(PhantomProviderInfo(), [](const AccountSetup& setup) {
    return CreatePhantomProvider(setup);
  });
}

}  // namespace cloudplane::adapters::phantom
