// Tests PolicyDumpJson (proxy/admin.h): /config_dump's policy shows this pod's own policy, its own
// address entry and those its rules name, and leaves the rest of the cluster out — on a snapshot
// compiled from manifests. What it shows is still a policy that decides the same for the peers
// it keeps.
#include <gtest/gtest.h>

#include <string>

#include "base/json.h"
#include "config/manifest_loader.h"
#include "policy/endpoint_policy.h"
#include "proxy/admin.h"

namespace picket::proxy {
namespace {

constexpr char kCluster[] = R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: front, namespace: shop, labels: {app: front}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: billing, namespace: shop, labels: {app: billing, tier: secret}}
spec: {containers: [{name: c, image: x, ports: [{name: admin, containerPort: 9000}]}]}
status: {podIP: 10.0.0.3}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: front}}}]
    ports: [{port: 8080}]
)";

policy::IpAddress Ip(const char* s) { return *policy::IpAddress::Parse(s); }

TEST(ConfigDump, ShowsOnlyWhatThisPodsRulesName) {
  auto loaded = config::LoadManifestText(kCluster, "cluster.yaml");
  ASSERT_TRUE(loaded.has_value());
  auto snapshot = policy::CompileEndpointPolicy(loaded->cluster, "shop", "web");
  ASSERT_TRUE(snapshot.has_value());
  const std::string full = (*snapshot)->Encode();
  ASSERT_NE(full.find("billing"), std::string::npos);  // the whole cluster is in the snapshot

  const std::string dump = PolicyDumpJson((*snapshot)->version(), full);
  EXPECT_EQ(dump.find("billing"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("10.0.0.3"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("secret"), std::string::npos) << dump;
  auto parsed = base::ParseJson(dump);
  ASSERT_TRUE(parsed.has_value()) << dump;
  EXPECT_EQ(parsed->root().Find("version")->AsString(), (*snapshot)->version());
  EXPECT_EQ(parsed->root().Find("address_entries_omitted")->AsUint64(), 1u);
  const base::JsonValue content = *parsed->root().Find("content");
  ASSERT_EQ(content.Find("address_map")->size(), 2u);  // web itself and front
  EXPECT_TRUE(content.Find("pod_policy")->IsObject());

  // What is shown is a policy that still decides the same for the peers it keeps.
  auto shown = policy::DecodeEndpointPolicy(content.ToJson(), "config_dump");
  ASSERT_TRUE(shown.has_value()) << content.ToJson();
  EXPECT_TRUE((*shown)->CheckIngress(Ip("10.0.0.2"), 8080, config::Protocol::kTCP).allowed);
  EXPECT_FALSE((*shown)->CheckIngress(Ip("10.0.0.2"), 9000, config::Protocol::kTCP).allowed);
  EXPECT_FALSE((*shown)->CheckIngress(Ip("10.0.0.3"), 8080, config::Protocol::kTCP).allowed);
}

TEST(ConfigDump, AContentWithoutAnAddressMapIsShownAsItIs) {
  EXPECT_EQ(PolicyDumpJson("v7", R"({"version":"v7"})"),
            R"({"version":"v7","content":{"version":"v7"}})");
}

}  // namespace
}  // namespace picket::proxy
