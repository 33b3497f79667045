// The sidecar's xDS client against the real control server over TLS on loopback: subscribe,
// apply, ACK, NACK (last good kept), server restart → reconnect with backoff and resync.
#include "proxy/xds/xds_client.h"

#include <gtest/gtest.h>

#include "base/json.h"
#include "control/xds_server.h"
#include "net/host_port.h"
#include "test/control/xds_test_util.h"

namespace picket::proxy::xds {
namespace {

using testing::RunUntil;

const std::string kPodPolicy(net::kPodPolicyType);
const std::string kAddress(net::kAddressEntryType);

std::string Payload(const std::string& text) {
  return base::JsonWriter().BeginObject().Member("value", text).EndObject().Take();
}

// Applies everything except payloads whose value is "bad".
class FakeHandler : public ResourceHandler {
 public:
  base::Result<void> OnResources(const std::string& type_url,
                                 const std::vector<net::Resource>& resources,
                                 const std::vector<std::string>& removed, bool sotw) override {
    for (const auto& r : resources) {
      if (r.value.Find("value")->AsString() == "bad") {
        return std::unexpected(base::Error::Of("resource " + r.name + " is bad"));
      }
    }
    auto& held = state[type_url];
    if (sotw) held.clear();
    // Payloads arrive as views into the frame's document: parsed once, never re-serialised.
    for (const auto& r : resources) {
      EXPECT_TRUE(r.encoded.empty());
      held[r.name] = std::string(*r.value.Find("value")->AsString());
    }
    for (const auto& n : removed) held.erase(n);
    ++applied;
    return {};
  }
  std::map<std::string, std::map<std::string, std::string>> state;
  int applied = 0;
};

class XdsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    pki_ = testing::TestPki::Make();
    StartServer(0);
    server_->Update(kPodPolicy, {{"default/a", "v1", Payload("a1")}}, {});
    server_->Update(kAddress, {{"default/a", "1", Payload("10.0.0.1")}}, {});
  }

  void TearDown() override {
    if (client_) {
      bool closed = false;
      client_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      client_.reset();
    }
    StopServer();
    testing::DrainAndCloseLoop(&loop_);
  }

  void StartServer(uint16_t port) {
    control::XdsServerOptions options;
    options.own_pod_only_types.insert(kPodPolicy);
    options.listen_port = port;
    auto server = control::XdsServer::Create(
        &loop_, pki_.Context(net::TlsRole::kServer, pki_.server), std::move(options));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
  }

  void StopServer() {
    if (!server_) return;
    bool closed = false;
    server_->Close([&] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    server_.reset();
  }

  void StartClient(const std::string& server_address) {
    XdsClientOptions options;
    options.server = server_address;
    options.server_name = "localhost";
    options.tls = pki_.Context(net::TlsRole::kClient, pki_.Pod("default", "a"));
    options.node = {"test~default/a", "default", "a", "test"};
    options.subscriptions = {{kAddress, true, {}}, {kPodPolicy, false, {"default/a"}}};
    options.initial_backoff_ms = 20;
    options.max_backoff_ms = 100;
    auto client = XdsClient::Create(&loop_, std::move(options), &handler_);
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    client_ = std::move(*client);
    client_->Start();
  }

  const XdsTypeStatus& TypeStatus(const std::string& type) {
    return client_->status().types.at(type);
  }

  uv_loop_t loop_;
  testing::TestPki pki_;
  std::unique_ptr<control::XdsServer> server_;
  std::unique_ptr<XdsClient> client_;
  FakeHandler handler_;
};

TEST_F(XdsClientTest, SubscribesAppliesAndAcks) {
  StartClient("localhost:" + std::to_string(server_->port()));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks == 2; }));
  EXPECT_TRUE(client_->status().connected());
  EXPECT_EQ(handler_.state[kPodPolicy]["default/a"], "a1");
  EXPECT_EQ(handler_.state[kAddress]["default/a"], "10.0.0.1");
  EXPECT_EQ(TypeStatus(kPodPolicy).last_acked_version, "v1");

  server_->Update(kAddress, {{"default/b", "1", Payload("10.0.0.2")}}, {"default/a"});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks == 3; }));
  EXPECT_EQ(handler_.state[kAddress],
            (std::map<std::string, std::string>{{"default/b", "10.0.0.2"}}));
  EXPECT_NE(client_->PrometheusText().find("picket_xds_connected 1"), std::string::npos);
}

TEST_F(XdsClientTest, RejectedUpdateIsNackedAndLastGoodKept) {
  StartClient("127.0.0.1:" + std::to_string(server_->port()));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks == 2; }));
  server_->Update(kPodPolicy, {{"default/a", "v2", Payload("bad")}}, {});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().nacks == 1; }));
  EXPECT_EQ(handler_.state[kPodPolicy]["default/a"], "a1");
  EXPECT_EQ(TypeStatus(kPodPolicy).last_acked_version, "v1");
  EXPECT_EQ(TypeStatus(kPodPolicy).last_nack_version, "v2");
  EXPECT_EQ(TypeStatus(kPodPolicy).last_nack_error, "resource default/a is bad");
  // The server's admin view shows the NACK.
  const auto status = base::ParseJson(server_->StatusJson());
  ASSERT_TRUE(status.has_value());
  const auto sub = status->root().Find("sidecars")->At(0)->Find("subscriptions")->Find(kPodPolicy);
  ASSERT_TRUE(sub.has_value());
  EXPECT_EQ(sub->Find("last_nack")->Find("message")->AsString(), "resource default/a is bad");
  EXPECT_EQ(sub->Find("last_acked_version")->AsString(), "v1");
  // The client's own status is JSON too.
  const auto own = base::ParseJson(client_->StatusJson());
  ASSERT_TRUE(own.has_value()) << client_->StatusJson();
  EXPECT_EQ(own->root().Find("types")->Find(kPodPolicy)->Find("nacks")->AsInt64(), 1);

  server_->Update(kPodPolicy, {{"default/a", "v3", Payload("a3")}}, {});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return handler_.state[kPodPolicy]["default/a"] == "a3"; }));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return TypeStatus(kPodPolicy).last_acked_version == "v3"; }));
}

