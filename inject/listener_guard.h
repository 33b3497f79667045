// inject/listener_guard.h — the rule that keeps the proxy's listener ports the proxy's, as
// iptables-restore input for the filter table.
//
// Owns: the PICKET_LISTEN_GUARD chain, and the composition of picket-init's filter transaction
// (the guard plus, in verdict mode, inject/verdict_rules.h's PICKET_TCP_REJECT, and
// inject/datagram_rules.h's UDP/SCTP chains for packets conntrack cannot place). The capture rules
// send every captured connection to the outbound (15001) and inbound (15006) ports; while the proxy
// restarts those ports are free, and an app that binds them would receive connections no policy
// judged. The guard makes such a socket unable to complete a handshake: every SYN-ACK leaving with
// a listener port as its source passes through filter OUTPUT carrying the listening socket's owner
// (xt_owner), and one not owned by a proxy uid is rejected (`--reject-with tcp-reset` resets the
// squatter's half-open connection; the client never sees a SYN-ACK, so nothing is ever accepted). A
// SYN-ACK sent with a SYN cookie carries no socket at all (Linux `tcp_make_synack`,
// TCP_SYNACK_COOKIE) and is rejected as well: otherwise a squatter whose small SYN queue a
// colluding client keeps full would answer with cookies and slip through
// (test/e2e/squat_e2e_test.cc forces cookies with tcp_syncookies=2). The cost: while the proxy's
// own SYN queue overflows (a SYN flood), its cookie answers are rejected too, so new inbound
// connections fail during the flood, as with syncookies off.
//
// The metrics port (RedirectConfig::metrics_port), when there is one, is guarded too: it is left
// out of capture, so a squatter there would receive connections no policy judged.
//
// Only SYN-ACKs are matched, so the kernel's resets and TIME_WAIT acknowledgements for the
// proxy's ports (sent from a socket-less control socket) pass as before. The jump is inserted at
// the top of OUTPUT so no earlier ACCEPT can skip it. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "inject/redirect_rules.h"
#include "inject/verdict_rules.h"

namespace picket::inject {

inline constexpr char kListenGuardChain[] = "PICKET_LISTEN_GUARD";

// What `iptables-save -t filter` says about the guard.
struct GuardState {
  bool chain = false;                   // PICKET_LISTEN_GUARD is declared
  std::vector<std::string> jump_rules;  // "-A <chain> ... -j PICKET_LISTEN_GUARD" elsewhere
};
GuardState ParseGuardState(std::string_view iptables_save_filter_output);

// The install transaction (for `iptables-restore --noflush`), the same for both families: the
// chain is (re)declared, old jumps are deleted and one jump is inserted first in OUTPUT, so a
// re-run converges.
std::string BuildGuardInstallTransaction(const RedirectConfig& config, const GuardState& current);

// The transaction removing the guard; empty when there is none.
std::string BuildGuardCleanupTransaction(const GuardState& current);

// The filter transaction picket-init applies for `family`: the guard; in verdict mode
// PICKET_TCP_REJECT (inject/verdict_rules.h; in relay mode a reject chain left by an earlier
// verdict run is removed); and the UDP/SCTP chains for packets conntrack cannot place
// (inject/datagram_rules.h; removed with --udp-sctp=false). `datagrams` is
// ParseDatagramFilterState of the table now. Fails on a bad CIDR.
[[nodiscard]] base::Result<std::string> BuildFilterTransaction(const RedirectConfig& config,
                                                               Family family,
                                                               const GuardState& guard,
                                                               const RejectState& reject,
                                                               const NatState& datagrams = {});

// --cleanup's filter transaction: the guard, the reject chain and the UDP/SCTP chains; empty when
// none is there.
std::string BuildFilterCleanupTransaction(const GuardState& guard, const RejectState& reject,
                                          const NatState& datagrams = {});

}  // namespace picket::inject
