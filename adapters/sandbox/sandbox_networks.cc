// NetworksService of the sandbox: its networks, and the network interfaces
// of its instances (addresses: sandbox_addresses.cc; key pairs:
// sandbox_keys.cc).
//
// The sandbox has one address space: an Address is named by its IP
// (`accounts/{account}/addresses/10.0.0.5`), so networks may not overlap
// each other or the public pool (kPublicPool, the TEST-NET-3 block of
// RFC 5737) from which addresses outside any network come. An Address
// record exists for every address that is reserved (ReserveAddress) or used
// by an interface; one that was never reserved goes away with its
// interface. Network.used_addresses counts a network's Address records and
// is rewritten in the transaction that changes them.
//
// Span, Pool and kPublicPool, shared with the addresses, are declared in
// sandbox_provider.h.
#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "adapters/common/net/ip.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "adapters/sandbox/sha1.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

constexpr absl::string_view kReady = "READY";
// Where addresses outside any network come from: 203.0.113.1-254.
constexpr uint32_t kPublicPoolBase = 0xCB007100;  // 203.0.113.0/24
// CIDR prefixes the sandbox takes: /16 keeps a search for a free address
// short, /30 leaves two hosts.
constexpr int kMinPrefix = 16;
constexpr int kMaxPrefix = 30;
constexpr int64_t kMaxRangeSize = 65536;
// The NIC models the sandbox's hypervisor offers (those of KVM/QEMU).
constexpr absl::string_view kNicModels[] = {"virtio", "e1000", "rtl8139"};
constexpr absl::string_view kDefaultNicModel = "virtio";

// ---- IPv4 ------------------------------------------------------------------

using net::FormatIpv4;
using net::ParseIpv4;

bool IsIp(absl::string_view text) {
  unsigned char buffer[16];
  std::string s(text);
  return inet_pton(AF_INET, s.c_str(), buffer) == 1 || inet_pton(AF_INET6, s.c_str(), buffer) == 1;
}

absl::StatusOr<Span> ParseCidr(absl::string_view text, absl::string_view field) {
  std::optional<net::Ipv4Cidr> cidr = net::ParseIpv4Cidr(text);
  if (!cidr.has_value()) {
    return InvalidField(field, "must be an IPv4 CIDR range such as 10.0.0.0/24");
  }
  if (cidr->prefix < kMinPrefix || cidr->prefix > kMaxPrefix) {
    return InvalidField(field, absl::StrCat("the prefix must be /", kMinPrefix, " to /",
                                            kMaxPrefix, " in the sandbox"));
  }
  if (cidr->HasHostBits()) {
    return InvalidField(field, absl::StrCat("has host bits set; the range is ",
                                            FormatIpv4(cidr->network()), "/", cidr->prefix));
  }
  return Span{cidr->address, cidr->last()};
}

// A network's ranges, checked (CreateNetwork).
struct Layout {
  std::vector<Span> cidrs;
  std::vector<Span> ranges;  // address_ranges
  std::optional<uint32_t> gateway;
};

