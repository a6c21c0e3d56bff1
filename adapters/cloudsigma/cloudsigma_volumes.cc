// VolumesService on CloudSigma drives (drives.rst); attach and detach edit
// the server's `drives` list (servers.rst).
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/progress.h"
#include "base/errors.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

using http::HttpResponse;
using Empty = google::protobuf::Empty;

// A drive just created or cloned: pending until it has settled.
void PendingOnNewDrive(absl::StatusOr<HttpResponse> r, Callback<MutationProgress> done) {
  if (!r.ok()) return std::move(done)(r.status());
  absl::StatusOr<WireObject> o = ParseObject(r->body);
  if (!o.ok()) return std::move(done)(o.status());
  std::move(done)(PendingOn(MakePollToken(PollToken::DRIVE, o->uuid, PollToken::SETTLED),
                            absl::StrCat("drive ", o->uuid, " is ", o->status)));
}

// The device, channel and boot order of an attach; OK when empty (defaults).
absl::Status CheckAttachment(const std::string& device, const std::string& channel,
                             int32_t boot_order) {
  absl::Status status;
  if (!device.empty() && device != "virtio" && device != "ide") {
    AddFieldViolation(status, "device", "must be virtio or ide");
  }
  bool channel_ok = channel.empty();
  if (!channel.empty()) {
    std::pair<std::string, std::string> cu = absl::StrSplit(channel, ':');
    int c = -1, u = -1;
    channel_ok = absl::SimpleAtoi(cu.first, &c) && absl::SimpleAtoi(cu.second, &u) && c >= 0 &&
                 u >= 0 && c < 1024 && u < 6 && (device != "ide" || (c <= 1 && u <= 1));
  }
  if (!channel_ok) {
    AddFieldViolation(status, "channel",
                      "must be controller:unit (virtio units 0-5; ide 0:0, 0:1, 1:0, 1:1)");
  }
  if (boot_order < 0) AddFieldViolation(status, "boot_order", "must not be negative");
  return status;
}

}  // namespace

void CloudSigmaProvider::ListVolumes(const CallContext& ctx, const v1::ListVolumesRequest& request,
                                     Callback<v1::ListVolumesResponse> done) {
  ListRendered<v1::ListVolumesResponse, v1::Volume>(account_, ctx.deadline, "drives",
                                                    "servers", &DriveToVolume, request.page_size(),
                                                    request.page_token(), std::move(done));
}

void CloudSigmaProvider::GetVolume(const CallContext& ctx, const v1::GetVolumeRequest& request,
                                   Callback<v1::Volume> done) {
  auto id = IdFromName("name", account_->id, "volumes", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  FindObject(account, deadline, "drives", *id, request.name(), "volume",
             [account, deadline, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
               if (!o.ok()) return std::move(done)(o.status());
               RenderVolume(account, deadline, *o, std::move(done));
             });
}

void CloudSigmaProvider::CreateVolume(const CallContext& ctx,
                                      const v1::CreateVolumeRequest& request,
                                      Callback<MutationProgress> done) {
  absl::Status status;
  if (request.volume().size_bytes() <= 0) {
    AddFieldViolation(status, "volume.size_bytes", "must be positive");
  }
  if (!request.volume_id().empty()) {
    if (absl::Status s = ValidateChosenId("volume_id", request.volume_id()); !s.ok()) {
      AddFieldViolation(status, "volume_id", s.message());
    }
  }
  if (absl::Status s = ValidateLabels("volume.labels", request.volume().labels()); !s.ok()) {
    status = s;
  }
  if (!request.volume().provider_options().fields().empty()) {
    AddFieldViolation(status, "volume.provider_options", "CloudSigma volumes take none");
  }
  if (!status.ok()) return std::move(done)(status);
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Volume()));
  const std::string resource_name = ResourceName(
      account_->id, "volumes", request.volume_id().empty() ? "-" : request.volume_id());
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  const std::string body = DriveCreateBody(request.volume(), request.volume_id(), ctx.operation);
  FindExisting(
      account, deadline, "drives", request.volume_id(), ctx.operation, resource_name,
      [account, deadline, body,
       done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
        if (!found.ok()) return std::move(done)(found.status());
        if (found->has_value()) {
          return Poll(account, deadline,
                      MakePollToken(PollToken::DRIVE, **found, PollToken::SETTLED),
                      std::move(done));
        }
        Call(
            account, deadline, "POST", "/drives/", body, "POST drives",
            [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
              PendingOnNewDrive(std::move(r), std::move(done));
            },
            "volume.");
      });
}

