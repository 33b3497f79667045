// proxy/conntrack_sweep.cc — see conntrack_sweep.h.
#include "proxy/conntrack_sweep.h"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace picket::proxy {
namespace {

struct Context {
  const std::function<bool(const base::IpAddress&)>* is_pod_address;
  const std::function<bool(filters::Direction, const PacketFlow&)>* allowed;
  bool tcp = false;  // verdict mode: note the TCP flows redirected to the relay
  SweepResult result;
  std::vector<nf_conntrack*> doomed;
  std::unordered_set<TcpTuple, TcpTupleHash> relayed;  // the app sockets' tuples
};

base::IpAddress Address(const nf_conntrack* ct, bool v6, nf_conntrack_attr v4_attr,
                        nf_conntrack_attr v6_attr) {
  if (v6) return base::IpAddress::V6(static_cast<const uint8_t*>(nfct_get_attr(ct, v6_attr)));
  const uint32_t a = nfct_get_attr_u32(ct, v4_attr);  // network order
  return base::IpAddress::V4(reinterpret_cast<const uint8_t*>(&a));
}

int OnEntry(enum nf_conntrack_msg_type, nf_conntrack* ct, void* data) {
  auto& c = *static_cast<Context*>(data);
  const uint8_t l4 = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
  const bool tcp = l4 == IPPROTO_TCP && c.tcp;
  if (l4 != IPPROTO_UDP && l4 != IPPROTO_SCTP && !tcp) return NFCT_CB_CONTINUE;
  const uint8_t l3 = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
  if (l3 != AF_INET && l3 != AF_INET6) return NFCT_CB_CONTINUE;
  const bool v6 = l3 == AF_INET6;
  const base::IpAddress orig_src = Address(ct, v6, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC);
  const base::IpAddress orig_dst = Address(ct, v6, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST);
  const bool from_pod = (*c.is_pod_address)(orig_src);
  const bool to_pod = (*c.is_pod_address)(orig_dst);
  if (from_pod == to_pod) return NFCT_CB_CONTINUE;  // not ours, or the pod to itself
  if (tcp) {
    // The app's connection the nat table redirected to the relay: REDIRECT from OUTPUT answers
    // from loopback. Whatever the service map says by now, the relay holds it.
    const base::IpAddress reply_src = Address(ct, v6, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC);
    if (from_pod && reply_src.IsLoopback() && !orig_dst.IsLoopback()) {
      c.relayed.insert(TcpTuple{{orig_src, ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC))},
                                {orig_dst, ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST))}});
    }
    return NFCT_CB_CONTINUE;
  }
  PacketFlow flow;
  flow.protocol = l4 == IPPROTO_UDP ? config::Protocol::kUDP : config::Protocol::kSCTP;
  flow.source = orig_src;
  flow.source_port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
  filters::Direction direction;
  if (from_pod) {
    direction = filters::Direction::kOutbound;
    // After a Service DNAT the reply comes from the backend: that is the destination judged.
    flow.destination = Address(ct, v6, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC);
    flow.destination_port = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
  } else {
    direction = filters::Direction::kInbound;
    flow.destination = orig_dst;
    flow.destination_port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
  }
  ++c.result.examined;
  if ((*c.allowed)(direction, flow)) return NFCT_CB_CONTINUE;
  c.doomed.push_back(nfct_clone(ct));
  return NFCT_CB_CONTINUE;
}

bool IsUnspecified(const base::IpAddress& a) {
  for (size_t i = 0; i < (a.v6 ? 16u : 4u); ++i) {
    if (a.bytes[i] != 0) return false;
  }
  return true;
}

