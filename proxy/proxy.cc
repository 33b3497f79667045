#include "proxy/proxy.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/json.h"
#include "net/xds_message.h"
#include "proxy/xds/xds_agent.h"

namespace picket::proxy {
namespace {

constexpr uint64_t kPolicyDebounceMs = 50;

std::shared_ptr<spdlog::logger> Logger(const char* name) {
  if (auto existing = spdlog::get(name)) return existing;
  try {
    return spdlog::stderr_color_mt(name);
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get(name);  // created concurrently
  }
}

// Raises the soft fd limit to the hard one; returns the resulting soft limit.
uint64_t RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

std::string JsonString(std::string_view s) {
  std::string out;
  base::AppendJsonString(out, s);
  return out;
}

// The "udp_sctp" part of /config_dump: whether new UDP and SCTP flows get a verdict, and from
// which queue. `"enforced":false` is the explicit opt-out (or a queue not bound yet).
std::string UdpSctpSection(const config::Bootstrap::UdpSctp& c, const Stats& stats,
                           const std::string& error) {
  const bool enforced = stats.packet_flows.enforced.load(std::memory_order_relaxed);
  std::string out = std::string("{\"enforced\":") + (enforced ? "true" : "false");
  if (c.enforce) {
    out += ",\"queue\":" + std::to_string(c.queue) + ",\"queues\":" + std::to_string(c.queues) +
           ",\"queue_max_len\":" + std::to_string(c.queue_max_len);
    if (!error.empty()) {
      out += ",\"reason\":" + JsonString(
                                  "the queue could not be bound (new UDP and SCTP flows are "
                                  "dropped): " +
                                  error);
    }
  } else {
    out += ",\"reason\":\"udp_sctp.enforce is false: UDP and SCTP are not enforced\"";
  }
  return out + "}";
}

// The "capture" part of /config_dump: how the pod's TCP reaches the policy (config/bootstrap.h
// CaptureMode) and, in verdict mode, whether the queue is bound.
std::string CaptureSection(const config::Bootstrap& b, const Stats& stats, const std::string& error,
                           const std::string& cache_off) {
  std::string out = std::string("{\"mode\":\"") + config::CaptureModeName(b.capture) + "\"";
  if (b.capture == config::CaptureMode::kVerdict) {
    const bool bound = stats.verdict_bound.load(std::memory_order_relaxed);
    out += ",\"queue\":" + std::to_string(b.udp_sctp.queue) +
           ",\"queue_bound\":" + (bound ? "true" : "false");
    if (!bound && !error.empty()) {
      out += ",\"reason\":" +
             JsonString("the queue could not be bound (new TCP flows are reset): " + error);
    }
    // The kernel verdict cache (proxy/verdict_cache.h): whether it is there, its bounds, and
    // why not when it is not.
    const bool on = stats.verdict_cache.on.load(std::memory_order_relaxed);
    out += ",\"verdict_cache\":{\"on\":" + std::string(on ? "true" : "false") +
           ",\"max_entries\":" + std::to_string(b.verdict_cache.max_entries) +
           ",\"ttl_ms\":" + std::to_string(b.verdict_cache.ttl.count());
    if (!on) {
      std::string why = cache_off;
      if (why.empty() && stats.verdict_cache.failures.load(std::memory_order_relaxed) > 0) {
        why = "off (deleted: it could not be emptied on a change; see the log)";
      }
      if (why.empty() && !bound) why = "off (no verdict queue)";
      if (!why.empty()) out += ",\"reason\":" + JsonString(why);
    }
    out += "}";
  }
  return out + "}";
}

// The "service_map" part of /config_dump: the map the xDS agent delivered last (the one every
// worker was given) and the Service version it was ACKed at; null without xds or before the
// first map.
std::string ServiceMapSection(const xds::XdsAgent* agent) {
  if (agent == nullptr || agent->service_map() == nullptr) return "null";
  const xds::ServiceMap& map = *agent->service_map();
  ServiceMapDump dump;
  const auto& types = agent->status().types;
  if (auto it = types.find(std::string(net::kServiceType)); it != types.end()) {
    dump.version = it->second.last_acked_version;
  }
  dump.service_count = map.services();
  dump.address_count = map.addresses();
  auto ips = [](const std::vector<policy::IpAddress>& in) {
    std::vector<std::string> out;
    for (const policy::IpAddress& ip : in) out.push_back(ip.ToString());
    return out;
  };
  dump.services.emplace();
  for (const auto& [name, entry] : map.entries()) {
    ServiceMapDump::Service& s = dump.services->emplace_back();
    s.ns = entry.ns;
    s.name = entry.name;
    s.cluster_ips = ips(entry.cluster_ips);
    for (const xds::ServiceEntry::Port& port : entry.ports) {
      ServiceMapDump::Port& p = s.ports.emplace_back();
      p.name = port.name;
      p.port = port.port;
      p.protocol = config::ProtocolName(port.protocol);
      for (const xds::ServiceEntry::BackendPod& pod : port.backends) {
        p.backends.push_back({pod.pod, ips(pod.ips), pod.port});
      }
    }
  }
  return ServiceMapJson(dump);
}

// The policy-file watcher debounces with a timer that lives beside the fs_event handle.
struct Debounce {
  uv_timer_t timer;
};

}  // namespace

uint64_t MaxConnectionsForFdLimit(uint64_t fd_limit) {
  constexpr uint64_t kReserved = 128;
  if (fd_limit <= kReserved + 10) return 4;
  return (fd_limit - kReserved) * 2 / 5;  // 2 sockets + on average 1/2 pipe per connection
}

Proxy::Proxy(config::Bootstrap bootstrap, uv_loop_t* loop, ProxyOptions options)
    : bootstrap_(std::move(bootstrap)), loop_(loop), options_(std::move(options)) {
  if (!options_.original_destination) options_.original_destination = &OriginalDestination;
  stats_.capture_verdict = bootstrap_.capture == config::CaptureMode::kVerdict;
  flow_log_ = std::make_unique<FlowLog>(
      bootstrap_.flow_log,
      NodeIdentity{bootstrap_.node.ns, bootstrap_.node.name, bootstrap_.node.node_name}, stats_);
}

Proxy::~Proxy() {
  for (auto& worker : workers_) worker->Join();
  flow_log_->Stop();
}

std::expected<void, std::string> Proxy::Start() {
  auto policy_log = Logger("policy");
  std::string error;
  if (!flow_log_->Start(&error)) return std::unexpected(error);

  context_.bootstrap = &bootstrap_;
  for (const std::string& ip : bootstrap_.node.ips) {
    if (auto parsed = policy::IpAddress::Parse(ip)) context_.node_ips.push_back(*parsed);
  }
  if (!bootstrap_.listeners.inbound_passthrough_v4.empty()) {
    context_.inbound_passthrough_v4 =
        policy::IpAddress::Parse(bootstrap_.listeners.inbound_passthrough_v4);
  }
  if (!bootstrap_.listeners.inbound_passthrough_v6.empty()) {
    context_.inbound_passthrough_v6 =
        policy::IpAddress::Parse(bootstrap_.listeners.inbound_passthrough_v6);
  }
  const uint64_t fd_limit = RaiseFdLimit();
  context_.max_connections = bootstrap_.limits.max_connections != 0
                                 ? bootstrap_.limits.max_connections
                                 : MaxConnectionsForFdLimit(fd_limit);
  context_.original_destination = options_.original_destination;
  context_.stats = &stats_;
  context_.flow_log = flow_log_.get();
  context_.conn_log = Logger("conn");
  context_.on_exit = [this] { uv_async_send(&worker_exited_); };

  uv_async_init(loop_, &worker_exited_, &Proxy::OnWorkerExited);
  worker_exited_.data = this;
  handles_open_ = true;

  size_t count = bootstrap_.workers != 0 ? bootstrap_.workers
                                         : std::max(1u, std::thread::hardware_concurrency());
  context_.worker_count = count;
  uint16_t out_port = bootstrap_.listeners.outbound_port;
  uint16_t in_port = bootstrap_.listeners.inbound_port;
  for (size_t i = 0; i < count; ++i) {
    auto worker = std::make_unique<Worker>(static_cast<int>(i), context_);
    if (auto bound = worker->Bind(out_port, in_port); !bound) {
      return std::unexpected(bound.error().ToString());
    }
    out_port = worker->outbound_port();  // port 0: every worker shares the first one's port
    in_port = worker->inbound_port();
    workers_.push_back(std::move(worker));
  }
  outbound_port_ = out_port;
  inbound_port_ = in_port;

  admin_ = std::make_unique<AdminServer>(loop_, *this, AdminScope::kReadOnly);
  if (auto listening = admin_->Listen(bootstrap_.admin.host, bootstrap_.admin.port); !listening) {
    return std::unexpected(listening.error().ToString());
  }
  if (bootstrap_.admin.metrics_port) {
    // On the pod's own addresses (not a wildcard): what Prometheus reaches from outside.
    uint16_t port = *bootstrap_.admin.metrics_port;
    for (const std::string& ip : bootstrap_.node.ips) {
      auto server = std::make_unique<AdminServer>(loop_, *this, AdminScope::kMetricsOnly);
      if (auto listening = server->Listen(ip, port); !listening) {
        return std::unexpected("metrics listener " + ip + ": " + listening.error().ToString());
      }
      port = server->port();  // port 0 (tests): every address shares the first one's port
      metrics_.push_back(std::move(server));
    }
  }
  if (!bootstrap_.admin.socket.empty()) {
    admin_socket_ = std::make_unique<AdminServer>(loop_, *this, AdminScope::kFull);
    if (auto listening = admin_socket_->ListenUnix(bootstrap_.admin.socket); !listening) {
      return std::unexpected(listening.error().ToString());
    }
  }

  if (options_.handle_signals) {
    uv_signal_init(loop_, &sigterm_);
    uv_signal_init(loop_, &sigint_);
    uv_signal_init(loop_, &sighup_);
    for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_}) s->data = this;
    uv_signal_start(&sigterm_, &Proxy::OnSignal, SIGTERM);
    uv_signal_start(&sigint_, &Proxy::OnSignal, SIGINT);
    uv_signal_start(&sighup_, &Proxy::OnSignal, SIGHUP);
  }

  if (!bootstrap_.policy_file.empty()) {
    if (auto loaded = ReloadPolicyFile(); !loaded) {
      policy_log->error("{} (fail closed until a valid policy arrives)", loaded.error());
    }
    std::filesystem::path file(bootstrap_.policy_file);
    std::string dir = file.has_parent_path() ? file.parent_path().string() : ".";
    uv_fs_event_init(loop_, &policy_watch_);
    auto* debounce = new Debounce;  // freed in the timer's close callback (CloseHandles)
    uv_timer_init(loop_, &debounce->timer);
    debounce->timer.data = this;
    policy_watch_.data = debounce;
    if (uv_fs_event_start(&policy_watch_, &Proxy::OnPolicyFileEvent, dir.c_str(), 0) == 0) {
      watching_ = true;
    } else {
      policy_log->warn("cannot watch {}: reload with SIGHUP", dir);
      watching_ = true;  // still close the handles
    }
  }

  if (bootstrap_.xds) {
    if (auto started = StartXds(); !started) return started;
  }

  for (auto& worker : workers_) worker->Start();
  Logger("admin")->info(
      "picket-proxy {}/{}: outbound :{} inbound :{} admin {}:{} workers {} "
      "max_connections {}",
      bootstrap_.node.ns, bootstrap_.node.name, outbound_port_, inbound_port_,
      bootstrap_.admin.host, admin_->port(), workers_.size(), context_.max_connections);
  return {};
}

