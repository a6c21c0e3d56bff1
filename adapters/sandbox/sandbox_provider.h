// The sandbox Provider's class, shared by the sandbox_*.cc files that
// implement its services. Internal to adapters/sandbox; the public entry
// point is sandbox_adapter.h.
//
// How state moves:
//   * Every resource is a `cloudplane.sandbox.Record` in the server's store
//     (collection = the name's collection segment, id = the last segment).
//   * A mutation runs in one store transaction (Mutate): it validates,
//     writes, and may leave a Transition (target state + due time) on the
//     record. It reports a poll token (PollToken in sandbox_state.proto:
//     collection, id and what to wait for) that Evaluate() answers from the
//     store.
//   * validate_only (CallContext): the mutation runs exactly as it would,
//     with every check, in a transaction that is then rolled back, so the
//     answer is the real call's refusal or a finished progress, and nothing
//     is stored, published or scheduled.
//   * A transition whose time has come is applied
//       - in memory by every read (ReadSettled, ReadPageSettled), so reads
//         are never stale;
//       - and written back by whoever touches the record in a transaction
//         first: the timer that Mutate schedules on the EventLoop at the due
//         time, or a later mutation (Txn::Load).
//   * Txn::Put and Txn::Delete queue a Watch change (CREATED/UPDATED/
//     DELETED) for every resource they write; it is published after the
//     commit, so each change is published once and never for a rollback.
//   * Idempotency: a mutation with an operation name records its poll token
//     in the `_journal` collection in the same transaction; the same
//     operation re-driven after a crash gets that token back and changes
//     nothing. A cancel is journaled as `<operation>:cancel` likewise.
//   * Journal retention: an entry is deleted once it is older than
//     AccountSetup::operation_retention (the server's
//     operation_retention_seconds) AND its operation is not an unfinished
//     one in the store (absent, or done). That is safe because an entry is
//     only ever read by a re-drive (or a repeated cancel) of its operation,
//     and the server re-drives and cancels only unfinished operations: once
//     the operation is done nothing reads the entry again, and once the
//     server has pruned the operation (it prunes only finished ones, after
//     the same retention) no request can reach it under that name. The age
//     alone would not be enough: an operation may run longer than a short
//     retention (its deadline is operation_timeout_seconds), hence the
//     check of the operation itself, made in the same transaction as the
//     delete. Pruning runs on AccountSetup::loop (never on a caller's or a
//     transport thread): one round at start-up, then one every
//     JournalPruneInterval(retention); a round walks the journal in batches
//     of kJournalPruneBatch entries, one short transaction each, each its
//     own loop task, so other loop work runs between two batches. Entries
//     are keyed by operation name, not by time, so a round reads the whole
//     journal (about one entry per operation of the retention window).
//     Without a loop nothing is pruned.
//   * Lists are paged through the store's id index (ReadPageSettled): a
//     resource's name is `accounts/{account}/{collection}/{id}`, so name
//     order is id order, and a page reads only the records after its
//     token's key, settling them as ReadSettled does, until it holds
//     page_size + 1 visible ones (a record whose due transition removes it
//     is skipped and the read goes on). Its cost grows with the page, not
//     with the account. The tokens are adapters/common/paging's, keyed by
//     resource name, as when pages were cut from the whole list in memory.
#ifndef CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_PROVIDER_H_
#define CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_PROVIDER_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/paging/paging.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_catalog.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_state.pb.h"
#include "base/event_loop.h"
#include "google/protobuf/field_mask.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"
#include "store/store.h"

