// Operations: a mutation answers a packed VmToken or DiskToken
// (opennebula_tokens.proto); each poll reads the VM once (one.vm.info) and
// says whether the work is done. Security groups and updates are synchronous
// and have none.
#include <algorithm>
#include <string>
#include <vector>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/kit/progress.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::opennebula {
namespace {

// After one.vm.attach/detach returns, oned already shows the HOTPLUG state
// ([oned] RequestManagerVirtualMachine.cc), so a VM back in its state without
// the change means the driver failed and oned rolled back. HA followers may
// serve a stale read right after a write, hence a few misses before giving
// up.
constexpr int kMaxHotplugMisses = 3;

bool Reached(const VmSummary& s, VmTarget target) {
  switch (target) {
    case VM_TARGET_RUNNING:
      return s.state == VmState::kActive && s.lcm_state == LcmState::kRunning;
    case VM_TARGET_POWEROFF:
      return s.state == VmState::kPoweroff;
    case VM_TARGET_HOLD:
      return s.state == VmState::kHold;
    case VM_TARGET_SUSPENDED:
      return s.state == VmState::kSuspended;
    case VM_TARGET_STOPPED:
      return s.state == VmState::kStopped;
    case VM_TARGET_UNDEPLOYED:
      return s.state == VmState::kUndeployed;
    default:
      return false;
  }
}

absl::Status FailureState(const std::string& resource, const VmSummary& s) {
  return WithErrorInfo(
      absl::FailedPreconditionError(absl::StrCat("instance ", resource,
                                                 " entered the failure state ",
                                                 ProviderState(s.state, s.lcm_state))),
      reasons::kProviderFailureState);
}

void PollVm(const AccountPtr& a, absl::Time deadline, VmToken t, Done<MutationProgress> done) {
  const int64_t oid = t.vm_id();
  const std::string resource =
      ResourceName(*a, "instances", t.instance_id().empty() ? absl::StrCat(oid) : t.instance_id());
  ReadVm(a, deadline, oid, t.instance_id(), resource,
         [a, t, resource, done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
           if (t.target() == VM_TARGET_DONE && !vm.ok() &&
               vm.status().code() == absl::StatusCode::kNotFound) {
             return done(kit::Finished(google::protobuf::Empty()));
           }
           if (!vm.ok()) return done(vm.status());
           if (InstanceState(vm->summary.state, vm->summary.lcm_state) == v1::Instance::ERROR) {
             return done(FailureState(resource, vm->summary));
           }
           if (t.target() != VM_TARGET_DONE && Reached(vm->summary, t.target())) {
             absl::StatusOr<v1::Instance> instance =
                 InstanceFromVm(vm->doc->Root(), a->id, vm->resource_id);
             if (!instance.ok()) return done(instance.status());
             return done(kit::Finished(*instance));
           }
           done(VmProgress(t.vm_id(), t.instance_id(), t.target(),
                           absl::StrCat("waiting for ", TargetName(t.target()), " (now ",
                                        ProviderState(vm->summary.state, vm->summary.lcm_state),
                                        ")")));
         });
}

void PollDisk(const AccountPtr& a, absl::Time deadline, DiskToken d,
              Done<MutationProgress> done) {
  const std::string resource = ResourceName(*a, "instances", d.instance_id());
  ReadVm(a, deadline, d.vm_id(), d.instance_id(), resource,
         [a, deadline, d, resource, done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return done(vm.status());
           if (InstanceState(vm->summary.state, vm->summary.lcm_state) == v1::Instance::ERROR) {
             return done(FailureState(resource, vm->summary));
           }
           const absl::string_view op = d.attach() ? "attach" : "detach";
           const bool has_disk = DiskOfImage(vm->doc->Root(), d.image_id()).has_value();
           if (Reached(vm->summary, d.target())) {
             if (has_disk == d.attach()) {
               const std::string volume = ResourceName(*a, "volumes", d.volume_id());
               return FindImage(a, deadline, IdOrName{d.image_id(), ""}, volume,
                                [a, deadline, rid = d.volume_id(), done = std::move(done)](
                                    absl::StatusOr<FoundImage> image) mutable {
                                  if (!image.ok()) return done(image.status());
                                  image->resource_id = rid;
                                  VolumeOf(a, deadline, *std::move(image),
                                           [done = std::move(done)](
                                               absl::StatusOr<v1::Volume> v) mutable {
                                             if (!v.ok()) return done(v.status());
                                             done(kit::Finished(*v));
                                           });
                                });
             }
             d.set_misses(d.misses() + 1);
             if (d.misses() >= kMaxHotplugMisses) {
               return done(WithErrorInfo(
                   absl::AbortedError(absl::StrCat(
                       "OpenNebula did not ", op, " the disk of volume ", d.volume_id(),
                       " on instance ", resource, "; see the VM's log in OpenNebula")),
                   reasons::kProviderFailureState));
             }
           }
           done(DiskProgress(d, absl::StrCat("waiting for the disk ", op, " (now ",
                                             ProviderState(vm->summary.state,
                                                           vm->summary.lcm_state),
                                             ")")));
         });
}

void PollNic(const AccountPtr& a, absl::Time deadline, NicToken t,
             Done<MutationProgress> done) {
  const std::string resource = ResourceName(*a, "instances", t.instance_id());
  ReadVm(a, deadline, t.vm_id(), t.instance_id(), resource,
         [a, t, resource, done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return done(vm.status());
           if (InstanceState(vm->summary.state, vm->summary.lcm_state) == v1::Instance::ERROR) {
             return done(FailureState(resource, vm->summary));
           }
           const absl::string_view op = t.attach() ? "attach" : "detach";
           // Done when the VM is back in its state (out of HOTPLUG_NIC) with
           // a NIC it did not have (attach), or without the NIC (detach).
           if (Reached(vm->summary, t.target())) {
             const std::vector<int64_t> now = NicIds(vm->doc->Root());
             bool changed = false;
             if (t.attach()) {
               for (int64_t id : now) {
                 if (std::find(t.before().begin(), t.before().end(), id) == t.before().end()) {
                   changed = true;
                 }
               }
             } else {
               changed = std::find(now.begin(), now.end(), t.nic_id()) == now.end();
             }
             if (changed) {
               absl::StatusOr<v1::Instance> i =
                   InstanceFromVm(vm->doc->Root(), a->id, vm->resource_id);
               if (!i.ok()) return done(i.status());
               return done(kit::Finished(*i));
             }
             t.set_misses(t.misses() + 1);
             if (t.misses() >= kMaxHotplugMisses) {
               return done(WithErrorInfo(
                   absl::AbortedError(absl::StrCat("OpenNebula did not ", op,
                                                   " the network interface on instance ",
                                                   resource, "; see the VM's log in OpenNebula")),
                   reasons::kProviderFailureState));
             }
           }
           done(NicProgress(t, absl::StrCat("waiting for the NIC ", op, " (now ",
                                            ProviderState(vm->summary.state,
                                                          vm->summary.lcm_state),
                                            ")")));
         });
}

}  // namespace

