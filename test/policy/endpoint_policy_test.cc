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
  b.Pod("x", "a", {{"app", "web"}}, {"10.0.1.1", "fd00::11"}, {{"http", 8080, Protocol::kTCP}})
      .OnNode({"192.168.0.1", "fd00:1::1"});
  b.Pod("x", "b", {{"app", "db"}}, {"10.0.1.2"}).OnNode({"192.168.0.2"});
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

// A decision's policies (a view into its snapshot) as values.
std::vector<std::string> Names(const Decision& d) { return {d.policies.begin(), d.policies.end()}; }

TEST(EndpointPolicyTest, CompileAndCheck) {
  auto p = CompileEndpointPolicy(Sample(), "x", "a");
  ASSERT_TRUE(p.has_value());
  const EndpointPolicy& ep = **p;
  EXPECT_EQ(ep.pod_namespace(), "x");
  EXPECT_EQ(ep.pod_name(), "a");
  EXPECT_EQ(ep.version().size(), 16u);

  Decision d = ep.CheckIngress(Ip("10.0.1.2"), 8080, Protocol::kTCP);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(Names(d), std::vector<std::string>{"x/web"});
  EXPECT_EQ(d.detail,
            "allowed by x/web ingress rule 0: from podSelector {app=db} in namespace x, port "
            "TCP/http (named port)");
  d = ep.CheckIngress(Ip("10.0.1.2"), 80, Protocol::kTCP);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "policy_denied");
  EXPECT_EQ(Names(d), std::vector<std::string>{"x/web"});
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

// The snapshot and the cluster-wide lookup agree on every pod pair, port and protocol, and on
// the nodes' and an outside address.
TEST(EndpointPolicyTest, AgreesWithClusterPolicy) {
  const config::Cluster cluster = Sample();
  auto cp = ClusterPolicy::Compile(cluster);
  ASSERT_TRUE(cp.has_value());
  std::vector<ClusterPolicy::Endpoint> others;
  for (const PodEntry* other : (*cp)->Pods()) {
    others.push_back(*(*cp)->FindPod(other->ns, other->name));
  }
  for (const char* address : {"192.168.0.1", "fd00:1::1", "192.168.0.2", "192.0.2.1"}) {
    others.push_back((*cp)->FindAddress(Ip(address)));
  }
  for (const PodEntry* subject : (*cp)->Pods()) {
    auto ep = CompileEndpointPolicy(cluster, subject->ns, subject->name);
    ASSERT_TRUE(ep.has_value());
    auto decoded = DecodeEndpointPolicy((*ep)->Encode(), "x");
    ASSERT_TRUE(decoded.has_value());
    const auto self_ep = *(*cp)->FindPod(subject->ns, subject->name);
    for (const ClusterPolicy::Endpoint& other : others) {
      for (uint16_t port : {80, 5005, 8080, 9090}) {
        for (Protocol proto : {Protocol::kTCP, Protocol::kUDP}) {
          const auto out = (*cp)->Check(self_ep, other, port, proto);
          const auto in = (*cp)->Check(other, self_ep, port, proto);
          const Decision egress = (*decoded)->CheckEgress(*other.address, port, proto);
          const Decision ingress = (*decoded)->CheckIngress(*other.address, port, proto);
          EXPECT_EQ(egress.allowed, out.egress.verdict.allowed)
              << self_ep.name << " -> " << other.name;
          EXPECT_EQ(ingress.allowed, in.ingress.verdict.allowed)
              << other.name << " -> " << self_ep.name;
          if (in.ingress.rules != nullptr && !in.self) {
            EXPECT_EQ(ingress.detail,
                      DescribeVerdict(*in.ingress.rules, in.ingress.verdict, Direction::kIngress));
          }
        }
      }
    }
  }
}

