// Unit tests of policy/endpoint_policy.h: compile, the two resources, text form round trips,
// decode errors, and agreement with the cluster-wide lookup (one evaluator).
#include "policy/endpoint_policy.h"

#include <gtest/gtest.h>

#include "policy/cluster_policy.h"
#include "test/policy/cluster_builder.h"

namespace picket::policy {
namespace {

using config::Protocol;
using testing::ClusterBuilder;
using testing::IpPeer;
using testing::NamedPort;
using testing::NsPeer;
using testing::PodPeer;
using testing::Port;
using testing::Rule;
using testing::Sel;

config::Cluster Sample() {
  ClusterBuilder b;
  b.Namespace("x").Namespace("y", {{"team", "red"}});
  b.Pod("x", "a", {{"app", "web"}}, {"10.0.1.1", "fd00::11"}, {{"http", 8080, Protocol::kTCP}});
  b.Pod("x", "b", {{"app", "db"}}, {"10.0.1.2"});
  b.Pod("y", "a", {{"app", "web"}}, {"10.0.2.1"}, {{"http", 9090, Protocol::kTCP}});
  b.Pod("y", "b", {{"app", "db"}}, {"10.0.2.2"});
  b.Ingress(
      "x", "web", Sel({{"app", "web"}}),
      {Rule({PodPeer(Sel({{"app", "db"}})), NsPeer(Sel({{"team", "red"}}))}, {NamedPort("http")})});
  b.Egress("x", "out", Sel({{"app", "web"}}),
           {Rule({IpPeer("10.0.2.0/24", {"10.0.2.2/32"})}, {Port(80), Port(9090)}),
            Rule({NsPeer({})}, {testing::PortRange(5000, 5010, Protocol::kUDP)})});
  return b.Build();
}

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

TEST(EndpointPolicyTest, CompileAndCheck) {
  auto p = CompileEndpointPolicy(Sample(), "x", "a");
  ASSERT_TRUE(p.has_value());
  const EndpointPolicy& ep = **p;
  EXPECT_EQ(ep.pod_namespace(), "x");
  EXPECT_EQ(ep.pod_name(), "a");
  EXPECT_EQ(ep.version().size(), 16u);

  Decision d = ep.CheckIngress(Ip("10.0.1.2"), 8080, Protocol::kTCP);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.policies, std::vector<std::string>{"x/web"});
  EXPECT_EQ(d.detail,
            "allowed by x/web ingress rule 0: from podSelector {app=db} in namespace x, port "
            "TCP/http (named port)");
  d = ep.CheckIngress(Ip("10.0.1.2"), 80, Protocol::kTCP);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "policy_denied");
  EXPECT_EQ(d.policies, std::vector<std::string>{"x/web"});
  EXPECT_TRUE(ep.CheckIngress(Ip("10.0.2.1"), 8080, Protocol::kTCP).allowed);
  EXPECT_FALSE(ep.CheckIngress(Ip("192.0.2.1"), 8080, Protocol::kTCP).allowed);
  EXPECT_TRUE(ep.CheckIngress(Ip("fd00::11"), 1, Protocol::kTCP).allowed) << "itself";

  EXPECT_TRUE(ep.CheckEgress(Ip("10.0.2.1"), 80, Protocol::kTCP).allowed);
  EXPECT_FALSE(ep.CheckEgress(Ip("10.0.2.2"), 80, Protocol::kTCP).allowed) << "excepted";
  EXPECT_TRUE(ep.CheckEgress(Ip("10.0.2.2"), 5010, Protocol::kUDP).allowed);
  EXPECT_FALSE(ep.CheckEgress(Ip("10.0.2.2"), 5011, Protocol::kUDP).allowed);
  EXPECT_FALSE(ep.CheckEgress(Ip("8.8.8.8"), 5000, Protocol::kUDP).allowed) << "not a pod";

  const PeerInfo* peer = ep.LookupPeer(Ip("10.0.2.2"));
  ASSERT_NE(peer, nullptr);
  EXPECT_EQ(peer->ns, "y");
  EXPECT_EQ(peer->pod, "b");
  EXPECT_EQ(peer->labels.at("app"), "db");
  EXPECT_EQ(ep.LookupPeer(Ip("10.9.9.9")), nullptr);
}

