#include "adapters/sandbox/sandbox_names.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/net/ip.h"
#include "base/errors.h"

namespace cloudplane::adapters::sandbox {
namespace {

bool IsMachineId(absl::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

absl::Status CheckId(absl::string_view collection, absl::string_view id,
                     absl::string_view field) {
  if (collection == kUnits) {
    absl::Status unit = CheckUnitName(id);
    if (!unit.ok()) return InvalidField(field, unit.message());
    return absl::OkStatus();
  }
  if (collection == kMachines) {
    if (!IsMachineId(id)) return InvalidField(field, "machine id must be 32 lowercase hex digits");
    return absl::OkStatus();
  }
  if (collection == kAddresses) {
    // Canonical dotted-decimal (no leading zeros): the id rule of addresses.
    if (!net::IsIpv4(id)) return InvalidField(field, "address id must be an IPv4 address");
    return absl::OkStatus();
  }
  if (!IsValidId(id)) {
    return InvalidField(field, "id must match [a-z]([-a-z0-9]{0,61}[a-z0-9])?");
  }
  return absl::OkStatus();
}

}  // namespace

std::string ResourceName(absl::string_view account, absl::string_view collection,
                         absl::string_view id) {
  return absl::StrCat("accounts/", account, "/", collection, "/", id);
}

std::string RuleName(absl::string_view account, absl::string_view firewall, int64_t rule) {
  return absl::StrCat(ResourceName(account, kFirewalls, firewall), "/rules/", rule);
}

std::string MetadataName(absl::string_view account, absl::string_view instance) {
  return absl::StrCat(ResourceName(account, kInstances, instance), "/metadata");
}

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  if (!absl::ascii_islower(id.front())) return false;
  if (id.back() == '-') return false;
  for (char c : id) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return true;
}

absl::Status CheckUnitName(absl::string_view name) {
  // Limits and the type list follow fleet's api/units.go.
  static constexpr absl::string_view kTypes[] = {
      "service", "socket", "busname", "target", "snapshot", "device", "mount",
      "automount", "swap", "timer", "path", "slice", "scope"};
  if (name.empty()) return absl::InvalidArgumentError("unit name cannot be empty");
  if (name.size() > 256) return absl::InvalidArgumentError("unit name exceeds 256 bytes");
  size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos) {
    return absl::InvalidArgumentError("unit name must contain \".\"");
  }
  if (dot == name.size() - 1) return absl::InvalidArgumentError("unit name cannot end in \".\"");
  absl::string_view type = name.substr(dot + 1);
  bool known = false;
  for (absl::string_view t : kTypes) known = known || t == type;
  if (!known) return absl::InvalidArgumentError(absl::StrCat("invalid unit type \"", type, "\""));
  for (char c : name.substr(0, dot)) {
    constexpr absl::string_view kPunctuation = ":-_.\\@";
    if (!absl::ascii_isalnum(c) && kPunctuation.find(c) == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("invalid character '", std::string(1, c),
                                                     "' in unit name"));
    }
  }
  if (name.front() == '@') return absl::InvalidArgumentError("unit name cannot start with \"@\"");
  return absl::OkStatus();
}

bool IsTemplateUnit(absl::string_view name) {
  size_t dot = name.rfind('.');
  return dot != absl::string_view::npos && dot > 0 && name[dot - 1] == '@';
}

absl::Status CheckParent(absl::string_view parent, absl::string_view account,
                         absl::string_view field) {
  if (parent != absl::StrCat("accounts/", account)) {
    return InvalidField(field, absl::StrCat("must be accounts/", account));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ParseName(absl::string_view name, absl::string_view account,
                                      absl::string_view collection, absl::string_view field) {
  std::string prefix = absl::StrCat("accounts/", account, "/", collection, "/");
  if (!absl::StartsWith(name, prefix)) {
    return InvalidField(field, absl::StrCat("must be ", prefix, "{id}"));
  }
  absl::string_view id = name.substr(prefix.size());
  if (id.empty() || id.find('/') != absl::string_view::npos) {
    return InvalidField(field, absl::StrCat("must be ", prefix, "{id}"));
  }
  if (absl::Status status = CheckId(collection, id, field); !status.ok()) return status;
  return std::string(id);
}

absl::StatusOr<std::pair<std::string, int64_t>> ParseRuleName(absl::string_view name,
                                                              absl::string_view account,
                                                              absl::string_view field) {
  std::string prefix = absl::StrCat("accounts/", account, "/firewalls/");
  std::string expected = absl::StrCat("must be ", prefix, "{firewall}/rules/{rule}");
  if (!absl::StartsWith(name, prefix)) return InvalidField(field, expected);
  std::vector<absl::string_view> parts = absl::StrSplit(name.substr(prefix.size()), '/');
  int64_t rule = 0;
  if (parts.size() != 3 || parts[1] != "rules" || !IsValidId(parts[0]) ||
      parts[2].empty() || !absl::SimpleAtoi(parts[2], &rule) || rule <= 0 ||
      absl::StrCat(rule) != parts[2]) {
    return InvalidField(field, expected);
  }
  return std::make_pair(std::string(parts[0]), rule);
}

absl::StatusOr<std::string> ParseMetadataName(absl::string_view name, absl::string_view account,
                                              absl::string_view field) {
  std::string expected = absl::StrCat("must be accounts/", account, "/instances/{id}/metadata");
  if (!absl::ConsumeSuffix(&name, "/metadata")) return InvalidField(field, expected);
  absl::StatusOr<std::string> id = ParseName(name, account, kInstances, field);
  if (!id.ok() && id.status().code() == absl::StatusCode::kInvalidArgument) {
    return InvalidField(field, expected);
  }
  return id;
}

}  // namespace cloudplane::adapters::sandbox
