// Defaulting (SetDefaults_NetworkPolicy, protocol TCP, the Namespace name label) and the
// empty-vs-absent distinctions of the Kubernetes API reference (NetworkPolicySpec), through
// the loader (so the YAML spellings are what is tested) and DefaultPolicyTypes directly.
#include "config/manifest_defaults.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/manifest_loader.h"
#include "test/config/manifest_test_util.h"

namespace picket::config {
namespace {

using ::picket::config::testing::MustLoad;
using ::picket::config::testing::Policy;

NetworkPolicy LoadPolicy(std::string_view spec) {
  LoadResult r = MustLoad(Policy(spec));
  EXPECT_EQ(r.cluster.policies.size(), 1u);
  return r.cluster.policies.empty() ? NetworkPolicy{} : r.cluster.policies[0];
}

// --- policyTypes defaulting -------------------------------------------------------------------

struct TypesCase {
  const char* spec;
  bool ingress;
  bool egress;
};

class PolicyTypesTest : public ::testing::TestWithParam<TypesCase> {};

TEST_P(PolicyTypesTest, DefaultsExactlyAsSetDefaultsNetworkPolicy) {
  NetworkPolicy p = LoadPolicy(GetParam().spec);
  EXPECT_EQ(p.policy_types_ingress, GetParam().ingress) << GetParam().spec;
  EXPECT_EQ(p.policy_types_egress, GetParam().egress) << GetParam().spec;
}

INSTANTIATE_TEST_SUITE_P(
    Rows, PolicyTypesTest,
    ::testing::Values(
        // absent → [Ingress]
        TypesCase{"  podSelector: {}\n", true, false},
        // [] is the same as absent
        TypesCase{"  policyTypes: []\n", true, false},
        // egress: [] does not add Egress ("deny all egress" needs explicit policyTypes)
        TypesCase{"  egress: []\n", true, false},
        // a non-empty egress adds Egress
        TypesCase{"  egress: [{}]\n", true, true},
        // explicit types are kept, even when they omit Ingress
        TypesCase{"  policyTypes: [Egress]\n", false, true},
        TypesCase{"  policyTypes: [Egress]\n  ingress: [{}]\n", false, true},
        TypesCase{"  policyTypes: [Ingress, Egress]\n", true, true},
        TypesCase{"  policyTypes: [Ingress]\n  egress: [{}]\n", true, false},
        // null is absent
        TypesCase{"  policyTypes: null\n  egress: [{}]\n", true, true}));

TEST(ManifestDefaultsTest, DefaultPolicyTypesDirectly) {
  NetworkPolicy p;
  DefaultPolicyTypes({}, &p);
  EXPECT_TRUE(p.policy_types_ingress);
  EXPECT_FALSE(p.policy_types_egress);
  p.egress.emplace_back();
  DefaultPolicyTypes({}, &p);
  EXPECT_TRUE(p.policy_types_egress);
  DefaultPolicyTypes({"Egress", "Egress"}, &p);
  EXPECT_FALSE(p.policy_types_ingress);
  EXPECT_TRUE(p.policy_types_egress);
}

// --- empty vs absent -------------------------------------------------------------------------

TEST(ManifestDefaultsTest, IngressAbsentOrEmptyMeansNoRules) {
  EXPECT_TRUE(LoadPolicy("  podSelector: {}\n").ingress.empty());
  EXPECT_TRUE(LoadPolicy("  ingress: []\n").ingress.empty());
  EXPECT_TRUE(LoadPolicy("  ingress: null\n").ingress.empty());
}

TEST(ManifestDefaultsTest, OneEmptyRuleAllowsAll) {
  NetworkPolicy p = LoadPolicy("  ingress: [{}]\n");
  ASSERT_EQ(p.ingress.size(), 1u);
  EXPECT_TRUE(p.ingress[0].peers.empty());
  EXPECT_TRUE(p.ingress[0].ports.empty());
  // A null rule decodes to the zero rule, like JSON into a Go struct.
  EXPECT_EQ(LoadPolicy("  ingress: [null]\n").ingress.size(), 1u);
}

TEST(ManifestDefaultsTest, FromAbsentOrEmptyMatchesAllSources) {
  EXPECT_TRUE(LoadPolicy("  ingress: [{ports: [{port: 80}]}]\n").ingress[0].peers.empty());
  EXPECT_TRUE(LoadPolicy("  ingress: [{from: []}]\n").ingress[0].peers.empty());
  EXPECT_TRUE(LoadPolicy("  egress: [{to: []}]\n").egress[0].peers.empty());
}

TEST(ManifestDefaultsTest, PortsAbsentOrEmptyMatchAllPorts) {
  EXPECT_TRUE(LoadPolicy("  ingress: [{ports: []}]\n").ingress[0].ports.empty());
}

TEST(ManifestDefaultsTest, EmptyPortIsAllTcpPorts) {
  NetworkPolicy p = LoadPolicy("  ingress: [{ports: [{}]}]\n");
  ASSERT_EQ(p.ingress[0].ports.size(), 1u);
  const NetworkPolicyPort& port = p.ingress[0].ports[0];
  EXPECT_EQ(port.protocol, Protocol::kTCP);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(port.port));
  EXPECT_FALSE(port.end_port.has_value());
}

TEST(ManifestDefaultsTest, ProtocolOnlyIsAllPortsOfThatProtocol) {
  NetworkPolicy p = LoadPolicy("  ingress: [{ports: [{protocol: UDP}, {protocol: SCTP}]}]\n");
  EXPECT_EQ(p.ingress[0].ports[0].protocol, Protocol::kUDP);
  EXPECT_EQ(p.ingress[0].ports[1].protocol, Protocol::kSCTP);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(p.ingress[0].ports[0].port));
}

