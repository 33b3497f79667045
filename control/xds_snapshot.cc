// control/xds_snapshot.cc — see xds_snapshot.h.
#include "control/xds_snapshot.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "base/hash.h"
#include "control/service_map.h"
#include "net/xds_message.h"

namespace picket::control {
namespace {

std::string Key(std::string_view ns, std::string_view name) {
  return std::string(ns) + "/" + std::string(name);
}

// A resource as the server stores it: the text encoded once here, versioned by its hash, and
// spliced verbatim into every response that carries it (PROTOCOL.md §5).
XdsServer::Upsert MakeUpsert(std::string name, std::string text) {
  std::string version = base::HashVersion(text);
  return {std::move(name), std::move(version), std::move(text)};
}

std::string LabelsText(const config::Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out.append(k).append("=").append(v) += ',';
  return out;
}

}  // namespace

std::string PodFingerprint(const config::Pod& pod) {
  std::string out = Key(pod.ns, pod.name) + "|" + LabelsText(pod.labels) + "|";
  for (const auto& ip : pod.ips) out += ip + ",";
  out += "|";
  for (const auto& ip : pod.host_ips) out += ip + ",";
  out += "|";
  for (const auto& p : pod.ports) {
    out += p.name + ":" + std::to_string(p.container_port) + "/" + ProtocolName(p.protocol) + ",";
  }
  out += pod.host_network ? "|host" : "|pod";
  return out;
}

std::expected<void, config::Errors> XdsSnapshot::SetCluster(const config::Cluster& cluster,
                                                            bool pods_only) {
  const auto start = std::chrono::steady_clock::now();
  config::Errors errors;
  if (compiled_ && pods_only && TryIncremental(cluster, errors)) {
    ++stats_.incremental_updates;
  } else {
    if (!errors.empty()) return std::unexpected(std::move(errors));
    // The previous compile keeps identity ids stable, so unchanged pods keep their entries
    // (and tags) byte for byte.
    auto compiled = policy::ClusterPolicy::Compile(cluster, compiled_.get());
    if (!compiled) return std::unexpected(std::move(compiled.error()));
    compiled_ = std::move(*compiled);
    cluster_ = cluster;
    ++stats_.full_compiles;
    identity_policies_.clear();
    std::vector<std::string> all;
    for (const policy::PodEntry* pod : compiled_->Pods()) all.push_back(Key(pod->ns, pod->name));
    PublishAddressEntries(all);
    PublishPodPolicies(true, {});
  }
  PublishServiceMap(cluster);
  stats_.last_compute_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return {};
}

const policy::PodPolicy* XdsSnapshot::PublishedRules(const std::string& pod) const {
  auto identity = pod_identity_.find(pod);
  if (identity == pod_identity_.end()) return nullptr;
  auto rules = identity_policies_.find(identity->second);
  return rules == identity_policies_.end() ? nullptr : &rules->second.rules;
}

bool XdsSnapshot::TryIncremental(const config::Cluster& cluster, config::Errors& errors) {
  std::map<std::string, const config::Pod*> before, after;
  for (const auto& p : cluster_.pods) before[Key(p.ns, p.name)] = &p;
  for (const auto& p : cluster.pods) after[Key(p.ns, p.name)] = &p;
  std::vector<std::string> removed, added;
  for (const auto& [key, pod] : before) {
    auto it = after.find(key);
    if (it == after.end() || PodFingerprint(*it->second) != PodFingerprint(*pod)) {
      removed.push_back(key);
    }
  }
  for (const auto& [key, pod] : after) {
    auto it = before.find(key);
    if (it == before.end() || PodFingerprint(*it->second) != PodFingerprint(*pod)) {
      added.push_back(key);
    }
  }
  if (removed.empty() && added.empty()) {
    cluster_ = cluster;
    return true;
  }
  for (const auto& key : removed) {
    const config::Pod* pod = before[key];
    compiled_->RemovePod(pod->ns, pod->name);
  }
  for (const auto& key : added) {
    if (auto ok = compiled_->AddPod(*after[key]); !ok) {
      errors.push_back(ok.error());
    }
  }
  if (!errors.empty()) {
    // Undo by recompiling the last good model; the caller reports the errors.
    auto restored = policy::ClusterPolicy::Compile(cluster_);
    if (restored) compiled_ = std::move(*restored);
    return false;
  }
  cluster_ = cluster;
  std::set<std::string> changed(removed.begin(), removed.end());
  changed.insert(added.begin(), added.end());
  PublishAddressEntries({changed.begin(), changed.end()});
  if (!PublishChurnedPodPolicies(removed, added)) PublishPodPolicies(false, added);
  return true;
}

bool XdsSnapshot::PublishChurnedPodPolicies(const std::vector<std::string>& removed,
                                            const std::vector<std::string>& added) {
  // The common case of churn — replicas coming and going — creates and frees no identity, so no
  // selector's identity set and no pod's rules change: only the churned pods' own policies do.
  std::map<policy::IdentityId, int> members;
  for (const auto& [key, identity] : pod_identity_) ++members[identity];
  for (const std::string& key : removed) {
    auto it = pod_identity_.find(key);
    if (it != pod_identity_.end() && --members[it->second] == 0) return false;
  }
  std::vector<XdsServer::Upsert> upserts;
  std::vector<std::pair<std::string, policy::IdentityId>> published;
  for (const std::string& key : added) {
    const size_t slash = key.find('/');
    const policy::PodEntry* pod = compiled_->FindPodEntry(std::string_view(key).substr(0, slash),
                                                          std::string_view(key).substr(slash + 1));
    if (pod == nullptr || pod->host_network) continue;
    if (!identity_policies_.contains(pod->identity) || members[pod->identity] == 0) return false;
    // An existing identity: its rules are unchanged, and the pod's own are they plus its name
    // and node (computed for this pod alone).
    upserts.push_back(MakeUpsert(key, policy::EncodePodPolicy(compiled_->PodPolicyOf(*pod))));
    published.emplace_back(key, pod->identity);
  }
  std::vector<std::string> removals;
  std::vector<std::pair<std::string, ScopePtr>> scopes;
  for (const std::string& key : removed) {
    if (pod_identity_.erase(key) > 0) removals.push_back(key);
    scopes.emplace_back(key, nullptr);
  }
  for (auto& [key, identity] : published) {
    pod_identity_[key] = identity;
    removals.erase(std::remove(removals.begin(), removals.end(), key), removals.end());
    auto scope = identity_scopes_.find(identity);
    scopes.emplace_back(key, scope == identity_scopes_.end() ? nullptr : scope->second);
  }
  server_.SetScopes(scopes);
  stats_.pod_policies_published += upserts.size() + removals.size();
  server_.Update(net::kPodPolicyType, std::move(upserts), removals);
  return true;
}

void XdsSnapshot::PublishAddressEntries(const std::vector<std::string>& names) {
  std::vector<XdsServer::Upsert> upserts;
  std::vector<std::string> removals;
  for (const std::string& key : names) {
    const size_t slash = key.find('/');
    const policy::PodEntry* pod = compiled_->FindPodEntry(std::string_view(key).substr(0, slash),
                                                          std::string_view(key).substr(slash + 1));
    if (pod == nullptr || pod->host_network) {
      removals.push_back(key);
      continue;
    }
    const policy::AddressEntry entry = compiled_->AddressEntryOf(*pod);
    XdsServer::Upsert upsert = MakeUpsert(key, policy::EncodeAddressEntry(entry));
    upsert.tags = TagsOf(entry);
    upserts.push_back(std::move(upsert));
  }
  stats_.address_entries_published += upserts.size() + removals.size();
  server_.Update(net::kAddressEntryType, std::move(upserts), removals);
}

void XdsSnapshot::PublishServiceMap(const config::Cluster& cluster) {
  std::vector<XdsServer::Upsert> upserts;
  std::map<std::string, std::string> next;
  for (const ServiceMapEntry& entry : ComputeServiceMap(cluster)) {
    XdsServer::Upsert upsert = MakeUpsert(entry.Key(), EncodeServiceMapEntry(entry));
    std::string key = upsert.name;
    std::string version = upsert.version;
    auto published = service_versions_.find(key);
    if (published == service_versions_.end() || published->second != version) {
      upserts.push_back(std::move(upsert));
    }
    next.emplace(std::move(key), std::move(version));
  }
  std::vector<std::string> removals;
  for (const auto& [key, version] : service_versions_) {
    if (!next.contains(key)) removals.push_back(key);
  }
  service_versions_ = std::move(next);
  if (upserts.empty() && removals.empty()) return;
  stats_.services_published += upserts.size() + removals.size();
  server_.Update(net::kServiceType, std::move(upserts), removals);
}

void XdsSnapshot::PublishPodPolicies(bool all, const std::vector<std::string>& changed) {
  // Group enforced pods by identity; pods of one identity share rules (named ports aside,
  // which resolve on the destination at check time).
  std::map<policy::IdentityId, std::vector<const policy::PodEntry*>> by_identity;
  std::set<std::string> present;
  for (const policy::PodEntry* pod : compiled_->Pods()) {
    if (pod->host_network) continue;
    by_identity[pod->identity].push_back(pod);
    present.insert(Key(pod->ns, pod->name));
  }
  std::vector<XdsServer::Upsert> upserts;
  std::map<policy::IdentityId, IdentityRules> next;
  std::map<policy::IdentityId, ScopePtr> next_scopes;
  std::vector<std::pair<std::string, ScopePtr>> scopes;
  for (const auto& [identity, pods] : by_identity) {
    policy::PodPolicy rules = compiled_->PodPolicyOf(*pods.front());
    rules.ns.clear();
    rules.pod.clear();
    rules.host_ips.clear();
    const ScopePtr scope = ScopeFor(identity, rules);
    next_scopes.emplace(identity, scope);
    for (const policy::PodEntry* pod : pods) scopes.emplace_back(Key(pod->ns, pod->name), scope);
    std::string version = base::HashVersion(policy::EncodePodPolicy(rules));
    auto previous = identity_policies_.find(identity);
    const bool identity_changed =
        all || previous == identity_policies_.end() || previous->second.version != version;
    for (const policy::PodEntry* pod : pods) {
      const std::string key = Key(pod->ns, pod->name);
      auto published = pod_identity_.find(key);
      if (!identity_changed && published != pod_identity_.end() && published->second == identity &&
          !std::binary_search(changed.begin(), changed.end(), key)) {
        continue;
      }
      policy::PodPolicy own = rules;
      own.ns = pod->ns;
      own.pod = pod->name;
      own.host_ips = pod->host_ips;
      upserts.push_back(MakeUpsert(key, policy::EncodePodPolicy(own)));
      pod_identity_[key] = identity;
    }
    // Kept without the identity sets: they are the bulk (an id per selected identity), and what
    // they select is in the scope; the version says whether they changed.
    rules.identity_sets = {};
    next.emplace(identity, IdentityRules{std::move(version), std::move(rules)});
  }
  identity_policies_ = std::move(next);
  identity_scopes_ = std::move(next_scopes);
  // The pool keeps only the scopes in use.
  scope_pool_.clear();
  for (const auto& [identity, scope] : identity_scopes_) {
    if (scope != nullptr) scope_pool_[scope->Hash()].push_back(scope);
  }
  std::vector<std::string> removals;
  for (auto it = pod_identity_.begin(); it != pod_identity_.end();) {
    if (!present.contains(it->first)) {
      removals.push_back(it->first);
      scopes.emplace_back(it->first, nullptr);
      it = pod_identity_.erase(it);
    } else {
      ++it;
    }
  }
  // Scopes before policies: what a new rule needs is pushed before the rule itself.
  server_.SetScopes(scopes);
  stats_.pod_policies_published += upserts.size() + removals.size();
  server_.Update(net::kPodPolicyType, std::move(upserts), removals);
}

}  // namespace picket::control

