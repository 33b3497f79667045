// In-process integration: a real Proxy on loopback (port 0), real sockets, a fake policy source
// where the test needs a particular verdict, and a real policy file for the reload path. No
// redirect happens on loopback, so the original destination comes from the test (the seam in
// ProxyOptions), which points it at an echo server.
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "policy/endpoint_policy.h"
#include "proxy/proxy.h"
#include "proxy/socket_util.h"
#include "test/filters/fake_policy.h"
#include "test/proxy/hubble_schema.h"
#include "test/proxy/test_net.h"

namespace picket::proxy {
namespace {

using picket::testing::ConnectTo;
using picket::testing::FakePolicy;
using picket::testing::Http;
using picket::testing::OneShotServer;
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
  static void TearDownTestSuite() {
    // The Hubble check in TearDown must have seen flows, or it checked nothing (a whole run).
    if (::testing::GTEST_FLAG(filter) == "*") {
      EXPECT_GT(flows_checked_, 10u);
    }
  }
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }

  static std::string FlowLogPath() {
    return std::string(std::getenv("TEST_TMPDIR")) + "/flows-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".log";
  }

  static config::Bootstrap MakeBootstrap() {
    config::Bootstrap b;
    b.node.ns = "default";
    b.node.name = "client";
    b.node.ips = {"10.0.0.1"};
    b.node.node_name = "kind-worker";
    b.listeners.outbound_port = 0;
    b.listeners.inbound_port = 0;
    b.listeners.ipv6 = false;
    b.admin.port = 0;
    b.flow_log.path = FlowLogPath();
    b.flow_log.log_allowed = true;
    b.workers = 1;
    b.policy_file = "";
    return b;
  }

  // Starts the proxy with every original destination at 127.0.0.1:`target` (the seam for the
  // redirect that does not happen on loopback).
  void StartProxy(uint16_t target, config::Bootstrap b = MakeBootstrap()) {
    target_port_ = target;
    ProxyOptions options;
    options.handle_signals = false;
    options.original_destination = [this](int, bool) -> std::optional<filters::Endpoint> {
      {
        std::lock_guard<std::mutex> lock(destination_mu_);
        if (destination_) return destination_;
      }
      return filters::Endpoint{*policy::IpAddress::Parse("127.0.0.1"), target_port_.load()};
    };
    proxy_ = std::make_unique<Proxy>(std::move(b), loop_.loop(), options);
    auto started = proxy_->Start();
    ASSERT_TRUE(started) << started.error();
    loop_.Start();
  }

