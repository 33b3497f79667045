// Unit tests of policy/cluster_policy.h: one test (or a few) per rule of Kubernetes
// NetworkPolicy v1 (API reference and the Network Policies concept page).
#include "policy/cluster_policy.h"

#include <gtest/gtest.h>

#include "test/policy/cluster_builder.h"

namespace picket::policy {
namespace {

using config::Protocol;
using config::SelectorOperator;
using testing::AllPorts;
using testing::ClusterBuilder;
using testing::Expr;
using testing::IpPeer;
using testing::NamedPort;
using testing::NsPeer;
using testing::NsPodPeer;
using testing::PodPeer;
using testing::Port;
using testing::PortRange;
using testing::Rule;
using testing::Sel;

// Two namespaces (x, y) with pods a, b in each; x/a and y/a are app=web, the b's app=db.
ClusterBuilder Base() {
  ClusterBuilder b;
  b.Namespace("x", {{"team", "blue"}}).Namespace("y", {{"team", "red"}});
  b.Pod("x", "a", {{"app", "web"}}, {"10.0.1.1"}, {{"http", 8080, Protocol::kTCP}});
  b.Pod("x", "b", {{"app", "db"}}, {"10.0.1.2"});
  b.Pod("y", "a", {{"app", "web"}}, {"10.0.2.1"}, {{"http", 9090, Protocol::kTCP}});
  b.Pod("y", "b", {{"app", "db"}, {"tier", "back"}}, {"10.0.2.2", "fd00::22"});
  return b;
}

class Engine {
 public:
  explicit Engine(const config::Cluster& cluster) {
    auto compiled = ClusterPolicy::Compile(cluster);
    EXPECT_TRUE(compiled.has_value());
    if (compiled) cp_ = std::move(*compiled);
  }

  ClusterPolicy::Endpoint At(const std::string& name) const {
    if (auto ip = IpAddress::Parse(name)) return cp_->FindAddress(*ip);
    const size_t slash = name.find('/');
    auto e = cp_->FindPod(name.substr(0, slash), name.substr(slash + 1));
    EXPECT_TRUE(e.has_value()) << name;
    return e.value_or(ClusterPolicy::Endpoint{});
  }

  ClusterPolicy::Verdict Check(const std::string& from, const std::string& to, uint16_t port,
                               Protocol protocol = Protocol::kTCP) const {
    return cp_->Check(At(from), At(to), port, protocol);
  }

  bool Allowed(const std::string& from, const std::string& to, uint16_t port,
               Protocol protocol = Protocol::kTCP) const {
    const bool allowed = Check(from, to, port, protocol).allowed;
    const ClusterPolicy::Endpoint src = At(from), dst = At(to);
    if (src.address && dst.address) {
      // The allocation-free hot path must agree with the explaining path.
      EXPECT_EQ(cp_->Allowed(*src.address, *dst.address, port, protocol), allowed)
          << from << " -> " << to;
    }
    return allowed;
  }

  ClusterPolicy& cp() { return *cp_; }

 private:
  std::unique_ptr<ClusterPolicy> cp_;
};

TEST(ClusterPolicyTest, PodsAreNonIsolatedByDefault) {
  Engine e(Base().Build());
  EXPECT_TRUE(e.Allowed("x/a", "y/b", 80));
  EXPECT_TRUE(e.Allowed("x/a", "y/b", 80, Protocol::kSCTP));
  EXPECT_TRUE(e.Allowed("1.2.3.4", "x/a", 1));
  const auto v = e.Check("x/a", "y/b", 80);
  EXPECT_TRUE(v.egress.enforced);
  EXPECT_FALSE(v.egress.verdict.isolated);
}

TEST(ClusterPolicyTest, IngressAbsentOrEmptyIsolatesAndDeniesAll) {
  // spec.ingress absent or [] with Ingress in policyTypes: all ingress to selected pods denied.
  Engine e(Base().Ingress("x", "deny", Sel({{"app", "web"}}), {}).Build());
  EXPECT_FALSE(e.Allowed("x/b", "x/a", 80));
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 8080, Protocol::kUDP));
  EXPECT_FALSE(e.Allowed("8.8.8.8", "x/a", 80));
  EXPECT_TRUE(e.Allowed("x/a", "x/b", 80)) << "egress of the selected pod is not isolated";
  EXPECT_TRUE(e.Allowed("x/a", "y/a", 80)) << "same labels in another namespace: not selected";
  const auto v = e.Check("x/b", "x/a", 80);
  EXPECT_TRUE(v.ingress.verdict.isolated);
  ASSERT_EQ(v.ingress.rules->policies.size(), 1u);
  EXPECT_EQ(v.ingress.rules->policies[0], "x/deny");
}

