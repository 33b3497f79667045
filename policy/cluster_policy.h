// policy/cluster_policy.h — the cluster-wide policy compiler and its lookup structure.
//
// Owns: the compiled state of one cluster: identities (one per distinct namespace + pod labels),
// the peer selectors of every policy with the identity set each one matches (a selector cache,
// as Cilium's) and, per identity, the selectors it matches (the membership row lookups test),
// each identity's flat ingress/egress rules (policy/rule_set.h), and the address map (pod IP →
// the pod and its identity). From it come the verdict of a connection between any two
// endpoints (for `matrix` and `explain`) and the per-pod snapshot pieces a sidecar enforces
// (policy/endpoint_policy.h). All decisions go through policy::Evaluate: no second evaluator.
//
// Incremental: AddPod/RemovePod touch only the address map and identity membership (both the
// selector sets and the identity's row); a pod with a new label combination costs one evaluation
// of each selector and of its namespace's policies.
// Policy or namespace changes need a new Compile.
//
// Thread-compatible: const methods may run concurrently; mutations need exclusive access and
// invalidate every Endpoint and pointer previously returned.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/error.h"
#include "config/model.h"
#include "policy/address_table.h"
#include "policy/endpoint_policy.h"
#include "policy/ip_address.h"
#include "policy/rule_set.h"

namespace picket::policy {

// One pod as the compiler knows it. What a lookup reads of its destination pod (named ports,
// node addresses) comes first, together.
struct PodEntry {
  IdentityId identity = kNoIdentity;  // kNoIdentity for hostNetwork pods
  // hostNetwork pods are node IPs: never selected as subject or peer (Kubernetes docs, Network
  // Policies, "NetworkPolicy and hostNetwork pods": the common behaviour).
  bool host_network = false;
  std::vector<NamedPort> named_ports;
  // The addresses of the pod's node (status.hostIPs): always allowed in (Kubernetes docs,
  // Network Policies: traffic from the pod's node is always allowed).
  std::vector<IpAddress> host_ips;
  std::string ns;
  std::string name;
  config::Labels labels;
  std::vector<IpAddress> ips;
};

class ClusterPolicy {
 public:
  // One end of a connection: a pod (pod != nullptr), or an address that is no enforced pod
  // (an external IP, a node, a hostNetwork pod).
  struct Endpoint {
    const PodEntry* pod = nullptr;
    std::optional<IpAddress> address;
    std::string name;  // "ns/pod" or the address, for output
  };

  struct SideVerdict {
    bool enforced = false;  // the side is a pod whose policy applies
    const DirectionRules* rules = nullptr;
    DirectionVerdict verdict;
  };

  struct Verdict {
    bool allowed = false;
    bool self = false;    // a pod to itself: always allowed, not checked
    SideVerdict egress;   // the source pod's egress
    SideVerdict ingress;  // the destination pod's ingress
  };

  // Compiles everything. Errors: unparsable pod or host IPs or CIDRs, duplicate pods, an IP owned
  // by two (non-hostNetwork) pods.
  //
  // Identity ids are never reused within one ClusterPolicy (a freed id could otherwise be read
  // with another label set's meaning by a sidecar holding an older resource). With `previous`,
  // a label set keeps the id it had there and new ones get ids above all of previous's, so a
  // recompile (policy change) leaves unchanged address entries unchanged.
  [[nodiscard]] static std::expected<std::unique_ptr<ClusterPolicy>, config::Errors> Compile(
      const config::Cluster& cluster, const ClusterPolicy* previous = nullptr);

  ClusterPolicy(const ClusterPolicy&) = delete;
  ClusterPolicy& operator=(const ClusterPolicy&) = delete;
  ~ClusterPolicy();

  // Adds a pod (error if it exists, an IP or host IP is unparsable, or an IP is taken) / removes
  // one.
  [[nodiscard]] std::expected<void, config::Error> AddPod(const config::Pod& pod);
  bool RemovePod(std::string_view ns, std::string_view name);

