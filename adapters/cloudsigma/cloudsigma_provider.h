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

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/cloudsigma/cloudsigma_calls.h"
#include "adapters/cloudsigma/cloudsigma_feed.h"
#include "adapters/cloudsigma/cloudsigma_tokens.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/paging/paging.h"
#include "adapters/provider.h"
#include "base/errors.h"
#include "base/reasons.h"

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

// A List* of drives or servers (`collection` "drives", "servers"), one
// CloudSigma list request per API page (pagination.rst: limit/offset), in
// CloudSigma's order:
//  1. page_size (paging::EffectivePageSize: 0 is 50, at most 1000) and
//     page_token (ReadListPageToken; INVALID_ARGUMENT naming it) are checked
//     before anything is sent;
//  2. the first page GETs /<collection>/detail/?limit=<size>&offset=0; a
//     later one GETs from the token's anchor, the last object answered
//     (offset = token.offset - 1, limit = size + 1), and answers what follows
//     the anchor;
//  3. only those objects are rendered (`render`: DriveToVolume,
//     ServerToInstance), with one LoadIdsOf of the uuids they refer to in
//     `other_collection`;
//  4. next_page_token names the last object answered and the offset after
//     it; "" once CloudSigma's total_count is reached.
// So N objects cost N / size list requests and N objects rendered in all.
//
// Objects created or deleted between pages (offset paging keeps no
// snapshot; CloudSigma's own API behaves the same, and Libcloud and
// pycloudsigma avoid it by fetching everything with limit=0). The anchor is
// looked for in the objects fetched, assuming CloudSigma keeps the relative
// order of its objects (it lists in creation order; so does the emulator):
//  - found first (nothing changed before it): the page goes on after it.
//    Objects created after the anchor appear on a later page; objects
//    deleted after it do not appear;
//  - found later (objects were created before it): the page goes on after
//    it, shorter, so nothing is answered twice; those new objects are not
//    listed;
//  - not found (the anchor, or objects before it, were deleted, so the
//    offset moved back past what the client has seen): ABORTED,
//    CONCURRENT_MODIFICATION, "list again from the first page".
// Every object that exists for the whole listing is answered exactly once,
// or the listing fails with ABORTED; never an object twice or one silently
// skipped.
template <typename Response, typename T>
void ListRendered(const AccountPtr& account, absl::Time deadline, std::string collection,
                  std::string other_collection,
                  absl::StatusOr<T> (*render)(absl::string_view, absl::string_view, const IdMap&),
                  int32_t page_size, const std::string& page_token, Callback<Response> done) {
  absl::StatusOr<int> size = paging::EffectivePageSize(page_size);
  if (!size.ok()) return std::move(done)(size.status());
  absl::StatusOr<std::optional<ListPageToken>> token = ReadListPageToken(page_token, collection);
  if (!token.ok()) return std::move(done)(token.status());
  const bool first = !token->has_value();
  const int64_t offset = first ? 0 : (*token)->offset() - 1;
  std::string anchor = first ? "" : (*token)->anchor_uuid();
  FetchListPage(
      account, deadline, absl::StrCat("/", collection, "/detail/"), offset,
      *size + (first ? 0 : 1),
      [account, deadline, collection, other_collection = std::move(other_collection), render,
       size = *size, offset, anchor = std::move(anchor),
       done = std::move(done)](absl::StatusOr<Page> page) mutable {
        if (!page.ok()) return std::move(done)(page.status());
        std::vector<WireObject>& objects = page->objects;
        size_t start = 0;
        if (!anchor.empty()) {
          auto it = std::find_if(objects.begin(), objects.end(),
                                 [&](const WireObject& o) { return o.uuid == anchor; });
          if (it == objects.end()) {
            return std::move(done)(WithErrorInfo(
                absl::AbortedError(absl::StrCat(
                    "the ", collection,
                    " changed between pages (objects listed before were deleted); list "
                    "again from the first page")),
                reasons::kConcurrentModification, {{"collection", collection}}));
          }
          start = static_cast<size_t>(it - objects.begin()) + 1;
        }
        const size_t end = std::min(objects.size(), start + static_cast<size_t>(size));
        std::string next;
        const int64_t next_offset = offset + static_cast<int64_t>(end);
        if (next_offset < page->total_count && end > 0) {
          next = PackListPageToken(collection, next_offset, objects[end - 1].uuid);
        }
        std::vector<WireObject> answered(std::make_move_iterator(objects.begin() + start),
                                         std::make_move_iterator(objects.begin() + end));
        RenderAll<T>(
            account, deadline, std::move(answered), other_collection,
            [account, render](const std::string& json, const IdMap& ids) {
              return render(json, account->id, ids);
            },
            [next = std::move(next),
             done = std::move(done)](absl::StatusOr<std::vector<T>> rendered) mutable {
              if (!rendered.ok()) return std::move(done)(rendered.status());
              std::vector<std::unique_ptr<google::protobuf::Message>> messages;
              messages.reserve(rendered->size());
              for (T& item : *rendered) messages.push_back(std::make_unique<T>(std::move(item)));
              Response response;
              kit::FillPage(response, std::move(messages), next);
              std::move(done)(std::move(response));
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
