// The sandbox's core: records, transitions, timers, the operation journal,
// polling, and the catalog reads. The services live in sandbox_compute.cc,
// sandbox_volumes.cc, sandbox_firewalls.cc, sandbox_autoscaling.cc and
// sandbox_units.cc.
#include "adapters/sandbox/sandbox_provider.h"

#include <iostream>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/sandbox/sandbox_adapter.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sha1.h"
#include "base/errors.h"
#include "base/status.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::sandbox {
namespace {

// Journal entries older than this are dropped at start-up: the server
// re-drives an accepted operation right after a restart, never weeks later.
constexpr absl::Duration kJournalRetention = absl::Hours(24 * 7);
// A timer whose transaction failed (e.g. the database was locked by another
// process) tries again after this long.
constexpr absl::Duration kTimerRetry = absl::Seconds(1);
// The collections whose records can carry transitions.
constexpr absl::string_view kTimedCollections[] = {kInstances, kVolumes, kUnits, kScalingGroups};

std::string Etag(absl::string_view name, const Record& record) {
  return Sha1Hex(absl::StrCat(name, "|", record.created_unix_micros(), "|", record.generation()))
      .substr(0, 16);
}

void BumpGeneration(Record& record, absl::Time when) {
  record.set_generation(record.generation() + 1);
  if (record.created_unix_micros() == 0) record.set_created_unix_micros(absl::ToUnixMicros(when));
}

absl::StatusOr<Settled> SettleInstance(Record& record, absl::Time due,
                                       std::shared_ptr<google::protobuf::Message>* after) {
  ASSIGN_OR_RETURN(v1::Instance instance, Decode<v1::Instance>(record));
  const Transition transition = record.transition();
  record.clear_transition();
  if (transition.remove()) {
    instance.set_state(v1::Instance::TERMINATED);
    instance.set_provider_state(InstanceProviderState(v1::Instance::TERMINATED));
    SetTime(due, instance.mutable_update_time());
    *after = std::make_shared<v1::Instance>(std::move(instance));
    return Settled::kRemoved;
  }
  auto target = static_cast<v1::Instance::State>(transition.target_state());
  instance.set_state(target);
  instance.set_provider_state(InstanceProviderState(target));
  SaveVersion(instance, record, due);
  *after = std::make_shared<v1::Instance>(std::move(instance));
  return Settled::kUpdated;
}

absl::StatusOr<Settled> SettleVolume(Record& record, absl::Time due,
                                     std::shared_ptr<google::protobuf::Message>* after) {
  ASSIGN_OR_RETURN(v1::Volume volume, Decode<v1::Volume>(record));
  const Transition transition = record.transition();
  record.clear_transition();
  if (transition.remove()) {
    *after = std::make_shared<v1::Volume>(std::move(volume));
    return Settled::kRemoved;
  }
  auto target = static_cast<v1::Volume::State>(transition.target_state());
  // A resize ends in whichever of AVAILABLE/ATTACHED the volume is in now.
  if (target == v1::Volume::AVAILABLE && volume.attached_to_size() > 0) {
    target = v1::Volume::ATTACHED;
  }
  volume.set_state(target);
  volume.set_provider_state(VolumeProviderState(target));
  SaveVersion(volume, record, due);
  *after = std::make_shared<v1::Volume>(std::move(volume));
  return Settled::kUpdated;
}

absl::StatusOr<Settled> SettleUnit(Record& record, absl::Time due,
                                   std::shared_ptr<google::protobuf::Message>* after) {
  ASSIGN_OR_RETURN(v1::Unit unit, Decode<v1::Unit>(record));
  const Transition transition = record.transition();
  record.clear_transition();
  if (transition.remove()) {
    *after = std::make_shared<v1::Unit>(std::move(unit));
    return Settled::kRemoved;
  }
  auto target = static_cast<v1::Unit::State>(transition.target_state());
  unit.set_current_state(target);
  // fleet unschedules a unit that goes inactive.
  if (target == v1::Unit::INACTIVE) unit.clear_machine();
  SaveVersion(unit, record, due);
  *after = std::make_shared<v1::Unit>(std::move(unit));
  return Settled::kUpdated;
}

absl::StatusOr<Settled> SettleScalingGroup(Record& record, absl::Time due,
                                           std::shared_ptr<google::protobuf::Message>* after) {
  ASSIGN_OR_RETURN(v1::ScalingGroup group, Decode<v1::ScalingGroup>(record));
  const Transition transition = record.transition();
  record.clear_transition();
  if (transition.remove()) {
    group.clear_instances();
    *after = std::make_shared<v1::ScalingGroup>(std::move(group));
    return Settled::kRemoved;
  }
  google::protobuf::RepeatedPtrField<v1::ScalingGroupInstance> kept;
  for (v1::ScalingGroupInstance& instance : *group.mutable_instances()) {
    if (instance.lifecycle_state() == "Terminating") continue;
    instance.set_lifecycle_state("InService");
    instance.set_health(v1::ScalingGroupInstance::HEALTHY);
    *kept.Add() = std::move(instance);
  }
  group.mutable_instances()->Swap(&kept);
  group.set_state(static_cast<v1::ScalingGroup::State>(transition.target_state()));
  SaveVersion(group, record, due);
  *after = std::make_shared<v1::ScalingGroup>(std::move(group));
  return Settled::kUpdated;
}

}  // namespace

