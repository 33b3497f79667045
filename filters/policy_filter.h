// filters/policy_filter.h — the verdict: asks the current policy snapshot about a connection.
//
// Owns: `PolicySource` (the seam through which a filter sees the worker's current snapshot) and
// `PolicyFilter`. Outbound connections are checked with EndpointPolicy::CheckEgress against the
// original destination; inbound ones with CheckIngress against the source and the original
// destination port. No snapshot → deny with kNoPolicyYet (fail closed).
//
// Threads: called on one worker loop; the PolicySource is owned by that worker and outlives
// the filter.
#pragma once

#include "filters/filter.h"
#include "policy/endpoint_policy.h"

namespace picket::filters {

class PolicySource {
 public:
  virtual ~PolicySource() = default;
  // The snapshot in force on the calling thread, or nullptr before the first one.
  virtual const policy::EndpointPolicy* CurrentPolicy() const = 0;
};

class PolicyFilter final : public Filter {
 public:
  explicit PolicyFilter(const PolicySource& source) : source_(source) {}
  FilterResult OnNewConnection(const ConnectionInfo& info) override;

 private:
  const PolicySource& source_;
};

// The decision of `policy` (may be null) for `info`, as a FilterResult. Shared by the filter
// and the re-check of established connections after a policy update.
FilterResult CheckPolicy(const policy::EndpointPolicy* policy, const ConnectionInfo& info);

}  // namespace picket::filters
