// ComputeService of the sandbox: instances and their metadata. (The catalog
// reads are in sandbox_provider.cc.)
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "adapters/sandbox/sha1.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

constexpr absl::string_view kRunning = "RUNNING";
constexpr absl::string_view kStopped = "STOPPED";

void SetState(v1::Instance& instance, v1::Instance::State state,
              absl::string_view provider_state = "") {
  instance.set_state(state);
  instance.set_provider_state(provider_state.empty() ? InstanceProviderState(state)
                                                     : std::string(provider_state));
}

absl::Status NotRunnable(const v1::Instance& instance, absl::string_view what) {
  return WrongState(instance.name(),
                    absl::StrCat("cannot ", what, " an instance that is ",
                                 v1::Instance::State_Name(instance.state())));
}

bool Heading(const Record& record, v1::Instance::State target) {
  return record.has_transition() && !record.transition().remove() &&
         record.transition().target_state() == target;
}

}  // namespace

absl::StatusOr<std::string> SandboxProvider::ResolveZone(absl::string_view location,
                                                         absl::string_view field) const {
  if (location.empty()) return std::string(kDefaultZone);
  ASSIGN_OR_RETURN(std::string id, CheckCatalogRef(location, kLocations, field));
  const v1::Location* found = catalog_.FindLocation(id);
  if (found->kind() == v1::Location::ZONE) return id;
  // A region places into its first zone, as a cloud's default placement.
  for (const v1::Location& zone : catalog_.locations) {
    if (zone.parent_location() == found->name()) return std::string(LastSegment(zone.name()));
  }
  return InvalidField(field, "the location has no zone to place resources in");
}

absl::Status SandboxProvider::ApplyInstanceSize(const v1::Instance& in, bool type_given,
                                                bool size_given, absl::string_view prefix,
                                                v1::Instance& out) const {
  if (in.cpu_count() < 0) {
    return InvalidField(absl::StrCat(prefix, "cpu_count"), "must not be negative");
  }
  if (in.memory_bytes() < 0) {
    return InvalidField(absl::StrCat(prefix, "memory_bytes"), "must not be negative");
  }
  if (type_given && !in.machine_type().empty()) {
    ASSIGN_OR_RETURN(std::string type_id, CheckCatalogRef(in.machine_type(), kMachineTypes,
                                                          absl::StrCat(prefix, "machine_type")));
    const v1::MachineType* type = catalog_.FindMachineType(type_id);
    if (size_given && in.cpu_count() != 0 && in.cpu_count() != type->cpu_count()) {
      return InvalidField(absl::StrCat(prefix, "cpu_count"),
                          absl::StrCat("conflicts with machine type ", type_id));
    }
    if (size_given && in.memory_bytes() != 0 && in.memory_bytes() != type->memory_bytes()) {
      return InvalidField(absl::StrCat(prefix, "memory_bytes"),
                          absl::StrCat("conflicts with machine type ", type_id));
    }
    out.set_machine_type(type->name());
    out.set_cpu_count(type->cpu_count());
    out.set_memory_bytes(type->memory_bytes());
    return absl::OkStatus();
  }
  if (!size_given || (in.cpu_count() == 0 && in.memory_bytes() == 0)) {
    if (type_given) {
      return InvalidField(absl::StrCat(prefix, "machine_type"),
                          "required unless cpu_count and memory_bytes are given");
    }
    const v1::MachineType* type = catalog_.FindMachineType(kDefaultMachineType);
    out.set_machine_type(type->name());
    out.set_cpu_count(type->cpu_count());
    out.set_memory_bytes(type->memory_bytes());
    return absl::OkStatus();
  }
  // A custom size, as CloudSigma or OpenNebula allow.
  if (in.cpu_count() == 0) {
    return InvalidField(absl::StrCat(prefix, "cpu_count"),
                        "required with memory_bytes when no machine_type is given");
  }
  if (in.memory_bytes() == 0) {
    return InvalidField(absl::StrCat(prefix, "memory_bytes"),
                        "required with cpu_count when no machine_type is given");
  }
  out.clear_machine_type();
  out.set_cpu_count(in.cpu_count());
  out.set_memory_bytes(in.memory_bytes());
  return absl::OkStatus();
}

