#include "adapters/common/kit/units.h"

#include <limits>

#include "gtest/gtest.h"

namespace cloudplane::kit {
namespace {

// opennebula_wire_fuzz: a host's TOTAL_MEM of 335521474836484432 KiB
// overflowed int64 when multiplied by 1024 (undefined behaviour).
TEST(UnitsTest, BytesOnlyWhenTheyFit) {
  EXPECT_EQ(Bytes(512, kMiB), int64_t{512} << 20);
  EXPECT_EQ(Bytes(0, kGiB), 0);
  EXPECT_EQ(Bytes(8, kGiB), int64_t{8} << 30);
  EXPECT_EQ(Bytes(335521474836484432, kKiB), 0);
  EXPECT_EQ(Bytes(std::numeric_limits<int64_t>::max(), kMiB), 0);
  EXPECT_EQ(Bytes(-1, kMiB), 0);
  EXPECT_EQ(Bytes(8589934591, kGiB), int64_t{8589934591} << 30);  // the largest that fits
  EXPECT_EQ(Bytes(8589934592, kGiB), 0);
}

}  // namespace
}  // namespace cloudplane::kit