// ---- Records -----------------------------------------------------------------

absl::StatusOr<Record> DecodeRecord(absl::string_view bytes) {
  Record record;
  if (!record.ParseFromString(std::string(bytes))) {
    return absl::DataLossError("sandbox: a stored record does not decode");
  }
  return record;
}

void SetTime(absl::Time time, google::protobuf::Timestamp* out) {
  int64_t micros = absl::ToUnixMicros(time);
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rest * 1000));
}

void SaveVersion(v1::Instance& resource, Record& record, absl::Time when) {
  BumpGeneration(record, when);
  if (!resource.has_create_time()) SetTime(when, resource.mutable_create_time());
  SetTime(when, resource.mutable_update_time());
  resource.set_etag(Etag(resource.name(), record));
  record.set_resource(resource.SerializeAsString());
}

void SaveVersion(v1::Volume& resource, Record& record, absl::Time when) {
  BumpGeneration(record, when);
  if (!resource.has_create_time()) SetTime(when, resource.mutable_create_time());
  resource.set_etag(Etag(resource.name(), record));
  record.set_resource(resource.SerializeAsString());
}

void SaveVersion(v1::InstanceMetadata& resource, Record& record, absl::Time when) {
  BumpGeneration(record, when);
  resource.set_etag(Etag(resource.name(), record));
  record.set_resource(resource.SerializeAsString());
}

void SaveVersion(google::protobuf::Message& resource, Record& record, absl::Time when) {
  BumpGeneration(record, when);
  record.set_resource(resource.SerializeAsString());
}

void SetTransition(Record& record, absl::Time now, absl::Duration delay, int target_state,
                   bool remove) {
  Transition* transition = record.mutable_transition();
  transition->set_due_unix_micros(absl::ToUnixMicros(now + delay));
  transition->set_target_state(target_state);
  transition->set_remove(remove);
}

absl::StatusOr<Settled> Settle(absl::string_view collection, Record& record, absl::Time now,
                               std::shared_ptr<google::protobuf::Message>* after) {
  if (!record.has_transition() ||
      record.transition().due_unix_micros() > absl::ToUnixMicros(now)) {
    return Settled::kUnchanged;
  }
  // The change is dated when it was due, not when someone noticed, so the
  // lazy view of a read equals what the timer writes later.
  absl::Time due = absl::FromUnixMicros(record.transition().due_unix_micros());
  if (collection == kInstances) return SettleInstance(record, due, after);
  if (collection == kVolumes) return SettleVolume(record, due, after);
  if (collection == kUnits) return SettleUnit(record, due, after);
  if (collection == kScalingGroups) return SettleScalingGroup(record, due, after);
  record.clear_transition();
  return Settled::kUnchanged;
}

std::string InstanceProviderState(v1::Instance::State state) {
  switch (state) {
    case v1::Instance::PROVISIONING:
      return "provisioning";
    case v1::Instance::RUNNING:
      return "running";
    case v1::Instance::STOPPING:
      return "stopping";
    case v1::Instance::STOPPED:
      return "stopped";
    case v1::Instance::REBOOTING:
      return "rebooting";
    case v1::Instance::TERMINATING:
      return "terminating";
    case v1::Instance::TERMINATED:
      return "terminated";
    default:
      return "unknown";
  }
}

std::string VolumeProviderState(v1::Volume::State state) {
  switch (state) {
    case v1::Volume::CREATING:
      return "creating";
    case v1::Volume::AVAILABLE:
      return "available";
    case v1::Volume::ATTACHED:
      return "in-use";
    case v1::Volume::RESIZING:
      return "resizing";
    case v1::Volume::DELETING:
      return "deleting";
    default:
      return "unknown";
  }
}

std::string KindOf(absl::string_view collection) {
  if (collection == kInstances) return "instance";
  if (collection == kVolumes) return "volume";
  if (collection == kFirewalls) return "firewall";
  if (collection == kLaunchTemplates) return "launch template";
  if (collection == kScalingGroups) return "scaling group";
  if (collection == kUnits) return "unit";
  if (collection == kMachines) return "machine";
  if (collection == kImages) return "image";
  if (collection == kMachineTypes) return "machine type";
  if (collection == kLocations) return "location";
  if (collection == kHosts) return "host";
  if (collection == kBillingCodes) return "billing code";
  if (collection == "rules") return "firewall rule";
  return std::string(collection);
}

absl::Status NotFound(absl::string_view collection, absl::string_view name) {
  return WithErrorInfo(absl::NotFoundError(absl::StrCat(KindOf(collection), " ", name,
                                                        " not found")),
                       "RESOURCE_NOT_FOUND", {{"resource", std::string(name)}});
}

absl::Status AlreadyExists(absl::string_view collection, absl::string_view name) {
  return WithErrorInfo(absl::AlreadyExistsError(absl::StrCat(KindOf(collection), " ", name,
                                                             " already exists")),
                       "RESOURCE_ALREADY_EXISTS", {{"resource", std::string(name)}});
}

