#include "adapters/opennebula/opennebula_adapter.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/paging/paging.h"
#include "adapters/common/xmlrpc/xmlrpc.h"
#include "adapters/opennebula/opennebula_wire.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::opennebula {
namespace {

using xmlrpc::Value;
using DocPtr = std::shared_ptr<const xml::Document>;

// Page size of one.vmpool.info in pagination mode (§5); a pool that never
// ends (a provider bug) stops after kMaxPages.
constexpr int kPoolPage = 100;
constexpr int kMaxPages = 10000;
// The USER_TEMPLATE / TEMPLATE attribute a create leaves on its object, so a
// re-driven create recognises its own work after a crash.
constexpr char kOperationTag[] = "CLOUDPLANE_OPERATION";

struct Account {
  std::string id;
  std::string session;  // never logged
  std::string path;     // "" or "/RPC2"
  std::unique_ptr<http::HttpClient> client;
};
using AccountPtr = std::shared_ptr<const Account>;

template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

// One XML-RPC call; `done` runs on the transport thread (or inline).
void Call(const AccountPtr& a, absl::Time deadline, const std::string& method,
          std::vector<Value> params, Done<Value> done) {
  // A call whose caller has given up must never reach oned.
  if (deadline <= absl::Now()) {
    return done(WithErrorInfo(
        absl::DeadlineExceededError(
            absl::StrCat(method, ": the deadline passed before the call was sent")),
        DefaultReason(absl::StatusCode::kDeadlineExceeded)));
  }
  params.insert(params.begin(), Value::String(a->session));
  absl::StatusOr<std::string> body = xmlrpc::EncodeCall(method, params);
  if (!body.ok()) {
    // Only values we were given can fail to encode (invalid UTF-8 ...); the
    // message names no value.
    return done(WithErrorInfo(
        absl::InvalidArgumentError(absl::StrCat(method, ": ", body.status().message())),
        "INVALID_ARGUMENT"));
  }
  http::HttpRequest request;
  request.method = "POST";
  request.path_and_query = a->path;
  request.deadline = deadline;
  request.headers.emplace_back("Content-Type", "text/xml");
  request.body = *std::move(body);
  a->client->Send(std::move(request), [method, done = std::move(done)](
                                          absl::StatusOr<http::HttpResponse> r) mutable {
    if (!r.ok()) {
      absl::Status s(r.status().code(), absl::StrCat(method, ": ", r.status().message()));
      return done(GetErrorInfo(r.status()).has_value()
                      ? r.status()
                      : WithErrorInfo(s, DefaultReason(s.code())));
    }
    done(ResultFromResponse(r->status, r->body, method));
  });
}

void CallDoc(const AccountPtr& a, absl::Time deadline, const std::string& method,
             std::vector<Value> params, std::string root, Done<DocPtr> done) {
  Call(a, deadline, method, std::move(params),
       [method, root, done = std::move(done)](absl::StatusOr<Value> v) mutable {
         if (!v.ok()) return done(v.status());
         absl::StatusOr<xml::Document> doc = ParseObjectDocument(*v, root, method);
         if (!doc.ok()) return done(doc.status());
         done(std::make_shared<const xml::Document>(*std::move(doc)));
       });
}

absl::Status NotFound(absl::string_view what, absl::string_view resource) {
  return WithErrorInfo(absl::NotFoundError(absl::StrCat(what, " ", resource, " does not exist")),
                       "RESOURCE_NOT_FOUND", {{"resource", std::string(resource)}});
}

template <typename T>
MutationProgress Finished(const T& result) {
  MutationProgress p;
  p.done = true;
  p.result.PackFrom(result);
  return p;
}

absl::Status CheckPaging(int32_t page_size, absl::string_view page_token) {
  RETURN_IF_ERROR(paging::EffectivePageSize(page_size).status());
  return paging::DecodeToken(page_token).status();
}

template <typename T>
absl::StatusOr<std::vector<T>> PageByName(std::vector<T> items, int32_t page_size,
                                          absl::string_view token, std::string* next) {
  std::sort(items.begin(), items.end(),
            [](const T& a, const T& b) { return a.name() < b.name(); });
  return paging::Paginate(std::move(items), [](const T& x) { return x.name(); }, page_size,
                          token, next);
}

// ---------------------------------------------------------------------------
// VM pool: every page, then the resource id of each VM (its NAME when that
// is a valid id and no lower id has the same NAME, else its number).

struct PoolVm {
  DocPtr doc;
  const xml::Node* node;
  VmSummary summary;
  std::string resource_id;
};

struct VmPoolFetch {
  AccountPtr account;
  absl::Time deadline;
  bool extended = false;
  std::vector<DocPtr> pages;
  Done<std::vector<PoolVm>> done;
};

void FinishPool(std::shared_ptr<VmPoolFetch> st) {
  std::vector<PoolVm> vms;
  for (const DocPtr& doc : st->pages) {
    for (const xml::Node* vm : doc->Root().ChildrenNamed("VM")) {
      absl::StatusOr<VmSummary> s = SummarizeVm(*vm);
      if (!s.ok()) return st->done(s.status());
      vms.push_back({doc, vm, *s, ""});
    }
  }
  std::sort(vms.begin(), vms.end(),
            [](const PoolVm& a, const PoolVm& b) { return a.summary.oid < b.summary.oid; });
  vms.erase(std::unique(vms.begin(), vms.end(),
                        [](const PoolVm& a, const PoolVm& b) {
                          return a.summary.oid == b.summary.oid;
                        }),
            vms.end());
  std::map<std::string, int64_t> taken;
  for (PoolVm& vm : vms) {
    vm.resource_id = absl::StrCat(vm.summary.oid);
    if (IsNameId(vm.summary.name) && taken.emplace(vm.summary.name, vm.summary.oid).second) {
      vm.resource_id = vm.summary.name;
    }
  }
  st->done(std::move(vms));
}

void FetchVmPage(std::shared_ptr<VmPoolFetch> st, int offset) {
  const AccountPtr account = st->account;
  // Pagination mode (end < -1): offset and page size; state -1 = all but DONE.
  // The extended pool has full bodies: the short ones carry only a handful of
  // USER_TEMPLATE keys (§11.2), not our labels.
  CallDoc(account, st->deadline, st->extended ? "one.vmpool.infoextended" : "one.vmpool.info",
          {Value::Int(-2), Value::Int(offset), Value::Int(-kPoolPage), Value::Int(-1)},
          "VM_POOL", [st, offset](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) return st->done(doc.status());
            const size_t n = (*doc)->Root().ChildrenNamed("VM").size();
            st->pages.push_back(*doc);
            if (n < static_cast<size_t>(kPoolPage) ||
                static_cast<int>(st->pages.size()) >= kMaxPages) {
              return FinishPool(std::move(st));
            }
            FetchVmPage(std::move(st), offset + kPoolPage);
          });
}

void FetchVmPool(const AccountPtr& account, absl::Time deadline, Done<std::vector<PoolVm>> done,
                 bool extended = false) {
  auto st = std::make_shared<VmPoolFetch>();
  st->account = account;
  st->deadline = deadline;
  st->extended = extended;
  st->done = std::move(done);
  FetchVmPage(std::move(st), 0);
}

// A VM found by resource id: its full document and resource id.
struct FoundVm {
  DocPtr doc;
  VmSummary summary;
  std::string resource_id;
};

void ReadVm(const AccountPtr& a, absl::Time deadline, int64_t oid, std::string resource_id,
            std::string resource, Done<FoundVm> done) {
  CallDoc(a, deadline, "one.vm.info", {Value::Int(oid)}, "VM",
          [resource_id, resource, done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) {
              if (doc.status().code() == absl::StatusCode::kNotFound) {
                return done(NotFound("instance", resource));
              }
              return done(doc.status());
            }
            absl::StatusOr<VmSummary> s = SummarizeVm((*doc)->Root());
            if (!s.ok()) return done(s.status());
            // A DONE VM is gone for the API (oned keeps it for accounting).
            if (s->state == 6) return done(NotFound("instance", resource));
            if (resource_id.empty()) resource_id = ResourceId(s->oid, s->name);
            done(FoundVm{*doc, *s, resource_id});
          });
}

