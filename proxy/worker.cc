#include "proxy/worker.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "proxy/connection.h"
#include "proxy/conntrack_sweep.h"
#include "proxy/nfqueue_listener.h"
#include "proxy/service_pick.h"
#include "proxy/verdict_cache.h"

namespace picket::proxy {
namespace {

constexpr uint64_t kAcceptBackoffMs = 100;
// Verdict mode: at most this many TCP Service addresses and ports get a listener (and their
// addresses a route); past it, connections to the rest fail (fail closed).
constexpr size_t kMaxServiceListeners = 4096;

// What the policy filter knows of a flow from its first packet (or its conntrack entry): the
// same fields as for an accepted TCP connection.
filters::ConnectionInfo PacketFlowInfo(filters::Direction direction, const PacketFlow& flow) {
  filters::ConnectionInfo info;
  info.direction = direction;
  info.source = {flow.source, flow.source_port};
  info.original_destination = {flow.destination, flow.destination_port};
  info.protocol = flow.protocol;
  return info;
}

// A verdict-mode TCP flow to a Service address: the relay's (it picks the backend).
bool ToServiceAddress(const xds::ServiceMap* services, filters::Direction direction,
                      const PacketFlow& flow) {
  return flow.protocol == config::Protocol::kTCP && direction == filters::Direction::kOutbound &&
         services != nullptr &&
         services->Find(flow.destination, flow.destination_port, config::Protocol::kTCP) != nullptr;
}

}  // namespace

Worker::Worker(int index, const WorkerContext& context)
    : index_(index),
      context_(context),
      chain_(filters::BuildFilterChain(filters::ChainConfig{context.max_connections},
                                       filters::ChainDeps{this, &context.stats->active_total})),
      next_id_((static_cast<uint64_t>(index) << 48) + 1) {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, &Worker::OnAsync);
  async_.data = this;
  uv_timer_init(&loop_, &backoff_timer_);
  backoff_timer_.data = this;
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
  uv_idle_init(&loop_, &resume_idle_);
  resume_idle_.data = this;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  uv_poll_init(&loop_, &epoll_watch_, epoll_fd_);
  epoll_watch_.data = this;
  uv_poll_start(&epoll_watch_, UV_READABLE, &Worker::OnEpollReadable);
  if (context.bootstrap->limits.splice) {
    pipe_pool_ = std::make_unique<PipePool>(context.bootstrap->limits.pipe_size, 16);
  }
}

Worker::~Worker() {
  Join();
  // Bind() may have succeeded without Start(): close what is still open, then the loop.
  if (!finished_) {
    CloseListeners();
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    CloseLoopHandles();
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop_);
}

