#include "proxy/flow_record.h"

#include <gtest/gtest.h>

#include "proxy/rate_limiter.h"
#include "test/filters/fake_policy.h"

namespace picket::proxy {
namespace {

FlowRecord Denied() {
  FlowRecord r;
  r.time = std::chrono::system_clock::time_point(std::chrono::nanoseconds(1692620338510175415));
  r.forwarded = false;
  r.close_reason = filters::CloseReason::kPolicyDenied;
  r.direction = filters::Direction::kOutbound;
  r.source = {*policy::IpAddress::Parse("10.0.0.1"), 44916};
  r.destination = {*policy::IpAddress::Parse("10.0.0.5"), 80};
  r.connection_id = 7;
  r.policies = {"default/deny-all"};
  r.detail = "none of the rules of default/deny-all matched";
  return r;
}

TEST(FlowRecordTest, DeniedEgressInHubbleShape) {
  auto policy =
      std::make_shared<testing::FakePolicy>("v1", std::set<uint16_t>{}, std::set<uint16_t>{});
  policy->AddPeer("10.0.0.5", policy::PeerInfo{"prod", "db-0", {{"app", "db"}}});
  FlowRecord r = Denied();
  r.policy = policy;
  std::string json = FlowRecordJson(r, NodeIdentity{"default", "client"});
  EXPECT_EQ(json,
            "{\"flow\":{\"time\":\"2023-08-21T12:18:58.510175415Z\",\"verdict\":\"DROPPED\","
            "\"drop_reason_desc\":\"POLICY_DENIED\",\"traffic_direction\":\"EGRESS\","
            "\"IP\":{\"source\":\"10.0.0.1\",\"destination\":\"10.0.0.5\",\"ipVersion\":\"IPv4\"},"
            "\"l4\":{\"TCP\":{\"source_port\":44916,\"destination_port\":80}},"
            "\"source\":{\"namespace\":\"default\",\"pod_name\":\"client\"},"
            "\"destination\":{\"namespace\":\"prod\",\"pod_name\":\"db-0\","
            "\"labels\":[\"k8s:app=db\"]},"
            "\"node_name\":\"default/client\",\"is_reply\":false,\"Type\":\"L3_L4\","
            "\"egress_denied_by\":[{\"namespace\":\"default\",\"name\":\"deny-all\"}],"
            "\"close_reason\":\"policy_denied\","
            "\"policy_detail\":\"none of the rules of default/deny-all matched\","
            "\"connection_id\":7},\"node_name\":\"default/client\","
            "\"time\":\"2023-08-21T12:18:58.510175415Z\"}");
}

TEST(FlowRecordTest, ForwardedIngressV6CarriesBytesAndDuration) {
  FlowRecord r = Denied();
  r.forwarded = true;
  r.close_reason = filters::CloseReason::kNormal;
  r.direction = filters::Direction::kInbound;
  r.source = {*policy::IpAddress::Parse("fd00::1"), 5000};
  r.destination = {*policy::IpAddress::Parse("fd00::2"), 8080};
  r.bytes_to_destination = 10;
  r.bytes_to_source = 20;
  r.duration = std::chrono::milliseconds(3);
  r.relayed = true;
  r.policies = {"default/allow-web"};
  std::string json = FlowRecordJson(r, NodeIdentity{"default", "web"});
  EXPECT_NE(json.find("\"verdict\":\"FORWARDED\""), std::string::npos);
  EXPECT_EQ(json.find("drop_reason_desc"), std::string::npos);
  EXPECT_NE(json.find("\"traffic_direction\":\"INGRESS\""), std::string::npos);
  EXPECT_NE(json.find("\"ipVersion\":\"IPv6\""), std::string::npos);
  EXPECT_NE(json.find("\"destination\":{\"namespace\":\"default\",\"pod_name\":\"web\"}"),
            std::string::npos);
  EXPECT_EQ(json.find("\"source\":{"), std::string::npos);  // unknown peer: omitted
  EXPECT_NE(
      json.find("\"ingress_allowed_by\":[{\"namespace\":\"default\",\"name\":\"allow-web\"}]"),
      std::string::npos);
  EXPECT_NE(json.find("\"bytes\":{\"to_destination\":10,\"to_source\":20}"), std::string::npos);
  EXPECT_NE(json.find("\"duration_ns\":3000000"), std::string::npos);
}

TEST(FlowRecordTest, OtherDropReasonsUseTheirNames) {
  FlowRecord r = Denied();
  r.close_reason = filters::CloseReason::kNoPolicyYet;
  r.policies.clear();
  std::string json = FlowRecordJson(r, NodeIdentity{"default", "client"});
  EXPECT_NE(json.find("\"drop_reason_desc\":\"NO_POLICY_YET\""), std::string::npos);
  EXPECT_NE(json.find("\"close_reason\":\"no_policy_yet\""), std::string::npos);
}

TEST(FlowRecordTest, UdpAndSctpFlowsNameTheirL4) {
  FlowRecord r = Denied();
  for (auto [protocol, name] :
       {std::pair{config::Protocol::kUDP, "UDP"}, std::pair{config::Protocol::kSCTP, "SCTP"}}) {
    r.protocol = protocol;
    std::string json = FlowRecordJson(r, NodeIdentity{"default", "client"});
    EXPECT_NE(json.find(std::string("\"l4\":{\"") + name +
                        "\":{\"source_port\":44916,\"destination_port\":80}}"),
              std::string::npos)
        << json;
    EXPECT_EQ(json.find("\"TCP\""), std::string::npos);
  }
}

TEST(FlowRecordTest, SuppressedRecord) {
  auto t = std::chrono::system_clock::time_point(std::chrono::seconds(0));
  SuppressedSummary summary;
  summary.total = 42;
  summary.by_reason[static_cast<size_t>(SuppressReason::kPerSource)] = 40;
  summary.by_reason[static_cast<size_t>(SuppressReason::kGlobalBytes)] = 2;
  summary.top_sources = {{"10.0.0.9", 40}};
  summary.interval_ms = 1000;
  EXPECT_EQ(SuppressedJson(t, summary, NodeIdentity{"ns", "p"}),
            "{\"suppressed\":42,\"by_reason\":{\"per_source\":40,\"global_bytes\":2},"
            "\"top_sources\":[{\"source\":\"10.0.0.9\",\"count\":40}],\"interval_ms\":1000,"
            "\"node_name\":\"ns/p\",\"time\":\"1970-01-01T00:00:00.000000000Z\"}");
}

TEST(FlowRecordTest, PolicyChangedRecord) {
  auto t = std::chrono::system_clock::time_point(std::chrono::seconds(0));
  RevocationSummary summary;
  summary.policy_version = "v2";
  summary.count = 500;
  summary.policies = {"default/allow-web"};
  summary.sample = {Denied()};
  std::string json = PolicyChangedJson(t, summary, NodeIdentity{"ns", "p"});
  EXPECT_EQ(json.rfind("{\"policy_changed\":{\"count\":500,\"policy_version\":\"v2\","
                       "\"policies\":[\"default/allow-web\"],\"sample\":[{\"flow\":{",
                       0),
            0u)
      << json;
  EXPECT_NE(json.find("\"connection_id\":7"), std::string::npos);
  EXPECT_NE(json.find("]},\"verdict\":\"DROPPED\",\"close_reason\":\"policy_changed\","
                      "\"node_name\":\"ns/p\",\"time\":\"1970-01-01T00:00:00.000000000Z\"}"),
            std::string::npos)
      << json;
}

TEST(WindowBudgetTest, ReserveIsOnlyForFirstSeen) {
  WindowBudget budget(8, 2);
  auto t0 = WindowBudget::Clock::time_point(std::chrono::seconds(3));
  for (int i = 0; i < 6; ++i) EXPECT_TRUE(budget.Take(1, false, t0));
  EXPECT_FALSE(budget.Take(1, false, t0));  // the last 2 are reserved
  EXPECT_TRUE(budget.Take(1, true, t0));
  EXPECT_TRUE(budget.Take(1, true, t0));
  EXPECT_FALSE(budget.Take(1, true, t0));  // the limit holds for everyone
  EXPECT_FALSE(budget.Take(1, false, t0 + std::chrono::milliseconds(999)));
  EXPECT_TRUE(budget.Take(6, false, t0 + std::chrono::seconds(1)));  // a new window
}

TEST(TupleSetTest, MemoryIsBoundedAndLeastRecentIsEvicted) {
  TupleSet set(100);
  EXPECT_EQ(set.MemoryBound(), 100 * TupleSet::kBytesPerEntry);
  auto tuple = [](int i) {
    FlowTuple t;
    t.source = *policy::IpAddress::Parse("2001:db8::1");
    t.source.bytes[12] = static_cast<uint8_t>(i >> 16);
    t.source.bytes[13] = static_cast<uint8_t>(i >> 8);
    t.source.bytes[14] = static_cast<uint8_t>(i);
    t.destination = *policy::IpAddress::Parse("10.0.0.5");
    t.port = 80;
    return t;
  };
  for (int i = 0; i < 100000; ++i) {
    set.Insert(tuple(i));
    ASSERT_LE(set.size(), 100u);
  }
  EXPECT_EQ(set.size(), 100u);
  EXPECT_TRUE(set.Contains(tuple(99999)));
  EXPECT_TRUE(set.Contains(tuple(99900)));
  EXPECT_FALSE(set.Contains(tuple(99899)));
  set.Insert(tuple(99900));  // touched: now most recent
  set.Insert(tuple(200000));
  EXPECT_TRUE(set.Contains(tuple(99900)));
  EXPECT_FALSE(set.Contains(tuple(99901)));  // the least recent went
  FlowTuple other_port = tuple(99999);
  other_port.port = 443;
  EXPECT_FALSE(set.Contains(other_port));
}

TEST(RateLimiterTest, BurstThenRefillPerSource) {
  RateLimiter limiter(3);
  auto t0 = RateLimiter::Clock::time_point(std::chrono::seconds(100));
  auto a = *policy::IpAddress::Parse("10.0.0.1");
  auto b = *policy::IpAddress::Parse("10.0.0.2");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Allow(a, t0));
  EXPECT_FALSE(limiter.Allow(a, t0));
  EXPECT_FALSE(limiter.Allow(a, t0));
  EXPECT_TRUE(limiter.Allow(b, t0));  // another source has its own bucket
  auto suppressed = limiter.TakeSuppressed(t0);
  ASSERT_EQ(suppressed.size(), 1u);
  EXPECT_EQ(suppressed[0].first, a);
  EXPECT_EQ(suppressed[0].second, 2u);
  EXPECT_TRUE(limiter.TakeSuppressed(t0).empty());                     // counts are taken once
  EXPECT_TRUE(limiter.Allow(a, t0 + std::chrono::milliseconds(400)));  // 1.2 tokens refilled
  EXPECT_FALSE(limiter.Allow(a, t0 + std::chrono::milliseconds(400)));
}

TEST(RateLimiterTest, MemoryIsBoundedAndIdleSourcesForgotten) {
  RateLimiter limiter(1, 100);
  auto t0 = RateLimiter::Clock::time_point(std::chrono::seconds(5));
  for (int i = 0; i < 1000; ++i) {
    policy::IpAddress ip;
    ip.bytes[0] = 10;
    ip.bytes[2] = static_cast<uint8_t>(i >> 8);
    ip.bytes[3] = static_cast<uint8_t>(i);
    limiter.Allow(ip, t0);
  }
  EXPECT_LE(limiter.sources(), 100u);
  limiter.TakeSuppressed(t0 + std::chrono::seconds(10));
  EXPECT_EQ(limiter.sources(), 0u);
}

}  // namespace
}  // namespace picket::proxy
