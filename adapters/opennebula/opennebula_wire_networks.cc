// Virtual networks (VNET), their leases, VM NICs and users' SSH keys.

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/net/ip.h"
#include "adapters/opennebula/opennebula_wire.h"
#include "adapters/opennebula/opennebula_wire_internal.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::opennebula {
namespace {

using wire_internal::IntChild;
using wire_internal::IntOr;
using wire_internal::SetNumber;
using wire_internal::SetString;
using wire_internal::Sha256;

using net::IsIpv4;

// NETWORK_MASK as oned takes it: dotted (255.255.255.0) or a prefix length.
std::optional<int> PrefixLength(absl::string_view mask) {
  int len = 0;
  if (absl::SimpleAtoi(mask, &len) && len >= 0 && len <= 32) return len;
  std::optional<uint32_t> parsed = net::ParseIpv4(mask);
  if (!parsed.has_value()) return std::nullopt;
  const uint32_t m = *parsed;
  int ones = 0;
  while (ones < 32 && (m & (1u << (31 - ones))) != 0) ++ones;
  if (ones < 32 && (m << ones) != 0) return std::nullopt;  // not contiguous
  return ones;
}

v1::Network::State NetworkState(int64_t state) {
  // VNET STATE (6.4+): INIT 0, READY 1, LOCK_CREATE 2, LOCK_DELETE 3, DONE 4,
  // ERROR 5, UPDATE_FAILURE 6 ([oned] VirtualNetwork.h).
  switch (state) {
    case 0:
    case 2:
      return v1::Network::PENDING;
    case 1:
      return v1::Network::READY;
    case 3:
    case 4:
      return v1::Network::DELETING;
    case 5:
    case 6:
      return v1::Network::ERROR;
    default:
      return v1::Network::STATE_UNSPECIFIED;
  }
}

constexpr absl::string_view kNetworkStateNames[] = {
    "INIT", "READY", "LOCK_CREATE", "LOCK_DELETE", "DONE", "ERROR", "UPDATE_FAILURE"};

}  // namespace

absl::StatusOr<v1::Network> NetworkFromVnet(const xml::Node& vnet, absl::string_view account,
                                            absl::string_view resource_id) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(vnet, "ID", "VNET"));
  v1::Network out;
  out.set_name(absl::StrCat("accounts/", account, "/networks/", resource_id));
  out.set_display_name(std::string(vnet.ChildText("NAME")));
  const int64_t state = IntOr(&vnet, "STATE", 1);  // no STATE before 6.4: usable
  out.set_state(NetworkState(state));
  out.set_provider_state(state >= 0 && state < 7 ? std::string(kNetworkStateNames[state])
                                                 : absl::StrCat(state));
  std::vector<std::string> without_ip;
  if (const xml::Node* pool = vnet.Child("AR_POOL"); pool != nullptr) {
    for (const xml::Node* ar : pool->ChildrenNamed("AR")) {
      int64_t size = IntOr(ar, "SIZE", 0);
      if (!ar->ChildText("IP").empty()) {
        v1::AddressRange* r = out.add_address_ranges();
        r->set_first_address(std::string(ar->ChildText("IP")));
        r->set_size(static_cast<int32_t>(size));
      } else {
        without_ip.push_back(absl::StrCat(ar->ChildText("TYPE"), ":", size));
      }
    }
  }
  std::map<std::string, std::string> tmpl = SingleAttributes(vnet.Child("TEMPLATE"));
  const std::string address = tmpl["NETWORK_ADDRESS"];
  if (std::optional<int> len = PrefixLength(tmpl["NETWORK_MASK"]);
      IsIpv4(address) && len.has_value()) {
    out.add_cidr_ranges(absl::StrCat(address, "/", *len));
  }
  out.set_gateway(tmpl["GATEWAY"]);
  for (absl::string_view dns :
       absl::StrSplit(tmpl["DNS"], absl::ByAnyChar(" ,"), absl::SkipWhitespace())) {
    out.add_dns_servers(std::string(dns));
  }
  int vlan = 0;
  absl::string_view vlan_text = vnet.ChildText("VLAN_ID");
  if (vlan_text.empty()) vlan_text = tmpl["VLAN_ID"];
  if (absl::SimpleAtoi(vlan_text, &vlan)) out.set_vlan_id(vlan);
  if (const xml::Node* clusters = vnet.Child("CLUSTERS");
      clusters != nullptr && !clusters->ChildText("ID").empty()) {
    out.set_location(
        absl::StrCat("accounts/", account, "/locations/cluster-", clusters->ChildText("ID")));
  }
  out.set_used_addresses(static_cast<int32_t>(IntOr(&vnet, "USED_LEASES", 0)));
  for (auto& [k, v] : LabelsFromUserTemplate(vnet.Child("TEMPLATE"))) {
    (*out.mutable_labels())[k] = v;
  }
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "id", static_cast<double>(id));
  SetString(d, "bridge", vnet.ChildText("BRIDGE"));
  SetString(d, "vnMad", vnet.ChildText("VN_MAD"));
  SetNumber(d, "state", static_cast<double>(state));
  google::protobuf::Struct* rest = (*d->mutable_fields())["template"].mutable_struct_value();
  for (const auto& [k, v] : tmpl) {
    if (k == "NETWORK_ADDRESS" || k == "NETWORK_MASK" || k == "GATEWAY" || k == "DNS" ||
        k == "VLAN_ID" || absl::StartsWith(k, "CLOUDPLANE_")) {
      continue;
    }
    SetString(rest, k, v);
  }
  if (!without_ip.empty()) {
    google::protobuf::ListValue* l =
        (*d->mutable_fields())["arsWithoutIp"].mutable_list_value();
    for (const std::string& a : without_ip) l->add_values()->set_string_value(a);
  }
  return out;
}