TEST(EndpointPolicyTest, UnknownPodIsAnError) {
  auto p = CompileEndpointPolicy(Sample(), "x", "nope");
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error()[0].ToString(), "Pod x/nope: Not found: no such pod");
}

TEST(EndpointPolicyTest, EncodeDecodeRoundTrips) {
  for (const char* pod : {"a", "b"}) {
    auto p = CompileEndpointPolicy(Sample(), "x", pod);
    ASSERT_TRUE(p.has_value());
    const std::string text = (*p)->Encode();
    auto decoded = DecodeEndpointPolicy(text, "policy.json");
    ASSERT_TRUE(decoded.has_value()) << (decoded ? "" : decoded.error()[0].ToString());
    EXPECT_EQ((*decoded)->Encode(), text);
    EXPECT_EQ((*decoded)->version(), (*p)->version());
  }
}

// The snapshot and the cluster-wide lookup agree on every pod pair, port and protocol.
TEST(EndpointPolicyTest, AgreesWithClusterPolicy) {
  const config::Cluster cluster = Sample();
  auto cp = ClusterPolicy::Compile(cluster);
  ASSERT_TRUE(cp.has_value());
  for (const PodEntry* subject : (*cp)->Pods()) {
    auto ep = CompileEndpointPolicy(cluster, subject->ns, subject->name);
    ASSERT_TRUE(ep.has_value());
    auto decoded = DecodeEndpointPolicy((*ep)->Encode(), "x");
    ASSERT_TRUE(decoded.has_value());
    for (const PodEntry* other : (*cp)->Pods()) {
      for (uint16_t port : {80, 5005, 8080, 9090}) {
        for (Protocol proto : {Protocol::kTCP, Protocol::kUDP}) {
          const auto self_ep = *(*cp)->FindPod(subject->ns, subject->name);
          const auto other_ep = *(*cp)->FindPod(other->ns, other->name);
          const auto out = (*cp)->Check(self_ep, other_ep, port, proto);
          const auto in = (*cp)->Check(other_ep, self_ep, port, proto);
          EXPECT_EQ((*decoded)->CheckEgress(other->ips[0], port, proto).allowed,
                    out.egress.verdict.allowed);
          EXPECT_EQ((*decoded)->CheckIngress(other->ips[0], port, proto).allowed,
                    in.ingress.verdict.allowed);
        }
      }
    }
  }
}

TEST(EndpointPolicyTest, ResourcesEncodeAndDecodeSeparately) {
  auto cp = ClusterPolicy::Compile(Sample());
  ASSERT_TRUE(cp.has_value());
  const PodEntry* pod = (*cp)->FindPodEntry("x", "a");
  ASSERT_NE(pod, nullptr);
  std::vector<AddressEntry> entries;
  for (const AddressEntry& e : (*cp)->AddressMap()) {
    auto decoded = DecodeAddressEntry(EncodeAddressEntry(e), "entry");
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, e);
    entries.push_back(*decoded);
  }
  const PodPolicy policy = (*cp)->PodPolicyOf(*pod);
  auto decoded = DecodePodPolicy(EncodePodPolicy(policy), "policy");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, policy);
  auto built = BuildEndpointPolicy(entries, *decoded);
  ASSERT_TRUE(built.has_value());
  auto direct = CompileEndpointPolicy(Sample(), "x", "a");
  EXPECT_EQ((*built)->Encode(), (*direct)->Encode());
  EXPECT_EQ(
      EncodeAddressEntry(entries[0]),
      R"({"identity":0,"namespace":"x","pod":"a","ips":["10.0.1.1","fd00::11"],)"
      R"("labels":{"app":"web"},"named_ports":[{"name":"http","port":8080,"protocol":"TCP"}]})");
}

