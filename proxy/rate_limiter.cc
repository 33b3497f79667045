#include "proxy/rate_limiter.h"

#include <algorithm>

namespace picket::proxy {

bool RateLimiter::Allow(const policy::IpAddress& source, Clock::time_point now) {
  Key key{source.v6, source.bytes};
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_sources_) {
      // Keep pending suppressed counts would need the memory we are protecting: drop them.
      buckets_.clear();
    }
    it = buckets_.emplace(key, Bucket{static_cast<double>(rate_), now, 0}).first;
  }
  Bucket& b = it->second;
  double elapsed = std::chrono::duration<double>(now - b.last).count();
  if (elapsed > 0) {
    b.tokens = std::min<double>(rate_, b.tokens + elapsed * rate_);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return true;
  }
  ++b.suppressed;
  return false;
}

std::vector<std::pair<policy::IpAddress, uint64_t>> RateLimiter::TakeSuppressed(
    Clock::time_point now) {
  std::vector<std::pair<policy::IpAddress, uint64_t>> out;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Bucket& b = it->second;
    if (b.suppressed > 0) {
      policy::IpAddress a;
      a.v6 = it->first.first;
      a.bytes = it->first.second;
      out.emplace_back(a, b.suppressed);
      b.suppressed = 0;
    }
    // A full bucket carries no state worth keeping: forget the source.
    double refill = std::chrono::duration<double>(now - b.last).count() * rate_;
    if (b.tokens + refill >= rate_) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace picket::proxy
