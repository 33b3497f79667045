// In-process integration: a real Proxy on loopback (port 0), real sockets, a fake policy source
// where the test needs a particular verdict, and a real policy file for the reload path. No
// redirect happens on loopback, so the original destination comes from the test (the seam in
// ProxyOptions), which points it at an echo server.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>

#include "policy/endpoint_policy.h"
#include "proxy/proxy.h"
#include "test/filters/fake_policy.h"
#include "test/proxy/test_net.h"

namespace picket::proxy {
namespace {

using picket::testing::ConnectTo;
using picket::testing::FakePolicy;
using picket::testing::Http;
using picket::testing::ReadExactly;
using picket::testing::ReadToEnd;
using picket::testing::SendAll;
using picket::testing::WaitFor;

uint64_t Closed(const Proxy& proxy, filters::CloseReason reason,
                filters::Direction direction = filters::Direction::kOutbound) {
  const DirectionStats& d =
      direction == filters::Direction::kOutbound ? proxy.stats().outbound : proxy.stats().inbound;
  return d.closed[filters::CloseReasonIndex(reason)].load();
}

class ProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }

  config::Bootstrap MakeBootstrap() {
    config::Bootstrap b;
    b.node.ns = "default";
    b.node.name = "client";
    b.node.ips = {"10.0.0.1"};
    b.listeners.outbound_port = 0;
    b.listeners.inbound_port = 0;
    b.listeners.ipv6 = false;
    b.admin.port = 0;
    b.flow_log.path = std::string(std::getenv("TEST_TMPDIR")) + "/flows-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".log";
    b.flow_log.log_allowed = true;
    b.workers = 1;
    b.policy_file = "";
    return b;
  }

  void StartProxy(config::Bootstrap b) {
    ProxyOptions options;
    options.handle_signals = false;
    options.original_destination = [this](int, bool) -> std::optional<filters::Endpoint> {
      return filters::Endpoint{*policy::IpAddress::Parse("127.0.0.1"), target_port_.load()};
    };
    proxy_ = std::make_unique<Proxy>(std::move(b), loop_.loop(), options);
    auto started = proxy_->Start();
    ASSERT_TRUE(started) << started.error();
    loop_.Start();
  }

  void Apply(policy::EndpointPolicyPtr policy) {
    std::expected<void, std::string> result;
    loop_.Call([&] { result = proxy_->ApplyPolicy(policy); });
    ASSERT_TRUE(result) << result.error();
  }

  void AllowEcho(const std::string& version = "v1") {
    Apply(std::make_shared<FakePolicy>(version, std::set<uint16_t>{echo_.port()},
                                       std::set<uint16_t>{echo_.port()}));
  }

  void TearDown() override {
    if (proxy_) {
      loop_.Call([&] { proxy_->Shutdown(); });
      EXPECT_EQ(loop_.StopAndClose(), 0);  // every handle closed
      proxy_.reset();
    }
  }

  std::vector<std::string> Flows(const std::string& verdict) {
    proxy_->flow_log().Flush();
    return proxy_->flow_log().Recent(verdict);
  }

  // Flows, polled until `count` are there: counters move before the record is submitted.
  std::vector<std::string> WaitFlows(const std::string& verdict, size_t count) {
    std::vector<std::string> found;
    WaitFor([&] {
      found = Flows(verdict);
      return found.size() >= count;
    });
    return found;
  }

  // Expects the connection to be reset by the proxy.
  static void ExpectReset(int fd) {
    int error = 0;
    std::string data = ReadToEnd(fd, &error);
    EXPECT_EQ(error, ECONNRESET) << "read " << data.size() << " bytes, errno " << error;
    close(fd);
  }

  picket::testing::LoopThread loop_;
  picket::testing::EchoServer echo_;
  std::atomic<uint16_t> target_port_{0};
  std::unique_ptr<Proxy> proxy_;
};

