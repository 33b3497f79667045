// inject/datagram_rules.h — the UDP and SCTP capture rules: the first packet of every new flow
// goes to the sidecar's verdict queue (NFQUEUE), fail closed.
//
// Owns: the pure functions that turn a `RedirectConfig` (and, for re-runs and cleanup, the
// current `iptables-save` text) into the UDP/SCTP part of picket-init's transactions for one
// address family, and the mangle transaction (verdict mode's TCP chains PICKET_TCP_*, whose lines
// inject/verdict_rules.h writes). UDP/SCTP rules live in chains of our own, PICKET_DGRAM_OUT
// (outbound) and PICKET_DGRAM_IN (inbound), in two tables:
//   - nat (DatagramNatLines, part of inject/redirect_rules.h's nat transaction), jumped to from
//     POSTROUTING (after any Service DNAT in nat OUTPUT, so egress is judged against the backend)
//     and PREROUTING: `-p udp` and `-p sctp` jump in unconditionally — the kernel runs nat rules
//     for a connection's first packet only, so a flow's first packet is judged and its later
//     packets meet no rule of ours (no per-packet conntrack match, no extra hook). The sidecar
//     accepts with NF_REPEAT and config::kVerdictMarkJudged: the chains return on that mark, the
//     nat table binds the flow as is, and the packet goes on.
//   - filter (DatagramFilterLines, part of inject/listener_guard.h's filter transaction), jumped
//     to first in OUTPUT and INPUT: an SCTP packet conntrack cannot place (`--ctstate INVALID`: a
//     chunk that opens nothing, e.g. the next DATA of an association whose entry a policy change
//     deleted) has no entry for the nat table to see, and is judged here rather than slipping
//     past. filter OUTPUT already holds the listener guard, so outbound UDP crosses no hook it
//     did not cross before. (A UDP packet is INVALID only when malformed — truncated, bad length
//     or checksum — and the UDP stack drops those itself.)
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

// Our UDP/SCTP chains (in the nat and filter tables), in creation order.
const std::vector<std::string>& PicketDatagramChains();

// `iptables-save -t mangle` → our chains (PICKET_TCP_*, and PICKET_DGRAM_* left by an older
// picket-init) and the jumps into them (foreign_chains stays empty).
NatState ParseMangleState(std::string_view iptables_save_output);

// `iptables-save -t filter` → our UDP/SCTP chains (PICKET_DGRAM_*) and the jumps into them.
NatState ParseDatagramFilterState(std::string_view iptables_save_output);

// The nat table's UDP/SCTP lines (`-A` only; the chains are PicketDatagramChains()), empty when
// `config.capture_datagrams == false`. Fails on a bad CIDR.
[[nodiscard]] base::Result<std::string> DatagramNatLines(const RedirectConfig& config,
                                                         Family family);

// The filter table's UDP/SCTP part, to follow the declarations of DatagramFilterChains(config)
// in one `*filter` transaction: our old jumps in `current` deleted, chains of ours not declared
// removed, then the chains' lines and the jumps (inserted first in INPUT and OUTPUT) unless
// `config.capture_datagrams == false`. Fails on a bad CIDR.
std::vector<std::string> DatagramFilterChains(const RedirectConfig& config);
[[nodiscard]] base::Result<std::string> DatagramFilterLines(const RedirectConfig& config,
                                                            Family family,
                                                            const NatState& current = {});

// Removes our UDP/SCTP filter chains and jumps in `current` (empty when there are none).
std::string DatagramFilterCleanupLines(const NatState& current);

// The mangle transaction picket-init applies for `family`: `*mangle ... COMMIT\n` with the TCP
// verdict chains when `config.capture == kVerdict`. Every other chain of ours in `current` is
// removed and our old jumps are replaced; in relay mode it only removes what `current` shows of
// ours (empty when there is nothing), so switching modes converges. Fails on a bad CIDR.
[[nodiscard]] base::Result<std::string> BuildMangleTransaction(const RedirectConfig& config,
                                                               Family family,
                                                               const NatState& current = {});

// Removes everything of ours in the mangle table's `current` (empty when there is nothing to
// do): --cleanup's mangle transaction.
std::string BuildMangleCleanupTransaction(const NatState& current);

}  // namespace picket::inject
