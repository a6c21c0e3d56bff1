// FirewallsService of the sandbox. Rules live inside their firewall's record
// and are numbered from 1 in creation order; numbers are never reused.
#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "adapters/common/net/ip.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

// An IPv4 or IPv6 CIDR block.
bool IsCidr(absl::string_view range) {
  if (net::ParseIpv4Cidr(range).has_value()) return true;
  size_t slash = range.find('/');
  if (slash == absl::string_view::npos) return false;
  std::string address(range.substr(0, slash));
  int prefix = 0;
  if (!absl::SimpleAtoi(range.substr(slash + 1), &prefix) || prefix < 0) return false;
  in6_addr buffer;
  return inet_pton(AF_INET6, address.c_str(), &buffer) == 1 && prefix <= 128;
}

// Checks `in` and returns it normalised (lower-case protocol, explicit
// direction and action); `field` is the rule's path in the request. Names of
// firewalls and networks are checked for form here, for existence by
// CheckRuleRefs.
absl::StatusOr<v1::FirewallRule> CheckRule(const v1::FirewallRule& in, absl::string_view field,
                                           absl::string_view account) {
  v1::FirewallRule rule = in;
  rule.clear_name();
  std::string protocol = absl::AsciiStrToLower(in.protocol());
  if (protocol.empty()) return InvalidField(absl::StrCat(field, ".protocol"), "required");
  if (protocol != "tcp" && protocol != "udp" && protocol != "icmp" && protocol != "any") {
    return InvalidField(absl::StrCat(field, ".protocol"), "must be tcp, udp, icmp or any");
  }
  rule.set_protocol(protocol);
  if (rule.direction() == v1::FirewallRule::DIRECTION_UNSPECIFIED) {
    rule.set_direction(v1::FirewallRule::INGRESS);
  }
  if (rule.action() == v1::FirewallRule::ACTION_UNSPECIFIED) {
    rule.set_action(v1::FirewallRule::ALLOW);
  }
  const int start = in.port_range_start();
  const int end = in.port_range_end();
  if (start < 0 || start > 65535) {
    return InvalidField(absl::StrCat(field, ".port_range_start"), "must be 0 to 65535");
  }
  if (end < 0 || end > 65535) {
    return InvalidField(absl::StrCat(field, ".port_range_end"), "must be 0 to 65535");
  }
  if ((protocol == "icmp" || protocol == "any") && (start != 0 || end != 0)) {
    return InvalidField(absl::StrCat(field, ".port_range_start"),
                        absl::StrCat("ports do not apply to protocol ", protocol));
  }
  if (end != 0 && start == 0) {
    return InvalidField(absl::StrCat(field, ".port_range_start"),
                        "required when port_range_end is set");
  }
  if (end != 0 && end < start) {
    return InvalidField(absl::StrCat(field, ".port_range_end"),
                        "must not be below port_range_start");
  }
  // The near end is the firewall's own instances; the far end must be
  // named (an empty one is not "anywhere": that is 0.0.0.0/0).
  const bool egress = rule.direction() == v1::FirewallRule::EGRESS;
  const std::string near = absl::StrCat(field, egress ? ".source" : ".destination");
  const char* const near_says =
      egress ? "only INGRESS rules have sources" : "only EGRESS rules have destinations";
  if ((egress ? in.source_ranges_size() : in.destination_ranges_size()) > 0) {
    return InvalidField(absl::StrCat(near, "_ranges"), near_says);
  }
  if ((egress ? in.source_address_ranges_size() : in.destination_address_ranges_size()) > 0) {
    return InvalidField(absl::StrCat(near, "_address_ranges"), near_says);
  }
  if ((egress ? in.source_firewalls_size() : in.destination_firewalls_size()) > 0) {
    return InvalidField(absl::StrCat(near, "_firewalls"), near_says);
  }
  if ((egress ? in.source_networks_size() : in.destination_networks_size()) > 0) {
    return InvalidField(absl::StrCat(near, "_networks"), near_says);
  }
  const std::string far = absl::StrCat(field, egress ? ".destination" : ".source");
  const auto& ranges = egress ? in.destination_ranges() : in.source_ranges();
  const auto& address_ranges = egress ? in.destination_address_ranges() : in.source_address_ranges();
  const auto& firewalls = egress ? in.destination_firewalls() : in.source_firewalls();
  const auto& networks = egress ? in.destination_networks() : in.source_networks();
  if (ranges.empty() && address_ranges.empty() && firewalls.empty() && networks.empty()) {
    return InvalidField(absl::StrCat(far, "_ranges"),
                        "required (0.0.0.0/0 for anywhere), unless address ranges, firewalls "
                        "or networks are given");
  }
  for (int i = 0; i < ranges.size(); ++i) {
    if (!IsCidr(ranges[i])) {
      return InvalidField(absl::StrCat(far, "_ranges[", i, "]"),
                          "must be a CIDR range such as 203.0.113.0/24");
    }
  }
  for (int i = 0; i < address_ranges.size(); ++i) {
    const std::string at = absl::StrCat(far, "_address_ranges[", i, "]");
    std::optional<uint32_t> first = net::ParseIpv4(address_ranges[i].first_address());
    if (!first.has_value()) {
      return InvalidField(absl::StrCat(at, ".first_address"), "must be an IPv4 address");
    }
    if (address_ranges[i].size() < 1 ||
        int64_t{*first} + address_ranges[i].size() - 1 > 0xffffffffll) {
      return InvalidField(absl::StrCat(at, ".size"), "must be at least 1 and stay within IPv4");
    }
  }
  for (int i = 0; i < firewalls.size(); ++i) {
    RETURN_IF_ERROR(ParseName(firewalls[i], account, kFirewalls,
                              absl::StrCat(far, "_firewalls[", i, "]"))
                        .status());
  }
  for (int i = 0; i < networks.size(); ++i) {
    RETURN_IF_ERROR(ParseName(networks[i], account, kNetworks,
                              absl::StrCat(far, "_networks[", i, "]"))
                        .status());
  }
  return rule;
}