  // "ns/name" → endpoint (address = the pod's first IP), or nullopt if no such pod.
  [[nodiscard]] std::optional<Endpoint> FindPod(std::string_view ns, std::string_view name) const;
  // An address → the pod owning it, else an unenforced endpoint.
  [[nodiscard]] Endpoint FindAddress(const IpAddress& address) const;

  // May `src` open `protocol` to `dst`:`port`? Allowed iff the source's egress and the
  // destination's ingress both allow ("A connection pod A -> pod B needs A's egress and B's
  // ingress to allow it"); a side that is not a pod is not checked. The destination's ingress
  // always allows its own node's addresses (ingress.verdict.own_node says so).
  [[nodiscard]] Verdict Check(const Endpoint& src, const Endpoint& dst, uint16_t port,
                              config::Protocol protocol) const;

  // The hot path (what a data plane does per connection): both addresses through the address
  // hash, then each known side's rules. No allocation. Same verdict as Check on the same
  // addresses.
  [[nodiscard]] bool Allowed(const IpAddress& src, const IpAddress& dst, uint16_t port,
                             config::Protocol protocol) const;

  // Every pod, sorted by namespace then name.
  [[nodiscard]] std::vector<const PodEntry*> Pods() const;
  [[nodiscard]] const PodEntry* FindPodEntry(std::string_view ns, std::string_view name) const;
  [[nodiscard]] const DirectionRules* Rules(const PodEntry& pod, Direction direction) const;

  // Snapshot pieces (policy/endpoint_policy.h): every non-hostNetwork pod's address entry,
  // sorted; one pod's address entry; one pod's policy (its rules and its node's addresses).
  [[nodiscard]] std::vector<AddressEntry> AddressMap() const;
  [[nodiscard]] AddressEntry AddressEntryOf(const PodEntry& pod) const;
  [[nodiscard]] PodPolicy PodPolicyOf(const PodEntry& pod) const;

  size_t identity_count() const;
  size_t selector_count() const;

 private:
  struct Identity;
  struct Selector;
  struct CompiledPolicy;

  ClusterPolicy();
  std::expected<void, config::Errors> AddPolicy(const config::NetworkPolicy& policy);
  uint32_t InternSelector(Selector selector);
  bool SelectorMatches(const Selector& selector, const Identity& identity) const;
  const config::Labels& NamespaceLabels(const std::string& ns) const;
  std::expected<PodEntry*, config::Error> InsertPod(const config::Pod& pod);
  void IndexAddresses(const PodEntry& pod);
  IdentityId AcquireIdentity(const PodEntry& pod, bool* created);
  void CompileIdentity(IdentityId id);
  void EvaluateSelectorsFor(IdentityId id);

  std::unordered_map<std::string, config::Labels> namespaces_;
  std::vector<CompiledPolicy> policies_;
  std::unordered_map<std::string, std::vector<uint32_t>> policies_by_ns_;
  std::vector<Selector> selectors_;
  std::vector<IdentitySet> selector_sets_;  // parallel to selectors_
  MembershipTable memberships_;             // the same, per identity: what lookups test
  std::unordered_map<std::string, uint32_t> selector_index_;
  std::vector<Identity> identities_;
  std::unordered_map<std::string, IdentityId> previous_ids_;  // from Compile's `previous`
  IdentityId next_identity_ = 0;
  size_t live_identities_ = 0;
  std::unordered_map<std::string, IdentityId> identity_index_;
  std::unordered_map<std::string, std::unique_ptr<PodEntry>> pods_;  // by "ns/name"
  // A pod's address → the pod and its identity: the source side of a lookup reads no PodEntry.
  struct AddressOwner {
    const PodEntry* pod = nullptr;
    IdentityId identity = kNoIdentity;
  };
  AddressTable<AddressOwner> addresses_;
};

}  // namespace picket::policy
