// The port index and the membership rows change how Evaluate looks, never what it answers:
// random rule sets (duplicates, every peer and port kind, more candidates and named buckets than
// the index keeps in place) against the plain definitions — the first entry in bucket order
// whose port and peer match, peers tested against the identity-set table itself.
#include "policy/rule_set.h"

#include <gtest/gtest.h>

#include <random>

namespace picket::policy {
namespace {

using config::Protocol;

constexpr int kSets = 70;  // more than one word of a membership row
constexpr IdentityId kIdentities = 12;
const char* const kNames[] = {"http", "dns", "metrics", "grpc"};
const uint16_t kPorts[] = {53, 80, 81, 443, 8080};

IpPrefix Prefix(const char* text) { return *IpPrefix::Parse(text); }
IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

PeerMatch RandomPeer(std::mt19937& rng) {
  PeerMatch m;
  switch (rng() % 3) {
    case 0:
      break;
    case 1:
      m.kind = PeerMatch::Kind::kIdentities;
      m.identity_set = rng() % (kSets + 2);  // a few past the table: never match
      break;
    default:
      m.kind = PeerMatch::Kind::kCidr;
      m.cidr = Prefix(rng() % 2 ? "10.0.0.0/8" : "0.0.0.0/0");
      if (rng() % 2) m.except.push_back(Prefix("10.1.0.0/16"));
      break;
  }
  return m;
}

PortMatch RandomPort(std::mt19937& rng) {
  PortMatch m;
  m.protocol = static_cast<Protocol>(rng() % 3);
  switch (rng() % 4) {
    case 0:
      m = PortMatch{};
      break;
    case 1:
      m.kind = PortMatch::Kind::kRange;
      m.first = m.last = kPorts[rng() % std::size(kPorts)];
      break;
    case 2:
      m.kind = PortMatch::Kind::kRange;
      m.first = rng() % 2 ? 0 : 80;
      m.last = rng() % 2 ? 443 : 65535;
      break;
    default:
      m.kind = PortMatch::Kind::kNamed;
      m.name = kNames[rng() % std::size(kNames)];
      break;
  }
  return m;
}

DirectionRules RandomRules(std::mt19937& rng) {
  DirectionRules rules;
  rules.isolated = rng() % 8 != 0;
  rules.policies = {"x/a", "x/b", "x/c"};
  const size_t n = rng() % 24;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && rng() % 3 == 0) {
      RuleEntry copy = rules.entries[rng() % i];  // the same match from another policy
      copy.policy = static_cast<uint32_t>(rng() % 3);
      rules.entries.push_back(copy);
    } else {
      rules.entries.push_back(RuleEntry{RandomPeer(rng), RandomPort(rng),
                                        static_cast<uint32_t>(rng() % 3),
                                        static_cast<uint32_t>(i)});
    }
  }
  return rules;
}

struct Peer {
  IdentityId identity = kNoIdentity;
  IpAddress address;
};

bool PlainPeerMatches(const PeerMatch& m, const std::vector<IdentitySet>& sets, const Peer& peer) {
  switch (m.kind) {
    case PeerMatch::Kind::kAny:
      return true;
    case PeerMatch::Kind::kIdentities:
      return peer.identity != kNoIdentity && m.identity_set < sets.size() &&
             sets[m.identity_set].Contains(peer.identity);
    case PeerMatch::Kind::kCidr:
      if (!m.cidr.Contains(peer.address)) return false;
      for (const IpPrefix& e : m.except) {
        if (e.Contains(peer.address)) return false;
      }
      return true;
  }
  return false;
}

// The entry the indexed lookup allows by: buckets in order (every port, the single port, port
// ranges, named ports in the destination's order), entries in order within each.
const RuleEntry* PlainMatch(const DirectionRules& rules, const std::vector<IdentitySet>& sets,
                            const Peer& peer, uint16_t port, Protocol protocol,
                            std::span<const NamedPort> destination_ports) {
  auto first = [&](auto in_bucket) -> const RuleEntry* {
    for (const RuleEntry& e : rules.entries) {
      if (in_bucket(e.port) && PlainPeerMatches(e.peer, sets, peer)) return &e;
    }
    return nullptr;
  };
  const RuleEntry* match =
      first([](const PortMatch& m) { return m.kind == PortMatch::Kind::kAll; });
  if (match == nullptr) {
    match = first([&](const PortMatch& m) {
      return m.kind == PortMatch::Kind::kRange && m.first == m.last && m.protocol == protocol &&
             m.first == port;
    });
  }
  if (match == nullptr) {
    match = first([&](const PortMatch& m) {
      return m.kind == PortMatch::Kind::kRange && m.first < m.last && m.protocol == protocol &&
             port >= m.first && port <= m.last;
    });
  }
  for (const NamedPort& p : destination_ports) {
    if (match != nullptr) break;
    if (p.port != port || p.protocol != protocol) continue;
    match = first([&](const PortMatch& m) {
      return m.kind == PortMatch::Kind::kNamed && m.protocol == protocol && m.name == p.name;
    });
  }
  return match;
}

