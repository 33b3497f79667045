// policy/rule_set.h — the flat, compiled form of one pod's rules in one direction, and the ONE
// evaluator every consumer uses (sidecar enforcement, `matrix`, `explain`, the flow log's why).
//
// Owns: identity ids and identity sets, the flat rule entries (peer × port, each remembering
// the policy and rule that produced it) and `Evaluate`. A `DirectionRules` is produced by
// `ClusterPolicy` (policy/cluster_policy.h) or decoded from a pushed resource; it references
// identity sets by index into a table its owner keeps next to it, and a lookup tests a peer by
// the row of that table's transpose (`SetMembership`) the owner keeps for the peer's identity.
// Plain values; `Evaluate` is a pure function (any thread, no allocation on the allow path).
#pragma once

#include <algorithm>
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

// The identity sets one identity is in: bit s is set iff the identity is in identity set s (the
// owner's table, transposed). A lookup tests all of a rule set's identity peers against this one
// short row of the peer's (one cache line up to 512 sets), not against one bitset per set.
using SetMembership = std::span<const uint64_t>;
inline bool InSet(SetMembership sets, uint32_t set) {
  const size_t word = set / 64;
  return word < sets.size() && (sets[word] >> (set % 64)) & 1;
}

// A SetMembership row per identity id, in one array. `sets`: how many identity sets there are.
class MembershipTable {
 public:
  explicit MembershipTable(size_t sets = 0) : words_((sets + 63) / 64) {}
  SetMembership Row(IdentityId id) const {
    if (id == kNoIdentity || (static_cast<size_t>(id) + 1) * words_ > bits_.size()) return {};
    return SetMembership(bits_.data() + static_cast<size_t>(id) * words_, words_);
  }
  void Add(IdentityId id, uint32_t set);  // set < sets
  void Clear(IdentityId id);

 private:
  size_t words_;
  std::vector<uint64_t> bits_;
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

// Up to N values stored in place, more on the heap: a lookup's read of its rules brings the few
// values most rule sets have along, with no pointer to chase. Immutable once built.
template <typename T, size_t N>
class InlineArray {
 public:
  InlineArray() = default;
  explicit InlineArray(std::vector<T> values) : size_(static_cast<uint32_t>(values.size())) {
    if (values.size() <= N) {
      std::move(values.begin(), values.end(), inline_.begin());
    } else {
      heap_ = std::move(values);
    }
  }
  std::span<const T> view() const { return {size_ <= N ? inline_.data() : heap_.data(), size_}; }

 private:
  uint32_t size_ = 0;  // next to the values in place: one read finds both
  std::array<T, N> inline_{};
  std::vector<T> heap_;
};

// An index of DirectionRules::entries by port, so a lookup only looks at the entries whose
// port/protocol can match (flat as policies grow), then tests their peers. Entries that match
// exactly the same (peer, port), common when several policies repeat a rule, are indexed once
// (the first, for provenance). The buckets are ranges of one array of candidates that carry what
// a lookup tests, so a lookup reads no RuleEntry but the one it returns; the candidates, named
// buckets and ipBlocks of a typical rule set are stored in the index itself.
struct RuleIndex {
  struct Candidate {
    uint32_t entry = 0;      // index into DirectionRules::entries
    uint32_t peer_data = 0;  // kIdentities: PeerMatch::identity_set; kCidr: index into `cidrs`
    uint32_t key = 0;        // protocol << 16 | first port (PortMatch::kRange)
    uint16_t last = 0;       // last port (PortMatch::kRange)
    PeerMatch::Kind peer = PeerMatch::Kind::kAny;
  };
  // An ipBlock: `cidr` minus excepts[except_begin, except_end).
  struct Cidr {
    IpPrefix cidr;
    uint32_t except_begin = 0;
    uint32_t except_end = 0;
  };
  struct NamedBucket {
    std::string name;
    config::Protocol protocol = config::Protocol::kTCP;
    uint32_t begin = 0;  // candidates [begin, end)
    uint32_t end = 0;
  };
  // What a lookup reads comes first, in the order it reads it (next to DirectionRules::isolated):
  // the bucket bounds, the candidates, the ipBlocks; the named buckets (strings) after them.
  bool built = false;
  // In lookup order: every port (PortMatch::kAll) [0, all_ports_end); single ports sorted by
  // (key, entry) [all_ports_end, ranges[0]); port ranges of protocol p [ranges[p], ranges[p+1]);
  // then the named buckets', from ranges[3]. Within a bucket, entries keep their order.
  uint32_t all_ports_end = 0;
  std::array<uint32_t, 4> ranges{};
  InlineArray<Candidate, 8> candidates;
  InlineArray<Cidr, 2> cidrs;  // each distinct ipBlock once
  InlineArray<IpPrefix, 4> excepts;
  InlineArray<NamedBucket, 2> named;
  std::vector<uint32_t> distinct;  // the indexed entries, in entries order (the explain pass)
};

struct DirectionRules {
  // "A pod becomes isolated for ingress (egress) when at least one NetworkPolicy selects it and
  // has Ingress (Egress) in policyTypes" (Kubernetes docs, Network Policies).
  bool isolated = false;
  RuleIndex index;                    // derived from entries by BuildIndex(); not part of equality
  std::vector<std::string> policies;  // "ns/name" of every policy isolating the pod this way
  std::vector<RuleEntry> entries;

  void BuildIndex();
  friend bool operator==(const DirectionRules& a, const DirectionRules& b) {
    return a.isolated == b.isolated && a.policies == b.policies && a.entries == b.entries;
  }
};

// What the evaluator knows about the other end of the connection.
struct PeerView {
  SetMembership sets;                  // the peer identity's row; empty when no known pod
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

// Decides one direction. PeerMatch::identity_set is tested against `peer.sets`;
// `destination_ports` are the named container ports of the connection's destination pod (the
// subject itself for ingress, the peer for egress; empty when the destination is not a pod).
// `own_node`, for ingress only: the addresses of the node the subject pod runs on. "Traffic from
// the pod's own node is always allowed into an ingress-isolated pod" (Kubernetes docs; kubelet
// probes come from there), so a peer address among them is allowed whatever the rules say.
// Egress callers pass {}: traffic to the node is policed like any other.
// Uses rules.index when built. `explain`: on a deny, also find the near miss (a scan of the
// distinct entries, or of every entry without the index); the data-plane fast path passes false.
[[nodiscard]] DirectionVerdict Evaluate(const DirectionRules& rules, const PeerView& peer,
                                        uint16_t port, config::Protocol protocol,
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
