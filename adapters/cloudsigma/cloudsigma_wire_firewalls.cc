// Firewall policies (/fwpolicies/) and their rules: pure translation (see
// cloudsigma_wire.h, "Firewall policies").
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "adapters/cloudsigma/cloudsigma_wire_internal.h"
#include "adapters/common/json/json.h"
#include "adapters/common/net/ip.h"
#include "base/errors.h"
#include "google/protobuf/struct.pb.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

namespace rj = rapidjson;

using json::Member;
using json::Serialize;
using wire_internal::IdOf;
using wire_internal::Malformed;
using wire_internal::Parse;
using wire_internal::PutLabels;
using wire_internal::ReservedMeta;
using wire_internal::SetDetail;
using wire_internal::String;
using wire_internal::WriteMeta;

constexpr absl::string_view kAnywhere = "0.0.0.0/0";

// The rule's fields with their wire keys, in the order of the dumps.
std::vector<std::pair<const char*, const std::string*>> Fields(const FwRule& r) {
  return {{"action", &r.action},   {"comment", &r.comment},   {"direction", &r.direction},
          {"dst_ip", &r.dst_ip},   {"dst_port", &r.dst_port}, {"ip_proto", &r.ip_proto},
          {"src_ip", &r.src_ip},   {"src_port", &r.src_port}};
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// "22" → {22, 22}; "1000:2000" → {1000, 2000}; nullopt for anything else
// ("!1:1024" included).
std::optional<std::pair<int, int>> ParsePorts(absl::string_view text) {
  absl::string_view first = text, last = text;
  if (const size_t colon = text.find(':'); colon != absl::string_view::npos) {
    first = text.substr(0, colon);
    last = text.substr(colon + 1);
  }
  int a = 0, b = 0;
  if (!AllDigits(first) || !AllDigits(last) || first.size() > 5 || last.size() > 5 ||
      !absl::SimpleAtoi(first, &a) || !absl::SimpleAtoi(last, &b) || a < 1 || b > 65535 ||
      a > b) {
    return std::nullopt;
  }
  return std::make_pair(a, b);
}

void WriteRule(rj::Writer<rj::StringBuffer>& w, const FwRule& rule) {
  w.StartObject();
  // Absent fields are left out, as the recorded create request does.
  for (const auto& [key, value] : Fields(rule)) {
    if (value->empty()) continue;
    w.Key(key);
    w.String(value->c_str(), static_cast<rj::SizeType>(value->size()));
  }
  w.EndObject();
}

}  // namespace

std::string FwRuleId(const FwRule& rule) {
  // 64-bit FNV-1a: stable across builds and runs (unlike absl::Hash).
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](absl::string_view text) {
    for (unsigned char c : text) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  };
  for (const auto& [key, value] : Fields(rule)) {
    mix(key);
    mix("=");
    mix(*value);
    mix("\n");
  }
  return absl::StrFormat("%012x", h >> 16);
}

absl::StatusOr<std::vector<FwRuleEntry>> PolicyRules(absl::string_view policy_json) {
  rj::Document doc;
  if (absl::Status s = Parse(policy_json, doc); !s.ok()) return s;
  if (!doc.IsObject()) return Malformed("a firewall policy is not an object");
  std::vector<FwRuleEntry> out;
  const rj::Value* rules = Member(doc, "rules");
  if (rules == nullptr) return out;
  if (!rules->IsArray()) return Malformed("a firewall policy's rules are not a list");
  std::map<std::string, int> seen;
  for (const rj::Value& r : rules->GetArray()) {
    if (!r.IsObject()) return Malformed("a firewall rule is not an object");
    FwRuleEntry entry;
    FwRule& rule = entry.rule;
    rule.action = String(r, "action");
    rule.direction = String(r, "direction");
    rule.ip_proto = String(r, "ip_proto");
    rule.src_ip = String(r, "src_ip");
    rule.src_port = String(r, "src_port");
    rule.dst_ip = String(r, "dst_ip");
    rule.dst_port = String(r, "dst_port");
    rule.comment = String(r, "comment");
    entry.id = FwRuleId(entry.rule);
    if (const int n = ++seen[entry.id]; n > 1) absl::StrAppend(&entry.id, "-", n);
    out.push_back(std::move(entry));
  }
  return out;
}