namespace cloudplane::adapters::sandbox {

using Record = ::cloudplane::sandbox::Record;
using Transition = ::cloudplane::sandbox::Transition;
using PollToken = ::cloudplane::sandbox::PollToken;

// The store collection of the operation journal (not a resource collection).
inline constexpr absl::string_view kJournal = "_journal";
// Journal entries one pruning transaction reads (see Journal retention).
inline constexpr int kJournalPruneBatch = 500;
// Time between two journal pruning rounds: a tenth of `retention`, between
// 1 second and 10 minutes.
absl::Duration JournalPruneInterval(absl::Duration retention);
// The store collection of instance metadata, keyed by instance id.
inline constexpr absl::string_view kMetadata = "metadata";
// Firewall rules live inside their firewall's record; "rules" names them in
// poll tokens and messages.
inline constexpr absl::string_view kRules = "rules";

// What a transaction leaves to do once it has committed.
struct Effects {
  struct Change {
    v1::WatchResponse::ChangeType type;
    std::string name;
    std::shared_ptr<google::protobuf::Message> resource;
  };
  struct Timer {
    std::string collection;
    std::string id;
    absl::Time due;
  };
  std::vector<Change> changes;
  std::vector<Timer> timers;
};

// Settles a record whose transition is due: applies it to the resource in
// `record`. Returns what happened; on a change, `*after` is the resource to
// publish (its last value for kRemoved).
enum class Settled { kUnchanged, kUpdated, kRemoved };
absl::StatusOr<Settled> Settle(absl::string_view collection, Record& record, absl::Time now,
                               std::shared_ptr<google::protobuf::Message>* after);

// An empty message of the API type `collection` stores (Instance for
// "instances", ...); nullptr for internal collections (the journal).
std::shared_ptr<google::protobuf::Message> NewResource(absl::string_view collection);

// The etag of version `record` of the resource `name`.
std::string Etag(absl::string_view name, const Record& record);

// Record <-> typed resource.
template <typename T>
absl::StatusOr<T> Decode(const Record& record) {
  T message;
  if (!message.ParseFromString(record.resource())) {
    return absl::DataLossError(
        absl::StrCat("sandbox: stored ", T::descriptor()->name(), " does not decode"));
  }
  return message;
}
absl::StatusOr<Record> DecodeRecord(absl::string_view bytes);

// Writes `resource` into `record` as a new version made at `when`: bumps the
// generation and, for the types that have them, sets etag and update_time.
void SaveVersion(v1::Instance& resource, Record& record, absl::Time when);
void SaveVersion(v1::Volume& resource, Record& record, absl::Time when);
void SaveVersion(v1::InstanceMetadata& resource, Record& record, absl::Time when);
void SaveVersion(google::protobuf::Message& resource, Record& record, absl::Time when);

// The sandbox's own state words (Instance/Volume/Network.provider_state).
std::string InstanceProviderState(v1::Instance::State state);
std::string VolumeProviderState(v1::Volume::State state);
std::string NetworkProviderState(v1::Network::State state);

// "instance", "launch template", ... for messages.
std::string KindOf(absl::string_view collection);
// NOT_FOUND for the resource `name` of `collection`, with ErrorInfo metadata
// {"resource": name}.
absl::Status NotFound(absl::string_view collection, absl::string_view name);
// ALREADY_EXISTS likewise.
absl::Status AlreadyExists(absl::string_view collection, absl::string_view name);
// FAILED_PRECONDITION with reason FAILED_PRECONDITION and the resource named.
absl::Status WrongState(absl::string_view name, absl::string_view message);

// absl::Time -> google.protobuf.Timestamp.
void SetTime(absl::Time time, google::protobuf::Timestamp* out);

// Sets a transition due `delay` after `now`.
void SetTransition(Record& record, absl::Time now, absl::Duration delay, int target_state,
                   bool remove = false);

// A store transaction as the sandbox uses it.
class Txn {
 public:
  Txn(store::TxnView& view, std::string account, absl::Time now)
      : view_(view), account_(std::move(account)), now_(now) {}

  absl::Time now() const { return now_; }
  const std::string& account() const { return account_; }

  // The record, with a due transition applied and written back; nullopt when
  // there is none (or it was just removed by its transition).
  absl::StatusOr<std::optional<Record>> Load(absl::string_view collection, absl::string_view id);
  // Load() of every record of `collection`, ordered by id.
  absl::StatusOr<std::vector<std::pair<std::string, Record>>> LoadAll(
      absl::string_view collection);
  // Writes `record`; schedules a timer when it carries a transition.
  absl::Status Put(absl::string_view collection, absl::string_view id, const Record& record);
  // Publishes DELETED with `last`, or with the stored value when null.
  absl::Status Delete(absl::string_view collection, absl::string_view id,
                      std::shared_ptr<google::protobuf::Message> last = nullptr);

  store::TxnView& view() { return view_; }
  Effects& effects() { return effects_; }

