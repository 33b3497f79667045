#include "filters/policy_filter.h"

#include <utility>

namespace picket::filters {

FilterResult CheckPolicy(const policy::EndpointPolicy* policy, const ConnectionInfo& info) {
  if (policy == nullptr) {
    return FilterResult::Deny(CloseReason::kNoPolicyYet, "no policy loaded yet (fail closed)");
  }
  const policy::Decision decision =
      info.direction == Direction::kOutbound
          ? policy->CheckEgress(info.original_destination.address, info.original_destination.port,
                                info.protocol)
          : policy->CheckIngress(info.source.address, info.original_destination.port,
                                 info.protocol);
  FilterResult result;
  if (!decision.allowed) {
    result.action = FilterResult::Action::kDeny;
    result.reason = CloseReason::kPolicyDenied;
  }
  // The decision refers into the snapshot; the result outlives it (flow records): copy.
  result.policies.assign(decision.policies.begin(), decision.policies.end());
  result.detail = decision.detail;
  return result;
}

FilterResult PolicyFilter::OnNewConnection(const ConnectionInfo& info) {
  return CheckPolicy(source_.CurrentPolicy(), info);
}

}  // namespace picket::filters