absl::StatusOr<Layout> ReadLayout(const v1::Network& network, absl::string_view prefix) {
  Layout layout;
  for (int i = 0; i < network.cidr_ranges_size(); ++i) {
    std::string field = absl::StrCat(prefix, "cidr_ranges[", i, "]");
    ASSIGN_OR_RETURN(Span span, ParseCidr(network.cidr_ranges(i), field));
    for (const Span& other : layout.cidrs) {
      if (span.Overlaps(other)) return InvalidField(field, "overlaps another CIDR range");
    }
    layout.cidrs.push_back(span);
  }
  for (int i = 0; i < network.address_ranges_size(); ++i) {
    const v1::AddressRange& range = network.address_ranges(i);
    std::string field = absl::StrCat(prefix, "address_ranges[", i, "]");
    std::optional<uint32_t> first = ParseIpv4(range.first_address());
    if (!first.has_value()) {
      return InvalidField(absl::StrCat(field, ".first_address"),
                          "must be an IPv4 address such as 10.0.0.10");
    }
    if (range.size() < 1 || range.size() > kMaxRangeSize) {
      return InvalidField(absl::StrCat(field, ".size"),
                          absl::StrCat("must be 1 to ", kMaxRangeSize));
    }
    if (uint64_t{*first} + range.size() - 1 > UINT32_MAX) {
      return InvalidField(absl::StrCat(field, ".size"), "runs past 255.255.255.255");
    }
    Span span{*first, static_cast<uint32_t>(*first + range.size() - 1)};
    for (const Span& other : layout.ranges) {
      if (span.Overlaps(other)) return InvalidField(field, "overlaps another address range");
    }
    if (!layout.cidrs.empty()) {
      bool inside = false;
      for (const Span& cidr : layout.cidrs) {
        inside = inside || (cidr.first < span.first && span.last < cidr.last);
      }
      if (!inside) {
        return InvalidField(field,
                            "must lie inside one of the CIDR ranges (without its network and "
                            "broadcast addresses)");
      }
    }
    layout.ranges.push_back(span);
  }
  if (layout.cidrs.empty() && layout.ranges.empty()) {
    return InvalidField(absl::StrCat(prefix, "cidr_ranges"),
                        "give a CIDR range or an address range: the sandbox assigns "
                        "instances' addresses from them");
  }
  if (!network.gateway().empty()) {
    std::string field = absl::StrCat(prefix, "gateway");
    layout.gateway = ParseIpv4(network.gateway());
    if (!layout.gateway.has_value()) {
      return InvalidField(field, "must be an IPv4 address such as 10.0.0.1");
    }
    bool inside = false;
    for (const Span& span : layout.cidrs.empty() ? layout.ranges : layout.cidrs) {
      inside = inside || span.Contains(*layout.gateway);
    }
    if (!inside) return InvalidField(field, "must be inside the network's ranges");
  }
  return layout;
}

// The addresses instances get: the address ranges, else the CIDR ranges'
// hosts; never the gateway.
std::vector<Span> Assignable(const Layout& layout) {
  if (!layout.ranges.empty()) return layout.ranges;
  std::vector<Span> out;
  for (const Span& cidr : layout.cidrs) out.push_back({cidr.first + 1, cidr.last - 1});
  return out;
}

// The extent the network claims in the sandbox's one address space.
std::vector<Span> Extent(const Layout& layout) {
  std::vector<Span> out = layout.cidrs;
  out.insert(out.end(), layout.ranges.begin(), layout.ranges.end());
  return out;
}

// ---- Interfaces --------------------------------------------------------------

absl::StatusOr<std::string> CheckMac(absl::string_view mac, absl::string_view field) {
  std::string lower = absl::AsciiStrToLower(mac);
  std::vector<absl::string_view> octets = absl::StrSplit(lower, ':');
  bool ok = octets.size() == 6;
  for (absl::string_view octet : octets) {
    ok = ok && octet.size() == 2 && absl::ascii_isxdigit(octet[0]) &&
         absl::ascii_isxdigit(octet[1]);
  }
  if (!ok) return InvalidField(field, "must be a MAC address such as 02:00:0a:00:00:05");
  unsigned int first = 0;
  absl::SimpleHexAtoi(octets[0], &first);
  if ((first & 1) != 0) return InvalidField(field, "must be a unicast MAC address");
  return lower;
}

void SetNetworkState(v1::Network& network, v1::Network::State state) {
  network.set_state(state);
  network.set_provider_state(NetworkProviderState(state));
}

absl::Status NicNotFound(absl::string_view instance, absl::string_view nic_id) {
  std::string resource = absl::StrCat(instance, "/networkInterfaces/", nic_id);
  return WithErrorInfo(absl::NotFoundError(absl::StrCat("instance ", instance,
                                                        " has no network interface \"", nic_id,
                                                        "\"")),
                       reasons::kResourceNotFound, {{"resource", resource}});
}

// Attach and detach, like volumes, need an instance at rest (EC2 attaches
// network interfaces to running or stopped instances).
absl::Status CheckAtRest(const Loaded<v1::Instance>& instance, absl::string_view what) {
  v1::Instance::State state = instance.resource.state();
  if ((state != v1::Instance::RUNNING && state != v1::Instance::STOPPED) ||
      instance.record.has_transition()) {
    return WrongState(instance.resource.name(),
                      absl::StrCat("cannot ", what, " a network interface of an instance that is ",
                                   v1::Instance::State_Name(state)));
  }
  return absl::OkStatus();
}

}  // namespace

