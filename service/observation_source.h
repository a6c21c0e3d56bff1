// What the operation runner needs of an account's observer
// (service/observer.h) to complete pending operations from its lists
// instead of polling each one: the observed kinds, the last observed value
// of a resource, and a call after every round. An interface so runner tests
// can drive rounds by hand.
#ifndef CLOUDPLANE_SERVICE_OBSERVATION_SOURCE_H_
#define CLOUDPLANE_SERVICE_OBSERVATION_SOURCE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/any.pb.h"

namespace cloudplane::service {

class ObservationSource {
 public:
  // One finished round (full or targeted).
  struct Round {
    // When its first list request was sent: it shows nothing older.
    absl::Time started;
    // The kinds whose every page answered in this round; a kind whose list
    // failed is not here (its absence from the snapshot proves nothing).
    std::vector<std::string> kinds;
  };
  using RoundListener = absl::AnyInvocable<void(const Round&)>;

  virtual ~ObservationSource() = default;

  // The kinds listed ("Unit", "Instance", ...).
  virtual std::vector<std::string> Kinds() const = 0;
  // The time between two full rounds.
  virtual absl::Duration interval() const = 0;
  // The last observed value of `resource_name`, or nullopt when the snapshot
  // does not hold it. Any thread.
  virtual std::optional<google::protobuf::Any> LastObserved(
      absl::string_view resource_name) const = 0;
  // `listener` is called on the EventLoop after every round, once the
  // snapshot holds its results, until RemoveRoundListener(id). Any thread.
  virtual uint64_t AddRoundListener(RoundListener listener) = 0;
  virtual void RemoveRoundListener(uint64_t id) = 0;
};

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_OBSERVATION_SOURCE_H_