std::expected<void, SysError> Worker::Bind(uint16_t outbound_port, uint16_t inbound_port) {
  auto listeners =
      MakeListeners(&loop_, context_.bootstrap->listeners, outbound_port, inbound_port);
  if (!listeners) return std::unexpected(listeners.error());
  listeners_ = std::move(*listeners);
  const config::Bootstrap::UdpSctp& udp_sctp = context_.bootstrap->udp_sctp;
  // The other queues of this worker (udp_sctp.queues > 1: UDP/SCTP only); worker 0's first one
  // is opened below with the sweeper.
  if (udp_sctp.enforce) {
    for (uint32_t j = 1; j < udp_sctp.queues; ++j) {
      if (j % context_.worker_count != static_cast<size_t>(index_)) continue;
      auto more = NfqueueListener::Open(&loop_, static_cast<uint16_t>(udp_sctp.queue + j),
                                        udp_sctp.queue_max_len);
      if (!more) {
        verdict_error_ = more.error().ToString();
        context_.conn_log->error(
            "verdict queue {} not bound ({}): its UDP and SCTP flows are "
            "dropped",
            udp_sctp.queue + j, verdict_error_);
        continue;
      }
      listeners_.push_back(std::move(*more));
    }
  }
  if (index_ == 0 && (udp_sctp.enforce || verdict_mode())) {
    auto verdict = NfqueueListener::Open(&loop_, udp_sctp.queue, udp_sctp.queue_max_len);
    if (verdict) {
      verdict_listener_ = verdict->get();
      listeners_.push_back(std::move(*verdict));
      // Runs on the sweeper's thread: stats are atomics, loggers are thread-safe.
      sweeper_ = std::make_unique<ConntrackSweeper>(
          SweepScope{verdict_mode(), geteuid()},
          [this](const policy::IpAddress& address) {
            for (const policy::IpAddress& ip : context_.node_ips) {
              if (ip == address) return true;
            }
            return false;
          },
          [this](base::Result<SweepResult> swept) {
            PacketFlowStats& stats = context_.stats->packet_flows;
            if (!swept) {
              stats.conntrack_errors.fetch_add(1, std::memory_order_relaxed);
              context_.conn_log->warn("policy change: flows not cut: {}", swept.error().ToString());
              return;
            }
            stats.conntrack_deleted.fetch_add(swept->deleted, std::memory_order_relaxed);
            if (swept->deleted > 0) {
              context_.conn_log->info("policy change: {} of {} flows cut", swept->deleted,
                                      swept->examined);
            }
            if (swept->tcp_revoked.empty()) return;
            std::lock_guard<std::mutex> lock(mu_);
            if (async_closed_) return;
            for (TcpRevocation& r : swept->tcp_revoked) {
              commands_.tcp_revoked.push_back(std::move(r));
            }
            uv_async_send(&async_);
          });
      context_.stats->packet_flows.enforced.store(udp_sctp.enforce, std::memory_order_relaxed);
      context_.stats->verdict_bound.store(verdict_mode(), std::memory_order_relaxed);
      OpenVerdictCache();
      if (verdict_mode()) OpenServiceRoutes();
      // Hearing every socket's close costs the kernel a message per socket (and us a read):
      // only when allowed flows are logged.
      if (verdict_mode() && context_.bootstrap->flow_log.log_allowed) {
        auto watcher = TcpCloseWatcher::Open(
            &loop_, [this](const TcpCloseWatcher::Closed& closed) { OnTcpClosed(closed); });
        if (watcher) {
          close_watcher_ = std::move(*watcher);
        } else {
          context_.conn_log->error(
              "TCP close events unavailable ({}): allowed verdict-mode flows are not logged at "
              "close",
              watcher.error().ToString());
        }
      }
    } else {
      // Still fail closed: with no socket on the queue the kernel drops every new UDP/SCTP flow
      // the capture rules send there, and (verdict mode) resets every new TCP flow. TCP to
      // the relay is served; /config_dump and the metrics say why the rest is not (typically
      // EPERM: the sidecar lacks CAP_NET_ADMIN).
      verdict_error_ = verdict.error().ToString();
      if (verdict_mode()) {
        context_.conn_log->error(
            "verdict queue not bound ({}): new TCP flows are reset, new UDP and SCTP flows dropped",
            verdict_error_);
      } else {
        context_.conn_log->error(
            "UDP/SCTP verdict queue not bound ({}): new UDP and SCTP flows are dropped",
            verdict_error_);
      }
    }
  }
  for (const auto& listener : listeners_) {
    if (listener->kind() != Listener::Kind::kTcpAccept) continue;
    (listener->direction() == filters::Direction::kOutbound ? outbound_port_ : inbound_port_) =
        listener->local_address().port;
  }
  return {};
}

void Worker::OpenVerdictCache() {
  if (!verdict_mode()) return;
  const config::Bootstrap::VerdictCache& options = context_.bootstrap->verdict_cache;
  if (!options.enabled) {
    verdict_cache_off_ = "off (verdict_cache.enabled: false)";
    return;
  }
  if (context_.bootstrap->flow_log.log_allowed) {
    verdict_cache_off_ = "off (flow_log.log_allowed: every allowed flow is judged and recorded)";
    return;
  }
  auto cache = VerdictCache::Open(&loop_, {options.max_entries, options.ttl}, context_.stats);
  if (!cache) {
    // Still exact: every SYN is judged in userspace.
    verdict_cache_off_ = "off (" + cache.error().ToString() + ")";
    context_.conn_log->warn("verdict cache not created ({}): every new TCP flow is judged here",
                            cache.error().ToString());
    return;
  }
  verdict_cache_ = std::move(*cache);
}

std::vector<int> Worker::PinnedCpus() const {
  const uint32_t queues = context_.bootstrap->udp_sctp.queues;
  std::vector<int> cpus;
  if (queues <= 1 || !context_.bootstrap->udp_sctp.enforce) return cpus;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    // The kernel's --queue-cpu-fanout: CPU c queues to queue + c % queues.
    if (CPU_ISSET(cpu, &allowed) && (static_cast<uint32_t>(cpu) % queues) % context_.worker_count ==
                                        static_cast<size_t>(index_)) {
      cpus.push_back(cpu);
    }
  }
  return cpus;
}

void Worker::Start() {
  ResumeListeners();
  const std::vector<int> cpus = PinnedCpus();
  thread_ = std::thread([this, cpus] {
    if (!cpus.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int cpu : cpus) CPU_SET(cpu, &set);
      // Best effort: a worker that cannot be pinned still reads its queues, from any CPU.
      pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    exited_.store(true, std::memory_order_release);
    if (context_.on_exit) context_.on_exit();
  });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::PostPolicy(policy::EndpointPolicyPtr policy) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (async_closed_) return;
    commands_.policy = std::move(policy);
    uv_async_send(&async_);
  }
}

