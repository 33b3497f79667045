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

namespace {

// One request about the socket with `tuple` (exact match, any state but LISTEN), one reply: an
// inet_diag_msg (SOCK_DIAG_BY_FAMILY) or an acknowledgement (SOCK_DESTROY). ENOENT: no socket.
std::expected<const inet_diag_msg*, SysError> AskAboutSocket(uint16_t type, const TcpTuple& tuple,
                                                             char (&reply)[512]) {
  const char* what = type == SOCK_DESTROY ? "SOCK_DESTROY" : "SOCK_DIAG_BY_FAMILY";
  const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return std::unexpected(Fail("socket(NETLINK_SOCK_DIAG)"));
  struct {
    nlmsghdr header;
    inet_diag_req_v2 request;
  } message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = type;
  message.header.nlmsg_flags = NLM_F_REQUEST | (type == SOCK_DESTROY ? NLM_F_ACK : 0);
  message.header.nlmsg_seq = 1;
  inet_diag_req_v2& r = message.request;
  r.sdiag_family = tuple.local.address.v6 ? AF_INET6 : AF_INET;
  r.sdiag_protocol = IPPROTO_TCP;
  constexpr int kTcpListen = 10;  // include/net/tcp_states.h
  r.idiag_states = ~(1u << kTcpListen);
  ToDiag(tuple.local, r.id.idiag_src, &r.id.idiag_sport);
  ToDiag(tuple.remote, r.id.idiag_dst, &r.id.idiag_dport);
  r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &message, sizeof message, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) <
      0) {
    SysError e = Fail(std::string(what) + " send");
    close(fd);
    return std::unexpected(std::move(e));
  }
  const ssize_t n = recv(fd, reply, sizeof reply, 0);
  const int recv_errno = errno;
  close(fd);
  if (n < 0) return std::unexpected(Fail(std::string(what) + " receive", recv_errno));
  const auto* h = reinterpret_cast<const nlmsghdr*>(reply);
  if (static_cast<size_t>(n) < sizeof(nlmsghdr) || h->nlmsg_len > static_cast<size_t>(n)) {
    return std::unexpected(Fail(std::string(what) + ": short reply", EPROTO));
  }
  if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_len >= NLMSG_LENGTH(sizeof(nlmsgerr))) {
    const int error = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
    if (error == 0) return nullptr;
    return std::unexpected(Fail(what, error));
  }
  if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && h->nlmsg_len >= NLMSG_LENGTH(sizeof(inet_diag_msg))) {
    return static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
  }
  return std::unexpected(Fail(std::string(what) + ": unexpected reply", EPROTO));
}

}  // namespace

std::expected<bool, SysError> DestroyTcpSocket(const TcpTuple& tuple) {
  alignas(nlmsghdr) char reply[512];
  auto r = AskAboutSocket(SOCK_DESTROY, tuple, reply);
  if (r) return true;
  if (r.error().code == ENOENT) return false;
  return std::unexpected(r.error());
}

std::expected<std::optional<uint32_t>, SysError> TcpSocketOwner(const TcpTuple& tuple) {
  alignas(nlmsghdr) char reply[512];
  auto r = AskAboutSocket(SOCK_DIAG_BY_FAMILY, tuple, reply);
  if (!r) {
    if (r.error().code == ENOENT) return std::nullopt;
    return std::unexpected(r.error());
  }
  if (*r == nullptr) return std::unexpected(Fail("SOCK_DIAG_BY_FAMILY: no answer", EPROTO));
  return (*r)->idiag_uid;
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
