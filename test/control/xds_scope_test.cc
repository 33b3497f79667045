// Scoped types on the control server (control/PROTOCOL.md §6.1), over real TLS on loopback:
// each stream sees only the resources its pod's scope has a tag of — on the initial sync, on
// churn, when its scope changes, when a resource's tags change (also while the stream lags), on
// resume, by name, and in /status. The server decides pushes synchronously inside Update and
// SetScopes, so "nothing was sent" is checked on its counters, not by waiting.
#include <gtest/gtest.h>

#include <algorithm>

#include "base/json.h"
#include "control/xds_server.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

using net::DeltaDiscoveryRequest;
using net::DeltaDiscoveryResponse;
using net::DiscoveryRequest;
using net::DiscoveryResponse;
using testing::RawClient;
using testing::RunUntil;

const std::string kAddress(net::kAddressEntryType);

std::string Payload(const std::string& text) {
  return base::JsonWriter().BeginObject().Member("value", text).EndObject().Take();
}

ScopePtr Scope(std::vector<uint32_t> tags) {
  return std::make_shared<const ResourceScope>(ResourceScope{std::move(tags)});
}

std::vector<std::string> Names(const DeltaDiscoveryResponse& r) {
  std::vector<std::string> out;
  for (const auto& resource : r.resources) out.push_back(resource.name);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class XdsScopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    pki_ = testing::TestPki::Make();
    XdsServerOptions options;
    options.scoped_types.insert(kAddress);
    auto server = XdsServer::Create(&loop_, pki_.Context(net::TlsRole::kServer, pki_.server),
                                    std::move(options));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    // a: identity 1; b: identity 2; c: identity 3 with a named-port tag.
    server_->Update(kAddress,
                    {{"default/a", "1", Payload("10.0.0.1"), {1}},
                     {"default/b", "1", Payload("10.0.0.2"), {2}},
                     {"default/c", "1", Payload("10.0.0.3"), {3, 0x80000000u}}},
                    {});
    server_->SetScopes({{"default/a", Scope({1, 2})}});
  }

  void TearDown() override {
    clients_.clear();
    bool closed = false;
    server_->Close([&closed] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    server_.reset();
    testing::DrainAndCloseLoop(&loop_);
  }

  RawClient& Connect(const std::string& pod) {
    clients_.push_back(std::make_unique<RawClient>(
        &loop_, server_->port(), pki_.Context(net::TlsRole::kClient, pki_.Pod("default", pod))));
    RawClient& c = *clients_.back();
    EXPECT_TRUE(RunUntil(&loop_, [&] { return c.ready || c.closed; }));
    return c;
  }

  // Connects `pod`, subscribes to the address map as a delta wildcard (as proxy/xds does),
  // waits for the first response and ACKs it.
  RawClient& Synced(const std::string& pod, std::map<std::string, std::string> holding = {}) {
    RawClient& c = Connect(pod);
    c.Send(DeltaDiscoveryRequest{net::Node{"test~" + pod, "default", pod, "test"},
                                 kAddress,
                                 {"*"},
                                 {},
                                 std::move(holding),
                                 "",
                                 {}});
    EXPECT_TRUE(WaitFor(c, 1));
    if (!c.Received<DeltaDiscoveryResponse>().empty()) Ack(c);
    return c;
  }

  void Ack(RawClient& c) {
    const uint64_t acks = server_->stats().acks;
    c.Send(DeltaDiscoveryRequest{
        {}, kAddress, {}, {}, {}, c.Received<DeltaDiscoveryResponse>().back().nonce, {}});
    EXPECT_TRUE(RunUntil(&loop_, [&] { return server_->stats().acks > acks; }));
  }

  bool WaitFor(RawClient& c, size_t count) {
    return RunUntil(
        &loop_, [&] { return c.Received<DeltaDiscoveryResponse>().size() >= count || c.closed; });
  }

  // The stream's subscription in /status: {last_acked_version, latest_version}.
  std::pair<std::string, std::string> Versions() {
    auto doc = base::ParseJson(server_->StatusJson());
    EXPECT_TRUE(doc.has_value());
    const auto sub = doc->root().Find("sidecars")->At(0)->Find("subscriptions")->Find(kAddress);
    EXPECT_TRUE(sub.has_value());
    if (!sub) return {};
    return {std::string(sub->Find("last_acked_version")->AsString().value_or("?")),
            std::string(sub->Find("latest_version")->AsString().value_or("?"))};
  }

  uv_loop_t loop_;
  testing::TestPki pki_;
  std::unique_ptr<XdsServer> server_;
  std::vector<std::unique_ptr<RawClient>> clients_;
};