 private:
  store::TxnView& view_;
  const std::string account_;
  const absl::Time now_;
  Effects effects_;
};

// A decoded resource with its record, as mutations work on them.
template <typename T>
struct Loaded {
  T resource;
  Record record;
};

// The resource `id` of `collection` (settled); nullopt when there is none.
template <typename T>
absl::StatusOr<std::optional<Loaded<T>>> LoadIfExists(Txn& txn, absl::string_view collection,
                                                      absl::string_view id) {
  absl::StatusOr<std::optional<Record>> record = txn.Load(collection, id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) return std::optional<Loaded<T>>();
  absl::StatusOr<T> resource = Decode<T>(**record);
  if (!resource.ok()) return resource.status();
  return std::optional<Loaded<T>>(Loaded<T>{*std::move(resource), **std::move(record)});
}

// Like LoadIfExists, but NOT_FOUND when there is none.
template <typename T>
absl::StatusOr<Loaded<T>> LoadExisting(Txn& txn, absl::string_view collection,
                                       absl::string_view id) {
  absl::StatusOr<std::optional<Loaded<T>>> loaded = LoadIfExists<T>(txn, collection, id);
  if (!loaded.ok()) return loaded.status();
  if (!loaded->has_value()) {
    return NotFound(collection, ResourceName(txn.account(), collection, id));
  }
  return **std::move(loaded);
}

// The paths of an update mask, checked: each must be in `mutable_paths`
// (a map field `f` also allows `f.<key>` when "f" is listed); paths in
// `immutable_paths`, unknown ones and an empty mask are INVALID_ARGUMENT
// naming `update_mask`.
absl::StatusOr<std::vector<std::string>> CheckUpdateMask(
    const google::protobuf::FieldMask& mask, const std::vector<absl::string_view>& mutable_paths,
    const std::vector<absl::string_view>& map_paths,
    const std::vector<absl::string_view>& immutable_paths);

// Checks `options` (Instance/Volume.provider_options): the sandbox reads no
// keys, so any key is INVALID_ARGUMENT naming `<field>.<key>`.
absl::Status CheckNoProviderOptions(const google::protobuf::Struct& options,
                                    absl::string_view field);

// Label keys must be non-empty: INVALID_ARGUMENT naming `field` otherwise.
absl::Status CheckLabels(const google::protobuf::Map<std::string, std::string>& labels,
                         absl::string_view field);

// Poll tokens (sandbox_poll.cc): what the operation on resource `id` of
// `collection` waits for. MutationProgress carries them packed
// (kit::PackToken).
inline constexpr uint32_t kPollTokenVersion = 1;
// The resource reaches `state`, a value name of its State enum.
PollToken StateToken(absl::string_view collection, absl::string_view id,
                     absl::string_view state);
// The resource is gone.
PollToken GoneToken(absl::string_view collection, absl::string_view id);
// Nothing to wait for: the resource as it is now.
PollToken CurrentToken(absl::string_view collection, absl::string_view id);
// The resource has no transition pending.
PollToken SettledToken(absl::string_view collection, absl::string_view id);
// The scaling group is stable with `size` instances.
PollToken SizeToken(absl::string_view group_id, int size);
// Rule `number` of firewall `firewall_id` exists (or, with `gone`, not).
PollToken RuleToken(absl::string_view firewall_id, int64_t number, bool gone);
// The token packed in `bytes`: DATA_LOSS with reason
// OPERATION_STATE_UNREADABLE when they hold anything else.
absl::StatusOr<PollToken> ReadPollToken(absl::string_view bytes);
// What a validate_only mutation that passed its checks answers: finished,
// with an empty result of the method's type.
MutationProgress ValidatedProgress(const PollToken& token);

// The 32 raw bytes of SHA-256(`data`) (sandbox_keys.cc; OpenSSL).
std::string Sha256(absl::string_view data);

// The sandbox's one address space (sandbox_networks.cc), shared by its
// networks, interfaces and addresses (sandbox_addresses.cc).
// Where addresses outside any network come from: 203.0.113.1-254.
inline constexpr absl::string_view kPublicPool = "203.0.113.0/24";

// Addresses first..last, both included.
struct Span {
  uint32_t first;
  uint32_t last;
  bool Contains(uint32_t a) const { return first <= a && a <= last; }
  bool Overlaps(const Span& o) const { return first <= o.last && o.first <= last; }
};

// Where an address may come from: a network's assignable ranges, or the
// public pool (`network` empty).
struct Pool {
  std::string network;
  std::vector<Span> spans;
  std::optional<uint32_t> gateway;

