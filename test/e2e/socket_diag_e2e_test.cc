// proxy/socket_diag.h on real sockets, as root, in a network namespace of its own: the dump of
// the namespace's TCP sockets (listeners, connections, their owners), SOCK_DESTROY (the app gets
// ECONNABORTED, the peer a reset; a second destroy finds nothing), and the close events verdict
// mode logs allowed flows from, with exact payload byte counts both ways (the peer's FIN not
// counted), on IPv4, IPv6 and an IPv4 connection of a dual-stack socket (its tuple folded to IPv4).
// Fails loudly without root.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "proxy/socket_diag.h"
#include "test/e2e/netns.h"

namespace picket::e2e {
namespace {

filters::Endpoint Local(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  filters::Endpoint e = proxy::EndpointFromSockaddr(ss);
  return e;
}

filters::Endpoint Remote(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return proxy::EndpointFromSockaddr(ss);
}

struct Pair {
  int client = -1;
  int server = -1;
};

// A connected pair inside `ns`: `family` of the client socket, to `address`.
Pair Connect(const Netns& ns, int family, const std::string& listen_address,
             const std::string& address) {
  Pair p;
  const int listener = ListenIn(ns, listen_address, 0);
  if (listener < 0) return p;
  const uint16_t port = Local(listener).port;
  p.client = ns.InNetns([&] {
    const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (family == AF_INET) {
      auto& a = reinterpret_cast<sockaddr_in&>(ss);
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      inet_pton(AF_INET, address.c_str(), &a.sin_addr);
      len = sizeof a;
    } else {
      auto& a = reinterpret_cast<sockaddr_in6&>(ss);
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(port);
      inet_pton(AF_INET6, address.c_str(), &a.sin6_addr);
      len = sizeof a;
    }
    return connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? fd : -1;
  });
  p.server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  return p;
}

void SendAll(int fd, size_t n) {
  std::vector<char> data(n, 'x');
  ASSERT_EQ(send(fd, data.data(), n, MSG_NOSIGNAL), static_cast<ssize_t>(n));
}

size_t ReadToEof(int fd) {
  size_t total = 0;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return total;
    total += static_cast<size_t>(n);
  }
}

class SocketDiagE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "socket_diag_e2e_test needs root (CAP_NET_ADMIN for SOCK_DESTROY "
                                "and the destroy groups, a namespace of its own): it does not skip";
    ns_ = std::make_unique<Netns>(UniqueName("pksd"));
    ASSERT_TRUE(ns_->ok());
    uv_loop_init(&loop_);
    ns_->InNetns([&] {
      auto w = proxy::TcpCloseWatcher::Open(
          &loop_, [this](const proxy::TcpCloseWatcher::Closed& c) { closed_.push_back(c); });
      if (!w) {
        error_ = w.error().ToString();
        return -1;
      }
      watcher_ = std::move(*w);
      return 0;
    });
    ASSERT_NE(watcher_, nullptr) << error_;
  }
  void TearDown() override {
    if (watcher_) watcher_->Close();
    uv_run(&loop_, UV_RUN_NOWAIT);
    watcher_.reset();
    uv_loop_close(&loop_);
  }

  // 1 when the dump of the namespace's TCP sockets holds `tuple` established and owned by root,
  // 0 when it does not hold it, -1 on a dump error.
  int Dumped(const proxy::TcpTuple& tuple) {
    return ns_->InNetns([&] {
      auto sockets = proxy::DumpTcpSockets();
      if (!sockets) return -1;
      for (const proxy::TcpSocketInfo& s : *sockets) {
        if (s.tuple == tuple) return s.state == 1 && s.uid == 0 ? 1 : -1;
      }
      return 0;
    });
  }

  // Runs the loop until a close of `tuple` was heard (bounded).
  const proxy::TcpCloseWatcher::Closed* WaitClosed(const proxy::TcpTuple& tuple) {
    for (int i = 0; i < 500; ++i) {
      for (const auto& c : closed_) {
        if (c.tuple == tuple) return &c;
      }
      uv_run(&loop_, UV_RUN_NOWAIT);
      usleep(2000);
    }
    return nullptr;
  }

  // Exact bytes both ways, then an orderly close; the client's and the server's socket report
  // what each sent and received.
  void ExchangeAndClose(int family, const std::string& listen, const std::string& address,
                        bool v6_tuple) {
    Pair p = Connect(*ns_, family, listen, address);
    ASSERT_GE(p.client, 0) << std::strerror(errno);
    ASSERT_GE(p.server, 0) << std::strerror(errno);
    const proxy::TcpTuple client{Local(p.client), Remote(p.client)};
    EXPECT_EQ(client.local.address.v6, v6_tuple);
    const proxy::TcpTuple server{client.remote, client.local};
    // Both ends are in the dump, established, owned by us (root).
    EXPECT_EQ(Dumped(client), 1);
    EXPECT_EQ(Dumped(server), 1);
    ASSERT_NO_FATAL_FAILURE(SendAll(p.client, 1000));
    ASSERT_NO_FATAL_FAILURE(SendAll(p.server, 70000));
    shutdown(p.client, SHUT_WR);
    EXPECT_EQ(ReadToEof(p.server), 1000u);
    shutdown(p.server, SHUT_WR);
    EXPECT_EQ(ReadToEof(p.client), 70000u);
    close(p.client);
    close(p.server);
    const auto* c = WaitClosed(client);
    ASSERT_NE(c, nullptr) << "no close event for the client socket";
    EXPECT_EQ(c->bytes_sent, 1000u);
    EXPECT_EQ(c->bytes_received, 70000u);
    const auto* s = WaitClosed(server);
    ASSERT_NE(s, nullptr) << "no close event for the server socket";
    EXPECT_EQ(s->bytes_sent, 70000u);
    EXPECT_EQ(s->bytes_received, 1000u);
  }

  std::unique_ptr<Netns> ns_;
  uv_loop_t loop_{};
  std::unique_ptr<proxy::TcpCloseWatcher> watcher_;
  std::vector<proxy::TcpCloseWatcher::Closed> closed_;
  std::string error_;
};

