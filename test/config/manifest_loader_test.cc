// LoadManifestText / LoadManifestPaths: documents, kinds, Lists, JSON, notices, duplicates,
// parse errors, line numbers, files and directories.
#include "config/manifest_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
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

TEST(ManifestLoaderTest, EmptyInputAndEmptyDocuments) {
  EXPECT_TRUE(MustLoad("").cluster.pods.empty());
  EXPECT_TRUE(MustLoad("---\n---\n# only a comment\n---\n").cluster.pods.empty());
  LoadResult r = MustLoad("---\n\n---\nkind: Pod\nmetadata: {name: a}\n---\n");
  EXPECT_EQ(r.cluster.pods.size(), 1u);
}

TEST(ManifestLoaderTest, KindListAndTypedLists) {
  LoadResult r = MustLoad(R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: x}
- kind: Pod
  metadata: {name: a, namespace: x}
- kind: ConfigMap
  metadata: {name: cm, namespace: x}
- kind: List
  items:
  - kind: NetworkPolicy
    metadata: {name: p, namespace: x}
---
kind: PodList
items:
- metadata: {name: b, namespace: x}
---
kind: List
items: []
)");
  EXPECT_EQ(r.cluster.namespaces.size(), 1u);
  ASSERT_EQ(r.cluster.pods.size(), 2u);
  EXPECT_EQ(r.cluster.pods[1].name, "b");
  EXPECT_EQ(r.cluster.pods[1].source.line, 18);
  EXPECT_EQ(r.cluster.policies.size(), 1u);
  EXPECT_THAT(r.notices,
              ElementsAre("t.yaml:9: skipping ConfigMap x/cm (not used by the policy engine)"));
  EXPECT_THAT(ErrorsOf("kind: List\nitems: {a: b}\n"),
              ElementsAre("t.yaml:2: items: Invalid type: expected a list, got a map"));
  EXPECT_THAT(ErrorsOf("kind: List\nitems:\n- metadata: {name: a}\n"),
              ElementsAre("t.yaml:3: kind: Required value"));
}

TEST(ManifestLoaderTest, SkipsOtherKindsWithANotice) {
  LoadResult r = MustLoad(R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
)");
  EXPECT_EQ(r.cluster.services.size(), 1u);  // decoded for the service map (service_test.cc)
  EXPECT_THAT(r.notices,
              ElementsAre("t.yaml:6: skipping ClusterRole reader (not used by the policy engine)",
                          "t.yaml:10: skipping Deployment d (not used by the policy engine)"));
}

TEST(ManifestLoaderTest, ReadsJson) {
  LoadResult r = MustLoad(R"({
  "apiVersion": "networking.k8s.io/v1",
  "kind": "NetworkPolicy",
  "metadata": {"name": "p", "namespace": "x"},
  "spec": {
    "podSelector": {"matchLabels": {"app": "web"}},
    "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 80}, {"port": "http"}]}],
    "egress": [],
    "policyTypes": ["Ingress", "Egress"]
  }
})");
  ASSERT_EQ(r.cluster.policies.size(), 1u);
  const NetworkPolicy& p = r.cluster.policies[0];
  EXPECT_EQ(std::get<uint16_t>(p.ingress[0].ports[0].port), 80);
  // A JSON string is a named port even when it is digits (IntOrString: the type decides).
  EXPECT_EQ(std::get<std::string>(p.ingress[0].ports[1].port), "http");
  EXPECT_TRUE(p.policy_types_egress);
  EXPECT_THAT(ErrorsOf(R"({"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "x"},
 "spec": {"ingress": [{"ports": [{"port": "80"}]}]}})"),
              ElementsAre("t.yaml:2: NetworkPolicy x/p: spec.ingress[0].ports[0].port: Invalid "
                          "value: \"80\": must contain at least one letter (a-z)"));
}

TEST(ManifestLoaderTest, MalformedYamlIsOneParseError) {
  EXPECT_THAT(ErrorsOf("kind: Pod\nmetadata: {name: a\n"),
              ElementsAre(::testing::StartsWith("t.yaml:3: YAML parse error: ")));
  EXPECT_THAT(ErrorsOf("a: b\n c: d\n"),
              ElementsAre(::testing::StartsWith("t.yaml:2: YAML parse error: ")));
  EXPECT_THAT(ErrorsOf("kind: Namespace\nmetadata: {name: x}\n---\n\t- x: [\n"),
              ElementsAre(::testing::StartsWith("t.yaml:4: YAML parse error: ")));
}

