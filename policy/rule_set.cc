// policy/rule_set.cc — the single evaluator of compiled rules.
#include "policy/rule_set.h"

#include <algorithm>
#include <functional>
#include <unordered_map>

namespace picket::policy {

void IdentitySet::Add(IdentityId id) {
  const size_t word = id / 64;
  if (word >= words_.size()) words_.resize(word + 1, 0);
  words_[word] |= uint64_t{1} << (id % 64);
}

void IdentitySet::Remove(IdentityId id) {
  const size_t word = id / 64;
  if (word < words_.size()) words_[word] &= ~(uint64_t{1} << (id % 64));
  while (!words_.empty() && words_.back() == 0) words_.pop_back();
}

std::vector<IdentityId> IdentitySet::ToVector() const {
  std::vector<IdentityId> out;
  for (size_t w = 0; w < words_.size(); ++w) {
    for (uint64_t bits = words_[w]; bits != 0; bits &= bits - 1) {
      out.push_back(static_cast<IdentityId>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits))));
    }
  }
  return out;
}

const char* DirectionName(Direction d) { return d == Direction::kIngress ? "ingress" : "egress"; }

namespace {

bool PeerMatches(const PeerMatch& m, std::span<const IdentitySet> sets, const PeerView& peer) {
  switch (m.kind) {
    case PeerMatch::Kind::kAny:
      return true;
    case PeerMatch::Kind::kIdentities:
      return peer.identity != kNoIdentity && m.identity_set < sets.size() &&
             sets[m.identity_set].Contains(peer.identity);
    case PeerMatch::Kind::kCidr:
      // ipBlock matches any address in cidr and not in an except, pod IPs included.
      if (peer.address == nullptr || !m.cidr.Contains(*peer.address)) return false;
      for (const IpPrefix& e : m.except) {
        if (e.Contains(*peer.address)) return false;
      }
      return true;
  }
  return false;
}

bool PortMatches(const PortMatch& m, uint16_t port, config::Protocol protocol,
                 std::span<const NamedPort> destination_ports) {
  switch (m.kind) {
    case PortMatch::Kind::kAll:
      return true;
    case PortMatch::Kind::kRange:
      return m.protocol == protocol && port >= m.first && port <= m.last;
    case PortMatch::Kind::kNamed:
      // A named port matches when the destination pod has a container port with that name,
      // that number and that protocol (kube-network-policies `evaluatePorts`).
      if (m.protocol != protocol) return false;
      for (const NamedPort& p : destination_ports) {
        if (p.port == port && p.protocol == protocol && p.name == m.name) return true;
      }
      return false;
  }
  return false;
}

}  // namespace

namespace {

// Entries that match exactly the same (peer, port) — common when several policies repeat a
// rule — are indexed once (the first, for provenance): lookups stay flat as policies grow.
uint64_t MatchHash(const RuleEntry& e) {
  uint64_t h = static_cast<uint64_t>(e.peer.kind) * 0x9e3779b97f4a7c15ull;
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 0xbf58476d1ce4e5b9ull; };
  mix(e.peer.identity_set);
  if (e.peer.kind == PeerMatch::Kind::kCidr) {
    mix(IpAddressHash()(e.peer.cidr.address) + e.peer.cidr.length);
    for (const IpPrefix& x : e.peer.except) mix(IpAddressHash()(x.address) + x.length);
  }
  mix(static_cast<uint64_t>(e.port.kind) << 40 | static_cast<uint64_t>(e.port.protocol) << 32 |
      static_cast<uint64_t>(e.port.first) << 16 | e.port.last);
  mix(std::hash<std::string>()(e.port.name));
  return h;
}

bool SameMatch(const RuleEntry& a, const RuleEntry& b) {
  return a.peer.kind == b.peer.kind && a.peer.identity_set == b.peer.identity_set &&
         (a.peer.kind != PeerMatch::Kind::kCidr ||
          (a.peer.cidr == b.peer.cidr && a.peer.except == b.peer.except)) &&
         a.port == b.port;
}

}  // namespace