Pool PublicPool() { return Pool{"", {{kPublicPoolBase + 1, kPublicPoolBase + 254}}, {}}; }

absl::StatusOr<Pool> NetworkPool(const v1::Network& network) {
  ASSIGN_OR_RETURN(Layout layout, ReadLayout(network, "network."));
  return Pool{network.name(), Assignable(layout), layout.gateway};
}

// ---- Shared with the other services --------------------------------------------

absl::Status SandboxProvider::RecountNetwork(Txn& txn, absl::string_view network_name) const {
  if (network_name.empty()) return absl::OkStatus();
  std::string id(LastSegment(network_name));
  ASSIGN_OR_RETURN(std::optional<Loaded<v1::Network>> network,
                   LoadIfExists<v1::Network>(txn, kNetworks, id));
  if (!network.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto addresses, txn.LoadAll(kAddresses));
  int used = 0;
  for (const auto& [address_id, record] : addresses) {
    ASSIGN_OR_RETURN(v1::Address address, Decode<v1::Address>(record));
    used += address.network() == network_name;
  }
  if (network->resource.used_addresses() == used) return absl::OkStatus();
  network->resource.set_used_addresses(used);
  SaveVersion(network->resource, network->record, txn.now());
  return txn.Put(kNetworks, id, network->record);
}

