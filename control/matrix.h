// control/matrix.h — the reachability matrix and the explanation of one connection.
//
// Owns: `picket-control matrix` and `explain` as pure functions over a compiled
// policy::ClusterPolicy (the same structure and evaluator the sidecar enforces with), and the
// matrix's two renderings. The JSON form is an interface other tools parse: keep it exact.
// Pure functions; any thread (the ClusterPolicy must not change meanwhile).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/model.h"
#include "policy/cluster_policy.h"

namespace picket::control {

struct Probe {
  std::string from;  // "ns/pod"
  std::string to;
  uint16_t port = 0;
  config::Protocol protocol = config::Protocol::kTCP;
  bool allowed = false;
};

// Every ordered pair of pods (from != to, sorted by namespace then name) for each port, then
// each protocol, in the order given.
[[nodiscard]] std::vector<Probe> ComputeMatrix(const policy::ClusterPolicy& cluster,
                                               const std::vector<uint16_t>& ports,
                                               const std::vector<config::Protocol>& protocols);

// {"probes":[{"from":"x/a","to":"y/b","port":80,"protocol":"TCP","allowed":true},...]}
[[nodiscard]] std::string MatrixJson(const std::vector<Probe>& probes);

// One grid per port/protocol: rows are sources, columns destinations; '.' allowed, 'X' denied,
// '-' the pod itself (as in the conformance files).
[[nodiscard]] std::string MatrixTable(const policy::ClusterPolicy& cluster,
                                      const std::vector<uint16_t>& ports,
                                      const std::vector<config::Protocol>& protocols);

// The explanation of one connection; the last line is `Final verdict: ALLOWED` or
// `Final verdict: DENIED`.
[[nodiscard]] std::string Explain(const policy::ClusterPolicy& cluster,
                                  const policy::ClusterPolicy::Endpoint& from,
                                  const policy::ClusterPolicy::Endpoint& to, uint16_t port,
                                  config::Protocol protocol);

}  // namespace picket::control
