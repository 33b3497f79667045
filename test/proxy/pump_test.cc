// The relay's state machine, driven by a scripted PumpIo: no loop, no sockets.
#include "proxy/pump.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <deque>

namespace picket::proxy {
namespace {

// Source: a queue of read results; destination: accepts up to `writable` bytes, then EAGAIN.
class FakeIo final : public PumpIo {
 public:
  IoResult Read(size_t max) override {
    ++reads;
    if (source.empty()) return {-1, EAGAIN};
    IoResult& front = source.front();
    if (front.n > 0 && static_cast<size_t>(front.n) > max) {
      front.n -= static_cast<ssize_t>(max);
      return {static_cast<ssize_t>(max), 0};
    }
    IoResult r = front;
    source.pop_front();
    return r;
  }
  IoResult Write(size_t max, bool last) override {
    ++writes;
    last_write_was_last = last;
    if (write_error != 0) return {-1, write_error};
    if (writable == 0) return {-1, EAGAIN};
    size_t n = std::min(max, writable);
    writable -= n;
    written += n;
    return {static_cast<ssize_t>(n), 0};
  }
  size_t Capacity() const override { return capacity; }
  void Release() override { ++releases; }

  std::deque<IoResult> source;
  size_t writable = SIZE_MAX;
  size_t written = 0;
  size_t capacity = 1000;
  int write_error = 0;
  bool last_write_was_last = false;
  int reads = 0, writes = 0, releases = 0;
};

constexpr size_t kBudget = 1 << 20;

TEST(PumpTest, MovesBytesAndWaitsForMore) {
  FakeIo io;
  io.source = {{300, 0}, {200, 0}};
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_EQ(io.written, 500u);
  EXPECT_EQ(pump.bytes(), 500u);
  EXPECT_EQ(pump.buffered(), 0u);
  EXPECT_TRUE(pump.wants_read());
  EXPECT_FALSE(pump.wants_write());
  EXPECT_GE(io.releases, 1);  // drained: the buffer/pipe goes back
}

TEST(PumpTest, StopsReadingWhenTheDestinationIsBackedUp) {
  FakeIo io;
  io.capacity = 1000;
  io.writable = 0;  // destination full
  io.source = {{5000, 0}};
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_EQ(pump.buffered(), 1000u);  // high watermark: one buffer, no more
  EXPECT_FALSE(pump.wants_read());
  EXPECT_TRUE(pump.wants_write());
  EXPECT_EQ(io.releases, 0);

  // The destination drains 400: the pump writes them and refills up to capacity again.
  io.writable = 400;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_EQ(io.written, 400u);
  EXPECT_EQ(pump.buffered(), 1000u);
  EXPECT_FALSE(pump.wants_read());

  io.writable = SIZE_MAX;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_EQ(io.written, 5000u);
  EXPECT_TRUE(pump.wants_read());
}

TEST(PumpTest, WouldBlockWithBytesBufferedWaitsForTheDestinationNotTheSource) {
  // A pipe counts slots, not bytes: a read can block with room left. The pump must then wait for
  // the destination (not spin on a readable source).
  FakeIo io;
  io.capacity = 1000;
  io.writable = 0;
  io.source = {{100, 0}};  // then EAGAIN (pipe "full")
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_EQ(pump.buffered(), 100u);
  EXPECT_FALSE(pump.wants_read());
  EXPECT_TRUE(pump.wants_write());
}

TEST(PumpTest, EndOfStreamFinishesOnlyAfterFlushing) {
  FakeIo io;
  io.writable = 10;
  io.source = {{50, 0}, {0, 0}};  // 50 bytes then FIN
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_FALSE(pump.finished());
  EXPECT_FALSE(pump.wants_read());  // at EOF: never poll the source again
  EXPECT_TRUE(pump.wants_write());
  io.writable = SIZE_MAX;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kFinished);
  EXPECT_TRUE(pump.finished());
  EXPECT_EQ(io.written, 50u);
  EXPECT_FALSE(pump.wants_read());
  EXPECT_FALSE(pump.wants_write());
  // Reported once: later runs do nothing.
  int reads = io.reads;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_EQ(io.reads, reads);
}

TEST(PumpTest, ReadErrorIsReportedAsReadFailure) {
  FakeIo io;
  io.source = {{10, 0}, {-1, ECONNRESET}};
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kError);
  EXPECT_EQ(pump.error(), ECONNRESET);
  EXPECT_TRUE(pump.failed_on_read());
  EXPECT_FALSE(pump.wants_read());
  EXPECT_FALSE(pump.wants_write());
}

