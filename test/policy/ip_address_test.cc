#include "policy/ip_address.h"

#include <gtest/gtest.h>

namespace picket::policy {
namespace {

TEST(IpAddressTest, ParsesAndFormats) {
  EXPECT_EQ(IpAddress::Parse("10.1.2.3")->ToString(), "10.1.2.3");
  EXPECT_FALSE(IpAddress::Parse("10.1.2.3")->v6);
  EXPECT_EQ(IpAddress::Parse("2001:DB8::1")->ToString(), "2001:db8::1");
  EXPECT_TRUE(IpAddress::Parse("2001:db8::1")->v6);
}

TEST(IpAddressTest, SloppyIpv4LeadingZerosAreDecimal) {
  // Go's ParseIPSloppy (legacy Kubernetes parsing) reads "010" as 10, not octal.
  EXPECT_EQ(IpAddress::Parse("010.001.002.003")->ToString(), "10.1.2.3");
}

TEST(IpAddressTest, Ipv4MappedIpv6IsIpv4) {
  EXPECT_EQ(IpAddress::Parse("::ffff:10.0.0.1"), IpAddress::Parse("10.0.0.1"));
}

TEST(IpAddressTest, RejectsGarbage) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.4 ", "a.b.c.d", "1::2::3",
                          "1..2.3", "0x1.2.3.4", "1234.1.1.1", ":::"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << bad;
  }
}

TEST(IpPrefixTest, ParsesAndClearsHostBits) {
  auto p = IpPrefix::Parse("10.0.0.5/24");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->ToString(), "10.0.0.0/24");
  EXPECT_EQ(IpPrefix::Parse("2001:db8::1/64")->ToString(), "2001:db8::/64");
  EXPECT_EQ(IpPrefix::Parse("10.1.2.3/0")->ToString(), "0.0.0.0/0");
  EXPECT_EQ(IpPrefix::Parse("::ffff:10.0.0.0/104")->ToString(), "10.0.0.0/8");
  EXPECT_EQ(IpPrefix::Parse("10.0.0.0/9")->ToString(), "10.0.0.0/9");
}

TEST(IpPrefixTest, RejectsGarbage) {
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",
                          "::/129", "/8", "10.0.0.0/0008", "::ffff:10.0.0.0/95"}) {
    EXPECT_FALSE(IpPrefix::Parse(bad).has_value()) << bad;
  }
}

TEST(IpPrefixTest, Contains) {
  const IpPrefix p = *IpPrefix::Parse("10.1.0.0/17");
  EXPECT_TRUE(p.Contains(*IpAddress::Parse("10.1.127.255")));
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("10.1.128.0")));
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("::ffff:a01:8000")));
  EXPECT_TRUE(p.Contains(*IpAddress::Parse("::ffff:a01:7f00"))) << "mapped form is IPv4";
  EXPECT_FALSE(p.Contains(*IpAddress::Parse("fd00::1"))) << "other family";
  EXPECT_TRUE(IpPrefix::Parse("0.0.0.0/0")->Contains(*IpAddress::Parse("255.255.255.255")));
  EXPECT_FALSE(IpPrefix::Parse("0.0.0.0/0")->Contains(*IpAddress::Parse("::1")));
  EXPECT_TRUE(IpPrefix::Parse("::/0")->Contains(*IpAddress::Parse("fd00::1")));
  EXPECT_TRUE(p.Contains(*IpPrefix::Parse("10.1.2.0/24")));
  EXPECT_TRUE(p.Contains(p));
  EXPECT_FALSE(p.Contains(*IpPrefix::Parse("10.1.0.0/16")));
}

TEST(IpAddressHashTest, DistinguishesFamilies) {
  const IpAddressHash h;
  EXPECT_NE(h(*IpAddress::Parse("0.0.0.1")), h(*IpAddress::Parse("::100:0:0:0")));
  EXPECT_EQ(h(*IpAddress::Parse("10.0.0.1")), h(*IpAddress::Parse("10.0.0.1")));
}

}  // namespace
}  // namespace picket::policy
