// proxy/connection.h — one allowed connection: upstream connect, relay both ways, one close.
//
// Owns: `Connection`: the downstream socket (accepted, already allowed by the filter chain), the
// upstream socket it connects to the original destination, a poll handle per socket, a timer
// (connect timeout, then idle timeout), and the two Pumps of the relay. State is an enum with
// transitions in SetState(); every end goes through Close(reason, reset), once.
//
// Lifetime: owned by its Worker. Close() stops everything, closes the sockets (RST when
// `reset`), reports to the worker (flow record, counters) and closes the uv handles; when the
// last close callback has run, the worker destroys the object (memory is freed only there).
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
  // `why` is kept only when `keep_why` (allowed flows are logged): an idle connection should
  // not carry strings it will never print.
  Connection(Worker& worker, uint64_t id, int downstream_fd, const filters::ConnectionInfo& info,
             filters::FilterResult why, bool keep_why);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Begins the upstream connect (or closes at once if it cannot start).
  void Start();
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
  enum SideIndex : uint8_t { kDownstream = 0, kUpstream = 1 };
  enum PumpIndex : uint8_t { kToUpstream = 0, kToDownstream = 1 };  // source is side i
  struct Side {
    int fd = -1;
    uv_poll_t poll;
    bool poll_open = false;
    int events = 0;  // what poll currently waits for
  };

  static void OnDownstreamEvent(uv_poll_t* h, int status, int events);
  static void OnUpstreamEvent(uv_poll_t* h, int status, int events);
  static void OnTimer(uv_timer_t* h);
  static void OnHandleClosed(uv_handle_t* h);

  void OnEvent(SideIndex side, int status, int events);
  void OnConnected();
  void OnTimeout();
  void RunPump(PumpIndex pump);
  void UpdateInterest();
  void SetState(State next);
  bool InitPoll(SideIndex side);

  Worker& worker_;
  const uint64_t id_;
  const filters::ConnectionInfo info_;
  std::unique_ptr<filters::FilterResult> why_;  // 8 bytes while idle: memory per connection
  Side sides_[2];
  Pump pumps_[2];
  ByteMover movers_[2];
  uv_timer_t timer_;
  uint64_t started_ns_ = 0;  // uv_hrtime() at accept
  uint64_t last_activity_ms_ = 0;
  State state_ = State::kConnecting;
  uint8_t open_handles_ = 0;
};

}  // namespace picket::proxy
