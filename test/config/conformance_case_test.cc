// Loads every case of ../shared/conformance/k8s-netpol/ through LoadConformanceCase: each must
// load without errors and be internally consistent (pods exist, tables are complete).
#include "config/conformance_case.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "test/util/shared_dir.h"

namespace picket::config {
namespace {

std::vector<std::string> CaseFiles() {
  std::string why;
  std::string shared = picket::test::SharedDir(&why);
  EXPECT_FALSE(shared.empty()) << why;
  std::vector<std::string> files;
  if (shared.empty()) return files;
  for (const auto& entry :
       std::filesystem::directory_iterator(shared + "/conformance/k8s-netpol")) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(ConformanceCaseTest, EveryUpstreamCaseLoads) {
  std::vector<std::string> files = CaseFiles();
  ASSERT_GE(files.size(), 20u);
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    auto loaded = LoadConformanceCase(file);
    if (!loaded) {
      std::ostringstream all;
      for (const Error& e : loaded.error()) all << e.ToString() << "\n";
      ADD_FAILURE() << all.str();
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
      std::string key = std::to_string(probe.port) + "/" + ProtocolName(probe.protocol);
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

}  // namespace
}  // namespace picket::config
