// NetworksService: DCM networks (network/Network; mixcoatl's Network). DCM's
// API has no network update and no address resources.
#include <arpa/inet.h>

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/enstratus/enstratus_jobs.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "adapters/enstratus/enstratus_send.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::enstratus {
namespace {

// An IPv4 address.
bool IsIpv4(const std::string& s) {
  in_addr addr;
  return inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

// `a.b.c.d/n` with no host bits set: networkAddress is "an IPv4 CIDR
// representing the block of IP addresses hosted in this network"
// (mixcoatl's Network.network_address).
bool IsIpv4Cidr(const std::string& s) {
  std::vector<std::string> parts = absl::StrSplit(s, '/');
  int prefix = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &prefix) || prefix < 0 || prefix > 32) {
    return false;
  }
  in_addr addr;
  if (inet_pton(AF_INET, parts[0].c_str(), &addr) != 1) return false;
  const uint32_t host = ntohl(addr.s_addr);
  const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (host & ~mask) == 0;
}

// Everything DCM would refuse in addNetwork for a fixed reason (no I/O).
absl::Status CheckAddNetwork(const Account& a, const v1::CreateNetworkRequest& request,
                             NetworkSpec& spec) {
  const v1::Network& in = request.network();
  absl::Status status;
  absl::StatusOr<std::string> seg =
      in.location().empty()
          ? absl::StatusOr<std::string>(absl::NotFoundError(""))
          : SegmentOf("network.location", a.id, "locations", in.location());
  std::optional<LocationRef> ref = seg.ok() ? ParseLocationSegment(*seg) : std::nullopt;
  if (!ref.has_value() || ref->kind != LocationRef::kRegion) {
    AddFieldViolation(status, "network.location",
                      "is required: a region, accounts/{account}/locations/region-{id}");
  } else {
    spec.region_id = ref->id;
  }
  if (in.cidr_ranges_size() != 1 || !IsIpv4Cidr(in.cidr_ranges(0))) {
    AddFieldViolation(status, "network.cidr_ranges",
                      "enStratus takes exactly one IPv4 CIDR (networkAddress), e.g. 10.0.0.0/16");
  } else {
    spec.cidr = in.cidr_ranges(0);
  }
  for (int i = 0; i < in.dns_servers_size(); ++i) {
    if (!IsIpv4(in.dns_servers(i))) {
      AddFieldViolation(status, absl::StrCat("network.dns_servers[", i, "]"),
                        "must be an IPv4 address");
    } else {
      spec.dns_servers.push_back(in.dns_servers(i));
    }
  }
  for (const auto& [key, value] : in.labels()) {
    if (key != "label") {
      AddFieldViolation(status, absl::StrCat("network.labels.", key),
                        "enStratus keeps one label per network: use the key \"label\"");
    }
  }
  if (!status.ok()) return status;
  if (a.budget <= 0) {
    return WithErrorInfo(
        absl::FailedPreconditionError("enStratus charges networks to a budget code: set the "
                                      "account option budget"),
        reasons::kAccountOptionMissing, {{"option", "budget"}});
  }
  spec.budget = a.budget;
  spec.name = in.display_name().empty() ? "cloudplane" : in.display_name();
  // mixcoatl requires a description; the Network message has none.
  spec.description = spec.name;
  if (auto it = in.labels().find("label"); it != in.labels().end()) spec.label = it->second;
  return absl::OkStatus();
}

}  // namespace

void EnstratusProvider::ListNetworks(const CallContext& ctx, const v1::ListNetworksRequest& request,
                                     Callback<v1::ListNetworksResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  // activeOnly=false: networks being made or removed are listed too
  // (mixcoatl's default, true, would hide them).
  GetAll<v1::Network>(
      *a_, ctx.deadline, "network/Network", "?activeOnly=false", "GET networks",
      [id = a_->id](absl::string_view body) { return ParseNetworks(body, id); },
      AnswerPage<v1::ListNetworksResponse, v1::Network>(request.page_size(), request.page_token(),
                                                        std::move(done)));
}

void EnstratusProvider::GetNetwork(const CallContext& ctx, const v1::GetNetworkRequest& request,
                                   Callback<v1::Network> done) {
  absl::StatusOr<int64_t> id = NumericId("name", "networks", "network", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  GetOne<v1::Network>(
      *a_, ctx.deadline, absl::StrCat("network/Network/", *id), absl::StrCat("GET network ", *id),
      request.name(),
      [account_id = a_->id](absl::string_view body) { return ParseNetworks(body, account_id); },
      std::move(done));
}

void EnstratusProvider::CreateNetwork(const CallContext& ctx,
                                      const v1::CreateNetworkRequest& request,
                                      Callback<MutationProgress> done) {
  NetworkSpec spec;
  if (absl::Status s = CheckAddNetwork(*a_, request, spec); !s.ok()) return std::move(done)(s);
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Network()));
  // The tag lets a re-drive find the network by its description.
  spec.description = TaggedDescription(spec.description, ctx.operation);
  StartCreate(CallOf(a_, ctx), NewJobToken(JobToken::NETWORK_CREATE, 0, ""), "network",
              {"network/Network", "networks", "networkId", spec.name},
              [body = AddNetworkBody(spec)](Callback<JobRequest> ready) mutable {
                std::move(ready)(JobRequest{"POST", "network/Network", "", std::move(body),
                                            "POST addNetwork"});
              },
              std::move(done));
}

void EnstratusProvider::DeleteNetwork(const CallContext& ctx,
                                      const v1::DeleteNetworkRequest& request,
                                      Callback<MutationProgress> done) {
  absl::StatusOr<int64_t> id = NumericId("name", "networks", "network", request.name());
  if (!id.ok()) {
    if (id.status().code() == absl::StatusCode::kNotFound && request.allow_missing()) {
      return std::move(done)(kit::Finished(google::protobuf::Empty()));
    }
    return std::move(done)(id.status());
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  const JobCall call = CallOf(a_, ctx);
  const JobToken token = NewJobToken(JobToken::NETWORK_DELETE, *id, "");
  const std::string context = absl::StrCat("DELETE network ", *id);
  StartJob(call, {"DELETE", absl::StrCat("network/Network/", *id), kReasonQuery, "", context},
           token, SyncDelete(call, context, request.allow_missing(), token), std::move(done));
}

}  // namespace cloudplane::adapters::enstratus
