#include "service/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/message_utf8.h"
#include "base/utf8.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace cloudplane::service {
namespace {

// Collects text-format parse errors instead of printing them to stderr.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) first_ = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

bool IsValidId(const std::string& id) {
  if (id.empty() || id.size() > 63 || !(id[0] >= 'a' && id[0] <= 'z')) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return id.back() != '-';
}

// INVALID_ARGUMENT naming `<field>.<name>` when a set field of ProviderLimits
// is out of its documented range (config.proto); unset fields take defaults.
absl::Status CheckLimits(const config::v1::ProviderLimits& limits, const std::string& field) {
  struct Range {
    bool present;
    double value;
    double low;
    double high;
    absl::string_view name;
  };
  const Range ranges[] = {
      {limits.has_max_in_flight(), 1.0 * limits.max_in_flight(), 0, 10000, "max_in_flight"},
      {limits.has_requests_per_second(), limits.requests_per_second(), 0, 100000,
       "requests_per_second"},
      {limits.has_burst(), 1.0 * limits.burst(), 1, 100000, "burst"},
      {limits.has_max_attempts(), 1.0 * limits.max_attempts(), 1, 20, "max_attempts"},
      {limits.has_initial_backoff_ms(), 1.0 * limits.initial_backoff_ms(), 1, 60000,
       "initial_backoff_ms"},
      {limits.has_max_backoff_ms(), 1.0 * limits.max_backoff_ms(), 1, 600000, "max_backoff_ms"},
      {limits.has_attempt_timeout_ms(), 1.0 * limits.attempt_timeout_ms(), 0, 3600000,
       "attempt_timeout_ms"},
      {limits.has_breaker_failures(), 1.0 * limits.breaker_failures(), 0, 10000,
       "breaker_failures"},
      {limits.has_breaker_cooldown_ms(), 1.0 * limits.breaker_cooldown_ms(), 1, 3600000,
       "breaker_cooldown_ms"},
  };
  for (const Range& r : ranges) {
    // `!(a && b)` refuses NaN too.
    if (r.present && !(r.value >= r.low && r.value <= r.high)) {
      return InvalidField(absl::StrCat(field, ".", r.name),
                          absl::StrCat("must be between ", r.low, " and ", r.high));
    }
  }
  // Only when both are given: an initial backoff above the default maximum
  // raises the maximum to it.
  if (limits.has_initial_backoff_ms() && limits.has_max_backoff_ms() &&
      limits.max_backoff_ms() < limits.initial_backoff_ms()) {
    return InvalidField(absl::StrCat(field, ".max_backoff_ms"),
                        "must not be below initial_backoff_ms");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status FinishConfig(config::v1::ServerConfig& config) {
  if (config.listen_address().empty()) config.set_listen_address("127.0.0.1:7070");
  if (config.state_dir().empty()) config.set_state_dir("state");
  if (config.shutdown_grace_seconds() < 0) {
    return InvalidField("shutdown_grace_seconds", "must not be negative");
  }
  if (config.shutdown_grace_seconds() == 0) config.set_shutdown_grace_seconds(10);
  if (config.operation_timeout_seconds() < 0) {
    return InvalidField("operation_timeout_seconds", "must not be negative");
  }
  if (config.operation_timeout_seconds() == 0) config.set_operation_timeout_seconds(600);
  if (!config.has_audit_retention_seconds()) {
    config.set_audit_retention_seconds(90 * 24 * 3600);
  }
  if (config.audit_retention_seconds() < 1) {
    return InvalidField("audit_retention_seconds", "must be at least 1");
  }
  if (!config.has_operation_retention_seconds()) {
    config.set_operation_retention_seconds(7 * 24 * 3600);
  }
  if (config.operation_retention_seconds() < 1) {
    return InvalidField("operation_retention_seconds", "must be at least 1");
  }
  if (!config.has_change_log_retention_seconds()) {
    config.set_change_log_retention_seconds(24 * 3600);
  }
  if (config.change_log_retention_seconds() < 1) {
    return InvalidField("change_log_retention_seconds", "must be at least 1");
  }
  if (!config.has_change_log_max_entries()) config.set_change_log_max_entries(100000);
  if (config.change_log_max_entries() < 1) {
    return InvalidField("change_log_max_entries", "must be at least 1");
  }
  config::v1::ProviderHttpConfig& http = *config.mutable_provider_http();
  if (!http.has_max_connections_per_host()) http.set_max_connections_per_host(64);
  if (http.max_connections_per_host() < 0 || http.max_connections_per_host() > 100000) {
    return InvalidField("provider_http.max_connections_per_host",
                        "must be between 0 (no cap) and 100000");
  }
  if (!http.has_idle_close_seconds()) http.set_idle_close_seconds(30);
  if (http.idle_close_seconds() < 0) {
    return InvalidField("provider_http.idle_close_seconds", "must not be negative");
  }
  if (config.accounts_size() == 0) {
    auto* sandbox = config.add_accounts();
    sandbox->set_id("sandbox");
    sandbox->set_display_name("Built-in sandbox");
    sandbox->set_provider("sandbox");
  }
  std::set<std::string> seen;
  for (int i = 0; i < config.accounts_size(); ++i) {
    const auto& account = config.accounts(i);
    std::string field = absl::StrCat("accounts[", i, "]");
    if (!IsValidId(account.id())) {
      return InvalidField(absl::StrCat(field, ".id"),
                          "must be 1-63 characters of [a-z0-9-], starting with a letter");
    }
    if (!seen.insert(account.id()).second) {
      return InvalidField(absl::StrCat(field, ".id"),
                          absl::StrCat("account \"", account.id(), "\" is declared twice"));
    }
    if (account.provider().empty()) {
      return InvalidField(absl::StrCat(field, ".provider"), "is required");
    }
    if (absl::Status s = CheckLimits(account.limits(), absl::StrCat(field, ".limits")); !s.ok()) {
      return s;
    }
    if (!account.has_observe_interval_seconds()) {
      config.mutable_accounts(i)->set_observe_interval_seconds(15);
    } else if (account.observe_interval_seconds() < 1) {
      return InvalidField(absl::StrCat(field, ".observe_interval_seconds"), "must be at least 1");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<config::v1::ServerConfig> ParseConfigText(absl::string_view text,
                                                        absl::string_view source) {
  config::v1::ServerConfig config;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", source, " is not a valid ServerConfig: ",
                     // The parser quotes the token it stopped at, bytes and all
                     // (config_fuzz).
                     RepairUtf8(errors.first())));
  }
  // The text format parser takes any bytes in a string (config_fuzz); such
  // a value could not be logged, compared or sent on, so it is refused.
  if (auto path = FindInvalidUtf8(config)) {
    return InvalidField(*path, absl::StrCat("config file ", source, ": not valid UTF-8"));
  }
  if (absl::Status status = FinishConfig(config); !status.ok()) return status;
  return config;
}

absl::StatusOr<config::v1::ServerConfig> LoadConfig(const std::string& path) {
  if (path.empty()) {
    config::v1::ServerConfig config;
    if (absl::Status status = FinishConfig(config); !status.ok()) return status;
    return config;
  }
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfigText(text.str(), path);
}

absl::StatusOr<std::string> ReadSecret(const config::v1::Credentials& credentials) {
  std::string secret;
  switch (credentials.source_case()) {
    case config::v1::Credentials::kFile: {
      std::ifstream in(credentials.file(), std::ios::binary);
      if (!in) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot read credentials file ", credentials.file()));
      }
      std::stringstream text;
      text << in.rdbuf();
      secret = text.str();
      break;
    }
    case config::v1::Credentials::kEnv: {
      const char* value = std::getenv(credentials.env().c_str());
      if (value == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("environment variable ", credentials.env(), " is not set"));
      }
      secret = value;
      break;
    }
    case config::v1::Credentials::SOURCE_NOT_SET:
      return std::string();
  }
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

bool AuthenticationConfigured(const config::v1::ServerConfig& config) {
  return config.auth().has_jwt() || config.auth().api_keys_size() > 0 ||
         !config.tls().client_ca_file().empty();
}

bool IsLoopbackListenAddress(absl::string_view address) {
  // gRPC's server address syntax: `unix:PATH`, `unix-abstract:NAME`, or
  // `HOST:PORT` with an IPv6 host in brackets.
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) {
    return true;
  }
  std::string host;
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    if (close == absl::string_view::npos) return false;
    host = std::string(address.substr(1, close - 1));
  } else {
    size_t colon = address.rfind(':');
    host = std::string(colon == absl::string_view::npos ? address : address.substr(0, colon));
  }
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::Status CheckListenAddress(const config::v1::ServerConfig& config, bool allow_remote) {
  if (allow_remote || AuthenticationConfigured(config) ||
      IsLoopbackListenAddress(config.listen_address())) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to listen on ", config.listen_address(),
      ": no authentication is configured, so anyone who can reach this address could act on "
      "every account; listen on a loopback address (127.0.0.1, [::1], localhost) or a unix: "
      "socket, or pass --insecure_allow_remote to serve it anyway"));
}

}  // namespace cloudplane::service
