// VolumesService of the sandbox. Attach and detach change the volume and
// the instance in one transaction, so Volume.attached_to and
// Instance.volumes always agree.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

constexpr absl::string_view kAvailable = "AVAILABLE";

void SetState(v1::Volume& volume, v1::Volume::State state) {
  volume.set_state(state);
  volume.set_provider_state(VolumeProviderState(state));
}

std::string StateName(const v1::Volume& volume) {
  return v1::Volume::State_Name(volume.state());
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list,
              absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

void SandboxProvider::ListVolumes(const CallContext& ctx, const v1::ListVolumesRequest& request,
                                  Callback<v1::ListVolumesResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListVolumesResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListVolumesResponse response;
    RETURN_IF_ERROR(ListPage(kVolumes, request.page_size(), request.page_token(),
                             response.mutable_volumes(), response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetVolume(const CallContext& ctx, const v1::GetVolumeRequest& request,
                                Callback<v1::Volume> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::Volume> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kVolumes, "name"));
    return GetTyped<v1::Volume>(kVolumes, id);
  }());
}

void SandboxProvider::CreateVolume(const CallContext& ctx, const v1::CreateVolumeRequest& request,
                                   Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        if (!request.has_volume()) return InvalidField("volume", "required");
        const v1::Volume& in = request.volume();
        if (in.size_bytes() <= 0) return InvalidField("volume.size_bytes", "must be positive");
        RETURN_IF_ERROR(CheckLabels(in.labels(), "volume.labels"));
        RETURN_IF_ERROR(CheckNoProviderOptions(in.provider_options(), "volume.provider_options"));
        ASSIGN_OR_RETURN(std::string zone, ResolveZone(in.location(), "volume.location"));
        ASSIGN_OR_RETURN(std::string id,
                         ChooseId(txn, kVolumes, request.volume_id(), "volume_id", "vol"));
        v1::Volume volume;
        volume.set_name(Name(kVolumes, id));
        volume.set_display_name(in.display_name());
        volume.set_size_bytes(in.size_bytes());
        volume.set_media(in.media() == v1::Volume::MEDIA_UNSPECIFIED ? v1::Volume::DISK
                                                                      : in.media());
        volume.set_location(Name(kLocations, zone));
        *volume.mutable_labels() = in.labels();
        SetState(volume, v1::Volume::CREATING);
        Record record;
        SaveVersion(volume, record, txn.now());
        SetTransition(record, txn.now(), options_.transition, v1::Volume::AVAILABLE);
        RETURN_IF_ERROR(txn.Put(kVolumes, id, record));
        return StateToken(kVolumes, id, kAvailable);
      },
      std::move(done));
}

void SandboxProvider::CloneVolume(const CallContext& ctx, const v1::CloneVolumeRequest& request,
                                  Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string source_id,
                         ParseName(request.name(), account_, kVolumes, "name"));
        ASSIGN_OR_RETURN(Loaded<v1::Volume> source,
                         LoadExisting<v1::Volume>(txn, kVolumes, source_id));
        if (source.resource.state() != v1::Volume::AVAILABLE &&
            source.resource.state() != v1::Volume::ATTACHED) {
          return WrongState(source.resource.name(),
                            absl::StrCat("cannot clone a volume that is ",
                                         StateName(source.resource)));
        }
        ASSIGN_OR_RETURN(std::string id,
                         ChooseId(txn, kVolumes, request.volume_id(), "volume_id", "vol"));
        v1::Volume copy;
        copy.set_name(Name(kVolumes, id));
        copy.set_display_name(request.display_name().empty() ? source.resource.display_name()
                                                             : request.display_name());
        copy.set_size_bytes(source.resource.size_bytes());
        copy.set_media(source.resource.media());
        copy.set_location(source.resource.location());
        *copy.mutable_labels() = source.resource.labels();
        copy.set_source_volume(source.resource.name());
        SetState(copy, v1::Volume::CREATING);
        Record record;
        SaveVersion(copy, record, txn.now());
        SetTransition(record, txn.now(), options_.transition, v1::Volume::AVAILABLE);
        RETURN_IF_ERROR(txn.Put(kVolumes, id, record));
        return StateToken(kVolumes, id, kAvailable);
      },
      std::move(done));
}