TEST_F(XdsScopeTest, InitialSyncHoldsOnlyTheScope) {
  RawClient& a = Synced("a");
  const auto first = a.Received<DeltaDiscoveryResponse>()[0];
  EXPECT_EQ(Names(first), (std::vector<std::string>{"default/a", "default/b"}));
  EXPECT_EQ(server_->VisibleCount(kAddress, "default/a"), 2u);
  EXPECT_EQ(server_->StreamsSeeing(kAddress, "default/c"), 0u);
  EXPECT_EQ(server_->StreamsSeeing(kAddress, "default/b"), 1u);
}

// Streams of pods with one (shared) scope walk one list of what it sees, computed on the first
// sync; a change in between drops it, so a later sync sees the store as it is then.
TEST_F(XdsScopeTest, ASharedScopeSyncsEachStreamWithTheStoreAsItIsThen) {
  const ScopePtr shared = Scope({1, 2});
  server_->SetScopes({{"default/a", shared}, {"default/b", shared}, {"default/d", shared}});
  RawClient& a = Synced("a");
  EXPECT_EQ(Names(a.Received<DeltaDiscoveryResponse>()[0]),
            (std::vector<std::string>{"default/a", "default/b"}));
  RawClient& b = Synced("b");  // the same list, no change in between
  EXPECT_EQ(Names(b.Received<DeltaDiscoveryResponse>()[0]),
            (std::vector<std::string>{"default/a", "default/b"}));
  // b's entry is replaced by one the scope no longer sees, and a new one it does see arrives.
  server_->Update(
      kAddress,
      {{"default/b", "2", Payload("10.0.0.22"), {7}}, {"default/e", "1", Payload("10.0.0.5"), {2}}},
      {});
  RawClient& d = Synced("d");
  EXPECT_EQ(Names(d.Received<DeltaDiscoveryResponse>()[0]),
            (std::vector<std::string>{"default/a", "default/e"}));
  ASSERT_TRUE(WaitFor(a, 2));
  EXPECT_EQ(Names(a.Received<DeltaDiscoveryResponse>()[1]), std::vector<std::string>{"default/e"});
  EXPECT_EQ(a.Received<DeltaDiscoveryResponse>()[1].removed_resources,
            std::vector<std::string>{"default/b"});
}

TEST_F(XdsScopeTest, APodWithoutAScopeIsToldItIsInSyncWithNothing) {
  RawClient& z = Synced("z");
  ASSERT_EQ(z.Received<DeltaDiscoveryResponse>().size(), 1u);
  EXPECT_TRUE(z.Received<DeltaDiscoveryResponse>()[0].resources.empty());
  EXPECT_TRUE(z.Received<DeltaDiscoveryResponse>()[0].removed_resources.empty());
}

TEST_F(XdsScopeTest, ChurnReachesOnlyTheStreamsThatSeeIt) {
  RawClient& a = Synced("a");
  const uint64_t responses = server_->stats().responses_sent;
  server_->Update(kAddress, {{"default/e", "1", Payload("10.0.0.9"), {9}}}, {});
  server_->Update(kAddress, {{"default/c", "2", Payload("10.0.0.33"), {3, 0x80000000u}}}, {});
  server_->Update(kAddress, {}, {"default/e"});
  EXPECT_EQ(server_->stats().responses_sent, responses) << "unseen churn was pushed";
  const auto [acked, latest] = Versions();
  EXPECT_EQ(acked.size(), 16u) << acked;  // a version was ACKed (and /status has the stream)
  EXPECT_EQ(latest, acked) << "an unseen change made the stream stale";

  server_->Update(kAddress, {{"default/d", "1", Payload("10.0.0.4"), {2}}}, {"default/b"});
  ASSERT_TRUE(WaitFor(a, 2));
  const auto d = a.Received<DeltaDiscoveryResponse>()[1];
  EXPECT_EQ(Names(d), std::vector<std::string>{"default/d"});
  EXPECT_EQ(d.removed_resources, std::vector<std::string>{"default/b"});
}

