// Virtual networks (VNETs), their leases as addresses, and VM NIC hotplug.
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/net/ip.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::opennebula {
namespace {

using xmlrpc::Value;

// Every VNET with its full document (one.vn.info: the pool bodies carry no
// leases), for the addresses.
void FetchVnetDocs(const AccountPtr& a, absl::Time deadline, std::vector<FoundVnet> vnets,
                   size_t i, std::shared_ptr<std::vector<std::pair<FoundVnet, DocPtr>>> out,
                   Done<std::vector<std::pair<FoundVnet, DocPtr>>> done) {
  if (i == vnets.size()) return done(std::move(*out));
  const int64_t oid = vnets[i].oid;
  CallDoc(a, deadline, "one.vn.info", {Value::Int(oid)}, "VNET",
          [a, deadline, vnets = std::move(vnets), i, out,
           done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok() && doc.status().code() != absl::StatusCode::kNotFound) {
              return done(doc.status());
            }
            // A network deleted between the pool read and this one is gone.
            if (doc.ok()) out->emplace_back(vnets[i], *doc);
            FetchVnetDocs(a, deadline, std::move(vnets), i + 1, std::move(out), std::move(done));
          });
}

// Every lease of every network as an Address.
void FetchAddresses(const AccountPtr& a, absl::Time deadline, Done<std::vector<v1::Address>> done) {
  FetchVnets(a, deadline, [a, deadline, done = std::move(done)](
                              absl::StatusOr<std::vector<FoundVnet>> vnets) mutable {
    if (!vnets.ok()) return done(vnets.status());
    auto docs = std::make_shared<std::vector<std::pair<FoundVnet, DocPtr>>>();
    FetchVnetDocs(
        a, deadline, *std::move(vnets), 0, docs,
        [a, deadline, done = std::move(done)](
            absl::StatusOr<std::vector<std::pair<FoundVnet, DocPtr>>> docs) mutable {
          if (!docs.ok()) return done(docs.status());
          FetchInstanceIds(a, deadline,
                           [a, docs = *std::move(docs), done = std::move(done)](
                               absl::StatusOr<std::map<int64_t, std::string>> ids) mutable {
                             if (!ids.ok()) return done(ids.status());
                             std::vector<v1::Address> out;
                             for (const auto& [vnet, doc] : docs) {
                               for (const Lease& l : LeasesOfVnet(doc->Root())) {
                                 std::string instance;
                                 if (auto it = ids->find(l.vm); it != ids->end()) {
                                   instance = ResourceName(*a, "instances", it->second);
                                 }
                                 out.push_back(
                                     AddressFromLease(l, a->id, vnet.resource_id, instance));
                               }
                             }
                             std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) {
                               return x.name() < y.name();
                             });
                             done(std::move(out));
                           });
        });
  });
}

absl::Status NetworkExists(const std::string& resource) {
  return WithErrorInfo(absl::AlreadyExistsError(absl::StrCat("network ", resource,
                                                             " already exists")),
                       reasons::kResourceAlreadyExists, {{"resource", resource}});
}

// oned's allocate errors (INTERNAL) are about the template we built from
// the request; the request's network is the caller's.
absl::Status AllocateError(const absl::Status& s) {
  auto info = GetErrorInfo(s);
  std::map<std::string, std::string> metadata;
  if (info.has_value()) metadata.insert(info->metadata().begin(), info->metadata().end());
  const std::string code = metadata.contains("providerCode") ? metadata["providerCode"] : "";
  if (code == "8192" || code == "16384") {
    return WithErrorInfo(InvalidField("network", s.message()), reasons::kFieldInvalid, metadata);
  }
  return s;
}

// The VNET read again as the finished Network.
void FinishWithVnet(const AccountPtr& a, absl::Time deadline, int64_t oid,
                    Done<MutationProgress> done) {
  FetchVnets(a, deadline, [oid, done = std::move(done)](
                              absl::StatusOr<std::vector<FoundVnet>> all) mutable {
    if (!all.ok()) return done(all.status());
    for (const FoundVnet& v : *all) {
      if (v.oid == oid) return done(kit::Finished(v.network));
    }
    done(absl::UnavailableError(absl::StrCat("virtual network ", oid, " is not listed yet")));
  });
}

}  // namespace

// ---------------------------------------------------------------------------
// Networks.

