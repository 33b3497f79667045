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
// Verdict mode (`tcp`): TCP too, but not from conntrack (a TCP flow need not be tracked:
// inject/verdict_rules.h's raw NOTRACK). An accepted TCP flow is a socket of the app's, so the
// sweep dumps the namespace's TCP sockets (proxy/socket_diag.h) and judges each as its SYN was:
// inbound when the app listens on its local port (address or wildcard), else outbound. Left
// alone: listeners, closing sockets (TIME_WAIT, CLOSE), the sidecar's own (owner `own_uid`: the
// xDS stream, relayed upstreams), loopback or pod-to-itself ones (never captured) and outbound
// ones the nat table redirected to the relay, which re-checks its own connections: their
// conntrack entry, in the dump taken before the sockets', answers from loopback (REDIRECT from
// OUTPUT) — told by the kernel, not by a service map that may have changed since. A denied
// socket is returned (`tcp_revoked`) for the worker to abort on its loop (SOCK_DESTROY: the
// peer gets the reset) and log; the `allowed` function says yes to a Service address (a socket
// redirected after the conntrack dump: the relay's to re-check).
//
// SweepConntrack blocks (a dump, plus one netlink round trip per deleted entry), so the worker
// that owns the verdict queue runs it on a ConntrackSweeper's thread, never on its loop: it asks
// for a sweep right after it swapped the policy, so no packet can be judged by the old policy
// after its entry is gone, and its TCP relay and verdicts go on meanwhile.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/ip.h"
#include "filters/filter.h"
#include "proxy/packet_headers.h"
#include "proxy/socket_diag.h"

namespace picket::proxy {

struct TcpRevocation {
  filters::Direction direction;
  PacketFlow flow;  // as its first packet was judged
  TcpTuple socket;  // the app's socket
};

struct SweepResult {
  uint64_t examined = 0;  // entries to or from this pod
  uint64_t deleted = 0;
  std::vector<TcpRevocation> tcp_revoked;
};

struct SweepScope {
  bool tcp = false;  // verdict mode
  uint32_t own_uid = 0;
};

// `is_pod_address`: whether an address is this pod's. `allowed`: the verdict for a flow (the
// same as the verdict queue's for its first packet).
[[nodiscard]] base::Result<SweepResult> SweepConntrack(
    const SweepScope& scope, const std::function<bool(const base::IpAddress&)>& is_pod_address,
    const std::function<bool(filters::Direction, const PacketFlow&)>& allowed);

// One thread that runs SweepConntrack for the latest request: requests made while a sweep runs
// coalesce into one more sweep with the newest verdict function. Request() from any thread;
// `done` runs on the sweeper's thread. The destructor waits for a sweep in progress.
class ConntrackSweeper {
 public:
  using Allowed = std::function<bool(filters::Direction, const PacketFlow&)>;
  ConntrackSweeper(SweepScope scope, std::function<bool(const base::IpAddress&)> is_pod_address,
                   std::function<void(base::Result<SweepResult>)> done);
  ~ConntrackSweeper();
  ConntrackSweeper(const ConntrackSweeper&) = delete;
  ConntrackSweeper& operator=(const ConntrackSweeper&) = delete;

  void Request(Allowed allowed);

 private:
  void Run();

  const SweepScope scope_;
  const std::function<bool(const base::IpAddress&)> is_pod_address_;
  const std::function<void(base::Result<SweepResult>)> done_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Allowed> pending_;  // guarded by mu_
  bool stop_ = false;               // guarded by mu_
  std::thread thread_;
};

}  // namespace picket::proxy
