// Provider quantities in units (MiB, KiB, GiB) as bytes, for any number a
// provider sends: a negative count or a product beyond int64 gives 0 (unknown)
// instead of a wrapped value or signed overflow (opennebula_wire_fuzz found
// TOTAL_MEM * 1024 overflowing).
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_UNITS_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_UNITS_H_

#include <cstdint>

namespace cloudplane::kit {

inline constexpr int64_t kKiB = int64_t{1} << 10;
inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;

// `count` units of `unit` bytes; 0 when `count` is negative or the product
// does not fit in int64.
inline int64_t Bytes(int64_t count, int64_t unit) {
  int64_t out = 0;
  if (count < 0 || __builtin_mul_overflow(count, unit, &out)) return 0;
  return out;
}

}  // namespace cloudplane::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_UNITS_H_
