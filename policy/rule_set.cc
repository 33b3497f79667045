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

void MembershipTable::Add(IdentityId id, uint32_t set) {
  const size_t end = (static_cast<size_t>(id) + 1) * words_;
  if (end > bits_.size()) bits_.resize(end, 0);
  bits_[static_cast<size_t>(id) * words_ + set / 64] |= uint64_t{1} << (set % 64);
}

void MembershipTable::Clear(IdentityId id) {
  const size_t begin = static_cast<size_t>(id) * words_;
  if (begin < bits_.size()) std::fill_n(bits_.begin() + begin, words_, 0);
}

const char* DirectionName(Direction d) { return d == Direction::kIngress ? "ingress" : "egress"; }

namespace {

// ipBlock matches any address in cidr and not in an except, pod IPs included.
bool InBlock(const IpPrefix& cidr, std::span<const IpPrefix> except, const IpAddress* address) {
  if (address == nullptr || !cidr.Contains(*address)) return false;
  for (const IpPrefix& e : except) {
    if (e.Contains(*address)) return false;
  }
  return true;
}

bool PeerMatches(const PeerMatch& m, const PeerView& peer) {
  switch (m.kind) {
    case PeerMatch::Kind::kAny:
      return true;
    case PeerMatch::Kind::kIdentities:
      return InSet(peer.sets, m.identity_set);
    case PeerMatch::Kind::kCidr:
      return InBlock(m.cidr, m.except, peer.address);
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
  std::vector<uint32_t> all_ports;
  std::vector<std::pair<uint32_t, uint32_t>> single;  // (protocol << 16 | port, entry)
  std::array<std::vector<uint32_t>, 3> ranges;        // per protocol, first < last
  std::vector<std::pair<RuleIndex::NamedBucket, std::vector<uint32_t>>> named;
  std::unordered_map<uint64_t, std::vector<uint32_t>> seen;
  for (uint32_t i = 0; i < entries.size(); ++i) {
    std::vector<uint32_t>& same_hash = seen[MatchHash(entries[i])];
    if (std::any_of(same_hash.begin(), same_hash.end(),
                    [&](uint32_t j) { return SameMatch(entries[j], entries[i]); }))
      continue;
    same_hash.push_back(i);
    index.distinct.push_back(i);
    const PortMatch& m = entries[i].port;
    switch (m.kind) {
      case PortMatch::Kind::kAll:
        all_ports.push_back(i);
        break;
      case PortMatch::Kind::kRange:
        if (m.first == m.last) {
          single.emplace_back((static_cast<uint32_t>(m.protocol) << 16) | m.first, i);
        } else {
          ranges[static_cast<size_t>(m.protocol)].push_back(i);
        }
        break;
      case PortMatch::Kind::kNamed: {
        auto it = std::find_if(named.begin(), named.end(), [&](const auto& b) {
          return b.first.protocol == m.protocol && b.first.name == m.name;
        });
        if (it == named.end()) {
          named.push_back({{m.name, m.protocol, 0, 0}, {}});
          it = named.end() - 1;
        }
        it->second.push_back(i);
        break;
      }
    }
  }
  std::sort(single.begin(), single.end());
  std::vector<RuleIndex::Cidr> cidrs;
  std::vector<IpPrefix> excepts;
  auto cidr_of = [&](const PeerMatch& m) {  // index into cidrs; each ipBlock once
    for (uint32_t i = 0; i < cidrs.size(); ++i) {
      const RuleIndex::Cidr& c = cidrs[i];
      if (c.cidr == m.cidr &&
          std::equal(excepts.begin() + c.except_begin, excepts.begin() + c.except_end,
                     m.except.begin(), m.except.end()))
        return i;
    }
    const auto begin = static_cast<uint32_t>(excepts.size());
    excepts.insert(excepts.end(), m.except.begin(), m.except.end());
    cidrs.push_back({m.cidr, begin, static_cast<uint32_t>(excepts.size())});
    return static_cast<uint32_t>(cidrs.size() - 1);
  };
  std::vector<RuleIndex::Candidate> candidates;
  auto add = [&](uint32_t i) {
    const RuleEntry& e = entries[i];
    const uint32_t peer_data = e.peer.kind == PeerMatch::Kind::kIdentities ? e.peer.identity_set
                               : e.peer.kind == PeerMatch::Kind::kCidr     ? cidr_of(e.peer)
                                                                           : 0;
    candidates.push_back(RuleIndex::Candidate{
        i, peer_data, (static_cast<uint32_t>(e.port.protocol) << 16) | e.port.first, e.port.last,
        e.peer.kind});
  };
  auto end = [&] { return static_cast<uint32_t>(candidates.size()); };
  for (uint32_t i : all_ports) add(i);
  index.all_ports_end = end();
  for (const auto& [key, i] : single) add(i);
  for (size_t p = 0; p < ranges.size(); ++p) {
    index.ranges[p] = end();
    for (uint32_t i : ranges[p]) add(i);
  }
  index.ranges[3] = end();
  std::vector<RuleIndex::NamedBucket> buckets;
  for (auto& [bucket, members] : named) {
    bucket.begin = end();
    for (uint32_t i : members) add(i);
    bucket.end = end();
    buckets.push_back(std::move(bucket));
  }
  index.candidates = InlineArray<RuleIndex::Candidate, 8>(std::move(candidates));
  index.named = InlineArray<RuleIndex::NamedBucket, 2>(std::move(buckets));
  index.cidrs = InlineArray<RuleIndex::Cidr, 2>(std::move(cidrs));
  index.excepts = InlineArray<IpPrefix, 4>(std::move(excepts));
  index.built = true;
}

DirectionVerdict Evaluate(const DirectionRules& rules, const PeerView& peer, uint16_t port,
                          config::Protocol protocol, std::span<const NamedPort> destination_ports,
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
    // Only candidates whose port/protocol can match are tested; their peers decide.
    const RuleIndex& index = rules.index;
    const std::span<const RuleIndex::Candidate> candidates = index.candidates.view();
    auto peer_matches = [&](const RuleIndex::Candidate& c) {
      switch (c.peer) {
        case PeerMatch::Kind::kAny:
          return true;
        case PeerMatch::Kind::kIdentities:
          return InSet(peer.sets, c.peer_data);
        case PeerMatch::Kind::kCidr: {
          const RuleIndex::Cidr& block = index.cidrs.view()[c.peer_data];
          return InBlock(block.cidr,
                         index.excepts.view().subspan(block.except_begin,
                                                      block.except_end - block.except_begin),
                         peer.address);
        }
      }
      return false;
    };
    // The first candidate of [begin, end) whose port (`in_port`) and peer match.
    auto first_allowing = [&](uint32_t begin, uint32_t end, auto in_port) -> const RuleEntry* {
      for (uint32_t i = begin; i < end; ++i) {
        if (in_port(candidates[i]) && peer_matches(candidates[i])) {
          return &rules.entries[candidates[i].entry];
        }
      }
      return nullptr;
    };
    auto any_port = [](const RuleIndex::Candidate&) { return true; };
    const RuleEntry* match = first_allowing(0, index.all_ports_end, any_port);
    if (match == nullptr) {
      const uint32_t key = (static_cast<uint32_t>(protocol) << 16) | port;
      auto below = [](const RuleIndex::Candidate& c, uint32_t k) { return c.key < k; };
      const auto base = candidates.begin();
      const auto from =
          std::lower_bound(base + index.all_ports_end, base + index.ranges[0], key, below);
      const auto to = std::lower_bound(from, base + index.ranges[0], key + 1, below);
      match = first_allowing(static_cast<uint32_t>(from - base), static_cast<uint32_t>(to - base),
                             any_port);
    }
    if (match == nullptr) {
      const size_t p = static_cast<size_t>(protocol);
      match = first_allowing(index.ranges[p], index.ranges[p + 1],
                             [port](const RuleIndex::Candidate& c) {
                               return port >= (c.key & 0xffff) && port <= c.last;
                             });
    }
    if (match == nullptr && index.ranges[3] < candidates.size()) {  // some named ports
      for (const NamedPort& p : destination_ports) {
        if (p.port != port || p.protocol != protocol) continue;
        for (const RuleIndex::NamedBucket& b : index.named.view()) {
          if (b.protocol == protocol && b.name == p.name) {
            match = first_allowing(b.begin, b.end, any_port);
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
  // The near miss. Entries indexed away match exactly as the first of their kind, so they can
  // change neither the outcome nor the closest entry: with the index, the distinct ones suffice.
  auto visit = [&](const RuleEntry& e) {
    const bool peer_ok = PeerMatches(e.peer, peer);
    const bool port_ok = PortMatches(e.port, port, protocol, destination_ports);
    if (peer_ok && port_ok) {
      v.allowed = true;
      v.matched = &e;
      v.miss = DirectionVerdict::Miss::kNone;
      v.near_miss = nullptr;
      return true;
    }
    if (peer_ok && v.miss != DirectionVerdict::Miss::kPort) {
      v.miss = DirectionVerdict::Miss::kPort;
      v.near_miss = &e;
    } else if (port_ok && v.miss == DirectionVerdict::Miss::kNone) {
      v.miss = DirectionVerdict::Miss::kPeer;
      v.near_miss = &e;
    }
    return false;
  };
  if (rules.index.built) {
    for (uint32_t i : rules.index.distinct) {
      if (visit(rules.entries[i])) break;
    }
  } else {
    for (const RuleEntry& e : rules.entries) {
      if (visit(e)) break;
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
