#include "proxy/flow_log.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace picket::proxy {
namespace {

constexpr size_t kMaxQueued = 65536;     // beyond this, records are dropped and counted
constexpr uint64_t kReserveDivisor = 4;  // a quarter of each budget is for first-seen tuples
constexpr size_t kMaxRevocationGroups = 16;
constexpr size_t kMaxRevocationPolicies = 16;
constexpr size_t kRevocationSample = 3;
constexpr size_t kTopSources = 10;

void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a full disk must not stop the proxy; records are lost
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace

RotatingFile::~RotatingFile() {
  if (fd_ >= 0) close(fd_);
}

bool RotatingFile::Open() {
  fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) return false;
  off_t end = lseek(fd_, 0, SEEK_END);
  size_ = end > 0 ? static_cast<uint64_t>(end) : 0;
  return true;
}

void RotatingFile::Write(const std::string& data) {
  if (fd_ < 0) return;
  if (size_ > 0 && size_ + data.size() > max_size_) Rotate();
  WriteAll(fd_, data);
  size_ += data.size();
}

void RotatingFile::Rotate() {
  close(fd_);
  fd_ = -1;
  if (max_files_ == 0) {
    unlink(path_.c_str());
  } else {
    for (uint32_t i = max_files_; i > 1; --i) {
      std::rename((path_ + "." + std::to_string(i - 1)).c_str(),
                  (path_ + "." + std::to_string(i)).c_str());
    }
    std::rename(path_.c_str(), (path_ + ".1").c_str());
  }
  Open();
  size_ = 0;
}

FlowLog::FlowLog(const config::Bootstrap::FlowLog& config, NodeIdentity node, Stats& stats,
                 ClockFn clock)
    : config_(config),
      node_(std::move(node)),
      stats_(stats),
      clock_(clock ? std::move(clock) : ClockFn([] { return Clock::now(); })),
      limiter_(config.rate_per_source),
      lines_(config.lines_per_second, config.lines_per_second / kReserveDivisor),
      tuples_(config.recent_tuples),
      bytes_(config.bytes_per_second, config.bytes_per_second / kReserveDivisor) {}

FlowLog::~FlowLog() { Stop(); }

bool FlowLog::Start(std::string* error) {
  if (config_.path != "stdout") {
    file_ = std::make_unique<RotatingFile>(config_.path, config_.max_size_bytes, config_.max_files);
    if (!file_->Open()) {
      *error = config_.path + ": cannot open flow log: " + std::strerror(errno);
      return false;
    }
  }
  writer_ = std::thread([this] { WriterMain(); });
  return true;
}

void FlowLog::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

FlowLog::Admission FlowLog::AdmitLocked(const FlowTuple& tuple, const base::IpAddress& source,
                                        Clock::time_point now) {
  const bool first_seen = !tuples_.Contains(tuple);
  // A tuple not logged recently skips the per-source limit: its first denial is the one that
  // tells the operator something new, and the global budget still bounds it.
  if (!first_seen && !limiter_.Allow(source, now)) {
    SuppressLocked(SuppressReason::kPerSource);
    return {};
  }
  if (!lines_.Take(1, first_seen, now)) {
    SuppressLocked(SuppressReason::kGlobalLines);
    return {};
  }
  if (queue_.size() >= kMaxQueued) {
    SuppressLocked(SuppressReason::kQueueFull);
    stats_.flow_records_dropped.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  tuples_.Insert(tuple);
  return {true, first_seen, now};
}

void FlowLog::SuppressLocked(SuppressReason reason) {
  ++suppressed_[static_cast<size_t>(reason)];
  stats_.flow_records_suppressed.fetch_add(1, std::memory_order_relaxed);
}

void FlowLog::PushLocked(FlowRecord record, Admission admission) {
  queue_.push_back(Queued{std::move(record), admission.first_seen, admission.at});
  ++submitted_;
}

void FlowLog::AddRevocationLocked(FlowRecord record) {
  std::string version = record.policy ? record.policy->version() : std::string();
  auto it = revocations_.find(version);
  if (it == revocations_.end()) {
    if (revocations_.size() >= kMaxRevocationGroups) {
      it = std::prev(revocations_.end());  // bounded: fold into an existing group
    } else {
      it = revocations_.emplace(version, RevocationSummary{}).first;
      it->second.policy_version = version;
    }
  }
  RevocationSummary& summary = it->second;
  ++summary.count;
  for (const std::string& p : record.policies) {
    if (summary.policies.size() >= kMaxRevocationPolicies) break;
    if (std::find(summary.policies.begin(), summary.policies.end(), p) == summary.policies.end()) {
      summary.policies.push_back(p);
    }
  }
  if (summary.sample.size() < kRevocationSample) summary.sample.push_back(std::move(record));
  ++submitted_;
}

void FlowLog::Submit(FlowRecord record) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!record.forwarded && record.close_reason == filters::CloseReason::kPolicyChanged) {
      AddRevocationLocked(std::move(record));
      return;  // written at the next tick, as one record per policy change
    }
    FlowTuple tuple{record.source.address, record.destination.address, record.destination.port,
                    record.direction == filters::Direction::kInbound};
    Admission admission = AdmitLocked(tuple, record.source.address, clock_());
    if (!admission.admitted) return;
    PushLocked(std::move(record), admission);
  }
  wake_.notify_one();
}

