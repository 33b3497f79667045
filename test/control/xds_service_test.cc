// The service map over the real push path: manifests → XdsSnapshot → XdsServer → TLS on
// loopback → XdsClient → PolicySource → on_service_map; republishing on pod churn; a bad
// resource NACKed with the last good map kept; and the egress decision against the backends.
#include <gtest/gtest.h>

#include "config/manifest_loader.h"
#include "control/service_map.h"
#include "control/xds_snapshot.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/service_map.h"
#include "proxy/xds/xds_client.h"
#include "test/control/xds_push_fixture.h"

namespace picket::control {
namespace {

using proxy::xds::ServiceMap;
using testing::Ip;
using testing::LoadCluster;
using testing::RunUntil;

constexpr const char* kCluster = R"(
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: prod, labels: {app: client}}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: prod, labels: {app: web, allowed: "no"}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: prod, labels: {app: web, allowed: "yes"}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 9090}]}]}
status: {podIP: 10.0.0.3}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {allowed: "yes"}}}]
)";

class XdsServiceTest : public testing::XdsPushTest {
 protected:
  void StartSidecar(const std::string& ns, const std::string& pod) {
    source_ = std::make_unique<proxy::xds::PolicySource>(
        ns, pod,
        [this](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
          policy_ = std::move(p);
          return {};
        },
        [this](proxy::xds::ServiceMapPtr map) {
          services_ = std::move(map);
          ++service_maps_;
        });
    StartClient(ns, pod);
  }

  // What the proxy does for a connection to `vip`:`port`: the first backend its egress policy
  // allows, or nullptr (deny).
  const ServiceMap::Backend* Pick(const char* vip, uint16_t port) {
    const auto* backends = services_->Find(Ip(vip), port, config::Protocol::kTCP);
    if (backends == nullptr) return nullptr;
    for (const ServiceMap::Backend& b : *backends) {
      if (policy_->CheckEgress(b.address, b.port, config::Protocol::kTCP).allowed) return &b;
    }
    return nullptr;
  }

  policy::EndpointPolicyPtr policy_;
  proxy::xds::ServiceMapPtr services_;
  int service_maps_ = 0;
};

TEST_F(XdsServiceTest, ServiceMapReachesTheSidecarAndPicksAnAllowedBackend) {
  config::Cluster cluster = LoadCluster(kCluster);
  ASSERT_TRUE(snapshot_->SetCluster(cluster).has_value());
  EXPECT_EQ(server_->resource_count(net::kServiceType), 1u);
  EXPECT_EQ(snapshot_->stats().services_published, 1u);

  StartSidecar("prod", "client");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return policy_ != nullptr && services_ != nullptr; }));
  const auto* backends = services_->Find(Ip("10.96.0.10"), 80, config::Protocol::kTCP);
  ASSERT_NE(backends, nullptr);
  ASSERT_EQ(backends->size(), 2u);
  EXPECT_EQ((*backends)[0].pod, "prod/web-1");
  EXPECT_EQ((*backends)[0].port, 8080);
  EXPECT_EQ((*backends)[1].address, Ip("10.0.0.3"));
  EXPECT_EQ((*backends)[1].port, 9090);
  EXPECT_EQ(services_->Find(Ip("10.96.0.10"), 80, config::Protocol::kUDP), nullptr);

  // The egress policy allows web-2 only: the sidecar picks it over web-1.
  const ServiceMap::Backend* picked = Pick("10.96.0.10", 80);
  ASSERT_NE(picked, nullptr);
  EXPECT_EQ(picked->pod, "prod/web-2");

  // web-2 goes away: the entry is republished (one resource), and no backend is allowed.
  const auto before = snapshot_->stats();
  const int maps_before = service_maps_;
  cluster.pods.erase(cluster.pods.begin() + 2);
  ASSERT_TRUE(snapshot_->SetCluster(cluster, /*pods_only=*/true).has_value());
  EXPECT_EQ(snapshot_->stats().services_published, before.services_published + 1);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return service_maps_ > maps_before; }));
  ASSERT_EQ(services_->Find(Ip("10.96.0.10"), 80, config::Protocol::kTCP)->size(), 1u);
  EXPECT_EQ(Pick("10.96.0.10", 80), nullptr);

  // An unrelated pod changes nothing in the service map.
  const auto unchanged = snapshot_->stats().services_published;
  config::Pod other;
  other.ns = "prod";
  other.name = "batch";
  other.labels = {{"app", "batch"}};
  other.ips = {"10.0.0.9"};
  cluster.pods.push_back(other);
  ASSERT_TRUE(snapshot_->SetCluster(cluster, true).has_value());
  EXPECT_EQ(snapshot_->stats().services_published, unchanged);

  // The Service is deleted: removed on the server and in the sidecar.
  cluster.services.clear();
  ASSERT_TRUE(snapshot_->SetCluster(cluster).has_value());
  EXPECT_EQ(server_->resource_count(net::kServiceType), 0u);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return services_->services() == 0; }));
  EXPECT_EQ(services_->Find(Ip("10.96.0.10"), 80, config::Protocol::kTCP), nullptr);
  EXPECT_EQ(server_->stats().nacks, 0u);
}