TEST(ClusterPolicyTest, OneEmptyRuleAllowsAll) {
  // `ingress: [{}]`: one rule with no from and no ports = allow all ingress.
  Engine e(Base().Ingress("x", "all", {}, {Rule({})}).Build());
  EXPECT_TRUE(e.Allowed("y/b", "x/a", 1));
  EXPECT_TRUE(e.Allowed("9.9.9.9", "x/b", 65535, Protocol::kSCTP));
  EXPECT_TRUE(e.Check("y/b", "x/a", 1).ingress.verdict.isolated);
}

TEST(ClusterPolicyTest, RuleWithoutPeersMatchesAllSourcesIncludingExternal) {
  Engine e(Base().Ingress("x", "p80", {}, {Rule({}, {Port(80)})}).Build());
  EXPECT_TRUE(e.Allowed("y/b", "x/a", 80));
  EXPECT_TRUE(e.Allowed("203.0.113.9", "x/a", 80));
  EXPECT_FALSE(e.Allowed("y/b", "x/a", 81));
}

TEST(ClusterPolicyTest, PortsAbsentMatchAllPortsAndProtocols) {
  Engine e(Base().Ingress("x", "p", {}, {Rule({PodPeer(Sel({{"app", "db"}}))})}).Build());
  for (Protocol p : {Protocol::kTCP, Protocol::kUDP, Protocol::kSCTP}) {
    EXPECT_TRUE(e.Allowed("x/b", "x/a", 12345, p));
  }
}

TEST(ClusterPolicyTest, PortWithOnlyDefaultedProtocolMatchesAllTcpPortsOnly) {
  // `ports: [{}]`: protocol defaults to TCP and port is nil: all TCP ports, not UDP/SCTP.
  Engine e(Base().Ingress("x", "p", {}, {Rule({}, {AllPorts()})}).Build());
  EXPECT_TRUE(e.Allowed("y/a", "x/a", 1));
  EXPECT_TRUE(e.Allowed("y/a", "x/a", 65535));
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 53, Protocol::kUDP));
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 53, Protocol::kSCTP));
}

TEST(ClusterPolicyTest, ProtocolOnlyPortMatchesAllPortsOfThatProtocol) {
  Engine e(Base().Ingress("x", "p", {}, {Rule({}, {AllPorts(Protocol::kUDP)})}).Build());
  EXPECT_TRUE(e.Allowed("y/a", "x/a", 53, Protocol::kUDP));
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 53, Protocol::kTCP));
}

TEST(ClusterPolicyTest, EmptyPodSelectorPeerIsAllPodsOfThePolicyNamespace) {
  Engine e(Base().Ingress("x", "p", {}, {Rule({PodPeer({})})}).Build());
  EXPECT_TRUE(e.Allowed("x/b", "x/a", 80));
  EXPECT_FALSE(e.Allowed("y/b", "x/a", 80));
  EXPECT_FALSE(e.Allowed("10.9.9.9", "x/a", 80));
}

TEST(ClusterPolicyTest, EmptyNamespaceSelectorPeerIsAllPodsOfAllNamespaces) {
  Engine e(Base().Ingress("x", "p", {}, {Rule({NsPeer({})})}).Build());
  EXPECT_TRUE(e.Allowed("x/b", "x/a", 80));
  EXPECT_TRUE(e.Allowed("y/b", "x/a", 80));
  EXPECT_FALSE(e.Allowed("10.9.9.9", "x/a", 80)) << "not a pod";
}

