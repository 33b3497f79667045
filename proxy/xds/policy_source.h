// proxy/xds/policy_source.h — turns pushed resources into the sidecar's EndpointPolicy.
//
// Owns: the sidecar's copy of the address map (AddressEntry resources, received as deltas) and
// its own pod's PodPolicy, and the step that assembles them into one immutable snapshot with
// policy::BuildEndpointPolicy and hands it to the proxy through `apply` — the same path a local
// policy_file takes. A response is staged on a copy; only if every resource decodes, the
// snapshot builds and `apply` accepts it does the copy replace the held state (all or nothing;
// the error goes back to the server as a NACK).
//
// The service map (Service resources, deltas) is held separately and, when the proxy gave an
// `on_service_map` callback, subscribed to and delivered as an immutable ServiceMap after every
// accepted response (a decode error or a ClusterIP claimed twice NACKs it; the last good map
// stays). Without the callback the type is not subscribed.
//
// Until the first PodPolicy arrives nothing is applied (the proxy stays fail-closed).
// Loop-thread only (called by XdsClient).
#pragma once

#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "policy/endpoint_policy.h"
#include "proxy/xds/service_map.h"
#include "proxy/xds/xds_client.h"

namespace picket::proxy::xds {

// Applies a snapshot atomically (e.g. picket-proxy's ApplyPolicy); an error means "not applied".
using ApplyPolicyFn = std::function<std::expected<void, std::string>(policy::EndpointPolicyPtr)>;

// Receives each new service map (never nullptr); swap it in with one assignment.
using ServiceMapFn = std::function<void(ServiceMapPtr)>;

class PolicySource : public ResourceHandler {
 public:
  PolicySource(std::string ns, std::string pod, ApplyPolicyFn apply,
               ServiceMapFn on_service_map = nullptr);

  [[nodiscard]] base::Result<void> OnResources(const std::string& type_url,
                                               const std::vector<net::Resource>& resources,
                                               const std::vector<std::string>& removed,
                                               bool state_of_the_world) override;

  // The subscriptions a sidecar makes: the address map as deltas, its own pod's policy, and the
  // service map as deltas when there is an `on_service_map`.
  std::vector<XdsSubscription> Subscriptions() const;

  // The last applied snapshot, or nullptr.
  const policy::EndpointPolicyPtr& current() const { return current_; }
  size_t address_entries() const { return address_map_.size(); }
  // The last delivered service map, or nullptr.
  const ServiceMapPtr& service_map() const { return service_map_; }

 private:
  [[nodiscard]] base::Result<void> Assemble(
      const std::map<std::string, policy::AddressEntry>& address_map,
      const std::optional<policy::PodPolicy>& pod_policy);
  [[nodiscard]] base::Result<void> OnServices(const std::vector<net::Resource>& resources,
                                              const std::vector<std::string>& removed,
                                              bool state_of_the_world);

  std::string ns_;
  std::string pod_;
  ApplyPolicyFn apply_;
  std::map<std::string, policy::AddressEntry> address_map_;  // by "ns/name"
  std::optional<policy::PodPolicy> pod_policy_;
  policy::EndpointPolicyPtr current_;
  ServiceMapFn on_service_map_;
  std::map<std::string, ServiceEntry> services_;  // by "ns/name"
  ServiceMapPtr service_map_;
};

}  // namespace picket::proxy::xds
