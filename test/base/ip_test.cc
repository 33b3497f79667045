// base/ip.h: Go's sloppy parsers (as forked by k8s.io/utils) keep what was written; IpAddress and
// IpPrefix fold to what it means (IPv4-mapped is IPv4), as Go's net.IP and net.IPNet do.
#include "base/ip.h"

#include <gtest/gtest.h>

namespace picket::base {
namespace {

ParsedCidr Cidr(std::string_view s) {
  std::optional<ParsedCidr> c = ParseCidrSloppy(s);
  EXPECT_TRUE(c.has_value()) << s;
  return c.value_or(ParsedCidr{});
}

TEST(SloppyParseTest, ParsesIps) {
  EXPECT_TRUE(ParseIpSloppy("10.0.0.1"));
  EXPECT_TRUE(ParseIpSloppy("010.000.000.001"));  // leading zeros: decimal, accepted
  EXPECT_TRUE(ParseIpSloppy("::"));
  EXPECT_TRUE(ParseIpSloppy("fd00::1"));
  EXPECT_TRUE(ParseIpSloppy("::ffff:1.2.3.4"));
  EXPECT_TRUE(ParseIpSloppy("1:2:3:4:5:6:7:8"));
  EXPECT_TRUE(ParseIpSloppy("1:2:3:4:5:6:1.2.3.4"));
  EXPECT_FALSE(ParseIpSloppy(""));
  EXPECT_FALSE(ParseIpSloppy("10.0.0"));
  EXPECT_FALSE(ParseIpSloppy("10.0.0.256"));
  EXPECT_FALSE(ParseIpSloppy("10.0.0.1 "));
  EXPECT_FALSE(ParseIpSloppy("1:2:3:4:5:6:7:8:9"));
  EXPECT_FALSE(ParseIpSloppy("1::2::3"));
  EXPECT_FALSE(ParseIpSloppy("1:2:3:4:5:6:7::8"));  // :: must stand for at least one group
  EXPECT_FALSE(ParseIpSloppy("fe80::1%eth0"));
  EXPECT_FALSE(ParseIpSloppy("web"));
  EXPECT_EQ(ParseIpSloppy("10.1.2.3")->bytes,
            (IpBytes{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3}));
  EXPECT_EQ(ParseIpSloppy("1::2")->bytes,
            (IpBytes{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}));
}

TEST(SloppyParseTest, ParsesCidrs) {
  ParsedCidr c = Cidr("10.0.0.5/24");  // host bits are cleared, not rejected
  EXPECT_TRUE(c.dotted);
  EXPECT_EQ(c.prefix, 24);
  EXPECT_EQ(c.network, ParseIpSloppy("10.0.0.0")->bytes);
  EXPECT_EQ(Cidr("10.0.0.0/024").prefix, 24);
  EXPECT_EQ(Cidr("0.0.0.0/0").prefix, 0);
  EXPECT_EQ(Cidr("2001:db8::/64").prefix, 64);
  EXPECT_FALSE(Cidr("::ffff:1.2.3.0/120").dotted);
  EXPECT_FALSE(ParseCidrSloppy("10.0.0.0"));
  EXPECT_FALSE(ParseCidrSloppy("10.0.0.0/33"));
  EXPECT_FALSE(ParseCidrSloppy("::/129"));
  EXPECT_FALSE(ParseCidrSloppy("10.0.0.0/"));
  EXPECT_FALSE(ParseCidrSloppy("10.0.0.0/-1"));
  EXPECT_FALSE(ParseCidrSloppy("10.0.0.0/+8"));
  EXPECT_FALSE(ParseCidrSloppy("/8"));
}

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
                          "::/129", "/8", "10.0.0.0/+8", "10.0.0.0/8 "}) {
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

TEST(IpPrefixTest, FoldsLikeGoNetIpNet) {
  // What the API server accepts, the compiler accepts: one parser (Go's dtoi reads "0008" as 8).
  EXPECT_EQ(IpPrefix::Parse("10.0.0.0/0008")->ToString(), "10.0.0.0/8");
  // Masked at /95 the network keeps no ::ffff: it is an IPv6 prefix, containing no IPv4 address.
  const IpPrefix p95 = *IpPrefix::Parse("::ffff:10.0.0.0/95");
  EXPECT_TRUE(p95.address.v6);
  EXPECT_EQ(p95.length, 95);
  EXPECT_FALSE(p95.Contains(*IpAddress::Parse("10.0.0.1")));
  // ::ffff:0.0.0.0/96 is every IPv4 address.
  EXPECT_EQ(IpPrefix::Parse("::ffff:0.0.0.0/96")->ToString(), "0.0.0.0/0");
  EXPECT_TRUE(IpPrefix::Parse("::ffff:0.0.0.0/96")->Contains(*IpAddress::Parse("1.2.3.4")));
  EXPECT_FALSE(IpPrefix::Parse("::/0")->Contains(*IpAddress::Parse("1.2.3.4")));
}

}  // namespace
}  // namespace picket::base

namespace picket::base {
namespace {

TEST(IpAddressStrictTest, ReadsOnlyWhatInetPtonReads) {
  EXPECT_TRUE(IpAddress::ParseStrict("10.1.2.3").has_value());
  EXPECT_TRUE(IpAddress::ParseStrict("2001:db8::1")->v6);
  EXPECT_FALSE(IpAddress::ParseStrict("010.1.2.3").has_value());  // the sloppy parser takes it
  EXPECT_TRUE(IpAddress::Parse("010.1.2.3").has_value());
  EXPECT_FALSE(IpAddress::ParseStrict("10.1.2.3/8").has_value());
  EXPECT_FALSE(IpAddress::ParseStrict("fe80::1%eth0").has_value());
  EXPECT_FALSE(IpAddress::ParseStrict("").has_value());
  // Not folded: an IPv4-mapped literal stays IPv6.
  EXPECT_TRUE(IpAddress::ParseStrict("::ffff:10.0.0.1")->v6);
}

TEST(IpAddressStrictTest, Loopback) {
  for (const char* s : {"127.0.0.1", "127.255.0.7", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IpAddress::ParseStrict(s)->IsLoopback()) << s;
  }
  for (const char* s : {"128.0.0.1", "0.0.0.0", "::", "::7", "::2", "::ffff:10.0.0.1"}) {
    EXPECT_FALSE(IpAddress::ParseStrict(s)->IsLoopback()) << s;
  }
}

}  // namespace
}  // namespace picket::base