void CloudSigmaProvider::CloneVolume(const CallContext& ctx, const v1::CloneVolumeRequest& request,
                                     Callback<MutationProgress> done) {
  auto id = IdFromName("name", account_->id, "volumes", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (!request.volume_id().empty()) {
    if (absl::Status s = ValidateChosenId("volume_id", request.volume_id()); !s.ok()) {
      return std::move(done)(s);
    }
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Volume()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  const std::string operation = ctx.operation;
  const std::string body = DriveCloneBody(request.display_name(), request.volume_id(), operation);
  const std::string new_name = ResourceName(
      account->id, "volumes", request.volume_id().empty() ? "-" : request.volume_id());
  FindObject(
      account, deadline, "drives", *id, request.name(), "volume",
      [account, deadline, operation, body, new_name, volume_id = request.volume_id(),
       done = std::move(done)](absl::StatusOr<WireObject> source) mutable {
        if (!source.ok()) return std::move(done)(source.status());
        FindExisting(
            account, deadline, "drives", volume_id, operation, new_name,
            [account, deadline, body, source_uuid = source->uuid,
             done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
              if (!found.ok()) return std::move(done)(found.status());
              if (found->has_value()) {
                return Poll(account, deadline,
                            MakePollToken(PollToken::DRIVE, **found, PollToken::SETTLED),
                            std::move(done));
              }
              Call(account, deadline, "POST",
                   absl::StrCat("/drives/", source_uuid, "/action/?do=clone"), body,
                   absl::StrCat("POST drive ", source_uuid, " clone"),
                   [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                     PendingOnNewDrive(std::move(r), std::move(done));
                   });
            });
      });
}

void CloudSigmaProvider::UpdateVolume(const CallContext& ctx,
                                      const v1::UpdateVolumeRequest& request,
                                      Callback<MutationProgress> done) {
  auto id = IdFromName("volume.name", account_->id, "volumes", request.volume().name());
  if (!id.ok()) return std::move(done)(id.status());
  DriveEdit edit;
  for (const std::string& path : request.update_mask().paths()) {
    if (path == "display_name") {
      if (request.volume().display_name().empty()) {
        return std::move(done)(InvalidField("volume.display_name", "must not be empty"));
      }
      edit.name = request.volume().display_name();
    } else if (path == "size_bytes") {
      if (request.volume().size_bytes() <= 0) {
        return std::move(done)(InvalidField("volume.size_bytes", "must be positive"));
      }
      edit.size = request.volume().size_bytes();
    } else if (path == "labels") {
      if (absl::Status s = ValidateLabels("volume.labels", request.volume().labels()); !s.ok()) {
        return std::move(done)(s);
      }
      edit.labels.emplace(request.volume().labels().begin(), request.volume().labels().end());
    } else {
      return std::move(done)(InvalidField(
          "update_mask", absl::StrCat("\"", path,
                                      "\" cannot be updated (display_name, size_bytes, labels "
                                      "can)")));
    }
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Volume()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  FindObject(
      account, deadline, "drives", *id, request.volume().name(), "volume",
      [account, deadline, edit, done = std::move(done)](absl::StatusOr<WireObject> drive) mutable {
        if (!drive.ok()) return std::move(done)(drive.status());
        absl::StatusOr<std::string> body = EditDrive(drive->json, edit);
        if (!body.ok()) return std::move(done)(body.status());
        Call(
            account, deadline, "PUT", ObjectPath("drives", drive->uuid), *body,
            absl::StrCat("PUT drive ", drive->uuid),
            [account, deadline, uuid = drive->uuid,
             done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
              if (!r.ok()) return std::move(done)(r.status());
              // A resize answers `resizing` and settles later (drives.rst).
              Poll(account, deadline, MakePollToken(PollToken::DRIVE, uuid, PollToken::SETTLED),
                   std::move(done));
            },
            "volume.");
      });
}

void CloudSigmaProvider::DeleteVolume(const CallContext& ctx,
                                      const v1::DeleteVolumeRequest& request,
                                      Callback<MutationProgress> done) {
  auto id = IdFromName("name", account_->id, "volumes", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(Empty()));
  DeleteObject(
      account_, ctx.deadline, "drives", *id, request.name(), "volume", "drive",
      request.allow_missing(),
      [name = request.name()](const WireObject& drive) {
        if (drive.referenced_uuids.empty()) return absl::OkStatus();
        return kit::WrongState(absl::StrCat("volume ", name, " is attached; detach it first"),
                               name, drive.status);
      },
      [](const std::string& uuid) {
        // Deletion is asynchronous: done when GET answers 404 (drives.rst).
        return PendingOn(MakePollToken(PollToken::DRIVE, uuid, PollToken::GONE),
                         absl::StrCat("deleting drive ", uuid));
      },
      std::move(done));
}

void CloudSigmaProvider::AttachVolume(const CallContext& ctx,
                                      const v1::AttachVolumeRequest& request,
                                      Callback<MutationProgress> done) {
  AttachOrDetach(ctx, request.name(), request.instance(), /*attach=*/true, request.device(),
                 request.channel(), request.boot_order(), std::move(done));
}

void CloudSigmaProvider::DetachVolume(const CallContext& ctx,
                                      const v1::DetachVolumeRequest& request,
                                      Callback<MutationProgress> done) {
  AttachOrDetach(ctx, request.name(), request.instance(), /*attach=*/false, "", "", 0,
                 std::move(done));
}

void CloudSigmaProvider::AttachOrDetach(const CallContext& ctx, const std::string& volume_name,
                                        const std::string& instance_name, bool attach,
                                        const std::string& device, const std::string& channel,
                                        int32_t boot_order, Callback<MutationProgress> done) {
  auto volume_id = IdFromName("name", account_->id, "volumes", volume_name);
  if (!volume_id.ok()) return std::move(done)(volume_id.status());
  auto instance_id = IdFromName("instance", account_->id, "instances", instance_name);
  if (!instance_id.ok()) return std::move(done)(instance_id.status());
  if (attach) {
    if (absl::Status s = CheckAttachment(device, channel, boot_order); !s.ok()) {
      return std::move(done)(s);
    }
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Volume()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  ServerEdit::Attach item{.device = device, .channel = channel, .boot_order = boot_order};
  FindObject(
      account, deadline, "drives", *volume_id, volume_name, "volume",
      [account, deadline, instance_id = *instance_id, instance_name, attach, item,
       done = std::move(done)](absl::StatusOr<WireObject> drive) mutable {
        if (!drive.ok()) return std::move(done)(drive.status());
        FindObject(
            account, deadline, "servers", instance_id, instance_name, "instance",
            [account, deadline, drive = *drive, instance_name, attach, item,
             done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
              if (!server.ok()) return std::move(done)(server.status());
              auto has = ServerHasDrive(server->json, drive.uuid);
              if (!has.ok()) return std::move(done)(has.status());
              const PollToken token =
                  MakePollToken(PollToken::DRIVE, drive.uuid,
                                attach ? PollToken::MOUNTED : PollToken::UNMOUNTED, server->uuid);
              if (*has == attach) {  // already as asked: converge only
                return Poll(account, deadline, token, std::move(done));
              }
              // CloudSigma ignores drive list changes of a running server
              // without an error (servers.rst), so they are refused here.
              if (server->status != "stopped") {
                return std::move(done)(kit::WrongState(
                    absl::StrCat("instance ", instance_name, " is ", server->status,
                                 "; volumes are attached and detached while it is stopped"),
                    instance_name, server->status));
              }
              if (attach && drive.status != "unmounted" && drive.status != "mounted") {
                return std::move(done)(kit::WrongState(
                    absl::StrCat("the volume is ", drive.status, "; wait until it is ready"),
                    instance_name, drive.status));
              }
              ServerEdit edit;
              if (attach) {
                item.drive_uuid = drive.uuid;
                edit.attach = item;
              } else {
                edit.detach_uuid = drive.uuid;
              }
              PutServer(account, deadline, *server, edit,
                        [token, done = std::move(done)](
                            absl::StatusOr<WireObject> updated) mutable {
                          if (!updated.ok()) return std::move(done)(updated.status());
                          std::move(done)(PendingOn(token, "waiting for the drive's mounted_on"));
                        });
            });
      });
}

}  // namespace cloudplane::adapters::cloudsigma
