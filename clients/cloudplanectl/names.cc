#include "clients/cloudplanectl/names.h"

#include <cctype>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace cloudplane::ctl {

std::string AccountName(absl::string_view account) {
  if (absl::StartsWith(account, "accounts/")) return std::string(account);
  return absl::StrCat("accounts/", account);
}

std::string ResourceName(absl::string_view account, absl::string_view collection,
                         absl::string_view id_or_name) {
  if (id_or_name.empty() || absl::StartsWith(id_or_name, "accounts/")) {
    return std::string(id_or_name);
  }
  return absl::StrCat(AccountName(account), "/", collection, "/", id_or_name);
}

std::string OperationName(absl::string_view id_or_name) {
  if (id_or_name.empty() || absl::StartsWith(id_or_name, "operations/")) {
    return std::string(id_or_name);
  }
  return absl::StrCat("operations/", id_or_name);
}

std::string LastSegment(absl::string_view name) {
  size_t slash = name.rfind('/');
  return std::string(slash == absl::string_view::npos ? name : name.substr(slash + 1));
}

absl::StatusOr<int64_t> ParseSize(absl::string_view text) {
  static const std::pair<absl::string_view, int64_t> kUnits[] = {
      {"KiB", int64_t{1} << 10},
      {"MiB", int64_t{1} << 20},
      {"GiB", int64_t{1} << 30},
      {"TiB", int64_t{1} << 40},
      {"KB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
      {"TB", int64_t{1000} * 1000 * 1000 * 1000},
      {"B", 1},
  };
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  int64_t multiplier = 1;
  for (const auto& [suffix, factor] : kUnits) {
    if (absl::ConsumeSuffix(&rest, suffix)) {
      multiplier = factor;
      break;
    }
  }
  rest = absl::StripAsciiWhitespace(rest);
  int64_t value = 0;
  if (rest.empty() || !std::isdigit(static_cast<unsigned char>(rest[0])) ||
      !absl::SimpleAtoi(rest, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("size \"", text, "\" is not a byte count such as 10GiB or 512MiB"));
  }
  if (value > std::numeric_limits<int64_t>::max() / multiplier) {
    return absl::InvalidArgumentError(absl::StrCat("size \"", text, "\" is too large"));
  }
  return value * multiplier;
}

std::string FormatBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0 || value == static_cast<double>(static_cast<int64_t>(value))) {
    return absl::StrFormat("%d %s", static_cast<int64_t>(value), kUnits[unit]);
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(absl::string_view text) {
  std::map<std::string, std::string> labels;
  for (absl::string_view entry : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> kv = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    absl::string_view key = absl::StripAsciiWhitespace(kv[0]);
    if (kv.size() != 2 || key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("label \"", entry, "\" is not key=value"));
    }
    labels[std::string(key)] = std::string(absl::StripAsciiWhitespace(kv[1]));
  }
  return labels;
}

}  // namespace cloudplane::ctl
