// The CloudSigma Provider's class, shared by the cloudsigma_*.cc files that
// implement its services. Internal to adapters/cloudsigma; the public entry
// point is cloudsigma_adapter.h.
//
//   cloudsigma_adapter.cc   ProviderInfo, the factory, construction
//   cloudsigma_poll.cc      PollOperation: reading an object toward a goal
//   cloudsigma_compute.cc   ComputeService instances and their metadata
//   cloudsigma_volumes.cc   VolumesService, attach and detach included
//   cloudsigma_catalog.cc   ComputeService images and locations
//   cloudsigma_nics.cc      ComputeService Attach/DetachNetworkInterface
//   cloudsigma_keys.cc      ComputeService key pairs (/keypairs/)
//   cloudsigma_networks.cc  NetworksService: VLANs, IPs, subscriptions
//   cloudsigma_firewalls.cc FirewallsService: firewall policies (/fwpolicies/)
//   cloudsigma_calls.h      requests and lookups;  cloudsigma_feed.h  Watch
//
// A mutation runs its local checks first and answers ctx.validate_only
// before any request; then it sends what it must and reports a PollToken
// (cloudsigma_tokens.h) that Poll() answers.
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_PROVIDER_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/cloudsigma/cloudsigma_calls.h"
#include "adapters/cloudsigma/cloudsigma_feed.h"
#include "adapters/cloudsigma/cloudsigma_tokens.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "adapters/common/kit/lists.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::cloudsigma {

// The work goes on: kit::Pending with `token` packed.
MutationProgress PendingOn(const PollToken& token, std::string detail);

// Reads the object of `token` once: finished (with the rendered Volume or
// Instance, or Empty for GONE) when its goal is reached, else pending on the
// same token. An object that disappears before any goal but GONE is
// NOT_FOUND.
void Poll(const AccountPtr& account, absl::Time deadline, const PollToken& token,
          Callback<MutationProgress> done);

// Finished, with `drive` / `server` rendered as the operation's result.
void DoneWithVolume(const AccountPtr& account, absl::Time deadline, const WireObject& drive,
                    Callback<MutationProgress> done);
void DoneWithInstance(const AccountPtr& account, absl::Time deadline, const WireObject& server,
                      Callback<MutationProgress> done);

// The step of a CreateInstance from an image once the image's clone (the
// drive of a BOOT_DRIVE_READY token) has settled: creates token.boot()'s
// server with that drive as its boot drive and starts it if asked; a server
// this operation made already (a re-drive) is adopted instead. A server
// CloudSigma refuses deletes the clone before the error is reported.
void BootFromDrive(const AccountPtr& account, absl::Time deadline, const PollToken& token,
                   Callback<MutationProgress> done);

// PUTs `server` edited by `edit` (the whole definition, servers.rst); answers
// the updated object. Validation errors name `instance.<field>`.
void PutServer(const AccountPtr& account, absl::Time deadline, const WireObject& server,
               const ServerEdit& edit, Callback<WireObject> done);

// A List* of drives or servers: checks the paging fields, then fetches every
// object of `path`, renders them with `render` (DriveToVolume,
// ServerToInstance) and one id lookup in `other_collection`, and answers the
// page the request asks for.
template <typename Response, typename T>
void ListRendered(const AccountPtr& account, absl::Time deadline, std::string path,
                  std::string other_collection,
                  absl::StatusOr<T> (*render)(absl::string_view, absl::string_view, const IdMap&),
                  int32_t page_size, std::string page_token, Callback<Response> done) {
  if (absl::Status s = kit::CheckPaging(page_size, page_token); !s.ok()) {
    return std::move(done)(s);
  }
  ListAll(account, deadline, std::move(path),
          [account, deadline, other_collection = std::move(other_collection), render, page_size,
           page_token = std::move(page_token),
           done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            RenderAll<T>(
                account, deadline, *std::move(objects), other_collection,
                [account, render](const std::string& json, const IdMap& ids) {
                  return render(json, account->id, ids);
                },
                [page_size, page_token, done = std::move(done)](
                    absl::StatusOr<std::vector<T>> all) mutable {
                  if (!all.ok()) return std::move(done)(all.status());
                  std::move(done)(kit::AnswerPage<Response>(*std::move(all), page_size, page_token));
                });
          });
}

// The NIC a request's interface asks for; each problem is a violation on
// `status` naming `<field>.network`, `.address` or `.model`.
NicSpec NicFromRequest(absl::string_view account, const v1::NetworkInterface& nic,
                       absl::string_view field, absl::Status& status);