MutationProgress NicProgress(const NicToken& token, std::string detail) {
  NicToken versioned = token;
  versioned.set_version(kTokenVersion);
  return kit::Pending(kit::PackToken(versioned), std::move(detail), absl::StrCat(token.vm_id()));
}

absl::string_view TargetName(VmTarget target) {
  switch (target) {
    case VM_TARGET_RUNNING:
      return "running";
    case VM_TARGET_POWEROFF:
      return "poweroff";
    case VM_TARGET_HOLD:
      return "hold";
    case VM_TARGET_SUSPENDED:
      return "suspended";
    case VM_TARGET_STOPPED:
      return "stopped";
    case VM_TARGET_UNDEPLOYED:
      return "undeployed";
    case VM_TARGET_DONE:
      return "done";
    default:
      return "an unknown state";
  }
}

std::string PackVmToken(int64_t oid, std::string instance_id, VmTarget target) {
  VmToken token;
  token.set_version(kTokenVersion);
  token.set_vm_id(oid);
  token.set_instance_id(std::move(instance_id));
  token.set_target(target);
  return kit::PackToken(token);
}

MutationProgress VmProgress(int64_t oid, std::string instance_id, VmTarget target,
                            std::string detail) {
  return kit::Pending(PackVmToken(oid, std::move(instance_id), target), std::move(detail),
                      absl::StrCat(oid));
}