absl::StatusOr<v1::NetworkInterface> SandboxProvider::PlugInterface(
    Txn& txn, const v1::NetworkInterface& in, absl::string_view field,
    const v1::Instance& instance, absl::string_view nic_id) const {
  v1::NetworkInterface nic;
  nic.set_id(std::string(nic_id));
  Pool pool = PublicPool();
  if (!in.network().empty()) {
    const std::string network_field = absl::StrCat(field, ".network");
    ASSIGN_OR_RETURN(std::string network_id,
                     CheckStoredRef(txn, in.network(), kNetworks, network_field));
    ASSIGN_OR_RETURN(Loaded<v1::Network> network,
                     LoadExisting<v1::Network>(txn, kNetworks, network_id));
    if (network.resource.state() != v1::Network::READY) {
      return WrongState(network.resource.name(),
                        absl::StrCat("an instance can join a READY network; it is ",
                                     v1::Network::State_Name(network.resource.state())));
    }
    // A zone's instance joins a network of that zone or of its region.
    const v1::Location* zone = catalog_.FindLocation(LastSegment(instance.location()));
    if (network.resource.location() != instance.location() &&
        (zone == nullptr || zone->parent_location() != network.resource.location())) {
      return InvalidField(network_field,
                          absl::StrCat("the network is in ", network.resource.location(),
                                       ", the instance in ", instance.location()));
    }
    ASSIGN_OR_RETURN(pool, NetworkPool(network.resource));
    nic.set_network(network.resource.name());
  }

  // The address: the given one (free, or reserved and not in use), or the
  // pool's lowest free one.
  std::optional<Loaded<v1::Address>> held;
  uint32_t address = 0;
  if (!in.address().empty()) {
    const std::string address_field = absl::StrCat(field, ".address");
    std::optional<uint32_t> given = ParseIpv4(in.address());
    if (!given.has_value()) {
      return InvalidField(address_field, "must be an IPv4 address such as 10.0.0.5");
    }
    if (!pool.Contains(*given)) {
      return InvalidField(address_field,
                          pool.network.empty()
                              ? absl::StrCat("must be in the public pool ", kPublicPool,
                                             " when no network is given")
                              : absl::StrCat("is not one of the addresses of ", pool.network));
    }
    address = *given;
    ASSIGN_OR_RETURN(held, LoadIfExists<v1::Address>(txn, kAddresses, FormatIpv4(address)));
    if (held.has_value() && held->resource.state() == v1::Address::IN_USE) {
      return WrongState(held->resource.name(),
                        absl::StrCat("is in use by ", held->resource.instance()));
    }
  } else {
    ASSIGN_OR_RETURN(auto taken_records, txn.LoadAll(kAddresses));
    std::set<std::string> taken;
    for (const auto& [id, record] : taken_records) taken.insert(id);
    bool found = false;
    for (const Span& span : pool.spans) {
      for (uint64_t a = span.first; !found && a <= span.last; ++a) {
        if (pool.Contains(a) && !taken.contains(FormatIpv4(a))) {
          address = static_cast<uint32_t>(a);
          found = true;
        }
      }
    }
    if (!found) {
      return WithErrorInfo(
          absl::ResourceExhaustedError(absl::StrCat(
              pool.network.empty() ? std::string("the public pool") : pool.network,
              " has no free address")),
          reasons::kLimitExceeded,
          {{"resource", pool.network.empty() ? std::string(kPublicPool) : pool.network}});
    }
  }
  nic.set_address(FormatIpv4(address));

  // The MAC: unique among the account's interfaces.
  ASSIGN_OR_RETURN(auto instances, txn.LoadAll(kInstances));
  auto mac_user = [&](absl::string_view mac) -> std::string {
    for (const v1::NetworkInterface& other : instance.network_interfaces()) {
      if (other.mac_address() == mac) return instance.name();
    }
    for (const auto& [id, record] : instances) {
      absl::StatusOr<v1::Instance> other = Decode<v1::Instance>(record);
      if (!other.ok()) continue;
      for (const v1::NetworkInterface& o : other->network_interfaces()) {
        if (o.mac_address() == mac) return other->name();
      }
    }
    return "";
  };
  if (!in.mac_address().empty()) {
    const std::string mac_field = absl::StrCat(field, ".mac_address");
    ASSIGN_OR_RETURN(std::string mac, CheckMac(in.mac_address(), mac_field));
    if (std::string user = mac_user(mac); !user.empty()) {
      return InvalidField(mac_field, absl::StrCat("is the MAC address of an interface of ", user));
    }
    nic.set_mac_address(mac);
  } else {
    // Locally administered (02:00:...), derived from the instance and the
    // interface, so a re-run gives the same one.
    for (int attempt = 0; nic.mac_address().empty(); ++attempt) {
      std::string digest = Sha1Hex(absl::StrCat(instance.name(), "/", nic_id, "/", attempt));
      std::string mac = absl::StrCat("02:00:", digest.substr(0, 2), ":", digest.substr(2, 2), ":",
                                     digest.substr(4, 2), ":", digest.substr(6, 2));
      if (mac_user(mac).empty()) nic.set_mac_address(mac);
    }
  }

  std::string model = absl::AsciiStrToLower(in.model());
  if (model.empty()) model = std::string(kDefaultNicModel);
  bool known = false;
  for (absl::string_view m : kNicModels) known = known || m == model;
  if (!known) {
    return InvalidField(absl::StrCat(field, ".model"), "must be virtio, e1000 or rtl8139");
  }
  nic.set_model(model);

  if (!in.firewall().empty()) {
    ASSIGN_OR_RETURN(std::string fw, CheckStoredRef(txn, in.firewall(), kFirewalls,
                                                    absl::StrCat(field, ".firewall")));
    nic.set_firewall(Name(kFirewalls, fw));
  }

  // The Address, IN_USE by the instance.
  Loaded<v1::Address> used;
  if (held.has_value()) {
    used = *std::move(held);
  } else {
    used.resource.set_name(Name(kAddresses, nic.address()));
    used.resource.set_address(nic.address());
    used.resource.set_network(nic.network());
  }
  used.resource.set_state(v1::Address::IN_USE);
  used.resource.set_instance(instance.name());
  SaveVersion(used.resource, used.record, txn.now());
  RETURN_IF_ERROR(txn.Put(kAddresses, nic.address(), used.record));
  RETURN_IF_ERROR(RecountNetwork(txn, nic.network()));
  return nic;
}

absl::Status SandboxProvider::UnplugInterface(Txn& txn, const v1::NetworkInterface& nic,
                                              absl::string_view instance_name) const {
  if (nic.address().empty() || !net::IsIpv4(nic.address())) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::optional<Loaded<v1::Address>> address,
                   LoadIfExists<v1::Address>(txn, kAddresses, nic.address()));
  if (!address.has_value() || address->resource.instance() != instance_name) {
    return absl::OkStatus();
  }
  if (address->record.reserved()) {
    address->resource.set_state(v1::Address::RESERVED);
    address->resource.clear_instance();
    SaveVersion(address->resource, address->record, txn.now());
    RETURN_IF_ERROR(txn.Put(kAddresses, nic.address(), address->record));
  } else {
    RETURN_IF_ERROR(txn.Delete(kAddresses, nic.address()));
  }
  return RecountNetwork(txn, address->resource.network());
}

