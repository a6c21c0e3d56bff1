// Instances (VMs) and their metadata (the USER_TEMPLATE).
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::opennebula {
namespace {

using xmlrpc::Value;

// Runs `steps` one after another; the first error stops the chain.
using Step = absl::AnyInvocable<void(Done<Value>)>;
void RunSteps(std::shared_ptr<std::vector<Step>> steps, size_t i, Done<bool> done) {
  if (i == steps->size()) return done(true);
  (*steps)[i]([steps, i, done = std::move(done)](absl::StatusOr<Value> v) mutable {
    if (!v.ok()) return done(v.status());
    RunSteps(std::move(steps), i + 1, std::move(done));
  });
}

// A create's failure from oned, as the caller's error where it is one.
absl::Status CreateError(const absl::Status& s, bool raw_template) {
  auto info = GetErrorInfo(s);
  std::map<std::string, std::string> metadata;
  if (info.has_value()) metadata.insert(info->metadata().begin(), info->metadata().end());
  if (!raw_template && s.code() == absl::StatusCode::kNotFound) {
    return WithErrorInfo(InvalidField("instance.image", s.message()), reasons::kFieldInvalid,
                         metadata);
  }
  // one.vm.allocate reports every template problem (syntax, CPU/MEMORY
  // values, names) as INTERNAL ([oned] RequestManagerAllocate.cc); they are
  // the caller's template. (0x2000 INTERNAL and 0x4000 ALLOCATE, as
  // StatusFromOneError records them in providerCode.)
  const std::string code = metadata.contains("providerCode") ? metadata["providerCode"] : "";
  if (raw_template && (code == "8192" || code == "16384")) {
    return WithErrorInfo(InvalidField("instance.provider_options.template", s.message()),
                         reasons::kFieldInvalid, metadata);
  }
  return s;
}

absl::Status AlreadyExists(const std::string& resource) {
  return WithErrorInfo(absl::AlreadyExistsError(absl::StrCat("instance ", resource,
                                                             " already exists")),
                       reasons::kResourceAlreadyExists, {{"resource", resource}});
}

// The CLOUDPLANE_OPERATION tag of a VM document: oned keeps an attribute it
// does not know in USER_TEMPLATE ([template]); TEMPLATE is read too, in case
// a version files it there.
std::string OperationOf(const xml::Node& vm) {
  for (const char* section : {"USER_TEMPLATE", "TEMPLATE"}) {
    std::string op = SingleAttributes(vm.Child(section))[kOperationTag];
    if (!op.empty()) return op;
  }
  return "";
}

v1::InstanceMetadata Metadata(const FoundVm& vm) {
  v1::InstanceMetadata m;
  for (auto& [k, v] : SingleAttributes(vm.doc->Root().Child("USER_TEMPLATE"))) {
    if (absl::StartsWith(k, "CLOUDPLANE_")) continue;
    (*m.mutable_items())[k] = v;
  }
  return m;
}

// Re-reads VM `oid` and answers it as the finished Instance (its resource id
// follows a new NAME).
void FinishWithVm(const AccountPtr& a, absl::Time deadline, int64_t oid,
                  const std::string& resource, Done<MutationProgress> done) {
  ReadVm(a, deadline, oid, "", resource,
         [a, done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return done(vm.status());
           absl::StatusOr<v1::Instance> i = InstanceFromVm(vm->doc->Root(), a->id, vm->resource_id);
           if (!i.ok()) return done(i.status());
           done(kit::Finished(*i));
         });
}

// `text` and, for key_name or user_data, the CONTEXT line (ContextTemplate)
// with the key `key_id`'s line (looked up) and the user data.
void AddContext(const AccountPtr& a, absl::Time deadline, const v1::Instance& in,
                const std::string& key_id, std::string text, Done<std::string> done) {
  if (key_id.empty()) {
    if (in.user_data().empty()) return done(std::move(text));
    // The whole CONTEXT is replaced (instantiate's merge): the network
    // configuration and the owner's keys the stock templates ask for stay.
    absl::StatusOr<std::string> ctx = ContextTemplate("", in.user_data());
    if (!ctx.ok()) return done(ctx.status());
    return done(text + *ctx);
  }
  FindKey(a, deadline, key_id, ResourceName(*a, "keyPairs", key_id),
          [text = std::move(text), user_data = in.user_data(),
           done = std::move(done)](absl::StatusOr<SshKey> key) mutable {
            if (!key.ok()) {
              if (key.status().code() == absl::StatusCode::kNotFound) {
                return done(InvalidField("instance.key_name", key.status().message()));
              }
              return done(key.status());
            }
            absl::StatusOr<std::string> ctx = ContextTemplate(key->line, user_data);
            if (!ctx.ok()) return done(ctx.status());
            done(text + *ctx);
          });
}

// The extra-template lines for the request's NICs (each network looked up
// by its resource name: one.vnpool.info, only when there are NICs) and the
// CONTEXT (AddContext).
void ResolveOverrides(const AccountPtr& a, absl::Time deadline, const v1::Instance& in,
                      std::string key_id, Done<std::string> done) {
  if (in.network_interfaces_size() == 0) {
    return AddContext(a, deadline, in, key_id, "", std::move(done));
  }
  FetchVnets(a, deadline, [a, deadline, in, key_id, done = std::move(done)](
                              absl::StatusOr<std::vector<FoundVnet>> vnets) mutable {
    if (!vnets.ok()) return done(vnets.status());
    std::string text;
    for (int i = 0; i < in.network_interfaces_size(); ++i) {
      const v1::NetworkInterface& nic = in.network_interfaces(i);
      const std::string field = absl::StrCat("instance.network_interfaces[", i, "]");
      const FoundVnet* found = nullptr;
      for (const FoundVnet& v : *vnets) {
        if (v.network.name() == nic.network() ||
            ResourceName(*a, "networks", absl::StrCat(v.oid)) == nic.network()) {
          found = &v;
        }
      }
      if (found == nullptr) {
        return done(InvalidField(absl::StrCat(field, ".network"),
                                 absl::StrCat("no network ", nic.network())));
      }
      auto attrs = NicAttributes(nic, found->oid, field);
      if (!attrs.ok()) return done(attrs.status());
      absl::StatusOr<std::string> line = VectorTemplate("NIC", *attrs);
      if (!line.ok()) return done(line.status());
      text += *line;
    }
    AddContext(a, deadline, in, key_id, std::move(text), std::move(done));
  });
}

void LaunchInstance(const AccountPtr& a_, const CallContext& ctx,
                    const v1::CreateInstanceRequest& req, int64_t template_id, std::string text,
                    Callback<MutationProgress> done);

}  // namespace

void OpenNebulaProvider::ListInstances(const CallContext& ctx, const v1::ListInstancesRequest& req,
                                       Callback<v1::ListInstancesResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  FetchVmPool(
      a_, ctx.deadline,
      [a = a_, size = req.page_size(), token = req.page_token(),
       done = std::move(done)](absl::StatusOr<std::vector<PoolVm>> vms) mutable {
        if (!vms.ok()) return std::move(done)(vms.status());
        std::vector<v1::Instance> items;
        for (const PoolVm& vm : *vms) {
          absl::StatusOr<v1::Instance> i = InstanceFromVm(*vm.node, a->id, vm.resource_id);
          if (!i.ok()) return std::move(done)(i.status());
          items.push_back(*std::move(i));
        }
        std::move(done)(
            kit::AnswerPage<v1::ListInstancesResponse>(std::move(items), size, token));
      },
      /*extended=*/true);
}

void OpenNebulaProvider::GetInstance(const CallContext& ctx, const v1::GetInstanceRequest& req,
                                     Callback<v1::Instance> done) {
  auto id = ParseResourceName("name", a_->id, "instances", req.name());
  if (!id.ok()) return std::move(done)(id.status());
  FindVm(a_, ctx.deadline, *id, req.name(),
         [a = a_, done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return std::move(done)(vm.status());
           std::move(done)(InstanceFromVm(vm->doc->Root(), a->id, vm->resource_id));
         });
}

void OpenNebulaProvider::CreateInstance(const CallContext& ctx,
                                        const v1::CreateInstanceRequest& req,
                                        Callback<MutationProgress> done) {
  const v1::Instance& in = req.instance();
  if (!req.instance_id().empty() && !IsNameId(req.instance_id())) {
    return std::move(done)(InvalidField("instance_id", "must be [a-z][a-z0-9-]{0,62}"));
  }
  const google::protobuf::Value* raw = nullptr;
  absl::Status options;
  for (const auto& [key, value] : in.provider_options().fields()) {
    if (key == "template") {
      raw = &value;
    } else {
      AddFieldViolation(options, absl::StrCat("instance.provider_options.", key),
                        "unknown key; the OpenNebula provider reads only \"template\"");
    }
  }
  if (!options.ok()) return std::move(done)(options);
  int64_t template_id = -1;
  if (raw != nullptr) {
    if (!in.image().empty()) {
      return std::move(done)(InvalidField("instance.provider_options.template",
                                          "give either instance.image or a raw template"));
    }
  } else {
    auto image = ParseResourceName("instance.image", a_->id, "images", in.image());
    if (!image.ok() || !image->oid.has_value()) {
      return std::move(done)(InvalidField(
          "instance.image",
          "must name a VM template (accounts/<account>/images/<id>), or give a raw one in "
          "instance.provider_options.template"));
    }
    template_id = *image->oid;
  }
  std::vector<std::pair<std::string, std::string>> extra = {{kOperationTag, ctx.operation}};
  auto labels = LabelAttributes(in.labels(), "instance.labels");
  if (!labels.ok()) return std::move(done)(labels.status());
  extra.insert(extra.end(), labels->begin(), labels->end());
  std::string text;
  if (raw != nullptr) {
    if (!req.instance_id().empty()) {
      extra.insert(extra.begin(), std::make_pair(std::string("NAME"), req.instance_id()));
    }
    absl::StatusOr<std::string> t =
        VmTemplateFromOption(*raw, extra, "instance.provider_options.template");
    if (!t.ok()) return std::move(done)(t.status());
    text = *std::move(t);
  } else {
    absl::StatusOr<std::string> t = FlatTemplate(extra, "instance.labels");
    if (!t.ok()) return std::move(done)(t.status());
    text = *std::move(t);
  }
  // Overrides merged into the instantiate call's extra template, as pyone
  // users write them ([api] one.template.instantiate: a named attribute
  // replaces the template's whole): VCPU, MEMORY (MiB), the NICs (all of
  // them: given interfaces replace the template's), and a CONTEXT carrying
  // the key and the user data. A raw template (allocate) says all that
  // itself.
  const bool overrides = in.cpu_count() != 0 || in.memory_bytes() != 0 ||
                         in.network_interfaces_size() > 0 || !in.key_name().empty() ||
                         !in.user_data().empty();
  if (raw != nullptr && overrides) {
    for (const char* f :
         {"cpu_count", "memory_bytes", "network_interfaces", "key_name", "user_data"}) {
      const bool set = (std::string(f) == "cpu_count" && in.cpu_count() != 0) ||
                       (std::string(f) == "memory_bytes" && in.memory_bytes() != 0) ||
                       (std::string(f) == "network_interfaces" &&
                        in.network_interfaces_size() > 0) ||
                       (std::string(f) == "key_name" && !in.key_name().empty()) ||
                       (std::string(f) == "user_data" && !in.user_data().empty());
      if (set) {
        AddFieldViolation(options, absl::StrCat("instance.", f),
                          "give it inside instance.provider_options.template");
      }
    }
    return std::move(done)(options);
  }
  std::vector<std::pair<std::string, std::string>> sizes;
  if (in.cpu_count() < 0) AddFieldViolation(options, "instance.cpu_count", "must be positive");
  if (in.cpu_count() > 0) sizes.emplace_back("VCPU", absl::StrCat(in.cpu_count()));
  if (in.memory_bytes() < 0 || in.memory_bytes() % (int64_t{1} << 20) != 0) {
    AddFieldViolation(options, "instance.memory_bytes",
                      "must be a positive number of whole MiB (OpenNebula's MEMORY unit)");
  } else if (in.memory_bytes() > 0) {
    sizes.emplace_back("MEMORY", absl::StrCat(in.memory_bytes() >> 20));
  }
  std::vector<std::string> nic_networks;
  for (int i = 0; i < in.network_interfaces_size(); ++i) {
    const v1::NetworkInterface& nic = in.network_interfaces(i);
    const std::string field = absl::StrCat("instance.network_interfaces[", i, "]");
    if (auto net = ParseResourceName(absl::StrCat(field, ".network"), a_->id, "networks",
                                     nic.network());
        !net.ok()) {
      AddFieldViolation(options, absl::StrCat(field, ".network"), net.status().message());
    }
    if (auto attrs = NicAttributes(nic, 0, field); !attrs.ok()) {
      const auto bad = GetBadRequest(attrs.status());
      if (!bad.has_value()) return std::move(done)(attrs.status());
      for (const auto& v : bad->field_violations()) {
        AddFieldViolation(options, v.field(), v.description());
      }
    }
    nic_networks.push_back(nic.network());
  }
  std::string key_id;
  if (!in.key_name().empty()) {
    auto k = KeyIdOf(a_->id, in.key_name(), "instance.key_name");
    if (!k.ok()) return std::move(done)(k.status());
    key_id = *k;
  }
  if (!options.ok()) return std::move(done)(options);
  if (!sizes.empty()) {
    absl::StatusOr<std::string> t = FlatTemplate(sizes, "instance");
    if (!t.ok()) return std::move(done)(t.status());
    text += *t;
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  if (!nic_networks.empty() || !key_id.empty() || !in.user_data().empty()) {
    // The networks' ids and the key's line first; then the create as below.
    return ResolveOverrides(
        a_, ctx.deadline, in, key_id,
        [a = a_, ctx, req, text, done = std::move(done)](
            absl::StatusOr<std::string> more) mutable {
          if (!more.ok()) return std::move(done)(more.status());
          LaunchInstance(a, ctx, req, -1, text + *more, std::move(done));
        });
  }
  LaunchInstance(a_, ctx, req, template_id, std::move(text), std::move(done));
}

namespace {

// CreateInstance's launch once the extra template `text` is complete;
// template_id < 0 with an image: parsed again (after the overrides).
void LaunchInstance(const AccountPtr& a_, const CallContext& ctx,
                    const v1::CreateInstanceRequest& req, int64_t template_id, std::string text,
                    Callback<MutationProgress> done) {
  if (template_id < 0 && !req.instance().image().empty()) {
    // Called back after the overrides were resolved: the image again.
    template_id = *ParseResourceName("instance.image", a_->id, "images", req.instance().image())
                       ->oid;
  }
  const bool start = !req.has_start() || req.start();
  const VmTarget target = start ? VM_TARGET_RUNNING : VM_TARGET_HOLD;
  // one.template.instantiate of a VM template, or one.vm.allocate of the
  // raw one; hold=true leaves the VM in HOLD (start=false).
  auto launch = [a = a_, deadline = ctx.deadline, template_id, name = req.instance_id(), start,
                 target, text](Done<MutationProgress> done) mutable {
    const bool raw_template = template_id < 0;
    const std::string method = raw_template ? "one.vm.allocate" : "one.template.instantiate";
    std::vector<Value> params =
        raw_template ? std::vector<Value>{Value::String(text), Value::Bool(!start)}
                     : std::vector<Value>{Value::Int(template_id), Value::String(name),
                                          Value::Bool(!start), Value::String(text),
                                          Value::Bool(false)};
    Call(a, deadline, method, std::move(params),
         [name, target, method, raw_template,
          done = std::move(done)](absl::StatusOr<Value> v) mutable {
           if (!v.ok()) return done(CreateError(v.status(), raw_template));
           absl::StatusOr<int64_t> oid = IntResult(*v, method);
           if (!oid.ok()) return done(oid.status());
           // Without an instance_id the name is oned's (`<template>-<id>`
           // or the template's NAME); each poll derives the id from it.
           done(VmProgress(*oid, name, target, raw_template ? "allocated" : "instantiated"));
         });
  };
  if (req.instance_id().empty() && ctx.operation.empty()) return launch(Wrap(std::move(done)));
  // Before anything is created: a VM this operation made already (a re-drive
  // after a crash or a lost answer) is resumed, found by the
  // CLOUDPLANE_OPERATION attribute the launch wrote into its template; then
  // the NAME must be free. The extended pool, because the short bodies carry
  // only a few USER_TEMPLATE keys ([api] one.vmpool.info).
  FetchVmPool(
      a_, ctx.deadline,
      [a = a_, rid = req.instance_id(), op = ctx.operation, target, launch = std::move(launch),
       done = Wrap(std::move(done))](absl::StatusOr<std::vector<PoolVm>> vms) mutable {
        if (!vms.ok()) return done(vms.status());
        if (!op.empty()) {
          for (const PoolVm& vm : *vms) {
            if (OperationOf(*vm.node) != op) continue;
            return done(VmProgress(vm.summary.oid, rid, target,
                                   absl::StrCat("resumed VM ", vm.summary.oid,
                                                " that this operation created")));
          }
        }
        if (!rid.empty()) {
          for (const PoolVm& vm : *vms) {
            if (vm.summary.name == rid) {
              return done(AlreadyExists(ResourceName(*a, "instances", rid)));
            }
          }
        }
        launch(std::move(done));
      },
      /*extended=*/true);
}

}  // namespace

void OpenNebulaProvider::UpdateInstance(const CallContext& ctx,
                                        const v1::UpdateInstanceRequest& req,
                                        Callback<MutationProgress> done) {
  const v1::Instance& in = req.instance();
  auto id = ParseResourceName("instance.name", a_->id, "instances", in.name());
  if (!id.ok()) return std::move(done)(id.status());
  absl::Status status;
  bool rename = false, relabel = false;
  std::vector<std::pair<std::string, std::string>> resize, labels;
  if (req.update_mask().paths().empty()) {
    AddFieldViolation(status, "update_mask", "names no field");
  }
  for (const std::string& path : req.update_mask().paths()) {
    if (path == "display_name") {
      if (absl::Status s = CheckVmName(in.display_name(), "instance.display_name"); !s.ok()) {
        AddFieldViolation(status, "instance.display_name", s.message());
      }
      rename = true;
    } else if (path == "cpu_count") {
      if (in.cpu_count() <= 0) {
        AddFieldViolation(status, "instance.cpu_count", "must be positive");
      }
      resize.emplace_back("VCPU", absl::StrCat(in.cpu_count()));
    } else if (path == "memory_bytes") {
      if (in.memory_bytes() <= 0 || in.memory_bytes() % (int64_t{1} << 20) != 0) {
        AddFieldViolation(status, "instance.memory_bytes",
                          "must be a positive number of whole MiB (OpenNebula's MEMORY unit)");
      }
      resize.emplace_back("MEMORY", absl::StrCat(in.memory_bytes() >> 20));
    } else if (path == "labels") {
      auto attrs = LabelAttributes(in.labels(), "instance.labels");
      if (!attrs.ok()) {
        // Keep the BadRequest alive while its violations are read.
        const auto bad = GetBadRequest(attrs.status());
        if (!bad.has_value()) return std::move(done)(attrs.status());
        for (const auto& v : bad->field_violations()) {
          AddFieldViolation(status, v.field(), v.description());
        }
      } else {
        labels = *std::move(attrs);
      }
      relabel = true;
    } else {
      AddFieldViolation(status, "update_mask",
                        absl::StrCat("\"", path,
                                     "\" cannot be updated (display_name, cpu_count, "
                                     "memory_bytes, labels)"));
    }
  }
  if (!status.ok()) return std::move(done)(status);
  std::string resize_text;
  if (!resize.empty()) {
    absl::StatusOr<std::string> t = FlatTemplate(resize, "instance");
    if (!t.ok()) return std::move(done)(t.status());
    resize_text = *std::move(t);
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  FindVm(a_, ctx.deadline, *id, in.name(),
         [a = a_, deadline = ctx.deadline, name = in.display_name(), rename, relabel,
          resize_text, labels, resource = in.name(),
          done = Wrap(std::move(done))](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return done(vm.status());
           const int64_t oid = vm->summary.oid;
           // oned resizes a stopped VM in place; a running one would need
           // a hotplug resize (6.0+) that not every hypervisor does.
           if (!resize_text.empty() && vm->summary.state != VmState::kPoweroff &&
               vm->summary.state != VmState::kUndeployed) {
             const std::string now = ProviderState(vm->summary.state, vm->summary.lcm_state);
             return done(kit::WrongState(
                 absl::StrCat("instance ", resource,
                              " must be powered off (POWEROFF or UNDEPLOYED) to change "
                              "cpu_count or memory_bytes; it is ",
                              now),
                 resource, now));
           }
           auto steps = std::make_shared<std::vector<Step>>();
           if (!resize_text.empty()) {
             steps->push_back([a, deadline, oid, resize_text](Done<Value> next) mutable {
               Call(a, deadline, "one.vm.resize",
                    {Value::Int(oid), Value::String(resize_text), Value::Bool(false)},
                    std::move(next));
             });
           }
           if (rename && name != vm->summary.name) {
             steps->push_back([a, deadline, oid, name](Done<Value> next) mutable {
               Call(a, deadline, "one.vm.rename", {Value::Int(oid), Value::String(name)},
                    std::move(next));
             });
           }
           if (relabel) {
             // Merge ([api] one.vm.update): each name given replaces that
             // attribute, and X=[] deletes X, so labels left out are removed.
             std::string text;
             std::set<std::string> keep;
             for (const auto& [k, v] : labels) keep.insert(k);
             for (const auto& [k, v] : SingleAttributes(vm->doc->Root().Child("USER_TEMPLATE"))) {
               if (absl::StartsWith(k, kLabelPrefix) && keep.count(k) == 0 && IsTemplateName(k)) {
                 absl::StrAppend(&text, k, "=[]\n");
               }
             }
             absl::StatusOr<std::string> set = FlatTemplate(labels, "instance.labels");
             if (!set.ok()) return done(set.status());
             absl::StrAppend(&text, *set);
             if (!text.empty()) {
               steps->push_back([a, deadline, oid, text](Done<Value> next) mutable {
                 Call(a, deadline, "one.vm.update",
                      {Value::Int(oid), Value::String(text), Value::Int(1)}, std::move(next));
               });
             }
           }
           auto finish = [a, deadline, oid, resource,
                          done = std::move(done)](absl::StatusOr<bool> ok) mutable {
             if (!ok.ok()) return done(ok.status());
             FinishWithVm(a, deadline, oid, resource, std::move(done));
           };
           if (!rename || !IsNameId(name) || name == vm->summary.name) {
             return RunSteps(std::move(steps), 0, std::move(finish));
           }
           // A NAME is the instance's id: refuse one another live VM has.
           FetchVmPool(a, deadline,
                       [a, oid, name, steps = std::move(steps), finish = std::move(finish)](
                           absl::StatusOr<std::vector<PoolVm>> vms) mutable {
                         if (!vms.ok()) return finish(vms.status());
                         for (const PoolVm& other : *vms) {
                           if (other.summary.oid != oid && other.summary.name == name) {
                             return finish(AlreadyExists(ResourceName(*a, "instances", name)));
                           }
                         }
                         RunSteps(std::move(steps), 0, std::move(finish));
                       });
         });
}

void OpenNebulaProvider::DeleteInstance(const CallContext& ctx,
                                        const v1::DeleteInstanceRequest& req,
                                        Callback<MutationProgress> done) {
  auto action = ActionOption(req.provider_options(), {"terminate-hard", "terminate"});
  if (!action.ok()) return std::move(done)(action.status());
  const std::string chosen = action->empty() ? "terminate-hard" : *action;
  Action(ctx, req.name(), req.allow_missing(),
         [chosen](const VmSummary&) -> ActionPlan { return {chosen, VM_TARGET_DONE}; },
         std::move(done), /*empty_result=*/true);
}

void OpenNebulaProvider::StartInstance(const CallContext& ctx,
                                       const v1::StartInstanceRequest& req,
                                       Callback<MutationProgress> done) {
  auto action = ActionOption(req.provider_options(), {"resume", "release"});
  if (!action.ok()) return std::move(done)(action.status());
  Action(ctx, req.name(), false,
         [chosen = *action](const VmSummary& s) -> ActionPlan {
           // Without an explicit action a VM on HOLD is released.
           if (chosen.empty()) {
             return {s.state == VmState::kHold ? "release" : "resume", VM_TARGET_RUNNING};
           }
           return {chosen, VM_TARGET_RUNNING};
         },
         std::move(done), false);
}

void OpenNebulaProvider::StopInstance(const CallContext& ctx, const v1::StopInstanceRequest& req,
                                      Callback<MutationProgress> done) {
  auto action = ActionOption(req.provider_options(), {"poweroff", "poweroff-hard", "suspend",
                                                      "undeploy", "undeploy-hard", "stop", "hold"});
  if (!action.ok()) return std::move(done)(action.status());
  std::string chosen = action->empty() ? "poweroff" : *action;
  if (req.force()) {
    if (chosen == "poweroff" || chosen == "undeploy") {
      chosen += "-hard";
    } else if (!absl::EndsWith(chosen, "-hard")) {
      return std::move(done)(InvalidField(
          "force", absl::StrCat("the OpenNebula action \"", chosen, "\" has no hard variant")));
    }
  }
  const VmTarget target = absl::StartsWith(chosen, "poweroff")   ? VM_TARGET_POWEROFF
                          : absl::StartsWith(chosen, "undeploy") ? VM_TARGET_UNDEPLOYED
                          : chosen == "suspend"                  ? VM_TARGET_SUSPENDED
                          : chosen == "stop"                     ? VM_TARGET_STOPPED
                                                                 : VM_TARGET_HOLD;
  Action(ctx, req.name(), false,
         [chosen, target](const VmSummary&) -> ActionPlan { return {chosen, target}; },
         std::move(done), false);
}

void OpenNebulaProvider::RebootInstance(const CallContext& ctx,
                                        const v1::RebootInstanceRequest& req,
                                        Callback<MutationProgress> done) {
  auto action = ActionOption(req.provider_options(), {"reboot", "reboot-hard", "resched"});
  if (!action.ok()) return std::move(done)(action.status());
  std::string chosen = action->empty() ? "reboot" : *action;
  if (req.force()) {
    if (chosen == "resched") {
      return std::move(done)(
          InvalidField("force", "the OpenNebula action \"resched\" has no hard variant"));
    }
    chosen = "reboot-hard";
  }
  Action(ctx, req.name(), false,
         [chosen](const VmSummary& s) -> ActionPlan {
           // resched only flags the VM for the scheduler ([api]
           // one.vm.action), which may also be powered off; the VM stays as
           // it is.
           if (chosen == "resched") {
             return {chosen,
                     s.state == VmState::kPoweroff ? VM_TARGET_POWEROFF : VM_TARGET_RUNNING};
           }
           return {chosen, VM_TARGET_RUNNING};
         },
         std::move(done), false);
}

// Start/Stop/Reboot/Delete: find the VM, pick the action (and the state that
// ends the operation) from its state, send it, then poll.
void OpenNebulaProvider::Action(const CallContext& ctx, const std::string& name,
                                bool allow_missing, ChooseAction choose,
                                Callback<MutationProgress> cb, bool empty_result) {
  auto id = ParseResourceName("name", a_->id, "instances", name);
  if (!id.ok()) return std::move(cb)(id.status());
  // The action depends on the VM's state, which is provider I/O: validation
  // stops at the request.
  if (ctx.validate_only) {
    return empty_result ? std::move(cb)(kit::Finished(google::protobuf::Empty()))
                        : std::move(cb)(kit::Finished(v1::Instance()));
  }
  FindVm(a_, ctx.deadline, *id, name,
         [a = a_, deadline = ctx.deadline, allow_missing, choose = std::move(choose),
          done = Wrap(std::move(cb))](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) {
             if (allow_missing && vm.status().code() == absl::StatusCode::kNotFound) {
               return done(kit::Finished(google::protobuf::Empty()));
             }
             return done(vm.status());
           }
           ActionPlan plan = choose(vm->summary);
           // oned refuses an action the VM's state does not allow with
           // ACTION (FAILED_PRECONDITION), naming the state ([api]
           // one.vm.action).
           Call(a, deadline, "one.vm.action",
                {Value::String(plan.action), Value::Int(vm->summary.oid)},
                [oid = vm->summary.oid, rid = vm->resource_id, target = plan.target,
                 action = plan.action, done = std::move(done)](absl::StatusOr<Value> v) mutable {
                  if (!v.ok()) return done(v.status());
                  done(VmProgress(oid, rid, target, absl::StrCat(action, " accepted")));
                });
         });
}

void OpenNebulaProvider::GetInstanceMetadata(const CallContext& ctx,
                                             const v1::GetInstanceMetadataRequest& req,
                                             Callback<v1::InstanceMetadata> done) {
  const std::string instance = absl::StrCat(absl::StripSuffix(req.name(), "/metadata"));
  auto id = ParseResourceName("name", a_->id, "instances", instance);
  if (!id.ok() || !absl::EndsWith(req.name(), "/metadata")) {
    return std::move(done)(InvalidField("name", "must be accounts/<a>/instances/<id>/metadata"));
  }
  FindVm(a_, ctx.deadline, *id, instance,
         [done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return std::move(done)(vm.status());
           std::move(done)(Metadata(*vm));
         });
}

void OpenNebulaProvider::UpdateInstanceMetadata(const CallContext& ctx,
                                                const v1::UpdateInstanceMetadataRequest& req,
                                                Callback<MutationProgress> done) {
  const std::string instance =
      absl::StrCat(absl::StripSuffix(req.metadata().name(), "/metadata"));
  auto id = ParseResourceName("metadata.name", a_->id, "instances", instance);
  if (!id.ok() || !absl::EndsWith(req.metadata().name(), "/metadata")) {
    return std::move(done)(
        InvalidField("metadata.name", "must be accounts/<a>/instances/<id>/metadata"));
  }
  std::vector<std::pair<std::string, std::string>> items(req.metadata().items().begin(),
                                                         req.metadata().items().end());
  std::sort(items.begin(), items.end());
  absl::StatusOr<std::string> text = FlatTemplate(items, "metadata.items");
  if (!text.ok()) return std::move(done)(text.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::InstanceMetadata()));
  FindVm(a_, ctx.deadline, *id, instance,
         [a = a_, deadline = ctx.deadline, text = *text, merge = req.merge(), instance,
          done = Wrap(std::move(done))](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return done(vm.status());
           if (!merge) {
             // Replace rewrites the whole USER_TEMPLATE: keep what is ours
             // and not metadata (labels, the operation tag).
             std::vector<std::pair<std::string, std::string>> ours;
             for (auto& [k, v] : SingleAttributes(vm->doc->Root().Child("USER_TEMPLATE"))) {
               if (absl::StartsWith(k, "CLOUDPLANE_")) ours.emplace_back(k, v);
             }
             absl::StatusOr<std::string> kept = FlatTemplate(ours, "metadata.items");
             if (!kept.ok()) return done(kept.status());
             text += *kept;
           }
           // oned upper-cases attribute names ([template]).
           Call(a, deadline, "one.vm.update",
                {Value::Int(vm->summary.oid), Value::String(text), Value::Int(merge ? 1 : 0)},
                [a, deadline, oid = vm->summary.oid, rid = vm->resource_id, instance,
                 done = std::move(done)](absl::StatusOr<Value> v) mutable {
                  if (!v.ok()) return done(v.status());
                  ReadVm(a, deadline, oid, rid, instance,
                         [done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
                           if (!vm.ok()) return done(vm.status());
                           done(kit::Finished(Metadata(*vm)));
                         });
                });
         });
}

}  // namespace cloudplane::adapters::opennebula
