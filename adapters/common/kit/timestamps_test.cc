#include "adapters/common/kit/timestamps.h"

#include <limits>

#include "gtest/gtest.h"

namespace cloudplane::kit {
namespace {

TEST(TimestampsTest, TimesInRangeAreSetExactly) {
  google::protobuf::Timestamp ts;
  ASSERT_TRUE(SetUnixSeconds(1700000000, &ts));
  EXPECT_EQ(ts.seconds(), 1700000000);
  ASSERT_TRUE(SetTimestamp(absl::FromUnixMillis(-1500), &ts));  // before the epoch
  EXPECT_EQ(ts.seconds(), -2);
  EXPECT_EQ(ts.nanos(), 500000000);
  ASSERT_TRUE(SetUnixSeconds(253402300799, &ts));  // 9999-12-31T23:59:59Z
  ASSERT_TRUE(SetUnixSeconds(-62135596800, &ts));  // 0001-01-01T00:00:00Z
}

// opennebula_wire_fuzz: a VM with STIME 10^15 reached
// TimeUtil::SecondsToTimestamp, whose range CHECK aborts the process.
TEST(TimestampsTest, TimesOutOfRangeAreNotSet) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(7);
  EXPECT_FALSE(SetUnixSeconds(1000000000000000, &ts));
  EXPECT_FALSE(SetUnixSeconds(std::numeric_limits<int64_t>::max(), &ts));
  EXPECT_FALSE(SetUnixSeconds(-62135596801, &ts));
  EXPECT_FALSE(SetTimestamp(absl::InfiniteFuture(), &ts));
  EXPECT_FALSE(SetTimestamp(absl::FromUnixSeconds(253402300800), &ts));
  EXPECT_EQ(ts.seconds(), 7);  // untouched
}

}  // namespace
}  // namespace cloudplane::kit