  // StartProxy towards the echo server, with a policy (`version`) allowing it both ways.
  void StartEchoProxy(config::Bootstrap b = MakeBootstrap(), const std::string& version = "v1") {
    ASSERT_NO_FATAL_FAILURE(StartProxy(echo_.port(), std::move(b)));
    AllowEcho(version);
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

  // Policy "v1": egress to `port` only, no ingress.
  void AllowEgressOnly(uint16_t port) {
    Apply(std::make_shared<FakePolicy>("v1", std::set<uint16_t>{port}, std::set<uint16_t>{}));
  }

  void TearDown() override {
    if (proxy_) {
      loop_.Call([&] { proxy_->Shutdown(); });
      EXPECT_EQ(loop_.StopAndClose(), 0);  // every handle closed
      proxy_.reset();
    }
    // Every flow the proxy wrote in this test is a Hubble flow (flow.proto, protojson names).
    std::ifstream in(FlowLogPath());
    if (!in) return;  // this test wrote no flow log
    std::stringstream text;
    text << in.rdbuf();
    size_t flows = 0;
    for (const std::string& e : picket::testing::CheckHubbleFlowLog(text.str(), &flows)) {
      ADD_FAILURE() << FlowLogPath() << ": " << e;
    }
    flows_checked_ += flows;
  }
  static inline size_t flows_checked_ = 0;

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

  // Expects exactly one `verdict` flow record, containing each of `parts`.
  void ExpectOneFlow(const std::string& verdict, const std::vector<std::string>& parts) {
    auto flows = WaitFlows(verdict, 1);
    ASSERT_EQ(flows.size(), 1u);
    for (const std::string& part : parts) {
      EXPECT_NE(flows[0].find(part), std::string::npos) << part << " not in " << flows[0];
    }
  }

  // Expects one connection of `direction` to end (polled) with `reason`.
  void ExpectClosed(filters::CloseReason reason,
                    filters::Direction direction = filters::Direction::kOutbound) {
    EXPECT_TRUE(WaitFor([&] { return Closed(*proxy_, reason, direction) == 1; }))
        << "no connection closed with reason " << filters::CloseReasonIndex(reason);
  }

  // Expects the connection to be reset by the proxy.
  static void ExpectReset(int fd) {
    int error = 0;
    std::string data = ReadToEnd(fd, &error);
    EXPECT_EQ(error, ECONNRESET) << "read " << data.size() << " bytes, errno " << error;
    close(fd);
  }

  // ExpectReset, then ExpectClosed.
  void ExpectResetWith(int fd, filters::CloseReason reason,
                       filters::Direction direction = filters::Direction::kOutbound) {
    ExpectReset(fd);
    ExpectClosed(reason, direction);
  }

  // Sends `message` and expects it echoed back whole.
  static void RoundTrip(int fd, const std::string& message) {
    ASSERT_TRUE(SendAll(fd, message.data(), message.size()));
    std::string back(message.size(), '\0');
    ASSERT_TRUE(ReadExactly(fd, back.data(), back.size()));
    ASSERT_EQ(back, message);
  }

  // A connection to the outbound listener in *fd, `message` echoed through it.
  void ConnectAndEcho(int* fd, const std::string& message) {
    *fd = ConnectTo(proxy_->outbound_port());
    ASSERT_GE(*fd, 0);
    RoundTrip(*fd, message);
  }

  struct Echoed {
    std::string data;
    int error = 0;  // errno of a failed read, 0 at EOF
  };

  // Opens `connections` outbound connections; on each a thread of its own writes `payload` and
  // then half-closes while the test reads everything back to EOF (the echo keeps flowing back
  // after our FIN). One result per connection, in order.
  std::vector<Echoed> EchoThrough(const std::string& payload, int connections = 1) {
    std::vector<int> fds;
    std::vector<std::thread> writers;
    for (int i = 0; i < connections; ++i) {  // connections share the worker's scratch buffer
      int fd = ConnectTo(proxy_->outbound_port());
      EXPECT_GE(fd, 0) << "connection " << i;
      fds.push_back(fd);
      if (fd < 0) continue;
      writers.emplace_back([&payload, fd] {
        EXPECT_TRUE(SendAll(fd, payload.data(), payload.size()));
        shutdown(fd, SHUT_WR);
      });
    }
    std::vector<Echoed> echoed(fds.size());
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] < 0) {
        echoed[i].error = -1;
        continue;
      }
      echoed[i].data = ReadToEnd(fds[i], &echoed[i].error);
    }
    for (auto& t : writers) t.join();
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
    return echoed;
  }

  picket::testing::LoopThread loop_;
  picket::testing::EchoServer echo_;
  std::atomic<uint16_t> target_port_{0};
  std::mutex destination_mu_;
  std::optional<filters::Endpoint> destination_;  // when set, every original destination
  std::unique_ptr<Proxy> proxy_;
};

TEST_F(ProxyTest, FailsClosedBeforeThePolicy) {
  StartProxy(echo_.port());
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "503\nPRE_INITIALIZING\n");
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ExpectResetWith(fd, filters::CloseReason::kNoPolicyYet);
  EXPECT_EQ(echo_.accepted(), 0);  // decided before any upstream connect
  ExpectOneFlow("DROPPED",
                {"\"close_reason\":\"no_policy_yet\"",
                 "\"drop_reason_desc\":\"NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION\""});
}

