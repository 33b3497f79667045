// One version per pushed resource, shown the same everywhere: a resource's version is exactly
// base::HashVersion of its encoded text, and the control server's /status and the sidecar's
// /config_dump (the xDS sections both render: XdsServer::StatusJson, XdsClient::StatusJson)
// name the same version for the same pod policy. In process: server + snapshot + one sidecar
// client over TLS on loopback.
#include <gtest/gtest.h>

#include <string>

#include "base/hash.h"
#include "base/json.h"
#include "control/xds_snapshot.h"
#include "policy/endpoint_policy.h"
#include "proxy/xds/policy_source.h"
#include "test/control/xds_push_fixture.h"

namespace picket::control {
namespace {

using testing::LoadCluster;
using testing::RunUntil;

constexpr const char* kCluster = R"(
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.0.0.1, hostIP: 192.168.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.2}
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

// The string at `path` (object keys) in `json`, or "<missing>".
std::string At(base::JsonValue at, std::initializer_list<std::string_view> path) {
  for (std::string_view key : path) {
    std::optional<base::JsonValue> next = at.Find(key);
    if (!next) return "<missing>";
    at = *next;
  }
  return std::string(at.AsString().value_or("<not a string>"));
}

// The same, in a JSON text (an admin endpoint's body).
std::string At(const std::string& json, std::initializer_list<std::string_view> path) {
  auto doc = base::ParseJson(json);
  if (!doc) return "<not JSON: " + doc.error().ToString() + ">";
  return At(doc->root(), path);
}

class XdsVersionTest : public testing::XdsPushTest {
 protected:
  void StartSidecar(const std::string& ns, const std::string& pod) {
    source_ = std::make_unique<proxy::xds::PolicySource>(
        ns, pod, [this](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
          applied_ = std::move(p);
          return {};
        });
    StartClient(ns, pod);
  }

  // The control server's view of stream 0's subscription to `type`.
  std::string ServerAcked(std::string_view type) const {
    auto status = base::ParseJson(server_->StatusJson());
    if (!status) return "";
    std::optional<base::JsonValue> first;
    if (auto sidecars = status->root().Find("sidecars")) first = sidecars->At(0);
    if (!first) return "";
    return At(*first, {"subscriptions", type, "last_acked_version"});
  }

  const policy::PodEntry& Pod(std::string_view ns, std::string_view name) const {
    const policy::PodEntry* pod = snapshot_->compiled()->FindPodEntry(ns, name);
    EXPECT_NE(pod, nullptr);
    return *pod;
  }

  policy::EndpointPolicyPtr applied_;
};

TEST_F(XdsVersionTest, AResourceVersionIsTheHashOfItsEncodedText) {
  ASSERT_TRUE(snapshot_->SetCluster(LoadCluster(kCluster)).has_value());
  const std::string status = server_->StatusJson();
  for (const char* name : {"web", "db"}) {
    const policy::PodEntry& pod = Pod("prod", name);
    const std::string key = std::string("prod/") + name;
    EXPECT_EQ(At(status, {"resources", net::kPodPolicyType, "resources", key}),
              base::HashVersion(policy::EncodePodPolicy(snapshot_->compiled()->PodPolicyOf(pod))))
        << key;
    EXPECT_EQ(
        At(status, {"resources", net::kAddressEntryType, "resources", key}),
        base::HashVersion(policy::EncodeAddressEntry(snapshot_->compiled()->AddressEntryOf(pod))))
        << key;
  }
}

TEST_F(XdsVersionTest, StatusAndConfigDumpShowTheSameVersionOfAPodPolicy) {
  ASSERT_TRUE(snapshot_->SetCluster(LoadCluster(kCluster)).has_value());
  StartSidecar("prod", "web");
  const std::string type(net::kPodPolicyType);
  const std::string published =
      At(server_->StatusJson(), {"resources", type, "resources", "prod/web"});
  ASSERT_EQ(published.size(), 16u) << published;
  // The sidecar applied and ACKed it, and the server recorded the ACK.
  ASSERT_TRUE(RunUntil(&loop_,
                       [&] {
                         return applied_ != nullptr &&
                                At(client_->StatusJson(), {"types", type, "last_acked_version"}) ==
                                    published &&
                                ServerAcked(type) == published;
                       }))
      << client_->StatusJson() << "\n"
      << server_->StatusJson();

  // The sidecar can tell the version of what it enforces by itself: re-encoding the decoded
  // policy gives the same bytes, hence the same hash.
  EXPECT_EQ(base::HashVersion(
                policy::EncodePodPolicy(snapshot_->compiled()->PodPolicyOf(Pod("prod", "web")))),
            published);

  // A change of the pod's policy moves both views to the same new version.
  std::string text = kCluster;
  text.replace(text.find("5432"), 4, "6379");
  config::Cluster changed = LoadCluster(text);
  ASSERT_TRUE(snapshot_->SetCluster(changed).has_value());
  const std::string next = At(server_->StatusJson(), {"resources", type, "resources", "prod/web"});
  EXPECT_NE(next, published);
  ASSERT_TRUE(RunUntil(&loop_, [&] {
    return At(client_->StatusJson(), {"types", type, "last_acked_version"}) == next &&
           ServerAcked(type) == next;
  }));
}

}  // namespace
}  // namespace picket::control