void OpenNebulaProvider::ListNetworks(const CallContext& ctx, const v1::ListNetworksRequest& req,
                                      Callback<v1::ListNetworksResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  FetchVnets(a_, ctx.deadline,
             [size = req.page_size(), token = req.page_token(),
              done = std::move(done)](absl::StatusOr<std::vector<FoundVnet>> all) mutable {
               if (!all.ok()) return std::move(done)(all.status());
               std::vector<v1::Network> items;
               for (FoundVnet& v : *all) items.push_back(std::move(v.network));
               std::move(done)(
                   kit::AnswerPage<v1::ListNetworksResponse>(std::move(items), size, token));
             });
}

void OpenNebulaProvider::GetNetwork(const CallContext& ctx, const v1::GetNetworkRequest& req,
                                    Callback<v1::Network> done) {
  if (auto id = ParseResourceName("name", a_->id, "networks", req.name()); !id.ok()) {
    return std::move(done)(id.status());
  }
  FindVnet(a_, ctx.deadline, req.name(),
           [done = std::move(done)](absl::StatusOr<FoundVnet> v) mutable {
             if (!v.ok()) return std::move(done)(v.status());
             std::move(done)(std::move(v->network));
           });
}

void OpenNebulaProvider::CreateNetwork(const CallContext& ctx,
                                       const v1::CreateNetworkRequest& req,
                                       Callback<MutationProgress> done) {
  // The NAME: network_id, else display_name (oned requires one).
  std::string name = req.network_id();
  if (!name.empty() && !IsNameId(name)) {
    return std::move(done)(InvalidField("network_id", "must be [a-z][a-z0-9-]{0,62}"));
  }
  if (name.empty()) name = req.network().display_name();
  if (!req.network_id().empty() && !req.network().display_name().empty() &&
      req.network().display_name() != req.network_id()) {
    return std::move(done)(InvalidField(
        "network.display_name", "OpenNebula has one NAME: give network_id or display_name"));
  }
  if (name.empty()) {
    return std::move(done)(InvalidField("network_id", "give network_id or network.display_name"));
  }
  if (absl::Status s = CheckVmName(name, req.network_id().empty() ? "network.display_name"
                                                                  : "network_id");
      !s.ok()) {
    return std::move(done)(s);
  }
  std::vector<std::pair<std::string, std::string>> extra = {{kOperationTag, ctx.operation}};
  auto labels = LabelAttributes(req.network().labels(), "network.labels");
  if (!labels.ok()) return std::move(done)(labels.status());
  extra.insert(extra.end(), labels->begin(), labels->end());
  absl::StatusOr<std::string> text = NetworkTemplate(req.network(), name, extra);
  if (!text.ok()) return std::move(done)(text.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Network()));
  // Before the allocate: a network this operation made already (a re-drive)
  // carries its CLOUDPLANE_OPERATION tag and is the result; the NAME must be
  // free (oned refuses a taken one with INTERNAL, which would read as the
  // template's fault).
  FetchVnets(a_, ctx.deadline,
             [a = a_, deadline = ctx.deadline, op = ctx.operation, name, text = *std::move(text),
              done = Wrap(std::move(done))](absl::StatusOr<std::vector<FoundVnet>> all) mutable {
               if (!all.ok()) return done(all.status());
               for (const FoundVnet& v : *all) {
                 if (!op.empty() && v.operation == op) return done(kit::Finished(v.network));
               }
               for (const FoundVnet& v : *all) {
                 if (v.network.display_name() == name) {
                   return done(NetworkExists(ResourceName(*a, "networks", name)));
                 }
               }
               // Cluster -1: the default cluster ([api] one.vn.allocate).
               Call(a, deadline, "one.vn.allocate", {Value::String(text), Value::Int(-1)},
                    [a, deadline, done = std::move(done)](absl::StatusOr<Value> v) mutable {
                      if (!v.ok()) return done(AllocateError(v.status()));
                      absl::StatusOr<int64_t> oid = IntResult(*v, "one.vn.allocate");
                      if (!oid.ok()) return done(oid.status());
                      FinishWithVnet(a, deadline, *oid, std::move(done));
                    });
             });
}

