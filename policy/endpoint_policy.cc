// policy/endpoint_policy.cc — the per-pod snapshot: assembly, lookup and text form.
#include "policy/endpoint_policy.h"

#include <cstdio>
#include <unordered_map>
#include <utility>

#include "base/hash.h"
#include "base/json.h"
#include "policy/address_table.h"
#include "policy/cluster_policy.h"

namespace picket::policy {
namespace {

// Immutable after construction. Identity ids of the resources are global (the control
// server's); lookups use dense local ids so membership rows stay few whatever ids arrive.
class Snapshot final : public EndpointPolicy {
 public:
  static std::expected<std::shared_ptr<Snapshot>, config::Errors> Build(
      std::vector<AddressEntry> entries, PodPolicy policy, std::string version) {
    auto s = std::shared_ptr<Snapshot>(new Snapshot());
    s->entries_ = std::move(entries);
    s->policy_ = std::move(policy);
    config::Errors errors;
    std::unordered_map<IdentityId, IdentityId> local;
    for (size_t i = 0; i < s->entries_.size(); ++i) {
      const AddressEntry& e = s->entries_[i];
      auto [it, inserted] = local.try_emplace(e.identity, static_cast<IdentityId>(local.size()));
      const Peer peer{static_cast<uint32_t>(i), it->second,
                      static_cast<uint32_t>(s->named_ports_.size()),
                      static_cast<uint32_t>(s->named_ports_.size() + e.named_ports.size())};
      s->named_ports_.insert(s->named_ports_.end(), e.named_ports.begin(), e.named_ports.end());
      s->peers_.push_back(PeerInfo{e.ns, e.pod, e.labels});
      if (e.ns == s->policy_.ns && e.pod == s->policy_.pod) s->self_ = peer;
      for (size_t j = 0; j < e.ips.size(); ++j) {
        const Peer* at = s->by_address_.Insert(e.ips[j], peer);
        if (at->entry != i) {
          const AddressEntry& owner = s->entries_[at->entry];
          errors.push_back(config::Error{
              "", 0, "", "address_map[" + std::to_string(i) + "].ips[" + std::to_string(j) + "]",
              "Duplicate value: \"" + e.ips[j].ToString() + "\": already used by " + owner.ns +
                  "/" + owner.pod});
        }
      }
    }
    const std::vector<std::vector<IdentityId>>& sets = s->policy_.identity_sets;
    s->memberships_ = MembershipTable(sets.size());
    for (size_t set = 0; set < sets.size(); ++set) {
      for (IdentityId id : sets[set]) {
        // Ids that no address entry carries can never match a peer: drop them.
        if (auto it = local.find(id); it != local.end()) {
          s->memberships_.Add(it->second, static_cast<uint32_t>(set));
        }
      }
    }
    auto check_indexes = [&](const DirectionRules& rules, const char* dir) {
      for (size_t i = 0; i < rules.entries.size(); ++i) {
        const RuleEntry& e = rules.entries[i];
        const std::string field =
            std::string("pod_policy.") + dir + ".rules[" + std::to_string(i) + "]";
        if (e.policy >= rules.policies.size()) {
          errors.push_back({"", 0, "", field + ".policy", "Invalid value: out of range"});
        }
        if (e.peer.kind == PeerMatch::Kind::kIdentities && e.peer.identity_set >= sets.size())
          errors.push_back(
              {"", 0, "", field + ".peer.identity_set", "Invalid value: out of range"});
      }
    };
    check_indexes(s->policy_.ingress, "ingress");
    check_indexes(s->policy_.egress, "egress");
    s->policy_.ingress.BuildIndex();
    s->policy_.egress.BuildIndex();
    s->ingress_texts_ = RenderTexts(s->policy_.ingress, Direction::kIngress);
    s->egress_texts_ = RenderTexts(s->policy_.egress, Direction::kEgress);
    for (const IpAddress& node : s->policy_.host_ips) {
      s->ingress_texts_.own_node.push_back(DescribeOwnNode(node));
    }
    if (!errors.empty()) return std::unexpected(std::move(errors));
    s->version_ = version.empty() ? base::HashVersion(s->EncodeBody()) : std::move(version);
    return s;
  }

