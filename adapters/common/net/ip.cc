#include "adapters/common/net/ip.h"

#include <cstddef>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace cloudplane::adapters::net {
namespace {

// 1-`max_digits` decimal digits, no leading zero unless `leading_zero`; at
// most `max`.
std::optional<int> ParseDecimal(absl::string_view text, size_t max_digits, bool leading_zero,
                                int max) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  if (!leading_zero && text.size() > 1 && text[0] == '0') return std::nullopt;
  int value = 0;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > max) return std::nullopt;
  return value;
}

}  // namespace

std::optional<uint32_t> ParseIpv4(absl::string_view text) {
  uint32_t out = 0;
  for (int i = 0; i < 4; ++i) {
    absl::string_view octet = text;
    if (i < 3) {
      const size_t dot = text.find('.');
      if (dot == absl::string_view::npos) return std::nullopt;
      octet = text.substr(0, dot);
      text.remove_prefix(dot + 1);
    }
    std::optional<int> n = ParseDecimal(octet, 3, /*leading_zero=*/false, 255);
    if (!n.has_value()) return std::nullopt;
    out = (out << 8) | static_cast<uint32_t>(*n);
  }
  return out;
}

bool IsIpv4(absl::string_view text) { return ParseIpv4(text).has_value(); }

std::string FormatIpv4(uint32_t address) {
  return absl::StrCat(address >> 24, ".", (address >> 16) & 255, ".", (address >> 8) & 255, ".",
                      address & 255);
}

uint32_t Ipv4Mask(int prefix) {
  if (prefix <= 0) return 0;
  if (prefix >= 32) return ~uint32_t{0};
  return ~uint32_t{0} << (32 - prefix);
}

std::optional<Ipv4Cidr> ParseIpv4Cidr(absl::string_view text) {
  const size_t slash = text.find('/');
  if (slash == absl::string_view::npos) return std::nullopt;
  std::optional<uint32_t> address = ParseIpv4(text.substr(0, slash));
  std::optional<int> prefix =
      ParseDecimal(text.substr(slash + 1), 2, /*leading_zero=*/true, 32);
  if (!address.has_value() || !prefix.has_value()) return std::nullopt;
  return Ipv4Cidr{*address, *prefix};
}

std::optional<Ipv4Cidr> ParseIpv4CidrOrAddress(absl::string_view text) {
  if (text.find('/') != absl::string_view::npos) return ParseIpv4Cidr(text);
  std::optional<uint32_t> address = ParseIpv4(text);
  if (!address.has_value()) return std::nullopt;
  return Ipv4Cidr{*address, 32};
}

std::string FormatIpv4Cidr(const Ipv4Cidr& cidr) {
  return absl::StrCat(FormatIpv4(cidr.address), "/", cidr.prefix);
}

}  // namespace cloudplane::adapters::net
