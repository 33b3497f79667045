// proxy/worker.h — one event loop thread: its listeners, its connections, its policy snapshot.
//
// Owns: `Worker`. Each worker holds its own listeners (proxy/listener.h: outbound and inbound,
// IPv4 and IPv6, SO_REUSEPORT so the kernel spreads connections over workers); for each accepted
// connection it recovers the original destination, runs the filter chain before any upstream
// connect, resets denied connections (one flow record each) and relays allowed ones
// (proxy/connection.h). Out of descriptors, it pauses its listeners and retries later.
// Worker 0 also owns the UDP/SCTP verdict queue when `udp_sctp.enforce` is set
// (proxy/nfqueue_listener.h): the first packet of each new flow is judged with the same policy
// snapshot, a denied one dropped and logged (one DROPPED record, l4 UDP/SCTP); after each policy
// swap it has its sweeper thread cut the conntrack entries of flows the new policy denies
// (proxy/conntrack_sweep.h), off the loop.
// In verdict mode (`capture: verdict`) worker 0 owns that queue whatever udp_sctp.enforce says,
// and judges each new TCP flow's first packet there too: allowed, the kernel carries it; denied,
// it is reset (the filter table's REJECT, by mark) and logged as the relay logs a reset
// connection; to a Service address, it goes to the relay (the nat table, by mark), which picks
// the backend. Without log_allowed an allowed flow's peer and port go to the kernel verdict
// cache (proxy/verdict_cache.h), emptied before every new snapshot or Service map is used, so
// later SYNs with them skip the queue. Allowed flows are remembered by the app socket's tuple
// (bounded by max_connections) until the kernel reports the socket gone (proxy/socket_diag.h
// TcpCloseWatcher): then the access record (log_allowed) with bytes and duration. A policy
// change aborts the app sockets of flows it denies (one DROPPED policy_changed record each), but
// never one the relay holds: redirected to it (the sweep asks conntrack), or to a Service address
// of the map in force when it is aborted (the map and the policy are pushed apart).
//
// Threads: Bind() runs on the creating thread before Start(); Post*() from any thread (they wake
// the loop with uv_async); everything else on the worker's own thread. The Proxy owns the
// workers and outlives them; the shared Stats, FlowLog and WorkerConfig outlive every worker.
#pragma once

#include <spdlog/spdlog.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/bootstrap.h"
#include "filters/chain.h"
#include "filters/filter.h"
#include "policy/endpoint_policy.h"
#include "proxy/byte_mover.h"
#include "proxy/conntrack_sweep.h"
#include "proxy/flow_log.h"
#include "proxy/listener.h"
#include "proxy/service_routes.h"
#include "proxy/socket_diag.h"
#include "proxy/socket_util.h"
#include "proxy/stats.h"
#include "proxy/xds/service_map.h"

namespace picket::proxy {

class Connection;
class VerdictCache;

// Seam: how an accepted socket's original destination is found (the kernel's conntrack in
// production; a fixed map in loopback tests, where no redirect happens).
using OriginalDestinationFn = std::function<std::optional<filters::Endpoint>(int fd, bool v6)>;

// What every worker shares (read-only after Proxy::Start).
struct WorkerContext {
  const config::Bootstrap* bootstrap = nullptr;
  std::vector<policy::IpAddress> node_ips;
  // Inbound connections to the app bind these sources (see Bootstrap::Listeners).
  std::optional<policy::IpAddress> inbound_passthrough_v4;
  std::optional<policy::IpAddress> inbound_passthrough_v6;
  uint64_t max_connections = 0;
  size_t worker_count = 1;  // verdict queues are spread over the workers (udp_sctp.queues)
  OriginalDestinationFn original_destination;
  Stats* stats = nullptr;
  FlowLog* flow_log = nullptr;
  std::shared_ptr<spdlog::logger> conn_log;
  std::function<void()> on_exit;  // called on the worker thread when its loop has finished
};

class Worker final : public filters::PolicySource, private ListenerHandler {
 public:
  Worker(int index, const WorkerContext& context);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Binds the listeners (0 = any port; the ports actually bound are then returned).
  [[nodiscard]] std::expected<void, SysError> Bind(uint16_t outbound_port, uint16_t inbound_port);
  uint16_t outbound_port() const { return outbound_port_; }
  uint16_t inbound_port() const { return inbound_port_; }
  // Why udp_sctp.enforce is set but the verdict queue could not be bound ("" otherwise). Set by
  // Bind(); read on the creating thread.
  const std::string& verdict_error() const { return verdict_error_; }
  // Verdict mode: why the kernel verdict cache was not created ("" when it was). Set by Bind().
  const std::string& verdict_cache_off() const { return verdict_cache_off_; }

