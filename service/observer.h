// The observer of one account: what makes Watch true for providers that do
// not push their changes, and what account health is judged from.
//
// Which accounts: a provider whose ProviderInfo::watch_source is kPoll
// (fleet, OpenNebula, enStratus, Phantom), and a kPush provider (CloudSigma)
// while Provider::PushConnected() is false — its websocket is down, so
// nothing else would see the changes made meanwhile. While its feed is up, a
// kPush provider's collections are listed only until each has a baseline
// (once, usually the first round); the pushed changes keep that snapshot
// current, so the first round after the feed drops publishes what changed
// meanwhile instead of taking it in silently. A kLocal provider (the
// sandbox) makes every change itself and has no observer (Eligible).
//
// What is observed: the account's top-level collections among ListInstances,
// ListVolumes, ListFirewalls, ListUnits, ListMachines, ListLaunchTemplates and
// ListScalingGroups that the account supports (Provider::SupportedMethods;
// ObservedMethods). Not
// observed:
//   - catalogue lists (images, machine types, locations, hosts, billing
//     codes): they describe what the provider offers, not what the account
//     owns; they change rarely, are often large (public image lists run to
//     thousands of entries) and nobody watches them;
//   - nested collections (an instance's metadata, a firewall's rules, the
//     unit states of ListUnitStates): they need one list per parent, N calls
//     per interval where the top-level lists need one; a rule change shows as
//     its firewall's UPDATED where the adapter folds rules into the firewall.
//
// One observation ("round"), on the EventLoop:
//   1. For each observed collection, the request is built by reflection from
//      the method's descriptor (`parent: accounts/{id}`, page_size,
//      page_token) and sent through adapters::DispatchRead, page after page
//      until next_page_token is empty. Every request goes through the
//      account's transport (kit::GuardedTransport: retries, in-flight and rate
//      limits, the circuit breaker). Answers arrive on transport threads and
//      are posted to the loop; nothing else happens off the loop.
//   2. A collection whose every page answered is diffed by resource name
//      against the last observed snapshot (resources compared as
//      deterministically serialized bytes): new names are CREATED, changed
//      bytes UPDATED, missing names DELETED (with the last observed value).
//      The snapshot is written to the store in one transaction
//      (resources `observed.<Kind>`, id = resource name; a marker
//      `observed`/<Kind> says a baseline exists), then the changes are
//      published through the ChangeSink with WatchSource::kPoll.
//   3. The first observation of a collection (no marker) records the
//      baseline silently; after a restart the stored snapshot is the
//      baseline, so only real differences are published.
//   4. A collection whose listing failed keeps its snapshot: an error never
//      reads as DELETED.
//   5. The round's results make a Health (READY / DEGRADED / UNREACHABLE /
//      UNAUTHENTICATED, see Judge) handed to Options::on_health.
// One list per collection per interval, however many clients watch: Watch
// streams read the change log, never the provider.
//
// Changes cloudplane publishes itself (the runner's, CloudSigma's push) are
// fed in through Options::subscribe (the WatchHub): a non-poll change of an
// observed kind updates the snapshot (on the loop), so the next round does
// not publish it again; a name changed that way while its collection's list
// was in flight is left out of that list's diff.
//
// Threading: Start, Stop, ObserveNow and LastObserved may be called from any
// thread; Stop must not be called on the loop. Rounds, store access and
// on_health run on the loop.
#ifndef CLOUDPLANE_SERVICE_OBSERVER_H_
#define CLOUDPLANE_SERVICE_OBSERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "adapters/provider.h"
#include "base/event_loop.h"
#include "cloudplane/v1/accounts.pb.h"
#include "cloudplane/v1/watch.pb.h"
#include "google/protobuf/any.pb.h"
#include "service/observation_source.h"
#include "store/store.h"

namespace cloudplane::service {

class Observer : public ObservationSource {
 public:
  // The list methods an observer may call, as full method names.
  static const std::vector<std::string>& ObservedMethods();

  // Whether `provider` gets an observer at all: kPoll and kPush providers
  // (a kPush one is observed only while its feed is down).
  static bool Eligible(const adapters::Provider& provider);

  // What one full round found.
  struct Health {
    v1::Account::State state = v1::Account::READY;
    // The first failure of the round ("<method>: <message>", the code kept).
    absl::Status error;
    absl::Time observed_at;
  };

  // The state a round's per-collection results make:
  //   all OK (or nothing to list)                       → READY
  //   any UNAUTHENTICATED or PERMISSION_DENIED          → UNAUTHENTICATED
  //   all failed, each UNAVAILABLE or DEADLINE_EXCEEDED → UNREACHABLE
  //   otherwise some failed                             → DEGRADED
  static v1::Account::State Judge(const std::vector<absl::Status>& results);

  using ChangeListener = absl::AnyInvocable<void(const v1::WatchResponse&)>;

  struct Options {
    // Between two rounds, each jittered by ±jitter (a fraction).
    absl::Duration interval = absl::Seconds(15);
    double jitter = 0.2;
    // page_size of each list request; 0 leaves it to the adapter.
    int page_size = 0;
    // Deadline of each list request.
    absl::Duration list_deadline = absl::Seconds(30);
    // After every full round, on the loop.
    absl::AnyInvocable<void(const Health&)> on_health;
    // Registers a listener for the account's changes (the WatchHub);
    // returns an id for `unsubscribe`. Optional.
    absl::AnyInvocable<uint64_t(ChangeListener)> subscribe;
    absl::AnyInvocable<void(uint64_t)> unsubscribe;
  };

  // `provider`, `store`, `loop` and `sink` outlive the observer.
  Observer(std::string account, adapters::Provider* provider, store::Store* store,
           EventLoop* loop, adapters::ChangeSink* sink, Options options);
  ~Observer() override;  // Stop()

  // Loads the stored snapshot (on the loop) and starts the first round at
  // once. Call once.
  void Start();

  // No round starts, nothing is published, stored or reported after Stop
  // returns (answers still in flight are dropped on arrival). Blocks until
  // the loop has taken it; not on the loop thread. Idempotent.
  void Stop();

  // Starts a round now — of the kinds named (e.g. "Unit"), or of every
  // observed collection when empty — or right after the round in flight.
  // A targeted round does not change the account's health.
  void ObserveNow(std::vector<std::string> kinds = {});

  // The last observed value of `resource_name` (as listed, or as a non-poll
  // change updated it), or nullopt when the snapshot does not hold it.
  std::optional<google::protobuf::Any> LastObserved(
      absl::string_view resource_name) const override;

  // The kinds this observer lists ("Instance", "Unit", ...).
  std::vector<std::string> Kinds() const override;

  // Options::interval.
  absl::Duration interval() const override;

  // After every round (full or targeted, whatever its results), on the
  // loop: the operation runner completes pending operations from it
  // (ObservationSource).
  uint64_t AddRoundListener(RoundListener listener) override;
  void RemoveRoundListener(uint64_t id) override;

  // Full rounds finished so far.
  int64_t rounds() const;

 private:
  class Core;
  std::shared_ptr<Core> core_;
};

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_OBSERVER_H_