absl::Status WrongState(absl::string_view name, absl::string_view message) {
  return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(name, ": ", message)),
                       "FAILED_PRECONDITION", {{"resource", std::string(name)}});
}

// ---- Txn ---------------------------------------------------------------------

namespace {

absl::StatusOr<std::optional<Record>> SettleInTxn(Txn& txn, absl::string_view collection,
                                                  absl::string_view id, Record record) {
  std::shared_ptr<google::protobuf::Message> after;
  ASSIGN_OR_RETURN(Settled settled, Settle(collection, record, txn.now(), &after));
  std::string name = ResourceName(txn.account(), collection, id);
  switch (settled) {
    case Settled::kUnchanged:
      return record;
    case Settled::kUpdated:
      RETURN_IF_ERROR(
          txn.view().PutResource(txn.account(), collection, id, record.SerializeAsString()));
      txn.effects().changes.push_back({v1::WatchResponse::UPDATED, name, std::move(after)});
      return record;
    case Settled::kRemoved:
      // Published with its final state (e.g. TERMINATED).
      RETURN_IF_ERROR(txn.Delete(collection, id, std::move(after)));
      return std::nullopt;
  }
  return record;
}

}  // namespace

absl::StatusOr<std::optional<Record>> Txn::Load(absl::string_view collection,
                                                absl::string_view id) {
  absl::StatusOr<std::string> bytes = view_.GetResource(account_, collection, id);
  if (absl::IsNotFound(bytes.status())) return std::nullopt;
  if (!bytes.ok()) return bytes.status();
  ASSIGN_OR_RETURN(Record record, DecodeRecord(*bytes));
  return SettleInTxn(*this, collection, id, std::move(record));
}

absl::StatusOr<std::vector<std::pair<std::string, Record>>> Txn::LoadAll(
    absl::string_view collection) {
  std::vector<std::pair<std::string, Record>> out;
  std::string token;
  do {
    ASSIGN_OR_RETURN(store::ResourcePage page,
                     view_.ListResources(account_, collection, 1000, token));
    for (store::ResourceEntry& entry : page.resources) {
      ASSIGN_OR_RETURN(Record record, DecodeRecord(entry.bytes));
      ASSIGN_OR_RETURN(std::optional<Record> settled,
                       SettleInTxn(*this, collection, entry.id, std::move(record)));
      if (settled.has_value()) out.emplace_back(entry.id, *std::move(settled));
    }
    token = page.next_page_token;
  } while (!token.empty());
  return out;
}

namespace {

// The API message a collection stores, for publishing its changes; nullptr
// for internal collections (the journal).
std::shared_ptr<google::protobuf::Message> NewResource(absl::string_view collection) {
  if (collection == kInstances) return std::make_shared<v1::Instance>();
  if (collection == kVolumes) return std::make_shared<v1::Volume>();
  if (collection == kFirewalls) return std::make_shared<v1::Firewall>();
  if (collection == kLaunchTemplates) return std::make_shared<v1::LaunchTemplate>();
  if (collection == kScalingGroups) return std::make_shared<v1::ScalingGroup>();
  if (collection == kUnits) return std::make_shared<v1::Unit>();
  if (collection == kMetadata) return std::make_shared<v1::InstanceMetadata>();
  return nullptr;
}

std::string ChangeName(absl::string_view account, absl::string_view collection,
                       absl::string_view id) {
  if (collection == kMetadata) {
    return absl::StrCat(ResourceName(account, kInstances, id), "/metadata");
  }
  return ResourceName(account, collection, id);
}

}  // namespace

absl::Status Txn::Put(absl::string_view collection, absl::string_view id, const Record& record) {
  // Every write of a resource is a change a watcher sees, published after
  // the commit: CREATED for a new id, UPDATED otherwise.
  if (std::shared_ptr<google::protobuf::Message> resource = NewResource(collection)) {
    absl::StatusOr<std::string> before = view_.GetResource(account_, collection, id);
    if (!before.ok() && !absl::IsNotFound(before.status())) return before.status();
    if (resource->ParseFromString(record.resource())) {
      effects_.changes.push_back({before.ok() ? v1::WatchResponse::UPDATED
                                              : v1::WatchResponse::CREATED,
                                  ChangeName(account_, collection, id), std::move(resource)});
    }
  }
  RETURN_IF_ERROR(view_.PutResource(account_, collection, id, record.SerializeAsString()));
  if (record.has_transition()) {
    effects_.timers.push_back({std::string(collection), std::string(id),
                               absl::FromUnixMicros(record.transition().due_unix_micros())});
  }
  return absl::OkStatus();
}

