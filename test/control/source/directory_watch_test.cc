// ManifestSet: what a manifest directory's files merge into — every kind the server publishes
// from, Services included (the service map is computed from Merged()).
#include "control/source/directory_watch.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace picket::control::source {
namespace {

namespace fs = std::filesystem;

TEST(ManifestSetTest, MergedCarriesEveryKindIncludingServices) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(tmp ? tmp : "/tmp") / "manifest_set_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "a.yaml") << R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.1}
)";
  std::ofstream(dir / "b.yaml") << R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.96.0.10, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
)";
  ManifestSet set(dir.string());
  ManifestSet::Result result = set.Reload();
  EXPECT_TRUE(result.changed);
  EXPECT_EQ(result.files_loaded, 2u);
  EXPECT_TRUE(set.errors().empty());
  const config::Cluster merged = set.Merged();
  EXPECT_EQ(merged.namespaces.size(), 1u);
  EXPECT_EQ(merged.pods.size(), 1u);
  EXPECT_EQ(merged.policies.size(), 1u);
  ASSERT_EQ(merged.services.size(), 1u);
  EXPECT_EQ(merged.services[0].ns, "shop");
  EXPECT_EQ(merged.services[0].name, "web");
  EXPECT_EQ(merged.services[0].cluster_ips, std::vector<std::string>{"10.96.0.10"});

  // Removing the file removes the Service.
  fs::remove(dir / "b.yaml");
  EXPECT_TRUE(set.Reload().changed);
  EXPECT_TRUE(set.Merged().services.empty());
  fs::remove_all(dir);
}

// The reported attack, scaled down: a manifest file over the limit is refused before it is
// parsed, with the precise size in the error, and the file's last good objects stay served.
TEST(ManifestSetTest, FileOverTheSizeLimitIsRefusedAndItsLastGoodObjectsKept) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(tmp ? tmp : "/tmp") / "manifest_set_size_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string pod = R"(
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.1}
)";
  const uint64_t limit = 1024;
  ASSERT_LT(pod.size(), limit);
  std::ofstream(dir / "a.yaml") << pod;
  ManifestSet set(dir.string(), limit);
  ASSERT_TRUE(set.Reload().changed);
  ASSERT_TRUE(set.errors().empty());
  ASSERT_EQ(set.Merged().pods.size(), 1u);

  // One byte over: a comment line padding the same valid Pod (it would parse if read).
  const std::string padded = pod + "#" + std::string(limit - pod.size() - 1, 'x') + "\n";
  ASSERT_EQ(padded.size(), limit + 1);
  std::ofstream(dir / "a.yaml", std::ios::trunc) << padded;
  ManifestSet::Result result = set.Reload();
  EXPECT_FALSE(result.changed);
  ASSERT_EQ(set.errors().size(), 1u);
  EXPECT_EQ(set.errors()[0].ToString(),
            (dir / "a.yaml").string() + ": too large: 1025 bytes (limit 1024)");
  EXPECT_EQ(set.Merged().pods.size(), 1u);  // the last good objects are still served

  // Back under the limit: loaded again, the error is gone.
  std::ofstream(dir / "a.yaml", std::ios::trunc) << pod;
  set.Reload();
  EXPECT_TRUE(set.errors().empty());
  EXPECT_EQ(set.Merged().pods.size(), 1u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace picket::control::source
