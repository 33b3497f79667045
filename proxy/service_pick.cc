#include "proxy/service_pick.h"

#include <algorithm>
#include <string>
#include <utility>

namespace picket::proxy {

std::optional<ServicePick> PickServiceBackend(const xds::ServiceMap& services,
                                              const policy::EndpointPolicy& policy,
                                              const filters::Endpoint& destination,
                                              config::Protocol protocol, uint64_t& rotation) {
  const std::vector<xds::ServiceMap::Backend>* backends =
      services.Find(destination.address, destination.port, protocol);
  if (backends == nullptr) return std::nullopt;
  const std::string* name = services.ServiceName(destination.address, destination.port, protocol);

  ServicePick pick;
  pick.service = std::make_shared<const filters::ServiceAddress>(
      filters::ServiceAddress{name != nullptr ? *name : std::string(), destination});
  const size_t n = backends->size();
  const size_t start = n == 0 ? 0 : static_cast<size_t>(rotation++ % n);
  std::vector<std::string> denied_by;
  for (size_t i = 0; i < n; ++i) {
    const xds::ServiceMap::Backend& b = (*backends)[(start + i) % n];
    const policy::Decision decision = policy.CheckEgress(b.address, b.port, protocol);
    if (decision.allowed) {
      pick.backend = filters::Endpoint{b.address, b.port};
      return pick;
    }
    for (const std::string& p : decision.policies) {
      if (std::find(denied_by.begin(), denied_by.end(), p) == denied_by.end()) {
        denied_by.push_back(p);
      }
    }
  }
  const std::string& service = pick.service->name;
  pick.denial = filters::FilterResult::Deny(filters::CloseReason::kPolicyDenied,
                                            n == 0 ? "Service " + service + " has no backends"
                                                   : "none of " + std::to_string(n) +
                                                         " backends of Service " + service +
                                                         " allowed by egress policy");
  pick.denial.policies = std::move(denied_by);
  return pick;
}

}  // namespace picket::proxy