  const std::string& version() const override { return version_; }
  const std::string& pod_namespace() const override { return policy_.ns; }
  const std::string& pod_name() const override { return policy_.pod; }

  Decision CheckEgress(const IpAddress& dst, uint16_t port,
                       config::Protocol protocol) const override {
    const Peer* peer = by_address_.Find(dst);
    if (peer != nullptr && peer->entry == self_.entry) return SelfDecision();
    // Egress named ports resolve on the destination pod; a non-pod destination has none.
    const std::span<const NamedPort> ports = NamedPortsOf(peer);
    const PeerView view{peer != nullptr ? memberships_.Row(peer->local_identity) : SetMembership(),
                        &dst};
    // Egress to the own node is policed like any other destination: no `own_node` here.
    return MakeDecision(Evaluate(policy_.egress, view, port, protocol, ports, {}), policy_.egress,
                        egress_texts_, {});
  }

  Decision CheckIngress(const IpAddress& src, uint16_t port,
                        config::Protocol protocol) const override {
    const Peer* peer = by_address_.Find(src);
    if (peer != nullptr && peer->entry == self_.entry) return SelfDecision();
    // Ingress named ports resolve on this pod (the destination).
    const std::span<const NamedPort> ports = NamedPortsOf(&self_);
    const PeerView view{peer != nullptr ? memberships_.Row(peer->local_identity) : SetMembership(),
                        &src};
    return MakeDecision(Evaluate(policy_.ingress, view, port, protocol, ports, policy_.host_ips),
                        policy_.ingress, ingress_texts_, policy_.host_ips);
  }

  const PeerInfo* LookupPeer(const IpAddress& address) const override {
    const Peer* peer = by_address_.Find(address);
    return peer != nullptr ? &peers_[peer->entry] : nullptr;
  }

  std::string Encode() const override {
    base::JsonWriter w;
    w.BeginObject().Member("version", version_);
    WriteBody(w);
    w.EndObject();
    return w.Take();
  }

 private:
  Snapshot() = default;

  // The snapshot's members after "version"; its content version hashes them alone.
  void WriteBody(base::JsonWriter& w) const {
    w.Member("namespace", policy_.ns).Member("pod", policy_.pod).Key("address_map").BeginArray();
    for (const AddressEntry& e : entries_) EncodeAddressEntry(e, w);
    w.EndArray().Key("pod_policy");
    EncodePodPolicy(policy_, w);
  }

  std::string EncodeBody() const {
    base::JsonWriter w;
    w.BeginObject();
    WriteBody(w);
    w.EndObject();
    return w.Take();
  }

  // What a lookup needs of an address map entry, in its address slot: no AddressEntry is read.
  struct Peer {
    uint32_t entry = UINT32_MAX;    // index into entries_ (UINT32_MAX: none)
    IdentityId local_identity = 0;  // the row of memberships_
    uint32_t ports_begin = 0;       // named_ports_ [ports_begin, ports_end)
    uint32_t ports_end = 0;
  };

  std::span<const NamedPort> NamedPortsOf(const Peer* peer) const {
    if (peer == nullptr || peer->entry == UINT32_MAX) return {};
    return std::span<const NamedPort>(named_ports_)
        .subspan(peer->ports_begin, peer->ports_end - peer->ports_begin);
  }

  static Decision SelfDecision() {
    // "A pod cannot block access to itself."
    return Decision{true, "", {}, "the pod itself (always allowed)"};
  }

  // The human lines of every possible outcome, rendered once at build time so a decision points
  // at one instead of formatting it (same text as DescribeVerdict).
  struct DirectionTexts {
    std::string not_isolated;
    std::string no_match;
    std::vector<std::string> allowed;    // per entry
    std::vector<std::string> near_peer;  // per entry: closest, peer did not match
    std::vector<std::string> near_port;  // per entry: closest, port/protocol did not match
    std::vector<std::string> own_node;   // ingress, per PodPolicy::host_ips entry
  };

