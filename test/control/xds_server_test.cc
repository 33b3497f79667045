// Every message path of the control server over real TLS on loopback (port 0): subscribe,
// ACK, NACK, delta, resume, refusals, malformed frames, keepalive, flow control.
#include "control/xds_server.h"

#include <gtest/gtest.h>

#include "base/json.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

using net::DeltaDiscoveryRequest;
using net::DeltaDiscoveryResponse;
using net::DiscoveryRequest;
using net::DiscoveryResponse;
using net::StreamStatus;
using testing::RawClient;
using testing::RunUntil;

const std::string kPodPolicy(net::kPodPolicyType);
const std::string kAddress(net::kAddressEntryType);

std::string Payload(const std::string& text) {
  return base::JsonWriter().BeginObject().Member("value", text).EndObject().Take();
}

base::JsonDocument ParseStatus(const std::string& text) {
  auto doc = base::ParseJson(text);
  EXPECT_TRUE(doc.has_value()) << text;
  return doc ? std::move(*doc) : *base::ParseJson("{}");
}

class XdsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    pki_ = testing::TestPki::Make();
    XdsServerOptions options;
    options.own_pod_only_types.insert(kPodPolicy);
    options.max_frame_size = 4096;
    options.sweep_interval_ms = 20;
    options.handshake_timeout_ms = 300;
    auto server = XdsServer::Create(&loop_, pki_.Context(net::TlsRole::kServer, pki_.server),
                                    std::move(options));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    server_->Update(kPodPolicy,
                    {{"default/a", "v1", Payload("a1")}, {"default/b", "v1", Payload("b1")}}, {});
    server_->Update(
        kAddress,
        {{"default/a", "1", Payload("10.0.0.1")}, {"default/b", "1", Payload("10.0.0.2")}}, {});
  }

  void TearDown() override {
    clients_.clear();
    bool closed = false;
    server_->Close([&closed] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    server_.reset();
    testing::DrainAndCloseLoop(&loop_);
  }

  RawClient& Connect(const std::string& ns, const std::string& pod) {
    return ConnectWith(pki_.Context(net::TlsRole::kClient, pki_.Pod(ns, pod)));
  }
  RawClient& ConnectWith(std::shared_ptr<net::TlsContext> ctx) {
    clients_.push_back(std::make_unique<RawClient>(&loop_, server_->port(), ctx));
    RawClient& c = *clients_.back();
    EXPECT_TRUE(RunUntil(&loop_, [&] { return c.ready || c.closed; }));
    return c;
  }

  static net::Node NodeFor(const std::string& ns, const std::string& pod) {
    return {"test~" + ns + "/" + pod, ns, pod, "test"};
  }

  template <typename T>
  bool WaitFor(RawClient& c, size_t count) {
    return RunUntil(&loop_, [&] { return c.Received<T>().size() >= count || c.closed; });
  }

  uv_loop_t loop_;
  testing::TestPki pki_;
  std::unique_ptr<XdsServer> server_;
  std::vector<std::unique_ptr<RawClient>> clients_;
};

TEST_F(XdsServerTest, SotwSubscribeAckUpdateNack) {
  RawClient& c = Connect("default", "a");
  c.Send(DiscoveryRequest{NodeFor("default", "a"), "", {"default/a"}, kPodPolicy, "", {}});
  ASSERT_TRUE(WaitFor<DiscoveryResponse>(c, 1));
  auto r1 = c.Received<DiscoveryResponse>()[0];
  EXPECT_EQ(r1.type_url, kPodPolicy);
  EXPECT_EQ(r1.version_info, "v1");
  ASSERT_EQ(r1.resources.size(), 1u);
  EXPECT_EQ(r1.resources[0].name, "default/a");
  EXPECT_EQ(r1.resources[0].PayloadJson(), Payload("a1"));

  c.Send(DiscoveryRequest{{}, "v1", {"default/a"}, kPodPolicy, r1.nonce, {}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks == 1; }));

  // A change to another pod's policy is not pushed to this one.
  server_->Update(kPodPolicy, {{"default/b", "v2", Payload("b2")}}, {});
  server_->Update(kPodPolicy, {{"default/a", "v2", Payload("a2")}}, {});
  ASSERT_TRUE(WaitFor<DiscoveryResponse>(c, 2));
  auto r2 = c.Received<DiscoveryResponse>()[1];
  EXPECT_EQ(r2.version_info, "v2");
  EXPECT_EQ(r2.resources[0].PayloadJson(), Payload("a2"));
  EXPECT_NE(r2.nonce, r1.nonce);

  c.Send(
      DiscoveryRequest{{}, "v1", {"default/a"}, kPodPolicy, r2.nonce, net::Status{3, "bad rule"}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().nacks == 1; }));
  const base::JsonDocument doc = ParseStatus(server_->StatusJson());
  const base::JsonValue status = doc.root();
  const base::JsonValue sidecar = *status.Find("sidecars")->At(0);
  const auto sub = sidecar.Find("subscriptions")->Find(kPodPolicy);
  ASSERT_TRUE(sub.has_value());
  EXPECT_EQ(sub->Find("last_acked_version")->AsString(), "v1");
  EXPECT_EQ(sub->Find("last_nack")->Find("message")->AsString(), "bad rule");
  EXPECT_EQ(sub->Find("last_nack")->Find("version_info")->AsString(), "v2");
  EXPECT_EQ(sidecar.Find("node")->Find("pod")->AsString(), "a");
  EXPECT_EQ(status.Find("resources")->Find(kPodPolicy)->Find("count")->AsInt64(), 2);
}

