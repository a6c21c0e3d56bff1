// What the adapter supports, and how an account becomes a Provider. The
// services are in opennebula_{compute,catalog,volumes,firewalls}.cc
// (opennebula_internal.h lists the files).
#include "adapters/opennebula/opennebula_adapter.h"

#include <memory>
#include <string>
#include <utility>

#include "adapters/common/kit/account.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"

namespace cloudplane::adapters::opennebula {

ProviderInfo OpenNebulaProviderInfo() {
  ProviderInfo info;
  info.kind = "opennebula";
  info.display_name = "OpenNebula";
  info.protocol = "XML-RPC over HTTP (oned 5.10-6.10)";
  info.watch_source = WatchSource::kPoll;
#define ONE_READ(Service, Method, Response) \
  kit::AddMethods(info.supported_methods, #Service, {#Method});
#define ONE_MUTATION(Service, Method) ONE_READ(Service, Method, _)
#include "adapters/opennebula/opennebula_methods.inc"
#undef ONE_READ
#undef ONE_MUTATION
  // {"action": ...}: the named OpenNebula actions (opennebula_adapter.h).
  kit::AddMethods(info.reads_provider_options, "ComputeService",
                  {"StartInstance", "StopInstance", "RebootInstance", "DeleteInstance"});
  // The strict field contract: what each mutation carries out (the header's
  // "Fields" section says what it does not).
  // instance_id is the VM's NAME; image the VM template instantiated;
  // provider_options its one key "template" (one.vm.allocate); labels are
  // CLOUDPLANE_LABEL_* attributes; start=false is hold=true.
  // cpu_count is VCPU, memory_bytes MEMORY (MiB), network_interfaces the
  // NICs, key_name the CONTEXT's SSH_PUBLIC_KEY and user_data its USER_DATA
  // (base64, USERDATA_ENCODING="base64") of the instantiate's extra template
  // (a raw template refuses them: they go inside it).
  kit::Honour(info, "ComputeService", "CreateInstance",
              {"instance_id", "instance.image", "instance.labels", "instance.provider_options",
               "start", "instance.cpu_count", "instance.memory_bytes", "instance.key_name",
               "instance.user_data",
               "instance.network_interfaces.network", "instance.network_interfaces.address",
               "instance.network_interfaces.mac_address", "instance.network_interfaces.model"});
  // A NIC=[NETWORK_ID, IP, MAC, MODEL] for one.vm.attachnic; the NIC_ID to
  // detach.
  kit::Honour(info, "ComputeService", "AttachNetworkInterface",
              {"network_interface.network", "network_interface.address",
               "network_interface.mac_address", "network_interface.model"});
  kit::Honour(info, "ComputeService", "DetachNetworkInterface", {"network_interface_id"});
  // A line of the user's SSH_PUBLIC_KEY; the id is the key's comment.
  kit::Honour(info, "ComputeService", "CreateKeyPair", {"key_pair_id", "key_pair.public_key"});
  kit::Honour(info, "ComputeService", "DeleteKeyPair", {"allow_missing"});
  // The VNET template: NAME (network_id or display_name), AR=[TYPE=IP4, IP,
  // SIZE] per range, NETWORK_ADDRESS/NETWORK_MASK, GATEWAY, DNS, VLAN_ID,
  // CLOUDPLANE_LABEL_*.
  kit::Honour(info, "NetworksService", "CreateNetwork",
              {"network_id", "network.display_name", "network.address_ranges.first_address",
               "network.address_ranges.size", "network.cidr_ranges", "network.gateway",
               "network.dns_servers", "network.vlan_id", "network.labels"});
  // one.vn.update in merge mode.
  kit::Honour(info, "NetworksService", "UpdateNetwork",
              {"network.gateway", "network.dns_servers", "network.labels"});
  kit::Honour(info, "NetworksService", "DeleteNetwork", {"allow_missing"});
  // one.vn.hold of LEASES=[IP] on the network; one.vn.release.
  kit::Honour(info, "NetworksService", "ReserveAddress", {"address.network", "address.address"});
  kit::Honour(info, "NetworksService", "ReleaseAddress", {"allow_missing"});
  // The update_mask paths UpdateInstance applies: rename, resize, relabel.
  kit::Honour(info, "ComputeService", "UpdateInstance",
              {"instance.display_name", "instance.cpu_count", "instance.memory_bytes",
               "instance.labels"});
  kit::Honour(info, "ComputeService", "DeleteInstance", {"allow_missing"});
  kit::Honour(info, "ComputeService", "StartInstance", {});
  // force picks the -hard action (refused by the adapter for actions
  // without one).
  kit::Honour(info, "ComputeService", "StopInstance", {"force"});
  kit::Honour(info, "ComputeService", "RebootInstance", {"force"});
  kit::Honour(info, "ComputeService", "UpdateInstanceMetadata", {"metadata.items", "merge"});
  // device is TARGET or DEV_PREFIX of the DISK.
  kit::Honour(info, "VolumesService", "AttachVolume", {"instance", "device"});
  kit::Honour(info, "VolumesService", "DetachVolume", {"instance"});
  // A rule is a RULE vector: PROTOCOL, RULE_TYPE (direction), RANGE (the
  // ports) and the one target of its direction: IP/SIZE (a CIDR block or an
  // address range), NETWORK_ID (a network), or none (0.0.0.0/0 with ::/0);
  // action ALLOW is the only one OpenNebula has (DENY is refused by the
  // adapter). A RULE cannot name another security group: *_firewalls are
  // refused here.
  kit::Honour(info, "FirewallsService", "CreateFirewall",
              {"firewall_id", "firewall.description", "firewall.rules.direction",
               "firewall.rules.action", "firewall.rules.protocol",
               "firewall.rules.port_range_start", "firewall.rules.port_range_end",
               "firewall.rules.source_ranges", "firewall.rules.destination_ranges",
               "firewall.rules.source_address_ranges", "firewall.rules.destination_address_ranges",
               "firewall.rules.source_networks", "firewall.rules.destination_networks"});
  kit::Honour(info, "FirewallsService", "DeleteFirewall", {"allow_missing"});
  kit::Honour(info, "FirewallsService", "CreateFirewallRule",
              {"rule.direction", "rule.action", "rule.protocol", "rule.port_range_start",
               "rule.port_range_end", "rule.source_ranges", "rule.destination_ranges",
               "rule.source_address_ranges", "rule.destination_address_ranges",
               "rule.source_networks", "rule.destination_networks"});
  kit::Honour(info, "FirewallsService", "DeleteFirewallRule", {"allow_missing"});
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateOpenNebulaProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  if (absl::Status s = kit::CheckOptions(setup, {}, "OpenNebula"); !s.ok()) return s;
  const size_t colon = setup.secret.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == setup.secret.size()) {
    // Never echo the secret.
    return InvalidField("credentials", "must be an OpenNebula session string user:password");
  }
  absl::StatusOr<http::Endpoint> endpoint = kit::ParseAccountEndpoint(setup);
  if (!endpoint.ok()) return endpoint.status();
  auto account = std::make_shared<Account>();
  // oned's XML-RPC path is fixed by xmlrpc-c ([api]); a bare host:port gets
  // it.
  const size_t scheme = endpoint->base_url.find("://");
  if (scheme != std::string::npos &&
      endpoint->base_url.find('/', scheme + 3) == std::string::npos) {
    account->path = "/RPC2";
  }
  auto client = kit::MakeHttpClient(*std::move(endpoint), setup, std::move(transport));
  if (!client.ok()) return client.status();
  account->id = setup.account;
  account->session = setup.secret;
  account->client = *std::move(client);
  return std::make_unique<OpenNebulaProvider>(std::move(account));
}

absl::Status RegisterOpenNebula(AdapterRegistry& registry) {
  return registry.Register(OpenNebulaProviderInfo(), [](const AccountSetup& setup) {
    return CreateOpenNebulaProvider(setup);
  });
}

}  // namespace cloudplane::adapters::opennebula