// kind "cloudsigma", watch_source kPush, the supported methods (those
// CloudSigmaProvider overrides).
ProviderInfo CloudSigmaProviderInfo();

class CloudSigmaProvider final : public Provider {
 public:
  CloudSigmaProvider(AccountPtr account, std::shared_ptr<Feed> feed);
  ~CloudSigmaProvider() override;

  const ProviderInfo& Info() const override;
  // The websocket feed's state (Feed::Connected); false without a feed.
  bool PushConnected() const override { return feed_ != nullptr && feed_->Connected(); }

// Declares the Provider method of an api_methods.inc row as overridden.
#define CP_READ(Service, Method, Request, Response)               \
  void Method(const CallContext& ctx, const v1::Request& request, \
              Callback<v1::Response> done) override;
#define CP_MUTATION(Service, Method, Request, Result)             \
  void Method(const CallContext& ctx, const v1::Request& request, \
              Callback<MutationProgress> done) override;
  // VolumesService, all of it (cloudsigma_volumes.cc).
#include "adapters/api/volumes.inc"
  // ComputeService but machine types and hosts, which CloudSigma does not
  // have: instances (cloudsigma_compute.cc), images and locations
  // (cloudsigma_catalog.cc).
  CP_READ(ComputeService, ListInstances, ListInstancesRequest, ListInstancesResponse)
  CP_READ(ComputeService, GetInstance, GetInstanceRequest, Instance)
  CP_MUTATION(ComputeService, CreateInstance, CreateInstanceRequest, Instance)
  CP_MUTATION(ComputeService, UpdateInstance, UpdateInstanceRequest, Instance)
  CP_MUTATION(ComputeService, DeleteInstance, DeleteInstanceRequest, Empty)
  CP_MUTATION(ComputeService, StartInstance, StartInstanceRequest, Instance)
  CP_MUTATION(ComputeService, StopInstance, StopInstanceRequest, Instance)
  CP_MUTATION(ComputeService, RebootInstance, RebootInstanceRequest, Instance)
  CP_READ(ComputeService, GetInstanceMetadata, GetInstanceMetadataRequest, InstanceMetadata)
  CP_MUTATION(ComputeService, UpdateInstanceMetadata, UpdateInstanceMetadataRequest,
              InstanceMetadata)
  CP_READ(ComputeService, ListImages, ListImagesRequest, ListImagesResponse)
  CP_READ(ComputeService, GetImage, GetImageRequest, Image)
  CP_READ(ComputeService, ListLocations, ListLocationsRequest, ListLocationsResponse)
  CP_READ(ComputeService, GetLocation, GetLocationRequest, Location)
  // NICs (cloudsigma_nics.cc) and key pairs (cloudsigma_keys.cc).
  CP_MUTATION(ComputeService, AttachNetworkInterface, AttachNetworkInterfaceRequest, Instance)
  CP_MUTATION(ComputeService, DetachNetworkInterface, DetachNetworkInterfaceRequest, Instance)
  CP_READ(ComputeService, ListKeyPairs, ListKeyPairsRequest, ListKeyPairsResponse)
  CP_READ(ComputeService, GetKeyPair, GetKeyPairRequest, KeyPair)
  CP_MUTATION(ComputeService, CreateKeyPair, CreateKeyPairRequest, KeyPair)
  CP_MUTATION(ComputeService, DeleteKeyPair, DeleteKeyPairRequest, Empty)
  // NetworksService, all of it: VLANs and IPs (cloudsigma_networks.cc).
#include "adapters/api/networks.inc"
  // FirewallsService, all of it: firewall policies (cloudsigma_firewalls.cc).
#include "adapters/api/firewalls.inc"
#undef CP_READ
#undef CP_MUTATION

  // Every pending mutation (cloudsigma_poll.cc).
  void PollOperation(const CallContext& ctx, const std::string& poll_token,
                     Callback<MutationProgress> done) override;

 private:
  // `action` is start, stop, shutdown or restart (servers.rst, actions).
  void Power(const CallContext& ctx, const std::string& name, const std::string& action,
             Callback<MutationProgress> done);
  void AttachOrDetach(const CallContext& ctx, const std::string& volume_name,
                      const std::string& instance_name, bool attach, const std::string& device,
                      const std::string& channel, int32_t boot_order,
                      Callback<MutationProgress> done);
  void FetchLocations(const CallContext& ctx, Callback<std::vector<v1::Location>> done);

  const AccountPtr account_;
  const std::shared_ptr<Feed> feed_;  // null without a ChangeSink
};

}  // namespace cloudplane::adapters::cloudsigma

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_PROVIDER_H_