std::expected<void, std::string> Proxy::StartXds() {
  const config::Bootstrap::Xds& x = *bootstrap_.xds;
  xds::XdsAgentConfig config;
  config.address = x.address;
  config.fallback_addresses = x.fallback_addresses;
  config.cert = x.tls.cert;
  config.key = x.tls.key;
  config.ca = x.tls.ca;
  config.token_file = x.tls.token_file;
  config.csr_address = x.tls.csr_address;
  config.ns = bootstrap_.node.ns;
  config.pod = bootstrap_.node.name;
  // The workers are bound by now: `enforced` is set only if the verdict queue was bound, so the
  // opt-out and a missing CAP_NET_ADMIN both say false, and the control server warns for pods
  // whose policies name UDP or SCTP ports (control/udp_sctp_unenforced.h).
  config.udp_sctp_enforced = stats_.packet_flows.enforced.load(std::memory_order_relaxed);
  auto agent = xds::XdsAgent::Create(
      loop_, config, [this](policy::EndpointPolicyPtr p) { return ApplyPolicy(std::move(p)); },
      [this](xds::ServiceMapPtr services) {
        if (shutting_down_) return;
        for (auto& worker : workers_) worker->PostServiceMap(services);
      });
  if (!agent) return std::unexpected("xds: " + agent.error().ToString());
  xds_agent_ = std::move(*agent);
  xds_agent_->Start();
  Logger("policy")->info("xds: policy from {} (fail closed until the first snapshot)", x.address);
  return {};
}