TEST_F(XdsServerTest, NextPushWaitsForAckAndCarriesLatest) {
  RawClient& c = Connect("default", "a");
  c.Send(DiscoveryRequest{NodeFor("default", "a"), "", {}, kPodPolicy, "", {}});
  ASSERT_TRUE(WaitFor<DiscoveryResponse>(c, 1));
  server_->Update(kPodPolicy, {{"default/a", "v2", Payload("a2")}}, {});
  server_->Update(kPodPolicy, {{"default/a", "v3", Payload("a3")}}, {});
  // Nothing more until the first response is ACKed.
  RunUntil(
      &loop_, [] { return false; }, 50);
  EXPECT_EQ(c.Received<DiscoveryResponse>().size(), 1u);
  c.Send(DiscoveryRequest{{}, "v1", {}, kPodPolicy, c.Received<DiscoveryResponse>()[0].nonce, {}});
  ASSERT_TRUE(WaitFor<DiscoveryResponse>(c, 2));
  EXPECT_EQ(c.Received<DiscoveryResponse>()[1].version_info, "v3");
}

TEST_F(XdsServerTest, StaleNonceIsIgnored) {
  RawClient& c = Connect("default", "a");
  c.Send(DiscoveryRequest{NodeFor("default", "a"), "", {}, kPodPolicy, "", {}});
  ASSERT_TRUE(WaitFor<DiscoveryResponse>(c, 1));
  c.Send(DiscoveryRequest{{}, "v1", {}, kPodPolicy, "not-a-nonce", {}});
  RunUntil(
      &loop_, [] { return false; }, 50);
  EXPECT_EQ(server_->stats().acks, 0u);
  EXPECT_FALSE(c.closed);
}

TEST_F(XdsServerTest, DeltaAddressMapAddRemoveAndResume) {
  RawClient& c = Connect("default", "a");
  c.Send(DeltaDiscoveryRequest{NodeFor("default", "a"), kAddress, {"*"}, {}, {}, "", {}});
  ASSERT_TRUE(WaitFor<DeltaDiscoveryResponse>(c, 1));
  auto d1 = c.Received<DeltaDiscoveryResponse>()[0];
  EXPECT_EQ(d1.resources.size(), 2u);
  EXPECT_TRUE(d1.removed_resources.empty());
  c.Send(DeltaDiscoveryRequest{{}, kAddress, {}, {}, {}, d1.nonce, {}});

  server_->Update(kAddress, {{"default/c", "1", Payload("10.0.0.3")}}, {"default/b"});
  ASSERT_TRUE(WaitFor<DeltaDiscoveryResponse>(c, 2));
  auto d2 = c.Received<DeltaDiscoveryResponse>()[1];
  ASSERT_EQ(d2.resources.size(), 1u);
  EXPECT_EQ(d2.resources[0].name, "default/c");
  EXPECT_EQ(d2.removed_resources, std::vector<std::string>{"default/b"});
  c.Close();

  // Reconnect holding a=1 (current), b=1 (gone), c=0 (stale): only c and b's removal come.
  RawClient& again = Connect("default", "a");
  again.Send(DeltaDiscoveryRequest{NodeFor("default", "a"),
                                   kAddress,
                                   {"*"},
                                   {},
                                   {{"default/a", "1"}, {"default/b", "1"}, {"default/c", "0"}},
                                   "",
                                   {}});
  ASSERT_TRUE(WaitFor<DeltaDiscoveryResponse>(again, 1));
  auto d3 = again.Received<DeltaDiscoveryResponse>()[0];
  ASSERT_EQ(d3.resources.size(), 1u);
  EXPECT_EQ(d3.resources[0].name, "default/c");
  EXPECT_EQ(d3.removed_resources, std::vector<std::string>{"default/b"});
}