TEST_F(ProxyTest, AllowedRelayIsByteExactBothWaysWithHalfClose) {
  StartEchoProxy();
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "200\nLIVE\n");
  const std::string payload = picket::testing::RandomBytes(8 << 20, 42);
  const Echoed echoed = EchoThrough(payload)[0];
  EXPECT_EQ(echoed.error, 0);
  ASSERT_EQ(echoed.data.size(), payload.size());
  EXPECT_TRUE(echoed.data == payload);
  ExpectClosed(filters::CloseReason::kNormal);
  EXPECT_EQ(proxy_->stats().outbound.rx_bytes.load(), payload.size());
  EXPECT_EQ(proxy_->stats().outbound.tx_bytes.load(), payload.size());
  EXPECT_EQ(proxy_->stats().active_total.load(), 0);
  ExpectOneFlow("FORWARDED", {"\"bytes\":{\"to_destination\":8388608,\"to_source\":8388608}",
                              "\"egress_allowed_by\""});
}

TEST_F(ProxyTest, WithoutSpliceTheBufferPathIsByteExactToo) {
  config::Bootstrap b = MakeBootstrap();
  b.limits.splice = false;
  b.limits.buffer_size = 4096;  // many partial writes
  StartEchoProxy(b);
  const std::string payload = picket::testing::RandomBytes(2 << 20, 7);
  EXPECT_TRUE(EchoThrough(payload)[0].data == payload);
}

TEST_F(ProxyTest, CopyModeParksWhatItCannotSendAndSwitchesToSplice) {
  // A small buffer: reads fill it quickly (bulk → splice), and before the switch a blocked send
  // leaves bytes in the worker's scratch buffer that must be parked, not overwritten.
  config::Bootstrap b = MakeBootstrap();
  b.limits.buffer_size = 4096;
  b.workers = 1;
  StartEchoProxy(b);
  const std::string payload = picket::testing::RandomBytes(4 << 20, 9);
  for (const Echoed& echoed : EchoThrough(payload, 3)) {
    EXPECT_EQ(echoed.error, 0);
    EXPECT_TRUE(echoed.data == payload);
  }
}

TEST_F(ProxyTest, SmallMessagesKeepTheirBoundariesThroughCopyMode) {
  StartEchoProxy();
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 200; ++i) {
    ASSERT_NO_FATAL_FAILURE(RoundTrip(fd, "message " + std::to_string(i)));
  }
  close(fd);
}

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
  ASSERT_TRUE(greeter.ok());
  StartProxy(greeter.port());
  AllowEgressOnly(greeter.port());
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
  ASSERT_TRUE(answerer.ok());
  StartProxy(answerer.port());
  AllowEgressOnly(answerer.port());
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, "hello", 5));
  int error = 0;
  std::string answer = ReadToEnd(fd, &error);
  EXPECT_EQ(error, 0);
  EXPECT_TRUE(answer == picket::testing::RandomBytes(3000, 9)) << answer.size() << " bytes";
  close(fd);
  ExpectClosed(filters::CloseReason::kNormal);
}

TEST_F(ProxyTest, DeniedIsResetWithExactlyOneDroppedRecord) {
  StartProxy(echo_.port());
  AllowEgressOnly(1);
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ExpectResetWith(fd, filters::CloseReason::kPolicyDenied);
  EXPECT_EQ(echo_.accepted(), 0);
  ExpectOneFlow("DROPPED", {"\"drop_reason_desc\":\"POLICY_DENIED\"",
                            "\"egress_denied_by\":[{\"name\":\"egress-policy\","
                            "\"namespace\":\"default\",\"kind\":\"NetworkPolicy\"}]"});
  EXPECT_TRUE(Flows("FORWARDED").empty());
  EXPECT_EQ(proxy_->stats().outbound.denied.load(), 1u);
}

TEST_F(ProxyTest, InboundIsCheckedAgainstIngress) {
  StartProxy(echo_.port());
  // Egress allows the port, ingress does not: the inbound listener must deny.
  AllowEgressOnly(echo_.port());
  int fd = ConnectTo(proxy_->inbound_port());
  ASSERT_GE(fd, 0);
  ExpectResetWith(fd, filters::CloseReason::kPolicyDenied, filters::Direction::kInbound);
  ExpectOneFlow("DROPPED", {"\"traffic_direction\":\"INGRESS\""});
}

