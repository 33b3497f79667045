// inject/verdict_rules.h — the TCP rules of `capture: verdict`: each new TCP flow's first packet
// is marked "reject", queued to the sidecar's verdict queue, and refused by the filter table
// unless the sidecar's verdict cleared the mark.
//
// Owns: the verdict mode's chains and their rule text, per family, as lines for the tables'
// transactions (the mangle transaction is composed by inject/datagram_rules.h, the filter one by
// inject/listener_guard.h; verdict mode has no TCP in nat: the sidecar routes TCP to Service
// addresses to itself, proxy/service_routes.h). The mark contract with the sidecar is
// config/bootstrap.h's (kVerdictMarkMask, kVerdictMarkReject, kVerdictMarkJudged).
//
//   mangle  PICKET_TCP_JUDGE  `-m mark --mark <judged>/<judged> -j RETURN` (a SYN the sidecar's
//                             kernel verdict cache allowed: proxy/verdict_cache.h, an nftables
//                             table that lives only as long as the sidecar's socket), then
//                             `-j MARK --set-xmark <reject>/<mask>`, then
//                             `-j NFQUEUE --queue-num <datagram_queue> --queue-bypass`
//           PICKET_TCP_IN     from `PREROUTING -p tcp --syn` (a SYN: a new flow's first
//                             packet, tracked or not): loopback,
//                             excluded interfaces and the never-captured inbound ports (admin,
//                             readiness, metrics, --exclude-inbound-ports) RETURN, the rest (or
//                             the --include-inbound-ports) to PICKET_TCP_JUDGE
//           PICKET_TCP_OUT    from `OUTPUT -p tcp --syn`: the proxy's uids/gids, loopback (a
//                             Service address, routed to the sidecar, leaves by lo), excluded
//                             interfaces, ports and CIDRs RETURN; include ports, then everything
//                             (or the include CIDRs) to PICKET_TCP_JUDGE
//   raw     PICKET_TCP_NOTRACK_IN / _OUT, only with --service-cidrs and the UDP/SCTP capture
//                             (whose nat table loads connection tracking): TCP that is neither
//                             loopback nor (outbound) to a Service range gets `CT --notrack`.
//                             Judging needs no connection tracking — the queued packet is the
//                             SYN (`--syn`), the reset needs none, revocation finds the app's
//                             sockets through sock_diag. Without the UDP/SCTP capture nothing of
//                             ours loads connection tracking, and a raw table would.
//   filter  PICKET_TCP_REJECT `-p tcp -m mark --mark <reject>/<mask> -j REJECT --reject-with
//                             tcp-reset`, jumped to first in INPUT and OUTPUT
//
// Why --queue-bypass here and not for UDP/SCTP: the packet already carries the reject mark when
// it is queued, so with no sidecar bound to the queue it continues marked and the filter table
// resets it — the connection is refused, fail closed, and the client learns it at once instead
// of retrying a silently dropped SYN. (A full queue still drops.) UDP has no reset to send, so
// its queue has no bypass and an unjudged datagram is simply dropped.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "inject/redirect_rules.h"

namespace picket::inject {

inline constexpr char kTcpInChain[] = "PICKET_TCP_IN";
inline constexpr char kTcpOutChain[] = "PICKET_TCP_OUT";
inline constexpr char kTcpJudgeChain[] = "PICKET_TCP_JUDGE";
inline constexpr char kTcpRejectChain[] = "PICKET_TCP_REJECT";
inline constexpr char kTcpNotrackInChain[] = "PICKET_TCP_NOTRACK_IN";
inline constexpr char kTcpNotrackOutChain[] = "PICKET_TCP_NOTRACK_OUT";

// `value/mask` as iptables prints it: VerdictMarkMatch(kVerdictMarkReject) == "0x10000/0x30000".
std::string VerdictMarkMatch(uint32_t value);

// Our mangle chains in verdict mode, in creation order.
const std::vector<std::string>& PicketTcpVerdictChains();

// The `-A` lines of PICKET_TCP_IN, PICKET_TCP_OUT and PICKET_TCP_JUDGE and the two jumps into
// them (no table header, no chain declarations). Fails on a bad CIDR.
[[nodiscard]] base::Result<std::string> TcpVerdictMangleLines(const RedirectConfig& config,
                                                              Family family);

// `iptables-save -t raw` → our chains (PICKET_TCP_NOTRACK_*) and the jumps into them.
NatState ParseRawState(std::string_view iptables_save_raw_output);

// The raw transaction for `family`: `*raw ... COMMIT\n` with our chains in verdict mode with
// service CIDRs; otherwise only the removal of what `current` shows ("" when nothing). Fails on
// a bad CIDR.
[[nodiscard]] base::Result<std::string> BuildRawTransaction(const RedirectConfig& config,
                                                            Family family,
                                                            const NatState& current = {});

// Removes everything in `current` ("" when nothing).
std::string BuildRawCleanupTransaction(const NatState& current);

// What `iptables-save -t filter` says about PICKET_TCP_REJECT.
struct RejectState {
  bool chain = false;                   // PICKET_TCP_REJECT is declared
  std::vector<std::string> jump_rules;  // "-A <chain> ... -j PICKET_TCP_REJECT" elsewhere
};
RejectState ParseRejectState(std::string_view iptables_save_filter_output);

// The filter chains to (re)declare, which flushes them: PICKET_TCP_REJECT in verdict mode,
// none in relay mode.
std::vector<std::string> TcpRejectChains(const RedirectConfig& config);

// Filter lines after the declarations (no header, no COMMIT). Verdict mode: the jumps in
// `current` deleted, the reject rule appended and the jumps inserted first in INPUT and OUTPUT,
// so a re-run converges. Relay mode: whatever `current` shows is removed (empty when nothing).
std::string TcpRejectFilterLines(const RedirectConfig& config, const RejectState& current);

// Removes whatever `current` shows (empty when nothing).
std::string TcpRejectCleanupLines(const RejectState& current);

}  // namespace picket::inject
