// proxy/byte_mover.h — how one relay direction moves bytes: splice(2) through a pipe, or a
// user-space buffer when no pipe can be had.
//
// Owns: `PipePool` (per worker: spare pipes, reused so a request/response exchange does not
// create a pipe per message, and one scratch buffer) and `ByteMover` (the PumpIo of one
// direction). A direction starts in copy mode: recv() into the worker's scratch buffer and send()
// straight on — for small messages two syscalls and no per-connection memory. A read that fills
// the whole buffer marks the direction as bulk, and from then on it moves bytes with splice(2)
// through a pipe, never copying them to user space. Bytes that cannot be sent at once move from
// the scratch to a private buffer (Park). Pipe and buffer are taken only when data arrives and
// given back as soon as the direction is drained, so an idle connection holds neither.
//
// Pipe size: an unprivileged user's pipes share 64 MiB (fs.pipe-user-pages-soft) before the
// kernel hands out 8 KiB ones. A worker's first kLargePipes pipes get 1 MiB (fewest splice calls
// for the few busy streams of a typical pod); beyond that `pipe_size` (256 KiB: ~96% of the
// throughput, four times as many busy directions from the same budget).
//
// Threads: one worker loop; a pool outlives every ByteMover that uses it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include "proxy/pump.h"

namespace picket::proxy {

struct PipeFds {
  int read = -1;
  int write = -1;
};

class PipePool {
 public:
  static constexpr size_t kLargePipes = 8;
  static constexpr size_t kLargePipeSize = 1 << 20;
  PipePool(size_t pipe_size, size_t max_spare) : pipe_size_(pipe_size), max_spare_(max_spare) {}
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // A spare or new pipe (false when none can be created: EMFILE, ENFILE, ...).
  bool Acquire(PipeFds* pipe, size_t* capacity);
  // Takes back an EMPTY pipe.
  void Release(PipeFds pipe, size_t capacity);
  // A pipe that may hold bytes (an aborted direction): closed, never reused.
  void Discard(PipeFds pipe);
  size_t open_pipes() const { return open_; }
  // The worker's scratch buffer (kScratchSize bytes), valid within one Pump::Run only.
  static constexpr size_t kScratchSize = 64 * 1024;
  char* scratch() { return scratch_.get(); }

 private:
  static void CloseFds(PipeFds pipe);
  struct Spare {
    PipeFds fds;
    size_t capacity;
  };
  size_t pipe_size_;
  size_t max_spare_;
  size_t open_ = 0;
  std::vector<Spare> spare_;
  std::unique_ptr<char[]> scratch_{new char[kScratchSize]};
};

class ByteMover final : public PumpIo {
 public:
  // `pool` may be null (no splice). `buffer_size` bounds the user-space fallback buffer.
  ByteMover(PipePool* pool, size_t buffer_size)
      : pool_(pool), buffer_size_(static_cast<uint32_t>(buffer_size)) {}
  // The sockets (owned by the caller); before the first Read.
  void Attach(int source_fd, int destination_fd) {
    source_ = source_fd;
    destination_ = destination_fd;
  }
  ~ByteMover() override;
  ByteMover(const ByteMover&) = delete;
  ByteMover& operator=(const ByteMover&) = delete;

  IoResult Read(size_t max) override;
  IoResult Write(size_t max, bool last) override;
  size_t Capacity() const override;
  void Release() override;
  void Park() override;

 private:
  bool AcquirePipe();
  char* data() { return in_scratch_ ? pool_->scratch() : buffer_.get(); }
  // Bytes copy mode holds at most: the scratch buffer bounds it when there is one.
  size_t CopyLimit() const {
    return pool_ != nullptr ? std::min<size_t>(buffer_size_, PipePool::kScratchSize) : buffer_size_;
  }

  int source_ = -1;
  int destination_ = -1;
  PipePool* pool_;
  uint32_t buffer_size_;
  uint32_t pipe_capacity_ = 0;
  PipeFds pipe_;
  std::unique_ptr<char[]> buffer_;  // copy mode: [begin_, end_) of data() holds unsent bytes
  uint32_t begin_ = 0;
  uint32_t end_ = 0;
  bool in_scratch_ = false;  // the unsent bytes are in the worker's scratch buffer
  bool bulk_ = false;        // a read filled the buffer: use splice from now on
  bool lost_ = false;        // Park could not allocate: fail the next write
};

}  // namespace picket::proxy
