#include "proxy/flow_budget.h"

#include <cstring>

namespace picket::proxy {

std::string_view SuppressReasonName(SuppressReason reason) {
  switch (reason) {
    case SuppressReason::kPerSource:
      return "per_source";
    case SuppressReason::kGlobalLines:
      return "global_lines";
    case SuppressReason::kGlobalBytes:
      return "global_bytes";
    case SuppressReason::kQueueFull:
      return "queue_full";
  }
  return "unknown";
}

bool WindowBudget::Take(uint64_t amount, bool first_seen, Clock::time_point now) {
  if (!started_ || now - window_start_ >= std::chrono::seconds(1) || now < window_start_) {
    started_ = true;
    window_start_ = now;
    used_ = 0;
  }
  const uint64_t cap = first_seen ? limit_ : (limit_ > reserve_ ? limit_ - reserve_ : 0);
  if (used_ + amount > cap) return false;
  used_ += amount;
  return true;
}

size_t FlowTupleHash::operator()(const FlowTuple& t) const {
  // FNV-1a over the fields; cheap and good enough for a bounded table.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  mix(t.source.bytes.data(), t.source.bytes.size());
  mix(t.destination.bytes.data(), t.destination.bytes.size());
  const uint8_t tail[4] = {static_cast<uint8_t>(t.port), static_cast<uint8_t>(t.port >> 8),
                           static_cast<uint8_t>(t.inbound), static_cast<uint8_t>(t.source.v6)};
  mix(tail, sizeof(tail));
  return static_cast<size_t>(h);
}

TupleSet::TupleSet(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
  index_.reserve(capacity_);  // no rehash (and no growth) once running
}

void TupleSet::Insert(const FlowTuple& tuple) {
  if (auto it = index_.find(tuple); it != index_.end()) {
    order_.splice(order_.begin(), order_, it->second);
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(order_.back());
    // Reuse the evicted node: no allocation once the set is full.
    order_.splice(order_.begin(), order_, std::prev(order_.end()));
    order_.front() = tuple;
  } else {
    order_.push_front(tuple);
  }
  index_.emplace(tuple, order_.begin());
}

}  // namespace picket::proxy