namespace picket::control {

uint32_t XdsSnapshot::PortTag(const std::string& name, config::Protocol protocol) {
  auto [it, inserted] = port_tags_.try_emplace({name, protocol}, 0);
  if (inserted) it->second = kPortTagBase + static_cast<uint32_t>(port_tags_.size() - 1);
  return it->second;
}

std::vector<uint32_t> XdsSnapshot::TagsOf(const policy::AddressEntry& entry) {
  std::vector<uint32_t> tags{entry.identity};
  for (const policy::NamedPort& port : entry.named_ports) {
    tags.push_back(PortTag(port.name, port.protocol));
  }
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  return tags;
}

ScopePtr XdsSnapshot::ScopeFor(policy::IdentityId self, const policy::PodPolicy& rules) {
  if (!rules.ingress.isolated && !rules.egress.isolated) return nullptr;
  std::vector<uint32_t> tags{self};  // the pod itself: its own IPs and ingress named ports
  auto add = [&](const policy::DirectionRules& direction, bool egress) {
    if (!direction.isolated) return;
    for (const policy::RuleEntry& e : direction.entries) {
      if (e.peer.kind == policy::PeerMatch::Kind::kIdentities) {
        const auto& set = rules.identity_sets[e.peer.identity_set];
        tags.insert(tags.end(), set.begin(), set.end());
      } else if (egress && e.port.kind == policy::PortMatch::Kind::kNamed) {
        // A named port resolves on the destination: every pod with that port name may be one.
        tags.push_back(PortTag(e.port.name, e.port.protocol));
      }
    }
  };
  add(rules.ingress, false);
  add(rules.egress, true);
  // Equal scopes are one object (every pod of a namespace whose policy allows the whole
  // cluster, say): the server compares them by pointer first, and the memory is per scope.
  auto scope = std::make_shared<const ResourceScope>(std::move(tags));
  std::vector<ScopePtr>& same_hash = scope_pool_[scope->Hash()];
  for (const ScopePtr& existing : same_hash) {
    if (*existing == *scope) return existing;
  }
  same_hash.push_back(scope);
  return scope;
}

}  // namespace picket::control
