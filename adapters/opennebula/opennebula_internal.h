// The OpenNebula Provider's class and what its opennebula_*.cc files share.
// Internal to adapters/opennebula; the public entry point is
// opennebula_adapter.h, the translation is opennebula_wire.h.
//
// Files:
//   opennebula_adapter.cc    ProviderInfo, the factory, registration
//   opennebula_rpc.cc        Call (one XML-RPC call through kit::Send), pool
//                            fetches and lookups by resource id
//   opennebula_progress.cc   poll tokens (opennebula_tokens.proto) and the
//                            polls that follow a VM or a disk hotplug
//   opennebula_compute.cc    instances and their metadata
//   opennebula_catalog.cc    hosts, images (VM templates), locations
//   opennebula_volumes.cc    volumes (images) and disk hotplug
//   opennebula_firewalls.cc  firewalls (security groups) and their rules
//   opennebula_networks.cc   networks (VNETs), addresses (leases), NIC hotplug
//   opennebula_keys.cc       key pairs (the user's SSH_PUBLIC_KEY lines)
//
// Every `Done` below runs exactly once, on the HTTP transport thread or
// inline; nothing here touches the store.
#ifndef CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_INTERNAL_H_
#define CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_INTERNAL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/xml/xml.h"
#include "adapters/common/xmlrpc/xmlrpc.h"
#include "adapters/opennebula/opennebula_adapter.h"
#include "adapters/opennebula/opennebula_tokens.pb.h"
#include "adapters/opennebula/opennebula_wire.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::opennebula {

using DocPtr = std::shared_ptr<const xml::Document>;

// The helpers' callback; a Provider method's Callback<T> becomes one with
// Wrap().
template <typename T>
using Done = absl::AnyInvocable<void(absl::StatusOr<T>)>;

template <typename T>
Done<T> Wrap(Callback<T> cb) {
  return [cb = std::move(cb)](absl::StatusOr<T> v) mutable { std::move(cb)(std::move(v)); };
}

// The USER_TEMPLATE / TEMPLATE attribute a create leaves on its object, so a
// re-driven create recognises its own work after a crash.
inline constexpr char kOperationTag[] = "CLOUDPLANE_OPERATION";

struct Account {
  std::string id;
  std::string session;  // never logged
  std::string path;     // "" or "/RPC2"
  std::unique_ptr<http::HttpClient> client;
};
using AccountPtr = std::shared_ptr<const Account>;

// accounts/<account>/<collection>/<id>
std::string ResourceName(const Account& a, absl::string_view collection, absl::string_view id);

// ---------------------------------------------------------------------------
// opennebula_rpc.cc

// One XML-RPC call with the session string as its first parameter; `done`
// gets the call's result (ResultFromResponse) or the transport's error
// prefixed with `method` (kit::Send). The transport refuses a call whose
// deadline has passed before anything is sent.
void Call(const AccountPtr& a, absl::Time deadline, const std::string& method,
          std::vector<xmlrpc::Value> params, Done<xmlrpc::Value> done);

// Call, then the result parsed as an object document rooted at `root`.
void CallDoc(const AccountPtr& a, absl::Time deadline, const std::string& method,
             std::vector<xmlrpc::Value> params, std::string root, Done<DocPtr> done);

// A VM of the pool (every page of one.vmpool.info[extended]), with its
// resource id: its NAME when that is a valid id and no lower id has the same
// NAME, else its number. Sorted by VM id.
struct PoolVm {
  DocPtr doc;
  const xml::Node* node;
  VmSummary summary;
  std::string resource_id;
};
// `extended`: one.vmpool.infoextended, whose bodies carry the whole
// USER_TEMPLATE (labels); the short bodies do not ([api] one.vmpool.info).
void FetchVmPool(const AccountPtr& a, absl::Time deadline, Done<std::vector<PoolVm>> done,
                 bool extended = false);

// A VM found by resource id: its full document and resource id.
struct FoundVm {
  DocPtr doc;
  VmSummary summary;
  std::string resource_id;
};
// one.vm.info of `oid`. NOT_FOUND naming `resource` when oned has no such VM
// or it is DONE. An empty `resource_id` is derived from the VM's NAME.
void ReadVm(const AccountPtr& a, absl::Time deadline, int64_t oid, std::string resource_id,
            std::string resource, Done<FoundVm> done);
// By id or name (a name needs the pool).
void FindVm(const AccountPtr& a, absl::Time deadline, const IdOrName& id, std::string resource,
            Done<FoundVm> done);

// An image that is a volume (IsVolumeImageType), with its resource id chosen
// as for VMs.
struct FoundImage {
  DocPtr doc;
  const xml::Node* node;
  ImageSummary summary;
  std::string resource_id;
};
void FetchImages(const AccountPtr& a, absl::Time deadline, Done<std::vector<FoundImage>> done);
// NOT_FOUND naming `resource` when there is no such volume.
void FindImage(const AccountPtr& a, absl::Time deadline, const IdOrName& id,
               std::string resource, Done<FoundImage> done);
// VM id -> instance resource id, for Volume.attached_to.
void FetchInstanceIds(const AccountPtr& a, absl::Time deadline,
                      Done<std::map<int64_t, std::string>> done);
// The image as a Volume (its attached_to need the instance ids).
void VolumeOf(const AccountPtr& a, absl::Time deadline, FoundImage image, Done<v1::Volume> done);