TEST_F(XdsClientTest, ServerRestartKeepsStateThenResyncs) {
  const uint16_t port = server_->port();
  StartClient("127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks == 2; }));
  const int applied = handler_.applied;

  StopServer();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return !client_->status().connected(); }));
  // Several failed attempts while the server is down; nothing is un-applied.
  ASSERT_TRUE(RunUntil(&loop_, [&] { return client_->status().connect_failures >= 2; }));
  EXPECT_EQ(handler_.state[kPodPolicy]["default/a"], "a1");
  EXPECT_EQ(client_->status().disconnects, 1u);

  StartServer(port);
  server_->Update(kPodPolicy, {{"default/a", "v1", Payload("a1")}}, {});
  server_->Update(
      kAddress, {{"default/a", "1", Payload("10.0.0.1")}, {"default/c", "1", Payload("10.0.0.3")}},
      {});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return client_->status().connects == 2; }));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return handler_.state[kAddress].contains("default/c"); }));
  // Resume: neither the delta entry nor the SotW policy the client already held was resent.
  EXPECT_EQ(server_->stats().resources_sent, 1u);  // default/c
  EXPECT_EQ(server_->stats().resources_skipped_on_resume, 2u);
  EXPECT_EQ(server_->stats().subscriptions_resumed, 1u);  // the policy: nothing to send
  EXPECT_GT(handler_.applied, applied);
}

TEST_F(XdsClientTest, UnreachableServerBacksOff) {
  StopServer();
  StartClient("127.0.0.1:1");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return client_->status().connect_failures >= 3; }));
  EXPECT_FALSE(client_->status().connected());
  EXPECT_FALSE(client_->status().last_error.empty());
}

TEST(BackoffTest, ExponentialCappedAndJittered) {
  EXPECT_EQ(BackoffDelayMs(0, 250, 30000, 0.0), 125u);
  EXPECT_EQ(BackoffDelayMs(0, 250, 30000, 0.999999), 249u);
  EXPECT_EQ(BackoffDelayMs(3, 250, 30000, 0.0), 1000u);
  EXPECT_EQ(BackoffDelayMs(20, 250, 30000, 0.0), 15000u);
  EXPECT_EQ(BackoffDelayMs(1000, 250, 30000, 0.5), 22500u);
}

TEST(SplitHostPortTest, ParsesAndRejects) {
  EXPECT_EQ(net::SplitHostPort("picket-control.picket-system.svc:15012").value(),
            std::make_pair(std::string("picket-control.picket-system.svc"), uint16_t{15012}));
  EXPECT_EQ(net::SplitHostPort("[::1]:80").value(),
            std::make_pair(std::string("::1"), uint16_t{80}));
  EXPECT_FALSE(net::SplitHostPort("host").has_value());
  EXPECT_FALSE(net::SplitHostPort("::1:80").has_value());
  EXPECT_FALSE(net::SplitHostPort("host:0").has_value());
  EXPECT_EQ(net::SplitHostPort("127.0.0.1:0", true).value().second, 0);
  EXPECT_FALSE(net::SplitHostPort("host:65536").has_value());
  EXPECT_FALSE(net::SplitHostPort("host:8x").has_value());
}

TEST(ResolverTest, ResolvesLocalhostAndLiterals) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto resolver = Resolver::Create(&loop);
  ASSERT_TRUE(resolver.has_value()) << resolver.error().ToString();
  std::optional<base::Result<Resolver::Addresses>> result;
  (*resolver)->Resolve("localhost", 80, [&](auto r) { result = std::move(r); });
  EXPECT_FALSE(result.has_value());  // never called back from inside Resolve
  ASSERT_TRUE(RunUntil(&loop, [&] { return result.has_value(); }));
  ASSERT_TRUE(result->has_value()) << result->error().ToString();
  EXPECT_FALSE((*result)->empty());

  result.reset();
  (*resolver)->Resolve("::1", 80, [&](auto r) { result = std::move(r); });
  ASSERT_TRUE(RunUntil(&loop, [&] { return result.has_value(); }));
  ASSERT_TRUE(result->has_value());
  EXPECT_EQ((*result)->at(0).ss_family, AF_INET6);

  bool closed = false;
  (*resolver)->Close([&] { closed = true; });
  ASSERT_TRUE(RunUntil(&loop, [&] { return closed; }));
  resolver->reset();
  testing::DrainAndCloseLoop(&loop);
}

}  // namespace
}  // namespace picket::proxy::xds