void FindVm(const AccountPtr& a, absl::Time deadline, const IdOrName& id, std::string resource,
            Done<FoundVm> done) {
  if (id.oid.has_value()) return ReadVm(a, deadline, *id.oid, "", resource, std::move(done));
  FetchVmPool(a, deadline, [a, deadline, name = id.name, resource, done = std::move(done)](
                               absl::StatusOr<std::vector<PoolVm>> vms) mutable {
    if (!vms.ok()) return done(vms.status());
    for (const PoolVm& vm : *vms) {
      if (vm.resource_id == name) {
        return ReadVm(a, deadline, vm.summary.oid, name, resource, std::move(done));
      }
    }
    done(NotFound("instance", resource));
  });
}

// ---------------------------------------------------------------------------
// Images (volumes): every volume image with its resource id, chosen as for
// VMs.

struct FoundImage {
  DocPtr doc;
  const xml::Node* node;
  ImageSummary summary;
  std::string resource_id;
};

void FetchImages(const AccountPtr& a, absl::Time deadline, Done<std::vector<FoundImage>> done) {
  CallDoc(a, deadline, "one.imagepool.info", {Value::Int(-2), Value::Int(-1), Value::Int(-1)},
          "IMAGE_POOL", [done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) return done(doc.status());
            std::vector<FoundImage> images;
            for (const xml::Node* node : (*doc)->Root().ChildrenNamed("IMAGE")) {
              absl::StatusOr<ImageSummary> s = SummarizeImage(*node);
              if (!s.ok()) return done(s.status());
              if (!IsVolumeImageType(s->type)) continue;
              images.push_back({*doc, node, *s, ""});
            }
            std::sort(images.begin(), images.end(), [](const FoundImage& x, const FoundImage& y) {
              return x.summary.oid < y.summary.oid;
            });
            std::map<std::string, int64_t> taken;
            for (FoundImage& image : images) {
              image.resource_id = absl::StrCat(image.summary.oid);
              if (IsNameId(image.summary.name) &&
                  taken.emplace(image.summary.name, image.summary.oid).second) {
                image.resource_id = image.summary.name;
              }
            }
            done(std::move(images));
          });
}

void FindImage(const AccountPtr& a, absl::Time deadline, const IdOrName& id,
               std::string resource, Done<FoundImage> done) {
  if (id.oid.has_value()) {
    CallDoc(a, deadline, "one.image.info", {Value::Int(*id.oid)}, "IMAGE",
            [resource, done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
              if (!doc.ok()) {
                if (doc.status().code() == absl::StatusCode::kNotFound) {
                  return done(NotFound("volume", resource));
                }
                return done(doc.status());
              }
              absl::StatusOr<ImageSummary> s = SummarizeImage((*doc)->Root());
              if (!s.ok()) return done(s.status());
              // Kernels, context files ... are images but not volumes.
              if (!IsVolumeImageType(s->type)) return done(NotFound("volume", resource));
              const std::string rid = ResourceId(s->oid, s->name);
              done(FoundImage{*doc, &(*doc)->Root(), *s, rid});
            });
    return;
  }
  FetchImages(a, deadline, [name = id.name, resource, done = std::move(done)](
                               absl::StatusOr<std::vector<FoundImage>> images) mutable {
    if (!images.ok()) return done(images.status());
    for (FoundImage& image : *images) {
      if (image.resource_id == name) return done(std::move(image));
    }
    done(NotFound("volume", resource));
  });
}

// VM id -> instance resource id, for Volume.attached_to.
void FetchInstanceIds(const AccountPtr& a, absl::Time deadline,
                      Done<std::map<int64_t, std::string>> done) {
  FetchVmPool(a, deadline,
              [done = std::move(done)](absl::StatusOr<std::vector<PoolVm>> vms) mutable {
                if (!vms.ok()) return done(vms.status());
                std::map<int64_t, std::string> ids;
                for (const PoolVm& vm : *vms) ids[vm.summary.oid] = vm.resource_id;
                done(std::move(ids));
              });
}

void VolumeOf(const AccountPtr& a, absl::Time deadline, FoundImage image,
              Done<v1::Volume> done) {
  FetchInstanceIds(a, deadline, [a, image = std::move(image), done = std::move(done)](
                                    absl::StatusOr<std::map<int64_t, std::string>> ids) mutable {
    if (!ids.ok()) return done(ids.status());
    done(VolumeFromImage(*image.node, a->id, image.resource_id, *ids));
  });
}

// ---------------------------------------------------------------------------
// Operations: poll tokens
//   vm:<oid>:<instance id>:<target>   target running | poweroff | hold |
//       suspended | stopped | undeployed | done; an empty instance id is
//       derived from the VM's NAME on each poll.
//   vol:<vm oid>:<instance id>:<image oid>:<volume id>:<attach|detach>:
//       <running|poweroff>:<misses>   a disk hotplug; done when the VM is
//       back in the target state with (without) the disk.
// Security groups and updates are synchronous and have none.

std::string VmToken(int64_t oid, absl::string_view rid, absl::string_view target) {
  return absl::StrCat("vm:", oid, ":", rid, ":", target);
}

bool Reached(const VmSummary& s, absl::string_view target) {
  if (target == "running") return s.state == 3 && s.lcm_state == 3;
  if (target == "poweroff") return s.state == 8;
  if (target == "hold") return s.state == 2;
  if (target == "suspended") return s.state == 5;
  if (target == "stopped") return s.state == 4;
  if (target == "undeployed") return s.state == 9;
  return false;
}

absl::Status FailureState(const std::string& resource, const VmSummary& s) {
  return WithErrorInfo(
      absl::FailedPreconditionError(absl::StrCat("instance ", resource,
                                                 " entered the failure state ",
                                                 ProviderState(s.state, s.lcm_state))),
      "PROVIDER_FAILURE_STATE");
}

void PollVm(const AccountPtr& a, absl::Time deadline, int64_t oid, std::string rid,
            std::string target, Done<MutationProgress> done) {
  const std::string resource =
      absl::StrCat("accounts/", a->id, "/instances/", rid.empty() ? absl::StrCat(oid) : rid);
  ReadVm(a, deadline, oid, rid, resource,
         [a, oid, rid, target, resource, done = std::move(done)](
             absl::StatusOr<FoundVm> vm) mutable {
           if (target == "done") {
             if (!vm.ok() && vm.status().code() == absl::StatusCode::kNotFound) {
               return done(Finished(google::protobuf::Empty()));
             }
           }
           if (!vm.ok()) return done(vm.status());
           if (InstanceState(vm->summary.state, vm->summary.lcm_state) == v1::Instance::ERROR) {
             return done(FailureState(resource, vm->summary));
           }
           if (target != "done" && Reached(vm->summary, target)) {
             absl::StatusOr<v1::Instance> instance =
                 InstanceFromVm(vm->doc->Root(), a->id, vm->resource_id);
             if (!instance.ok()) return done(instance.status());
             return done(Finished(*instance));
           }
           MutationProgress p;
           p.poll_token = VmToken(oid, rid, target);
           p.provider_operation = absl::StrCat(oid);
           p.detail = absl::StrCat("waiting for ", target, " (now ",
                                   ProviderState(vm->summary.state, vm->summary.lcm_state), ")");
           done(std::move(p));
         });
}

struct DiskOp {
  int64_t vm_oid = 0;
  std::string vm_rid;
  int64_t image_oid = 0;
  std::string image_rid;
  std::string op;      // attach | detach
  std::string target;  // running | poweroff
  int misses = 0;
};

