// config/endpoint_resource.h: shape and scalar checks of the pushed resources, JSON only (the
// policy-side conversion is covered by endpoint_policy_test). Lives here, beside the policy
// tests, because the format is policy/'s: config/ only decodes it.
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

TEST(EndpointResourceTest, DecodesInPlaceFromAParsedValue) {
  // A pushed resource is read from its frame's parsed document: no second parse.
  auto doc = base::ParseJson(
      R"({"resource":{"namespace":"x","pod":"a","identity_sets":[[1,2]],"ingress":{)"
      R"("isolated":true,"policies":["x/p"],"rules":[{"policy":0,"rule":1,)"
      R"("port":{"protocol":"UDP","port":53}}]}}})");
  ASSERT_TRUE(doc.has_value());
  auto r = DecodePodPolicyResource(*doc->root().Find("resource"), "x/a");
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  EXPECT_TRUE(r->ingress.isolated);
  ASSERT_EQ(r->ingress.rules.size(), 1u);
  EXPECT_EQ(r->ingress.rules[0].rule, 1u);
  EXPECT_EQ(r->ingress.rules[0].port->protocol, Protocol::kUDP);
  EXPECT_EQ(r->identity_sets, (std::vector<std::vector<uint32_t>>{{1, 2}}));
}

TEST(EndpointResourceTest, IdentitySetRangesExpandAndAreBounded) {
  // A run of ids may be written [first, last] (policy/endpoint_codec.cc writes runs of three or
  // more that way); single ids and ranges mix in one set.
  auto r = DecodePodPolicyResource(
      R"({"namespace":"x","pod":"a","identity_sets":[[1,[4,7],9],[[0,0]]]})", "p.json");
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  EXPECT_EQ(r->identity_sets, (std::vector<std::vector<uint32_t>>{{1, 4, 5, 6, 7, 9}, {0}}));

  auto bad = DecodePodPolicyResource(
      R"({"namespace":"x","pod":"a","identity_sets":[[[5,4],[1],[1,2,3],[0,4294967295],)"
      R"(["a",1]]]})",
      "p.json");
  ASSERT_FALSE(bad.has_value());
  std::vector<std::string> got;
  for (const Error& e : bad.error()) got.push_back(e.ToString());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "p.json: identity_sets[0][0]: Invalid value: [5,4]: last is smaller than "
                     "first",
                     "p.json: identity_sets[0][1]: Invalid value: [...]: expected an id or "
                     "[first, last]",
                     "p.json: identity_sets[0][2]: Invalid value: [...]: expected an id or "
                     "[first, last]",
                     "p.json: identity_sets[0][3]: Invalid value: [0,4294967295]: ranges expand "
                     "to more than 2097152 ids in one policy",
                     "p.json: identity_sets[0][4][0]: Invalid value: \"a\": expected an integer",
                 }));
}

TEST(EndpointResourceTest, NamedPortsInBothForms) {
  // Objects (the first form, still read) and the compact strings the encoder writes.
  auto r = DecodeAddressEntryResource(
      R"({"identity":7,"namespace":"x","pod":"a","named_ports":[)"
      R"({"name":"http","port":8080,"protocol":"TCP"},"dns:53/UDP","metrics:9090",)"
      R"("assoc:38412/SCTP","web:80/TCP"]})",
      "e");
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  ASSERT_EQ(r->named_ports.size(), 5u);
  EXPECT_EQ(r->named_ports[1].name, "dns");
  EXPECT_EQ(r->named_ports[1].port, 53);
  EXPECT_EQ(r->named_ports[1].protocol, Protocol::kUDP);
  EXPECT_EQ(r->named_ports[2].protocol, Protocol::kTCP);
  EXPECT_EQ(r->named_ports[3].protocol, Protocol::kSCTP);
  EXPECT_EQ(r->named_ports[4].port, 80);

  auto bad = DecodeAddressEntryResource(
      R"({"identity":7,"namespace":"x","pod":"a","named_ports":[)"
      R"("http",":80","a/b:80","http:0","http:65536","http:8a","http:80/ICMP","http:123456"]})",
      "e");
  ASSERT_FALSE(bad.has_value());
  std::vector<std::string> got;
  for (const Error& e : bad.error()) got.push_back(e.ToString());
  const std::string form = R"(expected "name:port" or "name:port/PROTOCOL")";
  const std::string range = "the port must be a number between 1 and 65535";
  EXPECT_EQ(got, (std::vector<std::string>{
                     "e: named_ports[0]: Invalid value: \"http\": " + form,
                     "e: named_ports[1]: Invalid value: \":80\": " + form,
                     "e: named_ports[2]: Invalid value: \"a/b:80\": the name contains '/'",
                     "e: named_ports[3]: Invalid value: \"http:0\": " + range,
                     "e: named_ports[4]: Invalid value: \"http:65536\": " + range,
                     "e: named_ports[5]: Invalid value: \"http:8a\": " + range,
                     "e: named_ports[6]: Invalid value: \"http:80/ICMP\": the protocol must be "
                     "TCP, UDP or SCTP",
                     "e: named_ports[7]: Invalid value: \"http:123456\": " + range,
                 }));
}

TEST(EndpointResourceTest, YamlIsNotAccepted) {
  // The text form is JSON only (what `picket-control compile` writes and the server pushes).
  auto r = DecodePodPolicyResource("namespace: x\npod: a\n", "p.yaml");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].file, "p.yaml");
  EXPECT_TRUE(r.error()[0].reason.starts_with("invalid JSON: ")) << r.error()[0].reason;
}

TEST(EndpointResourceTest, ReportsEveryErrorWithItsPath) {
  auto r =
      DecodeAddressEntryResource(R"({"identity":-1,"namespace":["x"],"extra":1,"named_ports":[)"
                                 R"({"name":"h","port":70000,"protocol":"ICMP"}],"identity":2})",
                                 "e.json");
  ASSERT_FALSE(r.has_value());
  std::vector<std::string> got;
  for (const Error& e : r.error()) got.push_back(e.ToString());
  EXPECT_EQ(got, (std::vector<std::string>{
                     "e.json: identity: duplicate field \"identity\"",
                     "e.json: identity: Invalid value: -1: must be between 0 and 4294967295, "
                     "inclusive",
                     "e.json: namespace: Invalid value: [...]: expected a string",
                     "e.json: pod: Required value",
                     "e.json: named_ports[0].port: Invalid value: 70000: must be between 1 and "
                     "65535, inclusive",
                     "e.json: named_ports[0].protocol: Unsupported value: \"ICMP\": supported "
                     "values: \"TCP\", \"UDP\", \"SCTP\"",
                     "e.json: extra: unknown field \"extra\"",
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
  EXPECT_EQ(r.error()[0].ToString(), "e: labels: Invalid value: must be printable ASCII");
  r = DecodeAddressEntryResource("{\"identity\":1,\"namespace\":\"x\",\"pod\":\"\xc3\xa9\"}", "e");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error()[0].ToString(), "e: pod: Invalid value: must be printable ASCII");
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
