// The change feed behind WatchService.Watch.
//
// Every change (an operation's progress, a resource an operation created or
// deleted, a sandbox timer's transition, a provider event) is appended to the
// store's change log, which gives it a sequence number, and to an in-memory
// window of the latest changes (the live log). Publishing then only wakes the
// subscribers: it costs the same with no stream open as with thousands.
//
// Each subscriber reads at its own pace through its Subscription, a cursor
// over the log:
//   1. one that resumes with `start_after_sequence` reads the store's log
//      first, in batches, until it has caught up; then
//   2. it reads the live window, a batch at a time, filtering for itself;
//   3. when it has read everything, it arms itself (ArmIfIdle) and the hub
//      calls its `on_wake` once, on the hub's fan-out thread, after the next
//      publish — however many publishes come meanwhile.
// Delivery is in sequence order without gaps or duplicates between the
// replay and the live part. A subscriber that falls more than `live_window`
// changes behind is told so (ABORTED, WATCH_FELL_BEHIND with the last
// sequence it was given) and can resume from the store with that sequence.
//
// Thread-safety: all methods may be called from any thread. A Publish made on
// a transport thread (a provider's push feed on the websocket thread) is
// posted to the EventLoop, because appending to the log is a SQLite commit
// (base/thread_role.h); changes posted from one thread keep their order.
// Other publishers append on their own thread, and concurrent ones share a
// commit: the publisher that gets to log appends every change queued by then
// in one store transaction, and each Publish returns once its change is
// durable and in the window. `on_wake` and `on_close` run
// under no lock of the hub and must not block; a Subscription's Next and
// ArmIfIdle must not be called concurrently with each other.
#ifndef CLOUDPLANE_SERVICE_WATCH_HUB_H_
#define CLOUDPLANE_SERVICE_WATCH_HUB_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "adapters/provider.h"
#include "base/event_loop.h"
#include "cloudplane/v1/watch.pb.h"
#include "store/store.h"

namespace cloudplane::service {

// Which changes a subscriber wants.
struct WatchFilter {
  std::string account;             // account id; "-" for all
  std::vector<std::string> kinds;  // empty for all
  // When set, a change is delivered only if this says its account is
  // visible (the caller's role bindings, asked at each change so that a
  // binding removed by a reload stops the flow at once).
  std::function<bool(absl::string_view account)> visible;
  bool Matches(absl::string_view account, absl::string_view kind) const;
};

class WatchHub : public adapters::ChangeSink {
 public:
  struct Options {
    // The store's change log is trimmed to about this many changes, every
    // `trim_every` appends (what a client can resume from).
    int64_t keep_changes = 20000;
    int64_t trim_every = 1000;
    // Changes kept in memory for the live streams: how far a stream may lag
    // behind the newest change before it ends with WATCH_FELL_BEHIND.
    int64_t live_window = 10000;
  };

  // A change as the live window holds it; shared, never modified.
  struct Entry {
    int64_t seq = 0;  // 0 when the store could not log it
    std::string account;
    std::shared_ptr<const v1::WatchResponse> change;
  };

  // One subscriber's cursor (see the file comment).
  class Subscription {
   public:
    // Appends to `out` the next changes that match the filter, in sequence
    // order, reading at most `max` log entries from the live window (or one
    // store batch while catching up). Leaves `out` as it was when there is
    // nothing to read now. Errors (the subscription is then unusable):
    //   ABORTED    WATCH_FELL_BEHIND: more than `live_window` changes arrived
    //              since this cursor last read; metadata `lastSequence`.
    //   OUT_OF_RANGE / UNAVAILABLE  from the store while catching up.
    absl::Status Next(int max, std::vector<std::shared_ptr<const v1::WatchResponse>>* out);

    // Asks for one `on_wake` after the next publish. Returns false, without
    // arming, when changes are already waiting (call Next instead).
    bool ArmIfIdle();

    // The sequence of the last change Next returned (the start position
    // before any).
    int64_t last_sequence() const { return last_sequence_; }
    uint64_t id() const { return id_; }

   private:
    friend class WatchHub;
    Subscription(WatchHub* hub, uint64_t id, WatchFilter filter, int64_t after)
        : hub_(hub), id_(id), filter_(std::move(filter)), scanned_(after), last_sequence_(after) {}
    absl::Status CatchUp(int max, std::vector<std::shared_ptr<const v1::WatchResponse>>* out);
    void Take(const std::string& account, int64_t seq,
              std::shared_ptr<const v1::WatchResponse> change,
              std::vector<std::shared_ptr<const v1::WatchResponse>>* out);

