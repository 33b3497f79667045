// Strict-mode checks and the `except` subset rule on top of base/ip.h's sloppy parsers, as
// kube-apiserver's IsValidCIDRForLegacyField and ValidateIPBlock behave.
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
