// policy/rule_set.h — the flat, compiled form of one pod's rules in one direction, and the ONE
// evaluator every consumer uses (sidecar enforcement, `matrix`, `explain`, the flow log's why).
//
// Owns: identity ids and identity sets, the flat rule entries (peer × port, each remembering
// the policy and rule that produced it) and `Evaluate`. A `DirectionRules` is produced by
// `ClusterPolicy` (policy/cluster_policy.h) or decoded from a pushed resource; it references
// identity sets by index into a table its owner keeps next to it.
// Plain values; `Evaluate` is a pure function (any thread, no allocation on the allow path).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "config/model.h"
#include "policy/ip_address.h"

namespace picket::policy {

// An id per distinct (namespace, pod labels): pods sharing both share every policy decision
// except named-port resolution, which is per pod (a named port resolves against the destination
// pod's own container ports, Kubernetes API reference, NetworkPolicyPort).
using IdentityId = uint32_t;
inline constexpr IdentityId kNoIdentity = UINT32_MAX;  // not a known pod (world, node, hostNetwork)

// A set of identity ids as a bitset: membership is one load and a mask.
class IdentitySet {
 public:
  void Add(IdentityId id);
  void Remove(IdentityId id);
  bool Contains(IdentityId id) const {
    const size_t word = id / 64;
    return word < words_.size() && (words_[word] >> (id % 64)) & 1;
  }
  std::vector<IdentityId> ToVector() const;  // ascending
  friend bool operator==(const IdentitySet&, const IdentitySet&) = default;

 private:
  std::vector<uint64_t> words_;
};

// A container port that has a name, for named-port resolution.
struct NamedPort {
  std::string name;
  uint16_t port = 0;
  config::Protocol protocol = config::Protocol::kTCP;
  friend bool operator==(const NamedPort&, const NamedPort&) = default;
};

enum class Direction : uint8_t { kIngress, kEgress };
const char* DirectionName(Direction d);  // "ingress" / "egress"

struct PeerMatch {
  enum class Kind : uint8_t {
    kAny,         // the rule has no from/to: "this rule matches all sources/destinations"
    kIdentities,  // pod/namespace selectors, resolved to an identity set
    kCidr,        // ipBlock: cidr minus excepts, matched on the raw address (pod IPs too)
  };
  Kind kind = Kind::kAny;
  uint32_t identity_set = 0;  // kIdentities: index into the owner's identity-set table
  IpPrefix cidr;
  std::vector<IpPrefix> except;
  std::string description;  // e.g. `namespaceSelector {ns=y} podSelector {pod=b}`
  friend bool operator==(const PeerMatch&, const PeerMatch&) = default;
};

struct PortMatch {
  enum class Kind : uint8_t {
    kAll,    // the rule has no ports: every port of every protocol
    kRange,  // protocol + [first, last] inclusive (a port without endPort has first == last;
             // a NetworkPolicyPort without `port` is [0, 65535] of its protocol)
    kNamed,  // protocol + a container-port name, resolved on the destination pod
  };
  Kind kind = Kind::kAll;
  config::Protocol protocol = config::Protocol::kTCP;
  uint16_t first = 0;
  uint16_t last = 0;
  std::string name;
  friend bool operator==(const PortMatch&, const PortMatch&) = default;
};

struct RuleEntry {
  PeerMatch peer;
  PortMatch port;
  uint32_t policy = 0;  // index into DirectionRules::policies
  uint32_t rule = 0;    // index of the rule in the policy's ingress/egress list
  friend bool operator==(const RuleEntry&, const RuleEntry&) = default;
};

// An index of DirectionRules::entries by port, so a lookup only looks at the entries whose
// port/protocol can match (flat as policies grow), then tests their peers.
struct RuleIndex {
  struct NamedBucket {
    std::string name;
    config::Protocol protocol = config::Protocol::kTCP;
    std::vector<uint32_t> entries;
  };
  bool built = false;
  std::vector<uint32_t> all_ports;  // PortMatch::kAll
  // (protocol << 16 | port, entry) sorted: one contiguous binary search per lookup.
  std::vector<std::pair<uint32_t, uint32_t>> single;
  std::array<std::vector<uint32_t>, 3> ranges;  // per protocol, first < last
  std::vector<NamedBucket> named;               // PortMatch::kNamed
};

struct DirectionRules {
  // "A pod becomes isolated for ingress (egress) when at least one NetworkPolicy selects it and
  // has Ingress (Egress) in policyTypes" (Kubernetes docs, Network Policies).
  bool isolated = false;
  std::vector<std::string> policies;  // "ns/name" of every policy isolating the pod this way
  std::vector<RuleEntry> entries;
  RuleIndex index;  // derived from entries by BuildIndex(); not part of equality