TEST_F(ProxyTest, FailsClosedBeforeThePolicy) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "503\nPRE_INITIALIZING\n");
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ExpectReset(fd);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kNoPolicyYet) == 1; }));
  EXPECT_EQ(echo_.accepted(), 0);  // decided before any upstream connect
  auto dropped = WaitFlows("DROPPED", 1);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_NE(dropped[0].find("\"close_reason\":\"no_policy_yet\""), std::string::npos);
  EXPECT_NE(dropped[0].find("\"drop_reason_desc\":\"NO_POLICY_YET\""), std::string::npos);
}

TEST_F(ProxyTest, AllowedRelayIsByteExactBothWaysWithHalfClose) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  AllowEcho();
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "200\nLIVE\n");
  const std::string payload = picket::testing::RandomBytes(8 << 20, 42);
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  // Write everything, then FIN our direction; the echo keeps flowing back after our FIN.
  std::thread writer([&] {
    EXPECT_TRUE(SendAll(fd, payload.data(), payload.size()));
    shutdown(fd, SHUT_WR);
  });
  int error = 0;
  std::string echoed = ReadToEnd(fd, &error);
  writer.join();
  close(fd);
  EXPECT_EQ(error, 0);
  ASSERT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kNormal) == 1; }));
  EXPECT_EQ(proxy_->stats().outbound.rx_bytes.load(), payload.size());
  EXPECT_EQ(proxy_->stats().outbound.tx_bytes.load(), payload.size());
  EXPECT_EQ(proxy_->stats().active_total.load(), 0);
  auto forwarded = WaitFlows("FORWARDED", 1);
  ASSERT_EQ(forwarded.size(), 1u);
  EXPECT_NE(forwarded[0].find("\"bytes\":{\"to_destination\":8388608,\"to_source\":8388608}"),
            std::string::npos)
      << forwarded[0];
  EXPECT_NE(forwarded[0].find("\"egress_allowed_by\""), std::string::npos);
}

TEST_F(ProxyTest, WithoutSpliceTheBufferPathIsByteExactToo) {
  config::Bootstrap b = MakeBootstrap();
  b.limits.splice = false;
  b.limits.buffer_size = 4096;  // many partial writes
  StartProxy(b);
  target_port_ = echo_.port();
  AllowEcho();
  const std::string payload = picket::testing::RandomBytes(2 << 20, 7);
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  std::thread writer([&] {
    EXPECT_TRUE(SendAll(fd, payload.data(), payload.size()));
    shutdown(fd, SHUT_WR);
  });
  int error = 0;
  std::string echoed = ReadToEnd(fd, &error);
  writer.join();
  close(fd);
  EXPECT_TRUE(echoed == payload);
}

TEST_F(ProxyTest, CopyModeParksWhatItCannotSendAndSwitchesToSplice) {
  // A small buffer: reads fill it quickly (bulk → splice), and before the switch a blocked send
  // leaves bytes in the worker's scratch buffer that must be parked, not overwritten.
  config::Bootstrap b = MakeBootstrap();
  b.limits.buffer_size = 4096;
  b.workers = 1;
  StartProxy(b);
  target_port_ = echo_.port();
  AllowEcho();
  const std::string payload = picket::testing::RandomBytes(4 << 20, 9);
  std::vector<int> fds;
  std::vector<std::thread> writers;
  for (int i = 0; i < 3; ++i) {  // several connections share the worker's scratch buffer
    int fd = ConnectTo(proxy_->outbound_port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    writers.emplace_back([&, fd] {
      EXPECT_TRUE(SendAll(fd, payload.data(), payload.size()));
      shutdown(fd, SHUT_WR);
    });
  }
  for (int fd : fds) {
    int error = 0;
    std::string echoed = ReadToEnd(fd, &error);
    EXPECT_EQ(error, 0);
    EXPECT_TRUE(echoed == payload);
    close(fd);
  }
  for (auto& t : writers) t.join();
}

TEST_F(ProxyTest, SmallMessagesKeepTheirBoundariesThroughCopyMode) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  AllowEcho();
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 200; ++i) {
    std::string message = "message " + std::to_string(i);
    ASSERT_TRUE(SendAll(fd, message.data(), message.size()));
    std::string back(message.size(), '\0');
    ASSERT_TRUE(ReadExactly(fd, back.data(), back.size()));
    ASSERT_EQ(back, message);
  }
  close(fd);
}