// Whether `rule` names the firewall or network `name` as an end.
bool RuleNames(const v1::FirewallRule& rule, const std::string& name) {
  for (const auto* list : {&rule.source_firewalls(), &rule.destination_firewalls(),
                           &rule.source_networks(), &rule.destination_networks()}) {
    if (std::find(list->begin(), list->end(), name) != list->end()) return true;
  }
  return false;
}

}  // namespace

// The firewalls and networks `rule` names exist in the account (NOT_FOUND
// otherwise); `self` (the firewall the rule belongs to) counts as existing,
// so a rule may name its own firewall while that is being created.
absl::Status SandboxProvider::CheckRuleRefs(Txn& txn, const v1::FirewallRule& rule,
                                            absl::string_view field, const std::string& self) {
  const bool egress = rule.direction() == v1::FirewallRule::EGRESS;
  const std::string far = absl::StrCat(field, egress ? ".destination" : ".source");
  const auto& firewalls = egress ? rule.destination_firewalls() : rule.source_firewalls();
  const auto& networks = egress ? rule.destination_networks() : rule.source_networks();
  for (int i = 0; i < firewalls.size(); ++i) {
    if (firewalls[i] == self) continue;
    RETURN_IF_ERROR(
        CheckStoredRef(txn, firewalls[i], kFirewalls, absl::StrCat(far, "_firewalls[", i, "]"))
            .status());
  }
  for (int i = 0; i < networks.size(); ++i) {
    RETURN_IF_ERROR(
        CheckStoredRef(txn, networks[i], kNetworks, absl::StrCat(far, "_networks[", i, "]"))
            .status());
  }
  return absl::OkStatus();
}

// Whether a rule of any firewall other than `name` itself names `name` (a
// firewall or a network); returns that firewall's name, or "".
absl::StatusOr<std::string> SandboxProvider::RuleNaming(Txn& txn, const std::string& name) {
  ASSIGN_OR_RETURN(auto firewalls, txn.LoadAll(kFirewalls));
  for (const auto& [id, record] : firewalls) {
    ASSIGN_OR_RETURN(v1::Firewall firewall, Decode<v1::Firewall>(record));
    if (firewall.name() == name) continue;
    for (const v1::FirewallRule& rule : firewall.rules()) {
      if (RuleNames(rule, name)) return rule.name();
    }
  }
  return std::string();
}