// ---- Networks ------------------------------------------------------------------

void SandboxProvider::ListNetworks(const CallContext& ctx, const v1::ListNetworksRequest& request,
                                   Callback<v1::ListNetworksResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListNetworksResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListNetworksResponse response;
    RETURN_IF_ERROR(ListPage(kNetworks, request.page_size(), request.page_token(),
                             response.mutable_networks(), response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetNetwork(const CallContext& ctx, const v1::GetNetworkRequest& request,
                                 Callback<v1::Network> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::Network> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kNetworks, "name"));
    return GetTyped<v1::Network>(kNetworks, id);
  }());
}

void SandboxProvider::CreateNetwork(const CallContext& ctx,
                                    const v1::CreateNetworkRequest& request,
                                    Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        if (!request.has_network()) return InvalidField("network", "required");
        const v1::Network& in = request.network();
        ASSIGN_OR_RETURN(Layout layout, ReadLayout(in, "network."));
        for (int i = 0; i < in.dns_servers_size(); ++i) {
          if (!IsIp(in.dns_servers(i))) {
            return InvalidField(absl::StrCat("network.dns_servers[", i, "]"),
                                "must be an IPv4 or IPv6 address");
          }
        }
        if (in.vlan_id() < 0 || in.vlan_id() > 4094) {
          return InvalidField("network.vlan_id", "must be 1 to 4094 (802.1Q), or 0 for none");
        }
        RETURN_IF_ERROR(CheckLabels(in.labels(), "network.labels"));
        std::string location = Name(kLocations, kDefaultZone);
        if (!in.location().empty()) {
          ASSIGN_OR_RETURN(std::string id,
                           CheckCatalogRef(in.location(), kLocations, "network.location"));
          location = Name(kLocations, id);
        }
        ASSIGN_OR_RETURN(std::string id,
                         ChooseId(txn, kNetworks, request.network_id(), "network_id", "net"));
        // One address space (file comment): no overlap with the public
        // pool or another network.
        const std::vector<Span> extent = Extent(layout);
        const Span pub{kPublicPoolBase, kPublicPoolBase + 255};
        auto field_of = [&](size_t i) {
          return i < layout.cidrs.size()
                     ? absl::StrCat("network.cidr_ranges[", i, "]")
                     : absl::StrCat("network.address_ranges[", i - layout.cidrs.size(), "]");
        };
        for (size_t i = 0; i < extent.size(); ++i) {
          if (extent[i].Overlaps(pub)) {
            return InvalidField(field_of(i), absl::StrCat("overlaps the sandbox's public pool ",
                                                          kPublicPool));
          }
        }
        ASSIGN_OR_RETURN(auto others, txn.LoadAll(kNetworks));
        for (const auto& [other_id, record] : others) {
          ASSIGN_OR_RETURN(v1::Network other, Decode<v1::Network>(record));
          absl::StatusOr<Layout> other_layout = ReadLayout(other, "network.");
          if (!other_layout.ok()) continue;
          for (const Span& theirs : Extent(*other_layout)) {
            for (size_t i = 0; i < extent.size(); ++i) {
              if (extent[i].Overlaps(theirs)) {
                return InvalidField(field_of(i),
                                    absl::StrCat("overlaps network ", other.name(),
                                                 " (the sandbox has one address space)"));
              }
            }
          }
        }
        v1::Network network;
        network.set_name(Name(kNetworks, id));
        network.set_display_name(in.display_name());
        *network.mutable_address_ranges() = in.address_ranges();
        *network.mutable_cidr_ranges() = in.cidr_ranges();
        network.set_gateway(in.gateway());
        *network.mutable_dns_servers() = in.dns_servers();
        network.set_vlan_id(in.vlan_id());
        network.set_location(location);
        *network.mutable_labels() = in.labels();
        SetTime(txn.now(), network.mutable_create_time());
        SetNetworkState(network, v1::Network::PENDING);
        Record record;
        SaveVersion(network, record, txn.now());
        SetTransition(record, txn.now(), options_.transition, v1::Network::READY);
        RETURN_IF_ERROR(txn.Put(kNetworks, id, record));
        return StateToken(kNetworks, id, kReady);
      },
      std::move(done));
}

