#include "proxy/stats.h"

namespace picket::proxy {
namespace {

class Writer {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void Sample(const char* name, const std::string& labels, int64_t value) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

using Getter = int64_t (*)(const DirectionStats&);

void PerDirection(Writer& w, const Stats& s, const char* name, const char* type, const char* help,
                  Getter get) {
  w.Family(name, type, help);
  w.Sample(name, "envoy_tcp_prefix=\"inbound\"", get(s.inbound));
  w.Sample(name, "envoy_tcp_prefix=\"outbound\"", get(s.outbound));
}

int64_t Load(const std::atomic<uint64_t>& a) {
  return static_cast<int64_t>(a.load(std::memory_order_relaxed));
}

}  // namespace

std::string RenderPrometheus(const Stats& s, bool policy_loaded) {
  Writer w;
  PerDirection(w, s, "envoy_tcp_downstream_cx_total", "counter", "Connections accepted.",
               [](const DirectionStats& d) { return Load(d.accepted); });
  PerDirection(w, s, "envoy_tcp_downstream_cx_active", "gauge", "Connections being relayed.",
               [](const DirectionStats& d) { return d.active.load(std::memory_order_relaxed); });
  PerDirection(w, s, "envoy_tcp_downstream_cx_rx_bytes_total", "counter",
               "Bytes received from downstream.",
               [](const DirectionStats& d) { return Load(d.rx_bytes); });
  PerDirection(w, s, "envoy_tcp_downstream_cx_tx_bytes_total", "counter",
               "Bytes sent to downstream.",
               [](const DirectionStats& d) { return Load(d.tx_bytes); });
  PerDirection(
      w, s, "envoy_tcp_idle_timeout", "counter", "Connections closed by idle timeout.",
      [](const DirectionStats& d) {
        return Load(d.closed[filters::CloseReasonIndex(filters::CloseReason::kIdleTimeout)]);
      });
  PerDirection(w, s, "envoy_tcp_rbac_allowed", "counter", "Connections allowed at accept.",
               [](const DirectionStats& d) { return Load(d.allowed); });
  PerDirection(w, s, "envoy_tcp_rbac_denied", "counter", "Connections denied at accept.",
               [](const DirectionStats& d) { return Load(d.denied); });

  const char* kClosed = "picket_connections_closed_total";
  w.Family(kClosed, "counter", "Connections closed, by direction and reason.");
  for (const auto* d : {&s.inbound, &s.outbound}) {
    const char* dir = d == &s.inbound ? "inbound" : "outbound";
    for (filters::CloseReason reason : filters::kAllCloseReasons) {
      w.Sample(kClosed,
               std::string("direction=\"") + dir + "\",reason=\"" +
                   std::string(filters::CloseReasonName(reason)) + "\"",
               Load(d->closed[filters::CloseReasonIndex(reason)]));
    }
  }
  auto single = [&](const char* name, const char* type, const char* help, int64_t value) {
    w.Family(name, type, help);
    w.Sample(name, "", value);
  };
  single("picket_connections_active", "gauge", "Relayed connections open now, both directions.",
         s.active_total.load(std::memory_order_relaxed));
  single("picket_accept_backoff_total", "counter", "Times a listener paused after EMFILE/ENFILE.",
         Load(s.accept_backoff));
  single("picket_policy_loaded", "gauge", "1 once a policy snapshot is loaded.",
         policy_loaded ? 1 : 0);
  single("picket_policy_updates_total", "counter", "Policy snapshots applied.",
         Load(s.policy_updates));
  single("picket_policy_update_rejected_total", "counter", "Policy updates rejected as invalid.",
         Load(s.policy_update_rejected));
  single("picket_flow_records_written_total", "counter", "Flow records written.",
         Load(s.flow_records_written));
  single("picket_flow_records_suppressed_total", "counter",
         "Flow records suppressed by the per-source rate limit.", Load(s.flow_records_suppressed));
  single("picket_flow_records_dropped_total", "counter",
         "Flow records dropped because the writer queue was full.", Load(s.flow_records_dropped));
  const PacketFlowStats& p = s.packet_flows;
  single("picket_udp_sctp_enforced", "gauge",
         "1 when new UDP and SCTP flows get a policy verdict; 0: not enforced (opted out).",
         p.enforced.load(std::memory_order_relaxed) ? 1 : 0);
  const char* kFlows = "picket_udp_sctp_flows_total";
  w.Family(kFlows, "counter", "New UDP and SCTP flows decided, by direction and verdict.");
  for (filters::Direction d : {filters::Direction::kInbound, filters::Direction::kOutbound}) {
    const size_t i = static_cast<size_t>(d);
    const std::string dir = std::string("direction=\"") + filters::DirectionName(d) + "\"";
    w.Sample(kFlows, dir + ",verdict=\"allowed\"", Load(p.allowed[i]));
    w.Sample(kFlows, dir + ",verdict=\"denied\"", Load(p.denied[i]));
  }
  single("picket_udp_sctp_unparsed_total", "counter",
         "Queued packets dropped because their headers did not parse.", Load(p.unparsed));
  single("picket_udp_sctp_conntrack_deleted_total", "counter",
         "UDP and SCTP flows cut after a policy change (conntrack entries deleted).",
         Load(p.conntrack_deleted));
  single("picket_udp_sctp_conntrack_errors_total", "counter",
         "Conntrack dumps or deletions that failed.", Load(p.conntrack_errors));
  return w.Take();
}

}  // namespace picket::proxy