TEST_F(ProxyTest, InboundConnectsToTheAppFromThePassthroughSource) {
  StartEchoProxy();
  int fd = ConnectTo(proxy_->inbound_port());
  ASSERT_GE(fd, 0);
  ASSERT_NO_FATAL_FAILURE(RoundTrip(fd, "in"));
  close(fd);
  // 127.0.0.7: the source the capture rules never redirect again (no loop through 15006).
  EXPECT_EQ(echo_.last_peer(), "127.0.0.7");
}

TEST_F(ProxyTest, PolicyUpdateClosesWhatIsNoLongerAllowed) {
  StartEchoProxy();
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "hello"));
  Apply(std::make_shared<FakePolicy>("v2", std::set<uint16_t>{}, std::set<uint16_t>{}));
  ExpectResetWith(fd, filters::CloseReason::kPolicyChanged);
  ExpectOneFlow("DROPPED", {"\"close_reason\":\"policy_changed\"",
                            "\"bytes\":{\"to_destination\":5,\"to_source\":5}"});
}

TEST_F(ProxyTest, RecheckCanBeTurnedOff) {
  config::Bootstrap b = MakeBootstrap();
  b.recheck_on_policy_change = false;
  StartEchoProxy(b);
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "hello"));
  Apply(std::make_shared<FakePolicy>("v2", std::set<uint16_t>{}, std::set<uint16_t>{}));
  // New connections see the new policy ...
  int denied = ConnectTo(proxy_->outbound_port());
  ExpectReset(denied);
  // ... the established one keeps working.
  ASSERT_NO_FATAL_FAILURE(RoundTrip(fd, "again"));
  close(fd);
}

TEST_F(ProxyTest, PolicyForAnotherPodIsRejectedAndTheOldOneStays) {
  StartEchoProxy();
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
  const uint16_t nobody = picket::testing::UnusedLoopbackPort();
  ASSERT_NE(nobody, 0);
  StartProxy(nobody);
  AllowEgressOnly(nobody);
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ExpectResetWith(fd, filters::CloseReason::kUpstreamConnectFailed);
}

TEST_F(ProxyTest, ConnectionToItsOwnListenerIsRefusedNotLooped) {
  StartProxy(0);
  AllowEcho();
  target_port_ = proxy_->outbound_port();
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  ExpectResetWith(fd, filters::CloseReason::kLoopDetected);
  EXPECT_EQ(proxy_->stats().outbound.accepted.load(), 1u);  // one accept, no loop
}

// A non-loopback address of this namespace (as the pod's IP is in a pod), if there is one.
std::optional<policy::IpAddress> SomeInterfaceAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<policy::IpAddress> found;
  for (const ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, i->ifa_addr, sizeof(sockaddr_in));
    policy::IpAddress a = EndpointFromSockaddr(ss).address;
    if (!IsLoopbackOrUnspecified(a)) found = a;
  }
  freeifaddrs(list);
  return found;
}

TEST_F(ProxyTest, EveryLocalAddressOnAListenerPortIsRefusedNotLooped) {
  StartProxy(0);
  // Policy allows both listener ports: only the loop check stands between them and a relay.
  Apply(std::make_shared<FakePolicy>(
      "v1", std::set<uint16_t>{proxy_->outbound_port(), proxy_->inbound_port()},
      std::set<uint16_t>{}));
  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  std::vector<policy::IpAddress> local = {
      *policy::IpAddress::Parse("::7"),      *policy::IpAddress::Parse("127.0.0.7"),
      policy::IpAddress::V6(mapped),         *policy::IpAddress::Parse("::"),
      *policy::IpAddress::Parse("0.0.0.0"),  *policy::IpAddress::Parse("::1"),
      *policy::IpAddress::Parse("10.0.0.1"),  // the bootstrap's node.ips
  };
  if (auto own = SomeInterfaceAddress()) local.push_back(*own);
  uint64_t n = 0;
  for (const policy::IpAddress& address : local) {
    for (uint16_t port : {proxy_->outbound_port(), proxy_->inbound_port()}) {
      SCOPED_TRACE(address.ToString() + " port " + std::to_string(port));
      {
        std::lock_guard<std::mutex> lock(destination_mu_);
        destination_ = filters::Endpoint{address, port};
      }
      int fd = ConnectTo(proxy_->outbound_port());
      ASSERT_GE(fd, 0);
      ExpectReset(fd);
      ++n;
      EXPECT_TRUE(WaitFor([&] {
        return Closed(*proxy_, filters::CloseReason::kLoopDetected) == n;
      })) << Closed(*proxy_, filters::CloseReason::kLoopDetected);
      EXPECT_EQ(proxy_->stats().outbound.accepted.load(), n);  // one accept each, no loop
    }
  }
}