TEST_F(SocketDiagE2eTest, CloseEventsCountPayloadBothWaysOnEveryFamily) {
  ExchangeAndClose(AF_INET, "127.0.0.1", "127.0.0.1", /*v6_tuple=*/false);
  ExchangeAndClose(AF_INET6, "::1", "::1", /*v6_tuple=*/true);
  // A dual-stack socket to an IPv4 address: its tuple is the IPv4 one.
  ExchangeAndClose(AF_INET6, "127.0.0.1", "::ffff:127.0.0.1", /*v6_tuple=*/false);
}

TEST_F(SocketDiagE2eTest, TheDumpShowsListenersOfBothFamilies) {
  const int v4 = ListenIn(*ns_, "0.0.0.0", 0);
  const int v6 = ListenIn(*ns_, "::1", 0);
  ASSERT_GE(v4, 0);
  ASSERT_GE(v6, 0);
  const uint16_t p4 = Local(v4).port, p6 = Local(v6).port;
  int found = ns_->InNetns([&] {
    auto sockets = proxy::DumpTcpSockets();
    if (!sockets) return -1;
    int n = 0;
    for (const proxy::TcpSocketInfo& s : *sockets) {
      if (s.state != proxy::TcpSocketInfo::kListen) continue;
      if (s.tuple.local.port == p4 && !s.tuple.local.address.v6) ++n;
      if (s.tuple.local.port == p6 && s.tuple.local.address.v6) ++n;
    }
    return n;
  });
  EXPECT_EQ(found, 2);
  close(v4);
  close(v6);
}

TEST_F(SocketDiagE2eTest, DestroyAbortsTheSocketAndResetsThePeer) {
  for (const auto& [family, address] :
       std::vector<std::pair<int, std::string>>{{AF_INET, "127.0.0.1"}, {AF_INET6, "::1"}}) {
    Pair p = Connect(*ns_, family, address, address);
    ASSERT_GE(p.client, 0);
    ASSERT_GE(p.server, 0);
    const proxy::TcpTuple client{Local(p.client), Remote(p.client)};
    const int destroyed = ns_->InNetns([&] {
      auto d = proxy::DestroyTcpSocket(client);
      return d ? (*d ? 1 : 0) : -1;
    });
    EXPECT_EQ(destroyed, 1);
    char byte;
    EXPECT_EQ(recv(p.client, &byte, 1, 0), -1);
    EXPECT_EQ(errno, ECONNABORTED) << std::strerror(errno);
    EXPECT_EQ(recv(p.server, &byte, 1, 0), -1);
    EXPECT_EQ(errno, ECONNRESET) << std::strerror(errno);
    // Nothing left to destroy, nor to dump.
    EXPECT_EQ(ns_->InNetns([&] {
      auto d = proxy::DestroyTcpSocket(client);
      return d ? (*d ? 1 : 0) : -1;
    }),
              0);
    EXPECT_EQ(Dumped(client), 0);
    close(p.client);
    close(p.server);
  }
}

}  // namespace
}  // namespace picket::e2e
