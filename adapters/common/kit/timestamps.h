// Provider times into google.protobuf.Timestamp, within the range a
// Timestamp may hold (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z).
// A provider may send any number: protobuf's own TimeUtil::SecondsToTimestamp
// CHECK-fails (aborts the process) outside that range, which is how one
// OpenNebula VM with an absurd STIME could take the server down
// (opennebula_wire_fuzz). A time outside the range is not set.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_TIMESTAMPS_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_TIMESTAMPS_H_

#include <cstdint>
#include <optional>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace cloudplane::kit {

// `t` as a Timestamp, or nullopt outside the range. Callers assign it only
// when present (`mutable_create_time()` alone would set an epoch time).
std::optional<google::protobuf::Timestamp> ToTimestamp(absl::Time t);

// The same for seconds since the Unix epoch.
std::optional<google::protobuf::Timestamp> UnixSecondsToTimestamp(int64_t seconds);

}  // namespace cloudplane::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_TIMESTAMPS_H_
