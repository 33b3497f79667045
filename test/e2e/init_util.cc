// test/e2e/init_util.cc — see init_util.h.
#include "test/e2e/init_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace picket::e2e {
namespace {

constexpr int kSoOriginalDst = 80;      // SO_ORIGINAL_DST (linux/netfilter_ipv4.h)
constexpr int kIp6tSoOriginalDst = 80;  // IP6T_SO_ORIGINAL_DST (netfilter_ipv6/ip6_tables.h)

bool ToSockaddr(const std::string& addr, uint16_t port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof *ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof *v6;
    return true;
  }
  return false;
}

std::string Format(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(v6->sin6_port));
}

}  // namespace

inject::CommandResult Run(const std::vector<std::string>& argv, bool check,
                          const std::string& input) {
  inject::ProcessRunner runner;
  auto r = runner.Run(argv, input);
  if (!r) {
    ADD_FAILURE() << r.error().ToString();
    return inject::CommandResult{127, "", r.error().ToString()};
  }
  if (check && r->exit_code != 0) {
    ADD_FAILURE() << "`" << inject::CommandLine(argv) << "` exited " << r->exit_code
                  << "\nstdout: " << r->out << "\nstderr: " << r->err;
  }
  return *r;
}

Netns::Netns(std::string name) : name_(std::move(name)) {
  Run({"ip", "netns", "del", name_}, false);  // a leftover from a crashed run
  Run({"ip", "netns", "add", name_});
  Exec({"ip", "link", "set", "lo", "up"});
}

Netns::~Netns() { Run({"ip", "netns", "del", name_}, false); }

inject::CommandResult Netns::Exec(std::vector<std::string> argv, bool check) {
  argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
  return Run(argv, check);
}

int Netns::InNetns(const std::function<int()>& fn) const {
  int result = -1;
  std::thread t([&] {
    int fd = open(("/var/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "setns " << name_ << ": " << strerror(errno);
      if (fd >= 0) close(fd);
      return;
    }
    close(fd);
    result = fn();
  });
  t.join();
  return result;
}

int ListenIn(const Netns& ns, const std::string& addr, uint16_t port,
             std::optional<uid_t> owner_uid) {
  return ns.InNetns([&]() -> int {
    sockaddr_storage ss;
    socklen_t len;
    if (!ToSockaddr(addr, port, &ss, &len)) return -1;
    // setfsuid is per thread (no glibc broadcast), and this thread ends with fn.
    const int previous_fsuid = owner_uid ? setfsuid(*owner_uid) : -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (owner_uid) setfsuid(static_cast<uid_t>(previous_fsuid));
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 64) != 0) {
      ADD_FAILURE() << "listen " << addr << ":" << port << " in " << ns.name() << ": "
                    << strerror(errno);
      close(fd);
      return -1;
    }
    return fd;
  });
}

int UdpSocketIn(const Netns& ns, const std::string& addr, uint16_t port) {
  return ns.InNetns([&]() -> int {
    sockaddr_storage ss;
    socklen_t len;
    if (!ToSockaddr(addr, port, &ss, &len)) return -1;
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      ADD_FAILURE() << "bind udp " << addr << ":" << port << " in " << ns.name() << ": "
                    << strerror(errno);
      close(fd);
      return -1;
    }
    return fd;
  });
}

bool SendUdp(int fd, const std::string& addr, uint16_t port, const std::string& payload) {
  sockaddr_storage ss;
  socklen_t len;
  if (!ToSockaddr(addr, port, &ss, &len)) return false;
  return sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) ==
         static_cast<ssize_t>(payload.size());
}

std::string ReceiveUdpWithin(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return "";
  char buf[2048];
  ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

int ConnectFrom(const Netns& ns, const std::string& addr, uint16_t port, int timeout_ms) {
  int fd = ns.InNetns([&]() -> int {
    sockaddr_storage ss;
    socklen_t len;
    if (!ToSockaddr(addr, port, &ss, &len)) return -1;
    return socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  });
  if (fd < 0) return -1;
  sockaddr_storage ss;
  socklen_t len;
  ToSockaddr(addr, port, &ss, &len);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t elen = sizeof err;
  if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
      err != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int AcceptWithin(int listen_fd, int timeout_ms) {
  pollfd p{listen_fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return -1;
  return accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
}

std::string OriginalDestination(int fd, bool ipv6) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int rc = ipv6 ? getsockopt(fd, SOL_IPV6, kIp6tSoOriginalDst, &ss, &len)
                : getsockopt(fd, SOL_IP, kSoOriginalDst, &ss, &len);
  if (rc != 0) return std::string("error: ") + strerror(errno);
  return Format(ss);
}

std::string LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "error";
  return Format(ss);
}

}  // namespace picket::e2e