FlowLog::Admission FlowLog::AdmitDenial(const filters::Endpoint& source,
                                        const filters::Endpoint& destination,
                                        filters::Direction direction) {
  FlowTuple tuple{source.address, destination.address, destination.port,
                  direction == filters::Direction::kInbound};
  std::lock_guard<std::mutex> lock(mu_);
  return AdmitLocked(tuple, source.address, clock_());
}

void FlowLog::SubmitAdmitted(FlowRecord record, Admission admission) {
  if (!admission.admitted) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    PushLocked(std::move(record), admission);
  }
  wake_.notify_one();
}

std::vector<std::string> FlowLog::Recent(const std::string& verdict) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const Rendered& r : recent_) {
    if (verdict.empty() || (verdict == "FORWARDED") == r.forwarded) out.push_back(r.line);
  }
  return out;
}

void FlowLog::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  uint64_t target = submitted_;
  uint64_t request = ++flush_requested_;
  wake_.notify_one();
  flushed_.wait(
      lock, [&] { return (written_ >= target && flush_done_ >= request) || !writer_.joinable(); });
}

void FlowLog::WriterMain() {
  std::vector<Queued> batch;
  std::vector<std::pair<std::string, uint64_t>> top;
  Clock::time_point last_summary = clock_();
  uint64_t bytes_suppressed = 0;  // since the last summary
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // Real time only paces the wake-ups; the interval itself is measured on the injected clock.
    wake_.wait_for(lock, kSummaryInterval,
                   [&] { return stopping_ || !queue_.empty() || flush_requested_ > flush_done_; });
    batch.swap(queue_);
    const Clock::time_point now = clock_();
    const bool tick = now - last_summary >= kSummaryInterval || stopping_;
    const uint64_t flush_seen = flush_requested_;
    SuppressedSummary summary;
    if (tick) {
      summary.interval_ms = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(now - last_summary).count());
      summary.by_reason = suppressed_;
      suppressed_ = {};
      summary.by_reason[static_cast<size_t>(SuppressReason::kGlobalBytes)] += bytes_suppressed;
      bytes_suppressed = 0;
      for (uint64_t n : summary.by_reason) summary.total += n;
      if (summary.total > 0) {
        auto sources = limiter_.TakeSuppressed(now);
        size_t keep = std::min(sources.size(), kTopSources);
        std::partial_sort(sources.begin(), sources.begin() + keep, sources.end(),
                          [](const auto& x, const auto& y) { return x.second > y.second; });
        for (size_t i = 0; i < keep; ++i) {
          summary.top_sources.emplace_back(sources[i].first.ToString(), sources[i].second);
        }
      } else {
        limiter_.TakeSuppressed(now);  // forgets idle sources
      }
      last_summary = now;
    }
    std::map<std::string, RevocationSummary> revocations;
    if (tick || flush_seen > flush_done_) revocations.swap(revocations_);
    const bool stop = stopping_;
    lock.unlock();

    std::string lines;
    const auto wall = std::chrono::system_clock::now();
    std::vector<Rendered> rendered;
    rendered.reserve(batch.size() + revocations.size());
    uint64_t count = 0;
    if (summary.total > 0) {
      lines += SuppressedJson(wall, summary, node_);
      lines += '\n';
    }
    for (auto& [version, revoked] : revocations) {
      rendered.push_back(Rendered{false, PolicyChangedJson(wall, revoked, node_)});
      lines += rendered.back().line;
      lines += '\n';
      count += revoked.count;
    }
    for (const Queued& q : batch) {
      ++count;
      std::string line = FlowRecordJson(q.record, node_);
      if (!bytes_.Take(line.size() + 1, q.first_seen, q.admitted)) {
        ++bytes_suppressed;
        stats_.flow_records_suppressed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      lines += line;
      lines += '\n';
      rendered.push_back(Rendered{q.record.forwarded, std::move(line)});
      stats_.flow_records_written.fetch_add(1, std::memory_order_relaxed);
    }
    if (!lines.empty()) WriteLines(lines);
    batch.clear();  // releases the policy snapshots off the lock
    revocations.clear();

    lock.lock();
    for (Rendered& r : rendered) {
      if (config_.recent == 0) break;
      if (recent_.size() >= config_.recent) recent_.pop_front();
      recent_.push_back(std::move(r));
    }
    written_ += count;
    flush_done_ = flush_seen;
    flushed_.notify_all();
    if (stop && queue_.empty() && revocations_.empty()) break;
  }
}

std::vector<std::string_view> WholeLineChunks(std::string_view lines, size_t limit) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < lines.size()) {
    size_t end = start;
    while (end < lines.size()) {
      const size_t nl = lines.find('\n', end);
      const size_t next = nl == std::string_view::npos ? lines.size() : nl + 1;
      if (end > start && next - start > limit) break;  // a line longer than limit goes alone
      end = next;
    }
    out.push_back(lines.substr(start, end - start));
    start = end;
  }
  return out;
}

void FlowLog::WriteLines(const std::string& lines) {
  if (file_) {
    file_->Write(lines);
    return;
  }
  // stdout is usually a pipe the process log may share (bootstrap process_log: stdout): a write
  // of at most PIPE_BUF bytes is atomic there, so a process-log line never lands in a record.
  for (std::string_view chunk : WholeLineChunks(lines, PIPE_BUF)) {
    WriteAll(STDOUT_FILENO, std::string(chunk));
  }
}

}  // namespace picket::proxy
