#include "service/config.h"

#include <cstdlib>
#include <fstream>

#include "base/errors.h"
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

}  // namespace
}  // namespace cloudplane::service
