#include "adapters/sandbox/sandbox_adapter.h"

#include <cstdint>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/kit/account.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"

namespace cloudplane::adapters::sandbox {
namespace {

constexpr int64_t kMaxTransitionMs = 86400000;  // a day

// The strict field contract: what each mutation keeps in its record or acts
// on (sandbox_*.cc). Left out, so refused by the server: LaunchTemplate
// user_data (nowhere to deliver it), provider_options (it reads no keys), immutable update paths
// (image, location, media; a network's location and ranges), and
// RebootInstance `force` (a simulated reboot is the same either way).
// Instance key_name is kept in the instance's record (never shown), and
// Instance user_data as its SHA-256 in provider_details (the data never).
void HonourSandboxFields(ProviderInfo& info) {
  kit::Honour(info, "ComputeService", "CreateInstance",
              {"instance_id", "start", "instance.display_name", "instance.image",
               "instance.machine_type", "instance.cpu_count", "instance.memory_bytes",
               "instance.cpu_mhz", "instance.location", "instance.firewalls", "instance.labels",
               "instance.billing_code", "instance.key_name", "instance.user_data",
               "instance.network_interfaces.network", "instance.network_interfaces.address",
               "instance.network_interfaces.mac_address", "instance.network_interfaces.model",
               "instance.network_interfaces.firewall"});
  kit::Honour(info, "ComputeService", "UpdateInstance",
              {"instance.display_name", "instance.labels", "instance.firewalls",
               "instance.billing_code", "instance.machine_type", "instance.cpu_count",
               "instance.memory_bytes", "instance.cpu_mhz"});
  kit::Honour(info, "ComputeService", "DeleteInstance", {"allow_missing"});
  kit::Honour(info, "ComputeService", "StartInstance", {});
  kit::Honour(info, "ComputeService", "StopInstance", {"force"});
  kit::Honour(info, "ComputeService", "RebootInstance", {});
  kit::Honour(info, "ComputeService", "UpdateInstanceMetadata", {"metadata.items", "merge"});
  kit::Honour(info, "ComputeService", "AttachNetworkInterface",
              {"network_interface.network", "network_interface.address",
               "network_interface.mac_address", "network_interface.model",
               "network_interface.firewall"});
  kit::Honour(info, "ComputeService", "DetachNetworkInterface", {"network_interface_id"});
  kit::Honour(info, "ComputeService", "CreateKeyPair",
              {"key_pair_id", "key_pair.display_name", "key_pair.public_key", "key_pair.labels"});
  kit::Honour(info, "ComputeService", "DeleteKeyPair", {"allow_missing"});

  kit::Honour(info, "NetworksService", "CreateNetwork",
              {"network_id", "network.display_name", "network.address_ranges.first_address",
               "network.address_ranges.size", "network.cidr_ranges", "network.gateway",
               "network.dns_servers", "network.vlan_id", "network.location", "network.labels"});
  kit::Honour(info, "NetworksService", "UpdateNetwork",
              {"network.display_name", "network.labels", "network.dns_servers",
               "network.gateway", "network.vlan_id"});
  kit::Honour(info, "NetworksService", "DeleteNetwork", {"allow_missing"});
  kit::Honour(info, "NetworksService", "ReserveAddress",
              {"address.address", "address.network", "address.labels"});
  kit::Honour(info, "NetworksService", "ReleaseAddress", {"allow_missing"});

  kit::Honour(info, "VolumesService", "CreateVolume",
              {"volume_id", "volume.display_name", "volume.size_bytes", "volume.media",
               "volume.location", "volume.labels"});
  kit::Honour(info, "VolumesService", "CloneVolume", {"volume_id", "display_name"});
  kit::Honour(info, "VolumesService", "UpdateVolume",
              {"volume.display_name", "volume.size_bytes", "volume.labels"});
  kit::Honour(info, "VolumesService", "DeleteVolume", {"allow_missing"});
  kit::Honour(info, "VolumesService", "AttachVolume",
              {"instance", "device", "channel", "boot_order"});
  kit::Honour(info, "VolumesService", "DetachVolume", {"instance"});

  // A rule is kept as given (normalised), every field of it.
  kit::Honour(info, "FirewallsService", "CreateFirewall",
              {"firewall_id", "firewall.display_name", "firewall.description",
               "firewall.location", "firewall.labels", "firewall.rules.direction",
               "firewall.rules.action", "firewall.rules.protocol",
               "firewall.rules.port_range_start", "firewall.rules.port_range_end",
               "firewall.rules.source_ranges", "firewall.rules.destination_ranges",
               "firewall.rules.source_address_ranges", "firewall.rules.destination_address_ranges",
               "firewall.rules.source_firewalls", "firewall.rules.destination_firewalls",
               "firewall.rules.source_networks", "firewall.rules.destination_networks",
               "firewall.rules.description"});
  kit::Honour(info, "FirewallsService", "DeleteFirewall", {"allow_missing"});
  kit::Honour(info, "FirewallsService", "CreateFirewallRule",
              {"rule.direction", "rule.action", "rule.protocol", "rule.port_range_start",
               "rule.port_range_end", "rule.source_ranges", "rule.destination_ranges",
               "rule.source_address_ranges", "rule.destination_address_ranges",
               "rule.source_firewalls", "rule.destination_firewalls", "rule.source_networks",
               "rule.destination_networks", "rule.description"});
  kit::Honour(info, "FirewallsService", "DeleteFirewallRule", {"allow_missing"});

  kit::Honour(info, "AutoscalingService", "CreateLaunchTemplate",
              {"launch_template_id", "launch_template.image", "launch_template.machine_type",
               "launch_template.key_name", "launch_template.locations.location",
               "launch_template.locations.image", "launch_template.locations.machine_type"});
  kit::Honour(info, "AutoscalingService", "DeleteLaunchTemplate", {"allow_missing"});
  kit::Honour(info, "AutoscalingService", "CreateScalingGroup",
              {"scaling_group_id", "scaling_group.launch_template", "scaling_group.target_size",
               "scaling_group.min_size", "scaling_group.max_size", "scaling_group.locations"});
  kit::Honour(info, "AutoscalingService", "ResizeScalingGroup", {"target_size"});
  kit::Honour(info, "AutoscalingService", "DeleteScalingGroup", {"allow_missing"});

  kit::Honour(info, "UnitsService", "CreateUnit",
              {"unit_id", "unit.options.section", "unit.options.name", "unit.options.value",
               "unit.desired_state"});
  kit::Honour(info, "UnitsService", "SetUnitDesiredState", {"desired_state"});
  kit::Honour(info, "UnitsService", "DeleteUnit", {"allow_missing"});
}

}  // namespace

ProviderInfo SandboxProviderInfo() {
  ProviderInfo info;
  info.kind = "sandbox";
  info.display_name = "Built-in sandbox";
  info.protocol = "in-process";
  info.watch_source = WatchSource::kLocal;
  info.supported_methods = AllAdapterMethods();
  HonourSandboxFields(info);
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> NewSandboxProvider(const AccountSetup& setup) {
  if (!setup.endpoint.empty()) {
    return InvalidField("endpoint", "must be empty: the sandbox runs inside the server");
  }
  SandboxProvider::Options options;
  for (const auto& [key, value] : setup.options) {
    if (key == "transition_ms") {
      int64_t ms = 0;
      if (!absl::SimpleAtoi(value, &ms) || ms < 0 || ms > kMaxTransitionMs) {
        return InvalidField("options.transition_ms",
                            absl::StrCat("must be an integer from 0 to ", kMaxTransitionMs));
      }
      options.transition = absl::Milliseconds(ms);
    } else {
      return InvalidField(absl::StrCat("options.", key),
                          "unknown option; the sandbox reads only transition_ms");
    }
  }
  if (setup.store == nullptr) {
    return absl::FailedPreconditionError("the sandbox provider needs the server's store");
  }
  absl::StatusOr<std::unique_ptr<SandboxProvider>> provider =
      SandboxProvider::Create(setup, options);
  if (!provider.ok()) return provider.status();
  return std::unique_ptr<Provider>(*std::move(provider));
}

absl::Status RegisterSandbox(AdapterRegistry& registry) {
  return registry.Register(SandboxProviderInfo(), [](const AccountSetup& setup) {
    return NewSandboxProvider(setup);
  });
}

}  // namespace cloudplane::adapters::sandbox