void SandboxProvider::UpdateVolume(const CallContext& ctx, const v1::UpdateVolumeRequest& request,
                                   Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        const v1::Volume& in = request.volume();
        ASSIGN_OR_RETURN(std::string id, ParseName(in.name(), account_, kVolumes, "volume.name"));
        ASSIGN_OR_RETURN(std::vector<std::string> paths,
                         CheckUpdateMask(request.update_mask(),
                                         {"display_name", "size_bytes", "labels"}, {"labels"},
                                         {"media", "location"}));
        ASSIGN_OR_RETURN(Loaded<v1::Volume> loaded, LoadExisting<v1::Volume>(txn, kVolumes, id));
        v1::Volume& volume = loaded.resource;
        if (volume.state() == v1::Volume::DELETING) {
          return WrongState(volume.name(), "cannot update a volume that is DELETING");
        }
        const std::string before = volume.SerializeAsString();
        bool resize = false;
        for (const std::string& path : paths) {
          if (path == "display_name") {
            volume.set_display_name(in.display_name());
          } else if (path == "labels") {
            RETURN_IF_ERROR(CheckLabels(in.labels(), "volume.labels"));
            *volume.mutable_labels() = in.labels();
          } else if (absl::StartsWith(path, "labels.")) {
            std::string key = path.substr(7);
            auto it = in.labels().find(key);
            if (it == in.labels().end()) {
              volume.mutable_labels()->erase(key);
            } else {
              (*volume.mutable_labels())[key] = it->second;
            }
          } else if (path == "size_bytes") {
            if (in.size_bytes() <= 0) return InvalidField("volume.size_bytes", "must be positive");
            if (in.size_bytes() < volume.size_bytes()) {
              return InvalidField("volume.size_bytes",
                                  absl::StrCat("a volume cannot shrink (it has ",
                                               volume.size_bytes(), " bytes)"));
            }
            if (in.size_bytes() == volume.size_bytes()) continue;
            if ((volume.state() != v1::Volume::AVAILABLE &&
                 volume.state() != v1::Volume::ATTACHED) ||
                loaded.record.has_transition()) {
              return WrongState(volume.name(), absl::StrCat("cannot resize a volume that is ",
                                                            StateName(volume)));
            }
            volume.set_size_bytes(in.size_bytes());
            SetState(volume, v1::Volume::RESIZING);
            resize = true;
          }
        }
        if (volume.SerializeAsString() != before) {
          SaveVersion(volume, loaded.record, txn.now());
          if (resize) {
            SetTransition(loaded.record, txn.now(), options_.transition, v1::Volume::AVAILABLE);
          }
          RETURN_IF_ERROR(txn.Put(kVolumes, id, loaded.record));
        }
        return resize ? SettledToken(kVolumes, id) : CurrentToken(kVolumes, id);
      },
      std::move(done));
}

void SandboxProvider::DeleteVolume(const CallContext& ctx, const v1::DeleteVolumeRequest& request,
                                   Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kVolumes, "name"));
        ASSIGN_OR_RETURN(std::optional<Loaded<v1::Volume>> loaded,
                         LoadIfExists<v1::Volume>(txn, kVolumes, id));
        if (!loaded.has_value()) {
          if (request.allow_missing()) return GoneToken(kVolumes, id);
          return NotFound(kVolumes, request.name());
        }
        v1::Volume& volume = loaded->resource;
        if (volume.state() == v1::Volume::DELETING) return GoneToken(kVolumes, id);
        if (volume.attached_to_size() > 0) {
          return WrongState(volume.name(), absl::StrCat("is attached to ", volume.attached_to(0),
                                                        "; detach it first"));
        }
        if (volume.state() != v1::Volume::AVAILABLE) {
          return WrongState(volume.name(),
                            absl::StrCat("cannot delete a volume that is ", StateName(volume)));
        }
        SetState(volume, v1::Volume::DELETING);
        SaveVersion(volume, loaded->record, txn.now());
        SetTransition(loaded->record, txn.now(), options_.transition, v1::Volume::DELETING,
                      /*remove=*/true);
        RETURN_IF_ERROR(txn.Put(kVolumes, id, loaded->record));
        return GoneToken(kVolumes, id);
      },
      std::move(done));
}

