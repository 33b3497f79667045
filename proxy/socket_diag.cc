// proxy/socket_diag.cc — see socket_diag.h.
#include "proxy/socket_diag.h"

#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "base/hash.h"

namespace picket::proxy {
namespace {

constexpr int kSocketBufferBytes = 1 << 20;
// struct tcp_info (include/uapi/linux/tcp.h, a stable ABI that only grows) where glibc's
// <netinet/tcp.h> copy stops short, all __u64: tcpi_bytes_received counts the sequence space
// received after the SYN — the payload, plus 1 for the peer's FIN; tcpi_bytes_sent and
// tcpi_bytes_retrans count payload transmitted and retransmitted (no SYN, no FIN).
constexpr size_t kTcpiBytesReceived = 128;
constexpr size_t kTcpiBytesSent = 200;
constexpr size_t kTcpiBytesRetrans = 208;

SysError Fail(std::string what, int code = errno) { return SysError{code, std::move(what)}; }

// An inet_diag address (4 big-endian words) as ours: IPv4-mapped IPv6 folded to IPv4.
filters::Endpoint FromDiag(uint8_t family, const __be32 address[4], __be16 port) {
  filters::Endpoint e;
  e.port = ntohs(port);
  const auto* bytes = reinterpret_cast<const uint8_t*>(address);
  if (family == AF_INET) {
    e.address = base::IpAddress::V4(bytes);
  } else {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    e.address = std::memcmp(bytes, kMapped, 12) == 0 ? base::IpAddress::V4(bytes + 12)
                                                     : base::IpAddress::V6(bytes);
  }
  return e;
}

void ToDiag(const filters::Endpoint& e, __be32 address[4], __be16* port) {
  std::memcpy(address, e.address.bytes.data(), e.address.v6 ? 16 : 4);
  *port = htons(e.port);
}

// Sends one sock_diag request to the kernel.
bool SendRequest(int fd, uint16_t type, uint16_t flags, uint32_t seq,
                 const inet_diag_req_v2& request) {
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = type;
  message.header.nlmsg_flags = NLM_F_REQUEST | flags;
  message.header.nlmsg_seq = seq;
  message.request = request;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  return sendto(fd, &message, sizeof message, 0, reinterpret_cast<sockaddr*>(&kernel),
                sizeof kernel) >= 0;
}

}  // namespace

size_t TcpTupleHash::operator()(const TcpTuple& t) const {
  uint64_t h = base::kFnv1a64OffsetBasis;
  auto mix = [&h](const filters::Endpoint& e) {
    for (uint8_t b : e.address.bytes) h = (h ^ b) * base::kFnv1a64Prime;
    h = (h ^ e.port) * base::kFnv1a64Prime;
    h = (h ^ static_cast<uint64_t>(e.address.v6)) * base::kFnv1a64Prime;
  };
  mix(t.local);
  mix(t.remote);
  return static_cast<size_t>(h);
}

std::expected<bool, SysError> DestroyTcpSocket(const TcpTuple& tuple) {
  const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return std::unexpected(Fail("socket(NETLINK_SOCK_DIAG)"));
  inet_diag_req_v2 r{};
  r.sdiag_family = tuple.local.address.v6 ? AF_INET6 : AF_INET;
  r.sdiag_protocol = IPPROTO_TCP;
  r.idiag_states = ~(1u << TcpSocketInfo::kListen);
  ToDiag(tuple.local, r.id.idiag_src, &r.id.idiag_sport);
  ToDiag(tuple.remote, r.id.idiag_dst, &r.id.idiag_dport);
  r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (!SendRequest(fd, SOCK_DESTROY, NLM_F_ACK, 1, r)) {
    SysError e = Fail("SOCK_DESTROY send");
    close(fd);
    return std::unexpected(std::move(e));
  }
  alignas(nlmsghdr) char reply[512];
  const ssize_t n = recv(fd, reply, sizeof reply, 0);
  const int recv_errno = errno;
  close(fd);
  if (n < 0) return std::unexpected(Fail("SOCK_DESTROY receive", recv_errno));
  const auto* h = reinterpret_cast<const nlmsghdr*>(reply);
  if (static_cast<size_t>(n) < NLMSG_LENGTH(sizeof(nlmsgerr)) || h->nlmsg_type != NLMSG_ERROR) {
    return std::unexpected(Fail("SOCK_DESTROY: unexpected reply", EPROTO));
  }
  // The acknowledgement: 0, or the error (ENOENT: no such socket).
  const int error = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
  if (error == 0) return true;
  if (error == ENOENT) return false;
  return std::unexpected(Fail("SOCK_DESTROY", error));
}

std::expected<std::vector<TcpSocketInfo>, SysError> DumpTcpSockets() {
  const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return std::unexpected(Fail("socket(NETLINK_SOCK_DIAG)"));
  std::vector<TcpSocketInfo> out;
  // ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, LISTEN, CLOSING.
  constexpr uint32_t kStates = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) |
                               (1u << 8) | (1u << 9) | (1u << 10) | (1u << 11);
  uint32_t seq = 0;
  for (const uint8_t family : {AF_INET, AF_INET6}) {
    inet_diag_req_v2 request{};
    request.sdiag_family = family;
    request.sdiag_protocol = IPPROTO_TCP;
    request.idiag_states = kStates;
    if (!SendRequest(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, ++seq, request)) {
      SysError e = Fail("sock_diag dump send");
      close(fd);
      return std::unexpected(std::move(e));
    }
    alignas(nlmsghdr) char buffer[32768];
    for (bool done = false; !done;) {
      const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        SysError e = Fail("sock_diag dump receive");
        close(fd);
        return std::unexpected(std::move(e));
      }
      int left = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left);
           h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
          const int error = h->nlmsg_len >= NLMSG_LENGTH(sizeof(nlmsgerr))
                                ? -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error
                                : EPROTO;
          close(fd);
          return std::unexpected(Fail("sock_diag dump", error));
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
            h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) {
          continue;
        }
        const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
        TcpSocketInfo info;
        info.tuple.local = FromDiag(msg->idiag_family, msg->id.idiag_src, msg->id.idiag_sport);
        info.tuple.remote = FromDiag(msg->idiag_family, msg->id.idiag_dst, msg->id.idiag_dport);
        info.state = msg->idiag_state;
        info.uid = msg->idiag_uid;
        out.push_back(info);
      }
    }
  }
  close(fd);
  return out;
}