v1::FirewallRule FwRuleToFirewallRule(const FwRule& rule, std::string name) {
  v1::FirewallRule out;
  out.set_name(std::move(name));
  bool exact = true;  // false: the typed fields cannot hold this rule
  if (rule.action == "accept") {
    out.set_action(v1::FirewallRule::ALLOW);
  } else if (rule.action == "drop") {
    out.set_action(v1::FirewallRule::DENY);
  } else {
    exact = false;
  }
  const bool egress = rule.direction == "out";
  if (rule.direction == "in") {
    out.set_direction(v1::FirewallRule::INGRESS);
  } else if (egress) {
    out.set_direction(v1::FirewallRule::EGRESS);
  } else {
    exact = false;  // "both": one FirewallRule has one direction
  }
  if (rule.ip_proto.empty()) {
    out.set_protocol("any");  // no ip_proto matches every protocol
  } else {
    out.set_protocol(absl::AsciiStrToLower(rule.ip_proto));
    exact = exact && (out.protocol() == "tcp" || out.protocol() == "udp");
  }
  if (!rule.dst_port.empty()) {
    if (auto ports = ParsePorts(rule.dst_port); ports.has_value()) {
      out.set_port_range_start(ports->first);
      out.set_port_range_end(ports->second);
    } else {
      exact = false;  // "!…" (not) or another shape
    }
  }
  // The API has no source port, and the near end is the instance itself.
  exact = exact && rule.src_port.empty() && (egress ? rule.src_ip : rule.dst_ip).empty();
  // The far end: no IP means any address (fwpolicies.rst: every field but
  // action and direction is optional). Said as 0.0.0.0/0, never as nothing.
  const std::string& far = egress ? rule.dst_ip : rule.src_ip;
  std::string range(kAnywhere);
  if (!far.empty()) {
    // An address with an optional "/n" (absent: /32).
    std::optional<net::Ipv4Cidr> cidr = net::ParseIpv4CidrOrAddress(far);
    if (cidr.has_value() && !cidr->HasHostBits()) {
      range = net::FormatIpv4Cidr(*cidr);  // CloudSigma answers an address as a /32
    } else {
      exact = false;  // "!…" (not), IPv6 or another shape
    }
  }
  if (exact) {
    *(egress ? out.add_destination_ranges() : out.add_source_ranges()) = range;
    out.set_description(rule.comment);
    return out;
  }
  // Far end fields stay empty; the description says what CloudSigma holds.
  std::vector<std::string> words;
  for (const auto& [key, value] : Fields(rule)) {
    if (!value->empty() && absl::string_view(key) != "comment") {
      words.push_back(absl::StrCat(key, "=", *value));
    }
  }
  out.set_description(absl::StrCat(rule.comment, rule.comment.empty() ? "" : "; ",
                                   "CloudSigma rule: ", absl::StrJoin(words, " ")));
  return out;
}

absl::StatusOr<FwRule> FwRuleFromFirewallRule(const v1::FirewallRule& rule,
                                              absl::string_view field) {
  auto bad = [field](absl::string_view sub, absl::string_view why) {
    return InvalidField(absl::StrCat(field, ".", sub), why);
  };
  FwRule out;
  out.action = rule.action() == v1::FirewallRule::DENY ? "drop" : "accept";
  const bool egress = rule.direction() == v1::FirewallRule::EGRESS;
  out.direction = egress ? "out" : "in";
  const std::string protocol = absl::AsciiStrToLower(rule.protocol());
  if (protocol == "tcp" || protocol == "udp") {
    out.ip_proto = protocol;
  } else if (protocol != "any") {
    // The schema's ip_proto choices are tcp and udp; null is every protocol.
    return bad("protocol", "CloudSigma rules match tcp, udp or any");
  }
  if (rule.port_range_start() != 0 || rule.port_range_end() != 0) {
    if (out.ip_proto.empty()) return bad("port_range_start", "ports need protocol tcp or udp");
    const int a = rule.port_range_start();
    const int b = rule.port_range_end() == 0 ? a : rule.port_range_end();
    if (a < 1 || b > 65535 || a > b) {
      return bad("port_range_start", "ports must satisfy 1 <= start <= end <= 65535");
    }
    out.dst_port = a == b ? absl::StrCat(a) : absl::StrCat(a, ":", b);
  }
  // A rule's ends: the near end is the server's NIC the policy is on, the
  // far end is an IP (src_ip of an in rule, dst_ip of an out rule).
  const char* near = egress ? "source" : "destination";
  const char* far = egress ? "destination" : "source";
  if ((egress ? rule.source_ranges_size() : rule.destination_ranges_size()) > 0) {
    return bad(absl::StrCat(near, "_ranges"),
               egress ? "an EGRESS rule's source is the server itself"
                      : "an INGRESS rule's destination is the server itself");
  }
  const std::pair<int, const char*> others[] = {
      {rule.source_address_ranges_size(), "source_address_ranges"},
      {rule.destination_address_ranges_size(), "destination_address_ranges"},
      {rule.source_firewalls_size(), "source_firewalls"},
      {rule.destination_firewalls_size(), "destination_firewalls"},
      {rule.source_networks_size(), "source_networks"},
      {rule.destination_networks_size(), "destination_networks"}};
  for (const auto& [count, name] : others) {
    if (count > 0) return bad(name, "CloudSigma rules name their far end by one IP or CIDR");
  }
  const auto& ranges = egress ? rule.destination_ranges() : rule.source_ranges();
  const std::string ranges_field = absl::StrCat(far, "_ranges");
  if (ranges.size() != 1) {
    return bad(ranges_field,
               "CloudSigma rules hold one IPv4 CIDR each (0.0.0.0/0 for any address)");
  }
  if (ranges[0] != kAnywhere) {
    std::optional<net::Ipv4Cidr> cidr = net::ParseIpv4Cidr(ranges[0]);
    if (!cidr.has_value()) {
      return bad(ranges_field, "must be an IPv4 CIDR such as 203.0.113.0/24 (CloudSigma rules "
                               "hold IPv4 addresses)");
    }
    if (cidr->HasHostBits()) {
      return bad(ranges_field, "must not have host bits set beyond its prefix");
    }
    (egress ? out.dst_ip : out.src_ip) = net::FormatIpv4Cidr(*cidr);
  }
  out.comment = rule.description();
  return out;
}

