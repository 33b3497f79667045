// proxy/socket_diag.h — the pod's TCP sockets through sock_diag (NETLINK_SOCK_DIAG): ending one,
// and hearing when one is gone. Verdict mode's half of what the relay does with its own sockets:
// a revoked connection is aborted here (the kernel resets the peer and fails the app's socket),
// and an allowed connection's close, with its byte counts, is heard here.
//
// Owns: `TcpTuple` (a socket's local and remote endpoint, IPv4-mapped IPv6 folded to IPv4, so
// a dual-stack app socket and the IPv4 packet that opened it have the same tuple),
// `DumpTcpSockets` (SOCK_DIAG_BY_FAMILY, with owners and states), `DestroyTcpSocket` (SOCK_DESTROY,
// needs CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY) and `TcpCloseWatcher` (the
// SKNLGRP_INET_TCP_DESTROY and SKNLGRP_INET6_TCP_DESTROY multicast groups: one message per TCP
// socket of this network namespace as it is freed, with its struct tcp_info: the payload sent
// (bytes_sent less bytes_retrans) and received (bytes_received less the peer's FIN); needs
// CAP_NET_ADMIN). Messages are parsed bounded (header and attribute lengths checked against the
// datagram).
//
// Threads: DestroyTcpSocket on any thread (one blocking netlink round trip). TcpCloseWatcher on
// its loop's thread; after Close(), destroy it once the loop has run again.
#pragma once

#include <uv.h>

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "filters/filter.h"
#include "proxy/socket_util.h"

namespace picket::proxy {

struct TcpTuple {
  filters::Endpoint local;
  filters::Endpoint remote;
  friend bool operator==(const TcpTuple&, const TcpTuple&) = default;
};

struct TcpTupleHash {
  size_t operator()(const TcpTuple& t) const;
};

// Aborts the socket whose local and remote endpoints are `tuple`'s, in any state but LISTEN
// (RST to the peer, ECONNABORTED to its owner). True if one was aborted, false if there is none.
[[nodiscard]] std::expected<bool, SysError> DestroyTcpSocket(const TcpTuple& tuple);

struct TcpSocketInfo {
  static constexpr uint8_t kListen = 10;  // include/net/tcp_states.h
  TcpTuple tuple;                         // a listener's remote is unspecified
  uint8_t state = 0;                      // TCP_ESTABLISHED (1) ... TCP_CLOSING (11)
  uint32_t uid = 0;                       // the owner
};

// Every TCP socket of this network namespace, both families, listeners included, but not
// TIME_WAIT, CLOSE or request sockets (one dump per family).
[[nodiscard]] std::expected<std::vector<TcpSocketInfo>, SysError> DumpTcpSockets();

class TcpCloseWatcher {
 public:
  struct Closed {
    TcpTuple tuple;
    uint64_t bytes_sent = 0;      // payload, once (retransmissions not counted again)
    uint64_t bytes_received = 0;  // payload (exact when the peer's FIN arrived)
  };
  using Callback = std::function<void(const Closed&)>;

  [[nodiscard]] static std::expected<std::unique_ptr<TcpCloseWatcher>, SysError> Open(
      uv_loop_t* loop, Callback callback);
  ~TcpCloseWatcher();
  TcpCloseWatcher(const TcpCloseWatcher&) = delete;
  TcpCloseWatcher& operator=(const TcpCloseWatcher&) = delete;

  void Close();
  // Messages the kernel could not queue for us (the socket buffer overflowed): closes not heard.
  uint64_t overflows() const { return overflows_; }

 private:
  TcpCloseWatcher(uv_loop_t* loop, int fd, Callback callback);
  static void OnReadable(uv_poll_t* h, int status, int events);
  void Read();

  int fd_;
  uv_poll_t poll_{};
  Callback callback_;
  bool closed_ = false;
  uint64_t overflows_ = 0;
};

}  // namespace picket::proxy
