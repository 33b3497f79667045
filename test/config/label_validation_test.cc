// The generic string checks, against the upstream messages (k8s.io/apimachinery
// pkg/util/validation) verbatim.
#include "config/label_validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace picket::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kSubdomainMsg[] =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
constexpr char kLabelMsg[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
constexpr char kNamePartMsg[] =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
constexpr char kValueMsg[] =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

TEST(LabelValidationTest, Dns1123Subdomain) {
  EXPECT_THAT(IsDns1123Subdomain("a"), IsEmpty());
  EXPECT_THAT(IsDns1123Subdomain("web-1.example.com"), IsEmpty());
  EXPECT_THAT(IsDns1123Subdomain("0abc"), IsEmpty());
  EXPECT_THAT(IsDns1123Subdomain("Web"), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(IsDns1123Subdomain(""), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(IsDns1123Subdomain("a..b"), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(IsDns1123Subdomain("-a"), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(IsDns1123Subdomain("a-"), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(IsDns1123Subdomain("a_b"), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(IsDns1123Subdomain(std::string(253, 'a')), IsEmpty());
  EXPECT_THAT(IsDns1123Subdomain(std::string(254, 'a')),
              ElementsAre("must be no more than 253 characters"));
}

TEST(LabelValidationTest, Dns1123Label) {
  EXPECT_THAT(IsDns1123Label("x"), IsEmpty());
  EXPECT_THAT(IsDns1123Label("kube-system"), IsEmpty());
  EXPECT_THAT(IsDns1123Label("a.b"), ElementsAre(kLabelMsg));
  EXPECT_THAT(IsDns1123Label("X"), ElementsAre(kLabelMsg));
  EXPECT_THAT(IsDns1123Label(std::string(63, 'a')), IsEmpty());
  EXPECT_THAT(IsDns1123Label(std::string(64, 'a')),
              ElementsAre("must be no more than 63 characters"));
}

TEST(LabelValidationTest, QualifiedName) {
  EXPECT_THAT(IsQualifiedName("app"), IsEmpty());
  EXPECT_THAT(IsQualifiedName("My_Name.v1"), IsEmpty());
  EXPECT_THAT(IsQualifiedName("kubernetes.io/metadata.name"), IsEmpty());
  EXPECT_THAT(IsQualifiedName("-app"), ElementsAre(kNamePartMsg));
  EXPECT_THAT(IsQualifiedName(""), ElementsAre("name part must be non-empty", kNamePartMsg));
  EXPECT_THAT(IsQualifiedName("example.com/"),
              ElementsAre("name part must be non-empty", kNamePartMsg));
  EXPECT_THAT(IsQualifiedName("/app"), ElementsAre("prefix part must be non-empty"));
  EXPECT_THAT(IsQualifiedName("Example.com/app"),
              ElementsAre(std::string("prefix part ") + kSubdomainMsg));
  EXPECT_THAT(IsQualifiedName(std::string(64, 'a')),
              ElementsAre("name part must be no more than 63 characters"));
  EXPECT_THAT(
      IsQualifiedName("a/b/c"),
      ElementsAre("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
                  "must start and end with an alphanumeric character (e.g. 'MyName',  or "
                  "'my.name',  or '123-abc', regex used for validation is "
                  "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
                  "prefix and '/' (e.g. 'example.com/MyName')"));
}

TEST(LabelValidationTest, LabelValue) {
  EXPECT_THAT(IsValidLabelValue(""), IsEmpty());
  EXPECT_THAT(IsValidLabelValue("v1.2_3-x"), IsEmpty());
  EXPECT_THAT(IsValidLabelValue("a b"), ElementsAre(kValueMsg));
  EXPECT_THAT(IsValidLabelValue("-a"), ElementsAre(kValueMsg));
  EXPECT_THAT(IsValidLabelValue(std::string(64, 'a')),
              ElementsAre("must be no more than 63 characters"));
  EXPECT_THAT(IsValidLabelValue(std::string(64, '-')),
              ElementsAre("must be no more than 63 characters", kValueMsg));
}

TEST(LabelValidationTest, PortName) {
  EXPECT_THAT(IsValidPortName("http"), IsEmpty());
  EXPECT_THAT(IsValidPortName("serve-80-tcp"), IsEmpty());
  EXPECT_THAT(IsValidPortName("80"), ElementsAre("must contain at least one letter (a-z)"));
  EXPECT_THAT(IsValidPortName("a-very-long-port-name"),
              ElementsAre("must be no more than 15 characters"));
  EXPECT_THAT(IsValidPortName("HTTP"),
              ElementsAre("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                          "must contain at least one letter (a-z)"));
  EXPECT_THAT(IsValidPortName("a--b"), ElementsAre("must not contain consecutive hyphens"));
  EXPECT_THAT(IsValidPortName("-ab"), ElementsAre("must not begin or end with a hyphen"));
  EXPECT_THAT(IsValidPortName(""),
              ElementsAre("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                          "must contain at least one letter (a-z)"));
}

TEST(LabelValidationTest, PortNum) {
  EXPECT_THAT(IsValidPortNum(1), IsEmpty());
  EXPECT_THAT(IsValidPortNum(65535), IsEmpty());
  EXPECT_THAT(IsValidPortNum(0), ElementsAre("must be between 1 and 65535, inclusive"));
  EXPECT_THAT(IsValidPortNum(65536), ElementsAre("must be between 1 and 65535, inclusive"));
  EXPECT_THAT(IsValidPortNum(-1), ElementsAre("must be between 1 and 65535, inclusive"));
}

TEST(LabelValidationTest, ProtocolsAreCaseSensitive) {
  EXPECT_EQ(ParseProtocol("TCP"), Protocol::kTCP);
  EXPECT_EQ(ParseProtocol("UDP"), Protocol::kUDP);
  EXPECT_EQ(ParseProtocol("SCTP"), Protocol::kSCTP);
  EXPECT_EQ(ParseProtocol("tcp"), std::nullopt);
  EXPECT_EQ(ParseProtocol("ICMP"), std::nullopt);
  EXPECT_EQ(ParseProtocol(""), std::nullopt);
}

TEST(LabelValidationTest, GoQuote) {
  EXPECT_EQ(GoQuote("x"), "\"x\"");
  EXPECT_EQ(GoQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(GoQuote("\n\t\x01"), "\"\\n\\t\\x01\"");
}

}  // namespace
}  // namespace picket::config
