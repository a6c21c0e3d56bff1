// The enStratus Provider's class and the account it serves, shared by the
// enstratus_*.cc files that implement it. Internal to adapters/enstratus; the
// public entry point is enstratus_adapter.h, whose comment is the contract.
//
// Where things are:
//   enstratus_adapter.cc     ProviderInfo, the factory, registration
//   enstratus_send.{h,cc}    one signed request; GET of a list or of one item
//   enstratus_aliases.{h,cc} caller-chosen ids and create marks (ScratchStore)
//   enstratus_jobs.{h,cc}    mutations that DCM runs as jobs (JobToken)
//   enstratus_compute.cc     instances (servers)
//   enstratus_catalog.cc     images, machine types, locations, billing codes
//   enstratus_volumes.cc     volumes
//   enstratus_firewalls.cc   firewalls and their rules
//   enstratus_networks.cc    networks
//   enstratus_operations.cc  PollOperation and the provider operations (jobs)
//   enstratus_wire.h         pure translation and signing (no I/O)
#ifndef CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_PROVIDER_H_
#define CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/http/http_client.h"
#include "adapters/enstratus/enstratus_aliases.h"
#include "adapters/enstratus/enstratus_tokens.pb.h"
#include "adapters/enstratus/enstratus_wire.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::enstratus {

// The reason DCM records for our deletes (a query parameter of DELETE, §7),
// already percent-encoded.
inline constexpr char kReasonQuery[] = "?reason=Requested%20through%20cloudplane";

// What the requests of one account need. Immutable once built; requests in
// flight hold it through an AccountPtr.
struct Account {
  std::string id;
  ApiKeys keys;
  // The path part of the endpoint, e.g. /api/enstratus/2015-05-25: the
  // signature covers it (§1-2).
  std::string basepath;
  // The User-Agent the client sends, which the signature names (§2).
  std::string user_agent;
  int64_t budget = 0;  // option `budget`; 0 = none
  std::unique_ptr<http::HttpClient> client;
  std::unique_ptr<AliasBook> aliases;
};
using AccountPtr = std::shared_ptr<const Account>;

class EnstratusProvider final : public Provider {
 public:
  explicit EnstratusProvider(AccountPtr account) : a_(std::move(account)) {}

  const ProviderInfo& Info() const override;
  // Info's methods, less CreateFirewall and CreateNetwork without the
  // account option `budget`: DCM charges every firewall and network to a
  // budget and the request has no field for one, so without the option every
  // such create would fail.
  std::vector<std::string> SupportedMethods() const override;
  // Info's honoured_fields, and none for the creates SupportedMethods
  // leaves out.
  std::vector<std::string> HonouredFields(const std::string& method) const override;

  // enstratus_operations.cc
  void PollOperation(const CallContext& ctx, const std::string& poll_token,
                     Callback<MutationProgress> done) override;
  void ListProviderOperations(const CallContext& ctx, int page_size,
                              const std::string& page_token,
                              Callback<google::longrunning::ListOperationsResponse> done) override;
  void GetProviderOperation(const CallContext& ctx, const std::string& id,
                            Callback<google::longrunning::Operation> done) override;