TEST(LocalAddressTest, LoopbackUnspecifiedMappedAndInterfaceAddressesAreLocal) {
  for (const char* text : {"127.0.0.1", "127.0.0.7", "127.255.0.9", "0.0.0.0", "::", "::1"}) {
    EXPECT_TRUE(IsLoopbackOrUnspecified(*policy::IpAddress::Parse(text))) << text;
    EXPECT_TRUE(IsLocalAddress(*policy::IpAddress::Parse(text))) << text;
  }
  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 7};
  EXPECT_TRUE(IsLoopbackOrUnspecified(policy::IpAddress::V6(mapped)));
  for (const char* text : {"::7", "10.0.0.1", "192.0.2.1", "2001:db8::1", "::2"}) {
    EXPECT_FALSE(IsLoopbackOrUnspecified(*policy::IpAddress::Parse(text))) << text;
  }
  EXPECT_FALSE(IsLocalAddress(*policy::IpAddress::Parse("192.0.2.1")));  // TEST-NET-1
  EXPECT_FALSE(IsLocalAddress(*policy::IpAddress::Parse("2001:db8::1")));
  if (auto own = SomeInterfaceAddress()) {
    EXPECT_TRUE(IsLocalAddress(*own)) << own->ToString();
  }
}

TEST_F(ProxyTest, IdleConnectionsAreClosed) {
  config::Bootstrap b = MakeBootstrap();
  b.timeouts.idle = std::chrono::milliseconds(150);
  StartEchoProxy(b);
  int fd = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(fd, 0);
  int error = 0;
  ReadToEnd(fd, &error);  // returns when the proxy closes
  close(fd);
  ExpectClosed(filters::CloseReason::kIdleTimeout);
  EXPECT_NE(Http(proxy_->admin_port(), "GET", "/stats/prometheus")
                .find("envoy_tcp_idle_timeout{envoy_tcp_prefix=\"outbound\"} 1\n"),
            std::string::npos);
}

TEST_F(ProxyTest, ConnectionLimit) {
  config::Bootstrap b = MakeBootstrap();
  b.limits.max_connections = 1;
  StartEchoProxy(b);
  int first = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&first, "hi"));
  int second = ConnectTo(proxy_->outbound_port());
  ASSERT_GE(second, 0);
  ExpectResetWith(second, filters::CloseReason::kConnectionLimit);
  close(first);
}

TEST_F(ProxyTest, TwoWorkersShareThePortsWithReusePort) {
  config::Bootstrap b = MakeBootstrap();
  b.workers = 2;
  StartEchoProxy(b);
  for (int i = 0; i < 20; ++i) {
    int fd = -1;
    ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "abc"));
    close(fd);
  }
  EXPECT_EQ(proxy_->stats().outbound.accepted.load(), 20u);
}

