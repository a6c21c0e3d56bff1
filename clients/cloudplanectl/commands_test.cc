#include "clients/cloudplanectl/commands.h"

#include <stdlib.h>

#include <sstream>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, image);
ABSL_DECLARE_FLAG(std::string, output);
ABSL_DECLARE_FLAG(absl::Duration, timeout);
ABSL_DECLARE_FLAG(std::string, token);
ABSL_DECLARE_FLAG(bool, allow_plaintext_token);

namespace cloudplane::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Nothing listens on port 1: a command that got as far as calling would fail
// with UNAVAILABLE, so usage errors are seen to stop before any call.
class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_server, "127.0.0.1:1");
    absl::SetFlag(&FLAGS_timeout, absl::Seconds(5));
  }
  void TearDown() override {
    absl::SetFlag(&FLAGS_image, "");
    absl::SetFlag(&FLAGS_output, "table");
    absl::SetFlag(&FLAGS_token, "");
    absl::SetFlag(&FLAGS_allow_plaintext_token, false);
    unsetenv("CLOUDPLANE_TOKEN");
  }

  int RunCommand(std::vector<std::string> words) {
    out_.str("");
    err_.str("");
    return ctl::Run(words, out_, err_, /*err_is_terminal=*/false);
  }

  std::ostringstream out_, err_;
};

TEST_F(CommandsTest, OverviewListsEveryGroup) {
  bool found = false;
  std::string help = Help({}, &found);
  EXPECT_TRUE(found);
  for (const char* line : {"  accounts list", "  instances create INSTANCE",
                           "  volumes attach VOLUME", "  operations wait OPERATION", "  watch "}) {
    EXPECT_THAT(help, HasSubstr(line));
  }
  EXPECT_THAT(help, HasSubstr("--tls_ca_file"));
  EXPECT_THAT(help, HasSubstr("Exit codes"));
}

TEST_F(CommandsTest, CommandHelpNamesItsFlags) {
  std::string help = Help({"instances", "create"});
  EXPECT_THAT(help, StartsWith("Usage: cloudplanectl instances create INSTANCE [flags]\n"));
  EXPECT_THAT(help, HasSubstr("--machine_type"));
  EXPECT_THAT(help, HasSubstr("--request_id"));
  EXPECT_THAT(Help({"volumes"}), HasSubstr("cloudplanectl volumes detach VOLUME [flags]"));
  bool found = true;
  Help({"nonsense"}, &found);
  EXPECT_FALSE(found);
}

TEST_F(CommandsTest, UsageErrors) {
  EXPECT_EQ(RunCommand({}), kExitUsage);
  EXPECT_EQ(RunCommand({"instances", "frob"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("unknown command \"instances frob\""));
  EXPECT_EQ(RunCommand({"instances", "get"}), kExitUsage);
  EXPECT_EQ(err_.str(), "cloudplanectl: usage: cloudplanectl instances get INSTANCE\n");
  EXPECT_EQ(RunCommand({"accounts", "list", "extra"}), kExitUsage);
  absl::SetFlag(&FLAGS_output, "yaml");
  EXPECT_EQ(RunCommand({"accounts", "list"}), kExitUsage);
}

TEST_F(CommandsTest, FlagOfAnotherCommandIsAnError) {
  absl::SetFlag(&FLAGS_image, "debian-12");
  EXPECT_EQ(RunCommand({"instances", "list"}), kExitUsage);
  EXPECT_EQ(err_.str(),
            "cloudplanectl: --image does not apply to `cloudplanectl instances list`\n");
}

TEST_F(CommandsTest, UnreachableServerIsExit3) {
  EXPECT_EQ(RunCommand({"accounts", "list"}), kExitUnavailable);
  EXPECT_THAT(err_.str(), StartsWith("error: UNAVAILABLE: "));
  EXPECT_EQ(out_.str(), "");
}

constexpr char kToken[] = "cpk_commands-test-token";

TEST_F(CommandsTest, HelpNamesTheTokenFlagsButNeverTheToken) {
  setenv("CLOUDPLANE_TOKEN", kToken, 1);
  std::string help = Help({});
  EXPECT_THAT(help, HasSubstr("--token"));
  EXPECT_THAT(help, HasSubstr("$CLOUDPLANE_TOKEN"));
  EXPECT_THAT(help, HasSubstr("--allow_plaintext_token"));
  EXPECT_THAT(help, Not(HasSubstr(kToken)));
  EXPECT_THAT(Help({"instances", "create"}), Not(HasSubstr(kToken)));
}

// The token from the flag or the environment is refused for a plaintext
// remote server before any call, and the message does not show it.
TEST_F(CommandsTest, TokenInPlaintextToARemoteServerIsAUsageError) {
  absl::SetFlag(&FLAGS_server, "192.0.2.1:7070");
  absl::SetFlag(&FLAGS_token, kToken);
  EXPECT_EQ(RunCommand({"accounts", "list"}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("cloudplanectl: refusing to send the token in plaintext to "
                                     "192.0.2.1:7070"));
  EXPECT_THAT(err_.str(), Not(HasSubstr(kToken)));

  absl::SetFlag(&FLAGS_token, "");
  setenv("CLOUDPLANE_TOKEN", kToken, 1);
  EXPECT_EQ(RunCommand({"accounts", "list"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("refusing to send the token in plaintext"));
  EXPECT_THAT(err_.str(), Not(HasSubstr(kToken)));
}

TEST_F(CommandsTest, TokenToLoopbackGoesAhead) {
  // Port 1 on loopback: the call is made, and fails to connect.
  setenv("CLOUDPLANE_TOKEN", kToken, 1);
  EXPECT_EQ(RunCommand({"accounts", "list"}), kExitUnavailable);
  EXPECT_THAT(err_.str(), StartsWith("error: UNAVAILABLE: "));
  EXPECT_THAT(err_.str(), Not(HasSubstr(kToken)));
}

TEST_F(CommandsTest, BadTokenIsAUsageErrorWithoutTheToken) {
  absl::SetFlag(&FLAGS_token, "secret part\nmore");
  EXPECT_EQ(RunCommand({"accounts", "list"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("holds spaces or control characters"));
  EXPECT_THAT(err_.str(), Not(HasSubstr("secret")));
}

}  // namespace
}  // namespace cloudplane::ctl
