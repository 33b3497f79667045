// config/bootstrap.h — the sidecar's bootstrap file: schema, defaults, validation.
//
// Owns: `Bootstrap` (plain, immutable value the proxy starts from) and the functions that turn
// YAML text into it. Every problem is reported (not just the first) as
// `file:line: field.path: reason`; unknown keys are errors. The schema is documented in
// proxy/README.md. yaml-cpp stays inside bootstrap.cc; nothing here throws.
//
// Pure functions; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.h"

namespace picket::config {

// How the pod's TCP reaches the policy (picket-init's --capture, the bootstrap's `capture`):
// kRelay redirects every connection to the sidecar's listeners, which judge and relay it;
// kVerdict queues each new TCP flow's first packet to the sidecar's verdict queue (the one
// UDP/SCTP use), which judges it and lets the kernel carry the connection straight to its
// destination. Service addresses stay on the relay in both (it picks the backend).
enum class CaptureMode : uint8_t { kRelay, kVerdict };
inline const char* CaptureModeName(CaptureMode m) {
  return m == CaptureMode::kRelay ? "relay" : "verdict";
}

// The packet-mark contract of verdict mode between picket-init's rules and the sidecar (only
// the bits of kVerdictMarkMask are ours; a mark never leaves the pod's network namespace). The
// rules mark each new TCP flow's packet kVerdictMarkReject before queueing it (with
// --queue-bypass): the filter table answers a packet still so marked with a TCP reset, so a
// denied flow, and every flow while no sidecar listens, is refused. The sidecar's verdict clears
// our bits (allowed: the kernel carries the flow); a Service address never reaches the queue (the
// sidecar routes TCP to it to its own listeners, proxy/service_routes.h). A SYN the sidecar's
// kernel verdict cache allowed (proxy/verdict_cache.h) already carries kVerdictMarkJudged when it
// reaches the rules, which then neither mark nor queue it.
//
// UDP/SCTP (both modes): the nat table queues a new flow's first packet (nat rules run for a
// connection's first packet only). The sidecar accepts it with NF_REPEAT and kVerdictMarkJudged:
// the hook that queued it runs again, our chains return on the mark, and the nat table binds the
// flow as is, so its later packets meet no rule of ours at all.
inline constexpr uint32_t kVerdictMarkMask = 0x00030000;
inline constexpr uint32_t kVerdictMarkReject = 0x00010000;
inline constexpr uint32_t kVerdictMarkJudged = 0x00030000;

struct Bootstrap {
  struct Node {
    std::string ns;
    std::string name;
    std::vector<std::string> ips;  // the pod's addresses, textual (v4 and/or v6)
    // The Kubernetes node the pod runs on (spec.nodeName, from the downward API): the flow
    // records' `node_name`, as Hubble means it. Optional; empty: unknown, left out of records.
    std::string node_name;
  };
  struct Listeners {
    uint16_t outbound_port = 15001;
    uint16_t inbound_port = 15006;
    bool ipv4 = true;  // bind 0.0.0.0
    bool ipv6 = true;  // bind :: with IPV6_V6ONLY
    // Source addresses of the proxy's connections to the local app (inbound), so that the
    // capture rules do not redirect them again (picket-init's --inbound-passthrough-source).
    // Empty: do not bind (only safe when the proxy's uid is exempt from all capture).
    std::string inbound_passthrough_v4 = "127.0.0.7";
    std::string inbound_passthrough_v6 = "::7";
  };
  struct Admin {
    std::string host = "127.0.0.1";  // loopback only
    uint16_t port = 15000;
    // The Unix-domain socket of the mutating endpoints (POST /drain); the TCP endpoint is
    // read-only, since the app shares its network namespace. Its directory is made 0700 and must
    // be the proxy's uid's (an emptyDir mounted e.g. at /var/run/picket). Empty: none.
    std::string socket;
    // The read-only metrics listener (as Istio's 15090): GET /stats/prometheus only, on each of
    // the pod's addresses (node.ips), so Prometheus can scrape the sidecar from outside the pod;
    // every other path is 404. picket-init must leave this port out of capture
    // (--metrics-port). nullopt: none. 0 (tests only, not accepted from YAML): an ephemeral port.
    std::optional<uint16_t> metrics_port;
  };
  struct FlowLog {
    std::string path = "stdout";  // "stdout" or a file path (rotated)
    uint64_t max_size_bytes = 10 * 1024 * 1024;
    uint32_t max_files = 3;         // rotated files kept besides the live one
    bool log_allowed = false;       // denies are always logged
    uint32_t rate_per_source = 50;  // records per second per source address (burst = same)
    uint32_t recent = 1024;         // records kept in memory for /flows
    // The global budget, on top of the per-source one; a quarter of it is kept for the first
    // record of a (source, destination, port, direction) tuple not logged recently.
    uint32_t lines_per_second = 1000;
    uint64_t bytes_per_second = 1024 * 1024;
    uint32_t recent_tuples = 4096;  // tuples remembered as "logged recently" (bounded LRU)
  };
  struct Limits {
    uint64_t max_connections = 0;      // 0: derived from RLIMIT_NOFILE
    uint32_t buffer_size = 64 * 1024;  // per-direction user-space buffer (splice fallback)
    uint32_t pipe_size = 256 * 1024;   // per-direction splice pipe
    bool splice = true;
  };
  struct Timeouts {
    std::chrono::milliseconds connect{5000};
    std::chrono::milliseconds idle{3600 * 1000};
    std::chrono::milliseconds drain{20000};
  };
  // UDP and SCTP enforcement: a verdict per new flow from NFQUEUE `queue` (picket-init's
  // --nfqueue), needing CAP_NET_ADMIN. Off: UDP and SCTP are not enforced (the explicit
  // opt-out, which picket-init's --udp-sctp=false must match); /config_dump and the metrics
  // say so. The injector writes `enforce: true` unless the pod opts out.
  struct UdpSctp {
    bool enforce = false;
    uint16_t queue = 15000;
    // Queues `queue` .. + queues - 1 (picket-init --nfqueue-count; the kernel picks one by the
    // CPU that handles the packet). Queue queue+j belongs to worker j % workers, and with more
    // than one queue each worker runs on the CPUs whose packets go to its queues, so a new flow's
    // first packet wakes a reader on its own CPU. TCP verdicts use `queue` (worker 0).
    uint16_t queues = 1;
    uint32_t queue_max_len = 4096;  // packets waiting for a verdict before the kernel drops
  };
  // Verdict mode's kernel verdict cache (proxy/verdict_cache.h): after the sidecar allowed a
  // new TCP flow, later SYNs with the same peer and port (destination outbound, source inbound)
  // are allowed by the kernel without a trip to the sidecar, until the next policy or Service map
  // change or `ttl`. An nftables table owned by the sidecar's socket: gone with the sidecar.
  // Never with flow_log.log_allowed (every allowed flow is then recorded at its close).
  struct VerdictCache {
    bool enabled = true;
    uint32_t max_entries = 16384;  // per direction and family
    std::chrono::milliseconds ttl{60000};
  };
  struct Tls {
    std::string cert;
    std::string key;
    std::string ca;
    // Instead of cert and key: the pod's projected service-account token (audience picket) and
    // the control server's certificate endpoint (host:port, its --csr-listen); the sidecar's
    // certificate is issued and renewed from them (control/PROTOCOL.md §7.1).
    std::string token_file;
    std::string csr_address;
  };
  static constexpr size_t kMaxXdsFallbacks = 16;
  struct Xds {
    std::string address;  // host:port of the control server
    // More control-server replicas (host:port, at most kMaxXdsFallbacks), tried in order after
    // `address` on every reconnect attempt. Usually empty: one Service name whose addresses are
    // the replicas does the same.
    std::vector<std::string> fallback_addresses;
    Tls tls;
  };