void Worker::PostServiceMap(xds::ServiceMapPtr services) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (async_closed_) return;
    commands_.services = std::move(services);
    uv_async_send(&async_);
  }
}

void Worker::PostStopAccepting(bool inbound_only) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (async_closed_) return;
    (inbound_only ? commands_.stop_accepting_inbound : commands_.stop_accepting) = true;
    uv_async_send(&async_);
  }
}

void Worker::PostShutdown(std::chrono::milliseconds drain_timeout) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (async_closed_) return;
    commands_.shutdown = drain_timeout;
    uv_async_send(&async_);
  }
}

void Worker::OnAsync(uv_async_t* h) { static_cast<Worker*>(h->data)->RunCommands(); }

void Worker::RunCommands() {
  Commands commands;
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands = std::move(commands_);
    commands_ = Commands{};
  }
  // What the kernel allowed by the old snapshot goes before anything is judged by the new one
  // (and before the sweep, which then finds every flow the cache let through).
  if ((commands.services || commands.policy) && verdict_cache_) ClearVerdictCache();
  // The map first: a policy re-check never sees a map older than the policy it came with.
  if (commands.services) {
    services_ = std::move(*commands.services);
    if (verdict_mode() && !shutting_down_ && !listeners_closed_) SyncServiceListeners();
  }
  if (commands.policy) ApplyPolicy(std::move(*commands.policy));
  if (commands.stop_accepting_inbound) CloseInboundListeners();
  if (commands.stop_accepting) CloseListeners();
  if (!commands.tcp_revoked.empty()) RevokeTcpFlows(std::move(commands.tcp_revoked));
  if (commands.shutdown) BeginShutdown(*commands.shutdown);
}

void Worker::OpenServiceRoutes() {
  ServiceRoutes::Options options;
  options.proxy_uid = geteuid();
  for (const policy::IpAddress& ip : context_.node_ips) {
    std::optional<policy::IpAddress>& source = ip.v6 ? options.source_v6 : options.source_v4;
    if (!source) source = ip;
  }
  options.max_routes = kMaxServiceListeners;
  auto routes = ServiceRoutes::Open(options);
  if (!routes) {
    context_.conn_log->error("Service routes not set ({}): TCP to Services is not relayed",
                             routes.error().ToString());
    return;
  }
  service_routes_ = std::move(*routes);
}

void Worker::SyncServiceListeners() {
  retired_listeners_.clear();  // closed at the previous sync: the loop has run since
  std::vector<filters::Endpoint> wanted;
  std::unordered_set<std::string> keys;
  size_t over = 0;  // TCP Service address-ports past the bound: no listener, no route
  if (services_) {
    for (const auto& [name, entry] : services_->entries()) {
      for (const policy::IpAddress& ip : entry.cluster_ips) {
        for (const xds::ServiceEntry::Port& port : entry.ports) {
          if (port.protocol != config::Protocol::kTCP) continue;
          filters::Endpoint e;
          e.address = ip;
          e.port = port.port;
          std::string key = EndpointToString(e);
          if (keys.contains(key)) continue;
          if (wanted.size() == kMaxServiceListeners) {
            ++over;
            continue;
          }
          keys.insert(std::move(key));
          wanted.push_back(e);
        }
      }
    }
  }
  if (over > 0) {
    context_.conn_log->error(
        "{} TCP Service address-ports past the limit of {}: connections to "
        "them fail",
        over, kMaxServiceListeners);
  }
  for (auto it = service_listeners_.begin(); it != service_listeners_.end();) {
    if (keys.contains(it->first)) {
      ++it;
      continue;
    }
    Listener* gone = it->second;
    gone->Close();
    auto owned = std::find_if(listeners_.begin(), listeners_.end(),
                              [gone](const auto& l) { return l.get() == gone; });
    retired_listeners_.push_back(std::move(*owned));
    listeners_.erase(owned);
    it = service_listeners_.erase(it);
  }
  std::vector<policy::IpAddress> addresses;
  for (const filters::Endpoint& e : wanted) {
    addresses.push_back(e.address);
    std::string key = EndpointToString(e);
    if (service_listeners_.contains(key)) continue;
    auto listener = MakeServiceListener(&loop_, e);
    if (!listener) {
      context_.conn_log->error("Service listener {} not bound ({}): its connections fail", key,
                               listener.error().ToString());
      continue;
    }
    (*listener)->Start(this);
    service_listeners_.emplace(std::move(key), listener->get());
    listeners_.push_back(std::move(*listener));
  }
  if (!service_routes_) return;
  if (auto ok = service_routes_->Sync(addresses); !ok) {
    context_.conn_log->error("Service routes not synced: {}", ok.error().ToString());
  }
}