void DirectionRules::BuildIndex() {
  index = RuleIndex{};
  std::unordered_map<uint64_t, std::vector<uint32_t>> seen;
  for (uint32_t i = 0; i < entries.size(); ++i) {
    std::vector<uint32_t>& same_hash = seen[MatchHash(entries[i])];
    if (std::any_of(same_hash.begin(), same_hash.end(),
                    [&](uint32_t j) { return SameMatch(entries[j], entries[i]); }))
      continue;
    same_hash.push_back(i);
    const PortMatch& m = entries[i].port;
    switch (m.kind) {
      case PortMatch::Kind::kAll:
        index.all_ports.push_back(i);
        break;
      case PortMatch::Kind::kRange:
        if (m.first == m.last) {
          index.single.emplace_back((static_cast<uint32_t>(m.protocol) << 16) | m.first, i);
        } else {
          index.ranges[static_cast<size_t>(m.protocol)].push_back(i);
        }
        break;
      case PortMatch::Kind::kNamed: {
        auto it = std::find_if(index.named.begin(), index.named.end(), [&](const auto& b) {
          return b.protocol == m.protocol && b.name == m.name;
        });
        if (it == index.named.end()) {
          index.named.push_back({m.name, m.protocol, {}});
          it = index.named.end() - 1;
        }
        it->entries.push_back(i);
        break;
      }
    }
  }
  std::sort(index.single.begin(), index.single.end());
  index.built = true;
}

DirectionVerdict Evaluate(const DirectionRules& rules, std::span<const IdentitySet> identity_sets,
                          const PeerView& peer, uint16_t port, config::Protocol protocol,
                          std::span<const NamedPort> destination_ports,
                          std::span<const IpAddress> own_node, bool explain) {
  DirectionVerdict v;
  v.isolated = rules.isolated;
  if (!rules.isolated) {
    v.allowed = true;
    return v;
  }
  if (peer.address != nullptr) {
    // The pod's own node (kubelet probes): always allowed in, before any rule is looked at.
    for (const IpAddress& node : own_node) {
      if (node == *peer.address) {
        v.allowed = true;
        v.own_node = &node;
        return v;
      }
    }
  }
  if (rules.index.built) {
    // Only entries whose port/protocol can match are candidates; their peers decide.
    auto first_allowing = [&](const std::vector<uint32_t>& candidates) -> const RuleEntry* {
      for (uint32_t i : candidates) {
        const RuleEntry& e = rules.entries[i];
        if (PeerMatches(e.peer, identity_sets, peer) &&
            PortMatches(e.port, port, protocol, destination_ports))
          return &e;
      }
      return nullptr;
    };
    const RuleIndex& index = rules.index;
    const RuleEntry* match = first_allowing(index.all_ports);
    if (match == nullptr) {
      const uint32_t key = (static_cast<uint32_t>(protocol) << 16) | port;
      auto it = std::lower_bound(index.single.begin(), index.single.end(),
                                 std::pair<uint32_t, uint32_t>{key, 0});
      for (; it != index.single.end() && it->first == key && match == nullptr; ++it) {
        const RuleEntry& e = rules.entries[it->second];
        if (PeerMatches(e.peer, identity_sets, peer)) match = &e;
      }
    }
    if (match == nullptr) match = first_allowing(index.ranges[static_cast<size_t>(protocol)]);
    if (match == nullptr && !index.named.empty()) {
      for (const NamedPort& p : destination_ports) {
        if (p.port != port || p.protocol != protocol) continue;
        for (const RuleIndex::NamedBucket& b : index.named) {
          if (b.protocol == protocol && b.name == p.name) {
            match = first_allowing(b.entries);
            if (match != nullptr) break;
          }
        }
        if (match != nullptr) break;
      }
    }
    if (match != nullptr) {
      v.allowed = true;
      v.matched = match;
      return v;
    }
    if (!explain) return v;
  }
  for (const RuleEntry& e : rules.entries) {
    const bool peer_ok = PeerMatches(e.peer, identity_sets, peer);
    const bool port_ok = PortMatches(e.port, port, protocol, destination_ports);
    if (peer_ok && port_ok) {
      v.allowed = true;
      v.matched = &e;
      v.miss = DirectionVerdict::Miss::kNone;
      v.near_miss = nullptr;
      return v;
    }
    if (peer_ok && v.miss != DirectionVerdict::Miss::kPort) {
      v.miss = DirectionVerdict::Miss::kPort;
      v.near_miss = &e;
    } else if (port_ok && v.miss == DirectionVerdict::Miss::kNone) {
      v.miss = DirectionVerdict::Miss::kPeer;
      v.near_miss = &e;
    }
  }
  return v;
}

