#include "filters/connection_limit_filter.h"

#include <string>

namespace picket::filters {

FilterResult ConnectionLimitFilter::OnNewConnection(const ConnectionInfo&) {
  int64_t active = active_.load(std::memory_order_relaxed);
  if (active >= 0 && static_cast<uint64_t>(active) >= max_connections_) {
    return FilterResult::Deny(CloseReason::kConnectionLimit,
                              "connection limit " + std::to_string(max_connections_) + " reached");
  }
  return FilterResult::Continue();
}

}  // namespace picket::filters