// A one-connection-at-a-time TCP server on 127.0.0.1:0 whose behaviour per connection is a
// callback (it owns the accepted fd and closes it).
class OneShotServer {
 public:
  explicit OneShotServer(std::function<void(int fd)> serve) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&sin), len), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len);
    port_ = ntohs(sin.sin_port);
    thread_ = std::thread([this, serve] {
      int conn = accept(fd_, nullptr, nullptr);
      if (conn >= 0) serve(conn);
    });
  }
  ~OneShotServer() {
    shutdown(fd_, SHUT_RDWR);  // wakes a pending accept()
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(ProxyTest, AServerThatSpeaksFirstIsNotKeptWaitingForTheHandshakesLastAck) {
  // The upstream socket delays the handshake's last ACK to send it with the client's first bytes.
  // A client that sends nothing (SMTP, MySQL) must not leave the server unaccepted until the
  // kernel's delayed-ACK timer (200 ms) fires: the greeting comes at once.
  OneShotServer greeter([](int fd) {
    const std::string hello = "220 ready\r\n";
    SendAll(fd, hello.data(), hello.size());
    int error = 0;
    ReadToEnd(fd, &error);
    close(fd);
  });
  StartProxy(MakeBootstrap());
  target_port_ = greeter.port();
  Apply(
      std::make_shared<FakePolicy>("v1", std::set<uint16_t>{greeter.port()}, std::set<uint16_t>{}));
  const auto start = std::chrono::steady_clock::now();
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  char greeting[11];
  ASSERT_TRUE(ReadExactly(fd, greeting, sizeof(greeting)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(std::string(greeting, sizeof(greeting)), "220 ready\r\n");
  EXPECT_LT(waited, std::chrono::milliseconds(150))
      << "the greeting waited for a delayed ACK: "
      << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count() << " ms";
  close(fd);
}

TEST_F(ProxyTest, AnAnswerFollowedAtOnceByCloseArrivesWholeThenEndOfStream) {
  // The answer and the server's FIN reach the proxy together: it sends the answer marked "more"
  // and then shuts down, so the FIN can share the segment; nothing may be held back or lost.
  OneShotServer answerer([](int fd) {
    char request[5];
    if (ReadExactly(fd, request, sizeof(request))) {
      const std::string answer = picket::testing::RandomBytes(3000, 9);
      SendAll(fd, answer.data(), answer.size());
    }
    close(fd);  // the server closes first, like an HTTP/1.0 server
  });
  StartProxy(MakeBootstrap());
  target_port_ = answerer.port();
  Apply(std::make_shared<FakePolicy>("v1", std::set<uint16_t>{answerer.port()},
                                     std::set<uint16_t>{}));
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "hello", 5));
  int error = 0;
  std::string answer = ReadToEnd(fd, &error);
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(answer == picket::testing::RandomBytes(3000, 9)) << answer.size() << " bytes";
  close(fd);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kNormal) == 1; }));
}

TEST_F(ProxyTest, DeniedIsResetWithExactlyOneDroppedRecord) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  Apply(std::make_shared<FakePolicy>("v1", std::set<uint16_t>{1}, std::set<uint16_t>{}));
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ExpectReset(fd);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kPolicyDenied) == 1; }));
  EXPECT_EQ(echo_.accepted(), 0);
  auto dropped = WaitFlows("DROPPED", 1);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_NE(dropped[0].find("\"drop_reason_desc\":\"POLICY_DENIED\""), std::string::npos);
  EXPECT_NE(dropped[0].find("\"egress_denied_by\":[{\"namespace\":\"default\","
                            "\"name\":\"egress-policy\"}]"),
            std::string::npos)
      << dropped[0];
  EXPECT_TRUE(Flows("FORWARDED").empty());
  EXPECT_EQ(proxy_->stats().outbound.denied.load(), 1u);
}

