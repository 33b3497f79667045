// proxy/connection.h — one allowed connection: upstream connect, relay both ways, one close.
//
// Owns: `Connection`: the downstream socket (accepted, already allowed by the filter chain), the
// upstream socket it connects to the original destination, a timer (connect timeout, then idle
// timeout), and the two Pumps of the relay. Both sockets sit in the worker's edge-triggered epoll
// set from the start (registered once, never modified: two epoll_ctl calls per connection), and
// the worker hands their events to OnEvent(). State is an enum with transitions in SetState();
// every end goes through Close(reason, reset), once.
//
// Lifetime: owned by its Worker. Close() closes the sockets (RST when `reset`; close() also takes
// them out of epoll), reports to the worker (flow record, counters) and closes the timer; when
// its close callback has run, the worker destroys the object (memory is freed only there, after
// any event of the same epoll batch that still names it).
//
// Threads: the worker's loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "filters/filter.h"
#include "proxy/byte_mover.h"
#include "proxy/pump.h"

namespace picket::policy {
class EndpointPolicy;
}

namespace picket::proxy {

class Worker;

class Connection {
 public:
  enum SideIndex : uint8_t { kDownstream = 0, kUpstream = 1 };

  // `why` is kept only when `keep_why` (allowed flows are logged): an idle connection should
  // not carry strings it will never print.
  Connection(Worker& worker, uint64_t id, int downstream_fd, const filters::ConnectionInfo& info,
             filters::FilterResult why, bool keep_why);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Begins the upstream connect (or closes at once if it cannot start).
  void Start();
  // Readiness of one socket (EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP), from the worker's epoll set.
  void OnEvent(SideIndex side, uint32_t events);
  // A pump stopped at its byte budget earlier: continue (the edge it waited for will not come).
  void Resume();
  // The one close path; idempotent.
  void Close(filters::CloseReason reason, bool reset);
  // After a policy update: closes with kPolicyChanged if `policy` no longer allows it.
  void Recheck(const policy::EndpointPolicy* policy);

  uint64_t id() const { return id_; }
  const filters::ConnectionInfo& info() const { return info_; }
  // Why it was allowed (or, after Recheck, revoked); null when not kept (see constructor).
  const filters::FilterResult* why() const { return why_.get(); }
  uint64_t bytes_to_upstream() const { return pumps_[kToUpstream].bytes(); }
  uint64_t bytes_to_downstream() const { return pumps_[kToDownstream].bytes(); }
  uint64_t started_ns() const { return started_ns_; }
  bool closing() const { return state_ == State::kClosing; }

 private:
  enum class State : uint8_t { kConnecting, kRelaying, kClosing };
  enum PumpIndex : uint8_t { kToUpstream = 0, kToDownstream = 1 };  // source is side i

  static void OnTimer(uv_timer_t* h);
  static void OnTimerClosed(uv_handle_t* h);

  void OnConnected();
  void OnTimeout();
  void RunPump(PumpIndex pump, Pump::Reading reading = Pump::Reading::kUntilBlocked);
  void SetState(State next);

  Worker& worker_;
  const uint64_t id_;
  const filters::ConnectionInfo info_;
  std::unique_ptr<filters::FilterResult> why_;  // 8 bytes while idle: memory per connection
  int fds_[2] = {-1, -1};
  Pump pumps_[2];
  ByteMover movers_[2];
  uv_timer_t timer_;
  uint64_t started_ns_ = 0;  // uv_hrtime() at accept
  uint64_t last_activity_ms_ = 0;
  State state_ = State::kConnecting;
  uint32_t early_events_[2] = {0, 0};  // epoll events seen per side while connecting
};

}  // namespace picket::proxy