void Worker::ClearVerdictCache() {
  if (!verdict_cache_->open()) return;  // deleted after an earlier failure (logged then)
  verdict_cache_->Clear();
  if (verdict_cache_->open()) return;
  context_.conn_log->error("verdict cache deleted ({}): every new TCP flow is judged here",
                           verdict_cache_->last_error());
}

void Worker::ApplyPolicy(policy::EndpointPolicyPtr policy) {
  policy_ = std::move(policy);
  if (!context_.bootstrap->recheck_on_policy_change) return;
  SweepPacketFlows();
  // Close() may run callbacks that erase from the map later, never now: iterate a snapshot of
  // ids anyway so the loop does not depend on that.
  std::vector<Connection*> open;
  open.reserve(connections_.size());
  for (auto& [id, connection] : connections_) open.push_back(connection.get());
  for (Connection* connection : open) connection->Recheck(policy_.get());
}

void Worker::OnAcceptExhausted(Listener&, int error) {
  // Out of descriptors: the pending connection stays queued and the socket stays readable, so
  // polling on would spin. Pause every listener and retry later.
  context_.stats->accept_backoff.fetch_add(1, std::memory_order_relaxed);
  context_.conn_log->warn("accept: {}; pausing listeners for {} ms", std::strerror(error),
                          kAcceptBackoffMs);
  PauseListeners();
  uv_timer_start(&backoff_timer_, &Worker::OnBackoffTimer, kAcceptBackoffMs, 0);
}

void Worker::OnAcceptError(Listener&, int error) {
  context_.conn_log->warn("accept: {}", std::strerror(error));
}

void Worker::OnBackoffTimer(uv_timer_t* h) {
  auto* self = static_cast<Worker*>(h->data);
  if (!self->shutting_down_) self->ResumeListeners();
}

const std::optional<policy::IpAddress>& Worker::UpstreamSource(
    filters::Direction direction, const filters::Endpoint& destination) const {
  static const std::optional<policy::IpAddress> kNone;
  if (direction == filters::Direction::kOutbound) return kNone;
  return destination.address.v6 ? context_.inbound_passthrough_v6 : context_.inbound_passthrough_v4;
}

bool Worker::IsOwnListener(const filters::Endpoint& destination) const {
  // Our listeners take any local address (they bind the unspecified one): a destination on a
  // listener port at any address of this namespace — 127.0.0.7 or ::7 on lo, the pod's IPs, a
  // v4-mapped form — is ourselves. Relaying it would connect back to us, from uid 1337 whose
  // connections are never redirected, over and over until descriptors run out.
  if (destination.port != outbound_port_ && destination.port != inbound_port_) return false;
  if (IsLoopbackOrUnspecified(destination.address)) return true;
  // picket-init puts the passthrough sources on lo: ours even before getifaddrs would show them.
  if (destination.address == context_.inbound_passthrough_v4 ||
      destination.address == context_.inbound_passthrough_v6) {
    return true;
  }
  for (const policy::IpAddress& ip : context_.node_ips) {
    if (ip == destination.address) return true;
  }
  return IsLocalAddress(destination.address);
}