std::expected<void, std::string> Proxy::ApplyPolicy(policy::EndpointPolicyPtr policy) {
  if (!policy) return std::unexpected(std::string("empty policy snapshot"));
  if (policy->pod_namespace() != bootstrap_.node.ns || policy->pod_name() != bootstrap_.node.name) {
    stats_.policy_update_rejected.fetch_add(1, std::memory_order_relaxed);
    return std::unexpected("policy is for pod " + policy->pod_namespace() + "/" +
                           policy->pod_name() + ", this proxy is " + bootstrap_.node.ns + "/" +
                           bootstrap_.node.name);
  }
  if (shutting_down_) return {};
  policy_ = policy;
  stats_.policy_updates.fetch_add(1, std::memory_order_relaxed);
  for (auto& worker : workers_) worker->PostPolicy(policy);
  Logger("policy")->info("applied policy version {}", policy->version());
  return {};
}

std::expected<void, std::string> Proxy::ReloadPolicyFile() {
  const std::string& path = bootstrap_.policy_file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    stats_.policy_update_rejected.fetch_add(1, std::memory_order_relaxed);
    return std::unexpected(path + ": cannot open policy file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto decoded = policy::DecodeEndpointPolicy(text.str(), path);
  if (!decoded) {
    stats_.policy_update_rejected.fetch_add(1, std::memory_order_relaxed);
    std::string message;
    for (const config::Error& e : decoded.error()) {
      if (!message.empty()) message += "\n";
      message += e.ToString();
    }
    return std::unexpected(message + "\n(policy file rejected; the previous policy stays)");
  }
  if (policy_ && (*decoded)->version() == policy_->version()) return {};  // unchanged
  return ApplyPolicy(std::move(*decoded));
}

void Proxy::OnSignal(uv_signal_t* h, int signum) {
  auto* self = static_cast<Proxy*>(h->data);
  if (signum == SIGHUP) {
    if (self->bootstrap_.policy_file.empty()) return;
    if (auto r = self->ReloadPolicyFile(); !r) Logger("policy")->error("{}", r.error());
    return;
  }
  Logger("admin")->info("signal {}: draining for up to {} ms", signum,
                        self->bootstrap_.timeouts.drain.count());
  self->Shutdown();
}

void Proxy::OnPolicyFileEvent(uv_fs_event_t* h, const char* filename, int, int status) {
  auto* debounce = static_cast<Debounce*>(h->data);
  auto* self = static_cast<Proxy*>(debounce->timer.data);
  if (status < 0 || filename == nullptr) return;
  if (std::filesystem::path(self->bootstrap_.policy_file).filename() != filename) return;
  // An editor or a copy produces several events per change: reload once they settle.
  uv_timer_start(
      &debounce->timer,
      [](uv_timer_t* t) {
        auto* proxy = static_cast<Proxy*>(t->data);
        if (auto r = proxy->ReloadPolicyFile(); !r) Logger("policy")->error("{}", r.error());
      },
      kPolicyDebounceMs, 0);
}

void Proxy::Shutdown() {
  if (shutting_down_) {
    // /quitquitquit during a SIGTERM drain: end the drain time now.
    if (quitting_) {
      for (auto& worker : workers_) worker->PostShutdown(std::chrono::milliseconds(0));
    }
    return;
  }
  shutting_down_ = true;
  // The last good policy stays in force while connections drain; no new snapshot is taken.
  if (xds_agent_ && !xds_closing_) {
    xds_closing_ = true;
    xds_agent_->Close([] { Logger("policy")->info("xds: stream closed"); });
  }
  const auto drain = quitting_ ? std::chrono::milliseconds(0) : bootstrap_.timeouts.drain;
  for (auto& worker : workers_) worker->PostShutdown(drain);
  if (workers_.empty()) CloseHandles();
}

void Proxy::Drain() { DrainListeners(false, false); }

void Proxy::DrainListeners(bool inbound_only, bool graceful) {
  draining_ = true;  // /ready answers 503 DRAINING from now on
  if (graceful) {
    // Envoy's graceful drain: keep accepting for the drain time, then stop. A second request
    // while one is pending changes nothing but widens it to every listener.
    graceful_inbound_only_ = (graceful_drain_ == nullptr || graceful_inbound_only_) && inbound_only;
    if (graceful_drain_ != nullptr || shutting_down_) return;
    Logger("admin")->info("drain_listeners: draining {} listeners for {} ms",
                          inbound_only ? "inbound" : "all", bootstrap_.timeouts.drain.count());
    graceful_drain_ = new uv_timer_t;
    uv_timer_init(loop_, graceful_drain_);
    graceful_drain_->data = this;
    uv_timer_start(
        graceful_drain_,
        [](uv_timer_t* t) {
          auto* self = static_cast<Proxy*>(t->data);
          self->DrainListeners(self->graceful_inbound_only_, false);
        },
        static_cast<uint64_t>(bootstrap_.timeouts.drain.count()), 0);
    return;
  }
  Logger("admin")->info("drain_listeners: {} listeners closed", inbound_only ? "inbound" : "all");
  for (auto& worker : workers_) worker->PostStopAccepting(inbound_only);
}

void Proxy::Quit() {
  Logger("admin")->info("quitquitquit: exiting");
  quitting_ = true;
  Shutdown();
}

AdminHandler::ServerInfo Proxy::Info() const {
  ServerInfo info;
  info.uptime_seconds = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count());
  info.concurrency = static_cast<uint32_t>(workers_.size());
  info.config_path = bootstrap_.source_file;
  info.service_node = bootstrap_.node.ns + "/" + bootstrap_.node.name;
  info.drain_time_seconds = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(bootstrap_.timeouts.drain).count());
  return info;
}

