#include "adapters/cloudsigma/cloudsigma_conf.h"

#include "base/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

constexpr char kConf[] = R"(# pycloudsigma config
api_endpoint = https://zrh.cloudsigma.com/api/2.0/
ws_endpoint = wss://direct.zrh.cloudsigma.com/websocket
username = "user@example.com"
password = p4ss=word  # a comment
login_method = basic
)";

TEST(ImportCloudSigmaConf, MakesAnAccountSnippetAndKeepsTheSecretOut) {
  auto imported = ImportCloudSigmaConf(kConf, "zrh", {.env = "CS_ZRH_SECRET"});
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->secret, "user@example.com:p4ss=word");
  EXPECT_EQ(imported->account_textproto,
            "accounts {\n"
            "  id: \"zrh\"\n"
            "  provider: \"cloudsigma\"\n"
            "  endpoint: \"https://zrh.cloudsigma.com/api/2.0\"\n"
            "  credentials { env: \"CS_ZRH_SECRET\" }\n"
            "  options { key: \"ws_endpoint\" value: "
            "\"wss://direct.zrh.cloudsigma.com/websocket\" }\n"
            "}\n");
  EXPECT_THAT(imported->account_textproto, testing::Not(testing::HasSubstr("p4ss")));
  auto file = ImportCloudSigmaConf(kConf, "zrh", {.file = "/etc/cloudplane/zrh.secret"});
  ASSERT_TRUE(file.ok());
  EXPECT_THAT(file->account_textproto,
              testing::HasSubstr("credentials { file: \"/etc/cloudplane/zrh.secret\" }"));
}

TEST(ImportCloudSigmaConf, Refusals) {
  auto missing = ImportCloudSigmaConf("api_endpoint = https://x/\nusername = u\n", "a",
                                      {.env = "E"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(missing.status())->field_violations(0).field(), "password");
  EXPECT_EQ(ImportCloudSigmaConf("garbage line\n", "a", {.env = "E"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ImportCloudSigmaConf(kConf, "Bad_Id", {.env = "E"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto both = ImportCloudSigmaConf(kConf, "a", {.env = "E", .file = "/f"});
  EXPECT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(both.status().message()), testing::Not(testing::HasSubstr("p4ss")));
}

}  // namespace
}  // namespace cloudplane::adapters::cloudsigma
