// proxy/xds/policy_source.cc — see policy_source.h. Each pushed policy resource is decoded once,
// in place, from the frame's parsed document (net::Resource::value) by the one codec of
// policy/endpoint_policy.h.
#include "proxy/xds/policy_source.h"

#include "net/xds_message.h"

namespace picket::proxy::xds {
namespace {

using base::Error;

}  // namespace

PolicySource::PolicySource(std::string ns, std::string pod, ApplyPolicyFn apply,
                           ServiceMapFn on_service_map)
    : ns_(std::move(ns)),
      pod_(std::move(pod)),
      apply_(std::move(apply)),
      on_service_map_(std::move(on_service_map)) {}

std::vector<XdsSubscription> PolicySource::Subscriptions() const {
  std::vector<XdsSubscription> out = {
      {std::string(net::kAddressEntryType), true, {}},
      {std::string(net::kPodPolicyType), false, {ns_ + "/" + pod_}}};
  if (on_service_map_) out.push_back({std::string(net::kServiceType), true, {}});
  return out;
}

base::Result<void> PolicySource::OnServices(const std::vector<net::Resource>& resources,
                                            const std::vector<std::string>& removed,
                                            bool state_of_the_world) {
  if (!on_service_map_) return std::unexpected(Error::Of("service map not subscribed"));
  auto staged = services_;
  if (state_of_the_world) staged.clear();
  for (const auto& name : removed) staged.erase(name);
  for (const auto& r : resources) {
    auto entry = DecodeServiceEntry(r.value, r.name);
    if (!entry) return std::unexpected(entry.error());
    staged[r.name] = std::move(*entry);
  }
  auto map = ServiceMap::Build(staged);
  if (!map) return std::unexpected(map.error());
  services_ = std::move(staged);
  service_map_ = std::move(*map);
  on_service_map_(service_map_);
  return {};
}

base::Result<void> PolicySource::OnResources(const std::string& type_url,
                                             const std::vector<net::Resource>& resources,
                                             const std::vector<std::string>& removed,
                                             bool state_of_the_world) {
  if (type_url == net::kAddressEntryType) {
    auto staged = address_map_;
    if (state_of_the_world) staged.clear();
    for (const auto& name : removed) staged.erase(name);
    for (const auto& r : resources) {
      auto entry = policy::DecodeAddressEntry(r.value, r.name);
      if (!entry) return std::unexpected(base::Summarize(entry.error()));
      if (entry->ns + "/" + entry->pod != r.name) {
        return std::unexpected(
            Error::Of(r.name + ": the entry names pod " + entry->ns + "/" + entry->pod));
      }
      staged[r.name] = std::move(*entry);
    }
    if (auto ok = Assemble(staged, pod_policy_); !ok) return ok;
    address_map_ = std::move(staged);
    return {};
  }
  if (type_url == net::kPodPolicyType) {
    const std::string own = ns_ + "/" + pod_;
    std::optional<policy::PodPolicy> staged;
    for (const auto& r : resources) {
      if (r.name != own)
        return std::unexpected(Error::Of("pod policy for " + r.name + ", not " + own));
      auto decoded = policy::DecodePodPolicy(r.value, r.name);
      if (!decoded) return std::unexpected(base::Summarize(decoded.error()));
      if (decoded->ns != ns_ || decoded->pod != pod_) {
        return std::unexpected(
            Error::Of(r.name + ": the policy names pod " + decoded->ns + "/" + decoded->pod));
      }
      staged = std::move(*decoded);
    }
    if (!staged) {
      // The server has no policy for this pod (yet): keep enforcing what we have.
      return std::unexpected(Error::Of("no pod policy for " + own + " in the response"));
    }
    if (auto ok = Assemble(address_map_, staged); !ok) return ok;
    pod_policy_ = std::move(staged);
    return {};
  }
  if (type_url == net::kServiceType) return OnServices(resources, removed, state_of_the_world);
  return std::unexpected(Error::Of("unexpected type " + type_url));
}

base::Result<void> PolicySource::Assemble(
    const std::map<std::string, policy::AddressEntry>& address_map,
    const std::optional<policy::PodPolicy>& pod_policy) {
  if (!pod_policy) return {};  // nothing to enforce yet; the address map is staged
  std::vector<policy::AddressEntry> entries;
  entries.reserve(address_map.size());
  for (const auto& [name, entry] : address_map) entries.push_back(entry);
  auto snapshot = policy::BuildEndpointPolicy(std::move(entries), *pod_policy);
  if (!snapshot) return std::unexpected(base::Summarize(snapshot.error()));
  if (auto ok = apply_(*snapshot); !ok) return std::unexpected(Error::Of(ok.error()));
  current_ = std::move(*snapshot);
  return {};
}

}  // namespace picket::proxy::xds
