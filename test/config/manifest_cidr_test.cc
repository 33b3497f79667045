// Sloppy IP/CIDR parsing, strict-mode checks and the `except` subset rule, as Go's net package
// (forked by k8s.io/utils) and kube-apiserver's ValidateIPBlock behave.
#include "config/manifest_cidr.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace picket::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kBadCidr[] = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
constexpr char kBadIp[] = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

ParsedCidr Cidr(std::string_view s) {
  std::optional<ParsedCidr> c = ParseCidrSloppy(s);
  EXPECT_TRUE(c.has_value()) << s;
  return c.value_or(ParsedCidr{});
}

TEST(ManifestCidrTest, ParsesIps) {
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

TEST(ManifestCidrTest, ParsesCidrs) {
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

TEST(ManifestCidrTest, SloppyModeAcceptsWhatKubernetes133Accepts) {
  EXPECT_THAT(CidrErrors("10.0.0.0/8", false), IsEmpty());
  EXPECT_THAT(CidrErrors("010.0.0.0/8", false), IsEmpty());
  EXPECT_THAT(CidrErrors("10.0.0.0/08", false), IsEmpty());
  EXPECT_THAT(CidrErrors("10.0.0.5/8", false), IsEmpty());
  EXPECT_THAT(CidrErrors("::ffff:10.0.0.0/104", false), IsEmpty());
  EXPECT_THAT(CidrErrors("10.0.0.0/33", false), ElementsAre(kBadCidr));
  EXPECT_THAT(CidrErrors("10.0.0.0", false), ElementsAre(kBadCidr));
  EXPECT_THAT(CidrErrors("", false), ElementsAre(kBadCidr));
}

TEST(ManifestCidrTest, StrictModeMirrorsStrictIPCIDRValidation) {
  EXPECT_THAT(CidrErrors("10.0.0.0/8", true), IsEmpty());
  EXPECT_THAT(CidrErrors("2001:db8::/64", true), IsEmpty());
  EXPECT_THAT(CidrErrors("010.0.0.0/8", true),
              ElementsAre("must not have leading 0s in IP or prefix length"));
  EXPECT_THAT(CidrErrors("10.0.0.0/08", true),
              ElementsAre("must not have leading 0s in IP or prefix length"));
  EXPECT_THAT(CidrErrors("::ffff:10.0.0.0/104", true),
              ElementsAre("must not have an IPv4-mapped IPv6 address"));
  EXPECT_THAT(CidrErrors("10.0.0.5/24", true),
              ElementsAre("must not have bits set beyond the prefix length"));
  EXPECT_THAT(CidrErrors("2001:db8::1/64", true),
              ElementsAre("must not have bits set beyond the prefix length"));
  EXPECT_THAT(CidrErrors("10.0.0.0/33", true), ElementsAre(kBadCidr));
}

TEST(ManifestCidrTest, IpErrors) {
  EXPECT_THAT(IpErrors("10.0.0.1", false), IsEmpty());
  EXPECT_THAT(IpErrors("010.0.0.1", false), IsEmpty());
  EXPECT_THAT(IpErrors("10.0.0.1/32", false), ElementsAre(kBadIp));
  EXPECT_THAT(IpErrors("010.0.0.1", true), ElementsAre("must not have leading 0s"));
  EXPECT_THAT(IpErrors("::ffff:1.2.3.4", true),
              ElementsAre("must not be an IPv4-mapped IPv6 address"));
}

TEST(ManifestCidrTest, StrictSubset) {
  EXPECT_TRUE(IsStrictSubset(Cidr("10.0.0.0/8"), Cidr("10.1.0.0/16")));
  EXPECT_TRUE(IsStrictSubset(Cidr("10.0.0.0/8"), Cidr("10.1.2.3/32")));
  EXPECT_TRUE(IsStrictSubset(Cidr("10.0.0.0/8"), Cidr("10.1.2.3/16")));   // host bits folded
  EXPECT_FALSE(IsStrictSubset(Cidr("10.0.0.0/8"), Cidr("10.0.0.0/8")));   // equal
  EXPECT_FALSE(IsStrictSubset(Cidr("10.0.0.0/16"), Cidr("10.0.0.0/8")));  // shorter
  EXPECT_FALSE(IsStrictSubset(Cidr("10.0.0.0/8"), Cidr("11.0.0.0/16")));  // outside
  EXPECT_FALSE(IsStrictSubset(Cidr("10.0.0.0/8"), Cidr("fd00::/64")));    // other family
  EXPECT_FALSE(IsStrictSubset(Cidr("::/0"), Cidr("10.0.0.0/8")));         // IPv6 /0 has no IPv4
  EXPECT_TRUE(IsStrictSubset(Cidr("2001:db8::/32"), Cidr("2001:db8:1::/48")));
  EXPECT_TRUE(IsStrictSubset(Cidr("0.0.0.0/0"), Cidr("192.168.0.0/16")));
  // Go compares mask lengths as written: ::ffff:10.0.0.0/104 (IPv4 /8 as IPv6) vs 10.1.0.0/16.
  EXPECT_FALSE(IsStrictSubset(Cidr("::ffff:10.0.0.0/104"), Cidr("10.1.0.0/16")));
  EXPECT_TRUE(IsStrictSubset(Cidr("10.0.0.0/8"), Cidr("::ffff:10.1.0.0/112")));
}

}  // namespace
}  // namespace picket::config