// The app's TCP sockets, judged (verdict mode): see conntrack_sweep.h.
base::Result<void> SweepTcpSockets(
    const SweepScope& scope, const std::function<bool(const base::IpAddress&)>& is_pod_address,
    const std::function<bool(filters::Direction, const PacketFlow&)>& allowed,
    const std::unordered_set<TcpTuple, TcpTupleHash>& relayed, SweepResult* result) {
  auto sockets = DumpTcpSockets();
  if (!sockets) return std::unexpected(base::Error::Of("sock_diag: " + sockets.error().ToString()));
  std::vector<filters::Endpoint> listeners;
  for (const TcpSocketInfo& s : *sockets) {
    if (s.state == TcpSocketInfo::kListen) listeners.push_back(s.tuple.local);
  }
  for (const TcpSocketInfo& s : *sockets) {
    if (s.state == TcpSocketInfo::kListen || s.uid == scope.own_uid) continue;
    const filters::Endpoint& local = s.tuple.local;
    const filters::Endpoint& remote = s.tuple.remote;
    // Loopback and the pod to itself are never captured, so never judged.
    if (local.address.IsLoopback() || remote.address.IsLoopback() ||
        is_pod_address(remote.address)) {
      continue;
    }
    // Accepted on a port the app listens on: inbound; else the app connected out.
    bool inbound = false;
    for (const filters::Endpoint& l : listeners) {
      inbound |= l.port == local.port && (IsUnspecified(l.address) || l.address == local.address);
    }
    // Redirected to the relay (by the conntrack dump, taken before): the relay re-checks it. One
    // redirected since is judged as its SYN was, by `allowed` (a Service address).
    if (!inbound && relayed.contains(s.tuple)) continue;
    PacketFlow flow;
    flow.protocol = config::Protocol::kTCP;
    flow.source = inbound ? remote.address : local.address;
    flow.source_port = inbound ? remote.port : local.port;
    flow.destination = inbound ? local.address : remote.address;
    flow.destination_port = inbound ? local.port : remote.port;
    const filters::Direction direction =
        inbound ? filters::Direction::kInbound : filters::Direction::kOutbound;
    ++result->examined;
    if (!allowed(direction, flow)) result->tcp_revoked.push_back({direction, flow, s.tuple});
  }
  return {};
}

}  // namespace

base::Result<SweepResult> SweepConntrack(
    const SweepScope& scope, const std::function<bool(const base::IpAddress&)>& is_pod_address,
    const std::function<bool(filters::Direction, const PacketFlow&)>& allowed) {
  nfct_handle* h = nfct_open(CONNTRACK, 0);
  if (h == nullptr) {
    return std::unexpected(base::Error::Of(std::string("ctnetlink: ") + std::strerror(errno)));
  }
  Context c{&is_pod_address, &allowed, scope.tcp, {}, {}, {}};
  nfct_callback_register(h, NFCT_T_ALL, &OnEntry, &c);
  uint32_t family = AF_UNSPEC;
  const int dumped = nfct_query(h, NFCT_Q_DUMP, &family);
  const int dump_errno = errno;
  nfct_callback_unregister(h);
  std::string failures;
  if (dumped != 0) failures = std::string("dump: ") + std::strerror(dump_errno);
  for (nf_conntrack* ct : c.doomed) {
    // ENOENT: the entry expired meanwhile, which is what we wanted.
    if (nfct_query(h, NFCT_Q_DESTROY, ct) == 0) {
      ++c.result.deleted;
    } else if (errno != ENOENT && failures.empty()) {
      failures = std::string("delete: ") + std::strerror(errno);
    }
    nfct_destroy(ct);
  }
  nfct_close(h);
  if (!failures.empty()) return std::unexpected(base::Error::Of("ctnetlink " + failures));
  if (scope.tcp) {
    auto tcp = SweepTcpSockets(scope, is_pod_address, allowed, c.relayed, &c.result);
    if (!tcp) return std::unexpected(std::move(tcp.error()));
  }
  return c.result;
}

ConntrackSweeper::ConntrackSweeper(SweepScope scope,
                                   std::function<bool(const base::IpAddress&)> is_pod_address,
                                   std::function<void(base::Result<SweepResult>)> done)
    : scope_(scope), is_pod_address_(std::move(is_pod_address)), done_(std::move(done)) {
  thread_ = std::thread([this] { Run(); });
}

ConntrackSweeper::~ConntrackSweeper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void ConntrackSweeper::Request(Allowed allowed) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = std::move(allowed);
  }
  cv_.notify_one();
}

void ConntrackSweeper::Run() {
  for (;;) {
    Allowed allowed;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
      if (stop_) return;
      allowed = std::move(*pending_);
      pending_.reset();
    }
    done_(SweepConntrack(scope_, is_pod_address_, allowed));
  }
}

}  // namespace picket::proxy
