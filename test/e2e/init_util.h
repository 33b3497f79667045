// test/e2e/init_util.h — small helpers for the picket-init e2e test: network namespaces made and
// removed by the test, running a program (optionally inside a namespace), sockets created inside
// a namespace, and reading a redirected connection's original destination.
//
// Every helper is blocking and meant for the test's main thread; InNetns runs its function on a
// short-lived thread that joins the namespace (setns affects only the calling thread).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "inject/command.h"

namespace picket::e2e {

// Runs argv; fails the current test (with stdout and stderr) on a non-zero exit when `check`.
inject::CommandResult Run(const std::vector<std::string>& argv, bool check = true,
                          const std::string& input = "");

// A named network namespace (`ip netns add`), deleted in the destructor.
class Netns {
 public:
  explicit Netns(std::string name);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  const std::string& name() const { return name_; }
  // argv run inside this namespace via `ip netns exec`.
  inject::CommandResult Exec(std::vector<std::string> argv, bool check = true);
  // Runs `fn` on a thread that has joined this namespace; returns its result.
  int InNetns(const std::function<int()>& fn) const;

 private:
  std::string name_;
};

// A TCP listener on `addr` (v4 "a.b.c.d" or v6) and `port`, created inside `ns`. With
// `owner_uid`, the socket is created with that file-system uid (setfsuid on the namespace's own
// thread), so netfilter's owner match sees it as that uid's: a stand-in for the proxy (uid 1337)
// passes picket-init's listener guard (inject/listener_guard.h).
int ListenIn(const Netns& ns, const std::string& addr, uint16_t port,
             std::optional<uid_t> owner_uid = std::nullopt);
// A non-blocking-connect-with-timeout TCP client socket created inside `ns`; -1 on failure.
int ConnectFrom(const Netns& ns, const std::string& addr, uint16_t port, int timeout_ms = 3000);
// accept() with a timeout; -1 when nothing arrives in time.
int AcceptWithin(int listen_fd, int timeout_ms);
// A UDP socket bound to addr:port inside `ns` (port 0: any); -1 on failure.
int UdpSocketIn(const Netns& ns, const std::string& addr, uint16_t port);
// Sends `payload` from `fd` to addr:port; false when sendto() fails.
bool SendUdp(int fd, const std::string& addr, uint16_t port, const std::string& payload);
// The next datagram on `fd` within `timeout_ms`, or "" (no datagram in time).
std::string ReceiveUdpWithin(int fd, int timeout_ms);
// The original destination of a redirected accepted connection, "addr:port" / "[addr]:port".
std::string OriginalDestination(int fd, bool ipv6);
// The local address of an accepted connection, same format.
std::string LocalAddress(int fd);

}  // namespace picket::e2e
