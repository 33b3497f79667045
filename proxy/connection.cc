#include "proxy/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "filters/policy_filter.h"
#include "proxy/socket_util.h"
#include "proxy/worker.h"

namespace picket::proxy {
namespace {

// Bytes one pump may move per event before yielding to other connections on the loop.
constexpr size_t kPumpBudget = 1 << 20;

constexpr uint32_t kReadable = EPOLLIN | EPOLLHUP | EPOLLRDHUP;
constexpr uint32_t kWritable = EPOLLOUT | EPOLLHUP;

}  // namespace

Connection::Connection(Worker& worker, uint64_t id, int downstream_fd,
                       const filters::ConnectionInfo& info, filters::FilterResult why,
                       bool keep_why)
    : worker_(worker),
      id_(id),
      info_(info),
      why_(keep_why ? std::make_unique<filters::FilterResult>(std::move(why)) : nullptr),
      movers_{ByteMover(worker.pipe_pool(), worker.buffer_size()),
              ByteMover(worker.pipe_pool(), worker.buffer_size())} {
  fds_[kDownstream] = downstream_fd;
  timer_.data = this;
  uv_timer_init(worker_.loop(), &timer_);
  started_ns_ = uv_hrtime();
  last_activity_ms_ = uv_now(worker_.loop());
}

Connection::~Connection() {
  // Close() ran (the worker destroys us from the timer's close callback): nothing to release
  // but what a failed Start() may have left.
  for (int fd : fds_) {
    if (fd >= 0) close(fd);
  }
}

void Connection::Start() {
  auto fd = ConnectNonBlocking(info_.original_destination,
                               worker_.UpstreamSource(info_.direction, info_.original_destination));
  if (!fd) {
    bool exhausted = fd.error().code == EMFILE || fd.error().code == ENFILE ||
                     fd.error().code == ENOBUFS || fd.error().code == ENOMEM;
    // A missing passthrough source (::7 not on lo) is a setup error worth a warning.
    worker_.conn_log().warn("[C{}] upstream {}", id_, fd.error().ToString());
    Close(exhausted ? filters::CloseReason::kResourceExhausted
                    : filters::CloseReason::kUpstreamConnectFailed,
          true);
    return;
  }
  fds_[kUpstream] = *fd;
  movers_[kToUpstream].Attach(fds_[kDownstream], fds_[kUpstream]);
  movers_[kToDownstream].Attach(fds_[kUpstream], fds_[kDownstream]);
  if (!worker_.Watch(fds_[kDownstream], this, kDownstream) ||
      !worker_.Watch(fds_[kUpstream], this, kUpstream)) {
    Close(filters::CloseReason::kResourceExhausted, true);
    return;
  }
  uv_timer_start(&timer_, &Connection::OnTimer,
                 static_cast<uint64_t>(worker_.connect_timeout().count()), 0);
}

void Connection::OnTimer(uv_timer_t* h) { static_cast<Connection*>(h->data)->OnTimeout(); }

void Connection::OnTimerClosed(uv_handle_t* h) {
  auto* self = static_cast<Connection*>(h->data);
  self->worker_.Destroy(self->id_);
}

void Connection::SetState(State next) {
  // kConnecting → kRelaying → kClosing; any state → kClosing.
  if (next == State::kRelaying && state_ != State::kConnecting) return;
  state_ = next;
}

namespace {

// How far a readable edge of the source lets a pump trust a short read (see Pump::Reading).
Pump::Reading ReadingFor(uint32_t events) {
  if (events & EPOLLHUP) return Pump::Reading::kUntilBlocked;
  if (events & EPOLLRDHUP) return Pump::Reading::kShortReadEnds;
  return Pump::Reading::kShortReadDrains;
}

}  // namespace

void Connection::OnEvent(SideIndex side, uint32_t events) {
  if (state_ == State::kClosing) return;
  if (state_ == State::kConnecting) {
    // Kept for OnConnected: which side has bytes waiting (an edge is reported only once).
    early_events_[side] |= events;
    if (side == kUpstream && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) OnConnected();
    return;
  }
  if (events & EPOLLERR) {
    int err = PendingError(fds_[side]);
    worker_.conn_log().debug("[C{}] {} socket error: {}", id_,
                             side == kDownstream ? "downstream" : "upstream", std::strerror(err));
    Close(filters::CloseReason::kPeerReset, true);
    return;
  }
  // Edge-triggered: a pump that does not want this edge now (its pipe is full, or it is at end of
  // stream) reads or writes again on its own once the other side makes progress.
  const PumpIndex reads = side == kDownstream ? kToUpstream : kToDownstream;
  const PumpIndex writes = side == kDownstream ? kToDownstream : kToUpstream;
  if ((events & kReadable) && pumps_[reads].wants_read()) RunPump(reads, ReadingFor(events));
  if (state_ == State::kClosing) return;
  if ((events & kWritable) && pumps_[writes].wants_write()) RunPump(writes);
}

void Connection::Resume() {
  for (PumpIndex p : {kToUpstream, kToDownstream}) {
    if (state_ == State::kRelaying && pumps_[p].yielded()) RunPump(p);
  }
}

void Connection::OnConnected() {
  const uint32_t down = early_events_[kDownstream];
  const uint32_t up = early_events_[kUpstream];
  // Writable without an error or hang-up: the connect succeeded (no SO_ERROR query needed).
  int err = (up & (EPOLLERR | EPOLLHUP)) ? PendingError(fds_[kUpstream]) : 0;
  if ((up & (EPOLLERR | EPOLLHUP)) && err == 0) err = ECONNREFUSED;
  if (err != 0) {
    worker_.conn_log().debug("[C{}] connect to {} failed: {}", id_,
                             EndpointToString(info_.original_destination), std::strerror(err));
    Close(err == ETIMEDOUT ? filters::CloseReason::kUpstreamConnectTimeout
                           : filters::CloseReason::kUpstreamConnectFailed,
          true);
    return;
  }
  SetState(State::kRelaying);
  last_activity_ms_ = uv_now(worker_.loop());
  uv_timer_start(&timer_, &Connection::OnTimer,
                 static_cast<uint64_t>(worker_.idle_timeout().count()), 0);
  // Act on the readable edges that came while connecting (each is reported once). The client has
  // usually sent its first bytes already: the handshake's last ACK rides on them. An edge still
  // queued in this epoll batch is handled as usual once this returns.
  if (down & kReadable) RunPump(kToUpstream, ReadingFor(down));
  if (state_ != State::kRelaying) return;
  SetQuickAck(fds_[kUpstream]);
  if (up & kReadable) RunPump(kToDownstream, ReadingFor(up));
}

void Connection::OnTimeout() {
  if (state_ == State::kConnecting) {
    Close(filters::CloseReason::kUpstreamConnectTimeout, true);
    return;
  }
  if (state_ != State::kRelaying) return;
  const uint64_t idle = static_cast<uint64_t>(worker_.idle_timeout().count());
  const uint64_t now = uv_now(worker_.loop());
  if (now - last_activity_ms_ >= idle) {
    Close(filters::CloseReason::kIdleTimeout, false);
    return;
  }
  // Activity does not touch the timer (that would cost a heap update per read); re-arm for the
  // rest of the idle period instead.
  uv_timer_start(&timer_, &Connection::OnTimer, idle - (now - last_activity_ms_), 0);
}

void Connection::RunPump(PumpIndex index, Pump::Reading reading) {
  Pump& pump = pumps_[index];
  Pump::Outcome outcome = pump.Run(movers_[index], kPumpBudget, reading);
  last_activity_ms_ = uv_now(worker_.loop());
  switch (outcome) {
    case Pump::Outcome::kOpen:
      if (pump.yielded()) worker_.ResumeLater(id_);
      return;
    case Pump::Outcome::kError:
      worker_.conn_log().debug("[C{}] {} {} failed: {}", id_,
                               index == kToUpstream ? "downstream→upstream" : "upstream→downstream",
                               pump.failed_on_read() ? "read" : "write",
                               std::strerror(pump.error()));
      Close(filters::CloseReason::kPeerReset, true);
      return;
    case Pump::Outcome::kFinished: {
      if (pumps_[kToUpstream].finished() && pumps_[kToDownstream].finished()) {
        // Both ways done: close() sends this destination's FIN (no separate shutdown).
        Close(filters::CloseReason::kNormal, false);
        return;
      }
      // Half-close: FIN the destination; the other direction keeps flowing.
      shutdown(fds_[index == kToUpstream ? kUpstream : kDownstream], SHUT_WR);
      return;
    }
  }
}

void Connection::Recheck(const policy::EndpointPolicy* policy) {
  if (state_ == State::kClosing) return;
  filters::FilterResult result = filters::CheckPolicy(policy, info_);
  if (result.action == filters::FilterResult::Action::kDeny) {
    why_ = std::make_unique<filters::FilterResult>(std::move(result));
    Close(filters::CloseReason::kPolicyChanged, true);
  }
}

void Connection::Close(filters::CloseReason reason, bool reset) {
  if (state_ == State::kClosing) return;
  SetState(State::kClosing);
  uv_timer_stop(&timer_);
  for (int& fd : fds_) {
    if (fd < 0) continue;
    // close() also removes the socket from the worker's epoll set (no other fd refers to it).
    if (reset) {
      CloseWithReset(fd);
    } else {
      close(fd);
    }
    fd = -1;
  }
  worker_.OnConnectionClosed(*this, reason);
  // The worker destroys us in the close callback: nothing touches `this` after.
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::OnTimerClosed);
}

}  // namespace picket::proxy
