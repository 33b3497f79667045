// control/unprotected.cc — see unprotected.h.
#include "control/unprotected.h"

#include <algorithm>
#include <utility>

#include "policy/selector.h"

namespace picket::control {

void UnprotectedPods::SetCluster(const config::Cluster& cluster, uint64_t now_ms) {
  // Policies by namespace: "the podSelector selects pods in the policy's namespace".
  std::map<std::string, std::vector<const config::NetworkPolicy*>, std::less<>> by_ns;
  for (const auto& p : cluster.policies) by_ns[p.ns].push_back(&p);
  std::map<std::string, Selected, std::less<>> next;
  for (const config::Pod& pod : cluster.pods) {
    if (pod.host_network) continue;
    auto ns = by_ns.find(pod.ns);
    if (ns == by_ns.end()) continue;
    std::vector<std::string> policies;
    for (const config::NetworkPolicy* p : ns->second) {
      if (policy::Matches(p->pod_selector, pod.labels)) policies.push_back(p->ns + "/" + p->name);
    }
    if (policies.empty()) continue;
    std::sort(policies.begin(), policies.end());
    const std::string name = pod.ns + "/" + pod.name;
    auto before = selected_.find(name);
    next[name] = {std::move(policies),
                  before != selected_.end() ? before->second.since_ms : now_ms};
  }
  selected_ = std::move(next);
}

std::vector<UnprotectedPod> UnprotectedPods::List(
    const std::set<std::string>& connected,
    const std::map<std::string, uint64_t, std::less<>>& last_disconnect_ms, uint64_t now_ms) const {
  std::vector<UnprotectedPod> out;
  for (const auto& [name, selected] : selected_) {
    if (connected.contains(name)) continue;
    uint64_t since = selected.since_ms;
    if (auto gone = last_disconnect_ms.find(name); gone != last_disconnect_ms.end()) {
      since = std::max(since, gone->second);
    }
    if (now_ms < since + grace_ms_) continue;
    out.push_back({name, selected.policies, since});
  }
  return out;
}

}  // namespace picket::control
