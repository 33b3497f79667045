// filters/chain.h — the filter chain of one worker, built from config in one plain function.
//
// Owns: `FilterChain` (runs filters in order, stops at the first deny or pause, gathers the
// "why" of every filter for the flow record) and `BuildFilterChain`.
//
// Threads: one chain per worker loop, used only on that loop's thread. The dependencies passed to
// BuildFilterChain outlive the chain.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "filters/filter.h"
#include "filters/policy_filter.h"

namespace picket::filters {

class FilterChain {
 public:
  explicit FilterChain(std::vector<std::unique_ptr<Filter>> filters)
      : filters_(std::move(filters)) {}
  FilterResult Run(const ConnectionInfo& info);
  size_t size() const { return filters_.size(); }

 private:
  std::vector<std::unique_ptr<Filter>> filters_;
};

struct ChainConfig {
  uint64_t max_connections = 0;  // 0: no connection-limit filter
};

struct ChainDeps {
  const PolicySource* policy = nullptr;                      // required
  const std::atomic<int64_t>* active_connections = nullptr;  // required when max_connections > 0
};

// Connection limit first (cheapest, and protects the rest), then the policy verdict.
FilterChain BuildFilterChain(const ChainConfig& config, const ChainDeps& deps);

}  // namespace picket::filters