void SandboxProvider::ListInstances(const CallContext& ctx,
                                    const v1::ListInstancesRequest& request,
                                    Callback<v1::ListInstancesResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListInstancesResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListInstancesResponse response;
    RETURN_IF_ERROR(ListPage(kInstances, request.page_size(), request.page_token(),
                             response.mutable_instances(), response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetInstance(const CallContext& ctx, const v1::GetInstanceRequest& request,
                                  Callback<v1::Instance> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::Instance> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kInstances, "name"));
    return GetTyped<v1::Instance>(kInstances, id);
  }());
}

void SandboxProvider::CreateInstance(const CallContext& ctx,
                                     const v1::CreateInstanceRequest& request,
                                     Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        if (!request.has_instance()) return InvalidField("instance", "required");
        const v1::Instance& in = request.instance();
        v1::Instance instance;
        instance.set_display_name(in.display_name());
        if (in.image().empty()) return InvalidField("instance.image", "required");
        ASSIGN_OR_RETURN(std::string image_id,
                         CheckCatalogRef(in.image(), kImages, "instance.image"));
        instance.set_image(Name(kImages, image_id));
        RETURN_IF_ERROR(ApplyInstanceSize(in, /*type_given=*/!in.machine_type().empty(),
                                          /*size_given=*/true, "instance.", instance));
        if (in.cpu_mhz() < 0) return InvalidField("instance.cpu_mhz", "must not be negative");
        instance.set_cpu_mhz(in.cpu_mhz());
        ASSIGN_OR_RETURN(std::string zone, ResolveZone(in.location(), "instance.location"));
        instance.set_location(Name(kLocations, zone));
        for (int i = 0; i < in.firewalls_size(); ++i) {
          std::string field = absl::StrCat("instance.firewalls[", i, "]");
          ASSIGN_OR_RETURN(std::string fw, CheckStoredRef(txn, in.firewalls(i), kFirewalls, field));
          if (std::find(instance.firewalls().begin(), instance.firewalls().end(),
                        Name(kFirewalls, fw)) != instance.firewalls().end()) {
            return InvalidField(field, "listed twice");
          }
          instance.add_firewalls(Name(kFirewalls, fw));
        }
        if (!in.billing_code().empty()) {
          ASSIGN_OR_RETURN(std::string code, CheckCatalogRef(in.billing_code(), kBillingCodes,
                                                             "instance.billing_code"));
          instance.set_billing_code(Name(kBillingCodes, code));
        }
        RETURN_IF_ERROR(CheckLabels(in.labels(), "instance.labels"));
        *instance.mutable_labels() = in.labels();
        RETURN_IF_ERROR(CheckNoProviderOptions(in.provider_options(), "instance.provider_options"));
        // key_name is kept in the record (INPUT_ONLY: never shown).
        std::string key_name;
        if (!in.key_name().empty()) {
          ASSIGN_OR_RETURN(key_name, CheckKeyName(txn, in.key_name()));
        }
        // user_data: the sandbox has no guest to hand it to; what it keeps
        // (and shows, so a caller can check what was delivered) is its
        // SHA-256 in provider_details, never the data, which may hold
        // secrets (16 KiB at most, as EC2 allows).
        if (!in.user_data().empty()) {
          if (in.user_data().size() > 16384) {
            return InvalidField("instance.user_data", "must be at most 16384 bytes");
          }
          (*instance.mutable_provider_details()->mutable_fields())["userDataSha256"]
              .set_string_value(absl::BytesToHexString(Sha256(in.user_data())));
        }

        ASSIGN_OR_RETURN(std::string id,
                         ChooseId(txn, kInstances, request.instance_id(), "instance_id", "i"));
        instance.set_name(Name(kInstances, id));
        // Placement and address derive from the id, so they are stable.
        std::string digest = Sha1Hex(id);
        std::vector<const v1::Host*> hosts;
        for (const v1::Host& host : catalog_.hosts) {
          if (host.location() == instance.location()) hosts.push_back(&host);
        }
        unsigned int hash = 0;
        absl::SimpleHexAtoi(digest.substr(0, 6), &hash);
        if (!hosts.empty()) instance.set_host(hosts[hash % hosts.size()]->name());
        // Interfaces "0", "1", ... (sandbox_networks.cc); without any, the
        // sandbox's default address.
        Record record;
        record.set_key_name(key_name);
        for (int i = 0; i < in.network_interfaces_size(); ++i) {
          ASSIGN_OR_RETURN(v1::NetworkInterface nic,
                           PlugInterface(txn, in.network_interfaces(i),
                                         absl::StrCat("instance.network_interfaces[", i, "]"),
                                         instance, absl::StrCat(i)));
          instance.add_ip_addresses(nic.address());
          *instance.add_network_interfaces() = std::move(nic);
        }
        record.set_next_child_id(in.network_interfaces_size());
        if (in.network_interfaces().empty()) {
          instance.add_ip_addresses(absl::StrCat("10.", zone == kDefaultZone ? 0 : 1, ".",
                                                 (hash >> 8) % 256, ".", hash % 250 + 2));
        }

        const bool start = !request.has_start() || request.start();
        SetState(instance, v1::Instance::PROVISIONING);
        SaveVersion(instance, record, txn.now());
        SetTransition(record, txn.now(), options_.transition,
                      start ? v1::Instance::RUNNING : v1::Instance::STOPPED);
        RETURN_IF_ERROR(txn.Put(kInstances, id, record));
        return StateToken(kInstances, id, start ? kRunning : kStopped);
      },
      std::move(done));
}

