#include "adapters/opennebula/opennebula_adapter.h"

#include <algorithm>
#include <map>
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
  CallDoc(account, st->deadline, "one.vmpool.info",
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

void FetchVmPool(const AccountPtr& account, absl::Time deadline, Done<std::vector<PoolVm>> done) {
  auto st = std::make_shared<VmPoolFetch>();
  st->account = account;
  st->deadline = deadline;
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
// Operations: poll tokens `vm:<oid>:<resource id>:<target>` with target
// running | poweroff | hold | done, and `sg:<oid>:<resource id>` (unused:
// security groups are synchronous).

std::string VmToken(int64_t oid, absl::string_view rid, absl::string_view target) {
  return absl::StrCat("vm:", oid, ":", rid, ":", target);
}

bool Reached(const VmSummary& s, absl::string_view target) {
  if (target == "running") return s.state == 3 && s.lcm_state == 3;
  if (target == "poweroff") return s.state == 8;
  if (target == "hold") return s.state == 2;
  return false;
}

void PollVm(const AccountPtr& a, absl::Time deadline, int64_t oid, std::string rid,
            std::string target, Done<MutationProgress> done) {
  const std::string resource = absl::StrCat("accounts/", a->id, "/instances/", rid);
  ReadVm(a, deadline, oid, rid, resource,
         [a, oid, rid, target, resource, done = std::move(done)](
             absl::StatusOr<FoundVm> vm) mutable {
           if (target == "done") {
             if (!vm.ok() && vm.status().code() == absl::StatusCode::kNotFound) {
               return done(Finished(google::protobuf::Empty()));
             }
           }
           if (!vm.ok()) return done(vm.status());
           const v1::Instance::State state =
               InstanceState(vm->summary.state, vm->summary.lcm_state);
           if (state == v1::Instance::ERROR) {
             return done(WithErrorInfo(
                 absl::FailedPreconditionError(absl::StrCat(
                     "instance ", resource, " entered the failure state ",
                     ProviderState(vm->summary.state, vm->summary.lcm_state))),
                 "PROVIDER_FAILURE_STATE"));
           }
           if (target != "done" && Reached(vm->summary, target)) {
             absl::StatusOr<v1::Instance> instance =
                 InstanceFromVm(vm->doc->Root(), a->id, rid);
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
    if (parts.size() != 4 || parts[0] != "vm" || !absl::SimpleAtoi(parts[1], &oid)) {
      return std::move(done)(InvalidField("poll_token", "not a token of this adapter"));
    }
    PollVm(a_, ctx.deadline, oid, parts[2], parts[3], Wrap(std::move(done)));
  }

  // Instances ---------------------------------------------------------------
  void ListInstances(const CallContext& ctx, const v1::ListInstancesRequest& req,
                     Callback<v1::ListInstancesResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    FetchVmPool(a_, ctx.deadline, [a = a_, size = req.page_size(), token = req.page_token(),
                                   done = std::move(done)](
                                      absl::StatusOr<std::vector<PoolVm>> vms) mutable {
      if (!vms.ok()) return std::move(done)(vms.status());
      std::vector<v1::Instance> items;
      for (const PoolVm& vm : *vms) {
        absl::StatusOr<v1::Instance> i = InstanceFromVm(*vm.node, a->id, vm.resource_id);
        if (!i.ok()) return std::move(done)(i.status());
        items.push_back(*std::move(i));
      }
      v1::ListInstancesResponse response;
      auto page = PageByName(std::move(items), size, token, response.mutable_next_page_token());
      if (!page.ok()) return std::move(done)(page.status());
      for (v1::Instance& i : *page) *response.add_instances() = std::move(i);
      std::move(done)(std::move(response));
    });
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
    if (!in.provider_options().fields().empty()) {
      return std::move(done)(InvalidField(
          "instance.provider_options", "the OpenNebula provider takes no provider options"));
    }
    auto image = ParseResourceName("instance.image", a_->id, "images", in.image());
    if (!image.ok() || !image->oid.has_value()) {
      return std::move(done)(
          InvalidField("instance.image", "must name a VM template: accounts/<account>/images/<id>"));
    }
    std::vector<std::pair<std::string, std::string>> extra = {{kOperationTag, ctx.operation}};
    if (!in.labels().empty()) {
      std::vector<std::string> keys;
      for (const auto& [k, v] : in.labels()) keys.push_back(k);
      std::sort(keys.begin(), keys.end());
      extra.emplace_back("LABELS", absl::StrJoin(keys, ","));
    }
    absl::StatusOr<std::string> extra_text = FlatTemplate(extra, "instance.labels");
    if (!extra_text.ok()) return std::move(done)(extra_text.status());
    if (req.validate_only()) return std::move(done)(Finished(v1::Instance()));
    const bool start = !req.has_start() || req.start();
    const std::string target = start ? "running" : "hold";
    auto instantiate = [a = a_, deadline = ctx.deadline, tid = *image->oid,
                        name = req.instance_id(), start, target, extra = *extra_text](
                           Done<MutationProgress> done) mutable {
      Call(a, deadline, "one.template.instantiate",
           {Value::Int(tid), Value::String(name), Value::Bool(!start), Value::String(extra),
            Value::Bool(false)},
           [a, name, target, done = std::move(done)](absl::StatusOr<Value> v) mutable {
             if (!v.ok()) {
               if (v.status().code() == absl::StatusCode::kNotFound) {
                 absl::Status s = InvalidField("instance.image", v.status().message());
                 return done(s);
               }
               return done(v.status());
             }
             absl::StatusOr<int64_t> oid = IntResult(*v, "one.template.instantiate");
             if (!oid.ok()) return done(oid.status());
             MutationProgress p;
             const std::string rid = name.empty() ? absl::StrCat(*oid) : name;
             p.poll_token = VmToken(*oid, rid, target);
             p.provider_operation = absl::StrCat(*oid);
             p.detail = "instantiated";
             done(std::move(p));
           });
    };
    if (req.instance_id().empty()) return instantiate(Wrap(std::move(done)));
    // The NAME must be free, unless this very operation took it before.
    FetchVmPool(a_, ctx.deadline,
                [a = a_, deadline = ctx.deadline, rid = req.instance_id(), op = ctx.operation,
                 target, instantiate = std::move(instantiate),
                 done = Wrap(std::move(done))](absl::StatusOr<std::vector<PoolVm>> vms) mutable {
                  if (!vms.ok()) return done(vms.status());
                  const PoolVm* same = nullptr;
                  for (const PoolVm& vm : *vms) {
                    if (vm.summary.name == rid) {
                      same = &vm;
                      break;
                    }
                  }
                  if (same == nullptr) return instantiate(std::move(done));
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

  void DeleteInstance(const CallContext& ctx, const v1::DeleteInstanceRequest& req,
                      Callback<MutationProgress> done) override {
    Action(ctx, req.name(), req.validate_only(), req.allow_missing(),
           [](const VmSummary&, bool) -> std::pair<std::string, std::string> {
             return {"terminate-hard", "done"};
           },
           std::move(done), /*empty_result=*/true);
  }

  void StartInstance(const CallContext& ctx, const v1::StartInstanceRequest& req,
                     Callback<MutationProgress> done) override {
    Action(ctx, req.name(), req.validate_only(), false,
           [](const VmSummary& s, bool) -> std::pair<std::string, std::string> {
             return {s.state == 2 ? "release" : "resume", "running"};
           },
           std::move(done), false);
  }

  void StopInstance(const CallContext& ctx, const v1::StopInstanceRequest& req,
                    Callback<MutationProgress> done) override {
    const bool force = req.force();
    Action(ctx, req.name(), req.validate_only(), false,
           [force](const VmSummary&, bool) -> std::pair<std::string, std::string> {
             return {force ? "poweroff-hard" : "poweroff", "poweroff"};
           },
           std::move(done), false);
  }

  void RebootInstance(const CallContext& ctx, const v1::RebootInstanceRequest& req,
                      Callback<MutationProgress> done) override {
    const bool force = req.force();
    Action(ctx, req.name(), req.validate_only(), false,
           [force](const VmSummary&, bool) -> std::pair<std::string, std::string> {
             return {force ? "reboot-hard" : "reboot", "running"};
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
    FetchFirewalls(ctx.deadline, [size = req.page_size(), token = req.page_token(),
                                  done = std::move(done)](
                                     absl::StatusOr<std::vector<v1::Firewall>> all) mutable {
      if (!all.ok()) return std::move(done)(all.status());
      v1::ListFirewallsResponse r;
      auto page = PageByName(*std::move(all), size, token, r.mutable_next_page_token());
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
    FindFirewall(ctx.deadline, req.name(), std::move(done));
  }

  void ListFirewallRules(const CallContext& ctx, const v1::ListFirewallRulesRequest& req,
                         Callback<v1::ListFirewallRulesResponse> done) override {
    if (absl::Status s = CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    if (auto id = ParseResourceName("parent", a_->id, "firewalls", req.parent()); !id.ok()) {
      return std::move(done)(id.status());
    }
    FindFirewall(ctx.deadline, req.parent(),
                 [size = req.page_size(), token = req.page_token(),
                  done = std::move(done)](absl::StatusOr<v1::Firewall> fw) mutable {
                   if (!fw.ok()) return std::move(done)(fw.status());
                   std::vector<v1::FirewallRule> rules(fw->rules().begin(), fw->rules().end());
                   v1::ListFirewallRulesResponse r;
                   auto page = PageByName(std::move(rules), size, token,
                                          r.mutable_next_page_token());
                   if (!page.ok()) return std::move(done)(page.status());
                   for (auto& rule : *page) *r.add_rules() = std::move(rule);
                   std::move(done)(std::move(r));
                 });
  }

  void GetFirewallRule(const CallContext& ctx, const v1::GetFirewallRuleRequest& req,
                       Callback<v1::FirewallRule> done) override {
    const size_t cut = req.name().rfind("/rules/");
    if (cut == std::string::npos) {
      return std::move(done)(InvalidField("name", "must be .../firewalls/<id>/rules/<n>"));
    }
    FindFirewall(ctx.deadline, req.name().substr(0, cut),
                 [name = req.name(), done = std::move(done)](
                     absl::StatusOr<v1::Firewall> fw) mutable {
                   if (!fw.ok()) return std::move(done)(fw.status());
                   for (const auto& rule : fw->rules()) {
                     if (rule.name() == name) return std::move(done)(rule);
                   }
                   std::move(done)(NotFound("firewall rule", name));
                 });
  }

  void CreateFirewall(const CallContext& ctx, const v1::CreateFirewallRequest& req,
                      Callback<MutationProgress> done) override {
    if (!IsNameId(req.firewall_id())) {
      return std::move(done)(InvalidField("firewall_id", "must be [a-z][a-z0-9-]{0,62}"));
    }
    std::string text;
    std::vector<std::pair<std::string, std::string>> single = {
        {"NAME", req.firewall_id()}, {kOperationTag, ctx.operation}};
    if (!req.firewall().description().empty()) {
      single.emplace_back("DESCRIPTION", req.firewall().description());
    }
    absl::StatusOr<std::string> head = FlatTemplate(single, "firewall");
    if (!head.ok()) return std::move(done)(head.status());
    text = *head;
    for (int i = 0; i < req.firewall().rules_size(); ++i) {
      auto rule = RuleToTemplate(req.firewall().rules(i), absl::StrCat("firewall.rules[", i, "]"));
      if (!rule.ok()) return std::move(done)(rule.status());
      std::vector<std::string> parts;
      for (const auto& [k, v] : *rule) {
        parts.push_back(absl::StrCat(k, "=", *QuoteTemplateValue(v)));
      }
      absl::StrAppend(&text, "RULE=[", absl::StrJoin(parts, ","), "]\n");
    }
    if (req.validate_only()) return std::move(done)(Finished(v1::Firewall()));
    const std::string resource =
        absl::StrCat("accounts/", a_->id, "/firewalls/", req.firewall_id());
    Call(a_, ctx.deadline, "one.secgroup.allocate", {Value::String(text)},
         [this, a = a_, deadline = ctx.deadline, op = ctx.operation, resource,
          done = Wrap(std::move(done))](absl::StatusOr<Value> v) mutable {
           if (!v.ok()) {
             // A duplicate NAME: ours (a re-driven create) or someone else's.
             if (absl::StrContains(v.status().message(), "NAME is already taken")) {
               return FindFirewallDoc(
                   deadline, resource,
                   [op, resource, done = std::move(done)](
                       absl::StatusOr<std::pair<v1::Firewall, std::string>> fw) mutable {
                     if (fw.ok() && !op.empty() && fw->second == op) {
                       return done(Finished(fw->first));
                     }
                     done(WithErrorInfo(absl::AlreadyExistsError(absl::StrCat(
                                            "firewall ", resource, " already exists")),
                                        "RESOURCE_ALREADY_EXISTS", {{"resource", resource}}));
                   });
             }
             return done(v.status());
           }
           FindFirewall(deadline, resource,
                        [done = std::move(done)](absl::StatusOr<v1::Firewall> fw) mutable {
                          if (!fw.ok()) return done(fw.status());
                          done(Finished(*fw));
                        });
         });
  }

  void DeleteFirewall(const CallContext& ctx, const v1::DeleteFirewallRequest& req,
                      Callback<MutationProgress> done) override {
    if (auto id = ParseResourceName("name", a_->id, "firewalls", req.name()); !id.ok()) {
      return std::move(done)(id.status());
    }
    if (req.validate_only()) return std::move(done)(Finished(google::protobuf::Empty()));
    FindFirewallDoc(
        ctx.deadline, req.name(),
        [a = a_, deadline = ctx.deadline, allow = req.allow_missing(),
         done = Wrap(std::move(done))](
            absl::StatusOr<std::pair<v1::Firewall, std::string>> fw) mutable {
          if (!fw.ok()) {
            if (allow && fw.status().code() == absl::StatusCode::kNotFound) {
              return done(Finished(google::protobuf::Empty()));
            }
            return done(fw.status());
          }
          const int64_t oid = static_cast<int64_t>(
              fw->first.provider_details().fields().at("id").number_value());
          Call(a, deadline, "one.secgroup.delete", {Value::Int(oid)},
               [allow, done = std::move(done)](absl::StatusOr<Value> v) mutable {
                 if (v.ok() || (allow && v.status().code() == absl::StatusCode::kNotFound)) {
                   return done(Finished(google::protobuf::Empty()));
                 }
                 done(v.status());
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

  // Start/Stop/Reboot/Delete: find the VM, pick the action from its state,
  // send it, then poll for the target.
  using ChooseAction = absl::AnyInvocable<std::pair<std::string, std::string>(
      const VmSummary&, bool)>;
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
             auto [action, target] = choose(vm->summary, false);
             if (validate_only) {
               return empty_result ? done(Finished(google::protobuf::Empty()))
                                   : done(Finished(v1::Instance()));
             }
             Call(a, deadline, "one.vm.action",
                  {Value::String(action), Value::Int(vm->summary.oid)},
                  [oid = vm->summary.oid, rid = vm->resource_id, target,
                   done = std::move(done)](absl::StatusOr<Value> v) mutable {
                    if (!v.ok()) return done(v.status());
                    MutationProgress p;
                    p.poll_token = VmToken(oid, rid, target);
                    p.provider_operation = absl::StrCat(oid);
                    p.detail = "accepted";
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

  // Every security group as (Firewall, its CLOUDPLANE_OPERATION tag).
  void FetchFirewallDocs(absl::Time deadline,
                         Done<std::vector<std::pair<v1::Firewall, std::string>>> done) {
    CallDoc(a_, deadline, "one.secgrouppool.info",
            {Value::Int(-2), Value::Int(-1), Value::Int(-1)}, "SECURITY_GROUP_POOL",
            [a = a_, done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
              if (!doc.ok()) return done(doc.status());
              std::vector<std::pair<v1::Firewall, std::string>> out;
              std::map<std::string, int> taken;
              for (const xml::Node* sg : (*doc)->Root().ChildrenNamed("SECURITY_GROUP")) {
                int64_t oid = 0;
                (void)absl::SimpleAtoi(sg->ChildText("ID"), &oid);
                std::string rid = ResourceId(oid, sg->ChildText("NAME"));
                if (IsNameId(rid) && !taken.emplace(rid, 1).second) rid = absl::StrCat(oid);
                auto fw = FirewallFromSecurityGroup(*sg, a->id, rid);
                if (!fw.ok()) return done(fw.status());
                auto attrs = SingleAttributes(sg->Child("TEMPLATE"));
                out.emplace_back(*std::move(fw), attrs[kOperationTag]);
              }
              done(std::move(out));
            });
  }

  void FetchFirewalls(absl::Time deadline, Done<std::vector<v1::Firewall>> done) {
    FetchFirewallDocs(deadline, [done = std::move(done)](
                                    absl::StatusOr<std::vector<std::pair<v1::Firewall, std::string>>>
                                        all) mutable {
      if (!all.ok()) return done(all.status());
      std::vector<v1::Firewall> out;
      for (auto& [fw, tag] : *all) out.push_back(std::move(fw));
      done(std::move(out));
    });
  }

  void FindFirewallDoc(absl::Time deadline, std::string resource,
                       Done<std::pair<v1::Firewall, std::string>> done) {
    FetchFirewallDocs(deadline, [resource, done = std::move(done)](
                                    absl::StatusOr<std::vector<std::pair<v1::Firewall, std::string>>>
                                        all) mutable {
      if (!all.ok()) return done(all.status());
      for (auto& entry : *all) {
        const std::string oid_name = absl::StrCat(
            absl::StrCat(entry.first.name().substr(0, entry.first.name().rfind('/') + 1)),
            static_cast<int64_t>(entry.first.provider_details().fields().at("id").number_value()));
        if (entry.first.name() == resource || oid_name == resource) {
          return done(std::move(entry));
        }
      }
      done(NotFound("firewall", resource));
    });
  }

  template <typename Cb>
  void FindFirewall(absl::Time deadline, std::string resource, Cb done) {
    FindFirewallDoc(deadline, std::move(resource),
                    [done = std::move(done)](
                        absl::StatusOr<std::pair<v1::Firewall, std::string>> fw) mutable {
                      if (!fw.ok()) return std::move(done)(fw.status());
                      std::move(done)(std::move(fw->first));
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
  info.watch_source = "poll";
  for (absl::string_view m :
       {"ListInstances", "GetInstance", "CreateInstance", "DeleteInstance", "StartInstance",
        "StopInstance", "RebootInstance", "GetInstanceMetadata", "UpdateInstanceMetadata",
        "ListImages", "GetImage", "ListLocations", "GetLocation", "ListHosts", "GetHost"}) {
    info.supported_methods.push_back(FullMethodName("ComputeService", m));
  }
  for (absl::string_view m : {"ListFirewalls", "GetFirewall", "CreateFirewall", "DeleteFirewall",
                              "ListFirewallRules", "GetFirewallRule"}) {
    info.supported_methods.push_back(FullMethodName("FirewallsService", m));
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
