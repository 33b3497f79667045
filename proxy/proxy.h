// proxy/proxy.h — the sidecar process: workers, policy updates, admin, signals, shutdown.
//
// Owns: `Proxy`. Start() binds every worker's listeners (SO_REUSEPORT), the admin endpoint (and
// the read-only metrics listener on the pod's addresses when admin.metrics_port is set), opens
// the flow log, loads `policy_file` if configured, watches it (uv_fs_event on its directory, so
// an atomic rename is seen) and SIGHUP, and starts the workers. ApplyPolicy() is the one apply
// path for a new snapshot — the policy file and the xDS client both call it: the snapshot must
// be for this pod; it is swapped into every worker (uv_async), which re-checks its established
// connections. Admin verbs: Drain()/DrainListeners() stop accepting (all listeners or the inbound
// ones; `graceful` first reports DRAINING for the drain time), Quit() is Shutdown() with no drain
// time. Shutdown() (SIGTERM) stops accepting, lets connections finish up to the drain
// timeout, then closes the rest with `shutdown`; once every worker has exited the Proxy closes
// its own handles so the main loop's uv_run() returns.
//
// With a bootstrap `xds` section the Proxy also owns the xDS agent (proxy/xds/): Start() creates
// and starts it, every snapshot it receives goes through ApplyPolicy() (its error is the NACK),
// its state is part of /config_dump ("xds") and /stats/prometheus, and Shutdown() closes it
// (the main loop ends once the agent's handles are closed too).
//
// Threads: construct, Start(), ApplyPolicy(), Shutdown() and the admin routes on the main loop's
// thread. The Proxy outlives its workers (it joins them).
#pragma once

#include <uv.h>

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "config/bootstrap.h"
#include "policy/endpoint_policy.h"
#include "proxy/admin.h"
#include "proxy/flow_log.h"
#include "proxy/stats.h"
#include "proxy/worker.h"

namespace picket::proxy {

namespace xds {
class XdsAgent;
}

struct ProxyOptions {
  // Default: the kernel's SO_ORIGINAL_DST. Loopback tests pass a map.
  OriginalDestinationFn original_destination;
  bool handle_signals = true;  // SIGTERM/SIGINT → Shutdown(), SIGHUP → reload policy_file
};

class Proxy final : public AdminHandler {
 public:
  Proxy(config::Bootstrap bootstrap, uv_loop_t* loop, ProxyOptions options = {});
  ~Proxy() override;
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  [[nodiscard]] std::expected<void, std::string> Start();

  // Validates that `policy` is for this pod, then swaps it into every worker. Returns the error
  // (and keeps the old policy) otherwise.
  [[nodiscard]] std::expected<void, std::string> ApplyPolicy(policy::EndpointPolicyPtr policy);
  // Reads, decodes and applies policy_file; a bad file keeps the old policy.
  [[nodiscard]] std::expected<void, std::string> ReloadPolicyFile();
  void Shutdown();

  uint16_t outbound_port() const { return outbound_port_; }
  uint16_t inbound_port() const { return inbound_port_; }
  uint16_t admin_port() const { return admin_ ? admin_->port() : 0; }
  // The metrics listener's port (bootstrap admin.metrics_port; 0 when there is none).
  uint16_t metrics_port() const { return metrics_.empty() ? 0 : metrics_[0]->port(); }
  const Stats& stats() const { return stats_; }
  FlowLog& flow_log() { return *flow_log_; }
  uint64_t max_connections() const { return context_.max_connections; }

  // AdminHandler.
  std::string ServerState() const override;
  std::string PrometheusStats() const override;
  std::string ConfigDump() const override;
  std::vector<std::string> Flows(const std::string& verdict) const override;
  void Drain() override;
  void DrainListeners(bool inbound_only, bool graceful) override;
  void Quit() override;
  ServerInfo Info() const override;

 private:
  static void OnSignal(uv_signal_t* h, int signum);
  static void OnPolicyFileEvent(uv_fs_event_t* h, const char* filename, int events, int status);
  static void OnWorkerExited(uv_async_t* h);
  void WorkerExited();
  void CloseHandles();
  [[nodiscard]] std::expected<void, std::string> StartXds();

  const config::Bootstrap bootstrap_;
  uv_loop_t* loop_;
  ProxyOptions options_;
  Stats stats_;
  std::unique_ptr<FlowLog> flow_log_;
  WorkerContext context_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_;         // 127.0.0.1, read-only
  std::unique_ptr<AdminServer> admin_socket_;  // admin.socket (Unix), every route; may be null
  std::vector<std::unique_ptr<AdminServer>> metrics_;  // one per node.ips; /stats/prometheus only
  policy::EndpointPolicyPtr policy_;                   // the snapshot in force (main thread's copy)
  uint16_t outbound_port_ = 0;
  uint16_t inbound_port_ = 0;
  bool draining_ = false;
  bool shutting_down_ = false;
  bool handles_open_ = false;
  std::atomic<size_t> workers_exited_{0};

  uv_signal_t sigterm_, sigint_, sighup_;
  uv_fs_event_t policy_watch_;
  bool watching_ = false;
  uv_async_t worker_exited_;
  std::unique_ptr<xds::XdsAgent> xds_agent_;  // set when bootstrap_.xds is
  bool xds_closing_ = false;
  bool quitting_ = false;                 // /quitquitquit: no drain time
  uv_timer_t* graceful_drain_ = nullptr;  // /drain_listeners?graceful
  bool graceful_inbound_only_ = false;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// Max connections for a file-descriptor limit: each relayed connection holds two sockets and,
// while bytes move, pipes; keep headroom for listeners, logs and the admin endpoint.
uint64_t MaxConnectionsForFdLimit(uint64_t fd_limit);

}  // namespace picket::proxy
