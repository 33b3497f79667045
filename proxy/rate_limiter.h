// proxy/rate_limiter.h — per-source token buckets for the flow log.
//
// Owns: `RateLimiter`: each source address may emit `rate` records per second (burst `rate`);
// what is over is counted per source and handed out by TakeSuppressed() for a periodic
// `{"suppressed": N}` record. Memory is bounded: at most `max_sources` buckets; past that the
// table is cleared (a flood of spoofed sources cannot grow it).
//
// Threads: not thread-safe; the flow log calls it under its lock. Time is passed in (testable).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "policy/ip_address.h"

namespace picket::proxy {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(uint32_t rate_per_second, size_t max_sources = 16384)
      : rate_(rate_per_second), max_sources_(max_sources) {}

  // True if a record from `source` may be written now.
  bool Allow(const policy::IpAddress& source, Clock::time_point now);
  // Suppressed counts since the last call (sources with zero are not listed); forgets sources
  // whose bucket has refilled.
  std::vector<std::pair<policy::IpAddress, uint64_t>> TakeSuppressed(Clock::time_point now);
  size_t sources() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
    uint64_t suppressed = 0;
  };
  using Key = std::pair<bool, std::array<uint8_t, 16>>;
  uint32_t rate_;
  size_t max_sources_;
  std::map<Key, Bucket> buckets_;
};

}  // namespace picket::proxy