void SandboxProvider::UpdateInstance(const CallContext& ctx,
                                     const v1::UpdateInstanceRequest& request,
                                     Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        const v1::Instance& in = request.instance();
        ASSIGN_OR_RETURN(std::string id,
                         ParseName(in.name(), account_, kInstances, "instance.name"));
        ASSIGN_OR_RETURN(std::vector<std::string> paths,
                         CheckUpdateMask(request.update_mask(),
                                         {"display_name", "labels", "firewalls", "billing_code",
                                          "machine_type", "cpu_count", "memory_bytes", "cpu_mhz"},
                                         {"labels"}, {"image", "location"}));
        ASSIGN_OR_RETURN(Loaded<v1::Instance> loaded,
                         LoadExisting<v1::Instance>(txn, kInstances, id));
        v1::Instance& instance = loaded.resource;
        if (instance.state() == v1::Instance::TERMINATING) {
          return NotRunnable(instance, "update");
        }
        const v1::Instance before = instance;
        bool type_given = false;
        bool size_given = false;
        for (const std::string& path : paths) {
          if (path == "display_name") {
            instance.set_display_name(in.display_name());
          } else if (path == "labels") {
            RETURN_IF_ERROR(CheckLabels(in.labels(), "instance.labels"));
            *instance.mutable_labels() = in.labels();
          } else if (absl::StartsWith(path, "labels.")) {
            std::string key = path.substr(7);
            auto it = in.labels().find(key);
            if (it == in.labels().end()) {
              instance.mutable_labels()->erase(key);
            } else {
              (*instance.mutable_labels())[key] = it->second;
            }
          } else if (path == "firewalls") {
            instance.clear_firewalls();
            for (int i = 0; i < in.firewalls_size(); ++i) {
              std::string field = absl::StrCat("instance.firewalls[", i, "]");
              ASSIGN_OR_RETURN(std::string fw,
                               CheckStoredRef(txn, in.firewalls(i), kFirewalls, field));
              if (std::find(instance.firewalls().begin(), instance.firewalls().end(),
                            Name(kFirewalls, fw)) != instance.firewalls().end()) {
                return InvalidField(field, "listed twice");
              }
              instance.add_firewalls(Name(kFirewalls, fw));
            }
          } else if (path == "billing_code") {
            instance.clear_billing_code();
            if (!in.billing_code().empty()) {
              ASSIGN_OR_RETURN(std::string code, CheckCatalogRef(in.billing_code(), kBillingCodes,
                                                                 "instance.billing_code"));
              instance.set_billing_code(Name(kBillingCodes, code));
            }
          } else if (path == "machine_type") {
            type_given = true;
          } else if (path == "cpu_count" || path == "memory_bytes") {
            size_given = true;
          } else if (path == "cpu_mhz") {
            if (in.cpu_mhz() < 0) return InvalidField("instance.cpu_mhz", "must not be negative");
            instance.set_cpu_mhz(in.cpu_mhz());
          }
        }
        if (type_given || size_given) {
          // As on EC2, an instance is resized only while it is stopped.
          if (instance.state() != v1::Instance::STOPPED || loaded.record.has_transition()) {
            return WrongState(instance.name(),
                              absl::StrCat("resize needs a STOPPED instance, it is ",
                                           v1::Instance::State_Name(instance.state())));
          }
          v1::Instance sizing = in;
          if (!type_given) sizing.clear_machine_type();
          if (!size_given) {
            sizing.clear_cpu_count();
            sizing.clear_memory_bytes();
          } else {
            // A partial size keeps the other half of the current size.
            bool has_cpu = std::find(paths.begin(), paths.end(), "cpu_count") != paths.end();
            bool has_mem = std::find(paths.begin(), paths.end(), "memory_bytes") != paths.end();
            if (!has_cpu) sizing.set_cpu_count(instance.cpu_count());
            if (!has_mem) sizing.set_memory_bytes(instance.memory_bytes());
          }
          RETURN_IF_ERROR(ApplyInstanceSize(sizing, type_given, size_given, "instance.", instance));
        }
        if (instance.SerializeAsString() != before.SerializeAsString()) {
          SaveVersion(instance, loaded.record, txn.now());
          RETURN_IF_ERROR(txn.Put(kInstances, id, loaded.record));
        }
        return CurrentToken(kInstances, id);
      },
      std::move(done));
}

