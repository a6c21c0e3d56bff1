// The sandbox's records: settling due transitions, versions and etags, the
// common errors, and the store transaction (Txn) the mutations run in.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "adapters/sandbox/sha1.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

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

absl::StatusOr<Settled> SettleNetwork(Record& record, absl::Time due,
                                      std::shared_ptr<google::protobuf::Message>* after) {
  ASSIGN_OR_RETURN(v1::Network network, Decode<v1::Network>(record));
  const Transition transition = record.transition();
  record.clear_transition();
  if (transition.remove()) {
    *after = std::make_shared<v1::Network>(std::move(network));
    return Settled::kRemoved;
  }
  auto target = static_cast<v1::Network::State>(transition.target_state());
  network.set_state(target);
  network.set_provider_state(NetworkProviderState(target));
  SaveVersion(network, record, due);
  *after = std::make_shared<v1::Network>(std::move(network));
  return Settled::kUpdated;
}

}  // namespace

// ---- Records -----------------------------------------------------------------

std::string Etag(absl::string_view name, const Record& record) {
  return Sha1Hex(absl::StrCat(name, "|", record.created_unix_micros(), "|", record.generation()))
      .substr(0, 16);
}

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
  if (collection == kNetworks) return SettleNetwork(record, due, after);
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

std::string NetworkProviderState(v1::Network::State state) {
  switch (state) {
    case v1::Network::PENDING:
      return "pending";
    case v1::Network::READY:
      return "ready";
    case v1::Network::DELETING:
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
  if (collection == kNetworks) return "network";
  if (collection == kAddresses) return "address";
  if (collection == kKeyPairs) return "key pair";
  if (collection == "rules") return "firewall rule";
  return std::string(collection);
}

absl::Status NotFound(absl::string_view collection, absl::string_view name) {
  return WithErrorInfo(absl::NotFoundError(absl::StrCat(KindOf(collection), " ", name,
                                                        " not found")),
                       reasons::kResourceNotFound, {{"resource", std::string(name)}});
}

absl::Status AlreadyExists(absl::string_view collection, absl::string_view name) {
  return WithErrorInfo(absl::AlreadyExistsError(absl::StrCat(KindOf(collection), " ", name,
                                                             " already exists")),
                       reasons::kResourceAlreadyExists, {{"resource", std::string(name)}});
}

absl::Status WrongState(absl::string_view name, absl::string_view message) {
  return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(name, ": ", message)),
                       reasons::kWrongState, {{"resource", std::string(name)}});
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

std::shared_ptr<google::protobuf::Message> NewResource(absl::string_view collection) {
  if (collection == kInstances) return std::make_shared<v1::Instance>();
  if (collection == kVolumes) return std::make_shared<v1::Volume>();
  if (collection == kFirewalls) return std::make_shared<v1::Firewall>();
  if (collection == kLaunchTemplates) return std::make_shared<v1::LaunchTemplate>();
  if (collection == kScalingGroups) return std::make_shared<v1::ScalingGroup>();
  if (collection == kUnits) return std::make_shared<v1::Unit>();
  if (collection == kMetadata) return std::make_shared<v1::InstanceMetadata>();
  if (collection == kNetworks) return std::make_shared<v1::Network>();
  if (collection == kAddresses) return std::make_shared<v1::Address>();
  if (collection == kKeyPairs) return std::make_shared<v1::KeyPair>();
  return nullptr;
}

namespace {

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

}  // namespace cloudplane::adapters::sandbox
