// The websocket feed of one CloudSigma account: the account's Watch source
// (ProviderInfo::watch_source kPush). Internal to adapters/cloudsigma.
//
// How it runs (async.rst):
//   1. Without a ws_endpoint option, the websocket URL is the websocket_url
//      of the /locations/ entry whose api_endpoint is the account's endpoint;
//      when none matches the account has no push events (logged once).
//   2. Every connection takes a fresh `async_auth` cookie from
//      `POST /accounts/action/?do=authenticate_asynchronous` (it lives two
//      minutes).
//   3. Each frame about a drive or server becomes a CREATED/UPDATED change of
//      the Volume/Instance (fetched when the frame carries no object), a 404
//      a DELETED. Frames are handled one at a time, in order; others
//      (balance, profile, jobs, …) are ignored.
//   4. A lost connection is re-established with backoff (0.5 s doubling to
//      30 s, on the EventLoop's timers). After a reconnect every drive and
//      server is published again (UPDATED, or DELETED for ones gone
//      meanwhile) so no change is lost silently. Delivery is at least once.
//
// Threading: changes are published to the ChangeSink from the websocket or
// the HTTP transport thread, never from the caller's. The feed never touches
// the server's store (the sink decides where its work runs).
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_FEED_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_FEED_H_

#include <atomic>
#include <deque>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "adapters/cloudsigma/cloudsigma_calls.h"
#include "adapters/common/websocket/websocket_client.h"
#include "adapters/provider.h"
#include "base/event_loop.h"
#include "google/protobuf/message.h"

namespace cloudplane::adapters::cloudsigma {

class Feed : public std::enable_shared_from_this<Feed> {
 public:
  // `ws_url` may be empty (step 1 above). `sink` and `loop` outlive the
  // feed; without a loop a lost connection is not re-established.
  Feed(AccountPtr account, std::string ws_url, bool verify_tls, std::string ca_file,
       ChangeSink* sink, EventLoop* loop);

  // Connects (asynchronously). Call once, on a feed owned by a shared_ptr.
  void Start();

  // Closes the connection and cancels a pending reconnect; nothing is
  // published after Stop() returns except by a frame already being handled.
  void Stop();

  // Whether the websocket is open now (between its open and its close or
  // Stop). While it is not, changes are not pushed: the server's observer
  // lists the account instead (Provider::PushConnected). Any thread.
  bool Connected() const { return open_.load(std::memory_order_acquire); }

 private:
  void Connect();
  void OpenSocket(const std::string& cookie);
  void Retry(const absl::Status& why);
  void Enqueue(std::string message);
  void Next();
  void Publish(const std::string& collection, const WireObject& o,
               absl::AnyInvocable<void(absl::Status)> then);
  // A published value, kept per uuid for DELETED and CREATED vs UPDATED.
  struct Last {
    std::shared_ptr<google::protobuf::Message> resource;  // Volume or Instance
    std::string name;
    bool volume = false;
  };
  void Emit(const std::string& uuid, Last value);
  void PublishDeleted(const std::string& uuid);
  void Resync();

  const AccountPtr account_;
  std::string ws_url_;  // set once before the first connection
  const bool verify_tls_;
  const std::string ca_file_;
  ChangeSink* const sink_;
  EventLoop* const loop_;

  std::atomic<bool> open_{false};
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_before_ ABSL_GUARDED_BY(mu_) = false;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  TimerId timer_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<websocket::WebSocketConnection> conn_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Last> last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cloudplane::adapters::cloudsigma

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_FEED_H_
