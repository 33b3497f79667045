// Empty vs absent in NetworkPolicy (Kubernetes API reference: `from`/`to`/`ports` absent or empty
// match all; `{}` selectors match all; nil ones are unused), end to end: each case written as
// YAML, loaded (validation, defaulting) by config/manifest_loader and decided by the policy engine.
#include <gtest/gtest.h>

#include <string>

#include "config/manifest_loader.h"
#include "policy/cluster_policy.h"

namespace picket::policy {
namespace {

using config::Protocol;

// Namespaces x (team=blue) and y (team=red); pods x/a (app=web, named port http=8080),
// x/b (app=db), y/b (app=db).
constexpr char kBase[] = R"(
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: blue}}
---
apiVersion: v1
kind: Namespace
metadata: {name: y, labels: {team: red}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: web}}
spec:
  containers: [{name: c, image: i, ports: [{containerPort: 8080, name: http}]}]
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: db}}
spec: {containers: [{name: c, image: i}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: y, labels: {app: db}}
spec: {containers: [{name: c, image: i}]}
status: {podIP: 10.0.1.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
)";

class Loaded {
 public:
  explicit Loaded(const std::string& spec_tail) {
    auto loaded = config::LoadManifestText(std::string(kBase) + spec_tail, "test.yaml");
    if (!loaded) {
      for (const auto& e : loaded.error()) errors_ += e.ToString() + "\n";
      return;
    }
    auto compiled = ClusterPolicy::Compile(loaded->cluster);
    if (!compiled) {
      errors_ = "compile failed";
      return;
    }
    cp_ = std::move(*compiled);
  }

  const std::string& errors() const { return errors_; }

  bool Allowed(const char* from, const char* to, uint16_t port,
               Protocol protocol = Protocol::kTCP) const {
    auto ep = [&](const char* s) {
      if (auto ip = IpAddress::Parse(s)) return cp_->FindAddress(*ip);
      const std::string n = s;
      return *cp_->FindPod(n.substr(0, n.find('/')), n.substr(n.find('/') + 1));
    };
    return cp_->Check(ep(from), ep(to), port, protocol).allowed;
  }

  bool ok() const { return cp_ != nullptr; }

 private:
  std::unique_ptr<ClusterPolicy> cp_;
  std::string errors_;
};

#define LOAD(name, tail) \
  Loaded name(tail);     \
  ASSERT_TRUE(name.ok()) << name.errors()

TEST(EmptyVsAbsentTest, IngressAbsentIsolatesAndDeniesAll) {
  LOAD(l, "");
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 8080));
  EXPECT_TRUE(l.Allowed("x/a", "x/b", 80)) << "policyTypes defaulted to [Ingress] only";
}

TEST(EmptyVsAbsentTest, IngressEmptyListIsTheSameAsAbsent) {
  LOAD(l, "  ingress: []\n");
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 8080));
}

TEST(EmptyVsAbsentTest, OneEmptyRuleAllowsAll) {
  LOAD(l, "  ingress: [{}]\n");
  EXPECT_TRUE(l.Allowed("y/b", "x/a", 1, Protocol::kSCTP));
  EXPECT_TRUE(l.Allowed("198.51.100.1", "x/a", 1));
}

TEST(EmptyVsAbsentTest, FromAbsentOrEmptyMatchesAllSources) {
  for (const char* rule :
       {"  ingress: [{ports: [{port: 80}]}]\n", "  ingress: [{from: [], ports: [{port: 80}]}]\n"}) {
    LOAD(l, rule);
    EXPECT_TRUE(l.Allowed("y/b", "x/a", 80)) << rule;
    EXPECT_TRUE(l.Allowed("198.51.100.1", "x/a", 80)) << rule;
    EXPECT_FALSE(l.Allowed("y/b", "x/a", 81)) << rule;
  }
}

TEST(EmptyVsAbsentTest, FromWithAnEmptyPeerIsRejected) {
  Loaded l("  ingress: [{from: [{}]}]\n");
  EXPECT_FALSE(l.ok());
  EXPECT_NE(l.errors().find("spec.ingress[0].from[0]: Required value: must specify a peer"),
            std::string::npos)
      << l.errors();
}