TEST_F(ProxyTest, InboundIsCheckedAgainstIngress) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  // Egress allows the port, ingress does not: the inbound listener must deny.
  Apply(std::make_shared<FakePolicy>("v1", std::set<uint16_t>{echo_.port()}, std::set<uint16_t>{}));
  int fd = ConnectTo(proxy_->inbound_port());
  ASSERT_GE(fd, 0);
  ExpectReset(fd);
  EXPECT_TRUE(WaitFor([&] {
    return Closed(*proxy_, filters::CloseReason::kPolicyDenied, filters::Direction::kInbound) == 1;
  }));
  auto dropped = WaitFlows("DROPPED", 1);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_NE(dropped[0].find("\"traffic_direction\":\"INGRESS\""), std::string::npos);
}

TEST_F(ProxyTest, InboundConnectsToTheAppFromThePassthroughSource) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  AllowEcho();
  int fd = ConnectTo(proxy_->inbound_port());
  ASSERT_GE(fd, 0);
  char buf[2];
  ASSERT_TRUE(SendAll(fd, "in", 2));
  ASSERT_TRUE(ReadExactly(fd, buf, 2));
  close(fd);
  // 127.0.0.7: the source the capture rules never redirect again (no loop through 15006).
  EXPECT_EQ(echo_.last_peer(), "127.0.0.7");
}

TEST_F(ProxyTest, PolicyUpdateClosesWhatIsNoLongerAllowed) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  AllowEcho("v1");
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  char buf[5];
  ASSERT_TRUE(SendAll(fd, "hello", 5));
  ASSERT_TRUE(ReadExactly(fd, buf, 5));
  Apply(std::make_shared<FakePolicy>("v2", std::set<uint16_t>{}, std::set<uint16_t>{}));
  ExpectReset(fd);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kPolicyChanged) == 1; }));
  auto dropped = WaitFlows("DROPPED", 1);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_NE(dropped[0].find("\"close_reason\":\"policy_changed\""), std::string::npos);
  EXPECT_NE(dropped[0].find("\"bytes\":{\"to_destination\":5,\"to_source\":5}"), std::string::npos)
      << dropped[0];
}

TEST_F(ProxyTest, RecheckCanBeTurnedOff) {
  config::Bootstrap b = MakeBootstrap();
  b.recheck_on_policy_change = false;
  StartProxy(b);
  target_port_ = echo_.port();
  AllowEcho("v1");
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  char buf[5];
  ASSERT_TRUE(SendAll(fd, "hello", 5));
  ASSERT_TRUE(ReadExactly(fd, buf, 5));
  Apply(std::make_shared<FakePolicy>("v2", std::set<uint16_t>{}, std::set<uint16_t>{}));
  // New connections see the new policy ...
  int denied = ConnectTo(proxy_->outbound_port());
  ExpectReset(denied);
  // ... the established one keeps working.
  ASSERT_TRUE(SendAll(fd, "again", 5));
  ASSERT_TRUE(ReadExactly(fd, buf, 5));
  EXPECT_EQ(std::string(buf, 5), "again");
  close(fd);
}

TEST_F(ProxyTest, PolicyForAnotherPodIsRejectedAndTheOldOneStays) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  AllowEcho("v1");
  std::expected<void, std::string> result;
  auto other = std::make_shared<FakePolicy>("v2", std::set<uint16_t>{}, std::set<uint16_t>{},
                                            "default", "someone-else");
  loop_.Call([&] { result = proxy_->ApplyPolicy(other); });
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().find("default/someone-else"), std::string::npos);
  EXPECT_NE(Http(proxy_->admin_port(), "GET", "/config_dump").find("\"version\":\"v1\""),
            std::string::npos);
  EXPECT_EQ(proxy_->stats().policy_update_rejected.load(), 1u);
}

