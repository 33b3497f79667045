// proxy/flow_log.h — the per-pod flow log: rate limit, JSON rendering and writing off the loop.
//
// Owns: `FlowLog`. Workers call Submit() (a lock, a rate-limit check and a queue push; no I/O,
// no rendering); a dedicated writer thread renders records to JSON lines in batches, writes
// them to the sink (a size-rotated file, or stdout), keeps the most recent ones for /flows, and
// once a second writes a `{"suppressed": N, "source": ...}` line per rate-limited source.
// Denies are always submitted; allowed flows only when `log_allowed` (the caller checks).
//
// Threads: Submit/Recent from any thread. Start() once; Stop() flushes and joins (idempotent).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/bootstrap.h"
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

class FlowLog {
 public:
  FlowLog(const config::Bootstrap::FlowLog& config, NodeIdentity node, Stats& stats);
  ~FlowLog();
  FlowLog(const FlowLog&) = delete;
  FlowLog& operator=(const FlowLog&) = delete;

  // Opens the sink and starts the writer; an error names the file.
  [[nodiscard]] bool Start(std::string* error);
  void Stop();

  void Submit(FlowRecord record);
  // Most recent rendered lines, oldest first; `verdict` ("FORWARDED"/"DROPPED") filters if set.
  std::vector<std::string> Recent(const std::string& verdict) const;
  // Blocks until everything submitted so far is written (tests, shutdown).
  void Flush();

 private:
  struct Rendered {
    bool forwarded;
    std::string line;
  };
  void WriterMain();
  void WriteLines(const std::string& lines);

  const config::Bootstrap::FlowLog config_;
  const NodeIdentity node_;
  Stats& stats_;
  std::unique_ptr<RotatingFile> file_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::vector<FlowRecord> queue_;
  RateLimiter limiter_;
  uint64_t submitted_ = 0;
  uint64_t written_ = 0;
  bool stopping_ = false;
  std::deque<Rendered> recent_;
  std::thread writer_;
};

}  // namespace picket::proxy