// Ingress from the pod's own node is allowed even when isolated (Kubernetes docs); the
// sidecar knows its node only from the PodPolicy.
TEST(EndpointPolicyTest, OwnNodeIsAlwaysAllowedIn) {
  auto p = CompileEndpointPolicy(Sample(), "x", "a");
  ASSERT_TRUE(p.has_value());
  const EndpointPolicy& ep = **p;
  for (const char* node : {"192.168.0.1", "fd00:1::1"}) {
    const Decision d = ep.CheckIngress(Ip(node), 8080, Protocol::kTCP);
    EXPECT_TRUE(d.allowed) << node;
    EXPECT_EQ(d.reason, "");
    EXPECT_TRUE(d.policies.empty()) << "no policy allowed it";
    EXPECT_EQ(d.detail, std::string("allowed: from the pod's own node ") + node +
                            " (always allowed into the pod)");
    EXPECT_TRUE(ep.CheckIngress(Ip(node), 1, Protocol::kSCTP).allowed);
  }
  Decision d = ep.CheckIngress(Ip("192.168.0.2"), 8080, Protocol::kTCP);
  EXPECT_FALSE(d.allowed) << "x/b's node, not x/a's";
  EXPECT_EQ(d.reason, "policy_denied");
  d = ep.CheckEgress(Ip("192.168.0.1"), 10250, Protocol::kTCP);
  EXPECT_FALSE(d.allowed) << "egress to the node is policed like any destination";
  EXPECT_EQ(d.reason, "policy_denied");

  // x/b is not isolated: its node is allowed because nothing isolates the pod.
  auto b = CompileEndpointPolicy(Sample(), "x", "b");
  ASSERT_TRUE(b.has_value());
  d = (*b)->CheckIngress(Ip("192.168.0.2"), 80, Protocol::kTCP);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.detail, "not isolated for ingress (no policy selects it)");
}