TEST_F(ProxyTest, UpstreamRefusedResetsTheDownstream) {
  StartProxy(MakeBootstrap());
  // A port nobody listens on: bind and close to find one.
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(probe, reinterpret_cast<sockaddr*>(&sin), sizeof(sin));
  socklen_t len = sizeof(sin);
  getsockname(probe, reinterpret_cast<sockaddr*>(&sin), &len);
  close(probe);
  target_port_ = ntohs(sin.sin_port);
  Apply(std::make_shared<FakePolicy>("v1", std::set<uint16_t>{target_port_.load()},
                                     std::set<uint16_t>{}));
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ExpectReset(fd);
  EXPECT_TRUE(
      WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kUpstreamConnectFailed) == 1; }));
}

TEST_F(ProxyTest, ConnectionToItsOwnListenerIsRefusedNotLooped) {
  StartProxy(MakeBootstrap());
  AllowEcho();
  target_port_ = proxy_->outbound_port();
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ExpectReset(fd);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kLoopDetected) == 1; }));
  EXPECT_EQ(proxy_->stats().outbound.accepted.load(), 1u);  // one accept, no loop
}

TEST_F(ProxyTest, IdleConnectionsAreClosed) {
  config::Bootstrap b = MakeBootstrap();
  b.timeouts.idle = std::chrono::milliseconds(150);
  StartProxy(b);
  target_port_ = echo_.port();
  AllowEcho();
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  int error = 0;
  ReadToEnd(fd, &error);  // returns when the proxy closes
  close(fd);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kIdleTimeout) == 1; }));
  EXPECT_NE(Http(proxy_->admin_port(), "GET", "/stats/prometheus")
                .find("envoy_tcp_idle_timeout{envoy_tcp_prefix=\"outbound\"} 1\n"),
            std::string::npos);
}

TEST_F(ProxyTest, ConnectionLimit) {
  config::Bootstrap b = MakeBootstrap();
  b.limits.max_connections = 1;
  StartProxy(b);
  target_port_ = echo_.port();
  AllowEcho();
  int first = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(first, 0);
  char buf[2];
  ASSERT_TRUE(SendAll(first, "hi", 2));
  ASSERT_TRUE(ReadExactly(first, buf, 2));
  int second = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(second, 0);
  ExpectReset(second);
  EXPECT_TRUE(
      WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kConnectionLimit) == 1; }));
  close(first);
}

TEST_F(ProxyTest, TwoWorkersShareThePortsWithReusePort) {
  config::Bootstrap b = MakeBootstrap();
  b.workers = 2;
  StartProxy(b);
  target_port_ = echo_.port();
  AllowEcho();
  for (int i = 0; i < 20; ++i) {
    int fd = ConnectTo(proxy_->outbound_port());
    ASSERT_GE(fd, 0);
    char buf[3];
    ASSERT_TRUE(SendAll(fd, "abc", 3));
    ASSERT_TRUE(ReadExactly(fd, buf, 3));
    close(fd);
  }
  EXPECT_EQ(proxy_->stats().outbound.accepted.load(), 20u);
}

TEST_F(ProxyTest, ShutdownStopsAcceptingAndDrains) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  AllowEcho();
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  char buf[4];
  ASSERT_TRUE(SendAll(fd, "ping", 4));
  ASSERT_TRUE(ReadExactly(fd, buf, 4));
  uint16_t port = proxy_->outbound_port();
  loop_.Call([&] { proxy_->Shutdown(); });
  EXPECT_TRUE(WaitFor([&] { return ConnectTo(port) < 0; }));  // listeners closed
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "503\nDRAINING\n");
  // The established connection still works until it ends on its own.
  ASSERT_TRUE(SendAll(fd, "pong", 4));
  ASSERT_TRUE(ReadExactly(fd, buf, 4));
  shutdown(fd, SHUT_WR);
  int error = 0;
  ReadToEnd(fd, &error);
  close(fd);
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kNormal) == 1; }));
  EXPECT_EQ(loop_.StopAndClose(), 0);  // the proxy closed everything by itself
  proxy_.reset();
}

