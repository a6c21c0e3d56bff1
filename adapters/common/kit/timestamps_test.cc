#include "adapters/common/kit/timestamps.h"

#include <limits>

#include "gtest/gtest.h"

namespace cloudplane::kit {
namespace {

TEST(TimestampsTest, TimesInRangeAreExact) {
  EXPECT_EQ(UnixSecondsToTimestamp(1700000000)->seconds(), 1700000000);
  auto before_epoch = ToTimestamp(absl::FromUnixMillis(-1500));
  ASSERT_TRUE(before_epoch.has_value());
  EXPECT_EQ(before_epoch->seconds(), -2);
  EXPECT_EQ(before_epoch->nanos(), 500000000);
  EXPECT_TRUE(UnixSecondsToTimestamp(253402300799).has_value());  // 9999-12-31T23:59:59Z
  EXPECT_TRUE(UnixSecondsToTimestamp(-62135596800).has_value());  // 0001-01-01T00:00:00Z
}

// opennebula_wire_fuzz: a VM with STIME 10^15 reached
// TimeUtil::SecondsToTimestamp, whose range CHECK aborts the process.
TEST(TimestampsTest, TimesOutOfRangeAreNone) {
  EXPECT_FALSE(UnixSecondsToTimestamp(1000000000000000).has_value());
  EXPECT_FALSE(UnixSecondsToTimestamp(std::numeric_limits<int64_t>::max()).has_value());
  EXPECT_FALSE(UnixSecondsToTimestamp(-62135596801).has_value());
  EXPECT_FALSE(ToTimestamp(absl::InfiniteFuture()).has_value());
  EXPECT_FALSE(ToTimestamp(absl::FromUnixSeconds(253402300800)).has_value());
}

}  // namespace
}  // namespace cloudplane::kit
