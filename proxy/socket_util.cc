#include "proxy/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24  // <linux/in.h>; glibc's <netinet/in.h> lacks it
#endif

namespace picket::proxy {

std::string SysError::ToString() const { return what + ": " + std::strerror(code); }

std::string EndpointToString(const filters::Endpoint& e) {
  std::string ip = e.address.ToString();
  return e.address.v6 ? "[" + ip + "]:" + std::to_string(e.port)
                      : ip + ":" + std::to_string(e.port);
}

filters::Endpoint EndpointFromSockaddr(const sockaddr_storage& ss) {
  filters::Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    e.address = policy::IpAddress::V4(reinterpret_cast<const uint8_t*>(&sin->sin_addr));
    e.port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    const uint8_t* b = sin6->sin6_addr.s6_addr;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    // An IPv4-mapped address is an IPv4 peer (normalised as Envoy's getOriginalDst does).
    e.address =
        std::memcmp(b, kMapped, 12) == 0 ? policy::IpAddress::V4(b + 12) : policy::IpAddress::V6(b);
    e.port = ntohs(sin6->sin6_port);
  }
  return e;
}

socklen_t EndpointToSockaddr(const filters::Endpoint& e, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof(*ss));
  if (!e.address.v6) {
    auto* sin = reinterpret_cast<sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(e.port);
    std::memcpy(&sin->sin_addr, e.address.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(e.port);
  std::memcpy(&sin6->sin6_addr, e.address.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

std::optional<filters::Endpoint> OriginalDestination(int fd, bool v6) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int rc = v6 ? getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len)
              : getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  if (rc != 0) return std::nullopt;
  return EndpointFromSockaddr(ss);
}

std::expected<int, SysError> BindSocket(const filters::Endpoint& address, Transport transport,
                                        bool transparent) {
  const int family = address.address.v6 ? AF_INET6 : AF_INET;
  const int type = transport == Transport::kStream ? SOCK_STREAM : SOCK_DGRAM;
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(SysError{errno, "socket"});
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (transport == Transport::kStream) SetNoDelay(fd);  // before bind: as the listener had it
  if (transparent &&
      (family == AF_INET6 ? setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
                          : setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one))) != 0) {
    SysError err{errno, "IP_TRANSPARENT(" + EndpointToString(address) + ")"};
    close(fd);
    return std::unexpected(err);
  }
  sockaddr_storage ss;
  socklen_t len = EndpointToSockaddr(address, &ss);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    SysError err{errno, "bind(" + EndpointToString(address) + ")"};
    close(fd);
    return std::unexpected(err);
  }
  return fd;
}

std::expected<int, SysError> Listen(const filters::Endpoint& address, int backlog,
                                    bool transparent) {
  // TCP_NODELAY is set by BindSocket: accepted sockets inherit it, one setsockopt less per
  // connection.
  auto fd = BindSocket(address, Transport::kStream, transparent);
  if (!fd) return fd;
  if (listen(*fd, backlog) != 0) {
    SysError err{errno, "listen(" + EndpointToString(address) + ")"};
    close(*fd);
    return std::unexpected(err);
  }
  return fd;
}

filters::Endpoint LocalEndpoint(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return EndpointFromSockaddr(ss);
}

uint16_t LocalPort(int fd) { return LocalEndpoint(fd).port; }

std::expected<int, SysError> ConnectNonBlocking(const filters::Endpoint& to,
                                                const std::optional<policy::IpAddress>& source) {
  int fd =
      socket(to.address.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(SysError{errno, "socket"});
  SetNoDelay(fd);
  int zero = 0;
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
  sockaddr_storage ss;
  if (source) {
    // The port is chosen at connect() (by the 4-tuple), not at bind() (by the address alone).
    int one = 1;
    setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    socklen_t source_len = EndpointToSockaddr(filters::Endpoint{*source, 0}, &ss);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), source_len) != 0) {
      SysError err{errno, "bind(" + source->ToString() + ")"};
      close(fd);
      return std::unexpected(err);
    }
  }
  socklen_t len = EndpointToSockaddr(to, &ss);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    SysError err{errno, "connect(" + EndpointToString(to) + ")"};
    close(fd);
    return std::unexpected(err);
  }
  return fd;
}

int PendingError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void SetQuickAck(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

void CloseWithReset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

namespace {

// An IPv4-mapped IPv6 address as the IPv4 address it carries; any other address unchanged.
policy::IpAddress Unmapped(const policy::IpAddress& a) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!a.v6 || std::memcmp(a.bytes.data(), kMapped, 12) != 0) return a;
  return policy::IpAddress::V4(a.bytes.data() + 12);
}

}  // namespace

bool IsLoopbackOrUnspecified(const policy::IpAddress& address) {
  const policy::IpAddress a = Unmapped(address);
  if (!a.v6) return a.bytes[0] == 127 || (a.bytes[0] | a.bytes[1] | a.bytes[2] | a.bytes[3]) == 0;
  for (int i = 0; i < 15; ++i) {
    if (a.bytes[i] != 0) return false;
  }
  return a.bytes[15] <= 1;  // :: or ::1
}

bool IsLocalAddress(const policy::IpAddress& address) {
  if (IsLoopbackOrUnspecified(address)) return true;
  const policy::IpAddress a = Unmapped(address);
  ifaddrs* list = nullptr;
  // Unreadable interfaces: say local. A refused connection is recoverable; a loop is not.
  if (getifaddrs(&list) != 0) return true;
  bool found = false;
  for (const ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    const int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, i->ifa_addr, family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    found = EndpointFromSockaddr(ss).address == a;
  }
  freeifaddrs(list);
  return found;
}

}  // namespace picket::proxy
