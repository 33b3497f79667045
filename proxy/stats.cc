// proxy/stats.cc — see stats.h.
#include "proxy/stats.h"

#include "base/prometheus_text.h"

namespace picket::proxy {
namespace {

using Getter = uint64_t (*)(const DirectionStats&);

void PerDirection(base::PrometheusText& p, const Stats& s, const char* name, const char* type,
                  const char* help, Getter get) {
  p.Family(name, type, help);
  p.Sample(get(s.inbound), {{"envoy_tcp_prefix", "inbound"}});
  p.Sample(get(s.outbound), {{"envoy_tcp_prefix", "outbound"}});
}

uint64_t Load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

// A gauge that cannot go below 0 for long, but may for an instant between two relaxed updates.
uint64_t Gauge(const std::atomic<int64_t>& a) {
  const int64_t v = a.load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

}  // namespace

std::string RenderPrometheus(const Stats& s, bool policy_loaded) {
  base::PrometheusText p;
  p.BuildInfo();
  PerDirection(p, s, "envoy_tcp_downstream_cx_total", "counter", "Connections accepted.",
               [](const DirectionStats& d) { return Load(d.accepted); });
  PerDirection(p, s, "envoy_tcp_downstream_cx_active", "gauge", "Connections being relayed.",
               [](const DirectionStats& d) { return Gauge(d.active); });
  PerDirection(p, s, "envoy_tcp_downstream_cx_rx_bytes_total", "counter",
               "Bytes received from downstream.",
               [](const DirectionStats& d) { return Load(d.rx_bytes); });
  PerDirection(p, s, "envoy_tcp_downstream_cx_tx_bytes_total", "counter",
               "Bytes sent to downstream.",
               [](const DirectionStats& d) { return Load(d.tx_bytes); });
  // Envoy's names, kept for existing dashboards though they are counters without "_total"
  // (README "Sidecar metrics" lists these exceptions).
  PerDirection(
      p, s, "envoy_tcp_idle_timeout", "counter", "Connections closed by idle timeout.",
      [](const DirectionStats& d) {
        return Load(d.closed[filters::CloseReasonIndex(filters::CloseReason::kIdleTimeout)]);
      });
  PerDirection(p, s, "envoy_tcp_rbac_allowed", "counter", "Connections allowed at accept.",
               [](const DirectionStats& d) { return Load(d.allowed); });
  PerDirection(p, s, "envoy_tcp_rbac_denied", "counter", "Connections denied at accept.",
               [](const DirectionStats& d) { return Load(d.denied); });

  p.Family("picket_connections_closed_total", "counter",
           "Connections closed, by direction and reason.");
  for (const auto* d : {&s.inbound, &s.outbound}) {
    const char* dir = d == &s.inbound ? "inbound" : "outbound";
    for (filters::CloseReason reason : filters::kAllCloseReasons) {
      p.Sample(Load(d->closed[filters::CloseReasonIndex(reason)]),
               {{"direction", dir}, {"reason", std::string(filters::CloseReasonName(reason))}});
    }
  }
  p.Single("picket_connections_active", "gauge", "Relayed connections open now, both directions.",
           Gauge(s.active_total));
  p.Single("picket_accept_backoff_total", "counter", "Times a listener paused after EMFILE/ENFILE.",
           Load(s.accept_backoff));
  p.Single("picket_policy_loaded", "gauge", "1 once a policy snapshot is loaded.",
           policy_loaded ? 1 : 0);
  p.Single("picket_policy_updates_total", "counter", "Policy snapshots applied.",
           Load(s.policy_updates));
  p.Single("picket_policy_update_rejected_total", "counter", "Policy updates rejected as invalid.",
           Load(s.policy_update_rejected));
  p.Single("picket_flow_records_written_total", "counter", "Flow records written.",
           Load(s.flow_records_written));
  p.Single("picket_flow_records_suppressed_total", "counter",
           "Flow records suppressed by the per-source rate limit.",
           Load(s.flow_records_suppressed));
  p.Single("picket_flow_records_dropped_total", "counter",
           "Flow records dropped because the writer queue was full.", Load(s.flow_records_dropped));
  p.Family("picket_capture_mode", "gauge",
           "1 for the pod's capture mode: relay (connections relayed) or verdict (each new TCP "
           "flow judged from the verdict queue, the kernel carries it).");
  p.Sample(uint64_t{s.capture_verdict ? 0u : 1u}, {{"mode", "relay"}});
  p.Sample(uint64_t{s.capture_verdict ? 1u : 0u}, {{"mode", "verdict"}});
  if (s.capture_verdict) {
    p.Single("picket_verdict_queue_bound", "gauge",
             "1 when the verdict queue is bound; 0: every new TCP flow is reset (fail closed).",
             s.verdict_bound.load(std::memory_order_relaxed) ? 1 : 0);
    p.Single("picket_verdict_untracked_total", "counter",
             "Allowed verdict-mode TCP flows not remembered (max_connections reached): no record "
             "at their close.",
             Load(s.verdict_untracked));
    const VerdictCacheStats& c = s.verdict_cache;
    p.Single("picket_verdict_cache_on", "gauge",
             "1 while the kernel verdict cache is there (SYNs to or from a peer and port just "
             "allowed skip the queue); 0: every SYN is judged by the sidecar.",
             c.on.load(std::memory_order_relaxed) ? 1 : 0);
    p.Family("picket_verdict_cache_hits_total", "counter",
             "New TCP flows the kernel allowed from the verdict cache (read once a second; also "
             "counted in downstream_cx_total and rbac_allowed).");
    for (filters::Direction d : {filters::Direction::kInbound, filters::Direction::kOutbound}) {
      p.Sample(Load(c.hits[static_cast<size_t>(d)]), {{"direction", filters::DirectionName(d)}});
    }
    p.Single("picket_verdict_cache_entries_added_total", "counter",
             "Allowed peer and port pairs put in the verdict cache.", Load(c.remembered));
    p.Single("picket_verdict_cache_entries_refused_total", "counter",
             "Pairs the kernel did not take (a set at verdict_cache.max_entries).",
             Load(c.refused));
    p.Single("picket_verdict_cache_clears_total", "counter",
             "Times the cache was emptied (a policy or Service map change).", Load(c.clears));
    p.Single("picket_verdict_cache_failures_total", "counter",
             "Times the cache could not be emptied and was deleted (off from then on).",
             Load(c.failures));
  }
  const PacketFlowStats& f = s.packet_flows;
  p.Single("picket_udp_sctp_enforced", "gauge",
           "1 when new UDP and SCTP flows get a policy verdict; 0: not enforced (opted out).",
           f.enforced.load(std::memory_order_relaxed) ? 1 : 0);
  p.Family("picket_udp_sctp_flows_total", "counter",
           "New UDP and SCTP flows decided, by direction and verdict.");
  for (filters::Direction d : {filters::Direction::kInbound, filters::Direction::kOutbound}) {
    const size_t i = static_cast<size_t>(d);
    const std::string dir(filters::DirectionName(d));
    p.Sample(Load(f.allowed[i]), {{"direction", dir}, {"verdict", "allowed"}});
    p.Sample(Load(f.denied[i]), {{"direction", dir}, {"verdict", "denied"}});
  }
  p.Single("picket_udp_sctp_unparsed_total", "counter",
           "Queued packets dropped because their headers did not parse.", Load(f.unparsed));
  p.Single("picket_udp_sctp_conntrack_deleted_total", "counter",
           "UDP and SCTP flows cut after a policy change (conntrack entries deleted).",
           Load(f.conntrack_deleted));
  p.Single("picket_udp_sctp_conntrack_errors_total", "counter",
           "Conntrack dumps or deletions that failed.", Load(f.conntrack_errors));
  return p.Take();
}

}  // namespace picket::proxy