void Worker::OnAccepted(Listener& listener, int fd, const sockaddr_storage& peer) {
  DirectionStats& stats = context_.stats->For(listener.direction());
  stats.accepted.fetch_add(1, std::memory_order_relaxed);

  filters::ConnectionInfo info;
  info.direction = listener.direction();
  info.source = EndpointFromSockaddr(peer);
  // A Service listener's own address is where the app connected (routed, not translated).
  std::optional<filters::Endpoint> destination =
      listener.kind() == Listener::Kind::kServiceAccept
          ? std::optional<filters::Endpoint>(listener.local_address())
          : context_.original_destination(fd, listener.local_address().address.v6);
  if (!destination || IsOwnListener(*destination)) {
    // No redirect happened: relaying would connect back to ourselves.
    info.original_destination = destination.value_or(filters::Endpoint{});
    Reject(fd, info,
           filters::FilterResult::Deny(filters::CloseReason::kLoopDetected,
                                       destination ? "addressed to the proxy's own listener"
                                                   : "no original destination (not redirected)"));
    return;
  }
  info.original_destination = *destination;
  // Egress to a Service address goes straight to a backend the policy allows (never decided
  // against the ClusterIP). Without a policy yet, the chain denies as for any destination.
  if (info.direction == filters::Direction::kOutbound && services_ && policy_) {
    std::optional<ServicePick> pick = PickServiceBackend(
        *services_, *policy_, info.original_destination, info.protocol, service_rotation_);
    if (pick) {
      info.service = std::move(pick->service);
      if (!pick->backend) {
        Reject(fd, info, std::move(pick->denial));
        return;
      }
      info.original_destination = *pick->backend;
    }
  }

  filters::FilterResult result = chain_.Run(info);
  if (result.action != filters::FilterResult::Action::kContinue) {
    Reject(fd, info, std::move(result));
    return;
  }
  stats.allowed.fetch_add(1, std::memory_order_relaxed);
  stats.active.fetch_add(1, std::memory_order_relaxed);
  context_.stats->active_total.fetch_add(1, std::memory_order_relaxed);
  uint64_t id = next_id_++;
  auto connection = std::make_unique<Connection>(*this, id, fd, info, std::move(result),
                                                 context_.bootstrap->flow_log.log_allowed);
  Connection* raw = connection.get();
  connections_.emplace(id, std::move(connection));
  if (context_.conn_log->should_log(spdlog::level::debug)) {  // formatting costs per connection
    context_.conn_log->debug("[C{}] {} {} -> {} allowed", id,
                             filters::DirectionName(info.direction), EndpointToString(info.source),
                             EndpointToString(info.original_destination));
  }
  raw->Start();
}

void Worker::Reject(int fd, const filters::ConnectionInfo& info, filters::FilterResult result) {
  // A pause needs a filter that reads bytes; none does yet, so a pause is refused too.
  filters::CloseReason reason = result.action == filters::FilterResult::Action::kDeny
                                    ? result.reason
                                    : filters::CloseReason::kResourceExhausted;
  CloseWithReset(fd);
  DirectionStats& stats = context_.stats->For(info.direction);
  stats.denied.fetch_add(1, std::memory_order_relaxed);
  context_.stats->CountClose(info.direction, reason);
  uint64_t id = next_id_++;
  if (context_.conn_log->should_log(spdlog::level::debug)) {
    context_.conn_log->debug("[C{}] {} {} -> {} reset: {}", id,
                             filters::DirectionName(info.direction), EndpointToString(info.source),
                             EndpointToString(info.original_destination),
                             filters::CloseReasonName(reason));
  }
  RecordDenied(info, reason, std::move(result), id);
}

void Worker::RecordDenied(const filters::ConnectionInfo& info, filters::CloseReason reason,
                          filters::FilterResult result, uint64_t id) {
  // Decide before building: a suppressed denial (the common case in a flood) allocates nothing.
  FlowLog::Admission admission =
      context_.flow_log->AdmitDenial(info.source, info.original_destination, info.direction);
  if (!admission.admitted) return;
  FlowRecord record;
  record.protocol = info.protocol;
  record.time = std::chrono::system_clock::now();
  record.forwarded = false;
  record.close_reason = reason;
  record.direction = info.direction;
  record.source = info.source;
  record.destination = info.original_destination;
  record.destination_service = info.service;
  record.connection_id = id;
  record.policies = std::move(result.policies);
  record.detail = std::move(result.detail);
  record.policy = policy_;
  context_.flow_log->SubmitAdmitted(std::move(record), admission);
}

void Worker::OnConnectionClosed(Connection& connection, filters::CloseReason reason) {
  const filters::ConnectionInfo& info = connection.info();
  DirectionStats& stats = context_.stats->For(info.direction);
  stats.active.fetch_sub(1, std::memory_order_relaxed);
  context_.stats->active_total.fetch_sub(1, std::memory_order_relaxed);
  stats.rx_bytes.fetch_add(connection.bytes_to_upstream(), std::memory_order_relaxed);
  stats.tx_bytes.fetch_add(connection.bytes_to_downstream(), std::memory_order_relaxed);
  context_.stats->CountClose(info.direction, reason);
  const auto duration = std::chrono::nanoseconds(uv_hrtime() - connection.started_ns());
  context_.conn_log->debug("[C{}] closed: {} ({} B up, {} B down, {} us)", connection.id(),
                           filters::CloseReasonName(reason), connection.bytes_to_upstream(),
                           connection.bytes_to_downstream(), duration.count() / 1000);
  const bool revoked = reason == filters::CloseReason::kPolicyChanged;
  if (!revoked && !context_.bootstrap->flow_log.log_allowed) return;
  FlowRecord record;
  record.time = std::chrono::system_clock::now();
  record.forwarded = !revoked;
  record.close_reason = reason;
  record.direction = info.direction;
  record.source = info.source;
  record.destination = info.original_destination;
  record.destination_service = info.service;
  record.connection_id = connection.id();
  record.bytes_to_destination = connection.bytes_to_upstream();
  record.bytes_to_source = connection.bytes_to_downstream();
  record.duration = duration;
  record.relayed = true;
  if (const filters::FilterResult* why = connection.why()) {
    record.policies = why->policies;
    record.detail = why->detail;
  }
  record.policy = policy_;
  context_.flow_log->Submit(std::move(record));
}