void SandboxProvider::DeleteInstance(const CallContext& ctx,
                                     const v1::DeleteInstanceRequest& request,
                                     Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kInstances, "name"));
        ASSIGN_OR_RETURN(std::optional<Loaded<v1::Instance>> loaded,
                         LoadIfExists<v1::Instance>(txn, kInstances, id));
        if (!loaded.has_value()) {
          if (request.allow_missing()) return GoneToken(kInstances, id);
          return NotFound(kInstances, request.name());
        }
        v1::Instance& instance = loaded->resource;
        if (instance.state() == v1::Instance::TERMINATING) return GoneToken(kInstances, id);
        // Volumes are released when termination starts (EC2 detaches
        // non-root volumes on terminate), keeping both sides consistent.
        for (const v1::AttachedVolume& attached : instance.volumes()) {
          std::string volume_id(LastSegment(attached.volume()));
          ASSIGN_OR_RETURN(std::optional<Loaded<v1::Volume>> volume,
                           LoadIfExists<v1::Volume>(txn, kVolumes, volume_id));
          if (!volume.has_value()) continue;
          auto* attached_to = volume->resource.mutable_attached_to();
          attached_to->erase(std::remove(attached_to->begin(), attached_to->end(), instance.name()),
                             attached_to->end());
          if (volume->resource.state() == v1::Volume::ATTACHED && attached_to->empty()) {
            volume->resource.set_state(v1::Volume::AVAILABLE);
            volume->resource.set_provider_state(VolumeProviderState(v1::Volume::AVAILABLE));
          }
          SaveVersion(volume->resource, volume->record, txn.now());
          RETURN_IF_ERROR(txn.Put(kVolumes, volume_id, volume->record));
        }
        instance.clear_volumes();
        // Its addresses are freed likewise (reserved ones stay reserved).
        for (const v1::NetworkInterface& nic : instance.network_interfaces()) {
          RETURN_IF_ERROR(UnplugInterface(txn, nic, instance.name()));
          auto* ips = instance.mutable_ip_addresses();
          ips->erase(std::remove(ips->begin(), ips->end(), nic.address()), ips->end());
        }
        instance.clear_network_interfaces();
        SetState(instance, v1::Instance::TERMINATING);
        SaveVersion(instance, loaded->record, txn.now());
        SetTransition(loaded->record, txn.now(), options_.transition, v1::Instance::TERMINATED,
                      /*remove=*/true);
        RETURN_IF_ERROR(txn.Put(kInstances, id, loaded->record));
        return GoneToken(kInstances, id);
      },
      std::move(done));
}

void SandboxProvider::StartInstance(const CallContext& ctx,
                                    const v1::StartInstanceRequest& request,
                                    Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kInstances, "name"));
        ASSIGN_OR_RETURN(Loaded<v1::Instance> loaded,
                         LoadExisting<v1::Instance>(txn, kInstances, id));
        v1::Instance& instance = loaded.resource;
        PollToken token = StateToken(kInstances, id, kRunning);
        switch (instance.state()) {
          case v1::Instance::RUNNING:
          case v1::Instance::REBOOTING:
            // Already running (or about to be): nothing to do, as EC2's
            // StartInstances on a running instance.
            return token;
          case v1::Instance::PROVISIONING:
            if (Heading(loaded.record, v1::Instance::RUNNING)) return token;
            return NotRunnable(instance, "start (wait for STOPPED)");
          case v1::Instance::STOPPED:
            SetState(instance, v1::Instance::PROVISIONING, "starting");
            SaveVersion(instance, loaded.record, txn.now());
            SetTransition(loaded.record, txn.now(), options_.transition, v1::Instance::RUNNING);
            RETURN_IF_ERROR(txn.Put(kInstances, id, loaded.record));
            return token;
          default:
            return NotRunnable(instance, "start");
        }
      },
      std::move(done));
}

