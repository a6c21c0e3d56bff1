// FixturePath finds the recorded payloads in the runfiles tree and fails the
// test when one is missing.
#include "adapters/common/testing/fixtures.h"

#include <filesystem>
#include <string>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::testutil {
namespace {

TEST(FixturePath, FindsAFixtureInTheRunfiles) {
  const std::string path = FixturePath("fleet/v1.json");
  EXPECT_TRUE(std::filesystem::is_regular_file(path)) << path;
  // Inside the runfiles tree, not a path into the source checkout.
  EXPECT_EQ(path.rfind(std::string(getenv("TEST_SRCDIR")) + "/shared_fixtures/", 0), 0u) << path;
  EXPECT_NE(ReadFixture("fleet/v1.json").find("\"discoveryVersion\""), std::string::npos);
}

TEST(FixturePath, AMissingFixtureFailsTheTest) {
  EXPECT_NONFATAL_FAILURE(FixturePath("fleet/no-such-file.json"),
                          "recorded fixture fleet/no-such-file.json is missing");
  // A provider whose filegroup the test does not depend on is missing too.
  EXPECT_NONFATAL_FAILURE(FixturePath("cloudsigma"), "@shared_fixtures//:cloudsigma");
}

TEST(RunfilePath, NamesAFileOfThisRepository) {
  EXPECT_EQ(RunfilePath("a/b.txt"), std::string(getenv("TEST_SRCDIR")) + "/" +
                                        getenv("TEST_WORKSPACE") + "/a/b.txt");
}

}  // namespace
}  // namespace cloudplane::adapters::testutil