void OpenNebulaProvider::UpdateNetwork(const CallContext& ctx,
                                       const v1::UpdateNetworkRequest& req,
                                       Callback<MutationProgress> done) {
  const v1::Network& in = req.network();
  if (auto id = ParseResourceName("network.name", a_->id, "networks", in.name()); !id.ok()) {
    return std::move(done)(id.status());
  }
  absl::Status status;
  if (req.update_mask().paths().empty()) AddFieldViolation(status, "update_mask", "names no field");
  // Merge mode ([api] one.vn.update): each attribute given replaces its
  // namesake; X=[] removes X. ARs change through one.vn.add_ar/update_ar,
  // which this adapter does not send: address_ranges are not updatable.
  std::vector<std::pair<std::string, std::string>> attrs;
  bool relabel = false;
  for (const std::string& path : req.update_mask().paths()) {
    if (path == "gateway") {
      if (!in.gateway().empty() && !net::IsIpv4(in.gateway())) {
        AddFieldViolation(status, "network.gateway", "must be an IPv4 address");
      }
      attrs.emplace_back("GATEWAY", in.gateway());
    } else if (path == "dns_servers") {
      std::string dns;
      for (int i = 0; i < in.dns_servers_size(); ++i) {
        if (!net::IsIpv4(in.dns_servers(i))) {
          AddFieldViolation(status, absl::StrCat("network.dns_servers[", i, "]"),
                            "must be an IPv4 address");
        }
        absl::StrAppend(&dns, i == 0 ? "" : " ", in.dns_servers(i));
      }
      attrs.emplace_back("DNS", dns);
    } else if (path == "labels") {
      auto labels = LabelAttributes(in.labels(), "network.labels");
      if (!labels.ok()) return std::move(done)(labels.status());
      attrs.insert(attrs.end(), labels->begin(), labels->end());
      relabel = true;
    } else {
      AddFieldViolation(status, "update_mask",
                        absl::StrCat("\"", path,
                                     "\" cannot be updated (gateway, dns_servers, labels)"));
    }
  }
  if (!status.ok()) return std::move(done)(status);
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Network()));
  FindVnet(a_, ctx.deadline, in.name(),
           [a = a_, deadline = ctx.deadline, attrs, relabel,
            done = Wrap(std::move(done))](absl::StatusOr<FoundVnet> v) mutable {
             if (!v.ok()) return done(v.status());
             absl::StatusOr<std::string> text = FlatTemplate(attrs, "network");
             if (!text.ok()) return done(text.status());
             std::string body = *text;
             if (relabel) {
               // Labels left out are removed: an empty vector deletes.
               for (const auto& [k, unused] : v->network.labels()) {
                 bool kept = std::any_of(attrs.begin(), attrs.end(), [&](const auto& kv) {
                   return kv.first == absl::StrCat(kLabelPrefix, absl::AsciiStrToUpper(k));
                 });
                 if (!kept) absl::StrAppend(&body, kLabelPrefix, absl::AsciiStrToUpper(k), "=[]\n");
               }
             }
             const int64_t oid = v->oid;
             Call(a, deadline, "one.vn.update",
                  {Value::Int(oid), Value::String(body), Value::Int(1)},
                  [a, deadline, oid, done = std::move(done)](absl::StatusOr<Value> r) mutable {
                    if (!r.ok()) return done(r.status());
                    FinishWithVnet(a, deadline, oid, std::move(done));
                  });
           });
}