void Worker::Destroy(uint64_t id) {
  connections_.erase(id);
  MaybeFinish();
}

void Worker::PauseListeners() {
  // Out of descriptors: accepting waits; verdicts need none and go on.
  for (auto& listener : listeners_) {
    if (listener->kind() != Listener::Kind::kPacketVerdict) listener->Pause();
  }
}

bool Worker::PacketFlowAllowed(filters::Direction direction, const PacketFlow& flow,
                               filters::FilterResult* why) const {
  filters::FilterResult result =
      filters::CheckPolicy(policy_.get(), PacketFlowInfo(direction, flow));
  const bool allowed = result.action == filters::FilterResult::Action::kContinue;
  if (why != nullptr) *why = std::move(result);
  return allowed;
}

PacketVerdict Worker::OnPacketFlow(Listener&, filters::Direction direction,
                                   const PacketFlow& flow) {
  if (flow.protocol == config::Protocol::kTCP) return OnTcpFlow(direction, flow);
  PacketFlowStats& stats = context_.stats->packet_flows;
  const size_t d = static_cast<size_t>(direction);
  filters::FilterResult why;
  if (PacketFlowAllowed(direction, flow, &why)) {
    stats.allowed[d].fetch_add(1, std::memory_order_relaxed);
    return PacketVerdict::kAccept;
  }
  stats.denied[d].fetch_add(1, std::memory_order_relaxed);
  const filters::CloseReason reason = why.reason;
  RecordDenied(PacketFlowInfo(direction, flow), reason, std::move(why), next_id_++);
  return PacketVerdict::kDrop;
}

PacketVerdict Worker::OnTcpFlow(filters::Direction direction, const PacketFlow& flow) {
  // A Service address is routed to the relay's listeners (proxy/service_routes.h), which pick
  // the backend and judge it: one that reaches the queue was not routed (no listener or route,
  // past the bound), and going on would reach the ClusterIP unjudged.
  if (ToServiceAddress(services_.get(), direction, flow)) return PacketVerdict::kReject;
  DirectionStats& stats = context_.stats->For(direction);
  stats.accepted.fetch_add(1, std::memory_order_relaxed);
  filters::ConnectionInfo info = PacketFlowInfo(direction, flow);
  filters::FilterResult result = filters::CheckPolicy(policy_.get(), info);
  const uint64_t id = next_id_++;
  if (result.action != filters::FilterResult::Action::kContinue) {
    stats.denied.fetch_add(1, std::memory_order_relaxed);
    context_.stats->CountClose(direction, result.reason);
    if (context_.conn_log->should_log(spdlog::level::debug)) {
      context_.conn_log->debug("[C{}] {} {} -> {} reset: {}", id, filters::DirectionName(direction),
                               EndpointToString(info.source),
                               EndpointToString(info.original_destination),
                               filters::CloseReasonName(result.reason));
    }
    const filters::CloseReason reason = result.reason;
    RecordDenied(info, reason, std::move(result), id);
    return PacketVerdict::kReject;
  }
  stats.allowed.fetch_add(1, std::memory_order_relaxed);
  if (verdict_cache_) {
    const bool outbound = direction == filters::Direction::kOutbound;
    verdict_cache_->Remember(direction, outbound ? flow.destination : flow.source,
                             flow.destination_port);
  }
  // Remembered only to be logged at close.
  if (close_watcher_ == nullptr) return PacketVerdict::kAccept;
  const TcpTuple tuple = direction == filters::Direction::kOutbound
                             ? TcpTuple{info.source, info.original_destination}
                             : TcpTuple{info.original_destination, info.source};
  // Bounded: past max_connections a flow is carried but not remembered (no record at close).
  if (verdict_flows_.size() < context_.max_connections || verdict_flows_.contains(tuple)) {
    verdict_flows_.insert_or_assign(tuple,
                                    VerdictFlow{id, uv_hrtime(), direction, std::move(result)});
  } else {
    context_.stats->verdict_untracked.fetch_add(1, std::memory_order_relaxed);
  }
  return PacketVerdict::kAccept;
}

