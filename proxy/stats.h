// proxy/stats.h — the proxy's counters and gauges, and their Prometheus text rendering.
//
// Owns: `Stats` (process-wide relaxed atomics: workers add, the admin thread reads) and
// `RenderPrometheus`. Names follow Envoy's /stats/prometheus where they mean the same:
// `envoy_tcp_downstream_cx_total{envoy_tcp_prefix="outbound"}`, `..._rx_bytes_total`,
// `envoy_tcp_rbac_allowed` / `_denied`; the rest are `picket_*`, e.g.
// `picket_connections_closed_total{reason="policy_denied"}`. Labels are bounded (direction,
// reason): never a peer address.
//
// Threads: any thread may update or read.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "filters/close_reason.h"
#include "filters/filter.h"

namespace picket::proxy {

struct DirectionStats {
  std::atomic<uint64_t> accepted{0};  // downstream_cx_total
  std::atomic<uint64_t> allowed{0};   // rbac.allowed
  std::atomic<uint64_t> denied{0};    // rbac.denied (any deny at accept)
  std::atomic<int64_t> active{0};     // relayed connections open now
  std::atomic<uint64_t> rx_bytes{0};  // from downstream
  std::atomic<uint64_t> tx_bytes{0};  // to downstream
  std::array<std::atomic<uint64_t>, filters::kAllCloseReasons.size()> closed{};
};

// UDP and SCTP: a verdict per new flow (proxy/nfqueue_listener.h), not relayed.
struct PacketFlowStats {
  std::atomic<bool> enforced{false};   // the verdict queue is bound (else: not enforced)
  std::atomic<uint64_t> allowed[2]{};  // by filters::Direction
  std::atomic<uint64_t> denied[2]{};
  std::atomic<uint64_t> unparsed{0};           // dropped: headers did not parse
  std::atomic<uint64_t> conntrack_deleted{0};  // flows a policy change cut (ctnetlink)
  std::atomic<uint64_t> conntrack_errors{0};
};

// Verdict mode's kernel verdict cache (proxy/verdict_cache.h).
struct VerdictCacheStats {
  std::atomic<bool> on{false};          // the table is there: cached SYNs skip the queue
  std::atomic<uint64_t> hits[2]{};      // SYNs the kernel allowed from the cache, by direction
  std::atomic<uint64_t> remembered{0};  // entries added
  std::atomic<uint64_t> refused{0};     // entries the kernel did not take (a set full)
  std::atomic<uint64_t> clears{0};      // emptied on a policy or Service map change
  std::atomic<uint64_t> failures{0};    // could not be emptied: deleted, off from then on
};

struct Stats {
  PacketFlowStats packet_flows;
  VerdictCacheStats verdict_cache;
  DirectionStats inbound;
  DirectionStats outbound;
  std::atomic<int64_t> active_total{0};  // both directions: the connection-limit gauge
  std::atomic<uint64_t> accept_backoff{0};
  std::atomic<uint64_t> policy_updates{0};
  std::atomic<uint64_t> policy_update_rejected{0};
  std::atomic<uint64_t> flow_records_written{0};
  std::atomic<uint64_t> flow_records_suppressed{0};
  std::atomic<uint64_t> flow_records_dropped{0};  // queue overflow
  std::atomic<uint64_t> pipes_open{0};
  // Verdict mode (capture: verdict): set once at start; whether the queue is bound (else every
  // new TCP flow is reset); allowed TCP flows carried but not remembered (past
  // max_connections), so not logged at close.
  bool capture_verdict = false;
  std::atomic<bool> verdict_bound{false};
  std::atomic<uint64_t> verdict_untracked{0};

  DirectionStats& For(filters::Direction d) {
    return d == filters::Direction::kInbound ? inbound : outbound;
  }
  void CountClose(filters::Direction d, filters::CloseReason reason) {
    For(d).closed[filters::CloseReasonIndex(reason)].fetch_add(1, std::memory_order_relaxed);
  }
};

// Prometheus text exposition format 0.0.4 through base/prometheus_text.h: picket_build_info first,
// then every family with its HELP and TYPE.
std::string RenderPrometheus(const Stats& stats, bool policy_loaded);

}  // namespace picket::proxy