TEST(ClusterPolicyTest, PodAndNamespaceSelectorInOnePeerAreAnded) {
  Engine e(Base()
               .Ingress("x", "p", Sel({{"app", "web"}}),
                        {Rule({NsPodPeer(Sel({{"team", "red"}}), Sel({{"app", "db"}}))})})
               .Build());
  EXPECT_TRUE(e.Allowed("y/b", "x/a", 80));
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 80)) << "red namespace but not app=db";
  EXPECT_FALSE(e.Allowed("x/b", "x/a", 80)) << "app=db but not in a red namespace";
}

TEST(ClusterPolicyTest, TwoPeersAreOred) {
  Engine e(Base()
               .Ingress("x", "p", Sel({{"app", "web"}}),
                        {Rule({NsPeer(Sel({{"team", "red"}})), PodPeer(Sel({{"app", "db"}}))})})
               .Build());
  EXPECT_TRUE(e.Allowed("y/b", "x/a", 80));
  EXPECT_TRUE(e.Allowed("y/a", "x/a", 80));
  EXPECT_TRUE(e.Allowed("x/b", "x/a", 80));
}

TEST(ClusterPolicyTest, NamespaceSelectedByMetadataNameLabel) {
  Engine e(Base()
               .Ingress("x", "p", {}, {Rule({NsPeer(Sel({{"kubernetes.io/metadata.name", "y"}}))})})
               .Build());
  EXPECT_TRUE(e.Allowed("y/a", "x/a", 80));
  EXPECT_FALSE(e.Allowed("x/b", "x/a", 80));
}

TEST(ClusterPolicyTest, PodInUndeclaredNamespaceStillHasMetadataNameLabel) {
  ClusterBuilder b = Base();
  b.Pod("z", "a", {}, {"10.0.3.1"});
  b.Ingress("x", "p", {}, {Rule({NsPeer(Sel({{"kubernetes.io/metadata.name", "z"}}))})});
  Engine e(b.Build());
  EXPECT_TRUE(e.Allowed("z/a", "x/a", 80));
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 80));
}

TEST(ClusterPolicyTest, SelectorOperators) {
  // NotIn matches pods without the key; Exists / DoesNotExist test presence only.
  struct Case {
    config::LabelSelector selector;
    bool x_b, y_b, y_a;  // x/b {app=db}, y/b {app=db,tier=back}, y/a {app=web}
  };
  const Case cases[] = {
      {Expr("tier", SelectorOperator::kIn, {"back"}), false, true, false},
      {Expr("tier", SelectorOperator::kNotIn, {"back"}), true, false, true},
      {Expr("tier", SelectorOperator::kExists), false, true, false},
      {Expr("tier", SelectorOperator::kDoesNotExist), true, false, true},
      {Expr("app", SelectorOperator::kIn, {"db", "web"}), true, true, true},
      {Expr("app", SelectorOperator::kNotIn, {"db", "web"}), false, false, false},
  };
  for (const Case& c : cases) {
    Engine e(Base()
                 .Ingress("x", "p", Sel({{"app", "web"}}), {Rule({NsPodPeer({}, c.selector)})})
                 .Build());
    EXPECT_EQ(e.Allowed("x/b", "x/a", 80), c.x_b);
    EXPECT_EQ(e.Allowed("y/b", "x/a", 80), c.y_b);
    EXPECT_EQ(e.Allowed("y/a", "x/a", 80), c.y_a);
  }
}

TEST(ClusterPolicyTest, MatchLabelsAndExpressionsAreAnded) {
  config::LabelSelector s = Sel({{"app", "db"}});
  s.requirements.push_back({"tier", SelectorOperator::kExists, {}});
  Engine e(Base().Ingress("x", "p", Sel({{"app", "web"}}), {Rule({NsPodPeer({}, s)})}).Build());
  EXPECT_TRUE(e.Allowed("y/b", "x/a", 80));
  EXPECT_FALSE(e.Allowed("x/b", "x/a", 80));
}

