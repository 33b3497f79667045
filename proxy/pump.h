// proxy/pump.h — one direction of the relay: bytes from a source socket to a destination socket.
//
// Owns: `Pump`, the state machine both directions share (downstream→upstream and
// upstream→downstream are two Pumps; there is no second copy of this logic), and `PumpIo`, the
// seam through which it moves bytes (proxy/byte_mover.h with splice or a buffer; a fake in
// tests, so the logic is tested without a loop or sockets).
//
// Watermarks: the pump reads only while fewer than Capacity() bytes wait for the destination;
// once the destination is backed up it stops reading (the kernel's receive window then pushes
// back on the sender). Half-close: end of stream on the source is reported as kFinished once
// every byte is flushed; the owner then shuts down the destination for writing and the other
// direction keeps flowing. Any error is kError; the owner propagates it as a reset.
//
// Threads: used on one loop thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace picket::proxy {

// Result of one byte-moving call: n > 0 bytes moved; n == 0 && error == 0: end of stream (reads
// only); error == EAGAIN: would block; any other error: failed.
struct IoResult {
  ssize_t n = 0;
  int error = 0;
  // Reads only: the source's queue is known to be empty now (a socket read came back short or
  // would block), as opposed to a would-block that may mean the buffer (a pipe counts slots, not
  // bytes) is what is full. An empty socket signals again when data or FIN arrives.
  bool drained = false;
};

class PumpIo {
 public:
  virtual ~PumpIo() = default;
  // Source socket → this direction's buffer, at most `max` bytes.
  virtual IoResult Read(size_t max) = 0;
  // Buffer → destination socket, at most `max` bytes (the caller passes what is buffered).
  // `last`: the source is at end of stream, so once these bytes are written the owner shuts the
  // destination down (TCP may then carry the FIN in the same segment as the data).
  virtual IoResult Write(size_t max, bool last) = 0;
  // How many bytes the buffer holds at most (the high watermark).
  virtual size_t Capacity() const = 0;
  // The buffer is empty: give its memory or pipe back until data arrives again.
  virtual void Release() {}
  // Run is returning with bytes still buffered: they must survive until the next Run.
  virtual void Park() {}
};

class Pump {
 public:
  enum class Outcome : uint8_t {
    kOpen,      // still flowing; wait for what wants_read()/wants_write() say
    kFinished,  // end of stream read and fully flushed (reported once): shut down the destination
    kError,     // read or write failed (error() has the errno, failed_on_read() which side)
  };

  // How far a read goes before the pump may stop reading.
  enum class Reading : uint8_t {
    // Until the source would block or ends: nothing is known about its readiness (the first run
    // after connecting, a resumed run, a run prompted by the destination's event).
    kUntilBlocked,
    // A short read means the source is drained: the caller is handling the source's own readable
    // edge and that edge did not report the peer's FIN (EPOLLRDHUP), so any byte or FIN that
    // arrives later raises a new edge. Saves the would-block read per message.
    kShortReadDrains,
    // A short read means the end of stream: the source's own edge reported the peer's FIN, and a
    // FIN is taken in only after every byte before it is queued. Saves the read that returns 0.
    kShortReadEnds,
  };

  // Moves bytes until the source or destination would block, or `budget` bytes moved (fairness
  // between connections on one loop: a level-triggered poll calls again). Reads before writing,
  // so that an end of stream right behind the data is seen before the data is sent.
  Outcome Run(PumpIo& io, size_t budget, Reading reading = Reading::kUntilBlocked);

  bool wants_read() const { return !eof_ && !failed_ && !source_full_; }
  bool wants_write() const { return buffered_ > 0 && !failed_; }
  bool finished() const { return finished_; }
  // The last Run stopped at its budget with more to do: run again without waiting for an event
  // (with edge-triggered readiness none would come).
  bool yielded() const { return yielded_; }
  size_t buffered() const { return buffered_; }
  uint64_t bytes() const { return bytes_; }
  int error() const { return error_; }
  bool failed_on_read() const { return failed_on_read_; }

 private:
  size_t buffered_ = 0;  // read but not yet written
  uint64_t bytes_ = 0;   // written to the destination
  int error_ = 0;
  bool eof_ = false;
  bool finished_ = false;
  bool failed_ = false;
  bool failed_on_read_ = false;
  bool yielded_ = false;
  // A read would block while bytes are buffered: the buffer (a pipe counts slots, not bytes)
  // may be what is full, so wait for the destination instead of polling the source in a loop.
  bool source_full_ = false;
};

}  // namespace picket::proxy
