// proxy/conntrack_sweep.h's verdict-mode TCP sweep on real sockets, as root, in a "pod" network
// namespace of its own linked to a "peer" one: the app's connection to a Service address that the
// nat table redirected to a local listener (the relay, as picket-init's REDIRECT does) is left to
// the relay whatever the verdict function says — the sweep may judge with a service map that does
// not know the address (yet, or any more) — while a connection the kernel carries to the peer is
// judged and returned for the worker to abort; on IPv4 and IPv6. Fails loudly without root.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "proxy/conntrack_sweep.h"
#include "proxy/socket_diag.h"
#include "test/e2e/netns.h"

namespace picket::e2e {
namespace {

constexpr char kPodV4[] = "10.95.1.2";
constexpr char kPeerV4[] = "10.95.1.1";
constexpr char kPodV6[] = "fd00:95::2";
constexpr char kPeerV6[] = "fd00:95::1";
// Service addresses, routed towards the peer but redirected in the pod's nat table before.
constexpr char kServiceV4[] = "10.96.0.10";
constexpr char kServiceV6[] = "fd00:96::10";
constexpr uint16_t kServicePort = 80;
// The sweep leaves the sidecar's own sockets alone: here it has none (every socket is root's).
constexpr uint32_t kSidecarUid = 1337;

filters::Endpoint Local(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return proxy::EndpointFromSockaddr(ss);
}

filters::Endpoint Remote(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return proxy::EndpointFromSockaddr(ss);
}

proxy::TcpTuple Tuple(int fd) { return {Local(fd), Remote(fd)}; }

class ConntrackSweepE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "conntrack_sweep_e2e_test needs root (network namespaces, "
                                "iptables, ctnetlink, sock_diag): it does not skip";
    pod_ = std::make_unique<Netns>(UniqueName("pkts"));
    peer_ = std::make_unique<Netns>(UniqueName("pktp"));
    ASSERT_TRUE(pod_->ok());
    ASSERT_TRUE(peer_->ok());
    std::string error;
    ASSERT_TRUE(LinkNamespaces(*pod_, kPodV4, kPodV6, *peer_, kPeerV4, kPeerV6, &error)) << error;
    for (const std::vector<std::string>& step : std::vector<std::vector<std::string>>{
             {"ip", "route", "add", "10.96.0.0/12", "via", kPeerV4},
             {"ip", "-6", "route", "add", "fd00:96::/64", "via", kPeerV6},
         }) {
      CommandResult r = pod_->Exec(step);
      ASSERT_EQ(r.status, 0) << r.output;
    }
  }

  void TearDown() override {
    for (int fd : fds_) close(fd);
    peer_.reset();
    pod_.reset();  // its nat rules and conntrack table go with it
  }

  int Keep(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

  // A listener in the pod (the relay) that `service`:80 is redirected to, as picket-init's nat
  // rule does for relay-marked packets (REDIRECT from OUTPUT: to loopback).
  void Redirect(const std::string& iptables, const std::string& relay_address,
                const std::string& service) {
    const int relay = Keep(ListenIn(*pod_, relay_address, 0));
    ASSERT_GE(relay, 0) << std::strerror(errno);
    CommandResult r = pod_->Exec({iptables, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", service,
                                  "--dport", std::to_string(kServicePort), "-j", "REDIRECT",
                                  "--to-ports", std::to_string(Local(relay).port)});
    ASSERT_EQ(r.status, 0) << r.output;
    relays_.push_back(relay);
  }

  std::unique_ptr<Netns> pod_;
  std::unique_ptr<Netns> peer_;
  std::vector<int> relays_;
  std::vector<int> fds_;
};

TEST_F(ConntrackSweepE2eTest, ASocketRedirectedToTheRelayIsLeftToTheRelay) {
  ASSERT_NO_FATAL_FAILURE(Redirect("iptables", "127.0.0.1", kServiceV4));
  ASSERT_NO_FATAL_FAILURE(Redirect("ip6tables", "::1", kServiceV6));
  const int peer_v4 = Keep(ListenIn(*peer_, kPeerV4, 0));
  const int peer_v6 = Keep(ListenIn(*peer_, kPeerV6, 0));
  ASSERT_GE(peer_v4, 0);
  ASSERT_GE(peer_v6, 0);

  // The app's connections: two to Service addresses (the relay's), two the kernel carries.
  const int relayed_v4 = Keep(ConnectFrom(*pod_, kServiceV4, kServicePort));
  const int relayed_v6 = Keep(ConnectFrom(*pod_, kServiceV6, kServicePort));
  const int carried_v4 = Keep(ConnectFrom(*pod_, kPeerV4, Local(peer_v4).port));
  const int carried_v6 = Keep(ConnectFrom(*pod_, kPeerV6, Local(peer_v6).port));
  ASSERT_GE(relayed_v4, 0) << std::strerror(errno);
  ASSERT_GE(relayed_v6, 0) << std::strerror(errno);
  ASSERT_GE(carried_v4, 0) << std::strerror(errno);
  ASSERT_GE(carried_v6, 0) << std::strerror(errno);
  // The redirect happened: the relay accepted each app socket, from its own address.
  for (size_t i = 0; i < relays_.size(); ++i) {
    const int accepted = Keep(accept4(relays_[i], nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_GE(accepted, 0) << std::strerror(errno);
    EXPECT_EQ(Remote(accepted), Local(i == 0 ? relayed_v4 : relayed_v6));
    EXPECT_EQ(Remote(i == 0 ? relayed_v4 : relayed_v6).port, kServicePort);
  }

  // A verdict function that denies everything: what a sweep judging with a service map that
  // does not know the Service says of a connection to its address.
  std::vector<proxy::TcpTuple> judged;
  base::Result<proxy::SweepResult> swept = std::unexpected(base::Error::Of("not run"));
  pod_->InNetns([&] {
    swept = proxy::SweepConntrack(
        proxy::SweepScope{true, kSidecarUid},
        [](const base::IpAddress& a) {
          return a == *base::IpAddress::Parse(kPodV4) || a == *base::IpAddress::Parse(kPodV6);
        },
        [&](filters::Direction direction, const proxy::PacketFlow& flow) {
          EXPECT_EQ(direction, filters::Direction::kOutbound);
          judged.push_back(proxy::TcpTuple{{flow.source, flow.source_port},
                                           {flow.destination, flow.destination_port}});
          return false;
        });
    return 0;
  });
  ASSERT_TRUE(swept.has_value()) << swept.error().ToString();

  // Only the flows the kernel carries were judged, and both are to be aborted.
  const std::vector<proxy::TcpTuple> carried = {Tuple(carried_v4), Tuple(carried_v6)};
  EXPECT_EQ(swept->examined, 2u);
  EXPECT_EQ(swept->tcp_revoked.size(), 2u);
  for (const proxy::TcpRevocation& r : swept->tcp_revoked) {
    EXPECT_NE(std::find(carried.begin(), carried.end(), r.socket), carried.end())
        << "revoked " << proxy::EndpointToString(r.socket.local) << " -> "
        << proxy::EndpointToString(r.socket.remote) << ", a socket the relay holds";
  }
  for (const int relayed : {relayed_v4, relayed_v6}) {
    const proxy::TcpTuple t = Tuple(relayed);
    EXPECT_EQ(std::find(judged.begin(), judged.end(), t), judged.end())
        << proxy::EndpointToString(t.local) << " -> " << proxy::EndpointToString(t.remote)
        << " was judged: the relay holds it";
  }
}

}  // namespace
}  // namespace picket::e2e
