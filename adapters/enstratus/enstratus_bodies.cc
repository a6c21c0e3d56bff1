// Request bodies (§3, §7): every DCM mutation body is `{"<operation>":[{...}]}`.
#include <cstdint>
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

absl::StatusOr<std::string> AddRuleBody(int64_t firewall_id, const v1::FirewallRule& rule) {
  absl::Status status;
  const std::string protocol = absl::AsciiStrToUpper(rule.protocol());
  if (protocol != "TCP" && protocol != "UDP" && protocol != "ICMP") {
    AddFieldViolation(status, "rule.protocol", "must be tcp, udp or icmp");
  }
  if (rule.source_ranges_size() > 1) {
    AddFieldViolation(status, "rule.source_ranges", "enStratus takes one CIDR per rule");
  }
  if (rule.destination_ranges_size() > 1) {
    AddFieldViolation(status, "rule.destination_ranges", "enStratus takes one CIDR per rule");
  }
  const bool egress = rule.direction() == v1::FirewallRule::EGRESS;
  // The firewall itself is the GLOBAL end of a rule (the fixture's
  // destination "406"/GLOBAL on an INGRESS rule); only the other end is a CIDR.
  if (egress && rule.source_ranges_size() > 0) {
    AddFieldViolation(status, "rule.source_ranges",
                      "an EGRESS rule's source is the firewall itself");
  }
  if (!egress && rule.destination_ranges_size() > 0) {
    AddFieldViolation(status, "rule.destination_ranges",
                      "an INGRESS rule's destination is the firewall itself");
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
  std::string cidr = "0.0.0.0/0";
  if (!egress && rule.source_ranges_size() == 1) cidr = rule.source_ranges(0);
  if (egress && rule.destination_ranges_size() == 1) cidr = rule.destination_ranges(0);
  const std::string self = absl::StrCat(firewall_id);
  return OperationBody("addRule", [&](Writer& w) {
    Key(w, "firewallId");
    w.Int64(firewall_id);
    Key(w, "source");
    String(w, egress ? self : cidr);
    Key(w, "sourceType");
    String(w, egress ? "GLOBAL" : "CIDR");
    Key(w, "destination");
    String(w, egress ? cidr : self);
    Key(w, "destinationType");
    String(w, egress ? "CIDR" : "GLOBAL");
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
  std::string cidr = "0.0.0.0/0";
  if (!egress && wanted.source_ranges_size() == 1) cidr = wanted.source_ranges(0);
  if (egress && wanted.destination_ranges_size() == 1) cidr = wanted.destination_ranges(0);
  const auto& ranges = egress ? existing.destination_ranges() : existing.source_ranges();
  const int32_t existing_end =
      existing.port_range_end() == 0 ? existing.port_range_start() : existing.port_range_end();
  return existing.direction() ==
             (egress ? v1::FirewallRule::EGRESS : v1::FirewallRule::INGRESS) &&
         existing.action() ==
             (wanted.action() == v1::FirewallRule::DENY ? v1::FirewallRule::DENY
                                                        : v1::FirewallRule::ALLOW) &&
         absl::AsciiStrToLower(existing.protocol()) == protocol &&
         existing.port_range_start() == start && existing_end == end && ranges.size() == 1 &&
         ranges[0] == cidr;
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