TEST(PumpTest, WriteErrorIsReportedAsWriteFailure) {
  FakeIo io;
  io.source = {{10, 0}};
  io.write_error = EPIPE;
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kError);
  EXPECT_EQ(pump.error(), EPIPE);
  EXPECT_FALSE(pump.failed_on_read());
}

TEST(PumpTest, BudgetYieldsToOtherConnections) {
  FakeIo io;
  io.capacity = 100;
  io.source = {{100000, 0}};
  Pump pump;
  EXPECT_EQ(pump.Run(io, 1000), Pump::Outcome::kOpen);
  EXPECT_GE(io.written, 1000u);
  EXPECT_LT(io.written, 1200u);
  // More to do, and no edge will say so: the owner must run it again unprompted.
  EXPECT_TRUE(pump.wants_read());
  EXPECT_TRUE(pump.yielded());

  // Once the source would block, the pump is waiting for an edge, not yielding.
  FakeIo idle;
  idle.source = {{10, 0}};
  Pump waiting;
  EXPECT_EQ(waiting.Run(idle, 1000), Pump::Outcome::kOpen);
  EXPECT_FALSE(waiting.yielded());
}

TEST(PumpTest, ShortReadDrainsOnlyOnTheSourcesOwnEdge) {
  // A 64-byte message: the read comes back short (the socket's queue ran empty).
  FakeIo trusted;
  trusted.source = {{64, 0, /*drained=*/true}};
  Pump on_edge;
  EXPECT_EQ(on_edge.Run(trusted, kBudget, Pump::Reading::kShortReadDrains), Pump::Outcome::kOpen);
  EXPECT_EQ(trusted.written, 64u);
  EXPECT_EQ(trusted.reads, 1);  // no would-block read after the message
  EXPECT_EQ(trusted.writes, 1);
  EXPECT_TRUE(on_edge.wants_read());

  // Without the source's edge (after connect, a resume, the destination's event) a FIN may sit
  // behind the bytes with no edge to come: read on until the source would block.
  FakeIo untrusted;
  untrusted.source = {{64, 0, /*drained=*/true}, {0, 0}};
  Pump prompted;
  EXPECT_EQ(prompted.Run(untrusted, kBudget), Pump::Outcome::kFinished);
  EXPECT_EQ(untrusted.reads, 2);
}

TEST(PumpTest, ShortReadEndsTheStreamWhenTheEdgeReportedThePeersFin) {
  // The source's edge carried EPOLLRDHUP: every byte before the FIN is queued, so the short read
  // that empties the queue is the end (no read that returns 0), and the write is the last.
  FakeIo io;
  io.source = {{64, 0, /*drained=*/true}, {0, 0}};
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget, Pump::Reading::kShortReadEnds), Pump::Outcome::kFinished);
  EXPECT_EQ(io.reads, 1);
  EXPECT_EQ(io.written, 64u);
  EXPECT_TRUE(io.last_write_was_last);

  // A read that fills what was asked for is not short: the pump reads on to the end.
  FakeIo full;
  full.capacity = 64;
  full.source = {{64, 0}, {0, 0}};
  Pump reads_on;
  EXPECT_EQ(reads_on.Run(full, kBudget, Pump::Reading::kShortReadEnds), Pump::Outcome::kFinished);
  EXPECT_EQ(full.reads, 2);
}

TEST(PumpTest, DrainedWouldBlockIsNotRetriedAfterAWrite) {
  FakeIo io;
  io.source = {{10, 0}, {-1, EAGAIN, /*drained=*/true}, {20, 0}};
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_EQ(io.written, 10u);
  EXPECT_EQ(io.reads, 2);  // a socket would-block is final until its next edge
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kOpen);
  EXPECT_EQ(io.written, 30u);
}

TEST(PumpTest, EndOfStreamBehindTheDataMarksTheLastWrite) {
  // Data then FIN already queued: the pump sees the end before it writes, so the write is marked
  // last (TCP can put the FIN into the same segment).
  FakeIo io;
  io.source = {{64, 0}, {0, 0}};
  Pump pump;
  EXPECT_EQ(pump.Run(io, kBudget), Pump::Outcome::kFinished);
  EXPECT_EQ(io.writes, 1);
  EXPECT_TRUE(io.last_write_was_last);

  FakeIo open;
  open.source = {{64, 0}};
  Pump still_open;
  EXPECT_EQ(still_open.Run(open, kBudget), Pump::Outcome::kOpen);
  EXPECT_FALSE(open.last_write_was_last);
}

}  // namespace
}  // namespace picket::proxy