std::string DescribePort(const PortMatch& port) {
  const std::string proto = config::ProtocolName(port.protocol);
  switch (port.kind) {
    case PortMatch::Kind::kAll:
      return "all ports and protocols";
    case PortMatch::Kind::kRange:
      if (port.first == 0 && port.last == 65535) return "all " + proto + " ports";
      if (port.first == port.last) return proto + "/" + std::to_string(port.first);
      return proto + "/" + std::to_string(port.first) + "-" + std::to_string(port.last);
    case PortMatch::Kind::kNamed:
      return proto + "/" + port.name + " (named port)";
  }
  return "?";
}

std::string DescribePeer(const PeerMatch& peer) {
  switch (peer.kind) {
    case PeerMatch::Kind::kAny:
      return "any peer";
    case PeerMatch::Kind::kIdentities:
      return peer.description.empty() ? "identity set " + std::to_string(peer.identity_set)
                                      : peer.description;
    case PeerMatch::Kind::kCidr: {
      std::string out = "ipBlock " + peer.cidr.ToString();
      for (size_t i = 0; i < peer.except.size(); ++i) {
        out += (i == 0 ? " except " : ",") + peer.except[i].ToString();
      }
      return out;
    }
  }
  return "?";
}

std::string DescribeEntry(const DirectionRules& rules, const RuleEntry& entry,
                          Direction direction) {
  std::string policy = entry.policy < rules.policies.size() ? rules.policies[entry.policy] : "?";
  return policy + " " + DirectionName(direction) + " rule " + std::to_string(entry.rule) +
         (direction == Direction::kIngress ? ": from " : ": to ") + DescribePeer(entry.peer) +
         ", port " + DescribePort(entry.port);
}

std::string DescribeOwnNode(const IpAddress& node) {
  return "allowed: from the pod's own node " + node.ToString() + " (always allowed into the pod)";
}

std::string DescribeVerdict(const DirectionRules& rules, const DirectionVerdict& verdict,
                            Direction direction) {
  if (!verdict.isolated) {
    return std::string("not isolated for ") + DirectionName(direction) + " (no policy selects it)";
  }
  if (verdict.allowed && verdict.own_node != nullptr) {
    return DescribeOwnNode(*verdict.own_node);
  }
  if (verdict.allowed && verdict.matched != nullptr) {
    return "allowed by " + DescribeEntry(rules, *verdict.matched, direction);
  }
  std::string out = "no rule of ";
  for (size_t i = 0; i < rules.policies.size(); ++i) out += (i ? ", " : "") + rules.policies[i];
  out += " matched";
  if (verdict.near_miss != nullptr) {
    out += "; closest: " + DescribeEntry(rules, *verdict.near_miss, direction) +
           (verdict.miss == DirectionVerdict::Miss::kPeer ? " (peer did not match)"
                                                          : " (port/protocol did not match)");
  } else if (rules.entries.empty()) {
    out += " (they have no " + std::string(DirectionName(direction)) + " rules: deny all)";
  }
  return out;
}

}  // namespace picket::policy
