// control/matrix.h — the reachability matrix and the explanation of one connection.
//
// Owns: `picket-control matrix` and `explain` as pure functions over a compiled
// policy::ClusterPolicy (the same structure and evaluator the sidecar enforces with), and the
// matrix's two renderings. The JSON form is an interface other tools parse: keep it exact.
// Pure functions; any thread (the ClusterPolicy must not change meanwhile).
#pragma once

#include <cstdint>
#include <map>
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

// Pods made from workload templates by the offline commands: "ns/pod" → "Deployment ns/name".
using TemplatePods = std::map<std::string, std::string>;
// The template pods of `cluster` (those with template_of set).
[[nodiscard]] TemplatePods TemplatePodsOf(const config::Cluster& cluster);

// {"probes":[{"from":"x/a","to":"y/b","port":80,"protocol":"TCP","allowed":true},...]}
// With template pods, first "pods":[{"pod":"x/web-template","synthetic":true,
// "template_of":"Deployment x/web"},...] (only those pods; absent when there are none).
[[nodiscard]] std::string MatrixJson(const std::vector<Probe>& probes,
                                     const TemplatePods& templates = {});

// One grid per port/protocol: rows are sources, columns destinations; '.' allowed, 'X' denied,
// '-' the pod itself (as in the conformance files). Template pods are then listed, one a line:
// "x/web-template: synthetic, 192.0.2.1 (from Deployment x/web's template)".
[[nodiscard]] std::string MatrixTable(const policy::ClusterPolicy& cluster,
                                      const std::vector<uint16_t>& ports,
                                      const std::vector<config::Protocol>& protocols,
                                      const TemplatePods& templates = {});

// The explanation of one connection; the last line is `Final verdict: ALLOWED` or
// `Final verdict: DENIED`. A template pod is described as
// "x/web-template (synthetic pod, 192.0.2.1, from Deployment x/web's template)".
[[nodiscard]] std::string Explain(const policy::ClusterPolicy& cluster,
                                  const policy::ClusterPolicy::Endpoint& from,
                                  const policy::ClusterPolicy::Endpoint& to, uint16_t port,
                                  config::Protocol protocol, const TemplatePods& templates = {});

}  // namespace picket::control