void SandboxProvider::AttachVolume(const CallContext& ctx, const v1::AttachVolumeRequest& request,
                                   Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kVolumes, "name"));
        ASSIGN_OR_RETURN(std::string instance_id,
                         ParseName(request.instance(), account_, kInstances, "instance"));
        if (request.boot_order() < 0) return InvalidField("boot_order", "must not be negative");
        ASSIGN_OR_RETURN(Loaded<v1::Volume> volume, LoadExisting<v1::Volume>(txn, kVolumes, id));
        ASSIGN_OR_RETURN(Loaded<v1::Instance> instance,
                         LoadExisting<v1::Instance>(txn, kInstances, instance_id));
        const PollToken token = CurrentToken(kVolumes, id);
        if (Contains(volume.resource.attached_to(), instance.resource.name())) return token;
        if (volume.resource.attached_to_size() > 0) {
          return WrongState(volume.resource.name(),
                            absl::StrCat("is attached to ", volume.resource.attached_to(0),
                                         "; detach it first"));
        }
        if (volume.resource.state() != v1::Volume::AVAILABLE) {
          return WrongState(volume.resource.name(), absl::StrCat("cannot attach a volume that is ",
                                                                 StateName(volume.resource)));
        }
        // EC2 attaches only to running or stopped instances.
        v1::Instance::State state = instance.resource.state();
        if ((state != v1::Instance::RUNNING && state != v1::Instance::STOPPED) ||
            instance.record.has_transition()) {
          return WrongState(instance.resource.name(),
                            absl::StrCat("cannot attach a volume to an instance that is ",
                                         v1::Instance::State_Name(state)));
        }
        if (volume.resource.location() != instance.resource.location()) {
          return WrongState(volume.resource.name(),
                            absl::StrCat("is in ", volume.resource.location(), ", the instance in ",
                                         instance.resource.location()));
        }
        std::string device = request.device();
        std::string channel = request.channel();
        for (const v1::AttachedVolume& other : instance.resource.volumes()) {
          if (!device.empty() && other.device() == device) {
            return WrongState(instance.resource.name(),
                              absl::StrCat("device ", device, " is in use"));
          }
          if (!channel.empty() && other.channel() == channel) {
            return WrongState(instance.resource.name(),
                              absl::StrCat("channel ", channel, " is in use"));
          }
        }
        // Otherwise the first free virtio name and bus slot.
        for (int i = 0; device.empty() || channel.empty(); ++i) {
          std::string candidate_device = absl::StrCat("vd", std::string(1, 'a' + i % 26),
                                                      i >= 26 ? absl::StrCat(i / 26) : "");
          std::string candidate_channel = absl::StrCat("0:", i);
          bool device_free = true;
          bool channel_free = true;
          for (const v1::AttachedVolume& other : instance.resource.volumes()) {
            device_free = device_free && other.device() != candidate_device;
            channel_free = channel_free && other.channel() != candidate_channel;
          }
          if (device.empty() && device_free) device = candidate_device;
          if (channel.empty() && channel_free) channel = candidate_channel;
        }
        v1::AttachedVolume* attached = instance.resource.add_volumes();
        attached->set_volume(volume.resource.name());
        attached->set_device(device);
        attached->set_channel(channel);
        attached->set_boot_order(request.boot_order());
        // Keep boot order: boot devices first by number, then the others.
        std::stable_sort(instance.resource.mutable_volumes()->begin(),
                         instance.resource.mutable_volumes()->end(),
                         [](const v1::AttachedVolume& a, const v1::AttachedVolume& b) {
                           auto rank = [](int order) { return order == 0 ? INT32_MAX : order; };
                           return rank(a.boot_order()) < rank(b.boot_order());
                         });
        volume.resource.add_attached_to(instance.resource.name());
        SetState(volume.resource, v1::Volume::ATTACHED);
        SaveVersion(volume.resource, volume.record, txn.now());
        SaveVersion(instance.resource, instance.record, txn.now());
        RETURN_IF_ERROR(txn.Put(kVolumes, id, volume.record));
        RETURN_IF_ERROR(txn.Put(kInstances, instance_id, instance.record));
        return token;
      },
      std::move(done));
}

void SandboxProvider::DetachVolume(const CallContext& ctx, const v1::DetachVolumeRequest& request,
                                   Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kVolumes, "name"));
        ASSIGN_OR_RETURN(std::string instance_id,
                         ParseName(request.instance(), account_, kInstances, "instance"));
        ASSIGN_OR_RETURN(Loaded<v1::Volume> volume, LoadExisting<v1::Volume>(txn, kVolumes, id));
        ASSIGN_OR_RETURN(Loaded<v1::Instance> instance,
                         LoadExisting<v1::Instance>(txn, kInstances, instance_id));
        const std::string& instance_name = instance.resource.name();
        if (!Contains(volume.resource.attached_to(), instance_name)) {
          return WrongState(volume.resource.name(),
                            absl::StrCat("is not attached to ", instance_name));
        }
        auto* attached_to = volume.resource.mutable_attached_to();
        attached_to->erase(std::remove(attached_to->begin(), attached_to->end(), instance_name),
                           attached_to->end());
        if (volume.resource.state() == v1::Volume::ATTACHED && attached_to->empty()) {
          SetState(volume.resource, v1::Volume::AVAILABLE);
        }
        auto* volumes = instance.resource.mutable_volumes();
        volumes->erase(std::remove_if(volumes->begin(), volumes->end(),
                                      [&](const v1::AttachedVolume& a) {
                                        return a.volume() == volume.resource.name();
                                      }),
                       volumes->end());
        SaveVersion(volume.resource, volume.record, txn.now());
        SaveVersion(instance.resource, instance.record, txn.now());
        RETURN_IF_ERROR(txn.Put(kVolumes, id, volume.record));
        RETURN_IF_ERROR(txn.Put(kInstances, instance_id, instance.record));
        return CurrentToken(kVolumes, id);
      },
      std::move(done));
}

}  // namespace cloudplane::adapters::sandbox
