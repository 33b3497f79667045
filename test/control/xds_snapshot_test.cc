// Manifests → compiled resources → control server → sidecar client → EndpointPolicy: the whole
// push path in one process over TLS on loopback, plus the incremental pod-churn path.
#include "control/xds_snapshot.h"

#include <gtest/gtest.h>

#include "config/manifest_loader.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_client.h"
#include "test/control/xds_push_fixture.h"

namespace picket::control {
namespace {

using testing::Ip;
using testing::LoadCluster;
using testing::RunUntil;

constexpr const char* kBase = R"(
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.2}
)";

constexpr const char* kPolicy = R"(
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: 5432}]
)";

config::Pod ExtraPod(const std::string& name, const std::string& app, const std::string& ip) {
  config::Pod p;
  p.ns = "prod";
  p.name = name;
  p.labels = {{"app", app}};
  p.ips = {ip};
  return p;
}

class XdsSnapshotTest : public testing::XdsPushTest {
 protected:
  void StartSidecar(const std::string& ns, const std::string& pod) {
    source_ = std::make_unique<proxy::xds::PolicySource>(
        ns, pod, [this](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
          applied_ = std::move(p);
          ++applies_;
          return {};
        });
    StartClient(ns, pod);
  }

  policy::EndpointPolicyPtr applied_;
  int applies_ = 0;
};

TEST_F(XdsSnapshotTest, PolicyReachesTheSidecarAndChangesEnforcement) {
  config::Cluster base = LoadCluster(kBase);
  ASSERT_TRUE(snapshot_->SetCluster(base).has_value());
  EXPECT_EQ(server_->resource_count(net::kAddressEntryType), 2u);
  EXPECT_EQ(server_->resource_count(net::kPodPolicyType), 2u);

  StartSidecar("prod", "web");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return applied_ != nullptr; }));
  EXPECT_EQ(applied_->pod_name(), "web");
  // No policy selects web: everything is allowed.
  EXPECT_TRUE(applied_->CheckEgress(Ip("10.0.0.2"), 80, config::Protocol::kTCP).allowed);

  ASSERT_TRUE(snapshot_->SetCluster(LoadCluster(std::string(kBase) + kPolicy)).has_value());
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    return !applied_->CheckEgress(Ip("10.0.0.2"), 80, config::Protocol::kTCP).allowed;
  }));
  EXPECT_TRUE(applied_->CheckEgress(Ip("10.0.0.2"), 5432, config::Protocol::kTCP).allowed);
  EXPECT_FALSE(applied_->CheckEgress(Ip("10.0.0.9"), 5432, config::Protocol::kTCP).allowed);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks >= 3; }));
  EXPECT_EQ(server_->stats().nacks, 0u);
}

// The scopes the snapshot gives the server (control/PROTOCOL.md §6.1): what each pod's rules can
// match, nothing for a pod no policy isolates, one object for equal scopes.
TEST_F(XdsSnapshotTest, ScopesHoldWhatTheRulesCanMatch) {
  const std::string both_isolated = std::string(kBase) + R"(
---
apiVersion: v1
kind: Pod
metadata: {name: web2, namespace: prod, labels: {app: web, tier: b}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: lone, namespace: prod, labels: {app: lone}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 10.0.0.4}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-all, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-out, namespace: prod}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]
    ports: [{port: http}]
)";
  ASSERT_TRUE(snapshot_->SetCluster(LoadCluster(both_isolated)).has_value());
  const auto& web = server_->ScopeOf("prod/web");
  const auto& web2 = server_->ScopeOf("prod/web2");
  // web and web2 are two identities (web2 has a tier label) whose rules name every pod of the
  // namespace: equal scopes (each includes its own identity and the other's), one object.
  ASSERT_FALSE(web->empty());
  EXPECT_EQ(web.get(), web2.get()) << "equal scopes are not shared";
  EXPECT_EQ(server_->VisibleCount(net::kAddressEntryType, "prod/web"), 4u);
  // db's egress to an ipBlock on the named port `http`: every pod with a port named http (web,
  // lone) may be a destination, plus db itself.
  EXPECT_EQ(server_->VisibleCount(net::kAddressEntryType, "prod/db"), 3u);
  // lone: no policy selects it, so it is sent nothing.
  EXPECT_TRUE(server_->ScopeOf("prod/lone")->empty());
  EXPECT_EQ(server_->VisibleCount(net::kAddressEntryType, "prod/lone"), 0u);
}