  Node node;
  Listeners listeners;
  Admin admin;
  FlowLog flow_log;
  Limits limits;
  Timeouts timeouts;
  UdpSctp udp_sctp;
  // kVerdict needs the verdict queue (udp_sctp.queue, CAP_NET_ADMIN) whatever udp_sctp.enforce
  // says, and picket-init --capture=verdict.
  CaptureMode capture = CaptureMode::kRelay;
  VerdictCache verdict_cache;  // capture: verdict only
  bool recheck_on_policy_change = true;
  // Where the process log (base/log.h) goes: "stderr" (default) or "stdout", so that it and the
  // flow log (flow_log.path: stdout) share one stream for `kubectl logs` and log shippers.
  std::string process_log = "stderr";
  std::string policy_file;  // may be empty when xds is set
  uint32_t workers = 0;     // 0: number of cores
  std::optional<Xds> xds;
  std::string source_file;  // where it was read from (for /config_dump)
};

// Parses and validates bootstrap YAML. `file_name` is used in errors only.
[[nodiscard]] std::expected<Bootstrap, Errors> ParseBootstrap(std::string_view text,
                                                              std::string_view file_name);

// Reads `path` and parses it.
[[nodiscard]] std::expected<Bootstrap, Errors> LoadBootstrap(const std::string& path);

}  // namespace picket::config