TEST(EndpointPolicyTest, HostIpsTravelInThePodPolicy) {
  auto cp = ClusterPolicy::Compile(Sample());
  ASSERT_TRUE(cp.has_value());
  const PodPolicy with = (*cp)->PodPolicyOf(*(*cp)->FindPodEntry("x", "a"));
  EXPECT_EQ(with.host_ips, (std::vector<IpAddress>{Ip("192.168.0.1"), Ip("fd00:1::1")}));
  const std::string text = EncodePodPolicy(with);
  EXPECT_NE(text.find(R"("pod":"a","host_ips":["192.168.0.1","fd00:1::1"],"identity_sets")"),
            std::string::npos)
      << text;
  auto decoded = DecodePodPolicy(text, "policy");
  ASSERT_TRUE(decoded.has_value()) << decoded.error()[0].ToString();
  EXPECT_EQ(*decoded, with);

  // A pod with no known node (and a resource from before the field): no `host_ips` at all.
  const PodPolicy without = (*cp)->PodPolicyOf(*(*cp)->FindPodEntry("y", "a"));
  EXPECT_TRUE(without.host_ips.empty());
  const std::string old_text = EncodePodPolicy(without);
  EXPECT_EQ(old_text.find("host_ips"), std::string::npos) << old_text;
  decoded = DecodePodPolicy(old_text, "policy");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, without);

  // The snapshot's text form carries them and its content version depends on them.
  auto ep = CompileEndpointPolicy(Sample(), "x", "a");
  ASSERT_TRUE(ep.has_value());
  auto round = DecodeEndpointPolicy((*ep)->Encode(), "policy.json");
  ASSERT_TRUE(round.has_value());
  EXPECT_EQ((*round)->Encode(), (*ep)->Encode());
  EXPECT_TRUE((*round)->CheckIngress(Ip("fd00:1::1"), 9, Protocol::kTCP).allowed);
  PodPolicy moved = with;
  moved.host_ips = {Ip("192.168.0.9")};
  auto elsewhere = BuildEndpointPolicy((*cp)->AddressMap(), moved);
  ASSERT_TRUE(elsewhere.has_value());
  EXPECT_NE((*elsewhere)->version(), (*ep)->version());
  EXPECT_FALSE((*elsewhere)->CheckIngress(Ip("192.168.0.1"), 8080, Protocol::kTCP).allowed);
  EXPECT_TRUE((*elsewhere)->CheckIngress(Ip("192.168.0.9"), 8080, Protocol::kTCP).allowed);
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
  EXPECT_EQ(EncodeAddressEntry(entries[0]),
            R"({"identity":0,"namespace":"x","pod":"a","ips":["10.0.1.1","fd00::11"],)"
            R"("labels":{"app":"web"},"named_ports":["http:8080"]})");
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
      {"", "f.json: invalid JSON: no value (empty input)"},
      {"[1",
       "f.json: invalid JSON: malformed structure (a missing or superfluous comma, colon, brace "
       "or bracket)"},
      {R"({"namespace":"x","pod":"a"})", "f.json: pod_policy: Required value"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a"},"bogus":1})",
       "f.json: bogus: unknown field \"bogus\""},
      {R"({"namespace":"x","pod":"a","address_map":[{"identity":1,"namespace":"x","pod":"a",)"
       R"("ips":["10.0.0.300"]}],"pod_policy":{"namespace":"x","pod":"a"}})",
       "f.json: address_map[0].ips[0]: Invalid value: \"10.0.0.300\": must be an IP address"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a","ingress":)"
       R"({"isolated":true,"policies":["x/p"],"rules":[{"policy":0,"peer":{"identity_set":3}}]}}})",
       "f.json: pod_policy.ingress.rules[0].peer.identity_set: Invalid value: 3: must index "
       "`identity_sets` (size 0)"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a","egress":)"
       R"({"isolated":true,"policies":[],"rules":[{"policy":0,"port":{"protocol":"tcp"}}]}}})",
       "f.json: pod_policy.egress.rules[0].port.protocol: Unsupported value: \"tcp\": "
       "supported values: \"TCP\", \"UDP\", \"SCTP\""},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a","egress":)"
       R"({"isolated":true,"policies":["p"],"rules":[{"policy":0,"port":{"protocol":"TCP",)"
       R"("port":90,"end_port":80}}]}}})",
       "f.json: pod_policy.egress.rules[0].port.end_port: Invalid value: 80: must be greater "
       "than or equal to `port`"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"y","pod":"a"}})",
       "f.json: pod_policy: Invalid value: policy of y/a in the snapshot of x/a"},
      {R"({"namespace":"x","pod":"a","address_map":[)"
       R"({"identity":1,"namespace":"x","pod":"a","ips":["10.0.0.1"]},)"
       R"({"identity":2,"namespace":"x","pod":"b","ips":["10.0.0.1"]}],)"
       R"("pod_policy":{"namespace":"x","pod":"a"}})",
       "f.json: address_map[1].ips[0]: Duplicate value: \"10.0.0.1\": already used by x/a"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a",)"
       R"("host_ips":["10.0.0.1","10.0.0.300"]}})",
       "f.json: pod_policy.host_ips[1]: Invalid value: \"10.0.0.300\": must be an IP address"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a",)"
       R"("host_ips":["10.0.0.1","fd00::1","10.0.0.1"]}})",
       "f.json: pod_policy.host_ips[2]: Duplicate value: \"10.0.0.1\""},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a",)"
       R"("host_ips":"10.0.0.1"}})",
       "f.json: pod_policy.host_ips: Invalid value: \"10.0.0.1\": expected an array"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a",)"
       R"("host_ips":[{"ip":"10.0.0.1"}]}})",
       "f.json: pod_policy.host_ips[0]: Invalid value: {...}: expected a string"},
      {R"({"namespace":"x","pod":"a","pod_policy":{"namespace":"x","pod":"a",)"
       R"("host_ips":["10.0.0.0/8"]}})",
       "f.json: pod_policy.host_ips[0]: Invalid value: \"10.0.0.0/8\": must be an IP address"},
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