TEST_F(XdsSnapshotTest, PodChurnIsIncrementalAndSmall) {
  config::Cluster cluster = LoadCluster(std::string(kBase) + kPolicy);
  ASSERT_TRUE(snapshot_->SetCluster(cluster).has_value());
  StartSidecar("prod", "web");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return applied_ != nullptr; }));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks >= 2; }));

  // A second db replica (existing identity): one address entry, one pod policy (its own).
  const auto before = snapshot_->stats();
  cluster.pods.push_back(ExtraPod("db-2", "db", "10.0.0.3"));
  ASSERT_TRUE(snapshot_->SetCluster(cluster, /*pods_only=*/true).has_value());
  EXPECT_EQ(snapshot_->stats().incremental_updates, before.incremental_updates + 1);
  EXPECT_EQ(snapshot_->stats().address_entries_published, before.address_entries_published + 1);
  EXPECT_EQ(snapshot_->stats().pod_policies_published, before.pod_policies_published + 1);
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    return applied_->CheckEgress(Ip("10.0.0.3"), 5432, config::Protocol::kTCP).allowed;
  }));

  // Removing it: the address entry and its policy are withdrawn; enforcement follows.
  cluster.pods.pop_back();
  ASSERT_TRUE(snapshot_->SetCluster(cluster, true).has_value());
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    return !applied_->CheckEgress(Ip("10.0.0.3"), 5432, config::Protocol::kTCP).allowed;
  }));
  EXPECT_EQ(server_->resource_count(net::kAddressEntryType), 2u);
  EXPECT_EQ(server_->resource_count(net::kPodPolicyType), 2u);
}

constexpr const char* kWebIngressDeny = R"(
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-ingress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
)";

// The pod's node addresses reach its sidecar in its PodPolicy, so a default-deny pod accepts
// kubelet probes once scheduled; a changed node address is republished (its content version
// changes) even when no rule and no identity changed.
TEST_F(XdsSnapshotTest, OwnNodeReachesTheSidecar) {
  config::Cluster cluster = LoadCluster(std::string(kBase) + kWebIngressDeny);
  cluster.pods.push_back(ExtraPod("web-2", "web", "10.0.0.4"));
  ASSERT_TRUE(snapshot_->SetCluster(cluster).has_value());
  StartSidecar("prod", "web");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return applied_ != nullptr; }));
  EXPECT_FALSE(applied_->CheckIngress(Ip("192.168.0.1"), 8080, config::Protocol::kTCP).allowed)
      << "not scheduled yet: no node known";

  // Scheduled on 192.168.0.1 while db (the only pod of its identity) goes away: the pod-churn
  // shortcut does not apply, and web's identity and rules are unchanged.
  const auto before = snapshot_->stats();
  const std::string version = server_->TypeVersion(net::kPodPolicyType);
  for (config::Pod& pod : cluster.pods) {
    if (pod.name == "web") pod.host_ips = {"192.168.0.1"};
  }
  std::erase_if(cluster.pods, [](const config::Pod& pod) { return pod.name == "db"; });
  ASSERT_TRUE(snapshot_->SetCluster(cluster, /*pods_only=*/true).has_value());
  EXPECT_EQ(snapshot_->stats().incremental_updates, before.incremental_updates + 1);
  EXPECT_NE(server_->TypeVersion(net::kPodPolicyType), version);
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    return applied_->CheckIngress(Ip("192.168.0.1"), 8080, config::Protocol::kTCP).allowed;
  }));
  EXPECT_EQ(applied_->CheckIngress(Ip("192.168.0.1"), 8080, config::Protocol::kTCP).detail,
            "allowed: from the pod's own node 192.168.0.1 (always allowed into the pod)");
  EXPECT_FALSE(applied_->CheckIngress(Ip("10.0.0.4"), 8080, config::Protocol::kTCP).allowed);

  // Moved to another node alone (the pod-churn shortcut): the old node is denied again.
  for (config::Pod& pod : cluster.pods) {
    if (pod.name == "web") pod.host_ips = {"192.168.0.2"};
  }
  ASSERT_TRUE(snapshot_->SetCluster(cluster, /*pods_only=*/true).has_value());
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    return applied_->CheckIngress(Ip("192.168.0.2"), 8080, config::Protocol::kTCP).allowed;
  }));
  EXPECT_FALSE(applied_->CheckIngress(Ip("192.168.0.1"), 8080, config::Protocol::kTCP).allowed);
  EXPECT_EQ(server_->stats().nacks, 0u);
}

TEST_F(XdsSnapshotTest, InvalidClusterKeepsLastGood) {
  config::Cluster cluster = LoadCluster(kBase);
  ASSERT_TRUE(snapshot_->SetCluster(cluster).has_value());
  const std::string version = server_->TypeVersion(net::kAddressEntryType);
  cluster.pods.push_back(ExtraPod("dup", "x", "10.0.0.1"));  // IP already owned by web
  auto result = snapshot_->SetCluster(cluster, true);
  ASSERT_FALSE(result.has_value());
  EXPECT_FALSE(result.error().empty());
  EXPECT_EQ(server_->TypeVersion(net::kAddressEntryType), version);
  EXPECT_EQ(server_->resource_count(net::kAddressEntryType), 2u);
}

}  // namespace
}  // namespace picket::control
