// control/xds_snapshot.h — the cluster model → the resources the control server pushes.
//
// Owns: the compiled cluster (policy::ClusterPolicy) and what has been published from it: one
// AddressEntry per pod and one PodPolicy per pod (control/PROTOCOL.md §5), each versioned by a
// hash of its encoded text so an unchanged resource is never resent.
//
// "Recompute only what a change affects": when only pods changed (no Namespace or
// NetworkPolicy), the pods are added/removed incrementally (ClusterPolicy::AddPod/RemovePod),
// only their address entries are republished, and pod policies are recomputed once per
// identity and republished only for identities whose rules changed (a new label combination can
// join a selector's identity set). Anything else recompiles the cluster; the server still pushes
// only resources whose version changed.
//
// Scoped pushes (control/PROTOCOL.md §6.1): the address map is a scoped type. Each entry is
// tagged with its pod's identity id and one tag per named port it has; each pod's scope holds the
// identities its own rules can match (every identity set an isolating rule names, and its own
// identity, for the pod itself), plus the named-port tags of egress rules whose named port must
// resolve on a destination no selector names (`to` an ipBlock, or no `to`). A pod no policy
// isolates gets an empty scope. Pods with equal scopes share one scope object. Peers outside the
// scope cannot change any verdict of the pod: a selector never matches them, and an ipBlock
// matches their address as it matches any address.
//
// The service map (control/service_map.h) is one resource per Service, pushed to every sidecar;
// it is recomputed on every SetCluster (Services or pods may have changed) and only entries
// whose encoded text changed are republished.
//
// Loop-thread only (it calls XdsServer::Update).
#pragma once

#include <expected>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/error.h"
#include "config/model.h"
#include "control/xds_server.h"
#include "policy/cluster_policy.h"

namespace picket::control {

struct SnapshotStats {
  uint64_t full_compiles = 0;
  uint64_t incremental_updates = 0;
  uint64_t address_entries_published = 0;  // upserts + removals
  uint64_t pod_policies_published = 0;
  uint64_t services_published = 0;  // upserts + removals
  double last_compute_ms = 0;
};

class XdsSnapshot {
 public:
  explicit XdsSnapshot(XdsServer& server) : server_(server) {}

  // Replaces the whole cluster. `pods_only`: the caller knows that no Namespace or
  // NetworkPolicy changed since the last call (the incremental path is then allowed). On error
  // nothing changes (the last good state keeps serving).
  [[nodiscard]] std::expected<void, config::Errors> SetCluster(const config::Cluster& cluster,
                                                               bool pods_only = false);

  const SnapshotStats& stats() const { return stats_; }
  const policy::ClusterPolicy* compiled() const { return compiled_.get(); }
  // The rules published for pod "ns/name" (its identity's: `ns`, `pod` and `host_ips` empty,
  // and `identity_sets` not kept: entries name their ports and peer kinds, not the peers), or
  // nullptr when no PodPolicy is published for it. Valid until the next SetCluster.
  const policy::PodPolicy* PublishedRules(const std::string& pod) const;

 private:
  // Adds/removes the changed pods; false (with `errors` when they are the reason) when the
  // full path must run instead.
  bool TryIncremental(const config::Cluster& cluster, config::Errors& errors);
  void PublishAddressEntries(const std::vector<std::string>& names);
  // `all`: every pod's policy is encoded again (the server still drops unchanged versions);
  // otherwise only pods whose identity's rules changed, that are new to their identity, or are
  // in `changed` (sorted "ns/name": the pod's own fields changed, e.g. its node's addresses).
  void PublishPodPolicies(bool all, const std::vector<std::string>& changed);
  void PublishServiceMap(const config::Cluster& cluster);
  // Pod churn that neither creates nor frees an identity: publishes only the churned pods' own
  // policies from the cached per-identity rules. False when that does not apply.
  bool PublishChurnedPodPolicies(const std::vector<std::string>& removed,
                                 const std::vector<std::string>& added);

  // An address entry's tags: its identity id, and a tag per named port (kPortTagBase + n).
  std::vector<uint32_t> TagsOf(const policy::AddressEntry& entry);
  uint32_t PortTag(const std::string& name, config::Protocol protocol);
  // The scope of the pods of identity `self` whose rules are `rules`: null when not isolated.
  // An equal scope already in use is returned as that object (the server's fast path).
  ScopePtr ScopeFor(policy::IdentityId self, const policy::PodPolicy& rules);

  static constexpr uint32_t kPortTagBase = 0x80000000u;

  XdsServer& server_;
  std::unique_ptr<policy::ClusterPolicy> compiled_;
  config::Cluster cluster_;  // the last applied model
  // Per identity: the last published rules (ns/pod cleared), to skip identities that did not
  // change: their version (of the whole encoding), and the rules without identity sets.
  struct IdentityRules {
    std::string version;
    policy::PodPolicy rules;
  };
  std::map<policy::IdentityId, IdentityRules> identity_policies_;
  std::map<std::string, policy::IdentityId> pod_identity_;  // "ns/name" → identity published
  std::vector<std::string> published_pods_;                 // names with a published PodPolicy
  std::map<std::string, std::string> service_versions_;     // "ns/name" → published version
  std::map<std::pair<std::string, config::Protocol>, uint32_t> port_tags_;
  std::map<policy::IdentityId, ScopePtr> identity_scopes_;          // current, per identity
  std::unordered_map<uint64_t, std::vector<ScopePtr>> scope_pool_;  // by Hash(): in use
  SnapshotStats stats_;
};

// A stable fingerprint of a pod's fields that matter for policy (labels, IPs, host IPs,
// ports, ...).
std::string PodFingerprint(const config::Pod& pod);

}  // namespace picket::control
