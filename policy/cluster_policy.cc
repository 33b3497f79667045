// policy/cluster_policy.cc — compiling NetworkPolicies to per-identity flat rules.
// Why ~550 lines: it is the one compiler the sidecars, matrix and explain share (no second
// evaluator); its steps (identities, selector sets, rule entries, incremental pod add/remove)
// read as one pipeline and are tested together in test/policy/cluster_policy_test.cc.
#include "policy/cluster_policy.h"

#include <algorithm>
#include <utility>

#include "policy/selector.h"

namespace picket::policy {

// A distinct (namespace, pod labels) with the compiled rules every pod carrying it shares.
// Each direction's rules start a cache line: a lookup's first read of them (isolated, the bucket
// bounds, the first candidates) is one line.
struct ClusterPolicy::Identity {
  std::string ns;
  config::Labels labels;
  uint32_t pods = 0;  // 0: free
  alignas(64) DirectionRules ingress;
  alignas(64) DirectionRules egress;
};

// A peer selector. A podSelector alone selects pods in the policy's namespace (Kubernetes API
// reference, NetworkPolicyPeer): ns_scope set.
// namespaceSelector present: any namespace it matches, AND'ed with podSelector if both are set.
struct ClusterPolicy::Selector {
  std::optional<std::string> ns_scope;
  std::optional<config::LabelSelector> ns_selector;
  std::optional<config::LabelSelector> pod_selector;
  std::string key;
  std::string description;
};

// A policy with its rules flattened to entries; RuleEntry::policy is filled per identity.
struct ClusterPolicy::CompiledPolicy {
  std::string ns;
  std::string full_name;  // "ns/name"
  config::LabelSelector pod_selector;
  bool ingress = false;
  bool egress = false;
  std::vector<RuleEntry> ingress_entries;
  std::vector<RuleEntry> egress_entries;
};

namespace {

constexpr char kNamespaceNameLabel[] = "kubernetes.io/metadata.name";

std::string PodKey(std::string_view ns, std::string_view name) {
  std::string key(ns);
  key += '/';
  key += name;
  return key;
}

std::string IdentityKey(const std::string& ns, const config::Labels& labels) {
  std::string key = ns;
  for (const auto& [k, v] : labels) {
    key += '\0';
    key += k;
    key += '=';
    key += v;
  }
  return key;
}

config::Error PodError(const config::Pod& pod, std::string field, std::string reason) {
  return config::Error{pod.source.file, pod.source.line, "Pod " + pod.ns + "/" + pod.name,
                       std::move(field), std::move(reason)};
}

std::vector<PortMatch> CompilePorts(const std::vector<config::NetworkPolicyPort>& ports) {
  // "If this field is empty or missing, this rule matches all ports" (and all protocols).
  if (ports.empty()) return {PortMatch{}};
  std::vector<PortMatch> out;
  for (const config::NetworkPolicyPort& p : ports) {
    PortMatch m;
    m.protocol = p.protocol;
    if (std::holds_alternative<std::monostate>(p.port)) {
      // No `port`: every port of this protocol (only TCP when the protocol was defaulted).
      m.kind = PortMatch::Kind::kRange;
      m.first = 0;
      m.last = 65535;
    } else if (const uint16_t* n = std::get_if<uint16_t>(&p.port)) {
      // endPort is inclusive: port..endPort.
      m.kind = PortMatch::Kind::kRange;
      m.first = *n;
      m.last = p.end_port.value_or(*n);
    } else {
      m.kind = PortMatch::Kind::kNamed;
      m.name = std::get<std::string>(p.port);
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

ClusterPolicy::ClusterPolicy() = default;
ClusterPolicy::~ClusterPolicy() = default;

std::expected<std::unique_ptr<ClusterPolicy>, config::Errors> ClusterPolicy::Compile(
    const config::Cluster& cluster, const ClusterPolicy* previous) {
  std::unique_ptr<ClusterPolicy> cp(new ClusterPolicy());
  if (previous != nullptr) {
    cp->previous_ids_ = previous->identity_index_;
    cp->next_identity_ = previous->next_identity_;
  }
  config::Errors errors;
  for (const config::Namespace& ns : cluster.namespaces) cp->namespaces_[ns.name] = ns.labels;
  // Grouped by namespace (stably): a pod's rules all come from its namespace's policies, so the
  // selectors they use get neighbouring indexes and a peer's membership row is read in one line.
  std::vector<size_t> order(cluster.policies.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return cluster.policies[a].ns < cluster.policies[b].ns;
  });
  std::vector<config::Errors> policy_errors(order.size());
  for (size_t i : order) {
    if (auto r = cp->AddPolicy(cluster.policies[i]); !r) policy_errors[i] = std::move(r.error());
  }
  for (const config::Errors& e : policy_errors) errors.insert(errors.end(), e.begin(), e.end());
  for (const config::Pod& pod : cluster.pods) {
    auto inserted = cp->InsertPod(pod);
    if (!inserted) {
      errors.push_back(std::move(inserted.error()));
      continue;
    }
    PodEntry* entry = *inserted;
    if (!entry->host_network) {
      bool created = false;
      entry->identity = cp->AcquireIdentity(*entry, &created);
      cp->IndexAddresses(*entry);
    }
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  cp->memberships_ = MembershipTable(cp->selectors_.size());

  // Selector membership: evaluate each selector over the identities (grouped per namespace so a
  // namespace selector is evaluated once per namespace, not once per identity).
  std::unordered_map<std::string, std::vector<IdentityId>> by_ns;
  for (IdentityId id = 0; id < cp->identities_.size(); ++id) {
    if (cp->identities_[id].pods > 0) by_ns[cp->identities_[id].ns].push_back(id);
  }
  for (size_t s = 0; s < cp->selectors_.size(); ++s) {
    const Selector& sel = cp->selectors_[s];
    for (const auto& [ns, ids] : by_ns) {
      if (sel.ns_scope ? *sel.ns_scope != ns : !Matches(*sel.ns_selector, cp->NamespaceLabels(ns)))
        continue;
      for (IdentityId id : ids) {
        if (!sel.pod_selector || Matches(*sel.pod_selector, cp->identities_[id].labels)) {
          cp->selector_sets_[s].Add(id);
          cp->memberships_.Add(id, static_cast<uint32_t>(s));
        }
      }
    }
  }
  for (IdentityId id = 0; id < cp->identities_.size(); ++id) {
    if (cp->identities_[id].pods > 0) cp->CompileIdentity(id);
  }
  return cp;
}

std::expected<void, config::Errors> ClusterPolicy::AddPolicy(const config::NetworkPolicy& policy) {
  config::Errors errors;
  CompiledPolicy cp;
  cp.ns = policy.ns;
  cp.full_name = policy.ns + "/" + policy.name;
  cp.pod_selector = policy.pod_selector;
  cp.ingress = policy.policy_types_ingress;
  cp.egress = policy.policy_types_egress;
  auto compile_rules = [&](const std::vector<config::NetworkPolicyRule>& rules, const char* dir,
                           const char* peers_field, std::vector<RuleEntry>& out) {
    for (size_t r = 0; r < rules.size(); ++r) {
      const config::NetworkPolicyRule& rule = rules[r];
      std::vector<PeerMatch> peers;
      // "If this field is empty or missing, this rule matches all sources" (destinations).
      if (rule.peers.empty()) peers.push_back(PeerMatch{});
      for (size_t p = 0; p < rule.peers.size(); ++p) {
        const config::NetworkPolicyPeer& peer = rule.peers[p];
        PeerMatch m;
        if (peer.ip_block) {
          const std::string field = std::string("spec.") + dir + "[" + std::to_string(r) + "]." +
                                    peers_field + "[" + std::to_string(p) + "].ipBlock";
          m.kind = PeerMatch::Kind::kCidr;
          auto cidr = IpPrefix::Parse(peer.ip_block->cidr);
          if (!cidr) {
            errors.push_back({policy.source.file, policy.source.line,
                              "NetworkPolicy " + cp.full_name, field + ".cidr",
                              "Invalid value: \"" + peer.ip_block->cidr + "\": not a valid CIDR"});
            continue;
          }
          m.cidr = *cidr;
          for (size_t e = 0; e < peer.ip_block->except.size(); ++e) {
            auto ex = IpPrefix::Parse(peer.ip_block->except[e]);
            if (!ex) {
              errors.push_back(
                  {policy.source.file, policy.source.line, "NetworkPolicy " + cp.full_name,
                   field + ".except[" + std::to_string(e) + "]",
                   "Invalid value: \"" + peer.ip_block->except[e] + "\": not a valid CIDR"});
              continue;
            }
            m.except.push_back(*ex);
          }
        } else if (peer.pod_selector || peer.namespace_selector) {
          Selector sel;
          if (peer.namespace_selector) {
            sel.ns_selector = peer.namespace_selector;
            sel.description = "namespaceSelector " + Describe(*peer.namespace_selector);
            if (peer.pod_selector) {
              // Both in one peer: pods matching podSelector within matching namespaces (AND).
              sel.pod_selector = peer.pod_selector;
              sel.description += " podSelector " + Describe(*peer.pod_selector);
            }
          } else {
            // "podSelector alone is scoped to the policy's namespace."
            sel.ns_scope = policy.ns;
            sel.pod_selector = peer.pod_selector;
            sel.description =
                "podSelector " + Describe(*peer.pod_selector) + " in namespace " + policy.ns;
          }
          m.kind = PeerMatch::Kind::kIdentities;
          m.description = sel.description;
          m.identity_set = InternSelector(std::move(sel));
        } else {
          continue;  // rejected by validation ("must specify a peer"); matches nothing
        }
        peers.push_back(std::move(m));
      }
      const std::vector<PortMatch> ports = CompilePorts(rule.ports);
      for (const PeerMatch& peer : peers) {
        for (const PortMatch& port : ports) {
          out.push_back(RuleEntry{peer, port, 0, static_cast<uint32_t>(r)});
        }
      }
    }
  };
  compile_rules(policy.ingress, "ingress", "from", cp.ingress_entries);
  compile_rules(policy.egress, "egress", "to", cp.egress_entries);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  policies_by_ns_[cp.ns].push_back(static_cast<uint32_t>(policies_.size()));
  policies_.push_back(std::move(cp));
  return {};
}

uint32_t ClusterPolicy::InternSelector(Selector selector) {
  selector.key = (selector.ns_scope ? "ns:" + *selector.ns_scope : std::string("*")) + "|" +
                 (selector.ns_selector ? Describe(*selector.ns_selector) : "-") + "|" +
                 (selector.pod_selector ? Describe(*selector.pod_selector) : "-");
  auto [it, inserted] =
      selector_index_.try_emplace(selector.key, static_cast<uint32_t>(selectors_.size()));
  if (inserted) {
    selectors_.push_back(std::move(selector));
    selector_sets_.emplace_back();
  }
  return it->second;
}

const config::Labels& ClusterPolicy::NamespaceLabels(const std::string& ns) const {
  static const config::Labels kNone;
  auto it = namespaces_.find(ns);
  return it != namespaces_.end() ? it->second : kNone;
}

bool ClusterPolicy::SelectorMatches(const Selector& sel, const Identity& identity) const {
  if (sel.ns_scope ? *sel.ns_scope != identity.ns
                   : !Matches(*sel.ns_selector, NamespaceLabels(identity.ns)))
    return false;
  return !sel.pod_selector || Matches(*sel.pod_selector, identity.labels);
}

std::expected<PodEntry*, config::Error> ClusterPolicy::InsertPod(const config::Pod& pod) {
  const std::string key = PodKey(pod.ns, pod.name);
  if (pods_.contains(key)) return std::unexpected(PodError(pod, "", "duplicate pod"));
  auto entry = std::make_unique<PodEntry>();
  entry->ns = pod.ns;
  entry->name = pod.name;
  entry->labels = pod.labels;
  entry->host_network = pod.host_network;
  for (size_t i = 0; i < pod.ips.size(); ++i) {
    auto ip = IpAddress::Parse(pod.ips[i]);
    if (!ip) {
      return std::unexpected(PodError(pod, "status.podIPs[" + std::to_string(i) + "]",
                                      "Invalid value: \"" + pod.ips[i] + "\": not an IP address"));
    }
    if (std::find(entry->ips.begin(), entry->ips.end(), *ip) != entry->ips.end()) continue;
    if (!pod.host_network) {
      if (const AddressOwner* owner = addresses_.Find(*ip)) {
        return std::unexpected(PodError(pod, "status.podIPs[" + std::to_string(i) + "]",
                                        "Duplicate value: \"" + pod.ips[i] +
                                            "\": already used by " + owner->pod->ns + "/" +
                                            owner->pod->name));
      }
    }
    entry->ips.push_back(*ip);
  }
  for (size_t i = 0; i < pod.host_ips.size(); ++i) {
    auto ip = IpAddress::Parse(pod.host_ips[i]);
    if (!ip) {
      return std::unexpected(
          PodError(pod, "status.hostIPs[" + std::to_string(i) + "]",
                   "Invalid value: \"" + pod.host_ips[i] + "\": not an IP address"));
    }
    if (std::find(entry->host_ips.begin(), entry->host_ips.end(), *ip) == entry->host_ips.end()) {
      entry->host_ips.push_back(*ip);
    }
  }
  for (const config::ContainerPort& p : pod.ports) {
    if (!p.name.empty()) entry->named_ports.push_back({p.name, p.container_port, p.protocol});
  }
  // A pod in a namespace without a Namespace object: the API server would still have set the
  // namespace's kubernetes.io/metadata.name label.
  namespaces_.try_emplace(pod.ns, config::Labels{{kNamespaceNameLabel, pod.ns}});
  PodEntry* raw = entry.get();
  pods_.emplace(key, std::move(entry));
  return raw;
}

// After InsertPod and AcquireIdentity: a pod's addresses name it and its identity.
void ClusterPolicy::IndexAddresses(const PodEntry& pod) {
  for (const IpAddress& ip : pod.ips) addresses_.Insert(ip, AddressOwner{&pod, pod.identity});
}

IdentityId ClusterPolicy::AcquireIdentity(const PodEntry& pod, bool* created) {
  const std::string key = IdentityKey(pod.ns, pod.labels);
  auto it = identity_index_.find(key);
  if (it != identity_index_.end()) {
    ++identities_[it->second].pods;
    *created = false;
    return it->second;
  }
  IdentityId id;
  if (auto prev = previous_ids_.find(key); prev != previous_ids_.end()) {
    id = prev->second;
  } else {
    id = next_identity_++;
  }
  if (id >= identities_.size()) identities_.resize(id + 1);
  ++live_identities_;
  Identity& identity = identities_[id];
  identity = Identity{pod.ns, pod.labels, 1, {}, {}};
  identity_index_.emplace(key, id);
  *created = true;
  return id;
}

void ClusterPolicy::CompileIdentity(IdentityId id) {
  Identity& identity = identities_[id];
  identity.ingress = {};
  identity.egress = {};
  auto it = policies_by_ns_.find(identity.ns);
  if (it == policies_by_ns_.end()) return;
  for (uint32_t index : it->second) {
    const CompiledPolicy& policy = policies_[index];
    // "podSelector selects the pods the policy applies to, in the policy's namespace only."
    if (!Matches(policy.pod_selector, identity.labels)) continue;
    auto add = [&](DirectionRules& rules, const std::vector<RuleEntry>& entries) {
      rules.isolated = true;
      const auto policy_index = static_cast<uint32_t>(rules.policies.size());
      rules.policies.push_back(policy.full_name);
      for (const RuleEntry& e : entries) {
        rules.entries.push_back(e);
        rules.entries.back().policy = policy_index;
      }
    };
    if (policy.ingress) add(identity.ingress, policy.ingress_entries);
    if (policy.egress) add(identity.egress, policy.egress_entries);
  }
  identity.ingress.BuildIndex();
  identity.egress.BuildIndex();
}

void ClusterPolicy::EvaluateSelectorsFor(IdentityId id) {
  const Identity& identity = identities_[id];
  for (size_t s = 0; s < selectors_.size(); ++s) {
    if (SelectorMatches(selectors_[s], identity)) {
      selector_sets_[s].Add(id);
      memberships_.Add(id, static_cast<uint32_t>(s));
    }
  }
}

std::expected<void, config::Error> ClusterPolicy::AddPod(const config::Pod& pod) {
  auto inserted = InsertPod(pod);
  if (!inserted) return std::unexpected(std::move(inserted.error()));
  PodEntry* entry = *inserted;
  if (entry->host_network) return {};
  bool created = false;
  entry->identity = AcquireIdentity(*entry, &created);
  IndexAddresses(*entry);
  if (created) {
    // A new label combination: only this identity's selector membership and rules are computed.
    EvaluateSelectorsFor(entry->identity);
    CompileIdentity(entry->identity);
  }
  return {};
}

bool ClusterPolicy::RemovePod(std::string_view ns, std::string_view name) {
  auto it = pods_.find(PodKey(ns, name));
  if (it == pods_.end()) return false;
  const PodEntry& pod = *it->second;
  if (!pod.host_network) {
    for (const IpAddress& ip : pod.ips) addresses_.Erase(ip);
  }
  if (pod.identity != kNoIdentity) {
    Identity& identity = identities_[pod.identity];
    if (--identity.pods == 0) {
      for (IdentitySet& set : selector_sets_) set.Remove(pod.identity);
      memberships_.Clear(pod.identity);
      identity_index_.erase(IdentityKey(identity.ns, identity.labels));
      identity = Identity{};
      --live_identities_;
    }
  }
  pods_.erase(it);
  return true;
}

std::optional<ClusterPolicy::Endpoint> ClusterPolicy::FindPod(std::string_view ns,
                                                              std::string_view name) const {
  const PodEntry* pod = FindPodEntry(ns, name);
  if (pod == nullptr) return std::nullopt;
  Endpoint e;
  e.pod = pod->host_network ? nullptr : pod;
  if (!pod->ips.empty()) e.address = pod->ips.front();
  e.name = PodKey(ns, name);
  return e;
}

ClusterPolicy::Endpoint ClusterPolicy::FindAddress(const IpAddress& address) const {
  Endpoint e;
  e.address = address;
  if (const AddressOwner* owner = addresses_.Find(address)) {
    e.pod = owner->pod;
    e.name = PodKey(e.pod->ns, e.pod->name);
  } else {
    e.name = address.ToString();
  }
  return e;
}

const PodEntry* ClusterPolicy::FindPodEntry(std::string_view ns, std::string_view name) const {
  auto it = pods_.find(PodKey(ns, name));
  return it == pods_.end() ? nullptr : it->second.get();
}

const DirectionRules* ClusterPolicy::Rules(const PodEntry& pod, Direction direction) const {
  if (pod.identity == kNoIdentity) return nullptr;
  const Identity& identity = identities_[pod.identity];
  return direction == Direction::kIngress ? &identity.ingress : &identity.egress;
}

ClusterPolicy::Verdict ClusterPolicy::Check(const Endpoint& src, const Endpoint& dst, uint16_t port,
                                            config::Protocol protocol) const {
  Verdict v;
  // "A pod cannot block access to itself."
  if ((src.pod != nullptr && src.pod == dst.pod) ||
      (src.pod == nullptr && dst.pod == nullptr && src.address && src.address == dst.address)) {
    v.self = true;
    v.allowed = true;
    v.egress.verdict.allowed = true;
    v.ingress.verdict.allowed = true;
    return v;
  }
  const std::span<const NamedPort> dst_ports =
      dst.pod != nullptr ? std::span<const NamedPort>(dst.pod->named_ports)
                         : std::span<const NamedPort>();
  auto side = [&](const Endpoint& subject, const Endpoint& peer, Direction direction) {
    SideVerdict s;
    s.rules = subject.pod != nullptr ? Rules(*subject.pod, direction) : nullptr;
    if (s.rules == nullptr) {
      s.verdict.allowed = true;  // not a pod we enforce: only the other side decides
      return s;
    }
    s.enforced = true;
    const PeerView view{
        peer.pod != nullptr ? memberships_.Row(peer.pod->identity) : SetMembership(),
        peer.address ? &*peer.address : nullptr};
    const std::span<const IpAddress> own_node =
        direction == Direction::kIngress ? std::span<const IpAddress>(subject.pod->host_ips)
                                         : std::span<const IpAddress>();
    s.verdict = Evaluate(*s.rules, view, port, protocol, dst_ports, own_node);
    return s;
  };
  v.egress = side(src, dst, Direction::kEgress);
  v.ingress = side(dst, src, Direction::kIngress);
  v.allowed = v.egress.verdict.allowed && v.ingress.verdict.allowed;
  return v;
}

bool ClusterPolicy::Allowed(const IpAddress& src, const IpAddress& dst, uint16_t port,
                            config::Protocol protocol) const {
  const AddressOwner* s = addresses_.Find(src);
  const AddressOwner* d = addresses_.Find(dst);
  if (s != nullptr ? d != nullptr && s->pod == d->pod : src == dst) return true;  // itself
  // The destination pod is read only when a side is isolated (its named ports, its node).
  auto dst_ports = [d] {
    return d != nullptr ? std::span<const NamedPort>(d->pod->named_ports)
                        : std::span<const NamedPort>();
  };
  if (s != nullptr) {
    const DirectionRules& rules = identities_[s->identity].egress;
    if (rules.isolated) {
      const PeerView peer{d != nullptr ? memberships_.Row(d->identity) : SetMembership(), &dst};
      if (!Evaluate(rules, peer, port, protocol, dst_ports(), {}, false).allowed) return false;
    }
  }
  if (d != nullptr) {
    const DirectionRules& rules = identities_[d->identity].ingress;
    if (rules.isolated) {
      const PeerView peer{s != nullptr ? memberships_.Row(s->identity) : SetMembership(), &src};
      if (!Evaluate(rules, peer, port, protocol, dst_ports(), d->pod->host_ips, false).allowed)
        return false;
    }
  }
  return true;
}

std::vector<const PodEntry*> ClusterPolicy::Pods() const {
  std::vector<const PodEntry*> out;
  out.reserve(pods_.size());
  for (const auto& [key, pod] : pods_) out.push_back(pod.get());
  std::sort(out.begin(), out.end(), [](const PodEntry* a, const PodEntry* b) {
    return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
  });
  return out;
}

AddressEntry ClusterPolicy::AddressEntryOf(const PodEntry& pod) const {
  return AddressEntry{pod.identity, pod.ns, pod.name, pod.ips, pod.labels, pod.named_ports};
}

std::vector<AddressEntry> ClusterPolicy::AddressMap() const {
  std::vector<AddressEntry> out;
  for (const PodEntry* pod : Pods()) {
    if (!pod->host_network) out.push_back(AddressEntryOf(*pod));
  }
  return out;
}

PodPolicy ClusterPolicy::PodPolicyOf(const PodEntry& pod) const {
  PodPolicy out;
  out.ns = pod.ns;
  out.pod = pod.name;
  if (pod.identity == kNoIdentity) return out;  // hostNetwork: never isolated
  out.host_ips = pod.host_ips;
  const Identity& identity = identities_[pod.identity];
  // Only the identity sets this pod references travel, renumbered densely.
  std::unordered_map<uint32_t, uint32_t> remap;
  auto copy = [&](const DirectionRules& in, DirectionRules& rules) {
    // What the resource carries; the index is derived (and would name the old set numbers).
    rules.isolated = in.isolated;
    rules.policies = in.policies;
    rules.entries = in.entries;
    for (RuleEntry& e : rules.entries) {
      if (e.peer.kind != PeerMatch::Kind::kIdentities) continue;
      auto [it, inserted] =
          remap.try_emplace(e.peer.identity_set, static_cast<uint32_t>(out.identity_sets.size()));
      if (inserted) out.identity_sets.push_back(selector_sets_[e.peer.identity_set].ToVector());
      e.peer.identity_set = it->second;
    }
  };
  copy(identity.ingress, out.ingress);
  copy(identity.egress, out.egress);
  return out;
}

size_t ClusterPolicy::identity_count() const { return live_identities_; }

size_t ClusterPolicy::selector_count() const { return selectors_.size(); }

}  // namespace picket::policy
