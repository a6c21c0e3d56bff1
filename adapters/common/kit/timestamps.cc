#include "adapters/common/kit/timestamps.h"

namespace cloudplane::kit {
namespace {

// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z (google/protobuf/timestamp.proto).
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;

}  // namespace

std::optional<google::protobuf::Timestamp> ToTimestamp(absl::Time t) {
  if (t < absl::FromUnixSeconds(kMinSeconds) || t >= absl::FromUnixSeconds(kMaxSeconds + 1)) {
    return std::nullopt;
  }
  const int64_t seconds = absl::ToUnixSeconds(t);  // rounds down
  google::protobuf::Timestamp out;
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
  return out;
}

std::optional<google::protobuf::Timestamp> UnixSecondsToTimestamp(int64_t seconds) {
  if (seconds < kMinSeconds || seconds > kMaxSeconds) return std::nullopt;
  google::protobuf::Timestamp out;
  out.set_seconds(seconds);
  return out;
}

}  // namespace cloudplane::kit