TEST_F(XdsServerTest, DeltaChangesCoalesceWhileUnackedAndLaggingStreamsResync) {
  RawClient& c = Connect("default", "a");
  c.Send(DeltaDiscoveryRequest{NodeFor("default", "a"), kAddress, {"*"}, {}, {}, "", {}});
  ASSERT_TRUE(WaitFor<DeltaDiscoveryResponse>(c, 1));
  // Three changes while the first response is un-ACKed: one response with their net effect.
  server_->Update(kAddress, {{"default/c", "1", Payload("10.0.0.3")}}, {});
  server_->Update(kAddress, {{"default/c", "2", Payload("10.0.0.4")}}, {"default/b"});
  server_->Update(kAddress, {{"default/b", "2", Payload("10.0.0.2")}}, {});
  c.Send(DeltaDiscoveryRequest{
      {}, kAddress, {}, {}, {}, c.Received<DeltaDiscoveryResponse>()[0].nonce, {}});
  ASSERT_TRUE(WaitFor<DeltaDiscoveryResponse>(c, 2));
  auto d = c.Received<DeltaDiscoveryResponse>()[1];
  ASSERT_EQ(d.resources.size(), 2u);
  EXPECT_EQ(d.resources[0].name, "default/c");
  EXPECT_EQ(d.resources[0].version, "2");
  EXPECT_EQ(d.resources[1].name, "default/b");
  EXPECT_TRUE(d.removed_resources.empty());

  // More removals than the bounded log keeps while this stream is not ACKing: it must resync.
  std::vector<XdsServer::Upsert> many;
  std::vector<std::string> names;
  for (int i = 0; i < 5000; ++i) {
    names.push_back("bulk/p" + std::to_string(i));
    many.push_back({names.back(), "1", Payload("x")});
  }
  server_->Update(kAddress, std::move(many), {});
  server_->Update(kAddress, {}, names);
  c.Send(DeltaDiscoveryRequest{{}, kAddress, {}, {}, {}, d.nonce, {}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  EXPECT_EQ(c.Received<StreamStatus>().at(0).status.code,
            static_cast<int>(net::StatusCode::kUnavailable));
}

// /status "latest_version" (what `picket-control status` compares the ACKed version with) is
// what this stream would be sent now: a change to resources it does not subscribe to leaves it
// at the ACKed version (SotW by name and delta by name); a change it must receive moves it on
// until the push is ACKed.
TEST_F(XdsServerTest, StatusLatestVersionIsWhatTheStreamWouldBeSent) {
  RawClient& c = Connect("default", "a");
  auto versions = [&](const std::string& type) {
    const base::JsonDocument doc = ParseStatus(server_->StatusJson());
    const auto sub = doc.root().Find("sidecars")->At(0)->Find("subscriptions")->Find(type);
    EXPECT_TRUE(sub.has_value()) << server_->StatusJson();
    if (!sub) return std::pair<std::string, std::string>();
    return std::pair(std::string(sub->Find("last_acked_version")->AsString().value_or("?")),
                     std::string(sub->Find("latest_version")->AsString().value_or("?")));
  };
  c.Send(DiscoveryRequest{NodeFor("default", "a"), "", {"default/a"}, kPodPolicy, "", {}});
  c.Send(DeltaDiscoveryRequest{{}, kAddress, {"default/a"}, {}, {}, "", {}});
  ASSERT_TRUE(WaitFor<DiscoveryResponse>(c, 1));
  ASSERT_TRUE(WaitFor<DeltaDiscoveryResponse>(c, 1));
  c.Send(DiscoveryRequest{
      {}, "v1", {"default/a"}, kPodPolicy, c.Received<DiscoveryResponse>()[0].nonce, {}});
  c.Send(DeltaDiscoveryRequest{
      {}, kAddress, {}, {}, {}, c.Received<DeltaDiscoveryResponse>()[0].nonce, {}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks == 2; }));
  const auto [policy_acked, policy_latest] = versions(kPodPolicy);
  EXPECT_EQ(policy_acked, "v1");
  EXPECT_EQ(policy_latest, "v1");
  const auto [address_acked, address_latest] = versions(kAddress);
  EXPECT_FALSE(address_acked.empty());
  EXPECT_EQ(address_latest, address_acked);

  // Another pod's policy and address entry change: nothing for this stream; still in sync.
  server_->Update(kPodPolicy, {{"default/b", "v2", Payload("b2")}}, {});
  server_->Update(kAddress, {{"default/b", "2", Payload("10.0.0.20")}}, {});
  EXPECT_EQ(versions(kPodPolicy), std::pair(std::string("v1"), std::string("v1")));
  EXPECT_EQ(versions(kAddress), std::pair(address_acked, address_acked));

  // Its own address entry changes: pushed, and until the ACK the latest is ahead.
  server_->Update(kAddress, {{"default/a", "2", Payload("10.0.0.10")}}, {});
  ASSERT_TRUE(WaitFor<DeltaDiscoveryResponse>(c, 2));
  const auto [acked_before, latest_before] = versions(kAddress);
  EXPECT_EQ(acked_before, address_acked);
  EXPECT_NE(latest_before, address_acked);
  c.Send(DeltaDiscoveryRequest{
      {}, kAddress, {}, {}, {}, c.Received<DeltaDiscoveryResponse>()[1].nonce, {}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks == 3; }));
  EXPECT_EQ(versions(kAddress), std::pair(latest_before, latest_before));
}

