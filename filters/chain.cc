#include "filters/chain.h"

#include <iterator>
#include <utility>

#include "filters/connection_limit_filter.h"

namespace picket::filters {

FilterResult FilterChain::Run(const ConnectionInfo& info) {
  FilterResult merged;
  for (const auto& filter : filters_) {
    FilterResult r = filter->OnNewConnection(info);
    merged.policies.insert(merged.policies.end(), std::make_move_iterator(r.policies.begin()),
                           std::make_move_iterator(r.policies.end()));
    if (!r.detail.empty()) {
      if (!merged.detail.empty()) merged.detail += "; ";
      merged.detail += r.detail;
    }
    if (r.action != FilterResult::Action::kContinue) {
      merged.action = r.action;
      merged.reason = r.reason;
      return merged;
    }
  }
  return merged;
}

FilterChain BuildFilterChain(const ChainConfig& config, const ChainDeps& deps) {
  std::vector<std::unique_ptr<Filter>> filters;
  if (config.max_connections > 0 && deps.active_connections != nullptr) {
    filters.push_back(
        std::make_unique<ConnectionLimitFilter>(config.max_connections, *deps.active_connections));
  }
  filters.push_back(std::make_unique<PolicyFilter>(*deps.policy));
  return FilterChain(std::move(filters));
}

}  // namespace picket::filters