TEST_F(XdsScopeTest, AScopeChangeSendsWhatEnteredAndRemovesWhatLeft) {
  RawClient& a = Synced("a");
  server_->SetScopes({{"default/a", Scope({2, 0x80000000u})}});
  ASSERT_TRUE(WaitFor(a, 2));
  const auto d = a.Received<DeltaDiscoveryResponse>()[1];
  EXPECT_EQ(Names(d), std::vector<std::string>{"default/c"});
  EXPECT_EQ(d.removed_resources, std::vector<std::string>{"default/a"});
  Ack(a);
  // An equal scope in a new object changes nothing.
  const uint64_t responses = server_->stats().responses_sent;
  server_->SetScopes({{"default/a", Scope({2, 0x80000000u})}});
  EXPECT_EQ(server_->stats().responses_sent, responses);
  // No scope at all: everything it holds is removed.
  server_->SetScopes({{"default/a", nullptr}});
  ASSERT_TRUE(WaitFor(a, 3));
  const auto gone = a.Received<DeltaDiscoveryResponse>()[2];
  EXPECT_TRUE(gone.resources.empty());
  EXPECT_EQ(Sorted(gone.removed_resources), (std::vector<std::string>{"default/b", "default/c"}));
}

TEST_F(XdsScopeTest, ARelabelledPeerIsRemovedEvenFromALaggingStream) {
  RawClient& a = Synced("a");
  // b changes identity twice (2 → 9 → 8) and a third pod appears, all while a's next response
  // is un-ACKed: a must still learn that b left its scope.
  server_->Update(kAddress, {{"default/d", "1", Payload("10.0.0.4"), {1}}}, {});
  ASSERT_TRUE(WaitFor(a, 2));
  server_->Update(kAddress, {{"default/b", "2", Payload("10.0.0.2"), {9}}}, {});
  server_->Update(kAddress, {{"default/b", "3", Payload("10.0.0.2"), {8}}}, {});
  Ack(a);
  ASSERT_TRUE(WaitFor(a, 3));
  const auto d = a.Received<DeltaDiscoveryResponse>()[2];
  EXPECT_TRUE(d.resources.empty());
  EXPECT_EQ(d.removed_resources, std::vector<std::string>{"default/b"});
}

TEST_F(XdsScopeTest, ResumeRemovesWhatTheScopeNoLongerSees) {
  // Holding a (current), c (not in a's scope): only c's removal comes, and b.
  RawClient& a = Synced("a", {{"default/a", "1"}, {"default/c", "1"}});
  const auto d = a.Received<DeltaDiscoveryResponse>()[0];
  EXPECT_EQ(Names(d), std::vector<std::string>{"default/b"});
  EXPECT_EQ(d.removed_resources, std::vector<std::string>{"default/c"});
}

TEST_F(XdsScopeTest, AnUnseenResourceLooksAbsentByNameAndInStateOfTheWorld) {
  RawClient& a = Connect("a");
  a.Send(DeltaDiscoveryRequest{
      net::Node{"test~a", "default", "a", "test"}, kAddress, {"default/c"}, {}, {}, "", {}});
  ASSERT_TRUE(WaitFor(a, 1));
  const auto d = a.Received<DeltaDiscoveryResponse>()[0];
  EXPECT_TRUE(d.resources.empty());
  EXPECT_EQ(d.removed_resources, std::vector<std::string>{"default/c"});

  RawClient& s = Connect("a");
  s.Send(DiscoveryRequest{net::Node{"test~a2", "default", "a", "test"}, "", {}, kAddress, "", {}});
  ASSERT_TRUE(RunUntil(&loop_, [&] { return !s.Received<DiscoveryResponse>().empty(); }));
  const DiscoveryResponse sotw = s.Received<DiscoveryResponse>()[0];
  std::vector<std::string> names;
  for (const auto& r : sotw.resources) names.push_back(r.name);
  EXPECT_EQ(Sorted(names), (std::vector<std::string>{"default/a", "default/b"}));
}

}  // namespace
}  // namespace picket::control