void SandboxProvider::UpdateNetwork(const CallContext& ctx,
                                    const v1::UpdateNetworkRequest& request,
                                    Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        const v1::Network& in = request.network();
        ASSIGN_OR_RETURN(std::string id,
                         ParseName(in.name(), account_, kNetworks, "network.name"));
        ASSIGN_OR_RETURN(
            std::vector<std::string> paths,
            CheckUpdateMask(request.update_mask(),
                            {"display_name", "labels", "dns_servers", "gateway", "vlan_id"},
                            {"labels"}, {"location", "address_ranges", "cidr_ranges"}));
        ASSIGN_OR_RETURN(Loaded<v1::Network> loaded,
                         LoadExisting<v1::Network>(txn, kNetworks, id));
        v1::Network& network = loaded.resource;
        if (network.state() == v1::Network::DELETING) {
          return WrongState(network.name(), "cannot update a network that is DELETING");
        }
        const std::string before = network.SerializeAsString();
        for (const std::string& path : paths) {
          if (path == "display_name") {
            network.set_display_name(in.display_name());
          } else if (path == "labels") {
            RETURN_IF_ERROR(CheckLabels(in.labels(), "network.labels"));
            *network.mutable_labels() = in.labels();
          } else if (absl::StartsWith(path, "labels.")) {
            std::string key = path.substr(7);
            auto it = in.labels().find(key);
            if (it == in.labels().end()) {
              network.mutable_labels()->erase(key);
            } else {
              (*network.mutable_labels())[key] = it->second;
            }
          } else if (path == "dns_servers") {
            for (int i = 0; i < in.dns_servers_size(); ++i) {
              if (!IsIp(in.dns_servers(i))) {
                return InvalidField(absl::StrCat("network.dns_servers[", i, "]"),
                                    "must be an IPv4 or IPv6 address");
              }
            }
            *network.mutable_dns_servers() = in.dns_servers();
          } else if (path == "vlan_id") {
            if (in.vlan_id() < 0 || in.vlan_id() > 4094) {
              return InvalidField("network.vlan_id", "must be 1 to 4094 (802.1Q), or 0 for none");
            }
            network.set_vlan_id(in.vlan_id());
          } else if (path == "gateway") {
            v1::Network changed = network;
            changed.set_gateway(in.gateway());
            RETURN_IF_ERROR(ReadLayout(changed, "network.").status());
            // The new gateway cannot be an address someone holds.
            if (!in.gateway().empty()) {
              ASSIGN_OR_RETURN(std::optional<Record> taken,
                               txn.Load(kAddresses, in.gateway()));
              if (taken.has_value()) {
                return WrongState(Name(kAddresses, in.gateway()),
                                  "is reserved or in use; it cannot become the gateway");
              }
            }
            network.set_gateway(in.gateway());
          }
        }
        if (network.SerializeAsString() != before) {
          SaveVersion(network, loaded.record, txn.now());
          RETURN_IF_ERROR(txn.Put(kNetworks, id, loaded.record));
        }
        return CurrentToken(kNetworks, id);
      },
      std::move(done));
}