TEST(RuleSetTest, IndexedLookupAnswersAsThePlainDefinition) {
  std::mt19937 rng(7);
  const IpAddress addresses[] = {Ip("10.0.0.1"), Ip("10.1.2.3"), Ip("192.0.2.1"), Ip("fd00::1")};
  size_t allowed = 0, denied = 0, spilled = 0;
  for (int round = 0; round < 300; ++round) {
    // The identity-set table and its transpose, as an owner keeps them.
    std::vector<IdentitySet> sets(kSets);
    MembershipTable rows(kSets);
    for (uint32_t s = 0; s < kSets; ++s) {
      for (IdentityId id = 0; id < kIdentities; ++id) {
        if (rng() % 3 == 0) {
          sets[s].Add(id);
          rows.Add(id, s);
        }
      }
    }
    DirectionRules indexed = RandomRules(rng);
    indexed.BuildIndex();
    const DirectionRules plain = [&] {
      DirectionRules copy = indexed;
      copy.index = RuleIndex{};  // not built: the scan of every entry
      return copy;
    }();
    spilled += indexed.index.candidates.view().size() > 8;
    for (int q = 0; q < 60; ++q) {
      Peer peer;
      if (rng() % 4 != 0) peer.identity = static_cast<IdentityId>(rng() % (kIdentities + 2));
      peer.address = addresses[rng() % std::size(addresses)];
      const PeerView view{rows.Row(peer.identity), &peer.address};
      const uint16_t port = kPorts[rng() % std::size(kPorts)];
      const Protocol protocol = static_cast<Protocol>(rng() % 3);
      std::vector<NamedPort> ports;
      for (const char* name : kNames) {
        if (rng() % 2) {
          ports.push_back(
              {name, kPorts[rng() % std::size(kPorts)], static_cast<Protocol>(rng() % 2)});
        }
      }
      SCOPED_TRACE(::testing::Message() << "round " << round << " query " << q);
      const DirectionVerdict v = Evaluate(indexed, view, port, protocol, ports, {});
      const DirectionVerdict fast = Evaluate(indexed, view, port, protocol, ports, {}, false);
      const DirectionVerdict scan = Evaluate(plain, view, port, protocol, ports, {});
      ASSERT_EQ(v.isolated, indexed.isolated);
      ASSERT_EQ(v.allowed, scan.allowed);
      ASSERT_EQ(fast.allowed, v.allowed);
      ASSERT_EQ(fast.matched, v.matched);
      if (!indexed.isolated) continue;
      if (v.allowed) {
        ++allowed;
        ASSERT_EQ(v.matched, PlainMatch(indexed, sets, peer, port, protocol, ports));
      } else {
        ++denied;
        // The near miss of the distinct entries is the near miss of them all.
        ASSERT_EQ(v.miss, scan.miss);
        const auto at = [](const DirectionRules& r, const RuleEntry* e) {
          return e == nullptr ? -1 : e - r.entries.data();
        };
        ASSERT_EQ(at(indexed, v.near_miss), at(plain, scan.near_miss));
      }
    }
  }
  EXPECT_GT(allowed, 1000u);
  EXPECT_GT(denied, 1000u);
  EXPECT_GT(spilled, 10u) << "rule sets with more candidates than the index keeps in place";
}

TEST(RuleSetTest, MembershipRows) {
  MembershipTable rows(130);
  rows.Add(3, 0);
  rows.Add(3, 129);
  rows.Add(5, 64);
  EXPECT_TRUE(InSet(rows.Row(3), 0));
  EXPECT_TRUE(InSet(rows.Row(3), 129));
  EXPECT_FALSE(InSet(rows.Row(3), 64));
  EXPECT_FALSE(InSet(rows.Row(3), 1000)) << "past the table";
  EXPECT_TRUE(InSet(rows.Row(5), 64));
  EXPECT_TRUE(rows.Row(4).size() == 3 && !InSet(rows.Row(4), 0)) << "between rows: empty";
  EXPECT_TRUE(rows.Row(6).empty()) << "past the last row";
  EXPECT_TRUE(rows.Row(kNoIdentity).empty());
  rows.Clear(3);
  EXPECT_FALSE(InSet(rows.Row(3), 0));
  EXPECT_FALSE(InSet(rows.Row(3), 129));
  EXPECT_TRUE(InSet(rows.Row(5), 64));
  EXPECT_TRUE(MembershipTable(0).Row(0).empty());
}

}  // namespace
}  // namespace picket::policy