std::vector<Lease> LeasesOfVnet(const xml::Node& vnet) {
  std::vector<Lease> out;
  const int64_t id = IntOr(&vnet, "ID", -1);
  const xml::Node* pool = vnet.Child("AR_POOL");
  if (pool == nullptr) return out;
  for (const xml::Node* ar : pool->ChildrenNamed("AR")) {
    const xml::Node* leases = ar->Child("LEASES");
    if (leases == nullptr) continue;
    for (const xml::Node* l : leases->ChildrenNamed("LEASE")) {
      if (l->ChildText("IP").empty()) continue;  // MAC-only (ETHER) leases have no address
      Lease lease;
      lease.vnet = id;
      lease.ip = std::string(l->ChildText("IP"));
      lease.mac = std::string(l->ChildText("MAC"));
      lease.ar_id = IntOr(ar, "AR_ID", 0);
      // A lease of a virtual router or a reserved child network is not a
      // VM's: it counts as held.
      lease.vm = IntOr(l, "VM", -1);
      out.push_back(std::move(lease));
    }
  }
  return out;
}

std::string AddressId(int64_t vnet, absl::string_view ip) { return absl::StrCat(vnet, "-", ip); }

absl::StatusOr<std::pair<int64_t, std::string>> ParseAddressName(absl::string_view field,
                                                                absl::string_view account,
                                                                absl::string_view name) {
  const std::string prefix = absl::StrCat("accounts/", account, "/addresses/");
  absl::string_view id = name;
  auto bad = [&] {
    return InvalidField(field, absl::StrCat("must be ", prefix,
                                            "<network id>-<IPv4 address>, e.g. ", prefix,
                                            "3-10.0.0.5"));
  };
  if (!absl::ConsumePrefix(&id, prefix)) return bad();
  const size_t dash = id.find('-');
  int64_t vnet = 0;
  if (dash == absl::string_view::npos || !absl::SimpleAtoi(id.substr(0, dash), &vnet) ||
      vnet < 0 || !IsIpv4(id.substr(dash + 1))) {
    return bad();
  }
  return std::make_pair(vnet, std::string(id.substr(dash + 1)));
}

v1::Address AddressFromLease(const Lease& lease, absl::string_view account,
                             absl::string_view network_resource_id, absl::string_view instance) {
  v1::Address out;
  out.set_name(absl::StrCat("accounts/", account, "/addresses/", AddressId(lease.vnet, lease.ip)));
  out.set_address(lease.ip);
  out.set_network(absl::StrCat("accounts/", account, "/networks/", network_resource_id));
  if (lease.vm < 0) {
    out.set_state(v1::Address::RESERVED);
  } else {
    out.set_state(v1::Address::IN_USE);
    out.set_instance(instance.empty()
                         ? absl::StrCat("accounts/", account, "/instances/", lease.vm)
                         : std::string(instance));
  }
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "networkId", static_cast<double>(lease.vnet));
  SetNumber(d, "arId", static_cast<double>(lease.ar_id));
  SetString(d, "mac", lease.mac);
  SetNumber(d, "vm", static_cast<double>(lease.vm));
  return out;
}