void SandboxProvider::StopInstance(const CallContext& ctx, const v1::StopInstanceRequest& request,
                                   Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kInstances, "name"));
        ASSIGN_OR_RETURN(Loaded<v1::Instance> loaded,
                         LoadExisting<v1::Instance>(txn, kInstances, id));
        v1::Instance& instance = loaded.resource;
        PollToken token = StateToken(kInstances, id, kStopped);
        switch (instance.state()) {
          case v1::Instance::STOPPED:
          case v1::Instance::STOPPING:
            return token;
          case v1::Instance::PROVISIONING:
            if (Heading(loaded.record, v1::Instance::STOPPED)) return token;
            return NotRunnable(instance, "stop (wait for RUNNING)");
          case v1::Instance::RUNNING:
            if (request.force()) {
              // Power off: no shutdown to wait for.
              SetState(instance, v1::Instance::STOPPED);
              SaveVersion(instance, loaded.record, txn.now());
            } else {
              SetState(instance, v1::Instance::STOPPING);
              SaveVersion(instance, loaded.record, txn.now());
              SetTransition(loaded.record, txn.now(), options_.transition, v1::Instance::STOPPED);
            }
            RETURN_IF_ERROR(txn.Put(kInstances, id, loaded.record));
            return token;
          default:
            return NotRunnable(instance, "stop");
        }
      },
      std::move(done));
}

std::vector<std::string> SandboxProvider::CancellableMethods() const {
  return {FullMethodName("ComputeService", "CreateInstance"),
          FullMethodName("ComputeService", "StartInstance"),
          FullMethodName("ComputeService", "StopInstance")};
}

void SandboxProvider::CancelMutation(const CallContext& ctx, const std::string& method,
                                     const std::string& poll_token,
                                     Callback<MutationProgress> done) {
  absl::StatusOr<PollToken> token = ReadPollToken(poll_token);
  if (!token.ok()) return std::move(done)(token.status());
  if (token->collection() != kInstances || token->want_case() != PollToken::kState) {
    return std::move(done)(WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(method, ": nothing the sandbox can undo")),
        reasons::kCancelUnsupported, {{"method", method}}));
  }
  const std::string id = token->id();
  const std::string name = Name(kInstances, id);
  CallContext undo = ctx;
  if (!undo.operation.empty()) undo.operation = absl::StrCat(ctx.operation, ":cancel");
  auto say = [](std::string detail, Callback<MutationProgress> done) {
    return [detail = std::move(detail),
            done = std::move(done)](absl::StatusOr<MutationProgress> progress) mutable {
      if (progress.ok()) progress->detail = detail;
      std::move(done)(std::move(progress));
    };
  };
  if (method == FullMethodName("ComputeService", "CreateInstance")) {
    v1::DeleteInstanceRequest request;
    request.set_name(name);
    request.set_allow_missing(true);
    return DeleteInstance(
        undo, request,
        say(absl::StrCat("the create was undone: instance ", name, " is deleted"),
            std::move(done)));
  }
  const bool was_start = method == FullMethodName("ComputeService", "StartInstance");
  if (!was_start && method != FullMethodName("ComputeService", "StopInstance")) {
    return std::move(done)(WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(method, " cannot be cancelled")),
        reasons::kCancelUnsupported, {{"method", method}}));
  }
  // The opposite action, also while the first one is still under way.
  const v1::Instance::State back = was_start ? v1::Instance::STOPPED : v1::Instance::RUNNING;
  Mutate(
      undo,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(Loaded<v1::Instance> loaded,
                         LoadExisting<v1::Instance>(txn, kInstances, id));
        v1::Instance& instance = loaded.resource;
        PollToken wait = StateToken(kInstances, id, v1::Instance::State_Name(back));
        if (instance.state() == back && !loaded.record.has_transition()) return wait;
        if (Heading(loaded.record, back)) return wait;
        const bool on_the_way = Heading(loaded.record, was_start ? v1::Instance::RUNNING
                                                                 : v1::Instance::STOPPED);
        const v1::Instance::State reached =
            was_start ? v1::Instance::RUNNING : v1::Instance::STOPPED;
        if (!on_the_way && instance.state() != reached) {
          return NotRunnable(instance, was_start ? "stop" : "start");
        }
        if (was_start) {
          SetState(instance, v1::Instance::STOPPING);
        } else {
          SetState(instance, v1::Instance::PROVISIONING, "starting");
        }
        SaveVersion(instance, loaded.record, txn.now());
        SetTransition(loaded.record, txn.now(), options_.transition, back);
        RETURN_IF_ERROR(txn.Put(kInstances, id, loaded.record));
        return wait;
      },
      say(absl::StrCat("the ", was_start ? "start" : "stop", " was undone: instance ", name,
                       " is ", was_start ? "stopped" : "started", " again"),
          std::move(done)));
}

