#include "proxy/flow_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace picket::proxy {
namespace {

constexpr size_t kMaxQueued = 65536;  // beyond this, records are dropped and counted
constexpr auto kSuppressedInterval = std::chrono::seconds(1);

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

FlowLog::FlowLog(const config::Bootstrap::FlowLog& config, NodeIdentity node, Stats& stats)
    : config_(config), node_(std::move(node)), stats_(stats), limiter_(config.rate_per_source) {}

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

void FlowLog::Submit(FlowRecord record) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!limiter_.Allow(record.source.address, RateLimiter::Clock::now())) {
      stats_.flow_records_suppressed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (queue_.size() >= kMaxQueued) {
      stats_.flow_records_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(record));
    ++submitted_;
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
  wake_.notify_one();
  flushed_.wait(lock, [&] { return written_ >= target || !writer_.joinable(); });
}

void FlowLog::WriterMain() {
  std::vector<FlowRecord> batch;
  auto next_suppressed = RateLimiter::Clock::now() + kSuppressedInterval;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait_until(lock, next_suppressed, [&] { return stopping_ || !queue_.empty(); });
    batch.swap(queue_);
    std::vector<std::pair<policy::IpAddress, uint64_t>> suppressed;
    auto now = RateLimiter::Clock::now();
    if (now >= next_suppressed || stopping_) {
      suppressed = limiter_.TakeSuppressed(now);
      next_suppressed = now + kSuppressedInterval;
    }
    bool stop = stopping_;
    lock.unlock();

    std::string lines;
    auto wall = std::chrono::system_clock::now();
    for (const auto& [source, count] : suppressed) {
      lines += SuppressedJson(wall, source.ToString(), count, node_);
      lines += '\n';
    }
    std::vector<Rendered> rendered;
    rendered.reserve(batch.size());
    for (const FlowRecord& r : batch) {
      rendered.push_back(Rendered{r.forwarded, FlowRecordJson(r, node_)});
      lines += rendered.back().line;
      lines += '\n';
    }
    if (!lines.empty()) WriteLines(lines);
    stats_.flow_records_written.fetch_add(batch.size(), std::memory_order_relaxed);
    size_t count = batch.size();
    batch.clear();  // releases the policy snapshots off the lock

    lock.lock();
    for (Rendered& r : rendered) {
      if (config_.recent == 0) break;
      if (recent_.size() >= config_.recent) recent_.pop_front();
      recent_.push_back(std::move(r));
    }
    written_ += count;
    flushed_.notify_all();
    if (stop && queue_.empty()) break;
  }
}

void FlowLog::WriteLines(const std::string& lines) {
  if (file_) {
    file_->Write(lines);
  } else {
    WriteAll(STDOUT_FILENO, lines);
  }
}

}  // namespace picket::proxy