std::expected<std::unique_ptr<TcpCloseWatcher>, SysError> TcpCloseWatcher::Open(uv_loop_t* loop,
                                                                                Callback callback) {
  const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
  if (fd < 0) return std::unexpected(Fail("socket(NETLINK_SOCK_DIAG)"));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups =
      (1u << (SKNLGRP_INET_TCP_DESTROY - 1)) | (1u << (SKNLGRP_INET6_TCP_DESTROY - 1));
  int size = kSocketBufferBytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  // The groups need CAP_NET_ADMIN: EPERM here without it.
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    SysError e = Fail("bind sock_diag destroy groups");
    close(fd);
    return std::unexpected(std::move(e));
  }
  return std::unique_ptr<TcpCloseWatcher>(new TcpCloseWatcher(loop, fd, std::move(callback)));
}

TcpCloseWatcher::TcpCloseWatcher(uv_loop_t* loop, int fd, Callback callback)
    : fd_(fd), callback_(std::move(callback)) {
  uv_poll_init(loop, &poll_, fd_);
  poll_.data = this;
  uv_poll_start(&poll_, UV_READABLE, &TcpCloseWatcher::OnReadable);
}

TcpCloseWatcher::~TcpCloseWatcher() {
  // Close() ran (the owner closes before the loop ends); the descriptor goes with it.
}

void TcpCloseWatcher::Close() {
  if (closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
  close(fd_);
}

void TcpCloseWatcher::OnReadable(uv_poll_t* h, int status, int) {
  if (status < 0) return;
  static_cast<TcpCloseWatcher*>(h->data)->Read();
}

void TcpCloseWatcher::Read() {
  alignas(nlmsghdr) char buffer[16384];
  // Bounded per event, so the loop's other work goes on under a flood of closes.
  for (int round = 0; round < 64 && !closed_; ++round) {
    const ssize_t n = recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == ENOBUFS) {
        ++overflows_;
        continue;
      }
      return;  // EAGAIN: drained
    }
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left);
         h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
      const auto* msg = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      if (msg->idiag_family != AF_INET && msg->idiag_family != AF_INET6) continue;
      Closed closed;
      closed.tuple.local = FromDiag(msg->idiag_family, msg->id.idiag_src, msg->id.idiag_sport);
      closed.tuple.remote = FromDiag(msg->idiag_family, msg->id.idiag_dst, msg->id.idiag_dport);
      int attributes = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(inet_diag_msg)));
      for (auto* a = reinterpret_cast<const rtattr*>(msg + 1); RTA_OK(a, attributes);
           a = RTA_NEXT(a, attributes)) {
        if (a->rta_type != INET_DIAG_INFO) continue;
        // Older kernels send a shorter struct: read what is there.
        const size_t have = RTA_PAYLOAD(a);
        const auto* info = static_cast<const uint8_t*>(RTA_DATA(a));
        auto field = [&](size_t offset) {
          uint64_t v = 0;
          if (have >= offset + sizeof v) std::memcpy(&v, info + offset, sizeof v);
          return v;
        };
        const uint64_t sent = field(kTcpiBytesSent), retransmitted = field(kTcpiBytesRetrans);
        closed.bytes_sent = sent >= retransmitted ? sent - retransmitted : 0;
        // The peer's FIN is one unit of sequence space, not a byte; a connection that ended
        // with a reset instead has none, and its count is one short (the kernel does not say).
        const uint64_t received = field(kTcpiBytesReceived);
        closed.bytes_received = received > 0 ? received - 1 : 0;
      }
      callback_(closed);
      if (closed_) return;
    }
  }
}

}  // namespace picket::proxy
