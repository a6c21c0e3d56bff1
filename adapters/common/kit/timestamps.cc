#include "adapters/common/kit/timestamps.h"

namespace cloudplane::kit {
namespace {

// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z (google/protobuf/timestamp.proto).
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;

}  // namespace

bool SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  if (t < absl::FromUnixSeconds(kMinSeconds) || t >= absl::FromUnixSeconds(kMaxSeconds + 1)) {
    return false;
  }
  const int64_t seconds = absl::ToUnixSeconds(t);  // rounds down
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
  return true;
}

bool SetUnixSeconds(int64_t seconds, google::protobuf::Timestamp* out) {
  if (seconds < kMinSeconds || seconds > kMaxSeconds) return false;
  out->set_seconds(seconds);
  out->set_nanos(0);
  return true;
}

}  // namespace cloudplane::kit