TEST(ManifestLoaderTest, EachDocumentParsesOnItsOwn) {
  // A broken document is reported at its file line; the documents around it still load and
  // report their own errors.
  EXPECT_THAT(ErrorsOf("kind: Pod\nmetadata: {name: A}\n---\nkind: [\n---\n# c\n\nkind: "
                       "Pod\nmetadata: {name: B}\n"),
              ElementsAre(::testing::StartsWith("t.yaml:2: Pod default/A: metadata.name: "),
                          ::testing::StartsWith("t.yaml:5: YAML parse error: "),
                          ::testing::StartsWith("t.yaml:9: Pod default/B: metadata.name: ")));
  // `...` ends a document; markers may carry content and comments.
  LoadResult r = MustLoad(
      "kind: Pod\nmetadata: {name: a}\n...\n--- # second\nkind: Pod\nmetadata: {name: b}\n"
      "--- {kind: Pod, metadata: {name: c}}\n--- null\n--- ~\n...\n");
  ASSERT_EQ(r.cluster.pods.size(), 3u);
  EXPECT_EQ(r.cluster.pods[1].source.line, 5);
  EXPECT_EQ(r.cluster.pods[2].source.line, 7);
}

TEST(ManifestLoaderTest, StrayCommaIsAnErrorNotAHang) {
  // yaml-cpp 0.7's LoadAll loops forever on this (jbeder/yaml-cpp#1040); Load returns null.
  EXPECT_THAT(ErrorsOf(",\n"), ElementsAre("t.yaml:1: YAML parse error: unexpected content (not "
                                           "a YAML document)"));
  EXPECT_THAT(ErrorsOf("kind: Namespace\nmetadata: {name: a}\n---\n# x\n, 0755, 0x1f]\n"),
              ElementsAre("t.yaml:5: YAML parse error: unexpected content (not a YAML document)"));
}

TEST(ManifestLoaderTest, DocumentsThatAreNotObjects) {
  EXPECT_THAT(ErrorsOf("- a\n- b\n"),
              ElementsAre("t.yaml:1: Invalid type: expected a Kubernetes object (a map with "
                          "apiVersion and kind), got a list"));
  EXPECT_THAT(ErrorsOf("hello\n"),
              ElementsAre("t.yaml:1: Invalid type: expected a Kubernetes object (a map with "
                          "apiVersion and kind), got a string"));
  EXPECT_THAT(ErrorsOf("metadata: {name: a}\n"), ElementsAre("t.yaml:1: kind: Required value"));
  EXPECT_THAT(ErrorsOf("kind: NetworkPolicy\napiVersion: extensions/v1beta1\nmetadata: {name: "
                       "p}\n"),
              ElementsAre("t.yaml:2: NetworkPolicy default/p: apiVersion: Unsupported value: "
                          "\"extensions/v1beta1\": supported values: \"networking.k8s.io/v1\""));
}

TEST(ManifestLoaderTest, DuplicateObjectsInOneText) {
  EXPECT_THAT(ErrorsOf("kind: Pod\nmetadata: {name: a, namespace: x}\n---\nkind: Pod\nmetadata: "
                       "{name: a, namespace: x}\n---\nkind: NetworkPolicy\nmetadata: {name: a, "
                       "namespace: x}\n"),
              ElementsAre("t.yaml:4: Pod x/a: duplicate object: already defined at t.yaml:1"));
  // Same name in different namespaces, or different kinds, is fine.
  MustLoad(
      "kind: Pod\nmetadata: {name: a, namespace: x}\n---\nkind: Pod\nmetadata: {name: a, "
      "namespace: y}\n---\nkind: Namespace\nmetadata: {name: a}\n");
}

TEST(ManifestLoaderTest, AliasesCannotBlowUp) {
  // Nested lists of 100 aliases each name 10^8 selector values in a ~10 kB file; the loader
  // stops at its node budget instead of walking them all.
  auto hundred = [](const std::string& alias) {
    std::string out = "[";
    for (int i = 0; i < 100; ++i) out += (i > 0 ? ", *" : "*") + alias;
    return out + "]";
  };
  std::string text;
  text =
      "kind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n"
      "  podSelector: {matchLabels: {a: &v v}}\n"
      "  ingress:\n"
      "  - from: [{podSelector: {matchExpressions: [&e {key: k, operator: In, values: " +
      hundred("v") + "}]}}]\n";
  text +=
      "  egress:\n  - to: &peers [{podSelector: {matchExpressions: &es " + hundred("e") + "}}]\n";
  text += "  - to: [";
  for (int i = 0; i < 100; ++i)
    text += std::string(i > 0 ? ", " : "") + "{podSelector: {matchExpressions: *es}}";
  text += "]\n";
  for (int i = 0; i < 100; ++i) text += "  - to: *peers\n";
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> errors = ErrorsOf(text);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(errors, ::testing::Contains(::testing::MatchesRegex(
                          "t.yaml: NetworkPolicy x/p: input too large: more than [0-9]+ YAML "
                          "nodes after expanding aliases")));
  EXPECT_LT(elapsed, std::chrono::seconds(20));
}

// --- LoadManifestPaths -------------------------------------------------------------------------

class ManifestPathsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::filesystem::path(tmp != nullptr ? tmp : "/tmp") /
           ("manifests-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& rel, const std::string& text) {
    std::filesystem::path p = dir_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

  std::filesystem::path dir_;
};

TEST_F(ManifestPathsTest, LoadsDirectoriesRecursivelyInSortedOrder) {
  Write("b/pod.yaml", "kind: Pod\nmetadata: {name: b, namespace: x}\n");
  Write("a.yml", "kind: Pod\nmetadata: {name: a, namespace: x}\n");
  Write("c/d/e.json", R"({"kind": "Pod", "metadata": {"name": "c", "namespace": "x"}})");
  Write("notes.txt", "not yaml: [");
  Write("README.md", "# not a manifest");
  auto r = LoadManifestPaths({dir_.string()});
  ASSERT_TRUE(r) << r.error().front().ToString();
  ASSERT_EQ(r->cluster.pods.size(), 3u);
  EXPECT_EQ(r->cluster.pods[0].name, "a");
  EXPECT_EQ(r->cluster.pods[1].name, "b");
  EXPECT_EQ(r->cluster.pods[2].name, "c");
  EXPECT_EQ(r->cluster.pods[1].source.file, (dir_ / "b/pod.yaml").string());
}

TEST_F(ManifestPathsTest, AnExplicitFileLoadsWhateverItsExtension) {
  std::string f = Write("policy.txt", "kind: Namespace\nmetadata: {name: x}\n");
  auto r = LoadManifestPaths({f});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cluster.namespaces.size(), 1u);
}

TEST_F(ManifestPathsTest, DuplicatesAcrossFilesNameBothLocations) {
  std::string a = Write("a.yaml", "kind: Pod\nmetadata: {name: a, namespace: x}\n");
  std::string b = Write("b.yaml", "---\nkind: Pod\nmetadata: {name: a, namespace: x}\n");
  auto r = LoadManifestPaths({dir_.string()});
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().size(), 1u);
  EXPECT_EQ(r.error()[0].ToString(),
            b + ":2: Pod x/a: duplicate object: already defined at " + a + ":1");
  // The same file named twice is a duplicate too.
  EXPECT_FALSE(LoadManifestPaths({a, a}));
}

TEST_F(ManifestPathsTest, ErrorsFromEveryFileAreReported) {
  std::string a = Write("a.yaml", "kind: Pod\nmetadata: {name: A}\n");
  std::string b = Write("b.yaml", "kind: [\n");
  std::string missing = (dir_ / "missing.yaml").string();
  auto r = LoadManifestPaths({dir_.string(), missing});
  ASSERT_FALSE(r);
  std::vector<std::string> errors;
  for (const Error& e : r.error()) errors.push_back(e.ToString());
  EXPECT_THAT(errors, ElementsAre(missing + ": cannot read: No such file or directory",
                                  ::testing::StartsWith(a + ":2: Pod default/A: metadata.name: "),
                                  ::testing::StartsWith(b + ":2: YAML parse error: ")));
}

TEST_F(ManifestPathsTest, UnreadableFileIsAPreciseError) {
  if (::geteuid() == 0) {
    // root reads everything: check a directory entry that is not a regular file instead.
    std::string fifo = (dir_ / "fifo.yaml").string();
    auto r = LoadManifestPaths({(dir_ / "nope" / "x.yaml").string()});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error()[0].ToString(),
              (dir_ / "nope" / "x.yaml").string() + ": cannot read: No such file or directory");
    return;
  }
  std::string f = Write("secret.yaml", "kind: Pod\n");
  std::filesystem::permissions(f, std::filesystem::perms::none);
  auto r = LoadManifestPaths({f});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error()[0].ToString(), f + ": cannot read: Permission denied");
}

TEST_F(ManifestPathsTest, FileOverTheSizeLimitIsRefusedUnread) {
  const std::string pod = "kind: Pod\nmetadata: {name: a, namespace: x}\n";
  std::string f = Write("big.yaml", pod + "#" + std::string(100, 'x') + "\n");
  const uint64_t size = std::filesystem::file_size(f);
  LoadOptions options;
  options.max_file_bytes = size - 1;
  auto r = LoadManifestPaths({f}, options);
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().size(), 1u);
  EXPECT_EQ(r.error()[0].ToString(), f + ": too large: " + std::to_string(size) + " bytes (limit " +
                                         std::to_string(size - 1) + ")");
  options.max_file_bytes = size;  // exactly the limit is accepted
  auto ok = LoadManifestPaths({f}, options);
  ASSERT_TRUE(ok) << ok.error().front().ToString();
  EXPECT_EQ(ok->cluster.pods.size(), 1u);
}

TEST_F(ManifestPathsTest, NoPathsIsAnEmptyCluster) {
  auto r = LoadManifestPaths({});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->cluster.pods.empty());
}

}  // namespace
}  // namespace picket::config
