// proxy/verdict_cache.h — verdict mode's kernel verdict cache: later SYNs to (or from) a peer and
// port the sidecar has just allowed skip the queue.
//
// Owns: `VerdictCache`, an nftables table `inet picket` created over its own netlink socket with
// NFT_TABLE_F_OWNER: the kernel deletes the table the moment that socket closes, so when the
// sidecar is gone (crash, SIGKILL, OOM) nothing is cached and every new TCP flow is queued again —
// and refused, as picket-init's rules fail closed (inject/verdict_rules.h). An ipset or a table of
// picket-init's would outlive the sidecar and keep letting flows through.
//
// A pod is one identity, so a verdict-mode TCP decision depends only on the snapshot, the
// direction, the peer (destination outbound, source inbound), the port and the protocol
// (filters::CheckPolicy). The table holds four sets of allowed `peer . port` (out4, out6, in4,
// in6), each bounded (`max_entries`; a full set refuses more: counted, the flow is still judged
// in userspace) and with a default timeout (`ttl`), and two base chains, `out` (hook output) and
// `in` (hook prerouting), at priority mangle - 10. Each holds one rule, so that every other packet
// costs one short test: a SYN (`--syn`: SYN without ACK, RST, FIN) jumps to `out_syn` / `in_syn`,
// where one whose `peer . port` is in its family's set gets kVerdictMarkJudged
// (config/bootstrap.h) and a counter; picket-init's PICKET_TCP_JUDGE returns on that mark first.
//
// Exactness: only a plain allowed verdict is remembered (never a reset, never a Service address:
// those go to the relay), from the snapshot the worker holds when it judges. Every snapshot or
// Service map change empties the sets (Clear) before the revocation sweep, and drops what was
// judged but not yet sent; Clear waits for the kernel's acknowledgement, and if the sets cannot be
// emptied the socket is closed, which deletes the table. Remember() only queues: what a loop
// iteration remembered is sent after its I/O in one nftables transaction (uv_check), off the
// verdicts' path. Hits are read back from the rules' counters once a second (a rule dump on the
// same socket) into Stats: verdict_cache.hits, and the direction's accepted/allowed counters,
// which thus stay whole. With flow_log.log_allowed every allowed flow must be seen (its record at
// close), so the worker opens no cache.
//
// Threads: the loop's thread only (Open on the thread that runs the loop, before it runs).
// Needs CAP_NET_ADMIN in the pod's network namespace.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "base/ip.h"
#include "filters/filter.h"
#include "proxy/socket_util.h"
#include "proxy/stats.h"

struct mnl_socket;
struct nlmsghdr;

namespace picket::proxy {

class NftBatch;  // verdict_cache.cc: one nftables transaction

class VerdictCache {
 public:
  inline static constexpr char kTable[] = "picket";
  // Priority of the two base chains: before the mangle table's (-150), whose PICKET_TCP_JUDGE
  // (picket-init's) returns on the mark.
  static constexpr int kChainPriority = -160;
  static constexpr std::chrono::milliseconds kHitsInterval{1000};
  // Elements sent in one transaction at most; more remembered in one loop iteration are not
  // cached (their next SYN is judged in userspace again, and remembered then).
  static constexpr size_t kMaxRememberedPerIteration = 1024;

  struct Options {
    uint32_t max_entries = 16384;  // per set (direction × family)
    std::chrono::milliseconds ttl{60000};
  };

  // Creates the table, its sets, chains and rules in one transaction and waits for the kernel's
  // answer: EPERM without CAP_NET_ADMIN or while another socket owns the table (another
  // sidecar's, still alive), EOPNOTSUPP on a kernel without owned tables (before 5.12).
  [[nodiscard]] static std::expected<std::unique_ptr<VerdictCache>, SysError> Open(uv_loop_t* loop,
                                                                                   Options options,
                                                                                   Stats* stats);
  ~VerdictCache();
  VerdictCache(const VerdictCache&) = delete;
  VerdictCache& operator=(const VerdictCache&) = delete;

  // Later SYNs of `direction` with this peer and destination port are allowed by the kernel
  // (until Clear or the ttl). Queued; sent after this loop iteration's I/O.
  void Remember(filters::Direction direction, const base::IpAddress& peer, uint16_t port);
  // Empties every set and drops what is queued; returns once the kernel acknowledged it. When it
  // cannot (an error, or no answer within a second) the table is deleted with the socket and the
  // cache stays off: every SYN is judged in userspace.
  void Clear();
  // Deletes the table (closes the socket). The handles close on the loop's next run: destroy the
  // cache after that (as a Listener, proxy/listener.h).
  void Close();
  bool open() const { return socket_ != nullptr; }
  // Why the cache turned itself off ("" while open, or when closed by Close()).
  const std::string& last_error() const { return last_error_; }

 private:
  static constexpr size_t kMaxAddsInFlight = 64;
  struct Pending {
    filters::Direction direction;
    base::IpAddress peer;
    uint16_t port;
  };

  VerdictCache(Stats* stats, mnl_socket* socket);
  static void OnCheck(uv_check_t* h);
  static void OnReadable(uv_poll_t* h, int status, int events);
  static void OnHitsTimer(uv_timer_t* h);
  void SendPending();
  void RequestHits();
  // Reads whatever the kernel sent (add errors, rule dumps, acknowledgements); true when
  // `wait_seq`'s acknowledgement came (0: none awaited), with `*error` its errno.
  bool Drain(uint32_t wait_seq, int* error);
  // Sends `batch` and waits for every message's acknowledgement: 0, the first error's errno, or
  // ETIMEDOUT when one does not come within a second.
  int Commit(NftBatch& batch);
  void OnMessage(const nlmsghdr* nlh, uint32_t wait_seq, bool* acked, int* error);
  void Fail(const std::string& why);

  // A sent transaction of element adds: its messages' seqs and how many elements it held (an
  // error for any of its messages means none was added).
  struct AddsInFlight {
    uint32_t first;
    uint32_t last;
    uint64_t elements;
  };

  Stats* const stats_;
  mnl_socket* socket_;
  uint32_t seq_ = 0;
  std::vector<Pending> pending_;
  std::deque<AddsInFlight> adds_in_flight_;
  std::string last_error_;
  uv_check_t check_{};
  uv_poll_t poll_{};
  uv_timer_t hits_timer_{};
  // The rules' counters as last dumped, by direction, and the sum of the dump in progress.
  uint64_t hits_seen_[2] = {0, 0};
  uint64_t hits_dump_[2] = {0, 0};
  uint32_t dump_seq_ = 0;
  std::unique_ptr<char[]> buffer_;
};

}  // namespace picket::proxy