void OpenNebulaProvider::DeleteNetwork(const CallContext& ctx,
                                       const v1::DeleteNetworkRequest& req,
                                       Callback<MutationProgress> done) {
  if (auto id = ParseResourceName("name", a_->id, "networks", req.name()); !id.ok()) {
    return std::move(done)(id.status());
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  FindVnet(a_, ctx.deadline, req.name(),
           [a = a_, deadline = ctx.deadline, allow = req.allow_missing(),
            done = Wrap(std::move(done))](absl::StatusOr<FoundVnet> v) mutable {
             if (!v.ok()) {
               if (allow && v.status().code() == absl::StatusCode::kNotFound) {
                 return done(kit::Finished(google::protobuf::Empty()));
               }
               return done(v.status());
             }
             Call(a, deadline, "one.vn.delete", {Value::Int(v->oid)},
                  [done = std::move(done)](absl::StatusOr<Value> r) mutable {
                    // oned refuses while leases are held or used (ACTION,
                    // already FAILED_PRECONDITION by StatusFromOneError).
                    if (!r.ok()) return done(r.status());
                    done(kit::Finished(google::protobuf::Empty()));
                  });
           });
}

// ---------------------------------------------------------------------------
// Addresses (leases).

void OpenNebulaProvider::ListAddresses(const CallContext& ctx,
                                       const v1::ListAddressesRequest& req,
                                       Callback<v1::ListAddressesResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  FetchAddresses(a_, ctx.deadline,
                 [size = req.page_size(), token = req.page_token(),
                  done = std::move(done)](absl::StatusOr<std::vector<v1::Address>> all) mutable {
                   if (!all.ok()) return std::move(done)(all.status());
                   std::move(done)(
                       kit::AnswerPage<v1::ListAddressesResponse>(*std::move(all), size, token));
                 });
}

void OpenNebulaProvider::GetAddress(const CallContext& ctx, const v1::GetAddressRequest& req,
                                    Callback<v1::Address> done) {
  auto id = ParseAddressName("name", a_->id, req.name());
  if (!id.ok()) return std::move(done)(id.status());
  FetchAddresses(a_, ctx.deadline,
                 [name = req.name(),
                  done = std::move(done)](absl::StatusOr<std::vector<v1::Address>> all) mutable {
                   if (!all.ok()) return std::move(done)(all.status());
                   for (v1::Address& addr : *all) {
                     if (addr.name() == name) return std::move(done)(std::move(addr));
                   }
                   std::move(done)(kit::NotFound("address", name));
                 });
}

void OpenNebulaProvider::ReserveAddress(const CallContext& ctx,
                                        const v1::ReserveAddressRequest& req,
                                        Callback<MutationProgress> done) {
  const v1::Address& in = req.address();
  absl::Status status;
  auto net = ParseResourceName("address.network", a_->id, "networks", in.network());
  if (!net.ok()) AddFieldViolation(status, "address.network", net.status().message());
  if (!net::IsIpv4(in.address())) {
    AddFieldViolation(status, "address.address",
                      "must be the IPv4 address to hold (OpenNebula holds a given lease)");
  }
  if (!status.ok()) return std::move(done)(status);
  absl::StatusOr<std::string> text = VectorTemplate("LEASES", {{"IP", in.address()}});
  if (!text.ok()) return std::move(done)(text.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Address()));
  FindVnet(a_, ctx.deadline, in.network(),
           [a = a_, deadline = ctx.deadline, ip = in.address(), text = *std::move(text),
            done = Wrap(std::move(done))](absl::StatusOr<FoundVnet> v) mutable {
             if (!v.ok()) {
               if (v.status().code() == absl::StatusCode::kNotFound) {
                 return done(InvalidField("address.network", v.status().message()));
               }
               return done(v.status());
             }
             const int64_t oid = v->oid;
             const std::string name =
                 ResourceName(*a, "addresses", AddressId(oid, ip));
             // A re-drive after the hold went through finds the lease held.
             Call(a, deadline, "one.vn.hold", {Value::Int(oid), Value::String(text)},
                  [a, deadline, oid, ip, name, rid = v->resource_id,
                   done = std::move(done)](absl::StatusOr<Value> r) mutable {
                    if (!r.ok() && r.status().code() == absl::StatusCode::kFailedPrecondition) {
                      // oned's ACTION: outside the ranges or taken. Said
                      // about the address the caller gave.
                      return done(WithErrorInfo(
                          InvalidField("address.address",
                                       absl::StrCat(ip, " is not a free address of the network: ",
                                                    r.status().message())),
                          reasons::kFieldInvalid, {}));
                    }
                    if (!r.ok()) return done(r.status());
                    Lease l;
                    l.vnet = oid;
                    l.ip = ip;
                    v1::Address out = AddressFromLease(l, a->id, rid, "");
                    done(kit::Finished(out));
                  });
           });
}