void Worker::OnTcpClosed(const TcpCloseWatcher::Closed& closed) {
  auto it = verdict_flows_.find(closed.tuple);
  if (it == verdict_flows_.end()) return;  // not a flow we let through (or not remembered)
  VerdictFlow flow = std::move(it->second);
  verdict_flows_.erase(it);
  const bool outbound = flow.direction == filters::Direction::kOutbound;
  const uint64_t to_destination = outbound ? closed.bytes_sent : closed.bytes_received;
  const uint64_t to_source = outbound ? closed.bytes_received : closed.bytes_sent;
  DirectionStats& stats = context_.stats->For(flow.direction);
  stats.rx_bytes.fetch_add(to_destination, std::memory_order_relaxed);
  stats.tx_bytes.fetch_add(to_source, std::memory_order_relaxed);
  context_.stats->CountClose(flow.direction, filters::CloseReason::kNormal);
  const auto duration = std::chrono::nanoseconds(uv_hrtime() - flow.started_ns);
  if (!context_.bootstrap->flow_log.log_allowed) return;
  FlowRecord record;
  record.protocol = config::Protocol::kTCP;
  record.time = std::chrono::system_clock::now();
  record.forwarded = true;
  record.close_reason = filters::CloseReason::kNormal;
  record.direction = flow.direction;
  record.source = outbound ? closed.tuple.local : closed.tuple.remote;
  record.destination = outbound ? closed.tuple.remote : closed.tuple.local;
  record.connection_id = flow.id;
  record.bytes_to_destination = to_destination;
  record.bytes_to_source = to_source;
  record.duration = duration;
  record.relayed = true;  // the kernel moved the bytes; the counts are the app socket's
  record.policies = std::move(flow.why.policies);
  record.detail = std::move(flow.why.detail);
  record.policy = policy_;
  context_.flow_log->Submit(std::move(record));
}

void Worker::RevokeTcpFlows(std::vector<TcpRevocation> revoked) {
  for (TcpRevocation& r : revoked) {
    // The sweep judged with the policy and service map of its request. The map comes apart from
    // the policy, often just after it: a flow to a Service address of the map in force went (or,
    // its SYN still queued, goes) to the relay, which re-checks its own connections.
    if (ToServiceAddress(services_.get(), r.direction, r.flow)) continue;
    // A newer policy may allow the flow again.
    filters::FilterResult now =
        filters::CheckPolicy(policy_.get(), PacketFlowInfo(r.direction, r.flow));
    if (now.action == filters::FilterResult::Action::kContinue) continue;
    auto destroyed = DestroyTcpSocket(r.socket);
    if (!destroyed) {
      context_.conn_log->warn("policy change: {} not reset: {}", EndpointToString(r.socket.remote),
                              destroyed.error().ToString());
      continue;
    }
    if (!*destroyed) continue;  // closed meanwhile
    uint64_t id = next_id_++;
    uint64_t started_ns = 0;
    if (auto it = verdict_flows_.find(r.socket); it != verdict_flows_.end()) {
      id = it->second.id;
      started_ns = it->second.started_ns;
      verdict_flows_.erase(it);
    }
    context_.stats->CountClose(r.direction, filters::CloseReason::kPolicyChanged);
    const filters::ConnectionInfo info = PacketFlowInfo(r.direction, r.flow);
    context_.conn_log->info("[C{}] {} {} -> {} reset: policy_changed", id,
                            filters::DirectionName(r.direction), EndpointToString(info.source),
                            EndpointToString(info.original_destination));
    FlowRecord record;
    record.protocol = config::Protocol::kTCP;
    record.time = std::chrono::system_clock::now();
    record.forwarded = false;
    record.close_reason = filters::CloseReason::kPolicyChanged;
    record.direction = r.direction;
    record.source = info.source;
    record.destination = info.original_destination;
    record.connection_id = id;
    if (started_ns != 0) record.duration = std::chrono::nanoseconds(uv_hrtime() - started_ns);
    record.policies = std::move(now.policies);
    record.detail = std::move(now.detail);
    record.policy = policy_;
    context_.flow_log->Submit(std::move(record));
  }
}

void Worker::OnPacketUnparsed(Listener&, const base::Error& error) {
  context_.stats->packet_flows.unparsed.fetch_add(1, std::memory_order_relaxed);
  if (context_.conn_log->should_log(spdlog::level::debug)) {
    context_.conn_log->debug("queued packet dropped: {}", error.ToString());
  }
}