TEST(ClusterPolicyTest, EgressOnlyPolicyDoesNotIsolateIngress) {
  Engine e(Base().Egress("x", "p", Sel({{"app", "web"}}), {}).Build());
  EXPECT_FALSE(e.Allowed("x/a", "x/b", 80));
  EXPECT_FALSE(e.Allowed("x/a", "8.8.8.8", 53, Protocol::kUDP));
  EXPECT_TRUE(e.Allowed("x/b", "x/a", 80));
}

TEST(ClusterPolicyTest, IngressOnlyPolicyWithEgressRulesIgnoresThem) {
  // policyTypes [Ingress] explicitly: egress rules present but Egress not in policyTypes.
  Engine e(Base()
               .Policy("x", "p", Sel({{"app", "web"}}), {}, {Rule({PodPeer({})})}, true, false)
               .Build());
  EXPECT_TRUE(e.Allowed("x/a", "y/b", 80)) << "egress not isolated";
  EXPECT_FALSE(e.Allowed("x/b", "x/a", 80));
}

TEST(ClusterPolicyTest, PoliciesAreAdditive) {
  Engine e(Base()
               .Ingress("x", "p1", Sel({{"app", "web"}}), {Rule({PodPeer(Sel({{"app", "db"}}))})})
               .Ingress("x", "p2", {}, {Rule({NsPeer(Sel({{"team", "red"}}))}, {Port(80)})})
               .Build());
  EXPECT_TRUE(e.Allowed("x/b", "x/a", 81));
  EXPECT_TRUE(e.Allowed("y/a", "x/a", 80));
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 81));
  const auto v = e.Check("y/a", "x/a", 80);
  ASSERT_NE(v.ingress.verdict.matched, nullptr);
  EXPECT_EQ(v.ingress.rules->policies[v.ingress.verdict.matched->policy], "x/p2");
  EXPECT_EQ(v.ingress.rules->policies.size(), 2u);
}

TEST(ClusterPolicyTest, ConnectionNeedsSourceEgressAndDestinationIngress) {
  Engine e(Base()
               .Egress("x", "out", Sel({{"app", "web"}}), {Rule({NsPeer({})}, {Port(80)})})
               .Ingress("y", "in", Sel({{"app", "db"}}), {Rule({NsPeer({})}, {Port(81)})})
               .Build());
  EXPECT_FALSE(e.Allowed("x/a", "y/b", 80)) << "egress allows, ingress denies";
  EXPECT_FALSE(e.Allowed("x/a", "y/b", 81)) << "ingress allows, egress denies";
  EXPECT_TRUE(e.Allowed("x/a", "y/a", 80));
  const auto v = e.Check("x/a", "y/b", 80);
  EXPECT_TRUE(v.egress.verdict.allowed);
  EXPECT_FALSE(v.ingress.verdict.allowed);
}

TEST(ClusterPolicyTest, NamedPortIngressResolvesOnTheReceivingPod) {
  // x/a names 8080 "http", y/a names 9090 "http": the same rule means different numbers.
  ClusterBuilder b = Base();
  b.Ingress("x", "p", {}, {Rule({}, {NamedPort("http")})});
  b.Ingress("y", "p", {}, {Rule({}, {NamedPort("http")})});
  Engine f(b.Build());
  EXPECT_TRUE(f.Allowed("x/b", "x/a", 8080));
  EXPECT_FALSE(f.Allowed("x/b", "x/a", 9090));
  EXPECT_TRUE(f.Allowed("x/b", "y/a", 9090));
  EXPECT_FALSE(f.Allowed("x/b", "y/a", 8080));
  EXPECT_FALSE(f.Allowed("x/a", "x/b", 8080)) << "x/b has no port named http";
  EXPECT_FALSE(f.Allowed("x/b", "x/a", 8080, Protocol::kUDP)) << "protocol must match";
}

