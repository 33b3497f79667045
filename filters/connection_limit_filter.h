// filters/connection_limit_filter.h — refuses new connections above a fixed number.
//
// Owns: `ConnectionLimitFilter`. It reads the proxy-wide count of active connections (a gauge the
// proxy owns and updates) and denies with kConnectionLimit once `max_connections` are open.
// The count is read with relaxed ordering: a limit enforced within a few connections across
// workers is enough, and the check costs one load.
//
// Threads: any worker; the counter outlives every filter.
#pragma once

#include <atomic>
#include <cstdint>

#include "filters/filter.h"

namespace picket::filters {

class ConnectionLimitFilter final : public Filter {
 public:
  ConnectionLimitFilter(uint64_t max_connections, const std::atomic<int64_t>& active)
      : max_connections_(max_connections), active_(active) {}
  FilterResult OnNewConnection(const ConnectionInfo& info) override;

 private:
  const uint64_t max_connections_;
  const std::atomic<int64_t>& active_;
};

}  // namespace picket::filters
