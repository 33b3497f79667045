// proxy/flow_budget.h — the flow log's global budget and its memory of recently logged tuples.
//
// Owns: `WindowBudget` (at most `limit` units — lines or bytes — per one-second window, of which
// `reserve` only first-seen tuples may spend), `FlowTuple` and `TupleSet` (a bounded LRU of the
// (source, destination, port, direction) tuples logged recently), and `SuppressReason`.
// Together with the per-source RateLimiter they decide what the flow log writes: a record of a
// tuple not in the set skips the per-source limit and may use the whole window; any other record
// needs a per-source token and must leave the reserve untouched. So a flood of known tuples
// cannot spend the budget that the first denial of something new needs.
//
// Threads: not thread-safe; the flow log calls them under its lock (or on its writer thread
// only). Time is passed in (testable). Memory: TupleSet holds at most `capacity` entries of
// TupleSet::kBytesPerEntry each, allocated up front.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string_view>
#include <unordered_map>

#include "base/ip.h"

namespace picket::proxy {

enum class SuppressReason : uint8_t {
  kPerSource,    // the source's token bucket was empty
  kGlobalLines,  // the lines-per-second budget was spent
  kGlobalBytes,  // the bytes-per-second budget was spent
  kQueueFull,    // the writer fell behind
};
inline constexpr size_t kSuppressReasonCount = 4;
std::string_view SuppressReasonName(SuppressReason reason);

class WindowBudget {
 public:
  using Clock = std::chrono::steady_clock;
  WindowBudget(uint64_t limit, uint64_t reserve) : limit_(limit), reserve_(reserve) {}
  // Spends `amount` in the window containing `now` if it fits: a first-seen tuple may use the
  // whole limit, anything else only up to limit - reserve.
  bool Take(uint64_t amount, bool first_seen, Clock::time_point now);
  uint64_t used() const { return used_; }

 private:
  uint64_t limit_;
  uint64_t reserve_;
  uint64_t used_ = 0;
  bool started_ = false;
  Clock::time_point window_start_;
};

struct FlowTuple {
  base::IpAddress source;
  base::IpAddress destination;
  uint16_t port = 0;
  bool inbound = false;
  bool operator==(const FlowTuple&) const = default;
};

struct FlowTupleHash {
  size_t operator()(const FlowTuple& t) const;
};

class TupleSet {
 public:
  // A list node plus a hash node and its bucket; an upper estimate for the bound's test.
  static constexpr size_t kBytesPerEntry =
      sizeof(FlowTuple) + 2 * sizeof(void*) + sizeof(FlowTuple) + 4 * sizeof(void*);

  explicit TupleSet(size_t capacity);
  bool Contains(const FlowTuple& tuple) const { return index_.count(tuple) != 0; }
  // Marks `tuple` most recently logged; evicts the least recently logged past capacity.
  void Insert(const FlowTuple& tuple);
  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }
  size_t MemoryBound() const { return capacity_ * kBytesPerEntry; }

 private:
  size_t capacity_;
  std::list<FlowTuple> order_;  // front: most recent
  std::unordered_map<FlowTuple, std::list<FlowTuple>::iterator, FlowTupleHash> index_;
};

}  // namespace picket::proxy