absl::Status Txn::Delete(absl::string_view collection, absl::string_view id,
                         std::shared_ptr<google::protobuf::Message> last) {
  if (last != nullptr) {
    effects_.changes.push_back(
        {v1::WatchResponse::DELETED, ChangeName(account_, collection, id), std::move(last)});
  } else if (std::shared_ptr<google::protobuf::Message> resource = NewResource(collection)) {
    absl::StatusOr<std::string> before = view_.GetResource(account_, collection, id);
    if (before.ok()) {
      absl::StatusOr<Record> record = DecodeRecord(*before);
      if (record.ok()) resource->ParseFromString(record->resource());
      effects_.changes.push_back({v1::WatchResponse::DELETED,
                                  ChangeName(account_, collection, id), std::move(resource)});
    }
  }
  RETURN_IF_ERROR(view_.DeleteResource(account_, collection, id).status());
  // An instance's metadata goes with it.
  if (collection == kInstances) {
    RETURN_IF_ERROR(view_.DeleteResource(account_, kMetadata, id).status());
  }
  return absl::OkStatus();
}

// ---- Tokens ------------------------------------------------------------------

std::string MakeToken(absl::string_view collection, absl::string_view id, absl::string_view want) {
  return absl::StrCat(collection, ":", id, ":", want);
}

absl::StatusOr<TokenTarget> ParseToken(absl::string_view token) {
  // Unit ids may contain ':', so the collection ends at the first colon and
  // the wanted condition starts after the last one.
  size_t first = token.find(':');
  size_t last = token.rfind(':');
  if (first == absl::string_view::npos || first == last || first == 0 || last == first + 1 ||
      last + 1 == token.size()) {
    return absl::InvalidArgumentError("not a sandbox poll token");
  }
  return TokenTarget{std::string(token.substr(0, first)),
                     std::string(token.substr(first + 1, last - first - 1)),
                     std::string(token.substr(last + 1))};
}

// ---- SandboxProvider: lifecycle ---------------------------------------------

SandboxProvider::SandboxProvider(const AccountSetup& setup, Options options)
    : account_(setup.account),
      store_(setup.store),
      loop_(setup.loop),
      changes_(setup.changes),
      options_(options),
      catalog_(BuildCatalog(setup.account)),
      alive_(std::make_shared<Alive>()) {
  absl::MutexLock lock(&alive_->mu);
  alive_->self = this;
}

SandboxProvider::~SandboxProvider() {
  // Waits for a running timer callback; later ones find `self` null.
  absl::MutexLock lock(&alive_->mu);
  alive_->self = nullptr;
}

absl::StatusOr<std::unique_ptr<SandboxProvider>> SandboxProvider::Create(
    const AccountSetup& setup, Options options) {
  std::unique_ptr<SandboxProvider> provider(new SandboxProvider(setup, options));
  RETURN_IF_ERROR(provider->PruneJournal());
  RETURN_IF_ERROR(provider->ScheduleStoredTransitions());
  return provider;
}

const ProviderInfo& SandboxProvider::Info() const {
  static const auto* const kInfo = new ProviderInfo(SandboxProviderInfo());
  return *kInfo;
}

absl::Status SandboxProvider::CheckCall(const CallContext& ctx) const {
  if (ctx.account != account_) {
    return absl::InternalError(absl::StrCat("a call for account \"", ctx.account,
                                            "\" reached the sandbox of account \"", account_,
                                            "\""));
  }
  return absl::OkStatus();
}

std::string SandboxProvider::Name(absl::string_view collection, absl::string_view id) const {
  return ResourceName(account_, collection, id);
}

absl::Status SandboxProvider::PruneJournal() {
  absl::Time cutoff = absl::Now() - kJournalRetention;
  std::string token;
  std::vector<std::string> stale;
  do {
    ASSIGN_OR_RETURN(store::ResourcePage page,
                     store_->ListResources(account_, kJournal, 1000, token));
    for (const store::ResourceEntry& entry : page.resources) {
      ::cloudplane::sandbox::JournalEntry journal;
      if (!journal.ParseFromString(entry.bytes) ||
          absl::FromUnixMicros(journal.time_unix_micros()) < cutoff) {
        stale.push_back(entry.id);
      }
    }
    token = page.next_page_token;
  } while (!token.empty());
  for (const std::string& id : stale) {
    RETURN_IF_ERROR(store_->DeleteResource(account_, kJournal, id).status());
  }
  return absl::OkStatus();
}

absl::Status SandboxProvider::ScheduleStoredTransitions() {
  for (absl::string_view collection : kTimedCollections) {
    std::string token;
    do {
      ASSIGN_OR_RETURN(store::ResourcePage page,
                       store_->ListResources(account_, collection, 1000, token));
      for (const store::ResourceEntry& entry : page.resources) {
        ASSIGN_OR_RETURN(Record record, DecodeRecord(entry.bytes));
        if (record.has_transition()) {
          ScheduleTimer(std::string(collection), entry.id,
                        absl::FromUnixMicros(record.transition().due_unix_micros()));
        }
      }
      token = page.next_page_token;
    } while (!token.empty());
  }
  return absl::OkStatus();
}

// ---- Transactions, effects and timers -----------------------------------------

absl::Status SandboxProvider::RunTxn(absl::FunctionRef<absl::Status(Txn&)> fn) {
  Effects effects;
  absl::Status status = store_->RunInTransaction([&](store::TxnView& view) -> absl::Status {
    Txn txn(view, account_, absl::Now());
    RETURN_IF_ERROR(fn(txn));
    effects = std::move(txn.effects());
    return absl::OkStatus();
  });
  // Publishing waits for the commit: a rolled-back change never reaches a
  // watcher, and the hub writes its change log outside our transaction.
  if (status.ok()) ApplyEffects(std::move(effects));
  return status;
}