void Worker::SweepPacketFlows() {
  if (sweeper_ == nullptr) return;
  // The snapshot just swapped in, judged off the loop: the same decision as the queue's. A TCP
  // flow to a Service address went to the relay, which re-checks its own connections (the
  // sweeper also leaves alone every socket the nat table redirected to it, whatever the map).
  sweeper_->Request([policy = policy_, services = services_](filters::Direction direction,
                                                             const PacketFlow& flow) {
    if (ToServiceAddress(services.get(), direction, flow)) return true;
    return filters::CheckPolicy(policy.get(), PacketFlowInfo(direction, flow)).action ==
           filters::FilterResult::Action::kContinue;
  });
}

void Worker::ResumeListeners() {
  for (auto& listener : listeners_) listener->Start(this);
}

void Worker::CloseListeners() {
  listeners_closed_ = true;
  for (auto& listener : listeners_) listener->Close();
  // No queue, no cache: every new TCP flow is refused from now on.
  if (verdict_cache_) verdict_cache_->Close();
  uv_timer_stop(&backoff_timer_);
}

void Worker::CloseInboundListeners() {
  for (auto& listener : listeners_) {
    if (listener->kind() == Listener::Kind::kTcpAccept &&
        listener->direction() == filters::Direction::kInbound) {
      listener->Close();
    }
  }
}

void Worker::OnDrainTimer(uv_timer_t* h) {
  auto* self = static_cast<Worker*>(h->data);
  std::vector<Connection*> open;
  for (auto& [id, connection] : self->connections_) open.push_back(connection.get());
  for (Connection* connection : open) connection->Close(filters::CloseReason::kShutdown, true);
}

void Worker::BeginShutdown(std::chrono::milliseconds drain_timeout) {
  if (shutting_down_) {
    // A second shutdown with no drain time (/quitquitquit) cuts the running drain short.
    if (drain_timeout.count() == 0) uv_timer_start(&drain_timer_, &Worker::OnDrainTimer, 0, 0);
    return;
  }
  shutting_down_ = true;
  CloseListeners();
  uv_timer_start(&drain_timer_, &Worker::OnDrainTimer, static_cast<uint64_t>(drain_timeout.count()),
                 0);
  MaybeFinish();
}

void Worker::MaybeFinish() {
  if (!shutting_down_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    async_closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  }
  CloseLoopHandles();
  // uv_run returns once these close callbacks have run: the thread then ends.
}

void Worker::CloseLoopHandles() {
  if (close_watcher_) close_watcher_->Close();
  if (verdict_cache_) verdict_cache_->Close();
  uv_close(reinterpret_cast<uv_handle_t*>(&backoff_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&resume_idle_), nullptr);
  // uv_close takes the fd out of the loop's epoll at once; then it can be closed.
  uv_close(reinterpret_cast<uv_handle_t*>(&epoll_watch_), nullptr);
  close(epoll_fd_);
  epoll_fd_ = -1;
}

static_assert(alignof(Connection) >= 2, "the low bit of a Connection* carries the side");

bool Worker::Watch(int fd, Connection* connection, int side) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  // Connections are at least 8-byte aligned: the low bit carries the side.
  event.data.u64 = reinterpret_cast<uintptr_t>(connection) | static_cast<uintptr_t>(side);
  return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) == 0;
}

void Worker::OnEpollReadable(uv_poll_t* h, int status, int) {
  if (status < 0) return;
  static_cast<Worker*>(h->data)->DispatchEvents();
}

void Worker::DispatchEvents() {
  // A closed connection's memory lives until its timer's close callback, which runs after this
  // callback returns: events later in the batch that name it are safe (it ignores them).
  constexpr int kBatch = 256;
  epoll_event events[kBatch];
  for (int round = 0; round < 4; ++round) {
    int n = epoll_wait(epoll_fd_, events, kBatch, 0);
    for (int i = 0; i < n; ++i) {
      auto* connection = reinterpret_cast<Connection*>(events[i].data.u64 & ~uintptr_t{1});
      auto side = static_cast<Connection::SideIndex>(events[i].data.u64 & 1);
      connection->OnEvent(side, events[i].events);
    }
    if (n < kBatch) break;
  }
}

void Worker::ResumeLater(uint64_t id) {
  if (resume_ids_.empty()) uv_idle_start(&resume_idle_, &Worker::OnResumeIdle);
  resume_ids_.push_back(id);
}

void Worker::OnResumeIdle(uv_idle_t* h) {
  auto* self = static_cast<Worker*>(h->data);
  std::vector<uint64_t> ids;
  ids.swap(self->resume_ids_);
  // Ids, not pointers: a connection may have been closed and destroyed since.
  for (uint64_t id : ids) {
    auto it = self->connections_.find(id);
    if (it != self->connections_.end()) it->second->Resume();
  }
  if (self->resume_ids_.empty()) uv_idle_stop(&self->resume_idle_);
}

}  // namespace picket::proxy
