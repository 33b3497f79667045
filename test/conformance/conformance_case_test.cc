// Loads every case of test/conformance/cases/ through LoadConformanceCase: each must load without
// errors and be internally consistent (pods exist, tables are complete).
#include "test/conformance/conformance_case.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace picket::test {
namespace {

using config::Namespace;
using config::Pod;

TEST(ConformanceCaseTest, EveryCaseLoads) {
  auto files = ConformanceCaseFiles();
  ASSERT_TRUE(files) << files.error().ToString();
  ASSERT_GE(files->size(), 25u) << "20 upstream cases and 5 of the project's";
  for (const std::string& file : *files) {
    SCOPED_TRACE(file);
    auto loaded = LoadConformanceCase(file);
    if (!loaded) {
      ADD_FAILURE() << base::ToString(loaded.error());
      continue;
    }
    const ConformanceCase& c = *loaded;
    EXPECT_FALSE(c.name.empty());
    EXPECT_EQ(c.pods.size(), 9u);
    EXPECT_EQ(c.cluster.namespaces.size(), 3u);
    EXPECT_EQ(c.cluster.pods.size(), 9u);
    EXPECT_FALSE(c.cluster.policies.empty());
    ASSERT_FALSE(c.probes.empty());
    std::set<std::string> pod_names;
    for (const Pod& pod : c.cluster.pods) {
      pod_names.insert(pod.ns + "/" + pod.name);
      EXPECT_EQ(pod.ips.size(), 1u);
      EXPECT_EQ(pod.ports.size(), 6u);
    }
    for (const std::string& p : c.pods) EXPECT_TRUE(pod_names.contains(p)) << p;
    for (const ConformanceProbe& probe : c.probes) {
      std::string key = std::to_string(probe.port) + "/" + config::ProtocolName(probe.protocol);
      auto table = c.expected.find(key);
      ASSERT_NE(table, c.expected.end()) << key;
      EXPECT_EQ(table->second.size(), 9u) << key;
      for (const auto& [from, row] : table->second) {
        EXPECT_TRUE(pod_names.contains(from)) << from;
        EXPECT_EQ(row.size(), 9u * 2 - 1) << from << ": '" << row << "'";
      }
    }
    for (const Namespace& ns : c.cluster.namespaces) {
      EXPECT_EQ(ns.labels.at("kubernetes.io/metadata.name"), ns.name);
    }
  }
}

TEST(ConformanceCaseTest, MissingFileIsAnError) {
  auto loaded = LoadConformanceCase("/nonexistent/case.yaml");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().front().ToString(), "/nonexistent/case.yaml: cannot read");
}

// A temporary case file under the test's private directory; removed by the fixture.
class CaseFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/case.yaml";
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
};

// A manifest error names the case file and the line of the manifest in it.
TEST_F(CaseFileTest, ManifestErrorsKeepTheCaseFileLines) {
  const std::string path = Write(
      "name: bad\n"                            // 1
      "pods: [x/a]\n"                          // 2
      "probes: [{port: 80}]\n"                 // 3
      "manifests:\n"                           // 4
      "- apiVersion: v1\n"                     // 5
      "  kind: Namespace\n"                    // 6
      "  metadata: {name: x}\n"                // 7
      "- apiVersion: networking.k8s.io/v1\n"   // 8
      "  kind: NetworkPolicy\n"                // 9
      "  metadata: {name: p, namespace: x}\n"  // 10
      "  spec:\n"                              // 11
      "    ingress:\n"                         // 12
      "    - ports:\n"                         // 13
      "      - port: 0\n");                    // 14
  auto loaded = LoadConformanceCase(path);
  ASSERT_FALSE(loaded);
  ASSERT_EQ(loaded.error().size(), 1u) << base::ToString(loaded.error());
  EXPECT_EQ(loaded.error()[0].file, path);
  EXPECT_EQ(loaded.error()[0].line, 14);
  EXPECT_EQ(loaded.error()[0].field, "spec.ingress[0].ports[0].port");
}

TEST_F(CaseFileTest, ManifestsMustBeTheLastKey) {
  auto loaded = LoadConformanceCase(Write("manifests:\n- kind: Namespace\nname: late\n"));
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error()[0].reason, "must be the last top-level key of the case file");
}

TEST_F(CaseFileTest, WrapperErrorsAreReportedTogether) {
  auto loaded =
      LoadConformanceCase(Write("pods: x\nprobes: [{port: 0, protocol: tcp}]\nmanifests: []\n"));
  ASSERT_FALSE(loaded);
  std::set<std::string> fields;
  for (const config::Error& e : loaded.error()) fields.insert(e.field);
  EXPECT_EQ(fields, (std::set<std::string>{"name", "pods", "probes[0].port", "probes[0].protocol",
                                           "manifests"}))
      << base::ToString(loaded.error());
}

}  // namespace
}  // namespace picket::test