void SandboxProvider::DeleteNetwork(const CallContext& ctx,
                                    const v1::DeleteNetworkRequest& request,
                                    Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kNetworks, "name"));
        ASSIGN_OR_RETURN(std::optional<Loaded<v1::Network>> loaded,
                         LoadIfExists<v1::Network>(txn, kNetworks, id));
        if (!loaded.has_value()) {
          if (request.allow_missing()) return GoneToken(kNetworks, id);
          return NotFound(kNetworks, request.name());
        }
        v1::Network& network = loaded->resource;
        if (network.state() == v1::Network::DELETING) return GoneToken(kNetworks, id);
        ASSIGN_OR_RETURN(auto instances, txn.LoadAll(kInstances));
        for (const auto& [instance_id, record] : instances) {
          ASSIGN_OR_RETURN(v1::Instance instance, Decode<v1::Instance>(record));
          for (const v1::NetworkInterface& nic : instance.network_interfaces()) {
            if (nic.network() == network.name()) {
              return WrongState(network.name(), absl::StrCat("instance ", instance.name(),
                                                             " is on it"));
            }
          }
        }
        ASSIGN_OR_RETURN(std::string naming, RuleNaming(txn, network.name()));
        if (!naming.empty()) {
          return WrongState(network.name(), absl::StrCat("firewall rule ", naming, " names it"));
        }
        // As GCP refuses to delete a subnetwork with reserved addresses.
        ASSIGN_OR_RETURN(auto addresses, txn.LoadAll(kAddresses));
        for (const auto& [address_id, record] : addresses) {
          ASSIGN_OR_RETURN(v1::Address address, Decode<v1::Address>(record));
          if (address.network() == network.name()) {
            return WrongState(network.name(), absl::StrCat("address ", address.name(),
                                                           " is reserved in it; release it "
                                                           "first"));
          }
        }
        SetNetworkState(network, v1::Network::DELETING);
        SaveVersion(network, loaded->record, txn.now());
        SetTransition(loaded->record, txn.now(), options_.transition, v1::Network::DELETING,
                      /*remove=*/true);
        RETURN_IF_ERROR(txn.Put(kNetworks, id, loaded->record));
        return GoneToken(kNetworks, id);
      },
      std::move(done));
}

// ---- Network interfaces ----------------------------------------------------------

void SandboxProvider::AttachNetworkInterface(const CallContext& ctx,
                                             const v1::AttachNetworkInterfaceRequest& request,
                                             Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kInstances, "name"));
        if (!request.has_network_interface()) {
          return InvalidField("network_interface", "required");
        }
        ASSIGN_OR_RETURN(Loaded<v1::Instance> instance,
                         LoadExisting<v1::Instance>(txn, kInstances, id));
        RETURN_IF_ERROR(CheckAtRest(instance, "attach"));
        // Ids count up and are never reused within the instance.
        const int64_t number = instance.record.next_child_id();
        ASSIGN_OR_RETURN(v1::NetworkInterface nic,
                         PlugInterface(txn, request.network_interface(), "network_interface",
                                       instance.resource, absl::StrCat(number)));
        instance.resource.add_ip_addresses(nic.address());
        *instance.resource.add_network_interfaces() = std::move(nic);
        instance.record.set_next_child_id(number + 1);
        SaveVersion(instance.resource, instance.record, txn.now());
        RETURN_IF_ERROR(txn.Put(kInstances, id, instance.record));
        return CurrentToken(kInstances, id);
      },
      std::move(done));
}

void SandboxProvider::DetachNetworkInterface(const CallContext& ctx,
                                             const v1::DetachNetworkInterfaceRequest& request,
                                             Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kInstances, "name"));
        if (request.network_interface_id().empty()) {
          return InvalidField("network_interface_id", "required");
        }
        ASSIGN_OR_RETURN(Loaded<v1::Instance> instance,
                         LoadExisting<v1::Instance>(txn, kInstances, id));
        auto* nics = instance.resource.mutable_network_interfaces();
        int index = -1;
        for (int i = 0; i < nics->size(); ++i) {
          if (nics->Get(i).id() == request.network_interface_id()) index = i;
        }
        if (index < 0) return NicNotFound(instance.resource.name(), request.network_interface_id());
        RETURN_IF_ERROR(CheckAtRest(instance, "detach"));
        const v1::NetworkInterface nic = nics->Get(index);
        RETURN_IF_ERROR(UnplugInterface(txn, nic, instance.resource.name()));
        nics->erase(nics->begin() + index);
        auto* ips = instance.resource.mutable_ip_addresses();
        ips->erase(std::remove(ips->begin(), ips->end(), nic.address()), ips->end());
        SaveVersion(instance.resource, instance.record, txn.now());
        RETURN_IF_ERROR(txn.Put(kInstances, id, instance.record));
        return CurrentToken(kInstances, id);
      },
      std::move(done));
}

}  // namespace cloudplane::adapters::sandbox
