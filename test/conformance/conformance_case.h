// test/conformance/conformance_case.h — the conformance-case files of test/conformance/cases/.
//
// Owns: reading one case file (a wrapper, not a manifest; the format is in cases/README.md):
// its `name`, the `pods` order, the `probes` (port, protocol), the `expected` truth table and
// its `manifests` list. The manifests go through config::LoadManifestText unchanged (the same
// decode, validation and defaulting as any user's file, with the case file's own line numbers),
// so a case tests the real loader, not a second one.
//
// Test-only. Pure functions (they read files); callable from any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <vector>

#include "config/error.h"
#include "config/manifest_loader.h"
#include "config/model.h"

namespace picket::test {

struct ConformanceProbe {
  uint16_t port = 0;
  config::Protocol protocol = config::Protocol::kTCP;
};

struct ConformanceCase {
  std::string name;
  std::vector<std::string> pods;  // "ns/name", the column (and row) order of `expected`
  std::vector<ConformanceProbe> probes;
  // "<port>/<PROTOCOL>" → from pod ("ns/name") → one cell per destination in `pods` order,
  // space-separated: '.' allowed, 'X' blocked, '-' the pod itself (not checked).
  std::map<std::string, std::map<std::string, std::string>> expected;
  config::Cluster cluster;
};

// Loads `path`; every problem (file, wrapper fields, manifests) is reported in one go.
[[nodiscard]] std::expected<ConformanceCase, config::Errors> LoadConformanceCase(
    const std::string& path, const config::LoadOptions& options = {});

// The case files (`*.yaml` of test/conformance/cases/, a `data` dependency of the test) in the
// test's runfiles, sorted by name; an Error when not run under `bazel test` or the folder is
// unreadable.
[[nodiscard]] std::expected<std::vector<std::string>, config::Error> ConformanceCaseFiles();

}  // namespace picket::test
