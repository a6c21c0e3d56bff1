// IPv4 addresses and CIDR blocks, shared by the adapters that check them in
// requests and read them from providers (sandbox, OpenNebula, CloudSigma).
// Pure functions; no errors of their own: each adapter words its refusal and
// names its field.
//
// An address is the four-part dotted-decimal form only, as inet_pton(AF_INET)
// takes it: four octets of 1-3 decimal digits, each 0-255, no leading zero
// ("010.0.0.1" is refused), no sign, no space, no shorter form ("10.1").
#ifndef CLOUDPLANE_ADAPTERS_COMMON_NET_IP_H_
#define CLOUDPLANE_ADAPTERS_COMMON_NET_IP_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace cloudplane::adapters::net {

// "10.0.0.5" → 0x0A000005 (host order); nullopt for anything else.
std::optional<uint32_t> ParseIpv4(absl::string_view text);
bool IsIpv4(absl::string_view text);

// 0x0A000005 → "10.0.0.5".
std::string FormatIpv4(uint32_t address);

// The netmask of a prefix length 0-32 (24 → 0xFFFFFF00).
uint32_t Ipv4Mask(int prefix);

struct Ipv4Cidr {
  uint32_t address = 0;  // host order, as written (host bits may be set)
  int prefix = 32;

  uint32_t mask() const { return Ipv4Mask(prefix); }
  // Bits set below the prefix ("10.0.0.1/24").
  bool HasHostBits() const { return (address & ~mask()) != 0; }
  // The block's first address, host bits cleared.
  uint32_t network() const { return address & mask(); }
  // The block's last address.
  uint32_t last() const { return address | ~mask(); }
};

// "a.b.c.d/n": an address (above) and a prefix of 1-2 decimal digits, 0-32.
// nullopt for anything else, a bare address included.
std::optional<Ipv4Cidr> ParseIpv4Cidr(absl::string_view text);

// ParseIpv4Cidr, or a bare address as its /32.
std::optional<Ipv4Cidr> ParseIpv4CidrOrAddress(absl::string_view text);

// "a.b.c.d/n" as written (host bits kept).
std::string FormatIpv4Cidr(const Ipv4Cidr& cidr);

}  // namespace cloudplane::adapters::net

#endif  // CLOUDPLANE_ADAPTERS_COMMON_NET_IP_H_
