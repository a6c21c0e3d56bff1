// Names (see enstratus_wire.h): caller-chosen aliases, DCM ids, location
// segments and the shape of resource names.
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/enstratus/enstratus_wire.h"
#include "base/errors.h"

namespace cloudplane::adapters::enstratus {

bool IsValidAlias(absl::string_view id) {
  if (id.empty() || id.size() > 63 || !absl::ascii_islower(static_cast<unsigned char>(id[0]))) {
    return false;
  }
  for (char c : id) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

std::optional<int64_t> ParseDcmId(absl::string_view segment) {
  if (segment.empty() || segment.size() > 18) return std::nullopt;
  for (char c : segment) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int64_t id;
  if (!absl::SimpleAtoi(segment, &id)) return std::nullopt;
  return id;
}

std::optional<LocationRef> ParseLocationSegment(absl::string_view segment) {
  LocationRef ref;
  if (absl::ConsumePrefix(&segment, "region-")) {
    ref.kind = LocationRef::kRegion;
  } else if (absl::ConsumePrefix(&segment, "dc-")) {
    ref.kind = LocationRef::kDataCenter;
  } else {
    return std::nullopt;
  }
  std::optional<int64_t> id = ParseDcmId(segment);
  if (!id.has_value()) return std::nullopt;
  ref.id = *id;
  return ref;
}

absl::StatusOr<std::string> SegmentOf(absl::string_view field, absl::string_view account,
                                      absl::string_view collection, absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "accounts" || parts[2] != collection || parts[3].empty()) {
    return InvalidField(field, absl::StrCat("must look like accounts/{account}/", collection,
                                            "/{id}"));
  }
  if (parts[1] != account) {
    return InvalidField(field, absl::StrCat("must be in accounts/", account));
  }
  return std::string(parts[3]);
}

absl::StatusOr<std::pair<std::string, std::string>> RuleSegmentsOf(absl::string_view field,
                                                                   absl::string_view account,
                                                                   absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 6 || parts[0] != "accounts" || parts[2] != "firewalls" ||
      parts[4] != "rules" || parts[3].empty() || parts[5].empty()) {
    return InvalidField(field,
                        "must look like accounts/{account}/firewalls/{firewall}/rules/{rule}");
  }
  if (parts[1] != account) {
    return InvalidField(field, absl::StrCat("must be in accounts/", account));
  }
  return std::pair{std::string(parts[3]), std::string(parts[5])};
}

}  // namespace cloudplane::adapters::enstratus