TEST_F(XdsServerTest, OtherPodsPolicyIsRefusedAndClosed) {
  RawClient& c = Connect("default", "a");
  c.Send(DiscoveryRequest{NodeFor("default", "a"), "", {"default/b"}, kPodPolicy, "", {}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  auto status = c.Received<StreamStatus>();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].status.code, static_cast<int>(net::StatusCode::kPermissionDenied));
  EXPECT_NE(status[0].status.message.find("default/b"), std::string::npos);
  EXPECT_TRUE(c.Received<DiscoveryResponse>().empty());
  EXPECT_EQ(server_->stats().streams_refused, 1u);
}

TEST_F(XdsServerTest, NodeNotMatchingCertificateIsRefused) {
  RawClient& c = Connect("default", "a");
  c.Send(DiscoveryRequest{NodeFor("default", "b"), "", {}, kPodPolicy, "", {}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  ASSERT_EQ(c.Received<StreamStatus>().size(), 1u);
  EXPECT_EQ(c.Received<StreamStatus>()[0].status.code,
            static_cast<int>(net::StatusCode::kPermissionDenied));
}

TEST_F(XdsServerTest, FirstRequestWithoutNodeIsRefused) {
  RawClient& c = Connect("default", "a");
  c.Send(DiscoveryRequest{{}, "", {}, kPodPolicy, "", {}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  EXPECT_EQ(c.Received<StreamStatus>().at(0).status.code,
            static_cast<int>(net::StatusCode::kInvalidArgument));
}

TEST_F(XdsServerTest, CertificateWithoutPodIdentityIsRefused) {
  RawClient& c = ConnectWith(pki_.Context(net::TlsRole::kClient, pki_.server));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  ASSERT_EQ(c.Received<StreamStatus>().size(), 1u);
  EXPECT_EQ(c.Received<StreamStatus>()[0].status.code,
            static_cast<int>(net::StatusCode::kUnauthenticated));
}

TEST_F(XdsServerTest, CertificateFromAnotherCaFailsTheHandshake) {
  auto other = testing::TestPki::Make();
  RawClient& c = ConnectWith(
      other.Context(net::TlsRole::kClient, other.Pod("default", "a"), pki_.ca.cert_pem));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return c.closed; }));
  EXPECT_TRUE(c.messages.empty());
  EXPECT_EQ(server_->stats().streams_active, 0u);
}

TEST_F(XdsServerTest, GarbageOversizedAndTruncatedFramesCloseOnlyThatStream) {
  RawClient& good = Connect("default", "a");
  good.Send(DiscoveryRequest{NodeFor("default", "a"), "", {}, kPodPolicy, "", {}});
  ASSERT_TRUE(WaitFor<DiscoveryResponse>(good, 1));

  RawClient& garbage = Connect("default", "b");
  garbage.SendRaw(net::EncodeFrame("{not json"));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return garbage.closed; }));
  ASSERT_EQ(garbage.Received<StreamStatus>().size(), 1u);
  EXPECT_NE(garbage.Received<StreamStatus>()[0].status.message.find("invalid JSON"),
            std::string::npos);

  RawClient& oversized = Connect("default", "b");
  oversized.SendRaw(std::string("\x00\x01\x00\x00", 4));  // 65536 > 4096
  ASSERT_TRUE(RunUntil(&loop_, [&] { return oversized.closed; }));
  EXPECT_NE(oversized.Received<StreamStatus>().at(0).status.message.find("exceeds the limit"),
            std::string::npos);

  RawClient& unknown = Connect("default", "b");
  unknown.SendRaw(net::EncodeFrame(R"({"discovery_response":{}})"));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return unknown.closed; }));
  EXPECT_EQ(unknown.Received<StreamStatus>().size(), 1u);

  RawClient& truncated = Connect("default", "b");
  truncated.SendRaw(std::string("\x00\x00\x00\x40{\"keep", 10));
  RunUntil(
      &loop_, [] { return false; }, 30);
  truncated.Close();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->stats().streams_active == 1; }));

  // The good stream is unaffected and still receives pushes.
  good.Send(
      DiscoveryRequest{{}, "v1", {}, kPodPolicy, good.Received<DiscoveryResponse>()[0].nonce, {}});
  server_->Update(kPodPolicy, {{"default/a", "v9", Payload("a9")}}, {});
  ASSERT_TRUE(WaitFor<DiscoveryResponse>(good, 2));
  EXPECT_FALSE(good.closed);
}