std::string DiskToken(const DiskOp& d) {
  return absl::StrCat("vol:", d.vm_oid, ":", d.vm_rid, ":", d.image_oid, ":", d.image_rid, ":",
                      d.op, ":", d.target, ":", d.misses);
}

// After one.vm.attach/detach returns, oned already shows the HOTPLUG state
// (§6.1), so a VM back in its state without the change means the driver
// failed and oned rolled back. HA followers may serve a stale read right
// after a write (§6.5), hence a few misses before giving up.
constexpr int kMaxHotplugMisses = 3;

void PollDisk(const AccountPtr& a, absl::Time deadline, DiskOp d, Done<MutationProgress> done) {
  const std::string resource = absl::StrCat("accounts/", a->id, "/instances/", d.vm_rid);
  ReadVm(a, deadline, d.vm_oid, d.vm_rid, resource,
         [a, deadline, d, resource, done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return done(vm.status());
           if (InstanceState(vm->summary.state, vm->summary.lcm_state) == v1::Instance::ERROR) {
             return done(FailureState(resource, vm->summary));
           }
           const bool has_disk = DiskOfImage(vm->doc->Root(), d.image_oid).has_value();
           if (Reached(vm->summary, d.target)) {
             if (has_disk == (d.op == "attach")) {
               const std::string volume =
                   absl::StrCat("accounts/", a->id, "/volumes/", d.image_rid);
               return FindImage(a, deadline, IdOrName{d.image_oid, ""}, volume,
                                [a, deadline, rid = d.image_rid, done = std::move(done)](
                                    absl::StatusOr<FoundImage> image) mutable {
                                  if (!image.ok()) return done(image.status());
                                  image->resource_id = rid;
                                  VolumeOf(a, deadline, *std::move(image),
                                           [done = std::move(done)](
                                               absl::StatusOr<v1::Volume> v) mutable {
                                             if (!v.ok()) return done(v.status());
                                             done(Finished(*v));
                                           });
                                });
             }
             if (++d.misses >= kMaxHotplugMisses) {
               return done(WithErrorInfo(
                   absl::AbortedError(absl::StrCat(
                       "OpenNebula did not ", d.op, " the disk of volume ", d.image_rid,
                       " on instance ", resource, "; see the VM's log in OpenNebula")),
                   "PROVIDER_HOTPLUG_FAILED"));
             }
           }
           MutationProgress p;
           p.poll_token = DiskToken(d);
           p.provider_operation = absl::StrCat(d.vm_oid);
           p.detail = absl::StrCat("waiting for the disk ", d.op, " (now ",
                                   ProviderState(vm->summary.state, vm->summary.lcm_state), ")");
           done(std::move(p));
         });
}

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
  const std::string reason = info.has_value() ? info->reason() : "";
  std::map<std::string, std::string> metadata;
  if (info.has_value()) metadata.insert(info->metadata().begin(), info->metadata().end());
  if (!raw_template && s.code() == absl::StatusCode::kNotFound) {
    return WithErrorInfo(InvalidField("instance.image", s.message()), "INVALID_ARGUMENT",
                         metadata);
  }
  // one.vm.allocate reports every template problem (syntax, CPU/MEMORY
  // values, names) as INTERNAL (§14.8); they are the caller's template.
  if (raw_template && (reason == "PROVIDER_INTERNAL" || reason == "PROVIDER_ALLOCATE")) {
    return WithErrorInfo(InvalidField("instance.provider_options.template", s.message()),
                         "INVALID_ARGUMENT", metadata);
  }
  return s;
}

// ---------------------------------------------------------------------------

class OpenNebulaProvider final : public Provider {
 public:
  explicit OpenNebulaProvider(AccountPtr account) : a_(std::move(account)) {}

  const ProviderInfo& Info() const override {
    static const auto* const kInfo = new ProviderInfo(OpenNebulaProviderInfo());
    return *kInfo;
  }

  void PollOperation(const CallContext& ctx, const std::string& token,
                     Callback<MutationProgress> done) override {
    std::vector<std::string> parts = absl::StrSplit(token, ':');
    int64_t oid = 0;
    if (parts.size() == 4 && parts[0] == "vm" && absl::SimpleAtoi(parts[1], &oid)) {
      return PollVm(a_, ctx.deadline, oid, parts[2], parts[3], Wrap(std::move(done)));
    }
    DiskOp d;
    if (parts.size() == 8 && parts[0] == "vol" && absl::SimpleAtoi(parts[1], &d.vm_oid) &&
        absl::SimpleAtoi(parts[3], &d.image_oid) && absl::SimpleAtoi(parts[7], &d.misses)) {
      d.vm_rid = parts[2];
      d.image_rid = parts[4];
      d.op = parts[5];
      d.target = parts[6];
      return PollDisk(a_, ctx.deadline, std::move(d), Wrap(std::move(done)));
    }
    std::move(done)(InvalidField("poll_token", "not a token of this adapter"));
  }