  static DirectionTexts RenderTexts(const DirectionRules& rules, Direction direction) {
    DirectionTexts t;
    DirectionVerdict v;
    t.not_isolated = DescribeVerdict(rules, v, direction);
    v.isolated = true;
    t.no_match = DescribeVerdict(rules, v, direction);
    for (const RuleEntry& e : rules.entries) {
      DirectionVerdict allowed{true, true, &e, DirectionVerdict::Miss::kNone, nullptr, nullptr};
      t.allowed.push_back(DescribeVerdict(rules, allowed, direction));
      DirectionVerdict peer{false, true, nullptr, DirectionVerdict::Miss::kPeer, &e, nullptr};
      t.near_peer.push_back(DescribeVerdict(rules, peer, direction));
      DirectionVerdict port{false, true, nullptr, DirectionVerdict::Miss::kPort, &e, nullptr};
      t.near_port.push_back(DescribeVerdict(rules, port, direction));
    }
    return t;
  }

  // `host_ips`: the span Evaluate got as `own_node` (v.own_node points into it). The decision
  // refers to `rules` and `texts`: no copy.
  static Decision MakeDecision(const DirectionVerdict& v, const DirectionRules& rules,
                               const DirectionTexts& texts, std::span<const IpAddress> host_ips) {
    Decision d;
    d.allowed = v.allowed;
    if (!v.isolated) {
      d.detail = texts.not_isolated;
    } else if (v.own_node != nullptr) {
      // Like the pod itself: allowed without a rule, so no policy is credited.
      d.detail = texts.own_node[static_cast<size_t>(v.own_node - host_ips.data())];
    } else if (v.allowed) {
      const size_t i = static_cast<size_t>(v.matched - rules.entries.data());
      d.detail = texts.allowed[i];
      d.policies = std::span<const std::string>(rules.policies).subspan(v.matched->policy, 1);
    } else {
      d.reason = "policy_denied";
      d.policies = rules.policies;
      if (v.near_miss == nullptr) {
        d.detail = texts.no_match;
      } else {
        const size_t i = static_cast<size_t>(v.near_miss - rules.entries.data());
        d.detail =
            v.miss == DirectionVerdict::Miss::kPeer ? texts.near_peer[i] : texts.near_port[i];
      }
    }
    return d;
  }

  std::string version_;
  std::vector<AddressEntry> entries_;
  PodPolicy policy_;
  std::vector<PeerInfo> peers_;         // parallel to entries_
  std::vector<NamedPort> named_ports_;  // every entry's, in entries_ order
  MembershipTable memberships_;         // local id → the identity_sets it is in
  AddressTable<Peer> by_address_;
  Peer self_;  // entry UINT32_MAX when the pod is not in the map
  DirectionTexts ingress_texts_;
  DirectionTexts egress_texts_;
};

}  // namespace

std::expected<EndpointPolicyPtr, config::Errors> BuildEndpointPolicy(
    std::vector<AddressEntry> address_map, PodPolicy policy, std::string version) {
  auto s = Snapshot::Build(std::move(address_map), std::move(policy), std::move(version));
  if (!s) return std::unexpected(std::move(s.error()));
  return EndpointPolicyPtr(std::move(*s));
}

std::expected<EndpointPolicyPtr, config::Errors> CompileEndpointPolicy(
    const config::Cluster& cluster, std::string_view ns, std::string_view name) {
  auto compiled = ClusterPolicy::Compile(cluster);
  if (!compiled) return std::unexpected(std::move(compiled.error()));
  const PodEntry* pod = (*compiled)->FindPodEntry(ns, name);
  if (pod == nullptr) {
    return std::unexpected(config::Errors{config::Error{
        "", 0, "Pod " + std::string(ns) + "/" + std::string(name), "", "Not found: no such pod"}});
  }
  return BuildEndpointPolicy((*compiled)->AddressMap(), (*compiled)->PodPolicyOf(*pod));
}

}  // namespace picket::policy