TEST_F(XdsServerTest, KeepaliveIsAnsweredAndSilentClientsTimeOut) {
  RawClient& c = Connect("default", "a");
  c.Send(net::Keepalive{});
  ASSERT_TRUE(WaitFor<net::Keepalive>(c, 1));
  // No request at all within the handshake timeout (300 ms): closed with a status.
  RawClient& silent = Connect("default", "b");
  ASSERT_TRUE(RunUntil(
      &loop_, [&] { return silent.closed; }, 3000));
  EXPECT_EQ(silent.Received<StreamStatus>().at(0).status.code,
            static_cast<int>(net::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace picket::control

namespace picket::control {
namespace {

TEST(XdsServerBackpressureTest, PushesWaitForQueuesToDrainAndAllArrive) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto pki = testing::TestPki::Make();
  XdsServerOptions options;
  options.max_queued_bytes = 1;  // every push after the first waits for the queues to drain
  auto server = XdsServer::Create(&loop, pki.Context(net::TlsRole::kServer, pki.server), options);
  ASSERT_TRUE(server.has_value()) << server.error().ToString();
  const std::string big = Payload(std::string(4 << 20, 'x'));  // larger than socket buffers
  (*server)->Update(std::string(net::kAddressEntryType), {{"default/a", "1", big}}, {});
  std::vector<std::unique_ptr<testing::RawClient>> clients;
  for (const char* pod : {"a", "b", "c"}) {
    clients.push_back(std::make_unique<testing::RawClient>(
        &loop, (*server)->port(), pki.Context(net::TlsRole::kClient, pki.Pod("default", pod))));
    clients.back()->Send(net::DeltaDiscoveryRequest{net::Node{pod, "default", pod, ""},
                                                    std::string(net::kAddressEntryType),
                                                    {"*"},
                                                    {},
                                                    {},
                                                    "",
                                                    {}});
  }
  ASSERT_TRUE(testing::RunUntil(
      &loop,
      [&] {
        for (auto& c : clients) {
          if (c->Received<net::DeltaDiscoveryResponse>().empty()) return false;
        }
        return true;
      },
      20000));
  for (auto& c : clients) {
    EXPECT_EQ(c->Received<net::DeltaDiscoveryResponse>()[0].resources.at(0).PayloadJson(), big);
  }
  clients.clear();
  bool closed = false;
  (*server)->Close([&] { closed = true; });
  ASSERT_TRUE(testing::RunUntil(&loop, [&] { return closed; }));
  server->reset();
  testing::DrainAndCloseLoop(&loop);
}

}  // namespace
}  // namespace picket::control
