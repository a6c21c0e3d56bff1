// Volumes: images of type OS, CDROM and DATABLOCK, attached to VMs as disks.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"

namespace cloudplane::adapters::opennebula {

using xmlrpc::Value;

void OpenNebulaProvider::ListVolumes(const CallContext& ctx, const v1::ListVolumesRequest& req,
                                     Callback<v1::ListVolumesResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  FetchImages(a_, ctx.deadline, [a = a_, deadline = ctx.deadline, size = req.page_size(),
                                 token = req.page_token(), done = std::move(done)](
                                    absl::StatusOr<std::vector<FoundImage>> images) mutable {
    if (!images.ok()) return std::move(done)(images.status());
    FetchInstanceIds(
        a, deadline,
        [a, size, token, images = *std::move(images), done = std::move(done)](
            absl::StatusOr<std::map<int64_t, std::string>> ids) mutable {
          if (!ids.ok()) return std::move(done)(ids.status());
          std::vector<v1::Volume> items;
          for (const FoundImage& image : images) {
            auto v = VolumeFromImage(*image.node, a->id, image.resource_id, *ids);
            if (!v.ok()) return std::move(done)(v.status());
            items.push_back(*std::move(v));
          }
          std::move(done)(kit::AnswerPage<v1::ListVolumesResponse>(std::move(items), size, token));
        });
  });
}

void OpenNebulaProvider::GetVolume(const CallContext& ctx, const v1::GetVolumeRequest& req,
                                   Callback<v1::Volume> done) {
  auto id = ParseResourceName("name", a_->id, "volumes", req.name());
  if (!id.ok()) return std::move(done)(id.status());
  FindImage(a_, ctx.deadline, *id, req.name(),
            [a = a_, deadline = ctx.deadline,
             done = std::move(done)](absl::StatusOr<FoundImage> image) mutable {
              if (!image.ok()) return std::move(done)(image.status());
              VolumeOf(a, deadline, *std::move(image), Wrap(std::move(done)));
            });
}

void OpenNebulaProvider::AttachVolume(const CallContext& ctx, const v1::AttachVolumeRequest& req,
                                      Callback<MutationProgress> done) {
  DiskCall(ctx,
           {req.name(), req.instance(), /*attach=*/true, req.device(), req.channel(),
            req.boot_order()},
           std::move(done));
}

void OpenNebulaProvider::DetachVolume(const CallContext& ctx, const v1::DetachVolumeRequest& req,
                                      Callback<MutationProgress> done) {
  DiskCall(ctx, {req.name(), req.instance(), /*attach=*/false, "", "", 0}, std::move(done));
}

// Find the image and the VM, then hotplug the disk (one.vm.attach /
// one.vm.detach) and poll until the VM is back in its state (RUNNING or
// POWEROFF) with (without) the disk. An image already attached (not
// attached) is reported as it is, so a re-driven call does not attach twice.
void OpenNebulaProvider::DiskCall(const CallContext& ctx, DiskRequest req,
                                  Callback<MutationProgress> cb) {
  auto image_id = ParseResourceName("name", a_->id, "volumes", req.volume);
  if (!image_id.ok()) return std::move(cb)(image_id.status());
  auto vm_id = ParseResourceName("instance", a_->id, "instances", req.instance);
  if (!vm_id.ok()) return std::move(cb)(vm_id.status());
  std::vector<std::pair<std::string, std::string>> disk;
  if (!req.device.empty()) {
    auto attr = DiskDeviceAttribute(req.device);
    if (!attr.ok()) return std::move(cb)(attr.status());
    disk.push_back(*attr);
  }
  if (!req.channel.empty()) {
    return std::move(cb)(InvalidField("channel", "OpenNebula chooses the bus address itself"));
  }
  if (req.boot_order != 0) {
    return std::move(cb)(InvalidField(
        "boot_order", "a hotplugged OpenNebula disk cannot be a boot device; leave it 0"));
  }
  if (ctx.validate_only) return std::move(cb)(kit::Finished(v1::Volume()));
  FindImage(
      a_, ctx.deadline, *image_id, req.volume,
      [a = a_, deadline = ctx.deadline, vm_id = *vm_id, instance = req.instance,
       attach = req.attach, disk,
       done = Wrap(std::move(cb))](absl::StatusOr<FoundImage> image) mutable {
        if (!image.ok()) return done(image.status());
        FindVm(a, deadline, vm_id, instance,
               [a, deadline, attach, disk, image = *std::move(image),
                done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
                 if (!vm.ok()) return done(vm.status());
                 std::optional<int64_t> disk_id = DiskOfImage(vm->doc->Root(), image.summary.oid);
                 if (disk_id.has_value() == attach) {
                   return VolumeOf(a, deadline, std::move(image),
                                   [done = std::move(done)](absl::StatusOr<v1::Volume> v) mutable {
                                     if (!v.ok()) return done(v.status());
                                     done(kit::Finished(*v));
                                   });
                 }
                 DiskToken d;
                 d.set_vm_id(vm->summary.oid);
                 d.set_instance_id(vm->resource_id);
                 d.set_image_id(image.summary.oid);
                 d.set_volume_id(image.resource_id);
                 d.set_attach(attach);
                 // oned hotplugs in RUNNING and POWEROFF only ([api]
                 // one.vm.attach) and refuses other states with ACTION.
                 d.set_target(vm->summary.state == VmState::kPoweroff ? VM_TARGET_POWEROFF
                                                                      : VM_TARGET_RUNNING);
                 std::vector<Value> params = {Value::Int(d.vm_id())};
                 if (attach) {
                   std::vector<std::pair<std::string, std::string>> attrs = {
                       {"IMAGE_ID", absl::StrCat(d.image_id())}};
                   attrs.insert(attrs.end(), disk.begin(), disk.end());
                   absl::StatusOr<std::string> text = VectorTemplate("DISK", attrs);
                   if (!text.ok()) return done(text.status());
                   params.push_back(Value::String(*std::move(text)));
                 } else {
                   params.push_back(Value::Int(*disk_id));
                 }
                 Call(a, deadline, attach ? "one.vm.attach" : "one.vm.detach", std::move(params),
                      [d, done = std::move(done)](absl::StatusOr<Value> v) mutable {
                        if (!v.ok()) return done(v.status());
                        done(DiskProgress(
                            d, absl::StrCat("disk ", d.attach() ? "attach" : "detach",
                                            " accepted")));
                      });
               });
      });
}

}  // namespace cloudplane::adapters::opennebula