MutationProgress DiskProgress(const DiskToken& token, std::string detail) {
  DiskToken versioned = token;
  versioned.set_version(kTokenVersion);
  return kit::Pending(kit::PackToken(versioned), std::move(detail), absl::StrCat(token.vm_id()));
}

void Poll(const AccountPtr& a, absl::Time deadline, const std::string& token,
          Done<MutationProgress> done) {
  if (kit::HoldsToken<NicToken>(token)) {
    absl::StatusOr<NicToken> nic = kit::UnpackToken<NicToken>(token, kTokenVersion);
    if (!nic.ok()) return done(nic.status());
    return PollNic(a, deadline, *std::move(nic), std::move(done));
  }
  if (kit::HoldsToken<DiskToken>(token)) {
    absl::StatusOr<DiskToken> disk = kit::UnpackToken<DiskToken>(token, kTokenVersion);
    if (!disk.ok()) return done(disk.status());
    return PollDisk(a, deadline, *std::move(disk), std::move(done));
  }
  // Anything else must be a VmToken; UnpackToken says why it is not.
  absl::StatusOr<VmToken> vm = kit::UnpackToken<VmToken>(token, kTokenVersion);
  if (!vm.ok()) return done(vm.status());
  PollVm(a, deadline, *std::move(vm), std::move(done));
}

void OpenNebulaProvider::PollOperation(const CallContext& ctx, const std::string& token,
                                       Callback<MutationProgress> done) {
  Poll(a_, ctx.deadline, token, Wrap(std::move(done)));
}

// What a list shows is the Instance's API state, which folds several VM
// states into one (STOPPED is HOLD, POWEROFF, STOPPED or UNDEPLOYED), so a
// listed state that may be the target is confirmed by one targeted poll
// (one.vm.info: the exact VM and LCM state, the full Instance); a VM gone
// from a complete list finishes a delete at once.
std::optional<ObservedTarget> OpenNebulaProvider::ObservationTarget(
    const std::string& token) const {
  if (kit::HoldsToken<DiskToken>(token) || kit::HoldsToken<NicToken>(token)) return std::nullopt;
  absl::StatusOr<VmToken> vm = kit::UnpackToken<VmToken>(token, kTokenVersion);
  if (!vm.ok()) return std::nullopt;
  return ObservedTarget{
      "Instance",
      ResourceName(*a_, "instances",
                   vm->instance_id().empty() ? absl::StrCat(vm->vm_id()) : vm->instance_id())};
}

std::optional<absl::StatusOr<MutationProgress>> OpenNebulaProvider::ProgressFromObservation(
    const std::string& token, const google::protobuf::Message* observed) const {
  if (kit::HoldsToken<DiskToken>(token) || kit::HoldsToken<NicToken>(token)) return std::nullopt;
  absl::StatusOr<VmToken> vm = kit::UnpackToken<VmToken>(token, kTokenVersion);
  if (!vm.ok()) return std::nullopt;
  auto ask = [&](absl::string_view why) -> absl::StatusOr<MutationProgress> {
    MutationProgress p;
    p.poll_token = token;
    p.detail = std::string(why);
    return p;
  };
  const auto* instance = dynamic_cast<const v1::Instance*>(observed);
  if (instance == nullptr || instance->state() == v1::Instance::TERMINATED) {
    if (vm->target() == VM_TARGET_DONE) return kit::Finished(google::protobuf::Empty());
    return ask("the VM is not listed");
  }
  if (instance->state() == v1::Instance::ERROR) return ask("the VM is listed in a failure state");
  bool maybe = false;
  switch (vm->target()) {
    case VM_TARGET_RUNNING:
      maybe = instance->state() == v1::Instance::RUNNING;
      break;
    case VM_TARGET_POWEROFF:
    case VM_TARGET_HOLD:
    case VM_TARGET_STOPPED:
    case VM_TARGET_UNDEPLOYED:
      maybe = instance->state() == v1::Instance::STOPPED;
      break;
    case VM_TARGET_SUSPENDED:
      maybe = instance->state() == v1::Instance::SUSPENDED;
      break;
    default:
      break;
  }
  if (!maybe) return std::nullopt;
  return ask(absl::StrCat("the VM is listed ", instance->provider_state(), "; confirming"));
}

}  // namespace cloudplane::adapters::opennebula
