// Conformance: every case of test/conformance/cases/ (the upstream suite's cases, transcribed,
// and the project's own, see cases/README.md) must produce exactly the upstream truth table, for
// every probe
// (TCP, UDP and SCTP: the engine decides them all even though the proxy relays only TCP).
// The table is computed by control::ComputeMatrix, the code behind `picket-control matrix`, and
// every cell is also decided by the two pods' sidecar snapshots (encoded, decoded) — which must
// agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "control/matrix.h"
#include "policy/cluster_policy.h"
#include "policy/endpoint_policy.h"
#include "test/conformance/conformance_case.h"

namespace picket {
namespace {

// Checks one case file; returns the number of probes (cells) compared.
size_t CheckCase(const std::string& path) {
  SCOPED_TRACE(path);
  auto loaded = test::LoadConformanceCase(path);
  if (!loaded) {
    for (const config::Error& e : loaded.error()) ADD_FAILURE() << e.ToString();
    return 0;
  }
  auto compiled = policy::ClusterPolicy::Compile(loaded->cluster);
  if (!compiled) {
    for (const config::Error& e : compiled.error()) ADD_FAILURE() << e.ToString();
    return 0;
  }
  // The sidecar's view of the same cluster: each pod's snapshot, through its text form.
  std::map<std::string, policy::EndpointPolicyPtr> snapshots;
  for (const policy::PodEntry* pod : (*compiled)->Pods()) {
    auto built =
        policy::BuildEndpointPolicy((*compiled)->AddressMap(), (*compiled)->PodPolicyOf(*pod));
    if (!built) {
      ADD_FAILURE() << "snapshot of " << pod->ns << "/" << pod->name;
      return 0;
    }
    auto decoded = policy::DecodeEndpointPolicy((*built)->Encode(), "snapshot");
    if (!decoded) {
      ADD_FAILURE() << decoded.error()[0].ToString();
      return 0;
    }
    snapshots[pod->ns + "/" + pod->name] = *decoded;
  }
  auto address_of = [&](const std::string& name) {
    const size_t slash = name.find('/');
    return (*compiled)->FindPodEntry(name.substr(0, slash), name.substr(slash + 1))->ips.at(0);
  };
  size_t cells = 0;
  for (const test::ConformanceProbe& probe : loaded->probes) {
    const std::string key = std::to_string(probe.port) + "/" + config::ProtocolName(probe.protocol);
    auto expected = loaded->expected.find(key);
    if (expected == loaded->expected.end()) {
      ADD_FAILURE() << "no expected table for probe " << key;
      continue;
    }
    std::map<std::pair<std::string, std::string>, bool> allowed;
    for (const control::Probe& p :
         control::ComputeMatrix(**compiled, {probe.port}, {probe.protocol})) {
      allowed[{p.from, p.to}] = p.allowed;
    }
    std::string want_table, got_table;
    for (const std::string& from : loaded->pods) {
      std::string row;
      for (const std::string& to : loaded->pods) {
        if (!row.empty()) row += ' ';
        if (from == to) {
          row += '-';
          continue;
        }
        auto it = allowed.find({from, to});
        if (it == allowed.end()) {
          ADD_FAILURE() << "matrix has no probe " << from << " -> " << to;
          row += '?';
          continue;
        }
        row += it->second ? '.' : 'X';
        ++cells;
        // Enforcement agrees: source egress AND destination ingress, each on its own snapshot.
        const bool sidecars =
            snapshots.at(from)->CheckEgress(address_of(to), probe.port, probe.protocol).allowed &&
            snapshots.at(to)->CheckIngress(address_of(from), probe.port, probe.protocol).allowed;
        EXPECT_EQ(sidecars, it->second) << from << " -> " << to << " " << key;
      }
      auto want = expected->second.find(from);
      const std::string want_row = want == expected->second.end() ? "<missing>" : want->second;
      want_table += "    " + from + ": " + want_row + "\n";
      got_table += "    " + from + ": " + row + "\n";
    }
    EXPECT_EQ(got_table, want_table) << "probe " << key << " of " << loaded->name;
  }
  return cells;
}

// Cases whose name starts with a digit 0 come from the upstream suite; 1xx are the project's.
TEST(K8sNetpolConformanceTest, EveryCaseMatchesUpstream) {
  auto files = test::ConformanceCaseFiles();
  ASSERT_TRUE(files) << files.error().ToString();
  size_t upstream = 0;
  for (const std::string& f : *files) {
    if (std::filesystem::path(f).filename().string().starts_with("0")) ++upstream;
  }
  ASSERT_GE(upstream, 20u) << "expected the 20 upstream cases";
  ASSERT_GE(files->size(), upstream + 5) << "expected the project's 5 cases";
  size_t cells = 0;
  for (const std::string& f : *files) {
    const size_t case_cells = CheckCase(f);
    EXPECT_GE(case_cells, 72u) << f << ": every case has at least one 9x9 probe table";
    cells += case_cells;
  }
  EXPECT_GT(cells, files->size() * 72);
}

}  // namespace
}  // namespace picket