void Proxy::OnWorkerExited(uv_async_t* h) { static_cast<Proxy*>(h->data)->WorkerExited(); }

void Proxy::WorkerExited() {
  // uv_async coalesces: count the workers whose loop has ended by joining the finished ones.
  size_t done = 0;
  for (auto& worker : workers_) {
    if (worker->finished_for_join()) ++done;
  }
  if (done < workers_.size()) return;
  for (auto& worker : workers_) worker->Join();
  CloseHandles();
}

void Proxy::CloseHandles() {
  if (!handles_open_) return;
  handles_open_ = false;
  flow_log_->Stop();
  if (admin_) admin_->Close();
  if (admin_socket_) admin_socket_->Close();
  for (auto& server : metrics_) server->Close();
  if (options_.handle_signals) {
    for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_}) {
      uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
    }
  }
  if (watching_) {
    auto* debounce = static_cast<Debounce*>(policy_watch_.data);
    uv_close(reinterpret_cast<uv_handle_t*>(&policy_watch_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&debounce->timer),
             [](uv_handle_t* t) { delete reinterpret_cast<Debounce*>(t); });
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&worker_exited_), nullptr);
  if (graceful_drain_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(graceful_drain_),
             [](uv_handle_t* t) { delete reinterpret_cast<uv_timer_t*>(t); });
    graceful_drain_ = nullptr;
  }
}

