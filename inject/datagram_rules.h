// inject/datagram_rules.h — the UDP and SCTP capture rules: the first packet of every new flow
// goes to the sidecar's verdict queue (NFQUEUE), fail closed.
//
// Owns: the pure functions that turn a `RedirectConfig` (and, for re-runs and cleanup, the
// current `iptables-save` text) into the UDP/SCTP part of picket-init's transactions for one
// address family. Rules live in chains of our own, PICKET_DGRAM_OUT (jumped to from POSTROUTING:
// after any Service DNAT in nat OUTPUT, so egress is judged against the backend) and
// PICKET_DGRAM_IN (from PREROUTING), in two tables:
//   - nat (DatagramNatLines, part of inject/redirect_rules.h's nat transaction): `-p udp` and
//     `-p sctp` jump in unconditionally — the kernel runs nat rules for a connection's first
//     packet only, so a flow's first packet is judged and its later packets meet no rule of ours
//     (no per-packet conntrack match, no mangle hook for UDP). The sidecar accepts with NF_REPEAT
//     and config::kVerdictMarkJudged: the chains return on that mark, the nat table binds the
//     flow as is, and the packet goes on.
//   - mangle (BuildMangleTransaction; in verdict mode the same transaction holds the TCP verdict
//     chains PICKET_TCP_* whose lines inject/verdict_rules.h writes, so the table changes in one
//     atomic step and switching modes, or --udp-sctp, converges both ways): an SCTP packet
//     conntrack cannot place (`--ctstate INVALID`: a chunk that opens nothing, e.g. the next DATA
//     of an association whose entry a policy change deleted) has no entry for the nat table to
//     see, and is judged here rather than slipping past.
// The queue is used WITHOUT `--queue-bypass`: when no sidecar listens, the kernel drops what it
// would have queued — fail closed, as the TCP redirect to a closed port is.
//
// The exclusions are the TCP capture's (inject/redirect_rules.h): outbound, the proxy's uids and
// gids, loopback (app to app), excluded interfaces, CIDRs and ports, the include lists; inbound,
// loopback, excluded interfaces, the include/exclude inbound ports. TCP-only ports (admin,
// readiness) are not UDP ports and are not special here.
//
// Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"
#include "inject/redirect_rules.h"

namespace picket::inject {

// Our UDP/SCTP mangle chains, in creation order.
const std::vector<std::string>& PicketDatagramChains();

// `iptables-save -t mangle` → our chains (PICKET_DGRAM_* and PICKET_TCP_*) and the jumps into
// them (foreign_chains stays empty).
NatState ParseMangleState(std::string_view iptables_save_output);

// The nat table's UDP/SCTP lines (`-A` only; the chains are PicketDatagramChains()), empty when
// `config.capture_datagrams == false`. Fails on a bad CIDR.
[[nodiscard]] base::Result<std::string> DatagramNatLines(const RedirectConfig& config,
                                                         Family family);

// The mangle transaction picket-init applies for `family`: `*mangle ... COMMIT\n` with the
// UDP/SCTP chains (SCTP packets conntrack cannot place) unless `config.capture_datagrams == false`,
// and the TCP verdict chains when `config.capture == kVerdict`. Every other chain of ours in
// `current` is removed and our old jumps are replaced; with neither part it only removes what
// `current` shows of ours (empty when there is nothing), so turning either off converges too. Fails
// on a bad CIDR. In relay mode it is exactly BuildDatagramTransaction.
[[nodiscard]] base::Result<std::string> BuildMangleTransaction(const RedirectConfig& config,
                                                               Family family,
                                                               const NatState& current = {});

// The same without the TCP verdict chains whatever `config.capture` says (the UDP/SCTP part
// alone; a PICKET_TCP_* chain in `current` is removed as stale).
[[nodiscard]] base::Result<std::string> BuildDatagramTransaction(const RedirectConfig& config,
                                                                 Family family,
                                                                 const NatState& current = {});

// Removes everything of ours in `current`, PICKET_TCP_* included (empty when there is nothing to
// do): --cleanup's mangle transaction.
std::string BuildDatagramCleanupTransaction(const NatState& current);

}  // namespace picket::inject