  void Start();
  void Join();
  // The CPUs this worker runs on: with several verdict queues (udp_sctp.queues), those whose
  // packets go to its queues (within the process's allowed CPUs); empty: not pinned.
  std::vector<int> PinnedCpus() const;
  // True once the loop thread has finished (any thread).
  bool finished_for_join() const { return exited_.load(std::memory_order_acquire); }

  // Any thread.
  void PostPolicy(policy::EndpointPolicyPtr policy);
  // The service map outbound connections to a Service address are resolved with (may be null).
  void PostServiceMap(xds::ServiceMapPtr services);
  // Closes the listeners (only the inbound TCP ones with `inbound_only`); relayed connections go
  // on.
  void PostStopAccepting(bool inbound_only = false);
  void PostShutdown(std::chrono::milliseconds drain_timeout);

  // Loop thread.
  const policy::EndpointPolicy* CurrentPolicy() const override { return policy_.get(); }
  uv_loop_t* loop() { return &loop_; }
  PipePool* pipe_pool() { return pipe_pool_.get(); }
  size_t buffer_size() const { return context_.bootstrap->limits.buffer_size; }
  std::chrono::milliseconds connect_timeout() const { return context_.bootstrap->timeouts.connect; }
  std::chrono::milliseconds idle_timeout() const { return context_.bootstrap->timeouts.idle; }
  spdlog::logger& conn_log() { return *context_.conn_log; }
  // The source to bind for a connection to `destination` in `direction`, if any.
  const std::optional<policy::IpAddress>& UpstreamSource(
      filters::Direction direction, const filters::Endpoint& destination) const;
  // Adds a connection's socket to this worker's edge-triggered epoll set (`side` is passed back
  // to Connection::OnEvent). The socket leaves the set when it is closed.
  [[nodiscard]] bool Watch(int fd, Connection* connection, int side);
  // Runs Connection::Resume on the next loop iteration (after polling for other events).
  void ResumeLater(uint64_t id);
  void OnConnectionClosed(Connection& connection, filters::CloseReason reason);
  void Destroy(uint64_t id);
  size_t connection_count() const { return connections_.size(); }

 private:
  struct Commands {
    std::optional<policy::EndpointPolicyPtr> policy;
    std::optional<xds::ServiceMapPtr> services;
    bool stop_accepting = false;
    bool stop_accepting_inbound = false;
    std::optional<std::chrono::milliseconds> shutdown;
    std::vector<TcpRevocation> tcp_revoked;  // from the sweeper: app sockets to abort
  };
  // An allowed verdict-mode TCP flow, until its app socket is gone.
  struct VerdictFlow {
    uint64_t id = 0;
    uint64_t started_ns = 0;  // uv_hrtime() at the verdict
    filters::Direction direction = filters::Direction::kOutbound;
    filters::FilterResult why;
  };

  static void OnAsync(uv_async_t* h);
  static void OnBackoffTimer(uv_timer_t* h);
  static void OnDrainTimer(uv_timer_t* h);
  static void OnEpollReadable(uv_poll_t* h, int status, int events);
  static void OnResumeIdle(uv_idle_t* h);
  void DispatchEvents();
  void CloseLoopHandles();