TEST(ClusterPolicyTest, NamedPortEgressResolvesOnTheDestinationPodNeverOnIpBlocks) {
  Engine e(Base()
               .Egress("x", "p", Sel({{"app", "db"}}),
                       {Rule({IpPeer("0.0.0.0/0")}, {NamedPort("http")})})
               .Build());
  EXPECT_TRUE(e.Allowed("x/b", "x/a", 8080));
  EXPECT_TRUE(e.Allowed("x/b", "y/a", 9090));
  EXPECT_FALSE(e.Allowed("x/b", "y/a", 8080));
  EXPECT_FALSE(e.Allowed("x/b", "192.0.2.1", 8080)) << "not a pod: the name cannot resolve";
}

TEST(ClusterPolicyTest, EndPortIsInclusive) {
  Engine e(Base().Ingress("x", "p", {}, {Rule({}, {PortRange(80, 82)})}).Build());
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 79));
  EXPECT_TRUE(e.Allowed("y/a", "x/a", 80));
  EXPECT_TRUE(e.Allowed("y/a", "x/a", 82));
  EXPECT_FALSE(e.Allowed("y/a", "x/a", 83));
}

TEST(ClusterPolicyTest, IpBlockWithExceptMatchesPodIpsToo) {
  Engine e(Base()
               .Ingress("x", "p", Sel({{"app", "web"}}),
                        {Rule({IpPeer("10.0.0.0/16", {"10.0.2.0/24"})})})
               .Build());
  EXPECT_TRUE(e.Allowed("x/b", "x/a", 80)) << "10.0.1.2 is in the block";
  EXPECT_FALSE(e.Allowed("y/b", "x/a", 80)) << "10.0.2.2 is excepted";
  EXPECT_TRUE(e.Allowed("10.0.200.1", "x/a", 80));
  EXPECT_FALSE(e.Allowed("10.1.0.1", "x/a", 80));
}

TEST(ClusterPolicyTest, IpBlockSloppyCidrClearsHostBits) {
  Engine e(Base().Ingress("x", "p", {}, {Rule({IpPeer("10.0.2.7/24")})}).Build());
  EXPECT_TRUE(e.Allowed("10.0.2.200", "x/a", 80));
  EXPECT_FALSE(e.Allowed("10.0.3.1", "x/a", 80));
}

TEST(ClusterPolicyTest, Ipv6IpBlocksAndDualStackPods) {
  Engine e(Base().Egress("x", "p", {}, {Rule({IpPeer("fd00::/64", {"fd00::ff/128"})})}).Build());
  EXPECT_TRUE(e.Allowed("x/a", "fd00::22", 80)) << "y/b's IPv6 address";
  EXPECT_FALSE(e.Allowed("x/a", "fd00::ff", 80));
  EXPECT_FALSE(e.Allowed("x/a", "10.0.2.2", 80)) << "y/b's IPv4 address is not in the v6 block";
  EXPECT_FALSE(e.Allowed("x/a", "fd01::1", 80));
  EXPECT_EQ(e.At("fd00::22").name, "y/b");
}

TEST(ClusterPolicyTest, HostNetworkPodsAreNodeIpsNotSelectorMatches) {
  ClusterBuilder b = Base();
  b.Pod("x", "node-agent", {{"app", "db"}}, {"192.168.0.10"}, {}, /*host_network=*/true);
  b.Ingress("x", "p", {}, {Rule({PodPeer(Sel({{"app", "db"}}))})});
  b.Ingress("y", "p", {}, {Rule({IpPeer("192.168.0.0/24")})});
  Engine e(b.Build());
  EXPECT_FALSE(e.Allowed("x/node-agent", "x/a", 80)) << "not matched by podSelector";
  EXPECT_TRUE(e.Allowed("x/b", "x/a", 80));
  EXPECT_TRUE(e.Allowed("x/node-agent", "y/a", 80)) << "matched as a node IP by ipBlock";
  EXPECT_TRUE(e.Allowed("x/a", "x/node-agent", 80)) << "never isolated itself";
  EXPECT_FALSE(e.Check("x/a", "x/node-agent", 80).ingress.enforced);
}