    WatchHub* const hub_;
    const uint64_t id_;
    const WatchFilter filter_;
    // Catching up from the store: `backlog_` holds the store batch being
    // read, `store_more_` whether the store may hold more after it.
    bool catching_up_ = false;
    bool store_more_ = false;
    std::deque<store::Change> backlog_;
    int64_t next_pos_ = 0;   // live-window position, once caught up
    int64_t scanned_ = 0;    // highest sequence read (matched or not)
    int64_t last_sequence_;  // highest sequence returned
    std::atomic<bool> armed_{false};
    absl::AnyInvocable<void()> on_wake_;
    absl::AnyInvocable<void()> on_close_;
  };

  // `loop` runs the publishes made on transport threads; nullptr only in
  // tests that publish from ordinary threads. The hub owns one more thread,
  // its fan-out loop, which runs the wake-ups (and the Watch streams' timers).
  WatchHub(store::Store* store, EventLoop* loop) : WatchHub(store, loop, Options()) {}
  WatchHub(store::Store* store, EventLoop* loop, Options options);
  ~WatchHub() override;

  // adapters::ChangeSink. Errors appending to the log are logged and the
  // change still goes to the live window (with sequence 0).
  void Publish(absl::string_view account, v1::WatchResponse::ChangeType type,
               absl::string_view resource_name, const google::protobuf::Message& resource,
               adapters::WatchSource source) override;

  // Opens a cursor that starts after `start_after_sequence` (0: with the
  // next change published). `on_wake` runs on the fan-out loop once per
  // ArmIfIdle that found nothing, after a later publish; it may still run
  // once after Unsubscribe began, so it should hold its stream weakly.
  // `on_close` runs once if the hub ends the subscription (CloseAll).
  //   OUT_OF_RANGE  the changes after `start_after_sequence` were trimmed
  //                 from the store's log.
  absl::StatusOr<std::shared_ptr<Subscription>> Subscribe(WatchFilter filter,
                                                          int64_t start_after_sequence,
                                                          absl::AnyInvocable<void()> on_wake,
                                                          absl::AnyInvocable<void()> on_close);
  // Forgets the subscription: no wake-up starts after this returns (one
  // already under way may still run, see Subscribe).
  void Unsubscribe(uint64_t id);

  // Ends every subscription: each subscription's `on_close` runs and no
  // wake-up follows (server shutdown).
  void CloseAll();

  // The hub's own loop thread (wake-ups); Watch streams put their
  // heartbeat timers here so they never wait behind the main loop's work.
  EventLoop* fanout_loop() { return &fanout_; }

  // The kind name of a message type: "cloudplane.v1.Instance" → "Instance",
  // "google.longrunning.Operation" → "Operation".
  static std::string KindOf(const google::protobuf::Message& message);

 private:
  // Appends `change` to the log and the live window, and wakes.
  void Append(std::string account, v1::WatchResponse change);
  void WakeArmed();

  store::Store* const store_;
  EventLoop* const loop_;
  const Options options_;

  // A change waiting in queue_ to be logged by the holder of publish_mu_.
  struct QueuedChange {
    const std::string* account;
    v1::WatchResponse* change;
    bool done = false;  // guarded by publish_mu_
  };

  // Serialises appends so that sequence order equals window order, and lets
  // a catching-up subscriber switch to the window without missing a change.
  // Its holder logs every change queued by then in one store transaction.
  absl::Mutex publish_mu_ ABSL_ACQUIRED_BEFORE(window_mu_);
  int64_t appended_since_trim_ ABSL_GUARDED_BY(publish_mu_) = 0;
  absl::Mutex queue_mu_;
  std::vector<QueuedChange*> queue_ ABSL_GUARDED_BY(queue_mu_);

  // The live window: positions base_pos_ .. base_pos_ + window_.size() - 1.
  absl::Mutex window_mu_;
  std::deque<std::shared_ptr<const Entry>> window_ ABSL_GUARDED_BY(window_mu_);
  int64_t base_pos_ ABSL_GUARDED_BY(window_mu_) = 0;
  // Per account, the position of its newest change that left the window: a
  // stream on one account that was not woken for other accounts' changes
  // has fallen behind only if one of its own left before it read it.
  absl::flat_hash_map<std::string, int64_t> evicted_pos_ ABSL_GUARDED_BY(window_mu_);

  absl::Mutex subs_mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(subs_mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Subscription>> subs_ ABSL_GUARDED_BY(subs_mu_);
  // The same subscriptions by their filter's account ("-" for all), so that
  // a pass wakes only the streams a change may be for: a stream on another
  // account costs a publish nothing.
  absl::flat_hash_map<std::string, absl::flat_hash_map<uint64_t, std::shared_ptr<Subscription>>>
      subs_by_account_ ABSL_GUARDED_BY(subs_mu_);
  std::atomic<bool> wake_posted_{false};
  // Accounts with changes since the last wake-up pass.
  absl::Mutex pending_mu_;
  absl::flat_hash_set<std::string> pending_accounts_ ABSL_GUARDED_BY(pending_mu_);

  // Last member: stopped (its queued wake-ups run) before the rest goes.
  EventLoop fanout_;
};

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_WATCH_HUB_H_
