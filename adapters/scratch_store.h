// ScratchStore: the small durable notes a remote adapter keeps for one
// account (enStratus aliases from a caller's id to DCM's, Phantom's marks of
// what an operation created).
//
// Why not the server's Store: adapters answer on transport threads, which
// must never wait on SQLite (base/thread_role.h), and an adapter should not
// reach the operations or the change log. A ScratchStore is narrow: one
// account, the adapter's own collections, bytes keyed by id.
//
// Reads (Get, List) are served from memory and never touch the disk, so they
// are safe on any thread. Writes (Put, Delete) change the memory at once, so
// a Get right after sees them, and post the durable write to the EventLoop;
// `done` (when given) runs there with the write's status. A collection is
// read from the database once, by Load(), which the adapter's factory calls
// (it runs at start-up, never on a transport thread).
//
// Errors:
//   INVALID_ARGUMENT     an empty collection or id.
//   FAILED_PRECONDITION  a collection that was not loaded.
//   NOT_FOUND            Get of an id that holds nothing.
//   the store's own codes (UNAVAILABLE, RESOURCE_EXHAUSTED, DATA_LOSS) from
//   Load and from the durable writes.
//
// Thread-safety: every method may be called from any thread.
#ifndef CLOUDPLANE_ADAPTERS_SCRATCH_STORE_H_
#define CLOUDPLANE_ADAPTERS_SCRATCH_STORE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::adapters {

class ScratchStore {
 public:
  using WriteDone = absl::AnyInvocable<void(absl::Status) &&>;

  virtual ~ScratchStore() = default;

  // Reads `collection` into memory; a second call does nothing.
  virtual absl::Status Load(absl::string_view collection) = 0;

  virtual absl::StatusOr<std::string> Get(absl::string_view collection,
                                          absl::string_view id) const = 0;
  // Every (id, bytes) of the collection, ordered by id.
  virtual absl::StatusOr<std::vector<std::pair<std::string, std::string>>> List(
      absl::string_view collection) const = 0;

  // Creates or replaces. A refused call (the errors above) returns it and
  // changes nothing; OK means memory holds the value and the durable write
  // is queued.
  virtual absl::Status Put(absl::string_view collection, absl::string_view id,
                           std::string bytes, WriteDone done = nullptr) = 0;
  // Deleting an id that holds nothing is OK.
  virtual absl::Status Delete(absl::string_view collection, absl::string_view id,
                              WriteDone done = nullptr) = 0;
};

}  // namespace cloudplane::adapters

#endif  // CLOUDPLANE_ADAPTERS_SCRATCH_STORE_H_