TEST_F(ProxyTest, ShutdownStopsAcceptingAndDrains) {
  StartEchoProxy();
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "ping"));
  uint16_t port = proxy_->outbound_port();
  loop_.Call([&] { proxy_->Shutdown(); });
  EXPECT_TRUE(WaitFor([&] { return ConnectTo(port) < 0; }));  // listeners closed
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "503\nDRAINING\n");
  // The established connection still works until it ends on its own.
  ASSERT_NO_FATAL_FAILURE(RoundTrip(fd, "pong"));
  shutdown(fd, SHUT_WR);
  int error = 0;
  ReadToEnd(fd, &error);
  close(fd);
  EXPECT_EQ(error, 0);
  ExpectClosed(filters::CloseReason::kNormal);
  EXPECT_EQ(loop_.StopAndClose(), 0);  // the proxy closed everything by itself
  proxy_.reset();
}

TEST_F(ProxyTest, DrainTimeoutClosesWhatRemains) {
  config::Bootstrap b = MakeBootstrap();
  b.timeouts.drain = std::chrono::milliseconds(100);
  StartEchoProxy(b);
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "ping"));
  loop_.Call([&] { proxy_->Shutdown(); });
  ExpectResetWith(fd, filters::CloseReason::kShutdown);
  EXPECT_EQ(loop_.StopAndClose(), 0);
  proxy_.reset();
}

TEST_F(ProxyTest, AdminEndpoints) {
  StartEchoProxy(MakeBootstrap(), "v7");
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
  EXPECT_EQ(Http(admin, "GET", "/drain").substr(0, 4), "403\n");  // mutations: admin.socket
  EXPECT_EQ(Http(admin, "GET", "/flows?verdict=DROPPED"), "200\n");
}

// admin.metrics_port: the pod's address serves GET /stats/prometheus and nothing else (no admin
// verb, no dump, no help listing: it is reachable from outside the pod).
TEST_F(ProxyTest, MetricsListenerServesOnlyStatsOnThePodAddress) {
  config::Bootstrap b = MakeBootstrap();
  b.node.ips = {"127.0.0.1"};  // the pod's address, here loopback
  b.admin.metrics_port = 0;    // ephemeral (YAML accepts 1-65535 only)
  StartEchoProxy(b);
  const uint16_t metrics = proxy_->metrics_port();
  ASSERT_NE(metrics, 0);
  ASSERT_NE(metrics, proxy_->admin_port());
  const std::string stats = Http(metrics, "GET", "/stats/prometheus");
  EXPECT_EQ(stats.substr(0, 4), "200\n");
  EXPECT_NE(stats.find("# TYPE envoy_tcp_downstream_cx_total counter"), std::string::npos);
  for (const char* path :
       {"/ready", "/config_dump", "/flows", "/server_info", "/logging", "/memory", "/nope", "/"}) {
    EXPECT_EQ(Http(metrics, "GET", path),
              "404\nonly /stats/prometheus is served on the metrics port\n")
        << path;
  }
  for (const char* path : {"/quitquitquit", "/drain", "/drain_listeners", "/logging"}) {
    EXPECT_EQ(Http(metrics, "POST", path).substr(0, 4), "404\n") << path;
  }
  EXPECT_EQ(Http(metrics, "POST", "/stats/prometheus").substr(0, 4), "405\n");
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "200\nLIVE\n");  // still running
}

// No admin.metrics_port: no metrics listener.
TEST_F(ProxyTest, NoMetricsListenerByDefault) {
  StartEchoProxy();
  EXPECT_EQ(proxy_->metrics_port(), 0);
}

// One request over the Unix-domain admin socket at `path`: "status\nbody", as Http() answers.
std::string UnixHttp(const std::string& path, const std::string& method,
                     const std::string& target) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return std::string("connect failed: ") + std::strerror(errno);
  }
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  SendAll(fd, request.data(), request.size());
  int error = 0;
  std::string response = ReadToEnd(fd, &error);
  close(fd);
  size_t sp = response.find(' ');
  size_t body = response.find("\r\n\r\n");
  if (sp == std::string::npos || body == std::string::npos) return "bad response: " + response;
  return response.substr(sp + 1, 3) + "\n" + response.substr(body + 4);
}