void SandboxProvider::ApplyEffects(Effects effects) {
  if (changes_ != nullptr) {
    for (const Effects::Change& change : effects.changes) {
      changes_->Publish(account_, change.type, change.name, *change.resource, WatchSource::kLocal);
    }
  }
  for (const Effects::Timer& timer : effects.timers) {
    ScheduleTimer(timer.collection, timer.id, timer.due);
  }
}

void SandboxProvider::ScheduleTimer(const std::string& collection, const std::string& id,
                                    absl::Time due) {
  if (loop_ == nullptr) return;  // Reads still settle lazily.
  loop_->RunAt(due, [alive = alive_, collection, id] {
    absl::MutexLock lock(&alive->mu);
    if (alive->self != nullptr) alive->self->OnTimer(collection, id);
  });
}

void SandboxProvider::OnTimer(const std::string& collection, const std::string& id) {
  absl::Status status = RunTxn([&](Txn& txn) { return txn.Load(collection, id).status(); });
  if (!status.ok()) {
    std::cerr << "sandbox " << account_ << ": applying the transition of " << collection << "/"
              << id << " failed (" << status << "); retrying\n";
    ScheduleTimer(collection, id, absl::Now() + kTimerRetry);
  }
}

void SandboxProvider::Mutate(const CallContext& ctx,
                             absl::FunctionRef<absl::StatusOr<std::string>(Txn&)> fn,
                             Callback<MutationProgress> done) {
  if (absl::Status status = CheckCall(ctx); !status.ok()) {
    std::move(done)(status);
    return;
  }
  std::string token;
  absl::Status status = RunTxn([&](Txn& txn) -> absl::Status {
    if (!ctx.operation.empty()) {
      absl::StatusOr<std::string> journaled =
          txn.view().GetResource(account_, kJournal, ctx.operation);
      if (journaled.ok()) {
        // A re-drive of work already done: report it, change nothing.
        ::cloudplane::sandbox::JournalEntry entry;
        if (!entry.ParseFromString(*journaled)) {
          return absl::DataLossError("sandbox: a journal entry does not decode");
        }
        token = entry.poll_token();
        return absl::OkStatus();
      }
      if (!absl::IsNotFound(journaled.status())) return journaled.status();
    }
    ASSIGN_OR_RETURN(token, fn(txn));
    if (!ctx.operation.empty()) {
      ::cloudplane::sandbox::JournalEntry entry;
      entry.set_poll_token(token);
      entry.set_time_unix_micros(absl::ToUnixMicros(txn.now()));
      RETURN_IF_ERROR(txn.view().PutResource(account_, kJournal, ctx.operation,
                                             entry.SerializeAsString()));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) {
    std::move(done)(status);
    return;
  }
  std::move(done)(Evaluate(token));
}

// ---- Reads -----------------------------------------------------------------------

absl::StatusOr<std::optional<Record>> SandboxProvider::ReadSettled(absl::string_view collection,
                                                                   absl::string_view id) const {
  absl::StatusOr<std::string> bytes = store_->GetResource(account_, collection, id);
  if (absl::IsNotFound(bytes.status())) return std::nullopt;
  if (!bytes.ok()) return bytes.status();
  ASSIGN_OR_RETURN(Record record, DecodeRecord(*bytes));
  std::shared_ptr<google::protobuf::Message> after;
  ASSIGN_OR_RETURN(Settled settled, Settle(collection, record, absl::Now(), &after));
  if (settled == Settled::kRemoved) return std::nullopt;
  return record;
}

absl::StatusOr<std::vector<Record>> SandboxProvider::ReadAllSettled(
    absl::string_view collection) const {
  std::vector<Record> out;
  absl::Time now = absl::Now();
  std::string token;
  do {
    ASSIGN_OR_RETURN(store::ResourcePage page,
                     store_->ListResources(account_, collection, 1000, token));
    for (const store::ResourceEntry& entry : page.resources) {
      ASSIGN_OR_RETURN(Record record, DecodeRecord(entry.bytes));
      std::shared_ptr<google::protobuf::Message> after;
      ASSIGN_OR_RETURN(Settled settled, Settle(collection, record, now, &after));
      if (settled != Settled::kRemoved) out.push_back(std::move(record));
    }
    token = page.next_page_token;
  } while (!token.empty());
  return out;
}

absl::StatusOr<v1::InstanceMetadata> SandboxProvider::ReadMetadata(
    absl::string_view instance_id) const {
  ASSIGN_OR_RETURN(std::optional<Record> instance, ReadSettled(kInstances, instance_id));
  if (!instance.has_value()) return NotFound(kInstances, Name(kInstances, instance_id));
  ASSIGN_OR_RETURN(std::optional<Record> record, ReadSettled(kMetadata, instance_id));
  if (record.has_value()) return Decode<v1::InstanceMetadata>(*record);
  // Never written: empty items, with an etag tied to the instance's life.
  v1::InstanceMetadata metadata;
  metadata.set_name(MetadataName(account_, instance_id));
  Record fresh;
  fresh.set_created_unix_micros(instance->created_unix_micros());
  metadata.set_etag(Etag(metadata.name(), fresh));
  return metadata;
}

// ---- Ids and references ----------------------------------------------------------

absl::StatusOr<std::string> SandboxProvider::NewId(Txn& txn, absl::string_view collection,
                                                   absl::string_view prefix) const {
  absl::BitGen random;
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string bytes(6, '\0');
    for (char& c : bytes) c = static_cast<char>(absl::Uniform<int>(random, 0, 256));
    std::string id = absl::StrCat(prefix, "-", absl::BytesToHexString(bytes));
    ASSIGN_OR_RETURN(std::optional<Record> existing, txn.Load(collection, id));
    if (!existing.has_value()) return id;
  }
  return absl::InternalError("sandbox: no free id found");
}

absl::StatusOr<std::string> SandboxProvider::ChooseId(Txn& txn, absl::string_view collection,
                                                      absl::string_view requested,
                                                      absl::string_view field,
                                                      absl::string_view prefix) const {
  if (requested.empty()) return NewId(txn, collection, prefix);
  if (!IsValidId(requested)) {
    return InvalidField(field, "must match [a-z]([-a-z0-9]{0,61}[a-z0-9])?");
  }
  ASSIGN_OR_RETURN(std::optional<Record> existing, txn.Load(collection, requested));
  if (existing.has_value()) return AlreadyExists(collection, Name(collection, requested));
  return std::string(requested);
}

absl::StatusOr<std::string> SandboxProvider::CheckCatalogRef(absl::string_view name,
                                                             absl::string_view collection,
                                                             absl::string_view field) const {
  ASSIGN_OR_RETURN(std::string id, ParseName(name, account_, collection, field));
  bool found = false;
  if (collection == kImages) found = catalog_.FindImage(id) != nullptr;
  if (collection == kMachineTypes) found = catalog_.FindMachineType(id) != nullptr;
  if (collection == kLocations) found = catalog_.FindLocation(id) != nullptr;
  if (collection == kHosts) found = catalog_.FindHost(id) != nullptr;
  if (collection == kBillingCodes) found = catalog_.FindBillingCode(id) != nullptr;
  if (collection == kMachines) found = catalog_.FindMachine(id) != nullptr;
  if (!found) return NotFound(collection, name);
  return id;
}

absl::StatusOr<std::string> SandboxProvider::CheckStoredRef(Txn& txn, absl::string_view name,
                                                            absl::string_view collection,
                                                            absl::string_view field) const {
  ASSIGN_OR_RETURN(std::string id, ParseName(name, account_, collection, field));
  ASSIGN_OR_RETURN(std::optional<Record> record, txn.Load(collection, id));
  if (!record.has_value()) return NotFound(collection, name);
  return id;
}

// ---- Polling ---------------------------------------------------------------------

namespace {

MutationProgress Done(const google::protobuf::Message& result, const std::string& token) {
  MutationProgress progress;
  progress.done = true;
  progress.result.PackFrom(result);
  progress.poll_token = token;
  return progress;
}

MutationProgress Pending(const std::string& token, std::string detail) {
  MutationProgress progress;
  progress.poll_token = token;
  progress.detail = std::move(detail);
  return progress;
}

absl::Status Conflict(absl::string_view name, absl::string_view message) {
  return WithErrorInfo(absl::AbortedError(absl::StrCat(name, ": ", message)), "CONFLICT",
                       {{"resource", std::string(name)}});
}

}  // namespace

absl::StatusOr<MutationProgress> SandboxProvider::Evaluate(const std::string& token) const {
  ASSIGN_OR_RETURN(TokenTarget target, ParseToken(token));
  const std::string& want = target.want;

  if (target.collection == kMetadata) {
    ASSIGN_OR_RETURN(v1::InstanceMetadata metadata, ReadMetadata(target.id));
    return Done(metadata, token);
  }
  if (target.collection == "rules") {
    // id = "<firewall>/<rule number>"
    size_t slash = target.id.find('/');
    if (slash == std::string::npos) return absl::InvalidArgumentError("not a sandbox poll token");
    std::string firewall_id = target.id.substr(0, slash);
    int64_t number = 0;
    if (!absl::SimpleAtoi(target.id.substr(slash + 1), &number)) {
      return absl::InvalidArgumentError("not a sandbox poll token");
    }
    std::string rule_name = RuleName(account_, firewall_id, number);
    ASSIGN_OR_RETURN(std::optional<Record> record, ReadSettled(kFirewalls, firewall_id));
    const v1::FirewallRule* rule = nullptr;
    v1::Firewall firewall;
    if (record.has_value()) {
      ASSIGN_OR_RETURN(firewall, Decode<v1::Firewall>(*record));
      for (const v1::FirewallRule& r : firewall.rules()) {
        if (r.name() == rule_name) rule = &r;
      }
    }
    if (want == "gone") {
      if (rule == nullptr) return Done(google::protobuf::Empty(), token);
      return Conflict(rule_name, "exists again");
    }
    if (rule == nullptr) return NotFound("rules", rule_name);
    return Done(*rule, token);
  }

  ASSIGN_OR_RETURN(std::optional<Record> record, ReadSettled(target.collection, target.id));
  const std::string name = Name(target.collection, target.id);
  if (want == "gone") {
    if (!record.has_value()) return Done(google::protobuf::Empty(), token);
    if (record->has_transition() && record->transition().remove()) {
      return Pending(token, absl::StrCat("waiting for ", KindOf(target.collection), " ", name,
                                         " to be deleted"));
    }
    return Conflict(name, "was created again before its deletion was reported");
  }
  if (!record.has_value()) {
    return WithErrorInfo(
        absl::NotFoundError(absl::StrCat(KindOf(target.collection), " ", name,
                                         " was deleted before the operation finished")),
        "RESOURCE_NOT_FOUND", {{"resource", name}});
  }

  // The resource, its state and the state its transition leads to.
  std::unique_ptr<google::protobuf::Message> resource;
  const google::protobuf::EnumDescriptor* states = nullptr;
  int state = 0;
  if (target.collection == kInstances) {
    ASSIGN_OR_RETURN(v1::Instance instance, Decode<v1::Instance>(*record));
    state = instance.state();
    states = v1::Instance::State_descriptor();
    resource = std::make_unique<v1::Instance>(std::move(instance));
  } else if (target.collection == kVolumes) {
    ASSIGN_OR_RETURN(v1::Volume volume, Decode<v1::Volume>(*record));
    state = volume.state();
    states = v1::Volume::State_descriptor();
    resource = std::make_unique<v1::Volume>(std::move(volume));
  } else if (target.collection == kUnits) {
    ASSIGN_OR_RETURN(v1::Unit unit, Decode<v1::Unit>(*record));
    state = unit.current_state();
    states = v1::Unit::State_descriptor();
    resource = std::make_unique<v1::Unit>(std::move(unit));
  } else if (target.collection == kScalingGroups) {
    ASSIGN_OR_RETURN(v1::ScalingGroup group, Decode<v1::ScalingGroup>(*record));
    state = group.state();
    states = v1::ScalingGroup::State_descriptor();
    resource = std::make_unique<v1::ScalingGroup>(std::move(group));
  } else if (target.collection == kFirewalls) {
    ASSIGN_OR_RETURN(v1::Firewall firewall, Decode<v1::Firewall>(*record));
    resource = std::make_unique<v1::Firewall>(std::move(firewall));
  } else if (target.collection == kLaunchTemplates) {
    ASSIGN_OR_RETURN(v1::LaunchTemplate templ, Decode<v1::LaunchTemplate>(*record));
    resource = std::make_unique<v1::LaunchTemplate>(std::move(templ));
  } else {
    return absl::InvalidArgumentError("not a sandbox poll token");
  }

  if (want == "current") return Done(*resource, token);
  const bool moving = record->has_transition();
  auto state_name = [&](int value) {
    const google::protobuf::EnumValueDescriptor* v = states->FindValueByNumber(value);
    return v == nullptr ? absl::StrCat(value) : v->name();
  };
  if (want == "settled") {
    if (!moving) return Done(*resource, token);
    return Pending(token, absl::StrCat("waiting for ", name, " (now ", state_name(state), ")"));
  }
  if (absl::StartsWith(want, "size=")) {
    // Scaling groups: done when stable at the size the operation asked for.
    int size = 0;
    if (!absl::SimpleAtoi(want.substr(5), &size) || target.collection != kScalingGroups) {
      return absl::InvalidArgumentError("not a sandbox poll token");
    }
    const auto& group = static_cast<const v1::ScalingGroup&>(*resource);
    if (group.target_size() != size) {
      return Conflict(name, absl::StrCat("was resized to ", group.target_size(),
                                         " by another operation"));
    }
    if (!moving && group.instances_size() == size) return Done(*resource, token);
    if (moving && record->transition().remove()) {
      return Conflict(name, "is being deleted");
    }
    return Pending(token, absl::StrCat("waiting for ", name, " to have ", size,
                                       " healthy instances (now ", group.instances_size(),
                                       ", ", state_name(state), ")"));
  }
  if (states == nullptr) return absl::InvalidArgumentError("not a sandbox poll token");
  const google::protobuf::EnumValueDescriptor* wanted = states->FindValueByName(want);
  if (wanted == nullptr) return absl::InvalidArgumentError("not a sandbox poll token");
  if (!moving && state == wanted->number()) return Done(*resource, token);
  if (moving && !record->transition().remove() &&
      record->transition().target_state() == wanted->number()) {
    return Pending(token, absl::StrCat("waiting for ", KindOf(target.collection), " ", name,
                                       " to reach ", want, " (now ", state_name(state), ")"));
  }
  // Another operation took the resource elsewhere meanwhile.
  return Conflict(name, absl::StrCat("is ", state_name(state),
                                     moving && record->transition().remove()
                                         ? " and being deleted"
                                         : "",
                                     "; it will not reach ", want));
}

void SandboxProvider::PollOperation(const CallContext& ctx, const std::string& poll_token,
                                    Callback<MutationProgress> done) {
  if (absl::Status status = CheckCall(ctx); !status.ok()) {
    std::move(done)(status);
    return;
  }
  std::move(done)(Evaluate(poll_token));
}

// ---- Catalog reads ---------------------------------------------------------------

namespace {

template <typename T>
absl::StatusOr<T> FindInCatalog(const std::vector<T>& items, absl::string_view collection,
                                absl::string_view account, absl::string_view name) {
  ASSIGN_OR_RETURN(std::string id, ParseName(name, account, collection, "name"));
  for (const T& item : items) {
    if (LastSegment(item.name()) == id) return item;
  }
  return NotFound(collection, name);
}

}  // namespace

#define CP_SANDBOX_CATALOG(Method, ListReq, ListResp, Field, GetMethod, GetReq, Type, Coll) \
  void SandboxProvider::Method(const CallContext& ctx, const v1::ListReq& request,          \
                               Callback<v1::ListResp> done) {                              \
    std::move(done)([&]() -> absl::StatusOr<v1::ListResp> {                                \
      RETURN_IF_ERROR(CheckCall(ctx));                                                     \
      RETURN_IF_ERROR(CheckParent(request.parent(), account_));                            \
      v1::ListResp response;                                                               \
      RETURN_IF_ERROR(PageInto(catalog_.Field, ByName<v1::Type>, request.page_size(),      \
                               request.page_token(), response.mutable_##Field(),           \
                               response.mutable_next_page_token()));                       \
      return response;                                                                     \
    }());                                                                                  \
  }                                                                                        \
  void SandboxProvider::GetMethod(const CallContext& ctx, const v1::GetReq& request,        \
                                  Callback<v1::Type> done) {                               \
    std::move(done)([&]() -> absl::StatusOr<v1::Type> {                                    \
      RETURN_IF_ERROR(CheckCall(ctx));                                                     \
      return FindInCatalog(catalog_.Field, Coll, account_, request.name());                \
    }());                                                                                  \
  }

CP_SANDBOX_CATALOG(ListImages, ListImagesRequest, ListImagesResponse, images, GetImage,
                   GetImageRequest, Image, kImages)
CP_SANDBOX_CATALOG(ListMachineTypes, ListMachineTypesRequest, ListMachineTypesResponse,
                   machine_types, GetMachineType, GetMachineTypeRequest, MachineType,
                   kMachineTypes)
CP_SANDBOX_CATALOG(ListLocations, ListLocationsRequest, ListLocationsResponse, locations,
                   GetLocation, GetLocationRequest, Location, kLocations)
CP_SANDBOX_CATALOG(ListHosts, ListHostsRequest, ListHostsResponse, hosts, GetHost,
                   GetHostRequest, Host, kHosts)
CP_SANDBOX_CATALOG(ListBillingCodes, ListBillingCodesRequest, ListBillingCodesResponse,
                   billing_codes, GetBillingCode, GetBillingCodeRequest, BillingCode,
                   kBillingCodes)
CP_SANDBOX_CATALOG(ListMachines, ListMachinesRequest, ListMachinesResponse, machines,
                   GetMachine, GetMachineRequest, Machine, kMachines)

#undef CP_SANDBOX_CATALOG

}  // namespace cloudplane::adapters::sandbox