TEST(EndpointPolicyTest, AddressMapDeltaChangesOnlyTheAddressMap) {
  // A new pod with an existing label set: the pod policy is unchanged, one entry is added.
  config::Cluster cluster = Sample();
  auto before = ClusterPolicy::Compile(cluster);
  ASSERT_TRUE(before.has_value());
  config::Pod extra;
  extra.ns = "x";
  extra.name = "b2";
  extra.labels = {{"app", "db"}};
  extra.ips = {"10.0.1.3"};
  const PodPolicy policy_before = (*before)->PodPolicyOf(*(*before)->FindPodEntry("x", "a"));
  ASSERT_TRUE((*before)->AddPod(extra).has_value());
  EXPECT_EQ((*before)->PodPolicyOf(*(*before)->FindPodEntry("x", "a")), policy_before);
  EXPECT_EQ((*before)->AddressMap().size(), 5u);
  auto ep = BuildEndpointPolicy((*before)->AddressMap(), policy_before);
  ASSERT_TRUE(ep.has_value());
  EXPECT_TRUE((*ep)->CheckIngress(Ip("10.0.1.3"), 8080, Protocol::kTCP).allowed);
}

TEST(EndpointPolicyTest, DecodeReportsPreciseErrors) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"", "f.json: empty document"},
      {"[1", "f.json:1: end of sequence flow not found"},
      {R"({"namespace":"x","pod":"a"})", "f.json:1: pod_policy: Required value"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a"},"bogus":1})",
       "f.json:1: bogus: Unknown field: \"bogus\""},
      {R"({"namespace":"x","pod":"a","address_map":[{"identity":1,"namespace":"x","pod":"a",)"
       R"("ips":["10.0.0.300"]}],"pod_policy":{"namespace":"x","pod":"a"}})",
       "f.json: address_map[0].ips[0]: Invalid value: \"10.0.0.300\": must be an IP address"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a","ingress":)"
       R"({"isolated":true,"policies":["x/p"],"rules":[{"policy":0,"peer":{"identity_set":3}}]}}})",
       "f.json: pod_policy.ingress.rules[0].peer.identity_set: Invalid value: 3: must index "
       "`identity_sets` (size 0)"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a","egress":)"
       R"({"isolated":true,"policies":[],"rules":[{"policy":0,"port":{"protocol":"tcp"}}]}}})",
       "f.json:1: pod_policy.egress.rules[0].port.protocol: Unsupported value: \"tcp\": "
       "supported values: \"TCP\", \"UDP\", \"SCTP\""},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a","egress":)"
       R"({"isolated":true,"policies":["p"],"rules":[{"policy":0,"port":{"protocol":"TCP",)"
       R"("port":90,"end_port":80}}]}}})",
       "f.json:1: pod_policy.egress.rules[0].port.end_port: Invalid value: 80: must be greater "
       "than or equal to `port`"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"y","pod":"a"}})",
       "f.json: pod_policy: Invalid value: policy of y/a in the snapshot of x/a"},
      {R"({"namespace":"x","pod":"a","address_map":[)"
       R"({"identity":1,"namespace":"x","pod":"a","ips":["10.0.0.1"]},)"
       R"({"identity":2,"namespace":"x","pod":"b","ips":["10.0.0.1"]}],)"
       R"("pod_policy":{"namespace":"x","pod":"a"}})",
       "f.json: address_map[1].ips[0]: Duplicate value: \"10.0.0.1\": already used by x/a"},
  };
  for (const Case& c : cases) {
    auto r = DecodeEndpointPolicy(c.text, "f.json");
    ASSERT_FALSE(r.has_value()) << c.text;
    EXPECT_EQ(r.error()[0].ToString(), c.error) << c.text;
  }
}

TEST(EndpointPolicyTest, UnknownIdentityIdsNeverMatch) {
  // Huge ids from an untrusted resource must neither match nor allocate huge sets.
  auto r = DecodeEndpointPolicy(
      R"({"namespace":"x","pod":"a","address_map":[{"identity":4000000000,"namespace":"x",)"
      R"("pod":"b","ips":["10.0.0.2"]}],"pod_policy":{"namespace":"x","pod":"a",)"
      R"("identity_sets":[[4294967295]],"ingress":{"isolated":true,"policies":["x/p"],)"
      R"("rules":[{"policy":0,"rule":0,"peer":{"identity_set":0}}]}}})",
      "f");
  ASSERT_TRUE(r.has_value()) << r.error()[0].ToString();
  EXPECT_FALSE((*r)->CheckIngress(Ip("10.0.0.2"), 80, Protocol::kTCP).allowed);
  EXPECT_TRUE((*r)->CheckEgress(Ip("10.0.0.2"), 80, Protocol::kTCP).allowed);
}

}  // namespace
}  // namespace picket::policy
