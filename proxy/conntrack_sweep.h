// proxy/conntrack_sweep.h — cutting UDP and SCTP flows a new policy denies.
//
// Owns: SweepConntrack. An accepted UDP/SCTP flow lives in the kernel's conntrack table and its
// later packets are never queued again (inject/datagram_rules.h), so a policy change reaches it
// only by deleting its entry: the next packet is then NEW, queued, and judged by the new
// policy (dropped if denied; an allowed flow gets a new entry without a gap). This dumps the
// namespace's conntrack table over ctnetlink (libnetfilter_conntrack; CAP_NET_ADMIN), asks
// `allowed` about each UDP and SCTP entry that starts or ends at this pod, and deletes those it
// denies. Outbound entries are judged against the reply tuple's source (the backend after any
// Service DNAT), inbound ones against the original source and destination port. Entries of the
// pod talking to itself are left alone (loopback is never captured).
//
// Blocking (two netlink round trips plus one per deleted entry); the caller is the worker that
// owns the verdict queue, right after it swapped the policy, so no packet can be judged by the
// old policy after its entry is gone. A pod's table is small; the dump is bounded by it.
#pragma once

#include <cstdint>
#include <functional>

#include "base/error.h"
#include "base/ip.h"
#include "filters/filter.h"
#include "proxy/packet_headers.h"

namespace picket::proxy {

struct SweepResult {
  uint64_t examined = 0;  // UDP and SCTP entries to or from this pod
  uint64_t deleted = 0;
};

// `is_pod_address`: whether an address is this pod's. `allowed`: the verdict for a flow (the
// same as the verdict queue's for its first packet).
[[nodiscard]] base::Result<SweepResult> SweepConntrack(
    const std::function<bool(const base::IpAddress&)>& is_pod_address,
    const std::function<bool(filters::Direction, const PacketFlow&)>& allowed);

}  // namespace picket::proxy