namespace cloudplane::adapters::sandbox {

// ---- Request checks shared by the services -------------------------------------

absl::StatusOr<std::vector<std::string>> CheckUpdateMask(
    const google::protobuf::FieldMask& mask, const std::vector<absl::string_view>& mutable_paths,
    const std::vector<absl::string_view>& map_paths,
    const std::vector<absl::string_view>& immutable_paths) {
  if (mask.paths().empty()) {
    return InvalidField("update_mask", "required: name the fields to change");
  }
  std::vector<std::string> out;
  for (const std::string& path : mask.paths()) {
    bool ok = false;
    for (absl::string_view p : mutable_paths) ok = ok || path == p;
    for (absl::string_view p : map_paths) {
      ok = ok || (absl::StartsWith(path, absl::StrCat(p, ".")) && path.size() > p.size() + 1);
    }
    if (!ok) {
      for (absl::string_view p : immutable_paths) {
        if (path == p) return InvalidField("update_mask", absl::StrCat(path, " is immutable"));
      }
      return InvalidField("update_mask",
                          absl::StrCat(path, " is not a field that can be updated"));
    }
    out.push_back(path);
  }
  return out;
}

absl::Status CheckNoProviderOptions(const google::protobuf::Struct& options,
                                    absl::string_view field) {
  for (const auto& [key, value] : options.fields()) {
    return InvalidField(absl::StrCat(field, ".", key),
                        "unknown provider option; the sandbox reads none");
  }
  return absl::OkStatus();
}

absl::Status CheckLabels(const google::protobuf::Map<std::string, std::string>& labels,
                         absl::string_view field) {
  for (const auto& [key, value] : labels) {
    if (key.empty()) return InvalidField(field, "label keys must not be empty");
  }
  return absl::OkStatus();
}

}  // namespace cloudplane::adapters::sandbox