TEST(ClusterPolicyTest, PodToItselfIsAlwaysAllowed) {
  Engine e(Base().Policy("x", "deny", {}, {}, {}, true, true).Build());
  EXPECT_FALSE(e.Allowed("x/a", "x/b", 80));
  const auto v = e.Check("x/a", "x/a", 80);
  EXPECT_TRUE(v.allowed);
  EXPECT_TRUE(v.self);
  EXPECT_TRUE(e.Allowed("10.0.1.1", "x/a", 80));
}

// "Traffic from the pod's own node is always allowed into an ingress-isolated pod" (Kubernetes
// docs): kubelet probes come from the node's address.
TEST(ClusterPolicyTest, OwnNodeIsAlwaysAllowedIn) {
  ClusterBuilder b = Base();
  b.OnNode({"192.168.0.2"});  // y/b
  b.Pod("x", "c", {{"app", "web"}}, {"10.0.1.3"}).OnNode({"192.168.0.1", "fd00:1::1"});
  b.Pod("x", "d", {{"app", "web"}}, {"10.0.1.4"}).OnNode({"192.168.0.2"});
  b.Pod("x", "kubelet-probe", {}, {"192.168.0.1"}, {}, /*host_network=*/true);
  b.Policy("x", "deny", {}, {}, {}, true, true);
  Engine e(b.Build());
  auto v = e.Check("192.168.0.1", "x/c", 8080);
  EXPECT_TRUE(v.allowed);
  EXPECT_TRUE(v.ingress.enforced);
  EXPECT_TRUE(v.ingress.verdict.isolated);
  ASSERT_NE(v.ingress.verdict.own_node, nullptr);
  EXPECT_EQ(v.ingress.verdict.matched, nullptr);
  EXPECT_EQ(DescribeVerdict(*v.ingress.rules, v.ingress.verdict, Direction::kIngress),
            "allowed: from the pod's own node 192.168.0.1 (always allowed into the pod)");
  EXPECT_TRUE(e.Allowed("192.168.0.1", "x/c", 1, Protocol::kUDP)) << "any port and protocol";
  EXPECT_TRUE(e.Allowed("fd00:1::1", "x/c", 8080)) << "the node's IPv6 address too";
  EXPECT_TRUE(e.Allowed("x/kubelet-probe", "x/c", 8080)) << "a hostNetwork pod is the node";
  EXPECT_FALSE(e.Allowed("192.168.0.2", "x/c", 8080)) << "another node's address";
  EXPECT_FALSE(e.Allowed("fd00:1::2", "x/c", 8080));
  EXPECT_TRUE(e.Allowed("192.168.0.2", "x/d", 8080)) << "x/d's own node";
  EXPECT_FALSE(e.Allowed("192.168.0.1", "x/d", 8080));
  v = e.Check("192.168.0.2", "x/c", 8080);
  EXPECT_EQ(v.ingress.verdict.own_node, nullptr);
  EXPECT_EQ(DescribeVerdict(*v.ingress.rules, v.ingress.verdict, Direction::kIngress),
            "no rule of x/deny matched (they have no ingress rules: deny all)");
  EXPECT_FALSE(e.Allowed("x/a", "x/c", 8080)) << "other pods are still denied";
  EXPECT_FALSE(e.Allowed("x/c", "192.168.0.1", 10250)) << "egress to the node is policed";
  EXPECT_EQ(e.Check("x/c", "192.168.0.1", 10250).egress.verdict.own_node, nullptr);
  EXPECT_TRUE(e.Allowed("192.168.0.2", "y/b", 80)) << "not isolated: allowed anyway";
  EXPECT_EQ(e.Check("192.168.0.2", "y/b", 80).ingress.verdict.own_node, nullptr);
  EXPECT_EQ(e.cp().FindPodEntry("x", "c")->host_ips.size(), 2u);
}

