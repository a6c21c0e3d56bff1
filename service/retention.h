// Retention: the background pruner of the state database.
//
// What it removes (store/store.h has each rule):
//   - finished operations (done, whatever their result) whose last write is
//     older than `operation_retention`, and with each its request_id: a
//     request repeating that request_id afterwards is a new request
//     (AIP-155). Unfinished operations are never removed;
//   - change-log entries older than `change_log_retention`, and the oldest
//     beyond `change_log_max_entries`. A Watch resuming from a removed
//     sequence gets OUT_OF_RANGE (the store's watermark).
//
// When: one pass at Start, then one pass every `interval` (the time between
// the end of a pass and the start of the next). A pass fixes its cut-offs
// when it starts and deletes in batches of at most `batch` rows per kind,
// one short store transaction each; each batch is its own task on the
// EventLoop, re-posted while a batch came back full, so the loop's other
// work (operation writes, timers) runs between two batches and a large
// backlog never holds the loop. A pass that removed something writes one
// line to `log`; a pass that removed nothing writes nothing. A store error
// ends the pass with one line and the next pass tries again.
//
// Thread-safety: Start, Stop and stats may be called from any thread. The
// passes run on the loop thread only. Stop waits for a batch in progress,
// so after it returns the store is not touched again.
//
// Lifetime: `store`, `loop` and `log` must outlive the Retention (or at
// least its Stop). The destructor calls Stop.
#ifndef CLOUDPLANE_SERVICE_RETENTION_H_
#define CLOUDPLANE_SERVICE_RETENTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>

#include "absl/time/time.h"
#include "base/event_loop.h"
#include "store/store.h"

namespace cloudplane::service {

class Retention {
 public:
  struct Options {
    // Finished operations last written longer ago than this are removed.
    // InfiniteDuration (or <= 0) keeps them.
    absl::Duration operation_retention = absl::InfiniteDuration();
    // Change-log entries older than this are removed; InfiniteDuration (or
    // <= 0) keeps them regardless of age.
    absl::Duration change_log_retention = absl::InfiniteDuration();
    // At most this many change-log entries are kept; <= 0 means no limit.
    int64_t change_log_max_entries = 0;
    // Time between passes; zero means DefaultInterval(*this).
    absl::Duration interval = absl::ZeroDuration();
    // Rows per store call (1..10000).
    int batch = 1000;
    // Source of now for the cut-offs; absl::Now when empty. Called on the
    // loop thread only.
    std::function<absl::Time()> clock;
  };

  struct Stats {
    int64_t passes = 0;              // Passes finished (failed ones too).
    int64_t batches = 0;             // Store calls made.
    int64_t operations_removed = 0;
    int64_t changes_removed = 0;
    int64_t failures = 0;            // Passes ended by a store error.
  };

  // A tenth of the shorter retention, between 1 s and 1 min: every minute
  // for the defaults (days), often enough that a short retention (tests,
  // bench/db_growth.py) is kept to within ~10%.
  static absl::Duration DefaultInterval(const Options& options);

  Retention(store::Store* store, EventLoop* loop, std::ostream* log,
            Options options);
  ~Retention();

  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  // Posts the first pass; later passes follow every interval. Once only.
  void Start();
  // No pass or batch starts after it returns. Idempotent.
  void Stop();

  Stats stats() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_RETENTION_H_
