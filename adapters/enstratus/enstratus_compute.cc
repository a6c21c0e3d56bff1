// ComputeService instances: DCM servers (infrastructure/Server).
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/enstratus/enstratus_jobs.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "adapters/enstratus/enstratus_send.h"
#include "base/errors.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::enstratus {
namespace {

constexpr char kAliasRule[] = "must be 1-63 characters of [a-z0-9-] starting with a letter";

// Everything DCM would refuse in a launch for a fixed reason, with the field
// named (no I/O; firewall aliases are read from memory).
absl::Status CheckLaunch(const Account& a, const v1::CreateInstanceRequest& request,
                         LaunchSpec& spec, int64_t& product_id) {
  const v1::Instance& in = request.instance();
  absl::Status status;
  const std::string& alias = request.instance_id();
  if (!alias.empty() && !IsValidAlias(alias)) AddFieldViolation(status, "instance_id", kAliasRule);
  auto dcm_ref = [&](absl::string_view field, absl::string_view collection,
                     const std::string& value) -> int64_t {
    if (value.empty()) {
      AddFieldViolation(status, field, "is required by enStratus to launch a server");
      return 0;
    }
    absl::StatusOr<std::string> seg = SegmentOf(field, a.id, collection, value);
    std::optional<int64_t> id = seg.ok() ? ParseDcmId(*seg) : std::nullopt;
    if (!id.has_value()) {
      AddFieldViolation(
          status, field,
          absl::StrCat("must be accounts/", a.id, "/", collection, "/{enStratus id}"));
      return 0;
    }
    return *id;
  };
  spec.machine_image_id = dcm_ref("instance.image", "images", in.image());
  product_id = dcm_ref("instance.machine_type", "machineTypes", in.machine_type());
  if (in.location().empty()) {
    AddFieldViolation(status, "instance.location", "is required (a data center)");
  } else {
    absl::StatusOr<std::string> seg =
        SegmentOf("instance.location", a.id, "locations", in.location());
    std::optional<LocationRef> ref = seg.ok() ? ParseLocationSegment(*seg) : std::nullopt;
    if (!ref.has_value() || ref->kind != LocationRef::kDataCenter) {
      AddFieldViolation(status, "instance.location",
                        "must be a data center, accounts/{account}/locations/dc-{id}");
    } else {
      spec.data_center_id = ref->id;
    }
  }
  if (!in.billing_code().empty()) {
    spec.budget = dcm_ref("instance.billing_code", "billingCodes", in.billing_code());
  } else if (a.budget > 0) {
    spec.budget = a.budget;
  } else {
    AddFieldViolation(status, "instance.billing_code",
                      "is required (enStratus charges every server to a budget code) unless "
                      "the account sets option budget");
  }
  for (int i = 0; i < in.firewalls_size(); ++i) {
    const std::string field = absl::StrCat("instance.firewalls[", i, "]");
    absl::StatusOr<std::string> seg = SegmentOf(field, a.id, "firewalls", in.firewalls(i));
    if (!seg.ok()) {
      AddFieldViolation(status, field, "must be accounts/{account}/firewalls/{firewall}");
      continue;
    }
    absl::StatusOr<int64_t> fw =
        a.aliases->Resolve(AliasKind::kFirewall, "firewall", in.firewalls(i), *seg);
    if (!fw.ok()) {
      AddFieldViolation(status, field, fw.status().message());
      continue;
    }
    spec.firewall_ids.push_back(*fw);
  }
  // A launch names at most one network (`network`, §7); an interface holds
  // nothing else DCM could be told. The server's field contract refuses
  // the other interface fields before this runs; they are refused here too,
  // so the adapter never drops one whoever calls it.
  for (int i = 0; i < in.network_interfaces_size(); ++i) {
    const std::string field = absl::StrCat("instance.network_interfaces[", i, "]");
    if (i > 0) {
      AddFieldViolation(status, field, "enStratus launches a server on one network");
      continue;
    }
    const v1::NetworkInterface& nic = in.network_interfaces(i);
    for (const auto& [value, name] :
         {std::pair{&nic.address(), ".address"}, std::pair{&nic.mac_address(), ".mac_address"},
          std::pair{&nic.model(), ".model"}, std::pair{&nic.firewall(), ".firewall"}}) {
      if (!value->empty()) {
        AddFieldViolation(status, absl::StrCat(field, name),
                          "an enStratus launch takes only the interface's network");
      }
    }
    if (nic.network().empty()) {
      AddFieldViolation(status, absl::StrCat(field, ".network"),
                        "is required: the enStratus network to launch into");
    } else {
      spec.network_id = dcm_ref(absl::StrCat(field, ".network"), "networks", nic.network());
    }
  }
  if (request.has_start() && !request.start()) {
    AddFieldViolation(status, "start", "enStratus launches servers running");
  }
  for (const auto& [key, value] : in.labels()) {
    if (key != "label") {
      AddFieldViolation(status, absl::StrCat("instance.labels.", key),
                        "enStratus keeps one label per server: use the key \"label\"");
    }
  }
  spec.description = in.display_name();
  for (const auto& [key, value] : in.provider_options().fields()) {
    if (key == "description" && value.has_string_value()) {
      spec.description = value.string_value();
    } else {
      AddFieldViolation(status, absl::StrCat("instance.provider_options.", key),
                        "unknown: the enstratus adapter reads only \"description\" (a string)");
    }
  }
  if (!status.ok()) return status;
  spec.name = !in.display_name().empty() ? in.display_name()
              : !alias.empty()           ? alias
                                         : "cloudplane";
  if (spec.description.empty()) spec.description = spec.name;
  spec.keypair = in.key_name();
  spec.user_data = in.user_data();
  if (auto it = in.labels().find("label"); it != in.labels().end()) spec.label = it->second;
  return absl::OkStatus();
}

absl::StatusOr<ProductInfo> ParseProductAnswer(const absl::StatusOr<http::HttpResponse>& r,
                                               absl::string_view context) {
  if (!r.ok()) return r.status();
  if (r->status == 404) {
    return InvalidField("instance.machine_type", "no such machine type in enStratus");
  }
  if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) return s;
  return ParseFirstProduct(r->body);
}

}  // namespace

