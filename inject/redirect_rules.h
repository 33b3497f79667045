// inject/redirect_rules.h — the capture rules picket-init installs, as iptables-restore input.
//
// Owns: `RedirectConfig` (what to capture: ports, the proxy's uid/gid, include/exclude CIDRs,
// ports and interfaces, IPv6 on or off), its flag parser, and the pure functions that turn a
// config (and, for re-runs and cleanup, the current `iptables-save -t nat` text) into
// iptables-restore transactions for one address family. Nothing here runs a command; see
// inject/redirect_installer.h for that.
//
// Model: istio-iptables in REDIRECT mode (istio tools/istio-iptables/pkg/capture/run.go) with
// chains of our own (PICKET_INBOUND, PICKET_IN_REDIRECT, PICKET_OUTPUT, PICKET_REDIRECT), our own
// ports (outbound 15001, inbound 15006, admin 15000, readiness 15021) and uid/gid 1337. This file
// redirects TCP (nat table); UDP and SCTP go to a verdict queue (mangle table,
// inject/datagram_rules.h).
//
// `capture: verdict` (RedirectConfig::capture, --capture=verdict): TCP is judged from the same
// verdict queue instead (inject/verdict_rules.h: mangle and filter), and the nat table holds no
// TCP at all: the sidecar routes TCP to Service addresses to its own listeners
// (proxy/service_routes.h). Without UDP/SCTP capture verdict mode has no nat table (it would load
// connection tracking for every packet); switching modes removes the other mode's chains.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "config/bootstrap.h"

namespace picket::inject {

enum class Family : uint8_t { kIPv4, kIPv6 };

inline const char* FamilyName(Family f) { return f == Family::kIPv4 ? "IPv4" : "IPv6"; }

struct RedirectConfig {
  uint16_t outbound_port = 15001;   // the sidecar's outbound listener
  uint16_t inbound_port = 15006;    // the sidecar's inbound listener
  uint16_t admin_port = 15000;      // never captured inbound
  uint16_t readiness_port = 15021;  // never captured inbound (kubelet probes it)
  // The sidecar's read-only metrics listener on the pod's IPs (Prometheus scrapes it from
  // outside): never captured inbound, and its SYN-ACKs are guarded like the listeners' (only a
  // proxy uid may answer on it, inject/listener_guard.h). 0: none.
  uint16_t metrics_port = 0;
  std::vector<uint32_t> proxy_uids{1337};
  std::vector<uint32_t> proxy_gids{1337};
  // Outbound: "*" (all) or a list of CIDRs of either family; exclusions always win.
  std::vector<std::string> include_outbound_cidrs{"*"};
  std::vector<std::string> exclude_outbound_cidrs;
  std::vector<uint16_t> include_outbound_ports;  // always redirected, even to excluded CIDRs
  std::vector<uint16_t> exclude_outbound_ports;  // never redirected
  // Inbound: all ports (empty `include_inbound_ports` with `all_inbound_ports`) or a list;
  // `exclude_inbound_ports` only has a meaning with all ports (as in Istio).
  bool all_inbound_ports = true;
  std::vector<uint16_t> include_inbound_ports;
  std::vector<uint16_t> exclude_inbound_ports;
  std::vector<std::string> exclude_interfaces;
  // Source address the sidecar binds when it connects to the local app for inbound traffic, so
  // that connection is not captured again (Istio uses 127.0.0.6 / ::6; ours differ).
  std::string inbound_passthrough_v4 = "127.0.0.7";
  std::string inbound_passthrough_v6 = "::7";
  bool ipv6 = true;
  // UDP and SCTP: the first packet of each new flow to the sidecar's NFQUEUE (see
  // inject/datagram_rules.h). Off: UDP and SCTP are not captured (and not enforced).
  bool capture_datagrams = true;
  // Verdict mode: the Service ClusterIP ranges (e.g. 10.96.0.0/12). Given, TCP to anything else
  // (but loopback) is not connection-tracked (raw table, inject/verdict_rules.h): the verdict is
  // the SYN's, the kernel need not track the flow, and new connections cost less; Service flows
  // stay tracked for the nat redirect to the relay. Empty: every TCP flow is tracked.
  std::vector<std::string> service_cidrs;
  uint16_t datagram_queue = 15000;
  // UDP/SCTP: queues `datagram_queue` .. + count - 1, the one a packet waits in chosen by the CPU
  // that handles it (--queue-balance with --queue-cpu-fanout), so the sidecar worker that reads
  // it can run on that CPU (no cross-CPU wakeup per new flow). 1: the one queue. TCP verdicts
  // always use `datagram_queue`.
  uint16_t datagram_queue_count = 1;
  // How TCP reaches the policy: kRelay redirects every connection to the sidecar's listeners
  // (nat); kVerdict queues each new flow's first packet to `datagram_queue` for a verdict and
  // redirects only what the sidecar marks for the relay (inject/verdict_rules.h).
  config::CaptureMode capture = config::CaptureMode::kRelay;
};

// Which family a CIDR (or bare address) belongs to; an error when neither.
[[nodiscard]] base::Result<Family> CidrFamily(const std::string& cidr);

// The outbound CIDRs of `config` that belong to `family` (the include list, or all: "*").
struct OutboundCidrs {
  bool include_all = false;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
};
[[nodiscard]] base::Result<OutboundCidrs> OutboundCidrsOf(const RedirectConfig& config,
                                                          Family family);

// What picket-init was asked to do.
struct InitCommand {
  enum class Action : uint8_t { kInstall, kCleanup };
  Action action = Action::kInstall;
  bool dry_run = false;
  RedirectConfig config;
  // Binaries (resolved through PATH unless they contain a '/').
  std::string iptables_restore = "iptables-restore";
  std::string iptables_save = "iptables-save";
  std::string ip6tables_restore = "ip6tables-restore";
  std::string ip6tables_save = "ip6tables-save";
  std::string ip = "ip";  // iproute2: the IPv6 passthrough source on `lo`
};

// Parses picket-init's arguments (without argv[0]). Errors name the flag and the fix.
[[nodiscard]] base::Result<InitCommand> ParseInitArgs(const std::vector<std::string>& args);

// picket-init --help text.
std::string InitUsage();

// The chains we own, in creation order.
const std::vector<std::string>& PicketChains();

// What `iptables-save -t nat` says about one family's nat table, as far as we care.
struct NatState {
  std::vector<std::string> picket_chains;   // chains named PICKET_*
  std::vector<std::string> jump_rules;      // "-A <chain> ... -j PICKET_*" in non-PICKET chains
  std::vector<std::string> foreign_chains;  // ISTIO_* / PROXY_INIT_* (another mesh's capture)
};
NatState ParseNatState(std::string_view iptables_save_output);

// The install transaction for `family` (for `iptables-restore --noflush`). Our chains are
// (re)declared, which flushes them; jump rules found in `current` are deleted before ours are
// appended, and stale PICKET_* chains are removed — so a re-run converges to the same state.
// Fails on a CIDR that is not valid for either family. With `config.capture == kVerdict`: only
// the UDP/SCTP chains, or (without them) the cleanup transaction of whatever of ours is there.
[[nodiscard]] base::Result<std::string> BuildInstallTransaction(const RedirectConfig& config,
                                                                Family family,
                                                                const NatState& current = {});

// The cleanup transaction removing everything in `current`; empty when there is nothing to do.
std::string BuildCleanupTransaction(const NatState& current);

}  // namespace picket::inject
