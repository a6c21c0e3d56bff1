// The change feed behind WatchService.Watch.
//
// Every change (an operation's progress, a resource an operation created or
// deleted, a sandbox timer's transition, a provider event) is appended to the
// store's change log, which gives it a sequence number, and is then handed to
// every live subscriber whose filter matches. A subscriber that resumes with
// `start_after_sequence` first replays the log; duplicates between replay and
// live delivery are dropped by sequence number in the subscriber itself, so
// delivery is at least once and ordered.
//
// Thread-safety: all methods may be called from any thread. A Publish made on
// a transport thread (a provider's push feed on the websocket thread) is
// posted to the EventLoop, because appending to the log is a SQLite commit
// (base/thread_role.h); changes posted from one thread keep their order.
// Other publishers append and deliver on their own thread. Subscriber
// callbacks run on the thread that appends, under no lock of the hub's
// callers, and must not block.
#ifndef CLOUDPLANE_SERVICE_WATCH_HUB_H_
#define CLOUDPLANE_SERVICE_WATCH_HUB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
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
  using Listener = absl::AnyInvocable<void(const v1::WatchResponse&)>;

  // `loop` runs the publishes made on transport threads; nullptr only in
  // tests that publish from ordinary threads.
  WatchHub(store::Store* store, EventLoop* loop);

  // adapters::ChangeSink. Errors appending to the log are logged and the
  // change is still delivered live.
  void Publish(absl::string_view account, v1::WatchResponse::ChangeType type,
               absl::string_view resource_name, const google::protobuf::Message& resource,
               adapters::WatchSource source) override;

  // Registers `listener` for live changes; returns an id for Unsubscribe.
  // `on_close` runs once if the hub ends the subscription (CloseAll).
  uint64_t Subscribe(WatchFilter filter, Listener listener,
                     absl::AnyInvocable<void()> on_close);
  // After Unsubscribe returns, the listener is not running and never runs
  // again.
  void Unsubscribe(uint64_t id);

  // Logged changes with sequence > `after` that match `filter`, reading up
  // to `limit` log entries; `*scanned_to` is the last sequence read (equal to
  // `after` when the log has nothing newer). OUT_OF_RANGE when the changes
  // after `after` were already trimmed from the log.
  absl::StatusOr<std::vector<v1::WatchResponse>> Replay(const WatchFilter& filter,
                                                        int64_t after, int limit,
                                                        int64_t* scanned_to);

  // Ends every subscription: listeners get no more calls and each
  // subscription's `on_close` runs (server shutdown).
  void CloseAll();

  // The kind name of a message type: "cloudplane.v1.Instance" → "Instance",
  // "google.longrunning.Operation" → "Operation".
  static std::string KindOf(const google::protobuf::Message& message);

 private:
  struct Subscriber {
    WatchFilter filter;
    std::shared_ptr<Listener> listener;
    absl::AnyInvocable<void()> on_close;
  };
  // Appends `change` to the log and delivers it.
  void Append(std::string account, v1::WatchResponse change);

  store::Store* const store_;
  EventLoop* const loop_;
  absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  // Serialises Publish so that sequence order equals delivery order.
  absl::Mutex publish_mu_;
  int64_t appended_since_trim_ ABSL_GUARDED_BY(publish_mu_) = 0;
  // Held while a listener runs, so Unsubscribe can wait for it to finish.
  absl::Mutex delivery_mu_;
};

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_WATCH_HUB_H_