TEST(ManifestDefaultsTest, NumericNamedAndRangePorts) {
  NetworkPolicy p = LoadPolicy(
      "  egress: [{ports: [{port: 53, protocol: UDP}, {port: dns}, {port: 8000, endPort: "
      "8080}]}]\n");
  const auto& ports = p.egress[0].ports;
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(std::get<uint16_t>(ports[0].port), 53);
  EXPECT_EQ(std::get<std::string>(ports[1].port), "dns");
  EXPECT_EQ(ports[1].protocol, Protocol::kTCP);
  EXPECT_EQ(std::get<uint16_t>(ports[2].port), 8000);
  EXPECT_EQ(ports[2].end_port, 8080);
}

TEST(ManifestDefaultsTest, PeerSelectorsKeepNilVersusEmpty) {
  NetworkPolicy p = LoadPolicy(R"(  ingress:
  - from:
    - podSelector: {}
    - namespaceSelector: {}
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchLabels: {app: web}}
    - ipBlock: {cidr: 10.0.0.0/8}
      podSelector: null
)");
  const auto& peers = p.ingress[0].peers;
  ASSERT_EQ(peers.size(), 4u);
  // {podSelector: {}}: all pods of the policy's namespace.
  ASSERT_TRUE(peers[0].pod_selector.has_value());
  EXPECT_TRUE(peers[0].pod_selector->requirements.empty());
  EXPECT_FALSE(peers[0].namespace_selector.has_value());
  EXPECT_FALSE(peers[0].ip_block.has_value());
  // {namespaceSelector: {}}: all pods of all namespaces.
  EXPECT_FALSE(peers[1].pod_selector.has_value());
  ASSERT_TRUE(peers[1].namespace_selector.has_value());
  EXPECT_TRUE(peers[1].namespace_selector->requirements.empty());
  // Both in one peer: AND.
  ASSERT_TRUE(peers[2].pod_selector.has_value());
  ASSERT_TRUE(peers[2].namespace_selector.has_value());
  EXPECT_EQ(peers[2].namespace_selector->requirements.size(), 1u);
  // A null selector is absent.
  EXPECT_FALSE(peers[3].pod_selector.has_value());
  ASSERT_TRUE(peers[3].ip_block.has_value());
  EXPECT_EQ(peers[3].ip_block->cidr, "10.0.0.0/8");
}

TEST(ManifestDefaultsTest, PolicyPodSelectorAbsentNullOrEmptySelectsAll) {
  EXPECT_TRUE(LoadPolicy("  ingress: []\n").pod_selector.requirements.empty());
  EXPECT_TRUE(LoadPolicy("  podSelector: null\n").pod_selector.requirements.empty());
  EXPECT_TRUE(LoadPolicy("  podSelector: {}\n").pod_selector.requirements.empty());
  LoadResult r = MustLoad("kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n");
  ASSERT_EQ(r.cluster.policies.size(), 1u);
  EXPECT_TRUE(r.cluster.policies[0].pod_selector.requirements.empty());
  EXPECT_TRUE(r.cluster.policies[0].policy_types_ingress);
}

TEST(ManifestDefaultsTest, MatchLabelsFoldIntoInRequirements) {
  NetworkPolicy p = LoadPolicy(R"(  podSelector:
    matchLabels: {tier: web, app: shop}
    matchExpressions:
    - {key: env, operator: NotIn, values: [dev, test]}
    - {key: canary, operator: DoesNotExist}
    - {key: zone, operator: Exists}
)");
  const auto& reqs = p.pod_selector.requirements;
  ASSERT_EQ(reqs.size(), 5u);
  EXPECT_EQ(reqs[0].key, "app");  // matchLabels first, by key
  EXPECT_EQ(reqs[0].op, SelectorOperator::kIn);
  EXPECT_EQ(reqs[0].values, std::vector<std::string>{"shop"});
  EXPECT_EQ(reqs[1].key, "tier");
  EXPECT_EQ(reqs[2].key, "env");
  EXPECT_EQ(reqs[2].op, SelectorOperator::kNotIn);
  EXPECT_EQ(reqs[2].values, (std::vector<std::string>{"dev", "test"}));
  EXPECT_EQ(reqs[3].op, SelectorOperator::kDoesNotExist);
  EXPECT_EQ(reqs[4].op, SelectorOperator::kExists);
  EXPECT_TRUE(reqs[4].values.empty());
}