void OpenNebulaProvider::ReleaseAddress(const CallContext& ctx,
                                        const v1::ReleaseAddressRequest& req,
                                        Callback<MutationProgress> done) {
  auto id = ParseAddressName("name", a_->id, req.name());
  if (!id.ok()) return std::move(done)(id.status());
  absl::StatusOr<std::string> text = VectorTemplate("LEASES", {{"IP", id->second}});
  if (!text.ok()) return std::move(done)(text.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  // Read first: only a held lease is released (a VM's lease goes with its
  // NIC), and a missing one is NOT_FOUND (or nothing, with allow_missing).
  GetAddress(ctx, [&] {
    v1::GetAddressRequest g;
    g.set_name(req.name());
    return g;
  }(),
             [a = a_, deadline = ctx.deadline, vnet = id->first, text = *std::move(text),
              allow = req.allow_missing(), name = req.name(),
              done = std::move(done)](absl::StatusOr<v1::Address> addr) mutable {
               if (!addr.ok()) {
                 if (allow && addr.status().code() == absl::StatusCode::kNotFound) {
                   return std::move(done)(kit::Finished(google::protobuf::Empty()));
                 }
                 return std::move(done)(addr.status());
               }
               if (addr->state() != v1::Address::RESERVED) {
                 return std::move(done)(kit::WrongState(
                     absl::StrCat("address ", name, " is used by ", addr->instance(),
                                  "; detach its network interface instead"),
                     name, "IN_USE"));
               }
               Call(a, deadline, "one.vn.release", {Value::Int(vnet), Value::String(text)},
                    [done = std::move(done)](absl::StatusOr<Value> r) mutable {
                      if (!r.ok()) return std::move(done)(r.status());
                      std::move(done)(kit::Finished(google::protobuf::Empty()));
                    });
             });
}

// ---------------------------------------------------------------------------
// NIC hotplug.

void OpenNebulaProvider::AttachNetworkInterface(const CallContext& ctx,
                                                const v1::AttachNetworkInterfaceRequest& req,
                                                Callback<MutationProgress> done) {
  auto id = ParseResourceName("name", a_->id, "instances", req.name());
  if (!id.ok()) return std::move(done)(id.status());
  const v1::NetworkInterface& nic = req.network_interface();
  if (auto net = ParseResourceName("network_interface.network", a_->id, "networks", nic.network());
      !net.ok()) {
    return std::move(done)(net.status());
  }
  // Checks that need no call (the network id is a placeholder here).
  if (auto attrs = NicAttributes(nic, 0, "network_interface"); !attrs.ok()) {
    return std::move(done)(attrs.status());
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  FindVnet(
      a_, ctx.deadline, nic.network(),
      [a = a_, deadline = ctx.deadline, nic, id = *id, resource = req.name(),
       done = Wrap(std::move(done))](absl::StatusOr<FoundVnet> v) mutable {
        if (!v.ok()) {
          if (v.status().code() == absl::StatusCode::kNotFound) {
            return done(InvalidField("network_interface.network", v.status().message()));
          }
          return done(v.status());
        }
        auto attrs = NicAttributes(nic, v->oid, "network_interface");
        if (!attrs.ok()) return done(attrs.status());
        absl::StatusOr<std::string> text = VectorTemplate("NIC", *attrs);
        if (!text.ok()) return done(text.status());
        FindVm(a, deadline, id, resource,
               [a, deadline, text = *std::move(text), done = std::move(done)](
                   absl::StatusOr<FoundVm> vm) mutable {
                 if (!vm.ok()) return done(vm.status());
                 NicToken t;
                 t.set_vm_id(vm->summary.oid);
                 t.set_instance_id(vm->resource_id);
                 t.set_attach(true);
                 for (int64_t n : NicIds(vm->doc->Root())) t.add_before(n);
                 // Hotplug works in RUNNING and POWEROFF ([api]
                 // one.vm.attachnic); it comes back to where it was.
                 t.set_target(vm->summary.state == VmState::kPoweroff ? VM_TARGET_POWEROFF
                                                                      : VM_TARGET_RUNNING);
                 Call(a, deadline, "one.vm.attachnic",
                      {Value::Int(vm->summary.oid), Value::String(text)},
                      [t, done = std::move(done)](absl::StatusOr<Value> r) mutable {
                        if (!r.ok()) return done(r.status());
                        done(NicProgress(t, "attaching the network interface"));
                      });
               });
      });
}

void OpenNebulaProvider::DetachNetworkInterface(const CallContext& ctx,
                                                const v1::DetachNetworkInterfaceRequest& req,
                                                Callback<MutationProgress> done) {
  auto id = ParseResourceName("name", a_->id, "instances", req.name());
  if (!id.ok()) return std::move(done)(id.status());
  int64_t nic_id = 0;
  if (!absl::SimpleAtoi(req.network_interface_id(), &nic_id) || nic_id < 0) {
    return std::move(done)(InvalidField("network_interface_id",
                                        "must be the interface's id (OpenNebula's NIC_ID)"));
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  FindVm(a_, ctx.deadline, *id, req.name(),
         [a = a_, deadline = ctx.deadline, nic_id, resource = req.name(),
          done = Wrap(std::move(done))](absl::StatusOr<FoundVm> vm) mutable {
           if (!vm.ok()) return done(vm.status());
           const std::vector<int64_t> ids = NicIds(vm->doc->Root());
           if (std::find(ids.begin(), ids.end(), nic_id) == ids.end()) {
             return done(kit::NotFound("network interface",
                                       absl::StrCat(resource, " interface ", nic_id)));
           }
           NicToken t;
           t.set_vm_id(vm->summary.oid);
           t.set_instance_id(vm->resource_id);
           t.set_attach(false);
           t.set_nic_id(nic_id);
           t.set_target(vm->summary.state == VmState::kPoweroff ? VM_TARGET_POWEROFF
                                                                : VM_TARGET_RUNNING);
           Call(a, deadline, "one.vm.detachnic", {Value::Int(vm->summary.oid), Value::Int(nic_id)},
                [t, done = std::move(done)](absl::StatusOr<Value> r) mutable {
                  if (!r.ok()) return done(r.status());
                  done(NicProgress(t, "detaching the network interface"));
                });
         });
}

}  // namespace cloudplane::adapters::opennebula