TEST(EmptyVsAbsentTest, PortsAbsentOrEmptyMatchAllPortsAndProtocols) {
  for (const char* rule : {"  ingress: [{from: [{podSelector: {}}]}]\n",
                           "  ingress: [{from: [{podSelector: {}}], ports: []}]\n"}) {
    LOAD(l, rule);
    EXPECT_TRUE(l.Allowed("x/b", "x/a", 9, Protocol::kUDP)) << rule;
    EXPECT_TRUE(l.Allowed("x/b", "x/a", 9, Protocol::kSCTP)) << rule;
  }
}

TEST(EmptyVsAbsentTest, PortsWithAnEmptyPortIsAllTcpOnly) {
  LOAD(l, "  ingress: [{ports: [{}]}]\n");
  EXPECT_TRUE(l.Allowed("x/b", "x/a", 9));
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 9, Protocol::kUDP));
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 9, Protocol::kSCTP));
}

TEST(EmptyVsAbsentTest, ProtocolOnlyPortIsAllPortsOfIt) {
  LOAD(l, "  ingress: [{ports: [{protocol: UDP}]}]\n");
  EXPECT_TRUE(l.Allowed("x/b", "x/a", 9, Protocol::kUDP));
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 9));
}

TEST(EmptyVsAbsentTest, EmptyPodSelectorPeerIsThePolicyNamespace) {
  LOAD(l, "  ingress: [{from: [{podSelector: {}}]}]\n");
  EXPECT_TRUE(l.Allowed("x/b", "x/a", 80));
  EXPECT_FALSE(l.Allowed("y/b", "x/a", 80));
}

TEST(EmptyVsAbsentTest, EmptyNamespaceSelectorPeerIsEveryNamespace) {
  LOAD(l, "  ingress: [{from: [{namespaceSelector: {}}]}]\n");
  EXPECT_TRUE(l.Allowed("x/b", "x/a", 80));
  EXPECT_TRUE(l.Allowed("y/b", "x/a", 80));
  EXPECT_FALSE(l.Allowed("198.51.100.1", "x/a", 80));
}

TEST(EmptyVsAbsentTest, SelectorsInOnePeerAreAnded) {
  LOAD(l,
       "  ingress: [{from: [{namespaceSelector: {matchLabels: {team: red}}, "
       "podSelector: {matchLabels: {app: db}}}]}]\n");
  EXPECT_TRUE(l.Allowed("y/b", "x/a", 80));
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 80));
}

TEST(EmptyVsAbsentTest, SelectorsInTwoPeersAreOred) {
  LOAD(l,
       "  ingress: [{from: [{namespaceSelector: {matchLabels: {team: red}}}, "
       "{podSelector: {matchLabels: {app: db}}}]}]\n");
  EXPECT_TRUE(l.Allowed("y/b", "x/a", 80));
  EXPECT_TRUE(l.Allowed("x/b", "x/a", 80));
}

TEST(EmptyVsAbsentTest, EgressEmptyOrAbsentDoesNotAddEgressToDefaultedTypes) {
  for (const char* tail : {"", "  egress: []\n"}) {
    LOAD(l, tail);
    EXPECT_TRUE(l.Allowed("x/a", "y/b", 80)) << tail;
  }
}

TEST(EmptyVsAbsentTest, EgressRulesAddEgressToDefaultedTypes) {
  LOAD(l, "  egress: [{to: [{podSelector: {}}]}]\n");
  EXPECT_TRUE(l.Allowed("x/a", "x/b", 80));
  EXPECT_FALSE(l.Allowed("x/a", "y/b", 80));
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 80)) << "and Ingress stays";
}

TEST(EmptyVsAbsentTest, ExplicitEgressTypeWithoutRulesDeniesAllEgress) {
  LOAD(l, "  policyTypes: [Egress]\n");
  EXPECT_FALSE(l.Allowed("x/a", "x/b", 80));
  EXPECT_TRUE(l.Allowed("x/b", "x/a", 80)) << "ingress not isolated";
}

TEST(EmptyVsAbsentTest, NamedPortAndEndPortThroughTheLoader) {
  LOAD(l, "  ingress: [{ports: [{port: http}, {port: 9000, endPort: 9002, protocol: UDP}]}]\n");
  EXPECT_TRUE(l.Allowed("x/b", "x/a", 8080));
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 8081));
  EXPECT_TRUE(l.Allowed("x/b", "x/a", 9002, Protocol::kUDP));
  EXPECT_FALSE(l.Allowed("x/b", "x/a", 9003, Protocol::kUDP));
}

}  // namespace
}  // namespace picket::policy
