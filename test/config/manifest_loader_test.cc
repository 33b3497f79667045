// LoadManifestText / LoadManifestPaths: documents, kinds, Lists, JSON, notices, duplicates,
// parse errors, line numbers, files and directories.
#include "config/manifest_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test/config/manifest_test_util.h"

namespace picket::config {
namespace {

using ::picket::config::testing::ErrorsOf;
using ::picket::config::testing::MustLoad;
using ::testing::ElementsAre;

constexpr char kThree[] = R"(apiVersion: v1
kind: Namespace
metadata:
  name: x
  labels:
    team: a
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: x
  labels: {app: web}
spec:
  containers:
  - name: c
    ports:
    - {containerPort: 80, name: http}
    - {containerPort: 53, protocol: UDP}
status:
  podIP: 10.0.0.1
  podIPs: [{ip: 10.0.0.1}, {ip: "fd00::1"}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny
  namespace: x
spec:
  podSelector: {}
)";

TEST(ManifestLoaderTest, LoadsMultiDocumentYaml) {
  LoadResult r = MustLoad(kThree);
  ASSERT_EQ(r.cluster.namespaces.size(), 1u);
  ASSERT_EQ(r.cluster.pods.size(), 1u);
  ASSERT_EQ(r.cluster.policies.size(), 1u);
  const Namespace& ns = r.cluster.namespaces[0];
  EXPECT_EQ(ns.name, "x");
  EXPECT_EQ(ns.labels, (Labels{{"kubernetes.io/metadata.name", "x"}, {"team", "a"}}));
  EXPECT_EQ(ns.source.file, "t.yaml");
  EXPECT_EQ(ns.source.line, 1);
  const Pod& pod = r.cluster.pods[0];
  EXPECT_EQ(pod.ns, "x");
  EXPECT_EQ(pod.name, "web");
  EXPECT_EQ(pod.labels, (Labels{{"app", "web"}}));
  ASSERT_EQ(pod.ports.size(), 2u);
  EXPECT_EQ(pod.ports[0].name, "http");
  EXPECT_EQ(pod.ports[0].container_port, 80);
  EXPECT_EQ(pod.ports[0].protocol, Protocol::kTCP);
  EXPECT_EQ(pod.ports[1].name, "");
  EXPECT_EQ(pod.ports[1].protocol, Protocol::kUDP);
  EXPECT_THAT(pod.ips, ElementsAre("10.0.0.1", "fd00::1"));
  EXPECT_EQ(pod.source.line, 8);
  const NetworkPolicy& p = r.cluster.policies[0];
  EXPECT_EQ(p.ns, "x");
  EXPECT_EQ(p.name, "deny");
  EXPECT_TRUE(p.pod_selector.requirements.empty());
  EXPECT_TRUE(p.policy_types_ingress);
  EXPECT_FALSE(p.policy_types_egress);
  EXPECT_EQ(p.source.line, 24);
  EXPECT_TRUE(r.notices.empty());
}

}  // namespace
}  // namespace picket::config