// The app shares the pod's network namespace: the TCP admin must not let it stop its sidecar.
TEST_F(ProxyTest, DrainIsRefusedOnTcpAndServedOnTheAdminSocket) {
  config::Bootstrap b = MakeBootstrap();
  // Not under TEST_TMPDIR: a Unix socket's path must fit in sun_path (108 bytes).
  char made[] = "/tmp/picket-admin-XXXXXX";
  ASSERT_NE(mkdtemp(made), nullptr) << std::strerror(errno);
  const std::string dir = made;
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);  // as an emptyDir comes
  b.admin.socket = dir + "/admin.sock";
  StartEchoProxy(b);
  const uint16_t admin = proxy_->admin_port();
  EXPECT_EQ(Http(admin, "POST", "/drain").substr(0, 4), "403\n");
  EXPECT_EQ(Http(admin, "GET", "/ready"), "200\nLIVE\n");
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "still serving"));  // listeners stay open
  close(fd);

  // Only the proxy's uid may open it: socket 0600 in a directory narrowed to 0700, both ours.
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, geteuid());
  ASSERT_EQ(lstat(b.admin.socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());

  EXPECT_EQ(UnixHttp(b.admin.socket, "GET", "/ready"), "200\nLIVE\n");
  EXPECT_EQ(UnixHttp(b.admin.socket, "POST", "/drain"), "200\nOK\n");
  EXPECT_EQ(Http(admin, "GET", "/ready"), "503\nDRAINING\n");
  uint16_t port = proxy_->outbound_port();
  EXPECT_TRUE(WaitFor([&] { return ConnectTo(port) < 0; }));
  loop_.Call([&] { proxy_->Shutdown(); });
  EXPECT_EQ(loop_.StopAndClose(), 0);
  proxy_.reset();
  EXPECT_NE(lstat(b.admin.socket.c_str(), &st), 0);  // removed on close
  EXPECT_EQ(rmdir(dir.c_str()), 0);
}

// A Unix socket directory under /tmp (sun_path is 108 bytes; TEST_TMPDIR may be longer).
std::string AdminSocketDir() {
  char made[] = "/tmp/picket-admin-XXXXXX";
  EXPECT_NE(mkdtemp(made), nullptr) << std::strerror(errno);
  return made;
}

// Envoy's /drain_listeners?inboundonly: the inbound listener stops accepting, the outbound one
// keeps relaying; the pod reports DRAINING.
TEST_F(ProxyTest, DrainListenersInboundOnlyKeepsOutbound) {
  config::Bootstrap b = MakeBootstrap();
  const std::string dir = AdminSocketDir();
  b.admin.socket = dir + "/admin.sock";
  StartEchoProxy(b);
  const uint16_t inbound = proxy_->inbound_port();
  EXPECT_EQ(Http(proxy_->admin_port(), "POST", "/drain_listeners?inboundonly").substr(0, 4),
            "403\n");
  EXPECT_EQ(UnixHttp(b.admin.socket, "POST", "/drain_listeners?inboundonly"), "200\nOK\n");
  EXPECT_EQ(UnixHttp(b.admin.socket, "GET", "/ready"), "503\nDRAINING\n");
  EXPECT_TRUE(WaitFor([&] {
    const int fd = ConnectTo(inbound);
    if (fd >= 0) close(fd);
    return fd < 0;
  }));
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "outbound still accepts"));
  close(fd);
  loop_.Call([&] { proxy_->Shutdown(); });
  EXPECT_EQ(loop_.StopAndClose(), 0);
  proxy_.reset();
  EXPECT_EQ(rmdir(dir.c_str()), 0);
}