  // Instances ---------------------------------------------------------------
  void ListInstances(const CallContext& ctx, const v1::ListInstancesRequest& req,
                     Callback<v1::ListInstancesResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
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
          v1::ListInstancesResponse response;
          auto page =
              PageByName(std::move(items), size, token, response.mutable_next_page_token());
          if (!page.ok()) return std::move(done)(page.status());
          for (v1::Instance& i : *page) *response.add_instances() = std::move(i);
          std::move(done)(std::move(response));
        },
        /*extended=*/true);
  }

  void GetInstance(const CallContext& ctx, const v1::GetInstanceRequest& req,
                   Callback<v1::Instance> done) override {
    auto id = ParseResourceName("name", a_->id, "instances", req.name());
    if (!id.ok()) return std::move(done)(id.status());
    FindVm(a_, ctx.deadline, *id, req.name(),
           [a = a_, done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
             if (!vm.ok()) return std::move(done)(vm.status());
             std::move(done)(InstanceFromVm(vm->doc->Root(), a->id, vm->resource_id));
           });
  }

  void CreateInstance(const CallContext& ctx, const v1::CreateInstanceRequest& req,
                      Callback<MutationProgress> done) override {
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
    if (req.validate_only()) return std::move(done)(Finished(v1::Instance()));
    const bool start = !req.has_start() || req.start();
    const std::string target = start ? "running" : "hold";
    // one.template.instantiate of a VM template, or one.vm.allocate of the
    // raw one; hold=true leaves the VM in HOLD (start=false).
    auto launch = [a = a_, deadline = ctx.deadline, template_id, name = req.instance_id(), start,
                   target, text](Done<MutationProgress> done) mutable {
      const bool raw_template = template_id < 0;
      const std::string method =
          raw_template ? "one.vm.allocate" : "one.template.instantiate";
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
             MutationProgress p;
             // Without an instance_id the name is oned's (`<template>-<id>`
             // or the template's NAME); each poll derives the id from it.
             p.poll_token = VmToken(*oid, name, target);
             p.provider_operation = absl::StrCat(*oid);
             p.detail = raw_template ? "allocated" : "instantiated";
             done(std::move(p));
           });
    };
    if (req.instance_id().empty()) return launch(Wrap(std::move(done)));
    // The NAME must be free, unless this very operation took it before.
    FetchVmPool(a_, ctx.deadline,
                [a = a_, deadline = ctx.deadline, rid = req.instance_id(), op = ctx.operation,
                 target, launch = std::move(launch),
                 done = Wrap(std::move(done))](absl::StatusOr<std::vector<PoolVm>> vms) mutable {
                  if (!vms.ok()) return done(vms.status());
                  const PoolVm* same = nullptr;
                  for (const PoolVm& vm : *vms) {
                    if (vm.summary.name == rid) {
                      same = &vm;
                      break;
                    }
                  }
                  if (same == nullptr) return launch(std::move(done));
                  const std::string resource = absl::StrCat("accounts/", a->id, "/instances/", rid);
                  ReadVm(a, deadline, same->summary.oid, rid, resource,
                         [resource, rid, op, target, done = std::move(done)](
                             absl::StatusOr<FoundVm> vm) mutable {
                           if (!vm.ok()) return done(vm.status());
                           auto user = SingleAttributes(vm->doc->Root().Child("USER_TEMPLATE"));
                           if (!op.empty() && user[kOperationTag] == op) {
                             MutationProgress p;
                             p.poll_token = VmToken(vm->summary.oid, rid, target);
                             p.detail = "resumed";
                             return done(std::move(p));
                           }
                           done(WithErrorInfo(
                               absl::AlreadyExistsError(
                                   absl::StrCat("instance ", resource, " already exists")),
                               "RESOURCE_ALREADY_EXISTS", {{"resource", resource}}));
                         });
                });
  }

  void UpdateInstance(const CallContext& ctx, const v1::UpdateInstanceRequest& req,
                      Callback<MutationProgress> done) override {
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
    if (req.validate_only()) return std::move(done)(Finished(v1::Instance()));
    FindVm(a_, ctx.deadline, *id, in.name(),
           [a = a_, deadline = ctx.deadline, name = in.display_name(), rename, relabel,
            resize_text, labels, resource = in.name(),
            done = Wrap(std::move(done))](absl::StatusOr<FoundVm> vm) mutable {
             if (!vm.ok()) return done(vm.status());
             const int64_t oid = vm->summary.oid;
             // oned resizes a stopped VM in place; a running one would need
             // a hotplug resize (6.0+) that not every hypervisor does.
             if (!resize_text.empty() && vm->summary.state != 8 && vm->summary.state != 9) {
               return done(WithErrorInfo(
                   absl::FailedPreconditionError(absl::StrCat(
                       "instance ", resource,
                       " must be powered off (POWEROFF or UNDEPLOYED) to change cpu_count or "
                       "memory_bytes; it is ",
                       ProviderState(vm->summary.state, vm->summary.lcm_state))),
                   "FAILED_PRECONDITION"));
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
               // Merge (§9.4): each name given replaces that attribute, and
               // X=[] deletes X, so labels left out are removed.
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
               // Re-read: the resource id follows a new NAME.
               ReadVm(a, deadline, oid, "", resource,
                      [a, done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
                        if (!vm.ok()) return done(vm.status());
                        absl::StatusOr<v1::Instance> i =
                            InstanceFromVm(vm->doc->Root(), a->id, vm->resource_id);
                        if (!i.ok()) return done(i.status());
                        done(Finished(*i));
                      });
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
                               const std::string taken =
                                   absl::StrCat("accounts/", a->id, "/instances/", name);
                               return finish(WithErrorInfo(
                                   absl::AlreadyExistsError(
                                       absl::StrCat("instance ", taken, " already exists")),
                                   "RESOURCE_ALREADY_EXISTS", {{"resource", taken}}));
                             }
                           }
                           RunSteps(std::move(steps), 0, std::move(finish));
                         });
           });
  }

  void DeleteInstance(const CallContext& ctx, const v1::DeleteInstanceRequest& req,
                      Callback<MutationProgress> done) override {
    auto action = ActionOption(req.provider_options(), {"terminate-hard", "terminate"});
    if (!action.ok()) return std::move(done)(action.status());
    const std::string chosen = action->empty() ? "terminate-hard" : *action;
    Action(ctx, req.name(), req.validate_only(), req.allow_missing(),
           [chosen](const VmSummary&) -> ActionPlan { return {chosen, "done"}; },
           std::move(done), /*empty_result=*/true);
  }

  void StartInstance(const CallContext& ctx, const v1::StartInstanceRequest& req,
                     Callback<MutationProgress> done) override {
    auto action = ActionOption(req.provider_options(), {"resume", "release"});
    if (!action.ok()) return std::move(done)(action.status());
    Action(ctx, req.name(), req.validate_only(), false,
           [chosen = *action](const VmSummary& s) -> ActionPlan {
             // Without an explicit action a VM on HOLD is released.
             if (chosen.empty()) return {s.state == 2 ? "release" : "resume", "running"};
             return {chosen, "running"};
           },
           std::move(done), false);
  }

  void StopInstance(const CallContext& ctx, const v1::StopInstanceRequest& req,
                    Callback<MutationProgress> done) override {
    auto action = ActionOption(req.provider_options(),
                               {"poweroff", "poweroff-hard", "suspend", "undeploy",
                                "undeploy-hard", "stop", "hold"});
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
    const std::string target = absl::StartsWith(chosen, "poweroff")   ? "poweroff"
                               : absl::StartsWith(chosen, "undeploy") ? "undeployed"
                               : chosen == "suspend"                  ? "suspended"
                               : chosen == "stop"                     ? "stopped"
                                                                      : "hold";
    Action(ctx, req.name(), req.validate_only(), false,
           [chosen, target](const VmSummary&) -> ActionPlan { return {chosen, target}; },
           std::move(done), false);
  }

  void RebootInstance(const CallContext& ctx, const v1::RebootInstanceRequest& req,
                      Callback<MutationProgress> done) override {
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
    Action(ctx, req.name(), req.validate_only(), false,
           [chosen](const VmSummary& s) -> ActionPlan {
             // resched only flags the VM for the scheduler (§8), which may
             // also be powered off; the VM stays as it is.
             if (chosen == "resched") return {chosen, s.state == 8 ? "poweroff" : "running"};
             return {chosen, "running"};
           },
           std::move(done), false);
  }

  void GetInstanceMetadata(const CallContext& ctx, const v1::GetInstanceMetadataRequest& req,
                           Callback<v1::InstanceMetadata> done) override {
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

  void UpdateInstanceMetadata(const CallContext& ctx,
                              const v1::UpdateInstanceMetadataRequest& req,
                              Callback<MutationProgress> done) override {
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
    if (req.validate_only()) return std::move(done)(Finished(v1::InstanceMetadata()));
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
             // oned upper-cases attribute names (§9.1).
             Call(a, deadline, "one.vm.update",
                  {Value::Int(vm->summary.oid), Value::String(text), Value::Int(merge ? 1 : 0)},
                  [a, deadline, oid = vm->summary.oid, rid = vm->resource_id, instance,
                   done = std::move(done)](absl::StatusOr<Value> v) mutable {
                    if (!v.ok()) return done(v.status());
                    ReadVm(a, deadline, oid, rid, instance,
                           [done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
                             if (!vm.ok()) return done(vm.status());
                             done(Finished(Metadata(*vm)));
                           });
                  });
           });
  }

  // Hosts ---------------------------------------------------------------------
  void ListHosts(const CallContext& ctx, const v1::ListHostsRequest& req,
                 Callback<v1::ListHostsResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    CallDoc(a_, ctx.deadline, "one.hostpool.info", {}, "HOST_POOL",
            [a = a_, size = req.page_size(), token = req.page_token(),
             done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
              if (!doc.ok()) return std::move(done)(doc.status());
              std::vector<v1::Host> items;
              for (const xml::Node* h : (*doc)->Root().ChildrenNamed("HOST")) {
                auto host = HostFromXml(*h, a->id);
                if (!host.ok()) return std::move(done)(host.status());
                items.push_back(*std::move(host));
              }
              v1::ListHostsResponse r;
              auto page = PageByName(std::move(items), size, token, r.mutable_next_page_token());
              if (!page.ok()) return std::move(done)(page.status());
              for (auto& h : *page) *r.add_hosts() = std::move(h);
              std::move(done)(std::move(r));
            });
  }

  void GetHost(const CallContext& ctx, const v1::GetHostRequest& req,
               Callback<v1::Host> done) override {
    auto id = ParseResourceName("name", a_->id, "hosts", req.name());
    if (!id.ok() || !id->oid.has_value()) {
      return std::move(done)(InvalidField("name", "must be accounts/<a>/hosts/<host id>"));
    }
    CallDoc(a_, ctx.deadline, "one.host.info", {Value::Int(*id->oid)}, "HOST",
            [a = a_, name = req.name(), done = std::move(done)](absl::StatusOr<DocPtr> d) mutable {
              if (!d.ok()) {
                if (d.status().code() == absl::StatusCode::kNotFound) {
                  return std::move(done)(NotFound("host", name));
                }
                return std::move(done)(d.status());
              }
              std::move(done)(HostFromXml((*d)->Root(), a->id));
            });
  }

  // Images (VM templates) -------------------------------------------------------
  void ListImages(const CallContext& ctx, const v1::ListImagesRequest& req,
                  Callback<v1::ListImagesResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    CallDoc(a_, ctx.deadline, "one.templatepool.info",
            {Value::Int(-2), Value::Int(-1), Value::Int(-1)}, "VMTEMPLATE_POOL",
            [a = a_, size = req.page_size(), token = req.page_token(),
             done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
              if (!doc.ok()) return std::move(done)(doc.status());
              std::vector<v1::Image> items;
              for (const xml::Node* t : (*doc)->Root().ChildrenNamed("VMTEMPLATE")) {
                auto image = ImageFromTemplate(*t, a->id);
                if (!image.ok()) return std::move(done)(image.status());
                items.push_back(*std::move(image));
              }
              v1::ListImagesResponse r;
              auto page = PageByName(std::move(items), size, token, r.mutable_next_page_token());
              if (!page.ok()) return std::move(done)(page.status());
              for (auto& i : *page) *r.add_images() = std::move(i);
              std::move(done)(std::move(r));
            });
  }

  void GetImage(const CallContext& ctx, const v1::GetImageRequest& req,
                Callback<v1::Image> done) override {
    auto id = ParseResourceName("name", a_->id, "images", req.name());
    if (!id.ok() || !id->oid.has_value()) {
      return std::move(done)(InvalidField("name", "must be accounts/<a>/images/<template id>"));
    }
    CallDoc(a_, ctx.deadline, "one.template.info", {Value::Int(*id->oid)}, "VMTEMPLATE",
            [a = a_, name = req.name(), done = std::move(done)](absl::StatusOr<DocPtr> d) mutable {
              if (!d.ok()) {
                if (d.status().code() == absl::StatusCode::kNotFound) {
                  return std::move(done)(NotFound("image", name));
                }
                return std::move(done)(d.status());
              }
              std::move(done)(ImageFromTemplate((*d)->Root(), a->id));
            });
  }

  // Volumes (images used as VM disks) ---------------------------------------------
  void ListVolumes(const CallContext& ctx, const v1::ListVolumesRequest& req,
                   Callback<v1::ListVolumesResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
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
            v1::ListVolumesResponse r;
            auto page = PageByName(std::move(items), size, token, r.mutable_next_page_token());
            if (!page.ok()) return std::move(done)(page.status());
            for (auto& v : *page) *r.add_volumes() = std::move(v);
            std::move(done)(std::move(r));
          });
    });
  }

  void GetVolume(const CallContext& ctx, const v1::GetVolumeRequest& req,
                 Callback<v1::Volume> done) override {
    auto id = ParseResourceName("name", a_->id, "volumes", req.name());
    if (!id.ok()) return std::move(done)(id.status());
    FindImage(a_, ctx.deadline, *id, req.name(),
              [a = a_, deadline = ctx.deadline,
               done = std::move(done)](absl::StatusOr<FoundImage> image) mutable {
                if (!image.ok()) return std::move(done)(image.status());
                VolumeOf(a, deadline, *std::move(image), Wrap(std::move(done)));
              });
  }

  void AttachVolume(const CallContext& ctx, const v1::AttachVolumeRequest& req,
                    Callback<MutationProgress> done) override {
    DiskCall(ctx, req.name(), req.instance(), /*attach=*/true, req.device(), req.channel(),
             req.boot_order(), req.validate_only(), std::move(done));
  }

  void DetachVolume(const CallContext& ctx, const v1::DetachVolumeRequest& req,
                    Callback<MutationProgress> done) override {
    DiskCall(ctx, req.name(), req.instance(), /*attach=*/false, "", "", 0, req.validate_only(),
             std::move(done));
  }

  // Locations -------------------------------------------------------------------
  void ListLocations(const CallContext& ctx, const v1::ListLocationsRequest& req,
                     Callback<v1::ListLocationsResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    FetchLocations(ctx, [size = req.page_size(), token = req.page_token(),
                         done = std::move(done)](
                            absl::StatusOr<std::vector<v1::Location>> all) mutable {
      if (!all.ok()) return std::move(done)(all.status());
      v1::ListLocationsResponse r;
      auto page = PageByName(*std::move(all), size, token, r.mutable_next_page_token());
      if (!page.ok()) return std::move(done)(page.status());
      for (auto& l : *page) *r.add_locations() = std::move(l);
      std::move(done)(std::move(r));
    });
  }

  void GetLocation(const CallContext& ctx, const v1::GetLocationRequest& req,
                   Callback<v1::Location> done) override {
    FetchLocations(ctx, [name = req.name(), done = std::move(done)](
                            absl::StatusOr<std::vector<v1::Location>> all) mutable {
      if (!all.ok()) return std::move(done)(all.status());
      for (auto& l : *all) {
        if (l.name() == name) return std::move(done)(std::move(l));
      }
      std::move(done)(NotFound("location", name));
    });
  }

  // Firewalls (security groups) -------------------------------------------------
  void ListFirewalls(const CallContext& ctx, const v1::ListFirewallsRequest& req,
                     Callback<v1::ListFirewallsResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    FetchGroups(ctx.deadline, [size = req.page_size(), token = req.page_token(),
                               done = std::move(done)](
                                  absl::StatusOr<std::vector<FoundGroup>> all) mutable {
      if (!all.ok()) return std::move(done)(all.status());
      std::vector<v1::Firewall> firewalls;
      for (FoundGroup& g : *all) firewalls.push_back(std::move(g.firewall));
      v1::ListFirewallsResponse r;
      auto page = PageByName(std::move(firewalls), size, token, r.mutable_next_page_token());
      if (!page.ok()) return std::move(done)(page.status());
      for (auto& f : *page) *r.add_firewalls() = std::move(f);
      std::move(done)(std::move(r));
    });
  }

  void GetFirewall(const CallContext& ctx, const v1::GetFirewallRequest& req,
                   Callback<v1::Firewall> done) override {
    if (auto id = ParseResourceName("name", a_->id, "firewalls", req.name()); !id.ok()) {
      return std::move(done)(id.status());
    }
    FindGroup(ctx.deadline, req.name(),
              [done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
                if (!g.ok()) return std::move(done)(g.status());
                std::move(done)(std::move(g->firewall));
              });
  }

  void ListFirewallRules(const CallContext& ctx, const v1::ListFirewallRulesRequest& req,
                         Callback<v1::ListFirewallRulesResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    if (auto id = ParseResourceName("parent", a_->id, "firewalls", req.parent()); !id.ok()) {
      return std::move(done)(id.status());
    }
    FindGroup(ctx.deadline, req.parent(),
              [size = req.page_size(), token = req.page_token(),
               done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
                if (!g.ok()) return std::move(done)(g.status());
                std::vector<v1::FirewallRule> rules(g->firewall.rules().begin(),
                                                    g->firewall.rules().end());
                v1::ListFirewallRulesResponse r;
                auto page =
                    PageByName(std::move(rules), size, token, r.mutable_next_page_token());
                if (!page.ok()) return std::move(done)(page.status());
                for (auto& rule : *page) *r.add_rules() = std::move(rule);
                std::move(done)(std::move(r));
              });
  }

  void GetFirewallRule(const CallContext& ctx, const v1::GetFirewallRuleRequest& req,
                       Callback<v1::FirewallRule> done) override {
    auto name = SplitRuleName(req.name());
    if (!name.ok()) return std::move(done)(name.status());
    FindGroup(ctx.deadline, name->first,
              [rule_id = name->second, name = req.name(),
               done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
                if (!g.ok()) return std::move(done)(g.status());
                for (size_t i = 0; i < g->rules.size(); ++i) {
                  if (g->rules[i].id == rule_id) {
                    return std::move(done)(g->firewall.rules(static_cast<int>(i)));
                  }
                }
                std::move(done)(NotFound("firewall rule", name));
              });
  }

  void CreateFirewall(const CallContext& ctx, const v1::CreateFirewallRequest& req,
                      Callback<MutationProgress> done) override {
    if (!IsNameId(req.firewall_id())) {
      return std::move(done)(InvalidField("firewall_id", "must be [a-z][a-z0-9-]{0,62}"));
    }
    std::vector<std::pair<std::string, std::string>> single = {
        {"NAME", req.firewall_id()}, {kOperationTag, ctx.operation}};
    if (!req.firewall().description().empty()) {
      single.emplace_back("DESCRIPTION", req.firewall().description());
    }
    absl::StatusOr<std::string> head = FlatTemplate(single, "firewall");
    if (!head.ok()) return std::move(done)(head.status());
    std::vector<std::vector<std::pair<std::string, std::string>>> rules;
    for (int i = 0; i < req.firewall().rules_size(); ++i) {
      auto rule = RuleToTemplate(req.firewall().rules(i), absl::StrCat("firewall.rules[", i, "]"));
      if (!rule.ok()) return std::move(done)(rule.status());
      rules.push_back(*std::move(rule));
    }
    std::string text = *head;
    if (!rules.empty()) {
      absl::StatusOr<std::string> body = RuleSetTemplate(rules);
      if (!body.ok()) {
        return std::move(done)(InvalidField("firewall.rules", body.status().message()));
      }
      text += *body;
    }
    if (req.validate_only()) return std::move(done)(Finished(v1::Firewall()));
    const std::string resource =
        absl::StrCat("accounts/", a_->id, "/firewalls/", req.firewall_id());
    Call(a_, ctx.deadline, "one.secgroup.allocate", {Value::String(text)},
         [this, deadline = ctx.deadline, op = ctx.operation, resource,
          done = Wrap(std::move(done))](absl::StatusOr<Value> v) mutable {
           if (!v.ok()) {
             // A duplicate NAME: ours (a re-driven create) or someone else's.
             if (absl::StrContains(v.status().message(), "NAME is already taken")) {
               return FindGroup(deadline, resource,
                                [op, resource, done = std::move(done)](
                                    absl::StatusOr<FoundGroup> g) mutable {
                                  if (g.ok() && !op.empty() && g->operation == op) {
                                    return done(Finished(g->firewall));
                                  }
                                  done(WithErrorInfo(absl::AlreadyExistsError(absl::StrCat(
                                                         "firewall ", resource, " already exists")),
                                                     "RESOURCE_ALREADY_EXISTS",
                                                     {{"resource", resource}}));
                                });
             }
             return done(v.status());
           }
           FindGroup(deadline, resource,
                     [done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
                       if (!g.ok()) return done(g.status());
                       done(Finished(g->firewall));
                     });
         });
  }

  void DeleteFirewall(const CallContext& ctx, const v1::DeleteFirewallRequest& req,
                      Callback<MutationProgress> done) override {
    if (auto id = ParseResourceName("name", a_->id, "firewalls", req.name()); !id.ok()) {
      return std::move(done)(id.status());
    }
    if (req.validate_only()) return std::move(done)(Finished(google::protobuf::Empty()));
    FindGroup(ctx.deadline, req.name(),
              [a = a_, deadline = ctx.deadline, allow = req.allow_missing(),
               done = Wrap(std::move(done))](absl::StatusOr<FoundGroup> g) mutable {
                if (!g.ok()) {
                  if (allow && g.status().code() == absl::StatusCode::kNotFound) {
                    return done(Finished(google::protobuf::Empty()));
                  }
                  return done(g.status());
                }
                Call(a, deadline, "one.secgroup.delete", {Value::Int(g->oid)},
                     [allow, done = std::move(done)](absl::StatusOr<Value> v) mutable {
                       if (v.ok() || (allow && v.status().code() == absl::StatusCode::kNotFound)) {
                         return done(Finished(google::protobuf::Empty()));
                       }
                       done(v.status());
                     });
              });
  }

  // Rules are the group's RULE vectors: a change writes the whole set back
  // with one.secgroup.update in merge mode, which replaces every RULE and
  // keeps NAME, DESCRIPTION and the rest (§9.4). oned has no compare-and-
  // swap, so two writers racing on one group can lose a rule.
  void CreateFirewallRule(const CallContext& ctx, const v1::CreateFirewallRuleRequest& req,
                          Callback<MutationProgress> done) override {
    if (auto id = ParseResourceName("parent", a_->id, "firewalls", req.parent()); !id.ok()) {
      return std::move(done)(id.status());
    }
    auto attrs = RuleToTemplate(req.rule(), "rule");
    if (!attrs.ok()) return std::move(done)(attrs.status());
    if (req.validate_only()) return std::move(done)(Finished(v1::FirewallRule()));
    const std::string rule_id = RuleId(*attrs);
    FindGroup(
        ctx.deadline, req.parent(),
        [this, a = a_, deadline = ctx.deadline, attrs = *attrs, rule_id,
         done = Wrap(std::move(done))](absl::StatusOr<FoundGroup> g) mutable {
          if (!g.ok()) return done(g.status());
          std::vector<std::vector<std::pair<std::string, std::string>>> rules;
          for (size_t i = 0; i < g->rules.size(); ++i) {
            // The same rule again (or a re-driven create): nothing to add.
            if (g->rules[i].id == rule_id) {
              return done(Finished(g->firewall.rules(static_cast<int>(i))));
            }
            rules.push_back(g->rules[i].attrs);
          }
          rules.push_back(attrs);
          absl::StatusOr<std::string> text = RuleSetTemplate(rules);
          if (!text.ok()) return done(InvalidField("rule", text.status().message()));
          Call(a, deadline, "one.secgroup.update",
               {Value::Int(g->oid), Value::String(*text), Value::Int(1)},
               [this, deadline, group = g->firewall.name(), rule_id,
                done = std::move(done)](absl::StatusOr<Value> v) mutable {
                 if (!v.ok()) return done(v.status());
                 FindGroup(deadline, group,
                           [rule_id, done = std::move(done)](absl::StatusOr<FoundGroup> g) mutable {
                             if (!g.ok()) return done(g.status());
                             for (size_t i = 0; i < g->rules.size(); ++i) {
                               if (g->rules[i].id == rule_id) {
                                 return done(Finished(g->firewall.rules(static_cast<int>(i))));
                               }
                             }
                             done(WithErrorInfo(absl::InternalError(
                                                    "OpenNebula accepted the rule but the "
                                                    "security group does not show it"),
                                                "PROVIDER_MALFORMED_RESPONSE"));
                           });
               });
        });
  }

  void DeleteFirewallRule(const CallContext& ctx, const v1::DeleteFirewallRuleRequest& req,
                          Callback<MutationProgress> done) override {
    auto name = SplitRuleName(req.name());
    if (!name.ok()) return std::move(done)(name.status());
    if (req.validate_only()) return std::move(done)(Finished(google::protobuf::Empty()));
    FindGroup(ctx.deadline, name->first,
              [a = a_, deadline = ctx.deadline, rule_id = name->second, name = req.name(),
               allow = req.allow_missing(),
               done = Wrap(std::move(done))](absl::StatusOr<FoundGroup> g) mutable {
                if (!g.ok()) {
                  if (allow && g.status().code() == absl::StatusCode::kNotFound) {
                    return done(Finished(google::protobuf::Empty()));
                  }
                  return done(g.status());
                }
                std::vector<std::vector<std::pair<std::string, std::string>>> rules;
                bool found = false;
                for (const SgRule& rule : g->rules) {
                  if (rule.id == rule_id) {
                    found = true;
                  } else {
                    rules.push_back(rule.attrs);
                  }
                }
                if (!found) {
                  if (allow) return done(Finished(google::protobuf::Empty()));
                  return done(NotFound("firewall rule", name));
                }
                absl::StatusOr<std::string> text = RuleSetTemplate(rules);
                if (!text.ok()) return done(text.status());
                Call(a, deadline, "one.secgroup.update",
                     {Value::Int(g->oid), Value::String(*text), Value::Int(1)},
                     [done = std::move(done)](absl::StatusOr<Value> v) mutable {
                       if (!v.ok()) return done(v.status());
                       done(Finished(google::protobuf::Empty()));
                     });
              });
  }

 private:
  // Callback<T> is invoked as an rvalue; the helpers above take a plain
  // AnyInvocable.
  template <typename T>
  static Done<T> Wrap(Callback<T> cb) {
    return [cb = std::move(cb)](absl::StatusOr<T> v) mutable { std::move(cb)(std::move(v)); };
  }

  static v1::InstanceMetadata Metadata(const FoundVm& vm) {
    v1::InstanceMetadata m;
    std::map<std::string, std::string> user =
        SingleAttributes(vm.doc->Root().Child("USER_TEMPLATE"));
    for (auto& [k, v] : user) {
      if (absl::StartsWith(k, "CLOUDPLANE_")) continue;
      (*m.mutable_items())[k] = v;
    }
    return m;
  }

  // Start/Stop/Reboot/Delete: find the VM, pick the action (and the state
  // that ends the operation) from its state, send it, then poll.
  struct ActionPlan {
    std::string action;
    std::string target;
  };
  using ChooseAction = absl::AnyInvocable<ActionPlan(const VmSummary&)>;
  void Action(const CallContext& ctx, const std::string& name, bool validate_only,
              bool allow_missing, ChooseAction choose, Callback<MutationProgress> cb,
              bool empty_result) {
    auto id = ParseResourceName("name", a_->id, "instances", name);
    if (!id.ok()) return std::move(cb)(id.status());
    Done<MutationProgress> done = Wrap(std::move(cb));
    FindVm(a_, ctx.deadline, *id, name,
           [a = a_, deadline = ctx.deadline, validate_only, allow_missing,
            choose = std::move(choose), empty_result,
            done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
             if (!vm.ok()) {
               if (allow_missing && vm.status().code() == absl::StatusCode::kNotFound) {
                 return done(Finished(google::protobuf::Empty()));
               }
               return done(vm.status());
             }
             ActionPlan plan = choose(vm->summary);
             if (validate_only) {
               return empty_result ? done(Finished(google::protobuf::Empty()))
                                   : done(Finished(v1::Instance()));
             }
             // oned refuses an action the VM's state does not allow with
             // ACTION (FAILED_PRECONDITION), naming the state (§8).
             Call(a, deadline, "one.vm.action",
                  {Value::String(plan.action), Value::Int(vm->summary.oid)},
                  [oid = vm->summary.oid, rid = vm->resource_id, target = plan.target,
                   action = plan.action, done = std::move(done)](absl::StatusOr<Value> v) mutable {
                    if (!v.ok()) return done(v.status());
                    MutationProgress p;
                    p.poll_token = VmToken(oid, rid, target);
                    p.provider_operation = absl::StrCat(oid);
                    p.detail = absl::StrCat(action, " accepted");
                    done(std::move(p));
                  });
           });
  }

  void FetchLocations(const CallContext& ctx, Done<std::vector<v1::Location>> done) {
    auto all = std::make_shared<std::vector<v1::Location>>();
    CallDoc(a_, ctx.deadline, "one.zonepool.info", {}, "ZONE_POOL",
            [a = a_, deadline = ctx.deadline, all,
             done = std::move(done)](absl::StatusOr<DocPtr> zones) mutable {
              if (!zones.ok()) return done(zones.status());
              for (const xml::Node* z : (*zones)->Root().ChildrenNamed("ZONE")) {
                auto l = LocationFromZone(*z, a->id);
                if (!l.ok()) return done(l.status());
                all->push_back(*std::move(l));
              }
              CallDoc(a, deadline, "one.clusterpool.info", {}, "CLUSTER_POOL",
                      [a, deadline, all, done = std::move(done)](
                          absl::StatusOr<DocPtr> clusters) mutable {
                        if (!clusters.ok()) return done(clusters.status());
                        for (const xml::Node* c : (*clusters)->Root().ChildrenNamed("CLUSTER")) {
                          auto l = LocationFromCluster(*c, a->id);
                          if (!l.ok()) return done(l.status());
                          all->push_back(*std::move(l));
                        }
                        CallDoc(a, deadline, "one.marketpool.info", {}, "MARKETPLACE_POOL",
                                [a, all, done = std::move(done)](
                                    absl::StatusOr<DocPtr> markets) mutable {
                                  if (!markets.ok()) return done(markets.status());
                                  for (const xml::Node* m :
                                       (*markets)->Root().ChildrenNamed("MARKETPLACE")) {
                                    auto l = LocationFromMarketplace(*m, a->id);
                                    if (!l.ok()) return done(l.status());
                                    all->push_back(*std::move(l));
                                  }
                                  done(std::move(*all));
                                });
                      });
            });
  }

  // A security group: the Firewall, its CLOUDPLANE_OPERATION tag, its id
  // and its rules as OpenNebula keeps them.
  struct FoundGroup {
    v1::Firewall firewall;
    std::string operation;
    int64_t oid = 0;
    std::vector<SgRule> rules;
  };

  void FetchGroups(absl::Time deadline, Done<std::vector<FoundGroup>> done) {
    CallDoc(a_, deadline, "one.secgrouppool.info",
            {Value::Int(-2), Value::Int(-1), Value::Int(-1)}, "SECURITY_GROUP_POOL",
            [a = a_, done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
              if (!doc.ok()) return done(doc.status());
              std::vector<FoundGroup> out;
              std::map<std::string, int> taken;
              for (const xml::Node* sg : (*doc)->Root().ChildrenNamed("SECURITY_GROUP")) {
                FoundGroup g;
                (void)absl::SimpleAtoi(sg->ChildText("ID"), &g.oid);
                std::string rid = ResourceId(g.oid, sg->ChildText("NAME"));
                if (IsNameId(rid) && !taken.emplace(rid, 1).second) rid = absl::StrCat(g.oid);
                auto fw = FirewallFromSecurityGroup(*sg, a->id, rid);
                if (!fw.ok()) return done(fw.status());
                g.firewall = *std::move(fw);
                g.operation = SingleAttributes(sg->Child("TEMPLATE"))[kOperationTag];
                g.rules = SecurityGroupRules(*sg);
                out.push_back(std::move(g));
              }
              done(std::move(out));
            });
  }

  // By resource name, in either form (NAME or number).
  void FindGroup(absl::Time deadline, std::string resource, Done<FoundGroup> done) {
    FetchGroups(deadline, [a = a_, resource, done = std::move(done)](
                              absl::StatusOr<std::vector<FoundGroup>> all) mutable {
      if (!all.ok()) return done(all.status());
      const std::string by_number = absl::StrCat("accounts/", a->id, "/firewalls/");
      for (FoundGroup& g : *all) {
        if (g.firewall.name() == resource || absl::StrCat(by_number, g.oid) == resource) {
          return done(std::move(g));
        }
      }
      done(NotFound("firewall", resource));
    });
  }

  // `<firewall>/rules/<id>` -> (firewall, id); INVALID_ARGUMENT naming `name`.
  absl::StatusOr<std::pair<std::string, std::string>> SplitRuleName(const std::string& name) {
    const size_t cut = name.rfind("/rules/");
    if (cut == std::string::npos || cut + 7 == name.size() ||
        !ParseResourceName("name", a_->id, "firewalls", name.substr(0, cut)).ok()) {
      return InvalidField("name", "must be accounts/<a>/firewalls/<id>/rules/<rule>");
    }
    return std::make_pair(name.substr(0, cut), name.substr(cut + 7));
  }

  // AttachVolume / DetachVolume: find the image and the VM, then hotplug
  // the disk (one.vm.attach / one.vm.detach) and poll until the VM is back
  // in its state (RUNNING or POWEROFF) with (without) the disk. An image
  // already attached (not attached) is reported as it is, so a re-driven
  // call does not attach twice.
  void DiskCall(const CallContext& ctx, const std::string& volume, const std::string& instance,
                bool attach, const std::string& device, const std::string& channel,
                int32_t boot_order, bool validate_only, Callback<MutationProgress> cb) {
    auto image_id = ParseResourceName("name", a_->id, "volumes", volume);
    if (!image_id.ok()) return std::move(cb)(image_id.status());
    auto vm_id = ParseResourceName("instance", a_->id, "instances", instance);
    if (!vm_id.ok()) return std::move(cb)(vm_id.status());
    std::vector<std::pair<std::string, std::string>> disk;
    if (!device.empty()) {
      auto attr = DiskDeviceAttribute(device);
      if (!attr.ok()) return std::move(cb)(attr.status());
      disk.push_back(*attr);
    }
    if (!channel.empty()) {
      return std::move(cb)(InvalidField("channel", "OpenNebula chooses the bus address itself"));
    }
    if (boot_order != 0) {
      return std::move(cb)(InvalidField(
          "boot_order", "a hotplugged OpenNebula disk cannot be a boot device; leave it 0"));
    }
    if (validate_only) return std::move(cb)(Finished(v1::Volume()));
    FindImage(
        a_, ctx.deadline, *image_id, volume,
        [a = a_, deadline = ctx.deadline, vm_id = *vm_id, instance, attach, disk,
         done = Wrap(std::move(cb))](absl::StatusOr<FoundImage> image) mutable {
          if (!image.ok()) return done(image.status());
          FindVm(a, deadline, vm_id, instance,
                 [a, deadline, attach, disk, image = *std::move(image),
                  done = std::move(done)](absl::StatusOr<FoundVm> vm) mutable {
                   if (!vm.ok()) return done(vm.status());
                   std::optional<int64_t> disk_id =
                       DiskOfImage(vm->doc->Root(), image.summary.oid);
                   if (disk_id.has_value() == attach) {
                     return VolumeOf(
                         a, deadline, std::move(image),
                         [done = std::move(done)](absl::StatusOr<v1::Volume> v) mutable {
                           if (!v.ok()) return done(v.status());
                           done(Finished(*v));
                         });
                   }
                   DiskOp d;
                   d.vm_oid = vm->summary.oid;
                   d.vm_rid = vm->resource_id;
                   d.image_oid = image.summary.oid;
                   d.image_rid = image.resource_id;
                   d.op = attach ? "attach" : "detach";
                   // oned hotplugs in RUNNING and POWEROFF only (§6.1) and
                   // refuses other states with ACTION.
                   d.target = vm->summary.state == 8 ? "poweroff" : "running";
                   std::vector<Value> params = {Value::Int(d.vm_oid)};
                   if (attach) {
                     std::vector<std::pair<std::string, std::string>> attrs = {
                         {"IMAGE_ID", absl::StrCat(d.image_oid)}};
                     attrs.insert(attrs.end(), disk.begin(), disk.end());
                     absl::StatusOr<std::string> text = VectorTemplate("DISK", attrs);
                     if (!text.ok()) return done(text.status());
                     params.push_back(Value::String(*std::move(text)));
                   } else {
                     params.push_back(Value::Int(*disk_id));
                   }
                   Call(a, deadline, attach ? "one.vm.attach" : "one.vm.detach",
                        std::move(params),
                        [d, done = std::move(done)](absl::StatusOr<Value> v) mutable {
                          if (!v.ok()) return done(v.status());
                          MutationProgress p;
                          p.poll_token = DiskToken(d);
                          p.provider_operation = absl::StrCat(d.vm_oid);
                          p.detail = absl::StrCat("disk ", d.op, " accepted");
                          done(std::move(p));
                        });
                 });
        });
  }

  const AccountPtr a_;
};

}  // namespace