// A security group: the Firewall, its CLOUDPLANE_OPERATION tag, its id and
// its rules as OpenNebula keeps them.
struct FoundGroup {
  v1::Firewall firewall;
  std::string operation;
  int64_t oid = 0;
  std::vector<SgRule> rules;
};
void FetchGroups(const AccountPtr& a, absl::Time deadline, Done<std::vector<FoundGroup>> done);
// By resource name, in either form (NAME or number); NOT_FOUND otherwise.
void FindGroup(const AccountPtr& a, absl::Time deadline, std::string resource,
               Done<FoundGroup> done);

// A virtual network: the Network, its CLOUDPLANE_OPERATION tag and id.
// Resource ids as for VMs (NAME when a valid id and the lowest such, else
// the number).
struct FoundVnet {
  v1::Network network;
  std::string operation;
  int64_t oid = 0;
  std::string resource_id;
};
// one.vnpool.info (bodies without leases).
void FetchVnets(const AccountPtr& a, absl::Time deadline, Done<std::vector<FoundVnet>> done);
// By resource name in either form; NOT_FOUND naming `resource` otherwise.
void FindVnet(const AccountPtr& a, absl::Time deadline, std::string resource,
              Done<FoundVnet> done);

// ---------------------------------------------------------------------------
// opennebula_keys.cc

// The key pair id of `key_name` (accounts/<account>/keyPairs/<id> or a bare
// id); INVALID_ARGUMENT naming `field`.
absl::StatusOr<std::string> KeyIdOf(absl::string_view account, absl::string_view key_name,
                                    absl::string_view field);
// The calling user's key of that id; NOT_FOUND naming `resource`.
void FindKey(const AccountPtr& a, absl::Time deadline, std::string id, std::string resource,
             Done<SshKey> done);

// ---------------------------------------------------------------------------
// opennebula_progress.cc

// The version of the token messages written today.
inline constexpr uint32_t kTokenVersion = 1;

// "running", "poweroff", ...: the target in progress details.
absl::string_view TargetName(VmTarget target);

// A packed VmToken.
std::string PackVmToken(int64_t oid, std::string instance_id, VmTarget target);
// Progress of work on VM `oid` that ends in `target`: a packed VmToken, the
// VM id as the provider operation.
MutationProgress VmProgress(int64_t oid, std::string instance_id, VmTarget target,
                            std::string detail);
// Progress of a disk hotplug: a packed `token`.
MutationProgress DiskProgress(const DiskToken& token, std::string detail);

// Progress of a NIC hotplug: a packed `token`.
MutationProgress NicProgress(const NicToken& token, std::string detail);

// One poll of the work a token of this adapter names. DATA_LOSS (kit) for
// bytes that are no token of this adapter.
void Poll(const AccountPtr& a, absl::Time deadline, const std::string& token,
          Done<MutationProgress> done);

// ---------------------------------------------------------------------------

class OpenNebulaProvider final : public Provider {
 public:
  explicit OpenNebulaProvider(AccountPtr account) : a_(std::move(account)) {}

  const ProviderInfo& Info() const override { return info_; }
  // opennebula_progress.cc
  void PollOperation(const CallContext& ctx, const std::string& token,
                     Callback<MutationProgress> done) override;
  // VM operations are judged from the observer's ListInstances: the listed
  // Instance's state says when to confirm with one targeted poll.
  std::optional<ObservedTarget> ObservationTarget(const std::string& token) const override;
  std::optional<absl::StatusOr<MutationProgress>> ProgressFromObservation(
      const std::string& token, const google::protobuf::Message* observed) const override;

  // The services, in the files opennebula_methods.inc names.
#define ONE_READ(Service, Method, Response)                                \
  void Method(const CallContext& ctx, const v1::Method##Request& req,       \
              Callback<v1::Response> done) override;
#define ONE_MUTATION(Service, Method)                                      \
  void Method(const CallContext& ctx, const v1::Method##Request& req,       \
              Callback<MutationProgress> done) override;
#include "adapters/opennebula/opennebula_methods.inc"
#undef ONE_READ
#undef ONE_MUTATION

 private:
  // Start/Stop/Reboot/Delete (opennebula_compute.cc): the one.vm.action to
  // send, chosen from the VM's state, and the state that ends the operation.
  struct ActionPlan {
    std::string action;
    VmTarget target;
  };
  using ChooseAction = absl::AnyInvocable<ActionPlan(const VmSummary&)>;
  void Action(const CallContext& ctx, const std::string& name, bool allow_missing,
              ChooseAction choose, Callback<MutationProgress> cb, bool empty_result);

  // AttachVolume / DetachVolume (opennebula_volumes.cc).
  struct DiskRequest {
    std::string volume;
    std::string instance;
    bool attach = false;
    std::string device;
    std::string channel;
    int32_t boot_order = 0;
  };
  void DiskCall(const CallContext& ctx, DiskRequest req, Callback<MutationProgress> cb);

  // `<firewall>/rules/<id>` -> (firewall, id); INVALID_ARGUMENT naming `name`
  // (opennebula_firewalls.cc).
  absl::StatusOr<std::pair<std::string, std::string>> SplitRuleName(
      const std::string& name) const;

  const AccountPtr a_;
  const ProviderInfo info_ = OpenNebulaProviderInfo();
};

}  // namespace cloudplane::adapters::opennebula

#endif  // CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_INTERNAL_H_
