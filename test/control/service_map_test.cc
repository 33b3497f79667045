// Services + pods → service map entries: selection, named target ports, what is left out, and
// the wire encoding.
#include "control/service_map.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/manifest_loader.h"

namespace picket::control {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

config::Cluster Load(const std::string& text) {
  auto r = config::LoadManifestText(text, "test.yaml");
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error()[0].ToString());
  return r ? r->cluster : config::Cluster{};
}

constexpr const char* kCluster = R"(
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web, tier: fe}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080},
                                      {name: dns, containerPort: 5353, protocol: UDP}]}]}
status: {podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 9090}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: web-nohttp, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: admin, containerPort: 7000}]}]}
status: {podIP: 10.0.0.3}
---
apiVersion: v1
kind: Pod
metadata: {name: web-pending, namespace: shop, labels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-host, namespace: shop, labels: {app: web}}
spec: {hostNetwork: true, containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 192.168.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: web-other-ns, namespace: other, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.1.1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIPs: [10.96.0.10, "fd00:96::a"]
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, protocol: UDP, targetPort: dns}
  - {name: raw, port: 7000}
---
apiVersion: v1
kind: Service
metadata: {name: manual, namespace: shop}
spec: {clusterIP: 10.96.0.11, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: shop}
spec: {clusterIP: None, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: shop}
spec: {clusterIP: 10.96.0.12, selector: {app: none}, ports: [{port: 80}]}
)";

TEST(ServiceMapTest, SelectsPodsAndResolvesNamedTargetPorts) {
  std::vector<ServiceMapEntry> map = ComputeServiceMap(Load(kCluster));
  // No selector (manual endpoints) and headless Services have no entry; one selecting nothing
  // has an entry with no backends (connections to it are denied).
  ASSERT_EQ(map.size(), 2u);
  EXPECT_EQ(map[0].Key(), "shop/nobody");
  ASSERT_EQ(map[0].ports.size(), 1u);
  EXPECT_THAT(map[0].ports[0].backends, IsEmpty());

  const ServiceMapEntry& web = map[1];
  EXPECT_EQ(web.Key(), "shop/web");
  EXPECT_THAT(web.cluster_ips, ElementsAre("10.96.0.10", "fd00:96::a"));
  ASSERT_EQ(web.ports.size(), 3u);
  // http → each pod's own "http" port; web-nohttp lacks it; pending, hostNetwork and other
  // namespaces' pods are never backends.
  EXPECT_EQ(web.ports[0].port, 80);
  EXPECT_THAT(web.ports[0].backends,
              ElementsAre(ServiceBackendPod{"web-1", {"10.0.0.1", "fd00::1"}, 8080},
                          ServiceBackendPod{"web-2", {"10.0.0.2"}, 9090}));
  // A named port matches only with the port's protocol.
  EXPECT_EQ(web.ports[1].protocol, config::Protocol::kUDP);
  EXPECT_THAT(web.ports[1].backends,
              ElementsAre(ServiceBackendPod{"web-1", {"10.0.0.1", "fd00::1"}, 5353}));
  // A numeric (here defaulted) target port applies to every selected pod.
  EXPECT_THAT(web.ports[2].backends,
              ElementsAre(ServiceBackendPod{"web-1", {"10.0.0.1", "fd00::1"}, 7000},
                          ServiceBackendPod{"web-2", {"10.0.0.2"}, 7000},
                          ServiceBackendPod{"web-nohttp", {"10.0.0.3"}, 7000}));
}

TEST(ServiceMapTest, NamedPortWithWrongProtocolIsNoBackend) {
  config::Cluster cluster = Load(kCluster);
  cluster.services[0].ports[0].protocol = config::Protocol::kUDP;  // http is TCP on every pod
  cluster.services[0].ports.resize(1);
  std::vector<ServiceMapEntry> map = ComputeServiceMap(cluster);
  ASSERT_EQ(map.size(), 2u);
  EXPECT_THAT(map[1].ports[0].backends, IsEmpty());
}

TEST(ServiceMapTest, EncodesTheDocumentedPayload) {
  ServiceMapEntry entry{"shop", "web", {"10.96.0.10"}, {}};
  entry.ports.push_back({"http", 80, config::Protocol::kTCP, {{"web-1", {"10.0.0.1"}, 8080}}});
  EXPECT_EQ(EncodeServiceMapEntry(entry),
            R"({"cluster_ips":["10.96.0.10"],"name":"web","namespace":"shop","ports":[)"
            R"({"backends":[{"ips":["10.0.0.1"],"pod":"web-1","port":8080}],"name":"http",)"
            R"("port":80,"protocol":"TCP"}]})");
}

}  // namespace
}  // namespace picket::control