// ?graceful: DRAINING at once while the listeners still accept, closed once the drain time
// has passed.
TEST_F(ProxyTest, DrainListenersGracefulAcceptsUntilTheDrainTime) {
  config::Bootstrap b = MakeBootstrap();
  b.timeouts.drain = std::chrono::milliseconds(3000);
  const std::string dir = AdminSocketDir();
  b.admin.socket = dir + "/admin.sock";
  StartEchoProxy(b);
  const uint16_t outbound = proxy_->outbound_port();
  const auto posted = std::chrono::steady_clock::now();
  EXPECT_EQ(UnixHttp(b.admin.socket, "POST", "/drain_listeners?graceful"), "200\nOK\n");
  EXPECT_EQ(UnixHttp(b.admin.socket, "GET", "/ready"), "503\nDRAINING\n");
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "still accepting while draining"));
  close(fd);
  EXPECT_TRUE(WaitFor(
      [&] {
        const int c = ConnectTo(outbound);
        if (c >= 0) close(c);
        return c < 0;
      },
      std::chrono::milliseconds(20000)));
  EXPECT_GE(std::chrono::steady_clock::now() - posted, std::chrono::milliseconds(3000));
  loop_.Call([&] { proxy_->Shutdown(); });
  EXPECT_EQ(loop_.StopAndClose(), 0);
  proxy_.reset();
  EXPECT_EQ(rmdir(dir.c_str()), 0);
}

// /quitquitquit: the proxy shuts down at once (no drain time) and its loop ends by itself.
TEST_F(ProxyTest, QuitQuitQuitEndsTheLoopWithoutTheDrainTime) {
  config::Bootstrap b = MakeBootstrap();
  b.timeouts.drain = std::chrono::milliseconds(600000);
  const std::string dir = AdminSocketDir();
  b.admin.socket = dir + "/admin.sock";
  StartEchoProxy(b);
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "open while quitting"));
  EXPECT_EQ(Http(proxy_->admin_port(), "POST", "/quitquitquit").substr(0, 4), "403\n");
  EXPECT_EQ(UnixHttp(b.admin.socket, "POST", "/quitquitquit"), "200\nOK\n");
  int error = 0;
  ReadToEnd(fd, &error);  // closed by the proxy, not after ten minutes
  close(fd);
  EXPECT_EQ(loop_.StopAndClose(), 0);
  proxy_.reset();
  EXPECT_EQ(rmdir(dir.c_str()), 0);
}

// /quitquitquit during a SIGTERM drain of ten minutes ends it now.
TEST_F(ProxyTest, QuitQuitQuitCutsARunningDrainShort) {
  config::Bootstrap b = MakeBootstrap();
  b.timeouts.drain = std::chrono::milliseconds(600000);
  const std::string dir = AdminSocketDir();
  b.admin.socket = dir + "/admin.sock";
  StartEchoProxy(b);
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "open while draining"));
  loop_.Call([&] { proxy_->Shutdown(); });
  EXPECT_EQ(UnixHttp(b.admin.socket, "GET", "/ready"), "503\nDRAINING\n");
  EXPECT_EQ(UnixHttp(b.admin.socket, "POST", "/quitquitquit"), "200\nOK\n");
  int error = 0;
  ReadToEnd(fd, &error);
  close(fd);
  EXPECT_EQ(loop_.StopAndClose(), 0);
  proxy_.reset();
  EXPECT_EQ(rmdir(dir.c_str()), 0);
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
  StartProxy(echo_.port(), b);
  EXPECT_EQ(Http(proxy_->admin_port(), "GET", "/ready"), "200\nLIVE\n");
  int fd = -1;
  ASSERT_NO_FATAL_FAILURE(ConnectAndEcho(&fd, "x"));

  { std::ofstream(b.policy_file) << "{\"version\": 3"; }
  std::expected<void, std::string> result;
  loop_.Call([&] { result = proxy_->ReloadPolicyFile(); });
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().find(b.policy_file), std::string::npos) << result.error();
  EXPECT_NE(Http(proxy_->admin_port(), "GET", "/config_dump").find("\"version\":\"file-v1\""),
            std::string::npos);
  ASSERT_NO_FATAL_FAILURE(RoundTrip(fd, "y"));  // the old policy still allows the connection

  { std::ofstream(b.policy_file) << make(1, "file-v2"); }
  loop_.Call([&] { result = proxy_->ReloadPolicyFile(); });
  ASSERT_TRUE(result) << result.error();
  ExpectResetWith(fd, filters::CloseReason::kPolicyChanged);
}

}  // namespace
}  // namespace picket::proxy