namespace {

int64_t RuleNumber(const v1::FirewallRule& rule) {
  int64_t number = 0;
  absl::SimpleAtoi(LastSegment(rule.name()), &number);
  return number;
}

}  // namespace

void SandboxProvider::ListFirewalls(const CallContext& ctx,
                                    const v1::ListFirewallsRequest& request,
                                    Callback<v1::ListFirewallsResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListFirewallsResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListFirewallsResponse response;
    RETURN_IF_ERROR(ListPage(kFirewalls, request.page_size(), request.page_token(),
                             response.mutable_firewalls(), response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetFirewall(const CallContext& ctx, const v1::GetFirewallRequest& request,
                                  Callback<v1::Firewall> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::Firewall> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kFirewalls, "name"));
    return GetTyped<v1::Firewall>(kFirewalls, id);
  }());
}

void SandboxProvider::CreateFirewall(const CallContext& ctx,
                                     const v1::CreateFirewallRequest& request,
                                     Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        if (!request.has_firewall()) return InvalidField("firewall", "required");
        const v1::Firewall& in = request.firewall();
        v1::Firewall firewall;
        firewall.set_display_name(in.display_name());
        firewall.set_description(in.description());
        if (!in.location().empty()) {
          ASSIGN_OR_RETURN(std::string location,
                           CheckCatalogRef(in.location(), kLocations, "firewall.location"));
          firewall.set_location(Name(kLocations, location));
        }
        RETURN_IF_ERROR(CheckLabels(in.labels(), "firewall.labels"));
        *firewall.mutable_labels() = in.labels();
        std::vector<v1::FirewallRule> rules;
        for (int i = 0; i < in.rules_size(); ++i) {
          ASSIGN_OR_RETURN(v1::FirewallRule rule, CheckRule(in.rules(i),
                                                            absl::StrCat("firewall.rules[", i, "]"),
                                                            account_));
          rules.push_back(std::move(rule));
        }
        ASSIGN_OR_RETURN(std::string id,
                         ChooseId(txn, kFirewalls, request.firewall_id(), "firewall_id", "fw"));
        firewall.set_name(Name(kFirewalls, id));
        for (size_t i = 0; i < rules.size(); ++i) {
          RETURN_IF_ERROR(CheckRuleRefs(txn, rules[i], absl::StrCat("firewall.rules[", i, "]"),
                                        firewall.name()));
        }
        SetTime(txn.now(), firewall.mutable_create_time());
        Record record;
        int64_t next = 1;
        for (v1::FirewallRule& rule : rules) {
          rule.set_name(RuleName(account_, id, next++));
          *firewall.add_rules() = std::move(rule);
        }
        record.set_next_child_id(next);
        SaveVersion(firewall, record, txn.now());
        RETURN_IF_ERROR(txn.Put(kFirewalls, id, record));
        return CurrentToken(kFirewalls, id);
      },
      std::move(done));
}

void SandboxProvider::DeleteFirewall(const CallContext& ctx,
                                     const v1::DeleteFirewallRequest& request,
                                     Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kFirewalls, "name"));
        ASSIGN_OR_RETURN(std::optional<Record> record, txn.Load(kFirewalls, id));
        if (!record.has_value()) {
          if (request.allow_missing()) return GoneToken(kFirewalls, id);
          return NotFound(kFirewalls, request.name());
        }
        // Like an EC2 security group, a firewall in use cannot go.
        const std::string name = Name(kFirewalls, id);
        ASSIGN_OR_RETURN(auto instances, txn.LoadAll(kInstances));
        for (const auto& [instance_id, instance_record] : instances) {
          ASSIGN_OR_RETURN(v1::Instance instance, Decode<v1::Instance>(instance_record));
          for (const std::string& fw : instance.firewalls()) {
            if (fw == name) {
              return WrongState(name, absl::StrCat("is used by ", instance.name()));
            }
          }
          for (const v1::NetworkInterface& nic : instance.network_interfaces()) {
            if (nic.firewall() == name) {
              return WrongState(name, absl::StrCat("is used by network interface ", nic.id(),
                                                   " of ", instance.name()));
            }
          }
        }
        // Nor one another firewall's rule names (as EC2 refuses to delete a
        // group another group's rule references): the rule would dangle.
        ASSIGN_OR_RETURN(std::string naming, RuleNaming(txn, name));
        if (!naming.empty()) return WrongState(name, absl::StrCat("is named by rule ", naming));
        RETURN_IF_ERROR(txn.Delete(kFirewalls, id));
        return GoneToken(kFirewalls, id);
      },
      std::move(done));
}