TEST_F(ProxyTest, DrainTimeoutClosesWhatRemains) {
  config::Bootstrap b = MakeBootstrap();
  b.timeouts.drain = std::chrono::milliseconds(100);
  StartProxy(b);
  target_port_ = echo_.port();
  AllowEcho();
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  char buf[4];
  ASSERT_TRUE(SendAll(fd, "ping", 4));
  ASSERT_TRUE(ReadExactly(fd, buf, 4));
  loop_.Call([&] { proxy_->Shutdown(); });
  ExpectReset(fd);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kShutdown) == 1; }));
  EXPECT_EQ(loop_.StopAndClose(), 0);
  proxy_.reset();
}

TEST_F(ProxyTest, AdminEndpoints) {
  StartProxy(MakeBootstrap());
  target_port_ = echo_.port();
  AllowEcho("v7");
  uint16_t admin = proxy_->admin_port();
  std::string stats = Http(admin, "GET", "/stats/prometheus");
  EXPECT_EQ(stats.substr(0, 4), "200\n");
  EXPECT_NE(stats.find("# TYPE envoy_tcp_downstream_cx_total counter"), std::string::npos);
  EXPECT_NE(stats.find("picket_policy_loaded 1"), std::string::npos);
  std::string dump = Http(admin, "GET", "/config_dump");
  EXPECT_NE(dump.find("\"policy\":{\"version\":\"v7\",\"content\":{\"version\":\"v7\"}}"),
            std::string::npos)
      << dump;
  EXPECT_NE(dump.find("\"node\":{\"namespace\":\"default\",\"name\":\"client\""),
            std::string::npos);
  EXPECT_EQ(Http(admin, "GET", "/drain").substr(0, 4), "400\n");
  EXPECT_EQ(Http(admin, "GET", "/flows?verdict=DROPPED"), "200\n");
  EXPECT_EQ(Http(admin, "POST", "/drain"), "200\nOK\n");
  EXPECT_EQ(Http(admin, "GET", "/ready"), "503\nDRAINING\n");
  uint16_t port = proxy_->outbound_port();
  EXPECT_TRUE(WaitFor([&] { return ConnectTo(port) < 0; }));
}

// The policy file path: the real text form (policy::Encode), loaded at start, bad updates
// rejected with the old policy kept, good ones applied.
TEST_F(ProxyTest, PolicyFileLoadsAndBadUpdatesAreRejected) {
  auto make = [&](uint16_t port, const std::string& version) {
    policy::PodPolicy pod;
    pod.ns = "default";
    pod.pod = "client";
    pod.egress.isolated = true;
    pod.egress.policies = {"default/allow-echo"};
    policy::RuleEntry entry;
    entry.port.kind = policy::PortMatch::Kind::kRange;
    entry.port.first = entry.port.last = port;
    pod.egress.entries.push_back(entry);
    auto built = policy::BuildEndpointPolicy({}, pod, version);
    EXPECT_TRUE(built);
    return (*built)->Encode();
  };
  config::Bootstrap b = MakeBootstrap();
  b.policy_file = std::string(std::getenv("TEST_TMPDIR")) + "/policy.json";
  { std::ofstream(b.policy_file) << make(echo_.port(), "file-v1"); }
  StartProxy(b);
  target_port_ = echo_.port();
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "200\nLIVE\n");
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_TRUE(SendAll(fd, "x", 1));
  char c;
  ASSERT_TRUE(ReadExactly(fd, &c, 1));

  { std::ofstream(b.policy_file) << "{\"version\": 3"; }
  std::expected<void, std::string> result;
  loop_.Call([&] { result = proxy_->ReloadPolicyFile(); });
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().find(b.policy_file), std::string::npos) << result.error();
  EXPECT_NE(Http(proxy_->admin_port(), "GET", "/config_dump").find("\"version\":\"file-v1\""),
            std::string::npos);
  ASSERT_TRUE(SendAll(fd, "y", 1));  // the old policy still allows the connection
  ASSERT_TRUE(ReadExactly(fd, &c, 1));

  { std::ofstream(b.policy_file) << make(1, "file-v2"); }
  loop_.Call([&] { result = proxy_->ReloadPolicyFile(); });
  ASSERT_TRUE(result) << result.error();
  ExpectReset(fd);
  EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, filters::CloseReason::kPolicyChanged) == 1; }));
}

}  // namespace
}  // namespace picket::proxy