ProviderInfo OpenNebulaProviderInfo() {
  ProviderInfo info;
  info.kind = "opennebula";
  info.display_name = "OpenNebula";
  info.protocol = "XML-RPC over HTTP (oned 5.10-6.10)";
  info.watch_source = WatchSource::kPoll;
  for (absl::string_view m :
       {"ListInstances", "GetInstance", "CreateInstance", "UpdateInstance", "DeleteInstance",
        "StartInstance", "StopInstance", "RebootInstance", "GetInstanceMetadata",
        "UpdateInstanceMetadata", "ListImages", "GetImage", "ListLocations", "GetLocation",
        "ListHosts", "GetHost"}) {
    info.supported_methods.push_back(FullMethodName("ComputeService", m));
  }
  for (absl::string_view m : {"ListVolumes", "GetVolume", "AttachVolume", "DetachVolume"}) {
    info.supported_methods.push_back(FullMethodName("VolumesService", m));
  }
  for (absl::string_view m : {"ListFirewalls", "GetFirewall", "CreateFirewall", "DeleteFirewall",
                              "ListFirewallRules", "GetFirewallRule", "CreateFirewallRule",
                              "DeleteFirewallRule"}) {
    info.supported_methods.push_back(FullMethodName("FirewallsService", m));
  }
  // {"action": ...}: the named OpenNebula actions (opennebula_adapter.h).
  for (absl::string_view m : {"StartInstance", "StopInstance", "RebootInstance",
                              "DeleteInstance"}) {
    info.reads_provider_options.push_back(FullMethodName("ComputeService", m));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateOpenNebulaProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  absl::Status status;
  for (const auto& [key, value] : setup.options) {
    AddFieldViolation(status, absl::StrCat("options.", key),
                      "the OpenNebula provider takes no options");
  }
  if (!status.ok()) return status;
  const size_t colon = setup.secret.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == setup.secret.size()) {
    // Never echo the secret.
    return InvalidField("credentials", "must be an OpenNebula session string user:password");
  }
  absl::StatusOr<http::Endpoint> endpoint = http::ParseEndpoint(setup.endpoint);
  if (!endpoint.ok()) return InvalidField("endpoint", endpoint.status().message());
  auto account = std::make_shared<Account>();
  // oned's XML-RPC path is fixed by xmlrpc-c (§1); a bare host:port gets it.
  const size_t scheme = endpoint->base_url.find("://");
  if (scheme != std::string::npos &&
      endpoint->base_url.find('/', scheme + 3) == std::string::npos) {
    account->path = "/RPC2";
  }
  http::HttpClientOptions options;
  options.verify_tls = setup.verify_tls;
  options.ca_file = setup.ca_file;
  options.transport = std::move(transport);
  auto client = http::HttpClient::Create(*std::move(endpoint), std::move(options));
  if (!client.ok()) {
    if (client.status().code() == absl::StatusCode::kInvalidArgument) {
      return InvalidField("endpoint", client.status().message());
    }
    return client.status();
  }
  account->id = setup.account;
  account->session = setup.secret;
  account->client = *std::move(client);
  return std::make_unique<OpenNebulaProvider>(std::move(account));
}

absl::Status RegisterOpenNebula(AdapterRegistry& registry) {
  return registry.Register(OpenNebulaProviderInfo(), [](const AccountSetup& setup) {
    return CreateOpenNebulaProvider(setup);
  });
}

}  // namespace cloudplane::adapters::opennebula