// --- namespace label, metadata.namespace -----------------------------------------------------

TEST(ManifestDefaultsTest, EveryNamespaceGetsItsNameLabel) {
  LoadResult r = MustLoad(
      "kind: Namespace\nmetadata: {name: a}\n---\nkind: Namespace\nmetadata:\n  name: b\n  "
      "labels: {kubernetes.io/metadata.name: wrong, team: t}\n");
  ASSERT_EQ(r.cluster.namespaces.size(), 2u);
  EXPECT_EQ(r.cluster.namespaces[0].labels, (Labels{{kNamespaceNameLabel, "a"}}));
  // The API server overwrites it.
  EXPECT_EQ(r.cluster.namespaces[1].labels, (Labels{{kNamespaceNameLabel, "b"}, {"team", "t"}}));
  Namespace ns{"c", {}, {}};
  DefaultNamespaceLabels(&ns);
  EXPECT_EQ(ns.labels.at(kNamespaceNameLabel), "c");
}

TEST(ManifestDefaultsTest, AbsentNamespaceIsDefaultAndUndeclaredNamespacesAreNotInvented) {
  LoadResult r = MustLoad(
      "kind: Pod\nmetadata: {name: a}\n---\nkind: NetworkPolicy\nmetadata: {name: p}\n---\n"
      "kind: Pod\nmetadata: {name: b, namespace: elsewhere}\n");
  ASSERT_EQ(r.cluster.pods.size(), 2u);
  EXPECT_EQ(r.cluster.pods[0].ns, "default");
  EXPECT_EQ(r.cluster.policies[0].ns, "default");
  EXPECT_EQ(r.cluster.pods[1].ns, "elsewhere");
  EXPECT_TRUE(r.cluster.namespaces.empty());
}

TEST(ManifestDefaultsTest, PodPortsIpsAndHostNetwork) {
  LoadResult r = MustLoad(R"(kind: Pod
metadata: {name: a, namespace: x}
spec:
  hostNetwork: true
  initContainers:
  - ports: [{containerPort: 9000, name: sidecar, protocol: SCTP}]
  containers:
  - ports: [{containerPort: 80}]
status:
  podIP: 10.0.0.9
)");
  ASSERT_EQ(r.cluster.pods.size(), 1u);
  const Pod& pod = r.cluster.pods[0];
  EXPECT_TRUE(pod.host_network);
  ASSERT_EQ(pod.ports.size(), 2u);
  EXPECT_EQ(pod.ports[0].name, "sidecar");
  EXPECT_EQ(pod.ports[0].protocol, Protocol::kSCTP);
  EXPECT_EQ(pod.ports[1].container_port, 80);
  EXPECT_EQ(pod.ports[1].protocol, Protocol::kTCP);
  EXPECT_EQ(pod.ips, std::vector<std::string>{"10.0.0.9"});
  EXPECT_TRUE(pod.host_ips.empty()) << "not scheduled: no node address";
}

// status.hostIP is hostIPs[0] when both are present; alone it is the only node address.
TEST(ManifestDefaultsTest, PodHostIps) {
  LoadResult r = MustLoad(R"(kind: Pod
metadata: {name: a, namespace: x}
status:
  hostIP: 192.168.0.1
  hostIPs: [{ip: 192.168.0.1}, {ip: "fd00:1::1"}]
  podIP: 10.0.0.9
---
kind: Pod
metadata: {name: b, namespace: x}
status: {hostIP: 192.168.0.2, hostIPs: []}
---
kind: Pod
metadata: {name: c, namespace: x}
status: {hostIPs: [{ip: "fd00:1::3"}]}
)");
  ASSERT_EQ(r.cluster.pods.size(), 3u);
  EXPECT_EQ(r.cluster.pods[0].host_ips, (std::vector<std::string>{"192.168.0.1", "fd00:1::1"}));
  EXPECT_EQ(r.cluster.pods[0].ips, std::vector<std::string>{"10.0.0.9"});
  EXPECT_EQ(r.cluster.pods[1].host_ips, std::vector<std::string>{"192.168.0.2"});
  EXPECT_EQ(r.cluster.pods[2].host_ips, std::vector<std::string>{"fd00:1::3"});
  EXPECT_TRUE(r.cluster.pods[2].ips.empty());
}

}  // namespace
}  // namespace picket::config
