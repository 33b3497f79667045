// proxy/socket_util.h — the few raw socket operations the proxy needs, as small functions.
//
// Owns: conversion between filters::Endpoint and sockaddr, original-destination recovery
// (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST), bound sockets of either transport (SO_REUSEPORT,
// IPV6_V6ONLY) and TCP listening sockets, non-blocking connect, and the abortive close
// (SO_LINGER 0 → RST). errno becomes a SysError value here and nowhere else. The TCP-only
// helpers say so; a datagram listener (proxy/listener.h) builds on BindSocket(kDatagram).
//
// Thread-safe (stateless); fds are owned by the caller.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <expected>
#include <optional>
#include <string>

#include "filters/filter.h"

namespace picket::proxy {

struct SysError {
  int code = 0;      // errno
  std::string what;  // "bind([::]:15001)"
  std::string ToString() const;
};

std::string EndpointToString(const filters::Endpoint& e);  // "1.2.3.4:80", "[::1]:80"
filters::Endpoint EndpointFromSockaddr(const sockaddr_storage& ss);
socklen_t EndpointToSockaddr(const filters::Endpoint& e, sockaddr_storage* ss);

// The connection's destination before the nat REDIRECT, or nullopt (no conntrack entry: the
// connection was not redirected).
std::optional<filters::Endpoint> OriginalDestination(int fd, bool v6);

enum class Transport {
  kStream,    // SOCK_STREAM: TCP
  kDatagram,  // SOCK_DGRAM: UDP
};

// A non-blocking socket of `transport` bound to `address`, with SO_REUSEADDR and SO_REUSEPORT
// (IPV6_V6ONLY for v6). `transparent`: IP_TRANSPARENT / IPV6_TRANSPARENT first (CAP_NET_ADMIN),
// so `address` need not be the namespace's and what it sends may leave from it.
[[nodiscard]] std::expected<int, SysError> BindSocket(const filters::Endpoint& address,
                                                      Transport transport,
                                                      bool transparent = false);
// TCP: BindSocket(kStream) with TCP_NODELAY (accepted sockets inherit it), then listen().
[[nodiscard]] std::expected<int, SysError> Listen(const filters::Endpoint& address, int backlog,
                                                  bool transparent = false);
// The bound address and port of a socket (any transport).
filters::Endpoint LocalEndpoint(int fd);
uint16_t LocalPort(int fd);

// TCP: starts a non-blocking connect, from `source` (port 0) when given; the fd is returned while
// the connect is in progress. The socket starts with delayed ACKs (TCP_QUICKACK off), so the last
// ACK of the handshake waits for the first bytes sent and rides on them: the caller calls
// SetQuickAck(fd) once it has sent what it had (which also sends that ACK at once if nothing was
// sent: a server that speaks first is never kept waiting).
[[nodiscard]] std::expected<int, SysError> ConnectNonBlocking(
    const filters::Endpoint& to, const std::optional<policy::IpAddress>& source = std::nullopt);
// The result of a finished non-blocking connect (SO_ERROR): 0 or an errno.
int PendingError(int fd);

void SetNoDelay(int fd);
// Back to the kernel's default acknowledgement behaviour (quick ACKs), sending a pending ACK now.
void SetQuickAck(int fd);
// close() that sends RST instead of FIN.
void CloseWithReset(int fd);

// True for an address no redirect can come from, which only ever names this network namespace:
// loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0, ::), and their IPv4-mapped forms.
bool IsLoopbackOrUnspecified(const policy::IpAddress& address);
// IsLoopbackOrUnspecified, or assigned to one of this namespace's interfaces (::7 on lo, the
// pod's own IPs). The interfaces are read (getifaddrs) on every call that gets that far, so an
// address added later counts; callers ask only about the rare destination on a listener port.
bool IsLocalAddress(const policy::IpAddress& address);

}  // namespace picket::proxy