TEST(ClusterPolicyTest, AddedPodKeepsItsNode) {
  Engine e(Base().Policy("x", "deny", {}, {}, {}, true, false).Build());
  config::Pod pod;
  pod.ns = "x";
  pod.name = "new";
  pod.ips = {"10.0.1.9"};
  pod.host_ips = {"192.168.0.3", "192.168.0.3"};
  ASSERT_TRUE(e.cp().AddPod(pod).has_value());
  EXPECT_EQ(e.cp().FindPodEntry("x", "new")->host_ips.size(), 1u) << "duplicates folded";
  EXPECT_TRUE(e.Allowed("192.168.0.3", "x/new", 80));
  EXPECT_FALSE(e.Allowed("192.168.0.4", "x/new", 80));
  pod.name = "bad";
  pod.ips = {"10.0.1.10"};
  pod.host_ips = {"192.168.0.300"};
  auto r = e.cp().AddPod(pod);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().ToString(),
            "Pod x/bad: status.hostIPs[0]: Invalid value: \"192.168.0.300\": not an IP address");
  EXPECT_EQ(e.cp().FindPodEntry("x", "bad"), nullptr);
}

TEST(ClusterPolicyTest, NonPodTrafficChecksOnlyTheKnownSide) {
  Engine e(Base()
               .Egress("x", "p", {}, {Rule({IpPeer("8.8.8.0/24")}, {Port(53, Protocol::kUDP)})})
               .Build());
  EXPECT_TRUE(e.Allowed("x/a", "8.8.8.8", 53, Protocol::kUDP));
  EXPECT_FALSE(e.Allowed("x/a", "8.8.8.8", 53, Protocol::kTCP));
  EXPECT_TRUE(e.Allowed("8.8.8.8", "1.1.1.1", 53)) << "neither side is a pod";
}

TEST(ClusterPolicyTest, NearMissNamesTheFailingPart) {
  Engine e(Base()
               .Ingress("x", "p", Sel({{"app", "web"}}),
                        {Rule({PodPeer(Sel({{"app", "db"}}))}, {Port(5432)})})
               .Build());
  auto v = e.Check("x/b", "x/a", 80);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.ingress.verdict.miss, DirectionVerdict::Miss::kPort);
  ASSERT_NE(v.ingress.verdict.near_miss, nullptr);
  EXPECT_EQ(DescribeVerdict(*v.ingress.rules, v.ingress.verdict, Direction::kIngress),
            "no rule of x/p matched; closest: x/p ingress rule 0: from podSelector {app=db} in "
            "namespace x, port TCP/5432 (port/protocol did not match)");
  v = e.Check("y/b", "x/a", 5432);
  EXPECT_EQ(v.ingress.verdict.miss, DirectionVerdict::Miss::kPeer);
  v = e.Check("x/b", "x/a", 5432);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(DescribeVerdict(*v.ingress.rules, v.ingress.verdict, Direction::kIngress),
            "allowed by x/p ingress rule 0: from podSelector {app=db} in namespace x, port "
            "TCP/5432");
}

TEST(ClusterPolicyTest, CompileRejectsDuplicateAndBadAddresses) {
  ClusterBuilder b = Base();
  b.Pod("x", "dup", {}, {"10.0.1.1"});
  b.Pod("x", "bad", {}, {"10.0.1.300"});
  auto r = ClusterPolicy::Compile(b.Build());
  ASSERT_FALSE(r.has_value());
  ASSERT_EQ(r.error().size(), 2u);
  EXPECT_EQ(r.error()[0].ToString(),
            "Pod x/dup: status.podIPs[0]: Duplicate value: \"10.0.1.1\": already used by x/a");
  EXPECT_EQ(r.error()[1].ToString(),
            "Pod x/bad: status.podIPs[0]: Invalid value: \"10.0.1.300\": not an IP address");
}