  // The supported rows of adapters/api/*.inc, each declared as overridden.
#define CP_ENSTRATUS_DECLARE(Method, Request, Answer) \
  void Method(const CallContext& ctx, const v1::Request& request, Callback<Answer> done) override;
#define CP_READ(Service, Method, Request, Response) \
  CP_ENSTRATUS_DECLARE(Method, Request, v1::Response)
#define CP_MUTATION(Service, Method, Request, Result) \
  CP_ENSTRATUS_DECLARE(Method, Request, MutationProgress)
  // enstratus_compute.cc: instances, without update, reboot or metadata.
  CP_READ(ComputeService, ListInstances, ListInstancesRequest, ListInstancesResponse)
  CP_READ(ComputeService, GetInstance, GetInstanceRequest, Instance)
  CP_MUTATION(ComputeService, CreateInstance, CreateInstanceRequest, Instance)
  CP_MUTATION(ComputeService, DeleteInstance, DeleteInstanceRequest, Empty)
  CP_MUTATION(ComputeService, StartInstance, StartInstanceRequest, Instance)
  CP_MUTATION(ComputeService, StopInstance, StopInstanceRequest, Instance)
  // enstratus_catalog.cc: all of BillingService, and the catalog of
  // ComputeService without hosts.
#include "adapters/api/billing.inc"
  CP_READ(ComputeService, ListImages, ListImagesRequest, ListImagesResponse)
  CP_READ(ComputeService, GetImage, GetImageRequest, Image)
  CP_READ(ComputeService, ListMachineTypes, ListMachineTypesRequest, ListMachineTypesResponse)
  CP_READ(ComputeService, GetMachineType, GetMachineTypeRequest, MachineType)
  CP_READ(ComputeService, ListLocations, ListLocationsRequest, ListLocationsResponse)
  CP_READ(ComputeService, GetLocation, GetLocationRequest, Location)
  // enstratus_firewalls.cc: all of FirewallsService.
#include "adapters/api/firewalls.inc"
  // enstratus_volumes.cc: volumes without clone or update.
  CP_READ(VolumesService, ListVolumes, ListVolumesRequest, ListVolumesResponse)
  CP_READ(VolumesService, GetVolume, GetVolumeRequest, Volume)
  CP_MUTATION(VolumesService, CreateVolume, CreateVolumeRequest, Volume)
  CP_MUTATION(VolumesService, DeleteVolume, DeleteVolumeRequest, Empty)
  CP_MUTATION(VolumesService, AttachVolume, AttachVolumeRequest, Volume)
  CP_MUTATION(VolumesService, DetachVolume, DetachVolumeRequest, Volume)
  // enstratus_networks.cc: networks without update or addresses.
  CP_READ(NetworksService, ListNetworks, ListNetworksRequest, ListNetworksResponse)
  CP_READ(NetworksService, GetNetwork, GetNetworkRequest, Network)
  CP_MUTATION(NetworksService, CreateNetwork, CreateNetworkRequest, Network)
  CP_MUTATION(NetworksService, DeleteNetwork, DeleteNetworkRequest, Empty)
#undef CP_READ
#undef CP_MUTATION
#undef CP_ENSTRATUS_DECLARE

 private:
  // The DCM id behind `name` (`accounts/<a>/<collection>/<id or alias>`);
  // INVALID_ARGUMENT naming `field` for a bad shape, else as
  // AliasBook::Resolve.
  absl::StatusOr<int64_t> Resolve(AliasKind kind, absl::string_view field,
                                  const std::string& name) const;
  // {firewall segment, rule id} of a rule name whose firewall exists.
  absl::StatusOr<std::pair<std::string, int64_t>> ResolveRule(const std::string& name) const;
  // Names of catalog resources are always DCM ids: NOT_FOUND otherwise.
  absl::StatusOr<int64_t> NumericId(absl::string_view field, absl::string_view collection,
                                    absl::string_view what, const std::string& name) const;

  // Delete of an instance, firewall or volume named by DCM id or alias:
  // NOT_FOUND is done with `allow_missing`; then validate_only; then
  // `DELETE <path><id>` as a job of `job_kind` (DCM may answer 204 at once).
  // `noun` names the resource in the request's context ("DELETE server 3").
  void DeleteResource(const CallContext& ctx, AliasKind kind, JobToken::Kind job_kind,
                      absl::string_view path, absl::string_view noun, const std::string& name,
                      bool allow_missing, Callback<MutationProgress> done);
  void ServerAction(const CallContext& ctx, const std::string& name, JobToken::Kind kind,
                    Callback<MutationProgress> done);
  void VolumeChange(const CallContext& ctx, const std::string& volume_name,
                    const std::string& instance_name, bool attach, const std::string& device,
                    Callback<MutationProgress> done);

  const AccountPtr a_;
};

}  // namespace cloudplane::adapters::enstratus

#endif  // CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_PROVIDER_H_