  void BuildIndex();
  friend bool operator==(const DirectionRules& a, const DirectionRules& b) {
    return a.isolated == b.isolated && a.policies == b.policies && a.entries == b.entries;
  }
};

// What the evaluator knows about the other end of the connection.
struct PeerView {
  IdentityId identity = kNoIdentity;
  const IpAddress* address = nullptr;  // null when the peer pod has no IP
};

struct DirectionVerdict {
  bool allowed = false;
  bool isolated = false;
  const RuleEntry* matched = nullptr;  // the first entry that allowed (null when not isolated)
  // When denied: the closest entry and the part of it that failed. An entry whose peer matched
  // but whose port/protocol did not is closer than one whose port matched but peer did not.
  enum class Miss : uint8_t { kNone, kPeer, kPort };
  Miss miss = Miss::kNone;
  const RuleEntry* near_miss = nullptr;
  // Allowed without a rule because the peer is the subject pod's own node (an element of
  // Evaluate's `own_node`); null otherwise.
  const IpAddress* own_node = nullptr;
};

// Decides one direction. `identity_sets` is the table PeerMatch::identity_set indexes into;
// `destination_ports` are the named container ports of the connection's destination pod (the
// subject itself for ingress, the peer for egress; empty when the destination is not a pod).
// `own_node`, for ingress only: the addresses of the node the subject pod runs on. "Traffic from
// the pod's own node is always allowed into an ingress-isolated pod" (Kubernetes docs; kubelet
// probes come from there), so a peer address among them is allowed whatever the rules say.
// Egress callers pass {}: traffic to the node is policed like any other.
// Uses rules.index when built. `explain`: on a deny, also find the near miss (a scan of every
// entry); the data-plane fast path passes false.
[[nodiscard]] DirectionVerdict Evaluate(const DirectionRules& rules,
                                        std::span<const IdentitySet> identity_sets,
                                        const PeerView& peer, uint16_t port,
                                        config::Protocol protocol,
                                        std::span<const NamedPort> destination_ports,
                                        std::span<const IpAddress> own_node, bool explain = true);

// One line for `explain` and flow logs: `x/allow-80 ingress rule 0: from <peer>, port TCP/80`.
[[nodiscard]] std::string DescribeEntry(const DirectionRules& rules, const RuleEntry& entry,
                                        Direction direction);
// Why `verdict` came out as it did, in one line: "not isolated for ingress", "allowed by <entry>",
// "allowed: from the pod's own node 10.0.0.5 (always allowed into the pod)", or
// "no rule of x/p, x/q matched; closest: <entry> (port/protocol did not match)".
[[nodiscard]] std::string DescribeVerdict(const DirectionRules& rules,
                                          const DirectionVerdict& verdict, Direction direction);
// The allow line of a connection from the subject pod's own node `node`.
[[nodiscard]] std::string DescribeOwnNode(const IpAddress& node);
[[nodiscard]] std::string DescribePort(const PortMatch& port);
[[nodiscard]] std::string DescribePeer(const PeerMatch& peer);

}  // namespace picket::policy