  bool Contains(uint32_t a) const {
    if (gateway.has_value() && *gateway == a) return false;
    for (const Span& span : spans) {
      if (span.Contains(a)) return true;
    }
    return false;
  }
};

// The public pool: addresses outside any network.
Pool PublicPool();
// The addresses instances get in `network` (its ranges, checked, less its
// gateway); INVALID_ARGUMENT naming `network.<field>` when they are wrong.
absl::StatusOr<Pool> NetworkPool(const v1::Network& network);

class SandboxProvider final : public Provider {
 public:
  struct Options {
    absl::Duration transition = absl::Milliseconds(1500);
  };

  // Builds the provider and schedules the transitions pending in the store.
  static absl::StatusOr<std::unique_ptr<SandboxProvider>> Create(const AccountSetup& setup,
                                                                  Options options);
  ~SandboxProvider() override;

  const ProviderInfo& Info() const override;
  // CreateInstance, StartInstance and StopInstance (sandbox_compute.cc).
  std::vector<std::string> CancellableMethods() const override;
  // A create: the instance is deleted; a start: it is stopped again (from
  // PROVISIONING on its way up, too); a stop: it is started again. The undo
  // is a mutation of its own, journaled as `<operation>:cancel`, so a
  // repeated cancel does it once. A token that names no instance state:
  // FAILED_PRECONDITION CANCEL_UNSUPPORTED.
  void CancelMutation(const CallContext& ctx, const std::string& method,
                      const std::string& poll_token, Callback<MutationProgress> done) override;

  void PollOperation(const CallContext& ctx, const std::string& poll_token,
                     Callback<MutationProgress> done) override;

  // How many records the reads (ReadSettled, ReadAllSettled,
  // ReadPageSettled) have decoded from the store so far: what a test reads
  // to check that a list page costs O(page), not O(account).
  int64_t records_read() const { return records_read_.load(std::memory_order_relaxed); }

  // Every method of the API (api_methods.inc); each service's methods are in
  // its sandbox_<service>.cc.
#define CP_SANDBOX_OVERRIDE(Method, Request, Answer) \
  void Method(const CallContext&, const v1::Request&, Callback<Answer>) override;
#define CP_READ(Service, Method, Request, Response) \
  CP_SANDBOX_OVERRIDE(Method, Request, v1::Response)
#define CP_MUTATION(Service, Method, Request, Result) \
  CP_SANDBOX_OVERRIDE(Method, Request, MutationProgress)
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION
#undef CP_SANDBOX_OVERRIDE

 private:
  // Guards timer callbacks against running after destruction.
  struct Alive {
    absl::Mutex mu;
    SandboxProvider* self ABSL_GUARDED_BY(mu);
    // The pending journal pruning timer (0: none); cancelled on destruction.
    TimerId prune_timer ABSL_GUARDED_BY(mu) = 0;
  };

  SandboxProvider(const AccountSetup& setup, Options options);

  // INTERNAL when a call for another account reaches this provider.
  absl::Status CheckCall(const CallContext& ctx) const;

  // Runs `fn` as the mutation of `ctx` (see the file comment) and answers
  // `done` with the progress of the token it returns.
  void Mutate(const CallContext& ctx, absl::FunctionRef<absl::StatusOr<PollToken>(Txn&)> fn,
              Callback<MutationProgress> done);
  // Runs `fn` in a store transaction and carries out its effects after the
  // commit.
  absl::Status RunTxn(absl::FunctionRef<absl::Status(Txn&)> fn);
  void ApplyEffects(Effects effects);
  void ScheduleTimer(const std::string& collection, const std::string& id, absl::Time due);
  void OnTimer(const std::string& collection, const std::string& id);
  absl::Status ScheduleStoredTransitions();
  // Journal retention (file comment): schedules the next batch after
  // `delay`; runs one batch and schedules the next, on the loop thread.
  // Both run with alive_->mu held.
  void SchedulePruneJournal(absl::Duration delay) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void PruneJournalBatch() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // Reads without writing: the record as it is now (due transitions applied
  // in memory); nullopt when absent or gone.
  absl::StatusOr<std::optional<Record>> ReadSettled(absl::string_view collection,
                                                    absl::string_view id) const;
  absl::StatusOr<std::vector<Record>> ReadAllSettled(absl::string_view collection) const;
  // One page of `collection` in name order (file comment, "Lists"): the
  // settled records of the page and the next page's token ("" on the last
  // page). INVALID_ARGUMENT naming `page_size` (negative) or `page_token`
  // (not one this server issued), as adapters/common/paging.
  struct SettledPage {
    std::vector<Record> records;
    std::string next_page_token;
  };
  absl::StatusOr<SettledPage> ReadPageSettled(absl::string_view collection, int32_t page_size,
                                              absl::string_view page_token) const;

