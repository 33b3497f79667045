#include "filters/policy_filter.h"

#include <utility>

namespace picket::filters {

FilterResult CheckPolicy(const policy::EndpointPolicy* policy, const ConnectionInfo& info) {
  if (policy == nullptr) {
    return FilterResult::Deny(CloseReason::kNoPolicyYet, "no policy loaded yet (fail closed)");
  }
  policy::Decision decision =
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
  result.policies = std::move(decision.policies);
  result.detail = std::move(decision.detail);
  return result;
}

FilterResult PolicyFilter::OnNewConnection(const ConnectionInfo& info) {
  return CheckPolicy(source_.CurrentPolicy(), info);
}

}  // namespace picket::filters
