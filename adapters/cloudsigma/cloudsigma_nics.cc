// ComputeService network interfaces on CloudSigma servers: the server's
// `nics` list (protocol reference §5.4). A NIC change is a PUT of the whole
// server with the edited list; CloudSigma ignores it on a running server
// without an error (§5.2), so both need a stopped server.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/progress.h"
#include "base/errors.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

// The server's interface that `nic` would duplicate: the same VLAN, or the
// same static IP (so a re-driven attach converges); nullptr for a DHCP NIC,
// which cannot be told from another one.
const v1::NetworkInterface* Matching(const v1::Instance& instance, const NicSpec& nic,
                                     absl::string_view account) {
  for (const v1::NetworkInterface& have : instance.network_interfaces()) {
    if (!nic.vlan_uuid.empty() &&
        have.network() == ResourceName(account, "networks", nic.vlan_uuid)) {
      return &have;
    }
    if (!nic.static_ip.empty() && have.network().empty() && have.address() == nic.static_ip) {
      return &have;
    }
  }
  return nullptr;
}

// Reads the server, checks it is stopped, and hands the Instance view and
// the object to `edit`.
template <typename Edit>
void WithStoppedServer(const AccountPtr& account, absl::Time deadline, const std::string& id,
                       const std::string& name, Callback<MutationProgress> done, Edit edit) {
  FindObject(
      account, deadline, "servers", id, name, "instance",
      [account, deadline, name, edit = std::move(edit),
       done = std::move(done)](absl::StatusOr<WireObject> server) mutable {
        if (!server.ok()) return std::move(done)(server.status());
        absl::StatusOr<v1::Instance> view = ServerToInstance(server->json, account->id, {});
        if (!view.ok()) return std::move(done)(view.status());
        if (server->status != "stopped") {
          return std::move(done)(kit::WrongState(
              absl::StrCat("instance ", name, " is ", server->status,
                           "; its network interfaces change only while it is stopped "
                           "(CloudSigma ignores NIC changes of a running server)"),
              name, server->status));
        }
        edit(*server, *view, std::move(done));
      });
}

}  // namespace

NicSpec NicFromRequest(absl::string_view account, const v1::NetworkInterface& nic,
                       absl::string_view field, absl::Status& status) {
  NicSpec out;
  if (!nic.network().empty()) {
    absl::StatusOr<std::string> id =
        IdFromName(absl::StrCat(field, ".network"), account, "networks", nic.network());
    if (!id.ok()) {
      AddFieldViolation(status, absl::StrCat(field, ".network"), id.status().message());
    } else if (!IsUuid(*id)) {
      AddFieldViolation(status, absl::StrCat(field, ".network"),
                        "CloudSigma networks are VLANs, named by their uuid");
    } else {
      out.vlan_uuid = *id;
    }
    if (!nic.address().empty()) {
      // A VLAN NIC has no IP configuration at CloudSigma (§5.4): the guest
      // sets its address itself.
      AddFieldViolation(status, absl::StrCat(field, ".address"),
                        "a NIC on a CloudSigma VLAN has no address to set (the guest "
                        "configures it); leave it empty");
    }
  } else {
    // A public NIC: DHCP, or one of the account's static IPs.
    out.static_ip = nic.address();
  }
  if (!nic.model().empty() && nic.model() != "virtio" && nic.model() != "e1000" &&
      nic.model() != "rtl8139") {
    AddFieldViolation(status, absl::StrCat(field, ".model"), "must be virtio, e1000 or rtl8139");
  }
  out.model = nic.model();
  return out;
}

void CloudSigmaProvider::AttachNetworkInterface(
    const CallContext& ctx, const v1::AttachNetworkInterfaceRequest& request,
    Callback<MutationProgress> done) {
  auto id = IdFromName("name", account_->id, "instances", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  absl::Status checked;
  NicSpec nic =
      NicFromRequest(account_->id, request.network_interface(), "network_interface", checked);
  if (!checked.ok()) return std::move(done)(checked);
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  WithStoppedServer(
      account, deadline, *id, request.name(), std::move(done),
      [account, deadline, nic](const WireObject& server, const v1::Instance& view,
                               Callback<MutationProgress> done) mutable {
        if (Matching(view, nic, account->id) != nullptr) {
          return DoneWithInstance(account, deadline, server, std::move(done));
        }
        ServerEdit edit;
        edit.add_nic = nic;
        PutServer(account, deadline, server, edit,
                  [account, deadline, done = std::move(done)](
                      absl::StatusOr<WireObject> updated) mutable {
                    if (!updated.ok()) return std::move(done)(updated.status());
                    DoneWithInstance(account, deadline, *updated, std::move(done));
                  });
      });
}

void CloudSigmaProvider::DetachNetworkInterface(
    const CallContext& ctx, const v1::DetachNetworkInterfaceRequest& request,
    Callback<MutationProgress> done) {
  auto id = IdFromName("name", account_->id, "instances", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (request.network_interface_id().empty()) {
    return std::move(done)(
        InvalidField("network_interface_id", "must be the interface's id (its MAC address)"));
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  WithStoppedServer(
      account, deadline, *id, request.name(), std::move(done),
      [account, deadline, mac = request.network_interface_id()](
          const WireObject& server, const v1::Instance& view,
          Callback<MutationProgress> done) mutable {
        bool present = false;
        for (const auto& have : view.network_interfaces()) present = present || have.id() == mac;
        // Not there (any more): done, so a re-driven detach is harmless.
        if (!present) return DoneWithInstance(account, deadline, server, std::move(done));
        ServerEdit edit;
        edit.remove_mac = mac;
        PutServer(account, deadline, server, edit,
                  [account, deadline, done = std::move(done)](
                      absl::StatusOr<WireObject> updated) mutable {
                    if (!updated.ok()) return std::move(done)(updated.status());
                    DoneWithInstance(account, deadline, *updated, std::move(done));
                  });
      });
}

}  // namespace cloudplane::adapters::cloudsigma