std::string Proxy::ServerState() const {
  if (draining_ || shutting_down_) return "DRAINING";
  return policy_ ? "LIVE" : "PRE_INITIALIZING";
}

std::string Proxy::PrometheusStats() const {
  std::string out = RenderPrometheus(stats_, policy_ != nullptr);
  if (xds_agent_) out += xds_agent_->PrometheusText();
  return out;
}

std::string Proxy::ConfigDump() const {
  const auto& b = bootstrap_;
  std::string out = "{\"bootstrap\":{\"source\":" + JsonString(b.source_file) +
                    ",\"node\":{\"namespace\":" + JsonString(b.node.ns) +
                    ",\"name\":" + JsonString(b.node.name) + ",\"ips\":[";
  for (size_t i = 0; i < b.node.ips.size(); ++i) {
    out += (i ? "," : "") + JsonString(b.node.ips[i]);
  }
  // Worker 0 owns the verdict queue and the verdict cache.
  const std::string verdict_error = workers_.empty() ? "" : workers_[0]->verdict_error();
  const std::string verdict_cache_off = workers_.empty() ? "" : workers_[0]->verdict_cache_off();
  out += "]},\"outbound_port\":" + std::to_string(outbound_port_) +
         ",\"inbound_port\":" + std::to_string(inbound_port_) +
         ",\"workers\":" + std::to_string(workers_.size()) +
         ",\"max_connections\":" + std::to_string(context_.max_connections) +
         ",\"connect_timeout_ms\":" + std::to_string(b.timeouts.connect.count()) +
         ",\"idle_timeout_ms\":" + std::to_string(b.timeouts.idle.count()) +
         ",\"drain_timeout_ms\":" + std::to_string(b.timeouts.drain.count()) +
         ",\"recheck_on_policy_change\":" + (b.recheck_on_policy_change ? "true" : "false") +
         ",\"policy_file\":" + JsonString(b.policy_file) +
         ",\"flow_log\":" + JsonString(b.flow_log.path) +
         ",\"log_allowed\":" + (b.flow_log.log_allowed ? "true" : "false") +
         ",\"xds\":" + (b.xds ? JsonString(b.xds->address) : "null") +
         "},\"capture\":" + CaptureSection(b, stats_, verdict_error, verdict_cache_off) +
         ",\"udp_sctp\":" + UdpSctpSection(b.udp_sctp, stats_, verdict_error) + ",\"policy\":";
  if (policy_) {
    // Encode() is the policy_file text form; only what this pod's rules need is shown.
    out += PolicyDumpJson(policy_->version(), policy_->Encode());
  } else {
    out += "null";
  }
  // The xDS client's state (connected, last ACKed version, last NACK), as proxy/xds renders it.
  out += ",\"xds\":" + (xds_agent_ ? xds_agent_->StatusJson() : std::string("null"));
  out += ",\"service_map\":" + ServiceMapSection(xds_agent_.get());
  out += "}\n";
  return out;
}

std::vector<std::string> Proxy::Flows(const std::string& verdict) const {
  return flow_log_->Recent(verdict);
}

}  // namespace picket::proxy