// Incremental updates give the same answers as a full compile, without recompiling policies.
TEST(ClusterPolicyTest, AddAndRemovePodMatchFullCompile) {
  ClusterBuilder b = Base();
  b.Ingress("x", "p", Sel({{"app", "web"}}), {Rule({NsPodPeer({}, Sel({{"role", "client"}}))})});
  b.Egress("y", "q", {}, {Rule({PodPeer(Sel({{"role", "client"}}))}, {Port(80)})});
  Engine e(b.Build());
  const size_t selectors = e.cp().selector_count();
  EXPECT_FALSE(e.Allowed("y/b", "x/a", 80));

  config::Pod client;
  client.ns = "y";
  client.name = "client";
  client.labels = {{"role", "client"}};
  client.ips = {"10.0.2.9"};
  ASSERT_TRUE(e.cp().AddPod(client).has_value());
  EXPECT_EQ(e.cp().selector_count(), selectors);
  EXPECT_FALSE(e.cp().AddPod(client).has_value()) << "duplicate";
  EXPECT_TRUE(e.Check("y/client", "x/a", 80).ingress.verdict.allowed)
      << "new identity joined the selector";
  EXPECT_TRUE(e.Allowed("y/b", "y/client", 80)) << "egress to the new identity";
  EXPECT_FALSE(e.Allowed("y/b", "y/client", 81));
  EXPECT_FALSE(e.Allowed("y/client", "x/b", 81)) << "the new pod's own egress is isolated";

  b.Pod("y", "client", {{"role", "client"}}, {"10.0.2.9"});
  Engine full(b.Build());
  for (const char* from : {"x/a", "x/b", "y/a", "y/b", "y/client"}) {
    for (const char* to : {"x/a", "x/b", "y/a", "y/b", "y/client"}) {
      for (uint16_t port : {80, 81}) {
        EXPECT_EQ(e.Allowed(from, to, port), full.Allowed(from, to, port))
            << from << " -> " << to << ":" << port;
      }
    }
  }

  ASSERT_TRUE(e.cp().RemovePod("y", "client"));
  EXPECT_FALSE(e.cp().RemovePod("y", "client"));
  EXPECT_EQ(e.At("10.0.2.9").pod, nullptr);
  EXPECT_EQ(e.cp().identity_count(), 4u);
  // A later label set must not inherit the removed identity's membership.
  config::Pod other = client;
  other.name = "other";
  other.labels = {{"role", "server"}};
  ASSERT_TRUE(e.cp().AddPod(other).has_value());
  EXPECT_FALSE(e.Check("y/other", "x/a", 80).ingress.verdict.allowed);
}

TEST(ClusterPolicyTest, PodsSharingLabelsShareAnIdentity) {
  ClusterBuilder b = Base();
  b.Pod("x", "a2", {{"app", "web"}}, {"10.0.1.3"});
  Engine e(b.Build());
  EXPECT_EQ(e.cp().identity_count(), 4u);
  EXPECT_EQ(e.At("x/a").pod->identity, e.At("x/a2").pod->identity);
  EXPECT_NE(e.At("x/a").pod->identity, e.At("y/a").pod->identity) << "namespace differs";
}

TEST(ClusterPolicyTest, IdentityIdsAreNotReusedAndSurviveARecompile) {
  ClusterBuilder b = Base();
  auto first = ClusterPolicy::Compile(b.Build());
  ASSERT_TRUE(first.has_value());
  const IdentityId x_a = (*first)->FindPodEntry("x", "a")->identity;
  const IdentityId y_b = (*first)->FindPodEntry("y", "b")->identity;
  ASSERT_TRUE((*first)->RemovePod("y", "b"));
  config::Pod other;
  other.ns = "y";
  other.name = "c";
  other.labels = {{"app", "cache"}};
  other.ips = {"10.0.2.3"};
  ASSERT_TRUE((*first)->AddPod(other).has_value());
  const IdentityId y_c = (*first)->FindPodEntry("y", "c")->identity;
  EXPECT_NE(y_c, y_b) << "a freed id is never given to another label set";

  // A policy change recompiles: label sets keep their ids, new ones get fresh ids.
  b.Ingress("x", "p", {}, {});
  b.Pod("y", "d", {{"app", "new"}}, {"10.0.2.4"});
  auto second = ClusterPolicy::Compile(b.Build(), first->get());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*second)->FindPodEntry("x", "a")->identity, x_a);
  const IdentityId y_d = (*second)->FindPodEntry("y", "d")->identity;
  EXPECT_GT(y_d, y_c);
  EXPECT_EQ((*first)->AddressEntryOf(*(*first)->FindPodEntry("x", "b")),
            (*second)->AddressEntryOf(*(*second)->FindPodEntry("x", "b")));
}

}  // namespace
}  // namespace picket::policy
