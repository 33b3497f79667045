#include "proxy/pump.h"

#include <cerrno>

namespace picket::proxy {

Pump::Outcome Pump::Run(PumpIo& io, size_t budget, Reading reading) {
  if (failed_) return Outcome::kError;
  if (finished_) return Outcome::kOpen;
  size_t moved = 0;
  bool write_blocked = false;
  bool read_blocked = false;  // would block, maybe because the buffer is full: retry after a write
  bool drained = false;       // the source is empty: wait for its next edge
  source_full_ = false;
  yielded_ = false;
  while (moved < budget) {
    bool progressed = false;
    const size_t capacity = io.Capacity();
    if (!eof_ && !read_blocked && !drained && buffered_ < capacity) {
      IoResult r = io.Read(capacity - buffered_);
      if (r.n > 0) {
        buffered_ += static_cast<size_t>(r.n);
        if (r.drained && reading == Reading::kShortReadDrains) drained = true;
        if (r.drained && reading == Reading::kShortReadEnds) eof_ = true;
        continue;  // fill first: an end of stream behind the data is then seen before writing
      }
      if (r.n == 0 && r.error == 0) {
        eof_ = true;
        progressed = true;
      } else if (r.error == EAGAIN || r.error == EWOULDBLOCK) {
        (r.drained ? drained : read_blocked) = true;
      } else {
        failed_ = true;
        failed_on_read_ = true;
        error_ = r.error;
        return Outcome::kError;
      }
    }
    if (buffered_ > 0 && !write_blocked) {
      IoResult w = io.Write(buffered_, eof_);
      if (w.n > 0) {
        buffered_ -= static_cast<size_t>(w.n);
        bytes_ += static_cast<uint64_t>(w.n);
        moved += static_cast<size_t>(w.n);
        progressed = true;
        read_blocked = false;  // room again: the source may have more
      } else if (w.error == EAGAIN || w.error == EWOULDBLOCK) {
        write_blocked = true;
      } else {
        failed_ = true;
        error_ = w.error != 0 ? w.error : EPIPE;
        return Outcome::kError;
      }
    }
    if (!progressed) break;
  }
  yielded_ = moved >= budget;
  // Would-block on read with bytes still buffered: treat the buffer as full until a write makes
  // room (see source_full_).
  source_full_ = buffered_ > 0 && (read_blocked || buffered_ >= io.Capacity());
  if (buffered_ == 0) {
    io.Release();
  } else {
    io.Park();
  }
  if (eof_ && buffered_ == 0) {
    finished_ = true;
    return Outcome::kFinished;
  }
  return Outcome::kOpen;
}

}  // namespace picket::proxy