// A Service without a selector whose backends come only from an EndpointSlice (as an external
// controller, or kube-controller-manager for a selector Service, publishes them): the sidecar gets
// the slice's ready endpoints and its egress policy is judged on the backend.
TEST_F(XdsServiceTest, SliceOnlyServiceIsEnforcedOnItsBackend) {
  config::Cluster cluster = LoadCluster(std::string(kCluster) + R"(
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: prod}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-1, namespace: prod, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.2], targetRef: {kind: Pod, name: web-1}}
- {addresses: [10.0.0.3], conditions: {ready: true}, targetRef: {kind: Pod, name: web-2}}
ports: [{name: http, port: 9091}]
)");
  ASSERT_TRUE(snapshot_->SetCluster(cluster).has_value());
  EXPECT_EQ(server_->resource_count(net::kServiceType), 2u);
  StartSidecar("prod", "client");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return policy_ != nullptr && services_ != nullptr; }));
  const auto* backends = services_->Find(Ip("10.96.0.20"), 80, config::Protocol::kTCP);
  ASSERT_NE(backends, nullptr);
  ASSERT_EQ(backends->size(), 2u);
  EXPECT_EQ((*backends)[0].pod, "prod/web-1");
  EXPECT_EQ((*backends)[0].port, 9091);  // the slice's port, not the pods' containerPort
  // Egress allows web-2 only: it is picked, on the slice's port.
  const ServiceMap::Backend* picked = Pick("10.96.0.20", 80);
  ASSERT_NE(picked, nullptr);
  EXPECT_EQ(picked->pod, "prod/web-2");
  EXPECT_EQ(picked->address, Ip("10.0.0.3"));
  EXPECT_EQ(picked->port, 9091);

  // web-2's endpoint turns not ready: only web-1 is left, which egress denies.
  const int maps_before = service_maps_;
  cluster.endpoint_slices[0].endpoints[1].ready = false;
  ASSERT_TRUE(snapshot_->SetCluster(cluster).has_value());
  ASSERT_TRUE(RunUntil(&loop_, [&] { return service_maps_ > maps_before; }));
  ASSERT_EQ(services_->Find(Ip("10.96.0.20"), 80, config::Protocol::kTCP)->size(), 1u);
  EXPECT_EQ(Pick("10.96.0.20", 80), nullptr);

  // The slice is deleted: the Service, having no selector, has no entry any more.
  cluster.endpoint_slices.clear();
  ASSERT_TRUE(snapshot_->SetCluster(cluster).has_value());
  ASSERT_TRUE(RunUntil(&loop_, [&] { return services_->services() == 1; }));
  EXPECT_EQ(services_->Find(Ip("10.96.0.20"), 80, config::Protocol::kTCP), nullptr);
  EXPECT_EQ(server_->stats().nacks, 0u);
}

TEST_F(XdsServiceTest, BadResourceIsNackedAndTheLastGoodMapKept) {
  ASSERT_TRUE(snapshot_->SetCluster(LoadCluster(kCluster)).has_value());
  StartSidecar("prod", "client");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return services_ != nullptr; }));
  const proxy::xds::ServiceMapPtr good = services_;

  std::string bad = R"({"namespace":"prod","name":"evil","cluster_ips":["10.96.0.66"],)"
                    R"("ports":[{"name":"","port":70000,"protocol":"TCP","backends":[]}]})";
  server_->Update(net::kServiceType, {{"prod/evil", "v-bad", std::move(bad)}}, {});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().nacks >= 1; }));
  EXPECT_EQ(services_, good);
  const auto& status = client_->status().types.at(std::string(net::kServiceType));
  EXPECT_EQ(status.last_nack_error,
            "prod/evil: ports[0].port: Invalid value: 70000: must be between 1 and 65535, "
            "inclusive");

  // A Service claiming another's ClusterIP:port is rejected as a whole, too.
  std::string clash = EncodeServiceMapEntry(
      {"prod", "clash", {"10.96.0.10"}, {{"http", 80, config::Protocol::kTCP, {}}}});
  server_->Update(net::kServiceType, {{"prod/clash", "v-clash", std::move(clash)}}, {});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().nacks >= 2; }));
  EXPECT_EQ(services_, good);
}

}  // namespace
}  // namespace picket::control