  // ListenerHandler.
  void OnAccepted(Listener& listener, int fd, const sockaddr_storage& peer) override;
  void OnAcceptExhausted(Listener& listener, int error) override;
  void OnAcceptError(Listener& listener, int error) override;
  PacketVerdict OnPacketFlow(Listener& listener, filters::Direction direction,
                             const PacketFlow& flow) override;
  void OnPacketUnparsed(Listener& listener, const base::Error& error) override;
  bool PacketFlowAllowed(filters::Direction direction, const PacketFlow& flow,
                         filters::FilterResult* why) const;
  void SweepPacketFlows();
  PacketVerdict OnTcpFlow(filters::Direction direction, const PacketFlow& flow);
  void OnTcpClosed(const TcpCloseWatcher::Closed& closed);
  void RevokeTcpFlows(std::vector<TcpRevocation> revoked);
  bool verdict_mode() const { return context_.bootstrap->capture == config::CaptureMode::kVerdict; }
  // One DROPPED record for a denied flow (TCP connection or UDP/SCTP flow), under the budgets.
  void RecordDenied(const filters::ConnectionInfo& info, filters::CloseReason reason,
                    filters::FilterResult result, uint64_t id);
  void Reject(int fd, const filters::ConnectionInfo& info, filters::FilterResult result);
  bool IsOwnListener(const filters::Endpoint& destination) const;
  void RunCommands();
  void ApplyPolicy(policy::EndpointPolicyPtr policy);
  void OpenVerdictCache();   // in Bind(), with the verdict queue
  void OpenServiceRoutes();  // in Bind(), worker 0, verdict mode
  // Verdict mode: a transparent listener on each TCP Service address and port of services_, and
  // (worker 0) the routes that deliver them in the pod (proxy/service_routes.h).
  void SyncServiceListeners();
  void ClearVerdictCache();  // before a new snapshot or Service map is used
  void PauseListeners();
  void ResumeListeners();
  void CloseListeners();
  void CloseInboundListeners();
  void BeginShutdown(std::chrono::milliseconds drain_timeout);
  void MaybeFinish();

  const int index_;
  const WorkerContext& context_;
  uv_loop_t loop_;
  uv_async_t async_;
  uv_timer_t backoff_timer_;
  uv_timer_t drain_timer_;
  // Connections' sockets live in one edge-triggered epoll set of our own, itself watched by the
  // loop: registered once per socket, never modified (uv_poll costs ~12 epoll_ctl per
  // connection: a readiness check at init, and a change at every interest flip).
  int epoll_fd_ = -1;
  uv_poll_t epoll_watch_;
  uv_idle_t resume_idle_;
  std::vector<uint64_t> resume_ids_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  // Verdict mode: ours in listeners_, by "address:port"; closed ones wait in retired_listeners_
  // until the loop has run (a closed handle is destroyed only then).
  std::unordered_map<std::string, Listener*> service_listeners_;
  std::vector<std::unique_ptr<Listener>> retired_listeners_;
  std::optional<ServiceRoutes> service_routes_;  // worker 0, verdict mode
  bool listeners_closed_ = false;                // CloseListeners() ran: none is opened again
  Listener* verdict_listener_ = nullptr;         // in listeners_: queue udp_sctp.queue (worker 0)
  std::unique_ptr<ConntrackSweeper> sweeper_;    // with verdict_listener_
  std::unique_ptr<TcpCloseWatcher> close_watcher_;  // verdict mode, with verdict_listener_
  std::unique_ptr<VerdictCache> verdict_cache_;     // verdict mode, without close_watcher_
  std::string verdict_cache_off_;
  std::unordered_map<TcpTuple, VerdictFlow, TcpTupleHash> verdict_flows_;
  std::string verdict_error_;
  uint16_t outbound_port_ = 0;
  uint16_t inbound_port_ = 0;
  std::unique_ptr<PipePool> pipe_pool_;
  filters::FilterChain chain_;
  policy::EndpointPolicyPtr policy_;
  xds::ServiceMapPtr services_;    // swapped whole, like policy_; null: no Service addresses
  uint64_t service_rotation_ = 0;  // spreads Service connections over allowed backends
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  uint64_t next_id_;
  bool shutting_down_ = false;
  bool finished_ = false;
  std::atomic<bool> exited_{false};
  std::thread thread_;

  std::mutex mu_;
  Commands commands_;          // guarded by mu_
  bool async_closed_ = false;  // guarded by mu_: Post*() after the loop finished is a no-op
};

}  // namespace picket::proxy