void EnstratusProvider::ListInstances(const CallContext& ctx,
                                      const v1::ListInstancesRequest& request,
                                      Callback<v1::ListInstancesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  GetAll<v1::Instance>(
      *a_, ctx.deadline, "infrastructure/Server", "", "GET servers",
      [id = a_->id, aliases = *std::move(aliases)](absl::string_view body) {
        return ParseServers(body, id, aliases);
      },
      AnswerPage<v1::ListInstancesResponse, v1::Instance>(request.page_size(),
                                                          request.page_token(), std::move(done)));
}

void EnstratusProvider::GetInstance(const CallContext& ctx, const v1::GetInstanceRequest& request,
                                    Callback<v1::Instance> done) {
  absl::StatusOr<int64_t> id = Resolve(AliasKind::kInstance, "name", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  GetOne<v1::Instance>(
      *a_, ctx.deadline, absl::StrCat("infrastructure/Server/", *id),
      absl::StrCat("GET server ", *id), request.name(),
      [account_id = a_->id, aliases = *std::move(aliases)](absl::string_view body) {
        return ParseServers(body, account_id, aliases);
      },
      std::move(done));
}

void EnstratusProvider::CreateInstance(const CallContext& ctx,
                                       const v1::CreateInstanceRequest& request,
                                       Callback<MutationProgress> done) {
  LaunchSpec spec;
  int64_t product_id = 0;
  if (absl::Status s = CheckLaunch(*a_, request, spec, product_id); !s.ok()) {
    return std::move(done)(s);
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));

  // The tag lets a re-drive find the server by its description.
  spec.description = TaggedDescription(spec.description, ctx.operation);
  const JobCall call = CallOf(a_, ctx);
  StartCreate(
      call, NewJobToken(JobToken::LAUNCH, 0, request.instance_id()), "instance",
      {"infrastructure/Server", "servers", "serverId", spec.name},
      [a = a_, deadline = ctx.deadline, spec, product_id](Callback<JobRequest> ready) mutable {
        // The launch names the provider's product id (§7), so look it up first.
        const std::string context = absl::StrCat("GET server product ", product_id);
        Send(*a, deadline, "GET", absl::StrCat("infrastructure/ServerProduct/", product_id), "",
             "", context,
             [spec, context, ready = std::move(ready)](
                 absl::StatusOr<http::HttpResponse> r) mutable {
               absl::StatusOr<ProductInfo> product = ParseProductAnswer(r, context);
               if (!product.ok()) return std::move(ready)(product.status());
               spec.provider_product_id = product->provider_product_id;
               std::move(ready)(JobRequest{"POST", "infrastructure/Server", "",
                                           LaunchBody(spec), "POST launch"});
             });
      },
      std::move(done));
}

void EnstratusProvider::DeleteInstance(const CallContext& ctx,
                                       const v1::DeleteInstanceRequest& request,
                                       Callback<MutationProgress> done) {
  DeleteResource(ctx, AliasKind::kInstance, JobToken::TERMINATE, "infrastructure/Server/",
                 "server", request.name(), request.allow_missing(), std::move(done));
}

void EnstratusProvider::StartInstance(const CallContext& ctx,
                                      const v1::StartInstanceRequest& request,
                                      Callback<MutationProgress> done) {
  ServerAction(ctx, request.name(), JobToken::START, std::move(done));
}

void EnstratusProvider::StopInstance(const CallContext& ctx,
                                     const v1::StopInstanceRequest& request,
                                     Callback<MutationProgress> done) {
  ServerAction(ctx, request.name(), JobToken::STOP, std::move(done));
}

void EnstratusProvider::ServerAction(const CallContext& ctx, const std::string& name,
                                     JobToken::Kind kind, Callback<MutationProgress> done) {
  absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "instances", name);
  if (!seg.ok()) return std::move(done)(seg.status());
  absl::StatusOr<int64_t> id = a_->aliases->Resolve(AliasKind::kInstance, "instance", name, *seg);
  if (!id.ok()) return std::move(done)(id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Instance()));
  const bool stop = kind == JobToken::STOP;
  // DCM's actions (§7): stop takes a reason, start none.
  const absl::string_view action = stop ? "stop" : "start";
  const JobCall call = CallOf(a_, ctx);
  const std::string context = absl::StrCat("PUT ", action, " server ", *id);
  StartJob(call,
           {"PUT", absl::StrCat("infrastructure/Server/", *id), "",
            ServerActionBody(action, stop ? "Requested through cloudplane" : ""), context},
           NewJobToken(kind, *id, IsValidAlias(*seg) ? *seg : ""), Unexpected(context),
           std::move(done));
}

}  // namespace cloudplane::adapters::enstratus
