// control/unprotected.h — pods a NetworkPolicy selects but no sidecar enforces.
//
// Owns: which pods the current NetworkPolicies select (namespace/name → the policies selecting
// it, and since when it has been selected), recomputed on every applied cluster state, and the
// list of those without a connected sidecar. Kubernetes says a selected pod is isolated; with
// Picket that holds only while its sidecar runs, so a selected pod with no xDS stream of its
// identity (a pod that opted out, lost its sidecar, or was never injected) is reported on the
// control server's /status and counted in its metrics.
//
// A pod counts as protected while a stream with its identity is connected, and for `grace_ms`
// after its last stream closed or after it became selected (a sidecar reconnecting, a control
// server restart, a pod starting). `since` is when the gap began (the later of the two).
// hostNetwork pods are never selected (Kubernetes docs, Network Policies: NetworkPolicy and
// hostNetwork pods) and never listed.
//
// Loop-thread only; times are the caller's monotonic milliseconds.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/model.h"

namespace picket::control {

struct UnprotectedPod {
  std::string pod;                    // "ns/name"
  std::vector<std::string> policies;  // "ns/name" of each NetworkPolicy selecting it, sorted
  uint64_t since_ms = 0;              // when the gap began (caller's clock)
};

class UnprotectedPods {
 public:
  explicit UnprotectedPods(uint64_t grace_ms) : grace_ms_(grace_ms) {}

  // The cluster state just applied, at `now_ms`. A pod selected before keeps its `since`.
  void SetCluster(const config::Cluster& cluster, uint64_t now_ms);

  // The selected pods without protection at `now_ms`, sorted by name. `connected`: pods with a
  // stream now; `last_disconnect_ms`: when each pod's last stream closed.
  std::vector<UnprotectedPod> List(
      const std::set<std::string>& connected,
      const std::map<std::string, uint64_t, std::less<>>& last_disconnect_ms,
      uint64_t now_ms) const;

  size_t selected_count() const { return selected_.size(); }

 private:
  struct Selected {
    std::vector<std::string> policies;
    uint64_t since_ms = 0;
  };
  uint64_t grace_ms_;
  std::map<std::string, Selected, std::less<>> selected_;
};

}  // namespace picket::control