  // The progress of the work a poll token names.
  absl::StatusOr<MutationProgress> Evaluate(const PollToken& token) const;

  // Typed reads used by several services.
  template <typename T>
  absl::StatusOr<T> GetTyped(absl::string_view collection, absl::string_view id) const;
  template <typename T>
  absl::StatusOr<std::vector<T>> ListTyped(absl::string_view collection) const;
  // ReadPageSettled, decoded into `out`: a List method's answer.
  template <typename T>
  absl::Status ListPage(absl::string_view collection, int32_t page_size,
                        absl::string_view page_token, google::protobuf::RepeatedPtrField<T>* out,
                        std::string* next_page_token) const;

  // Reference checks for request fields: the id of `name` in `collection`,
  // INVALID_ARGUMENT naming `field` for a malformed name, NOT_FOUND naming
  // the resource when it does not exist.
  absl::StatusOr<std::string> CheckCatalogRef(absl::string_view name, absl::string_view collection,
                                              absl::string_view field) const;
  absl::StatusOr<std::string> CheckStoredRef(Txn& txn, absl::string_view name,
                                             absl::string_view collection,
                                             absl::string_view field) const;
  // Firewall rules (sandbox_firewalls.cc): the firewalls and networks a
  // rule names as its far end exist (NOT_FOUND otherwise; `self`, the
  // rule's own firewall, always does); and the name of a rule of another
  // firewall than `name` that names `name` as an end, or "" (a firewall or
  // network so named cannot be deleted).
  absl::Status CheckRuleRefs(Txn& txn, const v1::FirewallRule& rule, absl::string_view field,
                             const std::string& self);
  absl::StatusOr<std::string> RuleNaming(Txn& txn, const std::string& name);
  // A fresh id `<prefix>-<12 hex>` free in `collection`.
  absl::StatusOr<std::string> NewId(Txn& txn, absl::string_view collection,
                                    absl::string_view prefix) const;
  // The requested id checked (ALREADY_EXISTS when taken), or a fresh one.
  absl::StatusOr<std::string> ChooseId(Txn& txn, absl::string_view collection,
                                       absl::string_view requested, absl::string_view field,
                                       absl::string_view prefix) const;

  std::string Name(absl::string_view collection, absl::string_view id) const;

  // The metadata of an existing instance (empty items when never set).
  absl::StatusOr<v1::InstanceMetadata> ReadMetadata(absl::string_view instance_id) const;

  // Per-service helpers (sandbox_compute.cc, sandbox_units.cc, ...).
  // The zone id for a request's `location` (empty: the default zone; a
  // region: its first zone).
  absl::StatusOr<std::string> ResolveZone(absl::string_view location,
                                          absl::string_view field) const;
  // Sets machine_type, cpu_count and memory_bytes of `out` from the sizing
  // fields of `in` (field names under `prefix`).
  absl::Status ApplyInstanceSize(const v1::Instance& in, bool type_given, bool size_given,
                                 absl::string_view prefix, v1::Instance& out) const;
  absl::StatusOr<std::string> PickMachine(Txn& txn, const v1::Unit& unit) const;

