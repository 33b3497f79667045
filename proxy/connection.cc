#include "proxy/connection.h"

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

// Bytes one pump may move per callback before yielding to other connections on the loop.
constexpr size_t kPumpBudget = 1 << 20;

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
  sides_[kDownstream].fd = downstream_fd;
  timer_.data = this;
  uv_timer_init(worker_.loop(), &timer_);
  ++open_handles_;
  started_ns_ = uv_hrtime();
  last_activity_ms_ = uv_now(worker_.loop());
}

Connection::~Connection() {
  // Close() ran and every handle is closed: only the sockets could remain if it did not.
  for (Side& side : sides_) {
    if (side.fd >= 0) close(side.fd);
  }
}

bool Connection::InitPoll(SideIndex side) {
  Side& s = sides_[side];
  if (uv_poll_init_socket(worker_.loop(), &s.poll, s.fd) != 0) return false;
  s.poll.data = this;
  s.poll_open = true;
  ++open_handles_;
  return true;
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
  sides_[kUpstream].fd = *fd;
  movers_[kToUpstream].Attach(sides_[kDownstream].fd, sides_[kUpstream].fd);
  movers_[kToDownstream].Attach(sides_[kUpstream].fd, sides_[kDownstream].fd);
  if (!InitPoll(kDownstream) || !InitPoll(kUpstream)) {
    Close(filters::CloseReason::kResourceExhausted, true);
    return;
  }
  sides_[kUpstream].events = UV_WRITABLE;
  uv_poll_start(&sides_[kUpstream].poll, UV_WRITABLE, &Connection::OnUpstreamEvent);
  uv_timer_start(&timer_, &Connection::OnTimer,
                 static_cast<uint64_t>(worker_.connect_timeout().count()), 0);
}

void Connection::OnDownstreamEvent(uv_poll_t* h, int status, int events) {
  static_cast<Connection*>(h->data)->OnEvent(kDownstream, status, events);
}

void Connection::OnUpstreamEvent(uv_poll_t* h, int status, int events) {
  static_cast<Connection*>(h->data)->OnEvent(kUpstream, status, events);
}

void Connection::OnTimer(uv_timer_t* h) { static_cast<Connection*>(h->data)->OnTimeout(); }

void Connection::OnHandleClosed(uv_handle_t* h) {
  auto* self = static_cast<Connection*>(h->data);
  if (--self->open_handles_ == 0) self->worker_.Destroy(self->id_);
}

void Connection::SetState(State next) {
  // kConnecting → kRelaying → kClosing; any state → kClosing.
  if (next == State::kRelaying && state_ != State::kConnecting) return;
  state_ = next;
}

void Connection::OnEvent(SideIndex side, int status, int events) {
  if (state_ == State::kClosing) return;
  if (status < 0) {
    worker_.conn_log().debug("[C{}] poll error on {}: {}", id_,
                             side == kDownstream ? "downstream" : "upstream", uv_strerror(status));
    Close(state_ == State::kConnecting ? filters::CloseReason::kUpstreamConnectFailed
                                       : filters::CloseReason::kPeerReset,
          true);
    return;
  }
  if (state_ == State::kConnecting) {
    if (side == kUpstream && (events & UV_WRITABLE)) OnConnected();
    return;
  }
  // The pump whose source is `side` reads; the one whose destination is `side` writes.
  const PumpIndex reads = side == kDownstream ? kToUpstream : kToDownstream;
  const PumpIndex writes = side == kDownstream ? kToDownstream : kToUpstream;
  if (events & UV_READABLE) RunPump(reads);
  if (state_ != State::kClosing && (events & UV_WRITABLE)) RunPump(writes);
  if (state_ != State::kClosing) UpdateInterest();
}

void Connection::OnConnected() {
  int err = PendingError(sides_[kUpstream].fd);
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
  // The client has usually sent its first bytes while we connected: move them now rather than
  // after another trip through epoll.
  RunPump(kToUpstream);
  if (state_ == State::kRelaying) UpdateInterest();
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

void Connection::RunPump(PumpIndex index) {
  Pump& pump = pumps_[index];
  Pump::Outcome outcome = pump.Run(movers_[index], kPumpBudget);
  last_activity_ms_ = uv_now(worker_.loop());
  switch (outcome) {
    case Pump::Outcome::kOpen:
      return;
    case Pump::Outcome::kError:
      worker_.conn_log().debug("[C{}] {} {} failed: {}", id_,
                               index == kToUpstream ? "downstream→upstream" : "upstream→downstream",
                               pump.failed_on_read() ? "read" : "write",
                               std::strerror(pump.error()));
      Close(filters::CloseReason::kPeerReset, true);
      return;
    case Pump::Outcome::kFinished: {
      // Half-close: FIN the destination; the other direction keeps flowing.
      const SideIndex destination = index == kToUpstream ? kUpstream : kDownstream;
      shutdown(sides_[destination].fd, SHUT_WR);
      if (pumps_[kToUpstream].finished() && pumps_[kToDownstream].finished()) {
        Close(filters::CloseReason::kNormal, false);
      }
      return;
    }
  }
}

void Connection::UpdateInterest() {
  for (SideIndex side : {kDownstream, kUpstream}) {
    const Pump& reads = pumps_[side == kDownstream ? kToUpstream : kToDownstream];
    const Pump& writes = pumps_[side == kDownstream ? kToDownstream : kToUpstream];
    int events = (reads.wants_read() ? UV_READABLE : 0) | (writes.wants_write() ? UV_WRITABLE : 0);
    Side& s = sides_[side];
    if (events == s.events) continue;
    s.events = events;
    if (events == 0) {
      uv_poll_stop(&s.poll);
    } else {
      uv_poll_start(
          &s.poll, events,
          side == kDownstream ? &Connection::OnDownstreamEvent : &Connection::OnUpstreamEvent);
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
  for (Side& side : sides_) {
    if (side.poll_open) {
      // uv_close() takes the fd out of epoll at once (the handle's memory lives on until its
      // close callback), so close() below is safe.
      side.poll_open = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&side.poll), &Connection::OnHandleClosed);
    }
    if (side.fd >= 0) {
      if (reset) {
        CloseWithReset(side.fd);
      } else {
        close(side.fd);
      }
      side.fd = -1;
    }
  }
  worker_.OnConnectionClosed(*this, reason);
  // The worker may destroy us once the last handle is closed: nothing touches `this` after.
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::OnHandleClosed);
}

}  // namespace picket::proxy
