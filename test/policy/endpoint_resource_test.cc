// config/endpoint_resource.h: shape and scalar checks of the pushed resources (the policy-side
// conversion is covered by endpoint_policy_test). Lives here, beside the policy tests, because
// the format is policy/'s: config/ only decodes it.
#include "config/endpoint_resource.h"

#include <gtest/gtest.h>

namespace picket::config {
namespace {

TEST(EndpointResourceTest, DecodesAddressEntry) {
  auto r = DecodeAddressEntryResource(
      R"({"identity":7,"namespace":"x","pod":"a","ips":["10.0.0.1","fd00::1"],)"
      R"("labels":{"app":"web"},"named_ports":[{"name":"http","port":8080,"protocol":"TCP"}]})",
      "e");
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  EXPECT_EQ(r->identity, 7u);
  EXPECT_EQ(r->ns, "x");
  EXPECT_EQ(r->ips, (std::vector<std::string>{"10.0.0.1", "fd00::1"}));
  EXPECT_EQ(r->labels.at("app"), "web");
  ASSERT_EQ(r->named_ports.size(), 1u);
  EXPECT_EQ(r->named_ports[0].port, 8080);
}

TEST(EndpointResourceTest, YamlIsAcceptedToo) {
  auto r = DecodePodPolicyResource(
      "namespace: x\npod: a\nidentity_sets: [[1, 2]]\ningress:\n  isolated: true\n"
      "  policies: [x/p]\n  rules:\n  - {policy: 0, rule: 1, port: {protocol: UDP, port: 53}}\n",
      "p.yaml");
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  EXPECT_TRUE(r->ingress.isolated);
  ASSERT_EQ(r->ingress.rules.size(), 1u);
  EXPECT_EQ(r->ingress.rules[0].rule, 1u);
  EXPECT_EQ(r->ingress.rules[0].port->protocol, Protocol::kUDP);
  EXPECT_EQ(r->identity_sets, (std::vector<std::vector<uint32_t>>{{1, 2}}));
}

TEST(EndpointResourceTest, ReportsEveryErrorWithItsPath) {
  auto r = DecodeAddressEntryResource(
      "identity: -1\nnamespace: [x]\nextra: 1\nnamed_ports:\n- {name: h, port: 70000, "
      "protocol: ICMP}\n",
      "e.yaml");
  ASSERT_FALSE(r.has_value());
  std::vector<std::string> got;
  for (const Error& e : r.error()) got.push_back(e.ToString());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "e.yaml:3: extra: Unknown field: \"extra\"",
                     "e.yaml:1: pod: Required value",
                     "e.yaml:1: identity: Invalid value: \"-1\": must be an integer between 0 and "
                     "4294967295",
                     "e.yaml:2: namespace: Invalid value: must be a string",
                     "e.yaml:5: named_ports[0].port: Invalid value: \"70000\": must be an integer "
                     "between 0 and 65535",
                     "e.yaml:5: named_ports[0].protocol: Unsupported value: \"ICMP\": supported "
                     "values: \"TCP\", \"UDP\", \"SCTP\"",
                 }));
}

TEST(EndpointResourceTest, PeerAndPortShapes) {
  auto r =
      DecodePodPolicyResource(R"({"namespace":"x","pod":"a","egress":{"rules":[)"
                              R"({"policy":0,"peer":{"identity_set":0,"cidr":"10.0.0.0/8"}},)"
                              R"({"policy":0,"peer":{"identity_set":0,"except":["10.0.0.0/9"]}},)"
                              R"({"policy":0,"port":{"protocol":"TCP","name":"http","port":80}},)"
                              R"({"policy":0,"port":{"protocol":"TCP","end_port":80}},)"
                              R"({"policy":0,"port":{"protocol":"TCP","port":0}}]}})",
                              "p");
  ASSERT_FALSE(r.has_value());
  std::vector<std::string> got;
  for (const Error& e : r.error()) got.push_back(e.field + ": " + e.reason);
  EXPECT_EQ(got,
            (std::vector<std::string>{
                "egress.rules[0].peer: Invalid value: must specify exactly one of identity_set, "
                "cidr",
                "egress.rules[1].peer.except: Forbidden: may only be specified with cidr",
                "egress.rules[2].port.name: Forbidden: may not be specified with port or end_port",
                "egress.rules[3].port.end_port: Forbidden: may not be specified without port",
                "egress.rules[4].port.port: Invalid value: 0: must be between 1 and 65535, "
                "inclusive",
            }));
}

TEST(EndpointResourceTest, StringsMustBePrintableAscii) {
  auto r = DecodeAddressEntryResource(
      "{\"identity\":1,\"namespace\":\"x\",\"pod\":\"a\",\"labels\":{\"a\\u000e\":\"v\"}}", "e");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].ToString(), "e:1: labels: Invalid value: must be printable ASCII");
  r = DecodeAddressEntryResource("{identity: 1, namespace: x, pod: \"\xc3\xa9\"}", "e");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].ToString(), "e:1: pod: Invalid value: must be printable ASCII");
}

TEST(EndpointResourceTest, MalformedInputNeverThrows) {
  for (const char* text : {"{", "[", "a: [", "- - -", "\t", "!!binary x", "{a: *b}", "&a [*a]",
                           "'unterminated", "\"\\u12\"", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}) {
    auto r = DecodeEndpointPolicyResource(text, "t");
    EXPECT_FALSE(r.has_value()) << text;
  }
}

}  // namespace
}  // namespace picket::config
