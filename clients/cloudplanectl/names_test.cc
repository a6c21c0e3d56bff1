#include "clients/cloudplanectl/names.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(Names, ShortIdsExpandAndFullNamesStay) {
  EXPECT_EQ(AccountName("sandbox"), "accounts/sandbox");
  EXPECT_EQ(AccountName("accounts/lab"), "accounts/lab");
  EXPECT_EQ(ResourceName("sandbox", "instances", "web-1"), "accounts/sandbox/instances/web-1");
  EXPECT_EQ(ResourceName("accounts/sandbox", "machineTypes", "small"),
            "accounts/sandbox/machineTypes/small");
  EXPECT_EQ(ResourceName("sandbox", "instances", "accounts/lab/instances/db"),
            "accounts/lab/instances/db");
  EXPECT_EQ(ResourceName("sandbox", "images", ""), "");
  EXPECT_EQ(OperationName("4f6c"), "operations/4f6c");
  EXPECT_EQ(OperationName("operations/4f6c"), "operations/4f6c");
  EXPECT_EQ(LastSegment("accounts/a/instances/web-1"), "web-1");
  EXPECT_EQ(LastSegment("plain"), "plain");
}

TEST(Names, ParseSizeUnits) {
  EXPECT_EQ(*ParseSize("1073741824"), 1073741824);
  EXPECT_EQ(*ParseSize("10GiB"), int64_t{10} << 30);
  EXPECT_EQ(*ParseSize("512 MiB"), int64_t{512} << 20);
  EXPECT_EQ(*ParseSize("2KB"), 2000);
  EXPECT_EQ(*ParseSize("1TB"), int64_t{1000} * 1000 * 1000 * 1000);
  EXPECT_EQ(*ParseSize("7B"), 7);
}

TEST(Names, ParseSizeRejects) {
  for (const char* bad : {"", "GiB", "-1GiB", "ten", "1.5GiB", "10XB", "9999999999TiB"}) {
    EXPECT_EQ(ParseSize(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Names, FormatBytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(int64_t{10} << 30), "10 GiB");
  EXPECT_EQ(FormatBytes(int64_t{3} << 29), "1.5 GiB");
}

TEST(Names, ParseLabels) {
  EXPECT_THAT(*ParseLabels("team=web, env = dev"),
              ElementsAre(Pair("env", "dev"), Pair("team", "web")));
  EXPECT_TRUE(ParseLabels("")->empty());
  EXPECT_THAT(*ParseLabels("a=b=c"), ElementsAre(Pair("a", "b=c")));
  EXPECT_EQ(ParseLabels("novalue").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLabels("=x").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloudplane::ctl
