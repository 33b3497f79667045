#include "proxy/byte_mover.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace picket::proxy {
namespace {

IoResult FromSyscall(ssize_t rc) { return rc >= 0 ? IoResult{rc, 0} : IoResult{-1, errno}; }

}  // namespace

PipePool::~PipePool() {
  for (const Spare& s : spare_) CloseFds(s.fds);
}

void PipePool::Discard(PipeFds pipe) {
  CloseFds(pipe);
  --open_;
}

void PipePool::CloseFds(PipeFds pipe) {
  if (pipe.read >= 0) close(pipe.read);
  if (pipe.write >= 0) close(pipe.write);
}

bool PipePool::Acquire(PipeFds* pipe, size_t* capacity) {
  if (!spare_.empty()) {
    *pipe = spare_.back().fds;
    *capacity = spare_.back().capacity;
    spare_.pop_back();
    return true;
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
  // Best effort: beyond the per-user budget the kernel refuses to grow a pipe.
  const size_t want = open_ < kLargePipes ? std::max(kLargePipeSize, pipe_size_) : pipe_size_;
  if (fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(want)) < 0 && want != pipe_size_) {
    fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(pipe_size_));
  }
  int size = fcntl(fds[1], F_GETPIPE_SZ);
  *pipe = PipeFds{fds[0], fds[1]};
  *capacity = size > 0 ? static_cast<size_t>(size) : 65536;
  ++open_;
  return true;
}

void PipePool::Release(PipeFds pipe, size_t capacity) {
  if (spare_.size() < max_spare_) {
    spare_.push_back(Spare{pipe, capacity});
  } else {
    Discard(pipe);
  }
}

ByteMover::~ByteMover() {
  // Unwritten bytes may remain in an aborted direction's pipe: never reuse it.
  if (pipe_.read >= 0) pool_->Discard(pipe_);
}

bool ByteMover::AcquirePipe() {
  if (pipe_.read >= 0) return true;
  size_t capacity = 0;
  if (!pool_->Acquire(&pipe_, &capacity)) return false;
  pipe_capacity_ = static_cast<uint32_t>(capacity);
  return true;
}

IoResult ByteMover::Read(size_t max) {
  // Bulk, and nothing left in copy mode: switch to splice (if a pipe can be had).
  if (pipe_.read < 0 && bulk_ && pool_ != nullptr && begin_ == end_ && AcquirePipe()) {
    buffer_.reset();
    in_scratch_ = false;
  }
  if (pipe_.read >= 0) {
    return FromSyscall(
        splice(source_, nullptr, pipe_.write, nullptr, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
  }
  if (begin_ == end_ && !buffer_ && pool_ != nullptr) {
    in_scratch_ = true;  // nothing pending: read into the worker's scratch buffer
    begin_ = end_ = 0;
  } else if (!in_scratch_ && !buffer_) {
    buffer_.reset(new (std::nothrow) char[CopyLimit()]);
    if (!buffer_) return IoResult{-1, ENOBUFS};
    begin_ = end_ = 0;
  }
  // Never more than a private buffer holds, so Park() can always take what is left.
  const size_t room = CopyLimit() - end_;
  const size_t want = std::min(max, room);
  IoResult r = FromSyscall(recv(source_, data() + end_, want, 0));
  if (r.n > 0) {
    end_ += static_cast<uint32_t>(r.n);
    if (static_cast<size_t>(r.n) == room && room == CopyLimit()) bulk_ = true;
  }
  // recv() on a TCP socket returns short only when its receive queue ran empty.
  r.drained = (r.n > 0 && static_cast<size_t>(r.n) < want) || r.error == EAGAIN;
  return r;
}

IoResult ByteMover::Write(size_t max, bool last) {
  // Before a shutdown, "more" holds the bytes back for the FIN to join them (shutdown pushes).
  if (pipe_.read >= 0) {
    return FromSyscall(splice(pipe_.read, nullptr, destination_, nullptr, max,
                              SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (last ? SPLICE_F_MORE : 0)));
  }
  if (lost_) return IoResult{-1, ENOBUFS};
  size_t pending = end_ - begin_;
  IoResult r = FromSyscall(send(destination_, data() + begin_, std::min(max, pending),
                                MSG_NOSIGNAL | (last ? MSG_MORE : 0)));
  if (r.n > 0) {
    begin_ += static_cast<uint32_t>(r.n);
    if (begin_ == end_) begin_ = end_ = 0;
  }
  return r;
}

size_t ByteMover::Capacity() const {
  if (pipe_.read >= 0) return pipe_capacity_;
  return CopyLimit();
}

void ByteMover::Release() {
  if (pipe_.read >= 0) {
    pool_->Release(pipe_, pipe_capacity_);
    pipe_ = PipeFds{};
  }
  buffer_.reset();
  in_scratch_ = false;
  begin_ = end_ = 0;
}

void ByteMover::Park() {
  if (!in_scratch_) return;
  // The scratch buffer belongs to whichever connection runs next: keep the rest privately.
  const uint32_t pending = end_ - begin_;
  buffer_.reset(new (std::nothrow) char[CopyLimit()]);
  if (buffer_) std::memcpy(buffer_.get(), pool_->scratch() + begin_, pending);
  lost_ = !buffer_;  // out of memory: the bytes are lost and the next write fails (a reset)
  in_scratch_ = false;
  begin_ = 0;
  end_ = buffer_ ? pending : 0;
}

}  // namespace picket::proxy
