#include "adapters/common/net/ip.h"

#include <arpa/inet.h>

#include <string>

#include "gtest/gtest.h"

namespace cloudplane::adapters::net {
namespace {

TEST(IpTest, ParsesAndFormatsDottedQuads) {
  EXPECT_EQ(ParseIpv4("10.0.0.5"), 0x0A000005u);
  EXPECT_EQ(ParseIpv4("0.0.0.0"), 0u);
  EXPECT_EQ(ParseIpv4("255.255.255.255"), 0xFFFFFFFFu);
  EXPECT_EQ(FormatIpv4(0xCB007101u), "203.0.113.1");
  EXPECT_EQ(FormatIpv4(0), "0.0.0.0");
  EXPECT_TRUE(IsIpv4("192.168.1.1"));
}

TEST(IpTest, RefusesEverythingButFourDecimalOctets) {
  for (const char* bad :
       {"", "10", "10.0.0", "10.0.0.0.0", "10.0.0.", ".10.0.0", "10..0.0", "256.0.0.0",
        "1.2.3.1000", "010.0.0.1", "10.0.0.00", "+1.2.3.4", " 1.2.3.4", "1.2.3.4 ", "1.2.3.-4",
        "a.b.c.d", "0x0a.0.0.1", "::1", "10.0.0.1/32"}) {
    EXPECT_FALSE(ParseIpv4(bad).has_value()) << bad;
    EXPECT_FALSE(IsIpv4(bad)) << bad;
  }
}

// The form inet_pton(AF_INET) takes, which the adapters used before.
TEST(IpTest, AgreesWithInetPton) {
  for (const char* text :
       {"1.2.3.4", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.04", "0.0.0.00", "1.2.3",
        "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", "1.2.3.4/8", "", "1..3.4"}) {
    in_addr a;
    const bool pton = inet_pton(AF_INET, text, &a) == 1;
    EXPECT_EQ(IsIpv4(text), pton) << text;
    if (pton) {
      EXPECT_EQ(ParseIpv4(text), ntohl(a.s_addr)) << text;
    }
  }
}

TEST(IpTest, Masks) {
  EXPECT_EQ(Ipv4Mask(0), 0u);
  EXPECT_EQ(Ipv4Mask(1), 0x80000000u);
  EXPECT_EQ(Ipv4Mask(24), 0xFFFFFF00u);
  EXPECT_EQ(Ipv4Mask(32), 0xFFFFFFFFu);
}

TEST(IpTest, ParsesCidrs) {
  std::optional<Ipv4Cidr> c = ParseIpv4Cidr("10.1.0.0/16");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->address, 0x0A010000u);
  EXPECT_EQ(c->prefix, 16);
  EXPECT_FALSE(c->HasHostBits());
  EXPECT_EQ(c->network(), 0x0A010000u);
  EXPECT_EQ(c->last(), 0x0A01FFFFu);
  EXPECT_EQ(FormatIpv4Cidr(*c), "10.1.0.0/16");

  c = ParseIpv4Cidr("10.0.0.1/24");
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->HasHostBits());
  EXPECT_EQ(FormatIpv4(c->network()), "10.0.0.0");
  EXPECT_EQ(FormatIpv4Cidr(*c), "10.0.0.1/24");  // as written

  c = ParseIpv4Cidr("0.0.0.0/0");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->prefix, 0);
  EXPECT_FALSE(c->HasHostBits());
  EXPECT_EQ(c->last(), 0xFFFFFFFFu);
  EXPECT_TRUE(ParseIpv4Cidr("1.2.3.4/32").has_value());
  EXPECT_EQ(ParseIpv4Cidr("10.0.0.0/08")->prefix, 8);
}

TEST(IpTest, RefusesOtherCidrs) {
  for (const char* bad : {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/024", "10.0.0.0/+8",
                          "10.0.0.0/ 8", "10.0.0.0/8 ", "10.0.0.0/-1", "10.0.0/8", "::/0",
                          "10.0.0.0/8/8", "/8"}) {
    EXPECT_FALSE(ParseIpv4Cidr(bad).has_value()) << bad;
  }
}

TEST(IpTest, BareAddressIsASlash32) {
  std::optional<Ipv4Cidr> c = ParseIpv4CidrOrAddress("203.0.113.7");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->prefix, 32);
  EXPECT_EQ(FormatIpv4Cidr(*c), "203.0.113.7/32");
  EXPECT_EQ(ParseIpv4CidrOrAddress("203.0.113.0/24")->prefix, 24);
  EXPECT_FALSE(ParseIpv4CidrOrAddress("203.0.113.0/").has_value());
  EXPECT_FALSE(ParseIpv4CidrOrAddress("!203.0.113.7").has_value());
}

}  // namespace
}  // namespace cloudplane::adapters::net