absl::StatusOr<std::string> NetworkTemplate(
    const v1::Network& network, absl::string_view name,
    const std::vector<std::pair<std::string, std::string>>& extra) {
  absl::Status status;
  std::vector<std::pair<std::string, std::string>> single = {{"NAME", std::string(name)},
                                                             {"VN_MAD", "bridge"}};
  if (network.cidr_ranges_size() > 1) {
    AddFieldViolation(status, "network.cidr_ranges",
                      "OpenNebula keeps one network address per virtual network");
  } else if (network.cidr_ranges_size() == 1) {
    std::optional<net::Ipv4Cidr> cidr = net::ParseIpv4Cidr(network.cidr_ranges(0));
    if (!cidr.has_value()) {
      AddFieldViolation(status, "network.cidr_ranges[0]", "must be an IPv4 CIDR a.b.c.d/n");
    } else {
      single.emplace_back("NETWORK_ADDRESS", net::FormatIpv4(cidr->address));
      single.emplace_back("NETWORK_MASK", net::FormatIpv4(cidr->mask()));
    }
  }
  if (!network.gateway().empty()) {
    if (!IsIpv4(network.gateway())) {
      AddFieldViolation(status, "network.gateway", "must be an IPv4 address");
    }
    single.emplace_back("GATEWAY", network.gateway());
  }
  for (int i = 0; i < network.dns_servers_size(); ++i) {
    if (!IsIpv4(network.dns_servers(i))) {
      AddFieldViolation(status, absl::StrCat("network.dns_servers[", i, "]"),
                        "must be an IPv4 address");
    }
  }
  if (network.dns_servers_size() > 0) {
    single.emplace_back("DNS", absl::StrJoin(network.dns_servers(), " "));
  }
  if (network.vlan_id() < 0 || network.vlan_id() > 4094) {
    AddFieldViolation(status, "network.vlan_id", "must be 1-4094");
  } else if (network.vlan_id() > 0) {
    single.emplace_back("VLAN_ID", absl::StrCat(network.vlan_id()));
  }
  std::string ars;
  for (int i = 0; i < network.address_ranges_size(); ++i) {
    const v1::AddressRange& r = network.address_ranges(i);
    const std::string field = absl::StrCat("network.address_ranges[", i, "]");
    std::optional<uint32_t> first = net::ParseIpv4(r.first_address());
    if (!first.has_value()) {
      AddFieldViolation(status, absl::StrCat(field, ".first_address"),
                        "must be an IPv4 address");
      continue;
    }
    if (r.size() <= 0 || uint64_t{*first} + static_cast<uint64_t>(r.size()) > (uint64_t{1} << 32)) {
      AddFieldViolation(status, absl::StrCat(field, ".size"),
                        "must be positive and stay within IPv4");
      continue;
    }
    absl::StatusOr<std::string> ar = VectorTemplate(
        "AR", {{"TYPE", "IP4"}, {"IP", r.first_address()}, {"SIZE", absl::StrCat(r.size())}});
    if (!ar.ok()) {
      AddFieldViolation(status, field, ar.status().message());
      continue;
    }
    ars += *ar;
  }
  if (!status.ok()) return status;
  single.insert(single.end(), extra.begin(), extra.end());
  ASSIGN_OR_RETURN(std::string text, FlatTemplate(single, "network"));
  return text + ars;
}

