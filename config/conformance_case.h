// config/conformance_case.h — the conformance-case files of ../shared/conformance/k8s-netpol/.
//
// Owns: reading one case file (a wrapper, not a manifest): its `name`, the `pods` order, the
// `probes` (port, protocol), the `expected` truth table and its `manifests` list, which is
// decoded, validated and defaulted exactly as LoadManifestText would (same code path).
// Pure functions; callable from any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <vector>

#include "config/error.h"
#include "config/manifest_loader.h"
#include "config/model.h"

namespace picket::config {

struct ConformanceProbe {
  uint16_t port = 0;
  Protocol protocol = Protocol::kTCP;
};

struct ConformanceCase {
  std::string name;
  std::vector<std::string> pods;  // "ns/name", the column (and row) order of `expected`
  std::vector<ConformanceProbe> probes;
  // "<port>/<PROTOCOL>" → from pod ("ns/name") → one cell per destination in `pods` order,
  // space-separated: '.' allowed, 'X' blocked, '-' the pod itself (not checked).
  std::map<std::string, std::map<std::string, std::string>> expected;
  Cluster cluster;
};

// Loads `path`; every problem (file, wrapper fields, manifests) is reported in one go.
[[nodiscard]] std::expected<ConformanceCase, Errors> LoadConformanceCase(
    const std::string& path, const LoadOptions& options = {});

}  // namespace picket::config
