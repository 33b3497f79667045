// proxy/flow_log.h — the per-pod flow log: rate limit, JSON rendering and writing off the loop.
//
// Owns: `FlowLog`. Workers call Submit() (a lock, the admission decision and a queue push; no
// I/O, no rendering); a dedicated writer thread renders records to JSON lines in batches, writes
// them to the sink (a size-rotated file of our own, RotatingFile, or stdout in chunks of whole
// lines a pipe writes atomically: WholeLineChunks) and keeps the most recent ones for /flows.
//
// Admission (proxy/flow_budget.h): a per-source token bucket, then a global lines-per-second
// budget at Submit and a global bytes-per-second budget after rendering, both with a quarter
// reserved for the first record of a tuple not logged recently. What is not written is counted
// by reason and reported once per interval (while suppression happens) in one
// `{"suppressed": N, "by_reason": {...}, "top_sources": [...]}` line.
// Revocations (DROPPED, close reason policy_changed) are not rate limited one by one: they are
// gathered per policy version and written as one `{"policy_changed": {...}}` line per change at
// the next interval tick (or Flush/Stop). A change whose revocations straddle a tick is split.
// Denies are always submitted; allowed flows only when `log_allowed` (the caller checks).
// The deny fast path is AdmitDenial(): decide first, build the record only when admitted.
//
// Threads: Submit/AdmitDenial/Recent from any thread. Start() once; Stop() flushes and joins
// (idempotent). Time comes from the injected clock (steady_clock by default), so tests drive
// the budget windows and the summary interval without sleeping.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/bootstrap.h"
#include "proxy/flow_budget.h"
#include "proxy/flow_record.h"
#include "proxy/rate_limiter.h"
#include "proxy/stats.h"

namespace picket::proxy {

// Appends lines to a file, rotating `path` → `path.1` → … → `path.N` past `max_size` bytes.
class RotatingFile {
 public:
  RotatingFile(std::string path, uint64_t max_size, uint32_t max_files)
      : path_(std::move(path)), max_size_(max_size), max_files_(max_files) {}
  ~RotatingFile();
  // Opens (appending); false with errno set on failure.
  bool Open();
  void Write(const std::string& data);

 private:
  void Rotate();
  std::string path_;
  uint64_t max_size_;
  uint32_t max_files_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// `lines` (whole lines, each ending in '\n') cut into consecutive chunks of whole lines of at
// most `limit` bytes each; a line longer than `limit` is a chunk of its own. The stdout sink
// writes each chunk with one write(): up to PIPE_BUF a pipe write is atomic, so the process log
// sharing stdout (bootstrap process_log: stdout) never splits a record.
std::vector<std::string_view> WholeLineChunks(std::string_view lines, size_t limit);

class FlowLog {
 public:
  using Clock = std::chrono::steady_clock;
  using ClockFn = std::function<Clock::time_point()>;
  static constexpr auto kSummaryInterval = std::chrono::seconds(1);

  FlowLog(const config::Bootstrap::FlowLog& config, NodeIdentity node, Stats& stats,
          ClockFn clock = nullptr);
  ~FlowLog();
  FlowLog(const FlowLog&) = delete;
  FlowLog& operator=(const FlowLog&) = delete;

  // Opens the sink and starts the writer; an error names the file.
  [[nodiscard]] bool Start(std::string* error);
  void Stop();

  // Admits (or counts as suppressed) and queues one record.
  void Submit(FlowRecord record);
  // The deny fast path: true if a denial of this tuple is to be logged now (the caller then
  // builds the record and passes it to SubmitAdmitted with `first_seen`). A false costs a lock,
  // two table look-ups and no allocation.
  struct Admission {
    bool admitted = false;
    bool first_seen = false;
    Clock::time_point at;
  };
  Admission AdmitDenial(const filters::Endpoint& source, const filters::Endpoint& destination,
                        filters::Direction direction);
  void SubmitAdmitted(FlowRecord record, Admission admission);
  // Most recent rendered lines, oldest first; `verdict` ("FORWARDED"/"DROPPED") filters if set.
  std::vector<std::string> Recent(const std::string& verdict) const;
  // Blocks until everything submitted so far is written (tests, shutdown).
  void Flush();

 private:
  struct Rendered {
    bool forwarded;
    std::string line;
  };
  struct Queued {
    FlowRecord record;
    bool first_seen = false;
    Clock::time_point admitted;  // the byte budget's window is the admission's
  };
  Admission AdmitLocked(const FlowTuple& tuple, const base::IpAddress& source,
                        Clock::time_point now);
  void SuppressLocked(SuppressReason reason);
  void PushLocked(FlowRecord record, Admission admission);
  void AddRevocationLocked(FlowRecord record);
  void WriterMain();
  void WriteLines(const std::string& lines);

  const config::Bootstrap::FlowLog config_;
  const NodeIdentity node_;
  Stats& stats_;
  std::unique_ptr<RotatingFile> file_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  const ClockFn clock_;
  std::vector<Queued> queue_;
  RateLimiter limiter_;
  WindowBudget lines_;
  TupleSet tuples_;
  std::array<uint64_t, kSuppressReasonCount> suppressed_{};
  std::map<std::string, RevocationSummary> revocations_;  // by policy version, bounded
  uint64_t submitted_ = 0;
  uint64_t written_ = 0;
  uint64_t flush_requested_ = 0;
  uint64_t flush_done_ = 0;
  bool stopping_ = false;
  std::deque<Rendered> recent_;
  WindowBudget bytes_;  // writer thread only
  std::thread writer_;
};

}  // namespace picket::proxy
