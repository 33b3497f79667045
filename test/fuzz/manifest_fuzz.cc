// libFuzzer target: arbitrary bytes through LoadManifestText, both CIDR modes. The loader must
// never crash, never let an exception escape, and stay bounded on alias-heavy input; when it
// succeeds, its output must satisfy the model's invariants. Build and run with
// test/fuzz/build.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/manifest_loader.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckCluster(const picket::config::Cluster& cluster) {
  for (const auto& ns : cluster.namespaces) {
    Check(!ns.name.empty());
    Check(ns.labels.at("kubernetes.io/metadata.name") == ns.name);
  }
  for (const auto& pod : cluster.pods) {
    Check(!pod.ns.empty() && !pod.name.empty());
    for (const auto& port : pod.ports) Check(port.container_port != 0);
  }
  for (const auto& policy : cluster.policies) {
    Check(!policy.ns.empty() && !policy.name.empty());
    Check(policy.policy_types_ingress || policy.policy_types_egress);
    for (const auto* rules : {&policy.ingress, &policy.egress}) {
      for (const auto& rule : *rules) {
        for (const auto& port : rule.ports) {
          if (port.end_port) {
            Check(std::holds_alternative<uint16_t>(port.port));
            Check(*port.end_port >= std::get<uint16_t>(port.port));
          }
        }
        for (const auto& peer : rule.peers) {
          Check(peer.pod_selector || peer.namespace_selector || peer.ip_block);
          Check(!peer.ip_block || (!peer.pod_selector && !peer.namespace_selector));
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool strict : {false, true}) {
    picket::config::LoadOptions options;
    options.strict_cidr = strict;
    auto result = picket::config::LoadManifestText(text, "fuzz.yaml", options);
    if (result) {
      CheckCluster(result->cluster);
    } else {
      Check(!result.error().empty());
      for (const auto& e : result.error()) Check(!e.ToString().empty());
    }
  }
  return 0;
}
