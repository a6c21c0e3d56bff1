// Request bodies (§3, §7): every DCM mutation body is `{"<operation>":[{...}]}`.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "adapters/enstratus/enstratus_wire.h"
#include "base/errors.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::adapters::enstratus {
namespace {

namespace rj = rapidjson;
using Writer = rj::Writer<rj::StringBuffer>;

void Key(Writer& w, absl::string_view k) { w.Key(k.data(), static_cast<rj::SizeType>(k.size())); }
void String(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}
void Ref(Writer& w, absl::string_view ref, absl::string_view id_key, int64_t id) {
  Key(w, ref);
  w.StartObject();
  Key(w, id_key);
  w.Int64(id);
  w.EndObject();
}

// `{"<op>":[{ ...fill... }]}`.
template <typename Fill>
std::string OperationBody(absl::string_view op, Fill fill) {
  rj::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Key(w, op);
  w.StartArray();
  w.StartObject();
  fill(w);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::string LaunchBody(const LaunchSpec& spec) {
  return OperationBody("launch", [&](Writer& w) {
    Key(w, "name");
    String(w, spec.name);
    Key(w, "description");
    String(w, spec.description);
    Key(w, "product");
    w.StartObject();
    Key(w, "productId");
    String(w, spec.provider_product_id);
    w.EndObject();
    Ref(w, "machineImage", "machineImageId", spec.machine_image_id);
    Ref(w, "dataCenter", "dataCenterId", spec.data_center_id);
    Key(w, "budget");
    w.Int64(spec.budget);
    if (!spec.keypair.empty()) {
      Key(w, "keypair");
      String(w, spec.keypair);
    }
    if (!spec.firewall_ids.empty()) {
      Key(w, "firewalls");
      w.StartArray();
      for (int64_t id : spec.firewall_ids) {
        w.StartObject();
        Key(w, "firewallId");
        w.Int64(id);
        w.EndObject();
      }
      w.EndArray();
    }
    if (spec.network_id != 0) Ref(w, "network", "networkId", spec.network_id);
    if (!spec.label.empty()) {
      Key(w, "label");
      String(w, spec.label);
    }
    if (!spec.user_data.empty()) {
      Key(w, "userData");
      String(w, spec.user_data);
    }
  });
}

std::string AddFirewallBody(const FirewallSpec& spec) {
  return OperationBody("addFirewall", [&](Writer& w) {
    Key(w, "budget");
    w.Int64(spec.budget);
    Ref(w, "region", "regionId", spec.region_id);
    Key(w, "name");
    String(w, spec.name);
    Key(w, "description");
    String(w, spec.description);
    if (!spec.label.empty()) {
      Key(w, "label");
      String(w, spec.label);
    }
  });
}

std::string AddNetworkBody(const NetworkSpec& spec) {
  return OperationBody("addNetwork", [&](Writer& w) {
    Key(w, "budget");
    w.Int64(spec.budget);
    Key(w, "name");
    String(w, spec.name);
    Key(w, "networkAddress");
    String(w, spec.cidr);
    Key(w, "description");
    String(w, spec.description);
    Ref(w, "region", "regionId", spec.region_id);
    if (!spec.label.empty()) {
      Key(w, "label");
      String(w, spec.label);
    }
    if (!spec.dns_servers.empty()) {
      Key(w, "dnsServers");
      w.StartArray();
      for (const std::string& d : spec.dns_servers) String(w, d);
      w.EndArray();
    }
  });
}

absl::StatusOr<std::string> AddRuleBody(int64_t firewall_id, const v1::FirewallRule& rule,
                                        std::optional<int64_t> far_firewall_id) {
  absl::Status status;
  const std::string protocol = absl::AsciiStrToUpper(rule.protocol());
  if (protocol != "TCP" && protocol != "UDP" && protocol != "ICMP") {
    AddFieldViolation(status, "rule.protocol", "must be tcp, udp or icmp");
  }
  const bool egress = rule.direction() == v1::FirewallRule::EGRESS;
  // The firewall itself is the GLOBAL near end of a rule (the fixture's
  // destination "406"/GLOBAL on an INGRESS rule); the far end is one CIDR
  // or one other firewall (GLOBAL with its DCM id), never both.
  if (egress && (rule.source_ranges_size() > 0 || rule.source_firewalls_size() > 0)) {
    AddFieldViolation(status,
                      rule.source_ranges_size() > 0 ? "rule.source_ranges" : "rule.source_firewalls",
                      "an EGRESS rule's source is the firewall itself");
  }
  if (!egress && (rule.destination_ranges_size() > 0 || rule.destination_firewalls_size() > 0)) {
    AddFieldViolation(status,
                      rule.destination_ranges_size() > 0 ? "rule.destination_ranges"
                                                         : "rule.destination_firewalls",
                      "an INGRESS rule's destination is the firewall itself");
  }
  for (const auto& [size, field] :
       {std::pair{rule.source_address_ranges_size(), "rule.source_address_ranges"},
        std::pair{rule.destination_address_ranges_size(), "rule.destination_address_ranges"},
        std::pair{rule.source_networks_size(), "rule.source_networks"},
        std::pair{rule.destination_networks_size(), "rule.destination_networks"}}) {
    if (size > 0) AddFieldViolation(status, field, "enStratus rules take a CIDR or a firewall");
  }
  const auto& far_ranges = egress ? rule.destination_ranges() : rule.source_ranges();
  const auto& far_firewalls = egress ? rule.destination_firewalls() : rule.source_firewalls();
  const std::string far = egress ? "rule.destination" : "rule.source";
  if (far_ranges.size() + far_firewalls.size() > 1) {
    AddFieldViolation(status, absl::StrCat(far, far_ranges.size() > 1 ? "_ranges" : "_firewalls"),
                      "enStratus takes one CIDR or one firewall per rule");
  } else if (far_ranges.empty() && far_firewalls.empty()) {
    AddFieldViolation(status, absl::StrCat(far, "_ranges"),
                      "is required: one CIDR (0.0.0.0/0 for anywhere) or one firewall");
  } else if (far_firewalls.size() == 1 && !far_firewall_id.has_value()) {
    AddFieldViolation(status, absl::StrCat(far, "_firewalls[0]"), "must name a firewall");
  }
  int32_t start = rule.port_range_start(), end = rule.port_range_end();
  if (end == 0) end = start;
  if (protocol != "ICMP" && (start < 1 || start > 65535 || end < start || end > 65535)) {
    AddFieldViolation(status, "rule.port_range_start",
                      "tcp and udp rules need a port range within 1-65535");
  }
  // addRule sends no ports for ICMP (below): refused rather than dropped.
  if (protocol == "ICMP" && (rule.port_range_start() != 0 || rule.port_range_end() != 0)) {
    AddFieldViolation(status, "rule.port_range_start", "icmp rules have no ports");
  }
  if (!status.ok()) return status;
  const bool to_firewall = far_firewalls.size() == 1;
  const std::string other = to_firewall ? absl::StrCat(*far_firewall_id) : far_ranges[0];
  const char* const other_type = to_firewall ? "GLOBAL" : "CIDR";
  const std::string self = absl::StrCat(firewall_id);
  return OperationBody("addRule", [&](Writer& w) {
    Key(w, "firewallId");
    w.Int64(firewall_id);
    Key(w, "source");
    String(w, egress ? self : other);
    Key(w, "sourceType");
    String(w, egress ? "GLOBAL" : other_type);
    Key(w, "destination");
    String(w, egress ? other : self);
    Key(w, "destinationType");
    String(w, egress ? other_type : "GLOBAL");
    Key(w, "direction");
    String(w, egress ? "EGRESS" : "INGRESS");
    Key(w, "permission");
    String(w, rule.action() == v1::FirewallRule::DENY ? "DENY" : "ALLOW");
    Key(w, "protocol");
    String(w, protocol);
    if (protocol != "ICMP") {
      // mixcoatl leaves the ports out although rules carry them on read;
      // a real client most likely must send them (§7, uncertain).
      Key(w, "startPort");
      w.Int(start);
      Key(w, "endPort");
      w.Int(end);
    }
    Key(w, "reason");
    String(w, rule.description().empty() ? "Added by cloudplane" : rule.description());
  });
}

bool SameRule(const v1::FirewallRule& existing, const v1::FirewallRule& wanted) {
  const bool egress = wanted.direction() == v1::FirewallRule::EGRESS;
  const std::string protocol = absl::AsciiStrToLower(wanted.protocol());
  int32_t start = wanted.port_range_start(), end = wanted.port_range_end();
  if (end == 0) end = start;
  if (protocol == "icmp") start = end = 0;  // AddRuleBody sends no ports for ICMP
  auto same = [](const auto& a, const auto& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  };
  const bool same_far_end =
      egress ? same(existing.destination_ranges(), wanted.destination_ranges()) &&
                   same(existing.destination_firewalls(), wanted.destination_firewalls())
             : same(existing.source_ranges(), wanted.source_ranges()) &&
                   same(existing.source_firewalls(), wanted.source_firewalls());
  const int32_t existing_end =
      existing.port_range_end() == 0 ? existing.port_range_start() : existing.port_range_end();
  return existing.direction() ==
             (egress ? v1::FirewallRule::EGRESS : v1::FirewallRule::INGRESS) &&
         existing.action() ==
             (wanted.action() == v1::FirewallRule::DENY ? v1::FirewallRule::DENY
                                                        : v1::FirewallRule::ALLOW) &&
         absl::AsciiStrToLower(existing.protocol()) == protocol &&
         existing.port_range_start() == start && existing_end == end && same_far_end;
}

std::string ServerActionBody(absl::string_view action, absl::string_view reason) {
  return OperationBody(action, [&](Writer& w) {
    if (!reason.empty()) {
      Key(w, "reason");
      String(w, reason);
    }
  });
}

std::string AddVolumeBody(const VolumeSpec& spec) {
  return OperationBody("addVolume", [&](Writer& w) {
    Key(w, "name");
    String(w, spec.name);
    Key(w, "description");
    String(w, spec.description);
    Ref(w, "dataCenter", "dataCenterId", spec.data_center_id);
    Key(w, "sizeInGb");
    w.Int64(spec.size_gb);
    Key(w, "budget");
    w.Int64(spec.budget);
    if (!spec.label.empty()) {
      Key(w, "label");
      String(w, spec.label);
    }
  });
}

std::string AttachVolumeBody(int64_t server_id, absl::string_view device_id) {
  return OperationBody("attach", [&](Writer& w) {
    Ref(w, "server", "serverId", server_id);
    if (!device_id.empty()) {
      Key(w, "deviceId");
      String(w, device_id);
    }
  });
}

std::string DetachVolumeBody() {
  return OperationBody("detach", [](Writer&) {});
}

}  // namespace cloudplane::adapters::enstratus
