// The phantom Provider's class and what its service files share. Internal
// to adapters/phantom; the public entry point is phantom_adapter.h.
//
//   phantom_adapter.cc      the factory (options, secret, endpoints), Info
//   phantom_send.cc         the two send helpers: the Auto Scaling query API
//                           (SigV4, XML answers, every page of a describe)
//                           and the REST API (token, then Basic auth)
//   phantom_autoscaling.cc  launch templates, scaling groups, their polls
//   phantom_locations.cc    sites through the REST API
//
// Threads: methods start on the caller's thread; the steps after the first
// request run in HTTP completions (the transport thread). Nothing here
// touches SQLite: the creation marks live in the account's ScratchStore,
// whose reads are memory and whose writes run on the EventLoop.
#ifndef CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_PROVIDER_H_
#define CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_PROVIDER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/common/aws/query.h"
#include "adapters/common/aws/sigv4.h"
#include "adapters/common/http/http_client.h"
#include "adapters/phantom/phantom_wire.h"
#include "adapters/provider.h"
#include "adapters/scratch_store.h"

namespace cloudplane::adapters::phantom {

// The ScratchStore collection where the adapter marks what an operation
// created: id `<lt|sg>/<id>`, bytes the operation's name.
inline constexpr absl::string_view kCreatesCollection = "phantom.creates";

// One account, built by the factory and shared (read-only but for the REST
// token) by every request in flight.
struct Account {
  std::string id;
  Dialect dialect = Dialect::kPhantom;
  std::unique_ptr<http::HttpClient> query;
  std::string query_path;   // base path + "/"
  std::string signed_host;  // the Host value that is signed
  aws::Credentials credentials;
  std::string region, service;
  int max_records = 50;
  std::string default_location;
  // Null in unit tests that need no marks: creates are then not re-drivable.
  ScratchStore* scratch = nullptr;

  // REST API (phantom dialect); null when not configured.
  std::unique_ptr<http::HttpClient> rest;
  std::string username, password;
  mutable absl::Mutex mu;
  mutable std::string user_id ABSL_GUARDED_BY(mu);
  mutable std::string token ABSL_GUARDED_BY(mu);
};
using AccountPtr = std::shared_ptr<const Account>;

// ---------------------------------------------------------------------------
// phantom_send.cc

using QueryCallback = absl::AnyInvocable<void(absl::StatusOr<aws::QueryResponse>)>;

// One query API action, signed (SigV4 in the account's dialect) and sent;
// the parsed answer, or the error the AWS error XML maps to. Transport
// errors are prefixed with the action (kit::Send).
void Query(const AccountPtr& account, absl::Time deadline, const std::string& action,
           aws::QueryParams params, QueryCallback done);

// Every page of DescribeLaunchConfigurations.
void DescribeLaunchConfigs(const AccountPtr& account, absl::Time deadline,
                           Callback<std::vector<WireLaunchConfig>> done);
// Every page of DescribeAutoScalingGroups; `name` empty: every group, else
// only that one (or none).
void DescribeGroups(const AccountPtr& account, absl::Time deadline, const std::string& name,
                    Callback<std::vector<WireGroup>> done);

// GET /sites of the REST API (token acquired first, and once more after a
// 403); FAILED_PRECONDITION when the account has no REST API.
void FetchSites(const AccountPtr& account, absl::Time deadline,
                Callback<std::vector<v1::Location>> done);

// ---------------------------------------------------------------------------

class PhantomProvider final : public Provider {
 public:
  explicit PhantomProvider(AccountPtr account) : account_(std::move(account)) {}

  const ProviderInfo& Info() const override;
  // Info's methods, less ListLocations and GetLocation when the account has
  // no REST API (the aws dialect, or no option rest_endpoint): sites are
  // read only through it.
  std::vector<std::string> SupportedMethods() const override;
  // Info()'s lists in the phantom dialect; in the aws dialect
  // CreateLaunchTemplate honours key_name and not locations
  // (phantom_adapter.cc).
  std::vector<std::string> HonouredFields(const std::string& method) const override;

  // phantom_autoscaling.cc
  void PollOperation(const CallContext& ctx, const std::string& poll_token,
                     Callback<MutationProgress> done) override;
  void ListLaunchTemplates(const CallContext& ctx, const v1::ListLaunchTemplatesRequest& request,
                           Callback<v1::ListLaunchTemplatesResponse> done) override;
  void GetLaunchTemplate(const CallContext& ctx, const v1::GetLaunchTemplateRequest& request,
                         Callback<v1::LaunchTemplate> done) override;
  void CreateLaunchTemplate(const CallContext& ctx, const v1::CreateLaunchTemplateRequest& request,
                            Callback<MutationProgress> done) override;
  void DeleteLaunchTemplate(const CallContext& ctx, const v1::DeleteLaunchTemplateRequest& request,
                            Callback<MutationProgress> done) override;
  void ListScalingGroups(const CallContext& ctx, const v1::ListScalingGroupsRequest& request,
                         Callback<v1::ListScalingGroupsResponse> done) override;
  void GetScalingGroup(const CallContext& ctx, const v1::GetScalingGroupRequest& request,
                       Callback<v1::ScalingGroup> done) override;
  void CreateScalingGroup(const CallContext& ctx, const v1::CreateScalingGroupRequest& request,
                          Callback<MutationProgress> done) override;
  void ResizeScalingGroup(const CallContext& ctx, const v1::ResizeScalingGroupRequest& request,
                          Callback<MutationProgress> done) override;
  void DeleteScalingGroup(const CallContext& ctx, const v1::DeleteScalingGroupRequest& request,
                          Callback<MutationProgress> done) override;

  // phantom_locations.cc
  void ListLocations(const CallContext& ctx, const v1::ListLocationsRequest& request,
                     Callback<v1::ListLocationsResponse> done) override;
  void GetLocation(const CallContext& ctx, const v1::GetLocationRequest& request,
                   Callback<v1::Location> done) override;

 private:
  const AccountPtr account_;
};

}  // namespace cloudplane::adapters::phantom

#endif  // CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_PROVIDER_H_
