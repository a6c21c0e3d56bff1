// The enStratus adapter's entry points: what it supports, the factory that
// builds a Provider for one account, and what every service shares (name
// lookups, deletes).
#include "adapters/enstratus/enstratus_adapter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/kit/account.h"
#include "adapters/common/kit/progress.h"
#include "adapters/enstratus/enstratus_jobs.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "base/errors.h"
#include "base/status.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::enstratus {
namespace {

constexpr char kDefaultBasePath[] = "/api/enstratus/2015-05-25";

// The collection segment of names and the noun of messages for each kind.
struct AliasNames {
  absl::string_view collection;
  absl::string_view what;
};
AliasNames NamesOf(AliasKind kind) {
  switch (kind) {
    case AliasKind::kInstance:
      return {"instances", "instance"};
    case AliasKind::kFirewall:
      return {"firewalls", "firewall"};
    case AliasKind::kVolume:
      return {"volumes", "volume"};
  }
  return {"", ""};
}

// The creates DCM charges to a budget code, which no request field names:
// supported only with the account option `budget`.
std::vector<std::string> NeedBudget() {
  return {FullMethodName("FirewallsService", "CreateFirewall"),
          FullMethodName("NetworksService", "CreateNetwork")};
}

}  // namespace

const ProviderInfo& EnstratusProvider::Info() const {
  static const auto* const kInfo = new ProviderInfo(EnstratusProviderInfo());
  return *kInfo;
}

std::vector<std::string> EnstratusProvider::SupportedMethods() const {
  std::vector<std::string> methods = Info().supported_methods;
  if (a_->budget <= 0) {
    for (const std::string& create : NeedBudget()) {
      methods.erase(std::remove(methods.begin(), methods.end(), create), methods.end());
    }
  }
  return methods;
}

std::vector<std::string> EnstratusProvider::HonouredFields(const std::string& method) const {
  if (a_->budget <= 0) {
    for (const std::string& create : NeedBudget()) {
      if (method == create) return {};  // not supported without the option
    }
  }
  return Provider::HonouredFields(method);
}

absl::StatusOr<int64_t> EnstratusProvider::Resolve(AliasKind kind, absl::string_view field,
                                                   const std::string& name) const {
  const AliasNames names = NamesOf(kind);
  ASSIGN_OR_RETURN(std::string seg, SegmentOf(field, a_->id, names.collection, name));
  return a_->aliases->Resolve(kind, names.what, name, seg);
}

absl::StatusOr<int64_t> EnstratusProvider::NumericId(absl::string_view field,
                                                     absl::string_view collection,
                                                     absl::string_view what,
                                                     const std::string& name) const {
  ASSIGN_OR_RETURN(std::string seg, SegmentOf(field, a_->id, collection, name));
  std::optional<int64_t> id = ParseDcmId(seg);
  if (!id.has_value()) return kit::NotFound(what, name);
  return *id;
}

void EnstratusProvider::DeleteResource(const CallContext& ctx, AliasKind kind,
                                       JobToken::Kind job_kind, absl::string_view path,
                                       absl::string_view noun, const std::string& name,
                                       bool allow_missing, Callback<MutationProgress> done) {
  const AliasNames names = NamesOf(kind);
  absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, names.collection, name);
  if (!seg.ok()) return std::move(done)(seg.status());
  absl::StatusOr<int64_t> id = a_->aliases->Resolve(kind, names.what, name, *seg);
  if (!id.ok()) {
    if (id.status().code() == absl::StatusCode::kNotFound && allow_missing) {
      return std::move(done)(kit::Finished(google::protobuf::Empty()));
    }
    return std::move(done)(id.status());
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(google::protobuf::Empty()));
  const JobCall call = CallOf(a_, ctx);
  const JobToken token = NewJobToken(job_kind, *id, IsValidAlias(*seg) ? *seg : "");
  const std::string context = absl::StrCat("DELETE ", noun, " ", *id);
  StartJob(call, {"DELETE", absl::StrCat(path, *id), kReasonQuery, "", context}, token,
           SyncDelete(call, context, allow_missing, token), std::move(done));
}