  // Network interfaces (sandbox_networks.cc). PlugInterface checks the
  // interface `in` (request path `field`) that `instance` (its name and
  // location set, its interfaces so far in network_interfaces) is to get as
  // interface `nic_id`, takes its address (the given one, which must be in
  // the network and free or reserved; else the network's next free one, or
  // a public one when no network is named) and writes that Address IN_USE.
  // Returns the interface as the instance shows it.
  absl::StatusOr<v1::NetworkInterface> PlugInterface(Txn& txn, const v1::NetworkInterface& in,
                                                     absl::string_view field,
                                                     const v1::Instance& instance,
                                                     absl::string_view nic_id) const;
  // Frees the address of `nic` of instance `instance_name`: back to RESERVED
  // when it was reserved, gone otherwise.
  absl::Status UnplugInterface(Txn& txn, const v1::NetworkInterface& nic,
                               absl::string_view instance_name) const;
  // Sets Network.used_addresses of `network_name` (empty: none) from the
  // stored addresses; writes the network only when the count changed.
  absl::Status RecountNetwork(Txn& txn, absl::string_view network_name) const;
  // The key pair named by CreateInstance's key_name (its id or resource
  // name): its resource name; NOT_FOUND when there is none (sandbox_keys.cc).
  absl::StatusOr<std::string> CheckKeyName(Txn& txn, absl::string_view key_name) const;

  const std::string account_;
  store::Store* const store_;
  EventLoop* const loop_;
  ChangeSink* const changes_;
  const Options options_;
  const Catalog catalog_;
  const absl::Duration journal_retention_;
  // The journal round in progress: where the next batch starts (empty: a
  // new round), its cut-off and what it removed so far. Touched only by
  // PruneJournalBatch, on the loop thread, under alive_->mu.
  std::string prune_cursor_;
  absl::Time prune_cutoff_;
  int64_t prune_removed_ = 0;
  // records_read(): counted by every read, on any thread.
  mutable std::atomic<int64_t> records_read_{0};
  std::shared_ptr<Alive> alive_;
};

// Typed reads.
template <typename T>
absl::StatusOr<T> SandboxProvider::GetTyped(absl::string_view collection,
                                            absl::string_view id) const {
  absl::StatusOr<std::optional<Record>> record = ReadSettled(collection, id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) {
    return NotFound(collection, Name(collection, id));
  }
  return Decode<T>(**record);
}

template <typename T>
absl::StatusOr<std::vector<T>> SandboxProvider::ListTyped(absl::string_view collection) const {
  absl::StatusOr<std::vector<Record>> records = ReadAllSettled(collection);
  if (!records.ok()) return records.status();
  std::vector<T> out;
  for (const Record& record : *records) {
    absl::StatusOr<T> item = Decode<T>(record);
    if (!item.ok()) return item.status();
    out.push_back(*std::move(item));
  }
  return out;
}

template <typename T>
absl::Status SandboxProvider::ListPage(absl::string_view collection, int32_t page_size,
                                       absl::string_view page_token,
                                       google::protobuf::RepeatedPtrField<T>* out,
                                       std::string* next_page_token) const {
  absl::StatusOr<SettledPage> page = ReadPageSettled(collection, page_size, page_token);
  if (!page.ok()) return page.status();
  out->Reserve(static_cast<int>(page->records.size()));
  for (const Record& record : page->records) {
    absl::StatusOr<T> item = Decode<T>(record);
    if (!item.ok()) return item.status();
    *out->Add() = *std::move(item);
  }
  *next_page_token = std::move(page->next_page_token);
  return absl::OkStatus();
}

// Sorts `items` by `key` and moves the page that `page_size` and
// `page_token` select into `out` (keyset paging, adapters/common/paging).
template <typename T, typename KeyFn>
absl::Status PageInto(std::vector<T> items, KeyFn key, int32_t page_size,
                      absl::string_view page_token, google::protobuf::RepeatedPtrField<T>* out,
                      std::string* next_page_token) {
  std::sort(items.begin(), items.end(),
            [&key](const T& a, const T& b) { return key(a) < key(b); });
  absl::StatusOr<std::vector<T>> page =
      paging::Paginate(std::move(items), key, page_size, page_token, next_page_token);
  if (!page.ok()) return page.status();
  for (T& item : *page) *out->Add() = std::move(item);
  return absl::OkStatus();
}

template <typename T>
std::string ByName(const T& item) {
  return item.name();
}

}  // namespace cloudplane::adapters::sandbox

#endif  // CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_PROVIDER_H_