std::vector<v1::NetworkInterface> NicsFromVm(const xml::Node& vm, absl::string_view account) {
  std::vector<v1::NetworkInterface> out;
  const xml::Node* tmpl = vm.Child("TEMPLATE");
  if (tmpl == nullptr) return out;
  for (const xml::Node* nic : tmpl->ChildrenNamed("NIC")) {
    v1::NetworkInterface n;
    n.set_id(std::string(nic->ChildText("NIC_ID")));
    int64_t vnet = 0;
    if (absl::SimpleAtoi(nic->ChildText("NETWORK_ID"), &vnet)) {
      n.set_network(absl::StrCat("accounts/", account, "/networks/",
                                 ResourceId(vnet, nic->ChildText("NETWORK"))));
    }
    n.set_address(std::string(nic->ChildText("IP")));
    n.set_mac_address(std::string(nic->ChildText("MAC")));
    n.set_model(std::string(nic->ChildText("MODEL")));
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<int64_t> NicIds(const xml::Node& vm) {
  std::vector<int64_t> out;
  const xml::Node* tmpl = vm.Child("TEMPLATE");
  if (tmpl == nullptr) return out;
  for (const xml::Node* nic : tmpl->ChildrenNamed("NIC")) {
    int64_t id = 0;
    if (absl::SimpleAtoi(nic->ChildText("NIC_ID"), &id)) out.push_back(id);
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> NicAttributes(
    const v1::NetworkInterface& nic, int64_t vnet, absl::string_view field) {
  absl::Status status;
  std::vector<std::pair<std::string, std::string>> out = {{"NETWORK_ID", absl::StrCat(vnet)}};
  if (!nic.address().empty()) {
    if (!IsIpv4(nic.address())) {
      AddFieldViolation(status, absl::StrCat(field, ".address"), "must be an IPv4 address");
    }
    out.emplace_back("IP", nic.address());
  }
  if (!nic.mac_address().empty()) {
    std::vector<absl::string_view> parts = absl::StrSplit(nic.mac_address(), ':');
    const bool ok = parts.size() == 6 && std::all_of(parts.begin(), parts.end(), [](auto p) {
      return p.size() == 2 && absl::ascii_isxdigit(p[0]) && absl::ascii_isxdigit(p[1]);
    });
    if (!ok) {
      AddFieldViolation(status, absl::StrCat(field, ".mac_address"),
                        "must be six hex pairs separated by ':'");
    }
    out.emplace_back("MAC", absl::AsciiStrToLower(nic.mac_address()));
  }
  if (!nic.model().empty()) {
    const bool ok = std::all_of(nic.model().begin(), nic.model().end(), [](char c) {
      return absl::ascii_isalnum(c) || c == '-' || c == '_';
    });
    if (!ok) {
      AddFieldViolation(status, absl::StrCat(field, ".model"),
                        "must be a NIC model such as virtio or e1000");
    }
    out.emplace_back("MODEL", nic.model());
  }
  if (!nic.firewall().empty()) {
    AddFieldViolation(status, absl::StrCat(field, ".firewall"),
                      "OpenNebula applies security groups per network, not per NIC");
  }
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<SshKey> ParseSshKey(absl::string_view line, absl::string_view field) {
  line = absl::StripAsciiWhitespace(line);
  // <type> <base64> [comment that may hold spaces]
  std::vector<absl::string_view> parts;
  absl::string_view rest = line;
  for (int i = 0; i < 2 && !rest.empty(); ++i) {
    const size_t end = rest.find_first_of(" \t");
    parts.push_back(rest.substr(0, end));
    rest = end == absl::string_view::npos ? absl::string_view()
                                          : absl::StripLeadingAsciiWhitespace(rest.substr(end));
  }
  if (!rest.empty()) parts.push_back(rest);
  std::string blob;
  if (parts.size() < 2 || !absl::Base64Unescape(parts[1], &blob) || blob.size() < 8 ||
      !(absl::StartsWith(parts[0], "ssh-") || absl::StartsWith(parts[0], "ecdsa-") ||
        absl::StartsWith(parts[0], "sk-"))) {
    return InvalidField(field,
                        "must be an OpenSSH public key: <type> <base64 key> [comment]");
  }
  SshKey key;
  key.line = std::string(line);
  const std::string digest = Sha256(blob);
  std::string b64 = absl::Base64Escape(digest);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  key.fingerprint = absl::StrCat("SHA256:", b64);
  const absl::string_view comment =
      parts.size() == 3 ? absl::StripAsciiWhitespace(parts[2]) : absl::string_view();
  key.id = IsNameId(comment) ? std::string(comment)
                             : absl::StrCat("key-", absl::BytesToHexString(digest).substr(0, 12));
  return key;
}

std::vector<SshKey> SshKeysFromText(absl::string_view text) {
  std::vector<SshKey> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    absl::StatusOr<SshKey> key = ParseSshKey(line, "");
    if (key.ok()) out.push_back(*std::move(key));
  }
  return out;
}

v1::KeyPair KeyPairFromSshKey(const SshKey& key, absl::string_view account) {
  v1::KeyPair out;
  out.set_name(absl::StrCat("accounts/", account, "/keyPairs/", key.id));
  out.set_display_name(key.id);
  out.set_public_key(key.line);
  out.set_fingerprint(key.fingerprint);
  SetString(out.mutable_provider_details(), "attribute", "SSH_PUBLIC_KEY");
  return out;
}

}  // namespace cloudplane::adapters::opennebula