ProviderInfo EnstratusProviderInfo() {
  ProviderInfo info;
  info.kind = "enstratus";
  info.display_name = "enStratus / Dell Cloud Manager";
  info.protocol = "REST/JSON over HTTPS, HMAC-SHA256 signed requests (x-esauth-*)";
  // DCM has no change feed; the server learns by reading.
  info.watch_source = WatchSource::kPoll;
  kit::AddMethods(info.supported_methods, "ComputeService",
                  {"ListInstances", "GetInstance", "CreateInstance", "DeleteInstance",
                   "StartInstance", "StopInstance", "ListImages", "GetImage", "ListMachineTypes",
                   "GetMachineType", "ListLocations", "GetLocation"});
  kit::AddMethods(info.supported_methods, "FirewallsService",
                  {"ListFirewalls", "GetFirewall", "CreateFirewall", "DeleteFirewall",
                   "ListFirewallRules", "GetFirewallRule", "CreateFirewallRule",
                   "DeleteFirewallRule"});
  kit::AddMethods(info.supported_methods, "BillingService", {"ListBillingCodes", "GetBillingCode"});
  kit::AddMethods(info.supported_methods, "VolumesService",
                  {"ListVolumes", "GetVolume", "CreateVolume", "DeleteVolume", "AttachVolume",
                   "DetachVolume"});
  kit::AddMethods(info.supported_methods, "NetworksService",
                  {"ListNetworks", "GetNetwork", "CreateNetwork", "DeleteNetwork"});
  // The strict field contract: what each mutation carries out (the header's
  // "Fields" section says what it does not).
  // The launch body: name (display_name, else instance_id, the alias),
  // description (provider_options' one key "description", else the name),
  // machineImage, product, dataCenter, budget, keypair, firewalls, label
  // (the one label key "label"), userData, network (the network of the one
  // interface allowed; its address, MAC, model and firewall are not
  // honoured). start=true is how DCM launches; start=false is refused by
  // the adapter.
  kit::Honour(info, "ComputeService", "CreateInstance",
              {"instance_id", "instance.display_name", "instance.image", "instance.machine_type",
               "instance.location", "instance.billing_code", "instance.firewalls",
               "instance.key_name", "instance.user_data", "instance.labels",
               "instance.network_interfaces.network", "instance.provider_options", "start"});
  kit::Honour(info, "ComputeService", "DeleteInstance", {"allow_missing"});
  kit::Honour(info, "ComputeService", "StartInstance", {});
  kit::Honour(info, "ComputeService", "StopInstance", {});
  // addFirewall: name, description, region, label (the rules come one by
  // one: a non-empty rules list is refused by the adapter).
  kit::Honour(info, "FirewallsService", "CreateFirewall",
              {"firewall_id", "firewall.display_name", "firewall.description",
               "firewall.location", "firewall.labels"});
  kit::Honour(info, "FirewallsService", "DeleteFirewall", {"allow_missing"});
  // addRule: direction, permission, protocol, ports, the rule's far end as
  // one CIDR or one firewall (type GLOBAL); the adapter refuses an end at the
  // firewall's own side. DCM has no address-range or network ends here.
  kit::Honour(info, "FirewallsService", "CreateFirewallRule",
              {"rule.direction", "rule.action", "rule.protocol", "rule.port_range_start",
               "rule.port_range_end", "rule.source_ranges", "rule.destination_ranges",
               "rule.source_firewalls", "rule.destination_firewalls"});
  kit::Honour(info, "FirewallsService", "DeleteFirewallRule", {"allow_missing"});
  // addVolume: name, description and budget (provider_options), dataCenter,
  // sizeInGb, label; media DISK is what DCM makes (CDROM is refused).
  kit::Honour(info, "VolumesService", "CreateVolume",
              {"volume_id", "volume.display_name", "volume.size_bytes", "volume.location",
               "volume.media", "volume.labels", "volume.provider_options"});
  kit::Honour(info, "VolumesService", "DeleteVolume", {"allow_missing"});
  // device is DCM's deviceId.
  kit::Honour(info, "VolumesService", "AttachVolume", {"instance", "device"});
  kit::Honour(info, "VolumesService", "DetachVolume", {"instance"});
  // addNetwork: name (display_name; also the description DCM requires),
  // networkAddress (the one CIDR range), region (location), label (the one
  // label key "label"), dnsServers. network_id is not honoured: a network is
  // named by its DCM id.
  kit::Honour(info, "NetworksService", "CreateNetwork",
              {"network.display_name", "network.cidr_ranges", "network.dns_servers",
               "network.location", "network.labels"});
  kit::Honour(info, "NetworksService", "DeleteNetwork", {"allow_missing"});
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateEnstratusProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  auto account = std::make_shared<Account>();
  account->id = setup.account;
  absl::Status status = kit::CheckOptions(setup, {"budget"}, "enstratus");
  if (auto it = setup.options.find("budget"); it != setup.options.end()) {
    std::optional<int64_t> id = ParseDcmId(it->second);
    if (!id.has_value() || *id <= 0) {
      AddFieldViolation(status, "options.budget", "must be an enStratus billingCodeId");
    } else {
      account->budget = *id;
    }
  }
  absl::StatusOr<ApiKeys> api_keys = ParseApiKeys(setup.secret);
  if (!api_keys.ok()) {
    AddFieldViolation(status, "credentials",
                      "must be \"ACCESS_KEY:SECRET_KEY\" (the enStratus API key pair)");
  }
  // Parsed here, not with kit::ParseAccountEndpoint, so that a bad endpoint
  // is reported together with the other bad fields.
  absl::StatusOr<http::Endpoint> endpoint = http::ParseEndpoint(setup.endpoint);
  if (!endpoint.ok()) AddFieldViolation(status, "endpoint", endpoint.status().message());
  if (!status.ok()) return status;
  account->keys = *std::move(api_keys);
  // The signature covers the endpoint's path (the basepath, §1-2).
  const size_t scheme = endpoint->base_url.find("://");
  const size_t slash = endpoint->base_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash == std::string::npos) {
    endpoint->base_url += kDefaultBasePath;
    account->basepath = kDefaultBasePath;
  } else {
    account->basepath = endpoint->base_url.substr(slash);
  }
  if (setup.scratch == nullptr || setup.loop == nullptr) {
    return absl::FailedPreconditionError(
        "the enstratus provider needs the account's scratch store and the event loop");
  }
  absl::StatusOr<std::unique_ptr<AliasBook>> aliases =
      AliasBook::Open(setup.scratch, setup.account);
  if (!aliases.ok()) return aliases.status();
  account->aliases = *std::move(aliases);
  // The signature names the User-Agent the client sends (§2).
  account->user_agent = http::HttpClientOptions().user_agent;
  absl::StatusOr<std::unique_ptr<http::HttpClient>> client =
      kit::MakeHttpClient(*std::move(endpoint), setup, std::move(transport));
  if (!client.ok()) return client.status();
  account->client = *std::move(client);
  return std::make_unique<EnstratusProvider>(std::move(account));
}

absl::Status RegisterEnstratus(AdapterRegistry& registry) {
  return registry.Register(EnstratusProviderInfo(), [](const AccountSetup& setup) {
    return CreateEnstratusProvider(setup);
  });
}

}  // namespace cloudplane::adapters::enstratus
