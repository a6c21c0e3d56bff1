// Provider times into google.protobuf.Timestamp, within the range a
// Timestamp may hold (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z).
// A provider may send any number: protobuf's own TimeUtil::SecondsToTimestamp
// CHECK-fails (aborts the process) outside that range, which is how one
// OpenNebula VM with an absurd STIME could take the server down
// (opennebula_wire_fuzz). A time outside the range is not set.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_TIMESTAMPS_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_TIMESTAMPS_H_

#include <cstdint>

#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace cloudplane::kit {

// Sets `out` to `t` and returns true when `t` is in the Timestamp range;
// otherwise leaves `out` alone and returns false.
bool SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);

// The same for seconds since the Unix epoch.
bool SetUnixSeconds(int64_t seconds, google::protobuf::Timestamp* out);

}  // namespace cloudplane::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_TIMESTAMPS_H_
