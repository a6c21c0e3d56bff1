// One XML-RPC call, the pools it reads and the lookups by resource id.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/kit/send.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters::opennebula {
namespace {

using xmlrpc::Value;

// Page size of one.vmpool.info in pagination mode ([api] pool info
// filtering); kit::FetchAllPages stops a pool that never ends.
constexpr int kPoolPage = 100;

// The resource id of each object: its NAME when that is a valid id and no
// lower id (the objects are sorted by id) has the same NAME, else its number.
template <typename T, typename OidOf, typename NameOf>
void AssignResourceIds(std::vector<T>& objects, OidOf oid_of, NameOf name_of) {
  std::map<std::string, int64_t> taken;
  for (T& o : objects) {
    o.resource_id = absl::StrCat(oid_of(o));
    if (IsNameId(name_of(o)) && taken.emplace(name_of(o), oid_of(o)).second) {
      o.resource_id = name_of(o);
    }
  }
}

}  // namespace

std::string ResourceName(const Account& a, absl::string_view collection, absl::string_view id) {
  return absl::StrCat("accounts/", a.id, "/", collection, "/", id);
}

void Call(const AccountPtr& a, absl::Time deadline, const std::string& method,
          std::vector<Value> params, Done<Value> done) {
  params.insert(params.begin(), Value::String(a->session));
  absl::StatusOr<std::string> body = xmlrpc::EncodeCall(method, params);
  if (!body.ok()) {
    // Only values we were given can fail to encode (invalid UTF-8 ...); the
    // message names no value.
    return done(WithErrorInfo(
        absl::InvalidArgumentError(absl::StrCat(method, ": ", body.status().message())),
        reasons::kFieldInvalid));
  }
  http::HttpRequest request;
  request.method = "POST";
  request.path_and_query = a->path;
  request.deadline = deadline;
  request.headers.emplace_back("Content-Type", "text/xml");
  request.body = *std::move(body);
  // Every XML-RPC call is a POST; the `info` calls (one.vm.info,
  // one.vmpool.infoextended, every pool) only read, so the kit may send them
  // again when they fail or their answer is garbled (kit/guard.h). Mutations
  // are sent once.
  if (absl::EndsWith(method, ".info") || absl::EndsWith(method, ".infoextended")) {
    request.idempotent = true;
    request.validate = [](const http::HttpResponse& r) {
      return xmlrpc::ParseResponse(r.body).status();
    };
  }
  kit::Send(*a->client, std::move(request), method,
            [method, done = std::move(done)](absl::StatusOr<http::HttpResponse> r) mutable {
              if (!r.ok()) return done(r.status());
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

// ---------------------------------------------------------------------------
// VMs.

void FetchVmPool(const AccountPtr& a, absl::Time deadline, Done<std::vector<PoolVm>> done,
                 bool extended) {
  // The short bodies carry only a handful of USER_TEMPLATE keys, not our
  // labels; the extended pool has full bodies.
  const std::string method = extended ? "one.vmpool.infoextended" : "one.vmpool.info";
  // The cursor is the offset of the page; a short page is the last one.
  auto fetch = [a, deadline, method](const std::string& cursor,
                                     Callback<kit::ProviderPage<PoolVm>> page) {
    int offset = 0;
    if (!cursor.empty()) (void)absl::SimpleAtoi(cursor, &offset);
    // Pagination mode (end < -1): offset and page size; state -1 = all but
    // DONE.
    CallDoc(a, deadline, method,
            {Value::Int(-2), Value::Int(offset), Value::Int(-kPoolPage), Value::Int(-1)},
            "VM_POOL",
            [offset, page = std::move(page)](absl::StatusOr<DocPtr> doc) mutable {
              if (!doc.ok()) return std::move(page)(doc.status());
              kit::ProviderPage<PoolVm> out;
              for (const xml::Node* vm : (*doc)->Root().ChildrenNamed("VM")) {
                absl::StatusOr<VmSummary> s = SummarizeVm(*vm);
                if (!s.ok()) return std::move(page)(s.status());
                out.items.push_back({*doc, vm, *s, ""});
              }
              if (out.items.size() >= static_cast<size_t>(kPoolPage)) {
                out.next = absl::StrCat(offset + kPoolPage);
              }
              std::move(page)(std::move(out));
            });
  };
  kit::FetchAllPages<PoolVm>(
      method, std::move(fetch),
      [done = std::move(done)](absl::StatusOr<std::vector<PoolVm>> vms) mutable {
        if (!vms.ok()) return done(vms.status());
        // Pages may overlap when VMs come and go between calls.
        std::sort(vms->begin(), vms->end(), [](const PoolVm& x, const PoolVm& y) {
          return x.summary.oid < y.summary.oid;
        });
        vms->erase(std::unique(vms->begin(), vms->end(),
                               [](const PoolVm& x, const PoolVm& y) {
                                 return x.summary.oid == y.summary.oid;
                               }),
                   vms->end());
        AssignResourceIds(
            *vms, [](const PoolVm& vm) { return vm.summary.oid; },
            [](const PoolVm& vm) -> const std::string& { return vm.summary.name; });
        done(*std::move(vms));
      });
}

void ReadVm(const AccountPtr& a, absl::Time deadline, int64_t oid, std::string resource_id,
            std::string resource, Done<FoundVm> done) {
  CallDoc(a, deadline, "one.vm.info", {Value::Int(oid)}, "VM",
          [resource_id, resource, done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) {
              if (doc.status().code() == absl::StatusCode::kNotFound) {
                return done(kit::NotFound("instance", resource));
              }
              return done(doc.status());
            }
            absl::StatusOr<VmSummary> s = SummarizeVm((*doc)->Root());
            if (!s.ok()) return done(s.status());
            // A DONE VM is gone for the API (oned keeps it for accounting).
            if (s->state == VmState::kDone) return done(kit::NotFound("instance", resource));
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
    done(kit::NotFound("instance", resource));
  });
}

// ---------------------------------------------------------------------------
// Images (volumes).

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
            AssignResourceIds(
                images, [](const FoundImage& i) { return i.summary.oid; },
                [](const FoundImage& i) -> const std::string& { return i.summary.name; });
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
                  return done(kit::NotFound("volume", resource));
                }
                return done(doc.status());
              }
              absl::StatusOr<ImageSummary> s = SummarizeImage((*doc)->Root());
              if (!s.ok()) return done(s.status());
              // Kernels, context files ... are images but not volumes.
              if (!IsVolumeImageType(s->type)) return done(kit::NotFound("volume", resource));
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
    done(kit::NotFound("volume", resource));
  });
}

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
// Security groups.

