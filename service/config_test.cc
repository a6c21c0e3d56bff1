#include "service/config.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/errors.h"
#include "base/utf8.h"
#include "gtest/gtest.h"
#include "service/accounts.h"

namespace cloudplane::service {
namespace {

std::string WriteTemp(const std::string& name, const std::string& text) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, EmptyPathIsTheSandboxDefault) {
  auto config = LoadConfig("");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->accounts_size(), 1);
  EXPECT_EQ(config->accounts(0).id(), "sandbox");
  EXPECT_EQ(config->accounts(0).provider(), "sandbox");
  EXPECT_EQ(config->listen_address(), "127.0.0.1:7070");
  EXPECT_EQ(config->operation_timeout_seconds(), 600);
}

TEST(Config, ParsesTextFormat) {
  auto config = LoadConfig(WriteTemp("ok.textproto", R"(
    listen_address: "127.0.0.1:9000"
    accounts { id: "lab" provider: "fleet" endpoint: "unix:///run/fleet.sock" }
  )"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen_address(), "127.0.0.1:9000");
  EXPECT_EQ(config->accounts(0).endpoint(), "unix:///run/fleet.sock");
}

TEST(Config, ErrorsNameTheField) {
  auto bad_id = LoadConfig(WriteTemp("bad.textproto", R"(
    accounts { id: "ok" provider: "sandbox" }
    accounts { id: "Not_OK" provider: "sandbox" }
  )"));
  EXPECT_EQ(bad_id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(bad_id.status())->field_violations(0).field(), "accounts[1].id");

  auto twice = LoadConfig(WriteTemp("twice.textproto", R"(
    accounts { id: "a" provider: "sandbox" }
    accounts { id: "a" provider: "sandbox" }
  )"));
  EXPECT_EQ(GetBadRequest(twice.status())->field_violations(0).field(), "accounts[1].id");

  auto syntax = LoadConfig(WriteTemp("syntax.textproto", "accounts { id: "));
  EXPECT_EQ(syntax.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(syntax.status().message().find("line 1"), absl::string_view::npos);

  EXPECT_EQ(LoadConfig("/nonexistent/cloudplane.textproto").status().code(),
            absl::StatusCode::kNotFound);
}

// config_fuzz: the text format parser takes any bytes in a string, so a
// group name of raw bytes was accepted (and could not be logged or sent on).
TEST(Config, StringsThatAreNotUtf8AreRefusedByField) {
  auto bad = LoadConfig(WriteTemp("bytes.textproto", "accounts { id: \"a\" provider: \"sandbox\" }\n"
                                                     "auth { bindings { role: VIEWER groups: \"ops\" "
                                                     "groups: \"\\xff\\xfe\" accounts: \"*\" } }\n"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_EQ(GetBadRequest(bad.status())->field_violations(0).field(), "auth.bindings[0].groups[1]");
  auto octal = ParseConfigText("accounts { id: \"a\" provider: \"sandbox\" endpoint: \"\\377\" }", "t");
  EXPECT_EQ(GetBadRequest(octal.status())->field_violations(0).field(), "accounts[0].endpoint");
}

// config_fuzz: the parser's error quotes the token it stopped at, raw bytes
// included; the message is repaired.
TEST(Config, ASyntaxErrorMessageIsValidUtf8) {
  auto bad = ParseConfigText("\"\xD8li", "t");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsValidUtf8(bad.status().message())) << bad.status();
}

TEST(Config, AuditRetentionSecondsDefaultsTo90DaysAndMustBePositive) {
  auto unset = LoadConfig("");
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_TRUE(unset->has_audit_retention_seconds());
  EXPECT_EQ(unset->audit_retention_seconds(), 7776000);  // 90 days

  auto one = LoadConfig(WriteTemp("retention1.textproto", "audit_retention_seconds: 1"));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->audit_retention_seconds(), 1);

  for (const char* text : {"audit_retention_seconds: 0", "audit_retention_seconds: -7"}) {
    auto bad = LoadConfig(WriteTemp("retention_bad.textproto", text));
    ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << text;
    ASSERT_TRUE(GetBadRequest(bad.status()).has_value()) << text;
    EXPECT_EQ(GetBadRequest(bad.status())->field_violations(0).field(),
              "audit_retention_seconds")
        << text;
  }

  // The unreleased `audit_retention_days` is gone: a file that still sets it
  // is refused, not run with the default.
  auto old = LoadConfig(WriteTemp("retention_days.textproto", "audit_retention_days: 3"));
  EXPECT_EQ(old.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Config, RetentionDefaultsAndMinimums) {
  auto unset = LoadConfig("");
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_EQ(unset->operation_retention_seconds(), 604800);  // 7 days
  EXPECT_EQ(unset->change_log_retention_seconds(), 86400);  // 24 hours
  EXPECT_EQ(unset->change_log_max_entries(), 100000);

  auto set = LoadConfig(WriteTemp("retention_set.textproto",
                                  "operation_retention_seconds: 1 "
                                  "change_log_retention_seconds: 2 "
                                  "change_log_max_entries: 3"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->operation_retention_seconds(), 1);
  EXPECT_EQ(set->change_log_retention_seconds(), 2);
  EXPECT_EQ(set->change_log_max_entries(), 3);

  for (const char* field : {"operation_retention_seconds", "change_log_retention_seconds",
                            "change_log_max_entries"}) {
    for (const char* value : {"0", "-5"}) {
      auto bad = LoadConfig(
          WriteTemp("retention_bad2.textproto", absl::StrCat(field, ": ", value)));
      ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << field << value;
      ASSERT_TRUE(GetBadRequest(bad.status()).has_value()) << field;
      EXPECT_EQ(GetBadRequest(bad.status())->field_violations(0).field(), field);
    }
  }
}

TEST(Config, ProviderHttpDefaultsAndBounds) {
  auto unset = LoadConfig("");
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_EQ(unset->provider_http().max_connections_per_host(), 64);
  EXPECT_EQ(unset->provider_http().idle_close_seconds(), 30);
  auto set = LoadConfig(WriteTemp(
      "http_set.textproto",
      "provider_http { max_connections_per_host: 0 idle_close_seconds: 0 }"));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->provider_http().max_connections_per_host(), 0);
  EXPECT_EQ(set->provider_http().idle_close_seconds(), 0);
  for (const auto& [text, field] : std::vector<std::pair<std::string, std::string>>{
           {"provider_http { max_connections_per_host: -1 }",
            "provider_http.max_connections_per_host"},
           {"provider_http { max_connections_per_host: 100001 }",
            "provider_http.max_connections_per_host"},
           {"provider_http { idle_close_seconds: -1 }", "provider_http.idle_close_seconds"}}) {
    auto bad = LoadConfig(WriteTemp("http_bad.textproto", text));
    ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << text;
    ASSERT_TRUE(GetBadRequest(bad.status()).has_value()) << text;
    EXPECT_EQ(GetBadRequest(bad.status())->field_violations(0).field(), field) << text;
  }
}

TEST(Config, ProviderLimitsDefaultWhenUnset) {
  auto config = LoadConfig(WriteTemp("limits.textproto", R"(
    accounts { id: "lab" provider: "fleet" }
    accounts {
      id: "cs" provider: "cloudsigma"
      limits {
        max_in_flight: 0 requests_per_second: 2.5 burst: 4 max_attempts: 1
        initial_backoff_ms: 50 max_backoff_ms: 800 attempt_timeout_ms: 0
        breaker_failures: 0 breaker_cooldown_ms: 1500
      }
    }
  )"));
  ASSERT_TRUE(config.ok()) << config.status();
  const adapters::ProviderLimits defaults = ProviderLimitsFromConfig(config->accounts(0).limits());
  EXPECT_EQ(defaults.max_in_flight, 64);
  EXPECT_EQ(defaults.requests_per_second, 0);
  EXPECT_EQ(defaults.burst, 0);
  EXPECT_EQ(defaults.max_attempts, 5);
  EXPECT_EQ(defaults.initial_backoff, absl::Milliseconds(100));
  EXPECT_EQ(defaults.max_backoff, absl::Seconds(5));
  EXPECT_EQ(defaults.attempt_timeout, absl::Seconds(5));
  EXPECT_EQ(defaults.breaker_failures, 10);
  EXPECT_EQ(defaults.breaker_cooldown, absl::Seconds(5));

  // Set fields are taken as given, 0 included (no limit, no breaker ...).
  const adapters::ProviderLimits set = ProviderLimitsFromConfig(config->accounts(1).limits());
  EXPECT_EQ(set.max_in_flight, 0);
  EXPECT_EQ(set.requests_per_second, 2.5);
  EXPECT_EQ(set.burst, 4);
  EXPECT_EQ(set.max_attempts, 1);
  EXPECT_EQ(set.initial_backoff, absl::Milliseconds(50));
  EXPECT_EQ(set.max_backoff, absl::Milliseconds(800));
  EXPECT_EQ(set.attempt_timeout, absl::ZeroDuration());
  EXPECT_EQ(set.breaker_failures, 0);
  EXPECT_EQ(set.breaker_cooldown, absl::Milliseconds(1500));
}

TEST(Config, ProviderLimitsOutOfRangeNameTheField) {
  struct Case {
    const char* limits;
    const char* field;
  } cases[] = {
      {"max_in_flight: -1", "max_in_flight"},
      {"max_in_flight: 10001", "max_in_flight"},
      {"requests_per_second: -0.5", "requests_per_second"},
      {"requests_per_second: nan", "requests_per_second"},
      {"burst: 0", "burst"},
      {"max_attempts: 0", "max_attempts"},
      {"max_attempts: 21", "max_attempts"},
      {"initial_backoff_ms: 0", "initial_backoff_ms"},
      {"max_backoff_ms: 700000", "max_backoff_ms"},
      {"initial_backoff_ms: 500 max_backoff_ms: 200", "max_backoff_ms"},
      {"attempt_timeout_ms: -1", "attempt_timeout_ms"},
      {"breaker_failures: -2", "breaker_failures"},
      {"breaker_cooldown_ms: 0", "breaker_cooldown_ms"},
  };
  for (const Case& c : cases) {
    auto config = LoadConfig(WriteTemp(
        "bad_limits.textproto",
        absl::StrCat("accounts { id: \"ok\" provider: \"sandbox\" }\n",
                     "accounts { id: \"x\" provider: \"fleet\" limits { ", c.limits, " } }")));
    ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.limits;
    EXPECT_EQ(GetBadRequest(config.status())->field_violations(0).field(),
              absl::StrCat("accounts[1].limits.", c.field))
        << c.limits;
  }
}

TEST(Config, ObserveIntervalDefaultsTo15AndIsAtLeast1) {
  auto config = LoadConfig(WriteTemp("observe.textproto", R"(
    accounts { id: "lab" provider: "fleet" }
    accounts { id: "one" provider: "opennebula" observe_interval_seconds: 1 }
  )"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->accounts(0).observe_interval_seconds(), 15);
  EXPECT_EQ(config->accounts(1).observe_interval_seconds(), 1);
  for (const char* value : {"0", "-3"}) {
    auto bad = LoadConfig(WriteTemp(
        "bad_observe.textproto",
        absl::StrCat("accounts { id: \"ok\" provider: \"sandbox\" }\n",
                     "accounts { id: \"x\" provider: \"fleet\" observe_interval_seconds: ", value,
                     " }")));
    ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << value;
    EXPECT_EQ(GetBadRequest(bad.status())->field_violations(0).field(),
              "accounts[1].observe_interval_seconds");
  }
}

TEST(Config, SecretsFromFileAndEnvironment) {
  config::v1::Credentials from_file;
  from_file.set_file(WriteTemp("secret", "user:pa55\n"));
  EXPECT_EQ(*ReadSecret(from_file), "user:pa55");

  setenv("CLOUDPLANE_TEST_SECRET", "s3cret", 1);
  config::v1::Credentials from_env;
  from_env.set_env("CLOUDPLANE_TEST_SECRET");
  EXPECT_EQ(*ReadSecret(from_env), "s3cret");

  from_env.set_env("CLOUDPLANE_TEST_UNSET");
  auto missing = ReadSecret(from_env);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("CLOUDPLANE_TEST_UNSET"), absl::string_view::npos);
}

TEST(Config, EndpointsAreShownWithoutCredentials) {
  EXPECT_EQ(RedactEndpoint("https://user:pw@api.example.com/v2?token=x"),
            "https://api.example.com/v2");
  EXPECT_EQ(RedactEndpoint("unix:///var/run/fleet.sock"), "unix:///var/run/fleet.sock");
  EXPECT_EQ(RedactEndpoint("http://127.0.0.1:49153"), "http://127.0.0.1:49153");
}

TEST(Config, OnlyLoopbackListenAddressesWithoutAuthentication) {
  for (const char* local : {"127.0.0.1:7070", "127.3.2.1:0", "localhost:7070", "LocalHost:1",
                            "[::1]:7070", "[::ffff:127.0.0.1]:0", "unix:/run/cloudplane.sock",
                            "unix-abstract:cloudplane"}) {
    EXPECT_TRUE(IsLoopbackListenAddress(local)) << local;
  }
  for (const char* remote : {"0.0.0.0:7070", "[::]:7070", ":7070", "10.0.0.1:7070",
                             "128.0.0.1:7070", "example.com:7070", "localhost.example.com:1",
                             "[::2]:7070", "[::1:7070", "127.1:7070", ""}) {
    EXPECT_FALSE(IsLoopbackListenAddress(remote)) << remote;
  }

  config::v1::ServerConfig config;
  ASSERT_TRUE(FinishConfig(config).ok());
  EXPECT_FALSE(AuthenticationConfigured(config));
  EXPECT_TRUE(CheckListenAddress(config, /*allow_remote=*/false).ok());  // 127.0.0.1:7070
  config.set_listen_address("0.0.0.0:7070");
  absl::Status refused = CheckListenAddress(config, /*allow_remote=*/false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("0.0.0.0:7070"), absl::string_view::npos);
  EXPECT_NE(refused.message().find("--insecure_allow_remote"), absl::string_view::npos);
  EXPECT_TRUE(CheckListenAddress(config, /*allow_remote=*/true).ok());
}

TEST(Config, AuthenticationIsJwtApiKeysOrClientCertificates) {
  config::v1::ServerConfig config;
  config.set_listen_address("0.0.0.0:7070");
  config.mutable_tls()->set_cert_file("server.pem");  // TLS alone names no caller
  EXPECT_FALSE(AuthenticationConfigured(config));
  EXPECT_FALSE(CheckListenAddress(config, false).ok());
  config::v1::ServerConfig with_key = config;
  with_key.mutable_auth()->add_api_keys()->set_principal("ci");
  EXPECT_TRUE(AuthenticationConfigured(with_key));
  EXPECT_TRUE(CheckListenAddress(with_key, false).ok());
  config::v1::ServerConfig with_jwt = config;
  with_jwt.mutable_auth()->mutable_jwt()->set_issuer("https://id.example");
  EXPECT_TRUE(AuthenticationConfigured(with_jwt));
  config::v1::ServerConfig with_ca = config;
  with_ca.mutable_tls()->set_client_ca_file("ca.pem");
  EXPECT_TRUE(AuthenticationConfigured(with_ca));
  // Bindings alone authenticate nobody.
  config::v1::ServerConfig bindings_only = config;
  bindings_only.mutable_auth()->add_bindings()->add_principals("ci");
  EXPECT_FALSE(AuthenticationConfigured(bindings_only));
}

}  // namespace
}  // namespace cloudplane::service
