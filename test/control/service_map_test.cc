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

// Service api has no selector: its backends come only from its EndpointSlices, one IPv4 and one
// IPv6 slice (dual-stack) plus a second IPv4 slice whose endpoints serve "http" on another port
// (a named targetPort resolved per slice). Service web has a selector AND a slice: the slice
// wins. Slices of other Services or namespaces, and FQDN slices, give nothing.
constexpr const char* kSliced = R"(
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  clusterIPs: [10.96.0.20, "fd00:96::14"]
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.10, selector: {app: web}, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-v4, namespace: shop, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.5, 10.0.0.55], targetRef: {kind: Pod, name: api-1, namespace: shop}}
- {addresses: [10.0.0.6], conditions: {ready: false}, targetRef: {kind: Pod, name: api-2}}
- {addresses: [10.0.0.7], conditions: {ready: true}}
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-v6, namespace: shop, labels: {kubernetes.io/service-name: api}}
addressType: IPv6
endpoints:
- {addresses: ["fd00::5"], targetRef: {kind: Pod, name: api-1, namespace: shop}}
ports: [{name: http, port: 8080}, {name: dns, port: 5353, protocol: UDP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-old, namespace: shop, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.8], targetRef: {kind: Pod, name: api-old-1}}
ports: [{name: http, port: 9090}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-fqdn, namespace: shop, labels: {kubernetes.io/service-name: api}}
addressType: FQDN
endpoints: [{addresses: [api.example.com]}]
ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: api-elsewhere, namespace: other, labels: {kubernetes.io/service-name: api}}
addressType: IPv4
endpoints: [{addresses: [10.0.9.9]}]
ports: [{name: http, port: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.30], targetRef: {kind: Pod, name: web-9}}]
ports: [{name: http, port: 8888}]
)";

TEST(ServiceMapTest, EndpointSlicesGiveTheBackends) {
  std::vector<ServiceMapEntry> map = ComputeServiceMap(Load(kSliced));
  ASSERT_EQ(map.size(), 2u);
  const ServiceMapEntry& api = map[0];
  EXPECT_EQ(api.Key(), "shop/api");
  ASSERT_EQ(api.ports.size(), 2u);
  // Ready endpoints only; a pod's v4 and v6 slices merge; the first address of an endpoint;
  // without a Pod targetRef the backend is named by its address; the slice's own port number.
  EXPECT_THAT(api.ports[0].backends,
              ElementsAre(ServiceBackendPod{"10.0.0.7", {"10.0.0.7"}, 8080},
                          ServiceBackendPod{"api-1", {"10.0.0.5", "fd00::5"}, 8080},
                          ServiceBackendPod{"api-old-1", {"10.0.0.8"}, 9090}));
  // The UDP port matches the slice ports of that name and protocol only.
  EXPECT_EQ(api.ports[1].protocol, config::Protocol::kUDP);
  EXPECT_THAT(api.ports[1].backends,
              ElementsAre(ServiceBackendPod{"10.0.0.7", {"10.0.0.7"}, 5353},
                          ServiceBackendPod{"api-1", {"10.0.0.5", "fd00::5"}, 5353}));
  // A Service with slices takes them, not its selector's pods.
  EXPECT_EQ(map[1].Key(), "shop/web");
  EXPECT_THAT(map[1].ports[0].backends,
              ElementsAre(ServiceBackendPod{"web-9", {"10.0.0.30"}, 8888}));
}

TEST(ServiceMapTest, NotReadyEndpointsAndUnmatchedPortsAreNoBackends) {
  config::Cluster cluster = Load(kSliced);
  for (config::EndpointSlice& slice : cluster.endpoint_slices) {
    for (config::SliceEndpoint& e : slice.endpoints) e.ready = false;
  }
  cluster.endpoint_slices.back().endpoints[0].ready = true;
  cluster.endpoint_slices.back().ports[0].protocol = config::Protocol::kUDP;  // no TCP "http"
  std::vector<ServiceMapEntry> map = ComputeServiceMap(cluster);
  ASSERT_EQ(map.size(), 2u);
  EXPECT_THAT(map[0].ports[0].backends, IsEmpty());
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