void SandboxProvider::RebootInstance(const CallContext& ctx,
                                     const v1::RebootInstanceRequest& request,
                                     Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kInstances, "name"));
        ASSIGN_OR_RETURN(Loaded<v1::Instance> loaded,
                         LoadExisting<v1::Instance>(txn, kInstances, id));
        v1::Instance& instance = loaded.resource;
        PollToken token = StateToken(kInstances, id, kRunning);
        switch (instance.state()) {
          case v1::Instance::REBOOTING:
            return token;
          case v1::Instance::RUNNING:
            SetState(instance, v1::Instance::REBOOTING);
            SaveVersion(instance, loaded.record, txn.now());
            SetTransition(loaded.record, txn.now(), options_.transition, v1::Instance::RUNNING);
            RETURN_IF_ERROR(txn.Put(kInstances, id, loaded.record));
            return token;
          default:
            return NotRunnable(instance, "reboot");
        }
      },
      std::move(done));
}

void SandboxProvider::GetInstanceMetadata(const CallContext& ctx,
                                          const v1::GetInstanceMetadataRequest& request,
                                          Callback<v1::InstanceMetadata> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::InstanceMetadata> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseMetadataName(request.name(), account_, "name"));
    return ReadMetadata(id);
  }());
}

void SandboxProvider::UpdateInstanceMetadata(const CallContext& ctx,
                                             const v1::UpdateInstanceMetadataRequest& request,
                                             Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseMetadataName(request.metadata().name(), account_,
                                                           "metadata.name"));
        for (const auto& [key, value] : request.metadata().items()) {
          if (key.empty()) return InvalidField("metadata.items", "keys must not be empty");
        }
        ASSIGN_OR_RETURN(Loaded<v1::Instance> instance,
                         LoadExisting<v1::Instance>(txn, kInstances, id));
        if (instance.resource.state() == v1::Instance::TERMINATING) {
          return NotRunnable(instance.resource, "change the metadata of");
        }
        ASSIGN_OR_RETURN(std::optional<Loaded<v1::InstanceMetadata>> stored,
                         LoadIfExists<v1::InstanceMetadata>(txn, kMetadata, id));
        Loaded<v1::InstanceMetadata> metadata;
        if (stored.has_value()) {
          metadata = *std::move(stored);
        } else {
          metadata.resource.set_name(MetadataName(account_, id));
          metadata.record.set_created_unix_micros(instance.record.created_unix_micros());
        }
        auto* items = metadata.resource.mutable_items();
        google::protobuf::Map<std::string, std::string> next =
            request.merge() ? *items : google::protobuf::Map<std::string, std::string>();
        for (const auto& [key, value] : request.metadata().items()) next[key] = value;
        bool changed = next.size() != items->size();
        for (const auto& [key, value] : next) {
          auto it = items->find(key);
          changed = changed || it == items->end() || it->second != value;
        }
        if (changed) {
          *items = std::move(next);
          SaveVersion(metadata.resource, metadata.record, txn.now());
          RETURN_IF_ERROR(txn.Put(kMetadata, id, metadata.record));
        }
        return CurrentToken(kMetadata, id);
      },
      std::move(done));
}

}  // namespace cloudplane::adapters::sandbox