absl::StatusOr<v1::Firewall> PolicyToFirewall(absl::string_view policy_json,
                                              absl::string_view account) {
  rj::Document doc;
  if (absl::Status s = Parse(policy_json, doc); !s.ok()) return s;
  if (!doc.IsObject() || String(doc, "uuid").empty()) {
    return Malformed("a firewall policy has no uuid");
  }
  absl::StatusOr<std::vector<FwRuleEntry>> rules = PolicyRules(policy_json);
  if (!rules.ok()) return rules.status();
  v1::Firewall out;
  out.set_name(ResourceName(account, "firewalls", IdOf(doc)));
  out.set_display_name(String(doc, "name"));
  PutLabels(doc, out.mutable_labels());
  for (const FwRuleEntry& entry : *rules) {
    *out.add_rules() = FwRuleToFirewallRule(entry.rule, absl::StrCat(out.name(), "/rules/",
                                                                     entry.id));
  }
  auto* details = out.mutable_provider_details();
  SetDetail(details, "uuid", String(doc, "uuid"));
  SetDetail(details, "resource_uri", String(doc, "resource_uri"));
  auto* servers = (*details->mutable_fields())["servers"].mutable_list_value();
  if (const rj::Value* list = Member(doc, "servers"); list != nullptr && list->IsArray()) {
    for (const rj::Value& s : list->GetArray()) {
      std::string uuid = s.IsString() ? s.GetString() : String(s, "uuid");
      if (!uuid.empty()) servers->add_values()->set_string_value(uuid);
    }
  }
  return out;
}

std::string PolicyCreateBody(const v1::Firewall& firewall, const std::vector<FwRule>& rules,
                             absl::string_view chosen_id, absl::string_view operation) {
  return wire_internal::CreateEnvelope([&](rj::Writer<rj::StringBuffer>& w) {
    const std::string name =
        !firewall.display_name().empty() ? firewall.display_name() : std::string(chosen_id);
    if (!name.empty()) {  // a policy's name may be null (the minimal create)
      w.Key("name");
      w.String(name.c_str(), static_cast<rj::SizeType>(name.size()));
    }
    auto meta = ReservedMeta(chosen_id, operation);
    for (const auto& [k, v] : firewall.labels()) meta[k] = v;
    WriteMeta(w, meta);
    w.Key("rules");
    w.StartArray();
    for (const FwRule& rule : rules) WriteRule(w, rule);
    w.EndArray();
  });
}

absl::StatusOr<std::string> EditPolicyRules(absl::string_view policy_json,
                                            const std::vector<FwRule>& rules) {
  rj::Document doc;
  if (absl::Status s = Parse(policy_json, doc); !s.ok()) return s;
  if (!doc.IsObject()) return Malformed("a firewall policy is not an object");
  rj::StringBuffer buffer;
  rj::Writer<rj::StringBuffer> w(buffer);
  w.StartArray();
  for (const FwRule& rule : rules) WriteRule(w, rule);
  w.EndArray();
  rj::Document list;
  list.Parse(buffer.GetString(), buffer.GetSize());
  rj::Value value(list, doc.GetAllocator());
  if (auto it = doc.FindMember("rules"); it != doc.MemberEnd()) {
    it->value = value;
  } else {
    doc.AddMember("rules", value, doc.GetAllocator());
  }
  return Serialize(doc);
}

}  // namespace cloudplane::adapters::cloudsigma