void SandboxProvider::ListFirewallRules(const CallContext& ctx,
                                        const v1::ListFirewallRulesRequest& request,
                                        Callback<v1::ListFirewallRulesResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListFirewallRulesResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.parent(), account_, kFirewalls, "parent"));
    ASSIGN_OR_RETURN(v1::Firewall firewall, GetTyped<v1::Firewall>(kFirewalls, id));
    std::vector<v1::FirewallRule> rules(firewall.rules().begin(), firewall.rules().end());
    v1::ListFirewallRulesResponse response;
    // Keyed by zero-padded number, so rule 10 comes after rule 9.
    RETURN_IF_ERROR(PageInto(
        std::move(rules),
        [](const v1::FirewallRule& rule) { return absl::StrFormat("%019d", RuleNumber(rule)); },
        request.page_size(), request.page_token(), response.mutable_rules(),
        response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetFirewallRule(const CallContext& ctx,
                                      const v1::GetFirewallRuleRequest& request,
                                      Callback<v1::FirewallRule> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::FirewallRule> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(auto parsed, ParseRuleName(request.name(), account_, "name"));
    ASSIGN_OR_RETURN(v1::Firewall firewall, GetTyped<v1::Firewall>(kFirewalls, parsed.first));
    for (const v1::FirewallRule& rule : firewall.rules()) {
      if (rule.name() == request.name()) return rule;
    }
    return NotFound(kRules, request.name());
  }());
}

void SandboxProvider::CreateFirewallRule(const CallContext& ctx,
                                         const v1::CreateFirewallRuleRequest& request,
                                         Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id,
                         ParseName(request.parent(), account_, kFirewalls, "parent"));
        if (!request.has_rule()) return InvalidField("rule", "required");
        ASSIGN_OR_RETURN(v1::FirewallRule rule, CheckRule(request.rule(), "rule", account_));
        ASSIGN_OR_RETURN(Loaded<v1::Firewall> firewall,
                         LoadExisting<v1::Firewall>(txn, kFirewalls, id));
        RETURN_IF_ERROR(CheckRuleRefs(txn, rule, "rule", firewall.resource.name()));
        int64_t number = std::max<int64_t>(firewall.record.next_child_id(), 1);
        rule.set_name(RuleName(account_, id, number));
        *firewall.resource.add_rules() = std::move(rule);
        firewall.record.set_next_child_id(number + 1);
        SaveVersion(firewall.resource, firewall.record, txn.now());
        RETURN_IF_ERROR(txn.Put(kFirewalls, id, firewall.record));
        return RuleToken(id, number, /*gone=*/false);
      },
      std::move(done));
}

void SandboxProvider::DeleteFirewallRule(const CallContext& ctx,
                                         const v1::DeleteFirewallRuleRequest& request,
                                         Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(auto parsed, ParseRuleName(request.name(), account_, "name"));
        const PollToken token = RuleToken(parsed.first, parsed.second, /*gone=*/true);
        ASSIGN_OR_RETURN(std::optional<Loaded<v1::Firewall>> firewall,
                         LoadIfExists<v1::Firewall>(txn, kFirewalls, parsed.first));
        auto* rules = firewall.has_value() ? firewall->resource.mutable_rules() : nullptr;
        int index = -1;
        for (int i = 0; rules != nullptr && i < rules->size(); ++i) {
          if (rules->Get(i).name() == request.name()) index = i;
        }
        if (index < 0) {
          if (request.allow_missing()) return token;
          return NotFound(kRules, request.name());
        }
        rules->erase(rules->begin() + index);
        SaveVersion(firewall->resource, firewall->record, txn.now());
        RETURN_IF_ERROR(txn.Put(kFirewalls, parsed.first, firewall->record));
        return token;
      },
      std::move(done));
}

}  // namespace cloudplane::adapters::sandbox
