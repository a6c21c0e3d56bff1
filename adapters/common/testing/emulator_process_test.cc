// EmulatorProcess against the fleet emulator (the smallest to start).
#include "adapters/common/testing/emulator_process.h"

#include <errno.h>
#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "adapters/common/testing/fixtures.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::testutil {
namespace {

constexpr char kFleet[] = "tests/emulators/fleet/fleet_emulator.py";

std::vector<std::string> Discovery() {
  return {"--discovery", FixturePath("fleet/v1.json")};
}

TEST(EmulatorProcess, StartsReportsItsEndpointsAndIsReapedOnDestruction) {
  absl::StatusOr<std::unique_ptr<EmulatorProcess>> emu =
      EmulatorProcess::Start(kFleet, [](const std::string& dir) {
        std::vector<std::string> args = Discovery();
        for (std::string a : {"--tcp", "127.0.0.1:0", "--unix"}) args.push_back(a);
        args.push_back(dir + "/fleet.sock");
        return args;
      });
  ASSERT_TRUE(emu.ok()) << emu.status();
  EXPECT_THAT((*emu)->ready_line(), ::testing::StartsWith("READY "));
  EXPECT_THAT((*emu)->Field("tcp"), ::testing::MatchesRegex("127\\.0\\.0\\.1:[0-9]+"));
  EXPECT_EQ((*emu)->Field("unix"), (*emu)->dir() + "/fleet.sock");
  EXPECT_TRUE(std::filesystem::exists((*emu)->Field("unix")));
  EXPECT_EQ((*emu)->Field("nonesuch"), "");
  const pid_t pid = (*emu)->pid();
  const std::string dir = (*emu)->dir();
  ASSERT_GT(pid, 0);
  emu->reset();
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);  // reaped, not a zombie
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(EmulatorProcess, AMissingScriptIsNotFound) {
  absl::StatusOr<std::unique_ptr<EmulatorProcess>> emu =
      EmulatorProcess::Start("tests/emulators/none/none.py", std::vector<std::string>{});
  EXPECT_EQ(emu.status().code(), absl::StatusCode::kNotFound);
}

TEST(EmulatorProcess, AnEarlyExitIsReportedWithTheLog) {
  absl::StatusOr<std::unique_ptr<EmulatorProcess>> emu =
      EmulatorProcess::Start(kFleet, std::vector<std::string>{"--no-such-flag"});
  EXPECT_EQ(emu.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(emu.status().message()), ::testing::HasSubstr("--no-such-flag"));
}

TEST(EmulatorProcess, NoReadyLineInTimeIsDeadlineExceeded) {
  EmulatorOptions options;
  options.ready_timeout = absl::ZeroDuration();
  std::vector<std::string> args = Discovery();
  args.push_back("--tcp");
  args.push_back("127.0.0.1:0");
  absl::StatusOr<std::unique_ptr<EmulatorProcess>> emu =
      EmulatorProcess::Start(kFleet, args, options);
  EXPECT_EQ(emu.status().code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace cloudplane::adapters::testutil