void FetchGroups(const AccountPtr& a, absl::Time deadline, Done<std::vector<FoundGroup>> done) {
  CallDoc(a, deadline, "one.secgrouppool.info", {Value::Int(-2), Value::Int(-1), Value::Int(-1)},
          "SECURITY_GROUP_POOL",
          [a, done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
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

void FindGroup(const AccountPtr& a, absl::Time deadline, std::string resource,
               Done<FoundGroup> done) {
  FetchGroups(a, deadline, [a, resource, done = std::move(done)](
                               absl::StatusOr<std::vector<FoundGroup>> all) mutable {
    if (!all.ok()) return done(all.status());
    for (FoundGroup& g : *all) {
      if (g.firewall.name() == resource ||
          ResourceName(*a, "firewalls", absl::StrCat(g.oid)) == resource) {
        return done(std::move(g));
      }
    }
    done(kit::NotFound("firewall", resource));
  });
}

// ---------------------------------------------------------------------------
// Virtual networks.

void FetchVnets(const AccountPtr& a, absl::Time deadline, Done<std::vector<FoundVnet>> done) {
  CallDoc(a, deadline, "one.vnpool.info", {Value::Int(-2), Value::Int(-1), Value::Int(-1)},
          "VNET_POOL", [a, done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) return done(doc.status());
            std::vector<FoundVnet> out;
            std::map<std::string, int> taken;
            for (const xml::Node* n : (*doc)->Root().ChildrenNamed("VNET")) {
              FoundVnet v;
              (void)absl::SimpleAtoi(n->ChildText("ID"), &v.oid);
              v.resource_id = ResourceId(v.oid, n->ChildText("NAME"));
              if (IsNameId(v.resource_id) && !taken.emplace(v.resource_id, 1).second) {
                v.resource_id = absl::StrCat(v.oid);
              }
              auto net = NetworkFromVnet(*n, a->id, v.resource_id);
              if (!net.ok()) return done(net.status());
              v.network = *std::move(net);
              v.operation = SingleAttributes(n->Child("TEMPLATE"))[kOperationTag];
              out.push_back(std::move(v));
            }
            std::sort(out.begin(), out.end(),
                      [](const FoundVnet& x, const FoundVnet& y) { return x.oid < y.oid; });
            done(std::move(out));
          });
}

void FindVnet(const AccountPtr& a, absl::Time deadline, std::string resource,
              Done<FoundVnet> done) {
  FetchVnets(a, deadline, [a, resource, done = std::move(done)](
                              absl::StatusOr<std::vector<FoundVnet>> all) mutable {
    if (!all.ok()) return done(all.status());
    for (FoundVnet& v : *all) {
      if (v.network.name() == resource ||
          ResourceName(*a, "networks", absl::StrCat(v.oid)) == resource) {
        return done(std::move(v));
      }
    }
    done(kit::NotFound("network", resource));
  });
}

}  // namespace cloudplane::adapters::opennebula
