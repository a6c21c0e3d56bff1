// The CloudSigma adapter's entry points: what it supports, and the factory
// that builds one account's Provider (and starts its feed). The services are
// in the files cloudsigma_provider.h lists.
#include "adapters/cloudsigma/cloudsigma_adapter.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/account.h"
#include "adapters/common/websocket/websocket_client.h"
#include "base/errors.h"

namespace cloudplane::adapters::cloudsigma {

CloudSigmaProvider::CloudSigmaProvider(AccountPtr account, std::shared_ptr<Feed> feed)
    : account_(std::move(account)), feed_(std::move(feed)) {}

CloudSigmaProvider::~CloudSigmaProvider() {
  if (feed_) feed_->Stop();
}

const ProviderInfo& CloudSigmaProvider::Info() const {
  static const auto* const kInfo = new ProviderInfo(CloudSigmaProviderInfo());
  return *kInfo;
}

ProviderInfo CloudSigmaProviderInfo() {
  ProviderInfo info;
  info.kind = "cloudsigma";
  info.display_name = "CloudSigma API 2.0";
  info.protocol = "REST/JSON over HTTPS, events over a websocket";
  info.watch_source = WatchSource::kPush;
  kit::AddMethods(info.supported_methods, "ComputeService",
                  {"ListInstances", "GetInstance", "CreateInstance", "UpdateInstance",
                   "DeleteInstance", "StartInstance", "StopInstance", "RebootInstance",
                   "GetInstanceMetadata", "UpdateInstanceMetadata", "ListImages", "GetImage",
                   "ListLocations", "GetLocation", "AttachNetworkInterface",
                   "DetachNetworkInterface", "ListKeyPairs", "GetKeyPair", "CreateKeyPair",
                   "DeleteKeyPair"});
  kit::AddMethods(info.supported_methods, "NetworksService",
                  {"ListNetworks", "GetNetwork", "CreateNetwork", "UpdateNetwork", "DeleteNetwork",
                   "ListAddresses", "GetAddress", "ReserveAddress", "ReleaseAddress"});
  kit::AddMethods(info.supported_methods, "FirewallsService",
                  {"ListFirewalls", "GetFirewall", "CreateFirewall", "DeleteFirewall",
                   "ListFirewallRules", "GetFirewallRule", "CreateFirewallRule",
                   "DeleteFirewallRule"});
  kit::AddMethods(info.supported_methods, "VolumesService",
                  {"ListVolumes", "GetVolume", "CreateVolume", "CloneVolume", "UpdateVolume",
                   "DeleteVolume", "AttachVolume", "DetachVolume"});
  // The strict field contract: what each mutation carries out (the header's
  // "Fields" section says what it does not).
  // A server's name (display_name, else instance_id), cpu, mem, smp, meta
  // (labels under cloudplane_label_; instance_id as cloudplane_id),
  // vnc_password (the one key of provider_options), pubkeys (key_name's
  // keypair) and nics (each interface's VLAN, static IP and model; the MAC
  // is CloudSigma's to give, per-NIC firewalls are not carried); start
  // sends the start action; image: the library drive is cloned and the
  // clone attached as the boot drive.
  kit::Honour(info, "ComputeService", "CreateInstance",
              {"instance_id", "instance.display_name", "instance.cpu_mhz",
               "instance.memory_bytes", "instance.cpu_count", "instance.labels",
               "instance.provider_options", "instance.key_name", "instance.image",
               "instance.network_interfaces.network", "instance.network_interfaces.address",
               "instance.network_interfaces.model", "start"});
  // The NIC appended to (removed by mac from) the server's nics.
  kit::Honour(info, "ComputeService", "AttachNetworkInterface",
              {"network_interface.network", "network_interface.address",
               "network_interface.model"});
  kit::Honour(info, "ComputeService", "DetachNetworkInterface", {"network_interface_id"});
  // A keypair's name (display_name, else key_pair_id), public_key and meta
  // (labels; key_pair_id as cloudplane_id).
  kit::Honour(info, "ComputeService", "CreateKeyPair",
              {"key_pair_id", "key_pair.display_name", "key_pair.public_key",
               "key_pair.labels"});
  kit::Honour(info, "ComputeService", "DeleteKeyPair", {"allow_missing"});
  // A VLAN or IP is bought as it comes: only its meta (labels) is ours to
  // set. network_id, display_name, ranges, gateway, DNS, VLAN id, location
  // and a chosen address are refused.
  kit::Honour(info, "NetworksService", "CreateNetwork", {"network.labels"});
  // The update_mask path UpdateNetwork applies to the VLAN's meta.
  kit::Honour(info, "NetworksService", "UpdateNetwork", {"network.labels"});
  kit::Honour(info, "NetworksService", "DeleteNetwork", {"allow_missing"});
  kit::Honour(info, "NetworksService", "ReserveAddress", {"address.labels"});
  kit::Honour(info, "NetworksService", "ReleaseAddress", {"allow_missing"});
  // A firewall policy's name (display_name, else firewall_id), meta (labels;
  // firewall_id as cloudplane_id) and rules: action, direction (in/out),
  // ip_proto (tcp/udp, none for any), dst_port, the far end's one IPv4 CIDR
  // (src_ip of an in rule, dst_ip of an out rule; none for 0.0.0.0/0) and
  // comment. A policy has no description or location, and a rule names no
  // firewall, network or address range: those are refused.
  kit::Honour(info, "FirewallsService", "CreateFirewall",
              {"firewall_id", "firewall.display_name", "firewall.labels",
               "firewall.rules.direction", "firewall.rules.action", "firewall.rules.protocol",
               "firewall.rules.port_range_start", "firewall.rules.port_range_end",
               "firewall.rules.source_ranges", "firewall.rules.destination_ranges",
               "firewall.rules.description"});
  kit::Honour(info, "FirewallsService", "DeleteFirewall", {"allow_missing"});
  kit::Honour(info, "FirewallsService", "CreateFirewallRule",
              {"rule.direction", "rule.action", "rule.protocol", "rule.port_range_start",
               "rule.port_range_end", "rule.source_ranges", "rule.destination_ranges",
               "rule.description"});
  kit::Honour(info, "FirewallsService", "DeleteFirewallRule", {"allow_missing"});
  // The update_mask paths UpdateInstance applies to the PUT server.
  kit::Honour(info, "ComputeService", "UpdateInstance",
              {"instance.display_name", "instance.labels", "instance.cpu_mhz",
               "instance.memory_bytes", "instance.cpu_count"});
  kit::Honour(info, "ComputeService", "DeleteInstance", {"allow_missing"});
  kit::Honour(info, "ComputeService", "StartInstance", {});
  // force: the `stop` action instead of `shutdown`.
  kit::Honour(info, "ComputeService", "StopInstance", {"force"});
  kit::Honour(info, "ComputeService", "RebootInstance", {});
  kit::Honour(info, "ComputeService", "UpdateInstanceMetadata", {"metadata.items", "merge"});
  // A drive's name, size, media and meta (labels; volume_id as cloudplane_id).
  kit::Honour(info, "VolumesService", "CreateVolume",
              {"volume_id", "volume.display_name", "volume.size_bytes", "volume.media",
               "volume.labels"});
  kit::Honour(info, "VolumesService", "CloneVolume", {"volume_id", "display_name"});
  kit::Honour(info, "VolumesService", "UpdateVolume",
              {"volume.display_name", "volume.size_bytes", "volume.labels"});
  kit::Honour(info, "VolumesService", "DeleteVolume", {"allow_missing"});
  // The server's drives entry: device, dev_channel, boot_order.
  kit::Honour(info, "VolumesService", "AttachVolume",
              {"instance", "device", "channel", "boot_order"});
  kit::Honour(info, "VolumesService", "DetachVolume", {"instance"});
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateCloudSigmaProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  absl::Status status = kit::CheckOptions(setup, {"ws_endpoint"}, "cloudsigma");
  std::string ws_url;
  if (auto it = setup.options.find("ws_endpoint"); it != setup.options.end()) {
    ws_url = it->second;
    if (auto u = websocket::ParseWebSocketUrl(ws_url); !u.ok()) {
      AddFieldViolation(status, "options.ws_endpoint", u.status().message());
    }
  }
  const size_t colon = setup.secret.find(':');
  if (colon == std::string::npos || colon == 0) {
    // Never echo the secret.
    AddFieldViolation(status, "credentials",
                      "the CloudSigma secret must be \"username:password\"");
  }
  if (!status.ok()) return status;
  absl::StatusOr<http::Endpoint> endpoint = kit::ParseAccountEndpoint(setup);
  if (!endpoint.ok()) return endpoint.status();
  if (!endpoint->unix_socket_path.empty()) {
    return InvalidField("endpoint", "CloudSigma is reached over http(s), not a unix socket");
  }
  absl::StatusOr<std::unique_ptr<http::HttpClient>> client =
      kit::MakeHttpClient(*std::move(endpoint), setup, std::move(transport));
  if (!client.ok()) return client.status();
  auto account = std::make_shared<Account>();
  account->id = setup.account;
  account->client = *std::move(client);
  account->authorization = absl::StrCat("Basic ", absl::Base64Escape(setup.secret));
  std::shared_ptr<Feed> feed;
  if (setup.changes != nullptr) {
    feed = std::make_shared<Feed>(account, ws_url, setup.verify_tls, setup.ca_file, setup.changes,
                                  setup.loop);
    feed->Start();
  }
  return std::make_unique<CloudSigmaProvider>(std::move(account), std::move(feed));
}

absl::Status RegisterCloudSigma(AdapterRegistry& registry) {
  return registry.Register(CloudSigmaProviderInfo(), [](const AccountSetup& setup) {
    return CreateCloudSigmaProvider(setup);
  });
}

}  // namespace cloudplane::adapters::cloudsigma
