#include "proxy/flow_record.h"

#include <gtest/gtest.h>

#include <cctype>

#include "proxy/rate_limiter.h"
#include "test/filters/fake_policy.h"
#include "test/proxy/hubble_schema.h"

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

// The uuid is random: checked for shape, then replaced so the rest compares exactly.
std::string WithoutUuid(std::string json) {
  const std::string key = "\"uuid\":\"";
  size_t at = json.find(key);
  EXPECT_NE(at, std::string::npos) << json;
  if (at == std::string::npos) return json;
  at += key.size();
  const std::string uuid = json.substr(at, 36);
  EXPECT_EQ(uuid.size(), 36u);
  for (size_t i = 0; i < uuid.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    EXPECT_TRUE(dash ? uuid[i] == '-' : std::isxdigit(static_cast<unsigned char>(uuid[i]))) << uuid;
  }
  EXPECT_EQ(uuid[14], '4') << uuid;                                          // version 4
  EXPECT_NE(std::string("89ab").find(uuid[19]), std::string::npos) << uuid;  // variant 10
  return json.replace(at, 36, "U");
}

void ExpectHubbleFlow(const std::string& json) {
  std::vector<std::string> errors = testing::CheckHubbleFlowLine(json);
  std::string all;
  for (const std::string& e : errors) all += e + "\n";
  EXPECT_TRUE(errors.empty()) << all << json;
}

TEST(FlowRecordTest, DeniedEgressInHubbleShape) {
  auto policy =
      std::make_shared<testing::FakePolicy>("v1", std::set<uint16_t>{}, std::set<uint16_t>{});
  policy->AddPeer("10.0.0.5", policy::PeerInfo{"prod", "db-0", {{"app", "db"}}});
  FlowRecord r = Denied();
  r.policy = policy;
  std::string json = FlowRecordJson(r, NodeIdentity{"default", "client", "kind-worker"});
  ExpectHubbleFlow(json);
  EXPECT_EQ(WithoutUuid(json),
            "{\"flow\":{\"time\":\"2023-08-21T12:18:58.510175415Z\",\"uuid\":\"U\","
            "\"verdict\":\"DROPPED\","
            "\"IP\":{\"source\":\"10.0.0.1\",\"destination\":\"10.0.0.5\",\"ipVersion\":\"IPv4\"},"
            "\"l4\":{\"TCP\":{\"source_port\":44916,\"destination_port\":80,"
            "\"flags\":{\"SYN\":true}}},"
            "\"source\":{\"namespace\":\"default\",\"pod_name\":\"client\"},"
            "\"destination\":{\"namespace\":\"prod\",\"labels\":[\"k8s:app=db\"],"
            "\"pod_name\":\"db-0\"},"
            "\"Type\":\"L3_L4\",\"node_name\":\"kind-worker\",\"traffic_direction\":\"EGRESS\","
            "\"drop_reason_desc\":\"POLICY_DENIED\",\"is_reply\":false,"
            "\"egress_denied_by\":[{\"name\":\"deny-all\",\"namespace\":\"default\","
            "\"kind\":\"NetworkPolicy\"}],"
            "\"extensions\":{\"@type\":\"type.googleapis.com/google.protobuf.Struct\","
            "\"value\":{\"picket\":{\"close_reason\":\"policy_denied\","
            "\"policy_detail\":\"none of the rules of default/deny-all matched\","
            "\"connection_id\":7}}}},\"node_name\":\"kind-worker\","
            "\"time\":\"2023-08-21T12:18:58.510175415Z\"}");
}

TEST(FlowRecordTest, EveryRecordHasItsOwnUuid) {
  const NodeIdentity node{"default", "client", ""};
  EXPECT_NE(FlowRecordJson(Denied(), node), FlowRecordJson(Denied(), node));
}

// Without the Kubernetes node (an old bootstrap, no downward API) node_name is left out rather
// than filled with something else.
TEST(FlowRecordTest, UnknownNodeNameIsOmitted) {
  std::string json = FlowRecordJson(Denied(), NodeIdentity{"default", "client", ""});
  ExpectHubbleFlow(json);
  EXPECT_EQ(json.find("node_name"), std::string::npos) << json;
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
  std::string json = FlowRecordJson(r, NodeIdentity{"default", "web", "n1"});
  ExpectHubbleFlow(json);
  EXPECT_NE(json.find("\"verdict\":\"FORWARDED\""), std::string::npos);
  EXPECT_EQ(json.find("drop_reason_desc"), std::string::npos);
  EXPECT_NE(json.find("\"traffic_direction\":\"INGRESS\""), std::string::npos);
  EXPECT_NE(json.find("\"ipVersion\":\"IPv6\""), std::string::npos);
  EXPECT_NE(json.find("\"flags\":{\"FIN\":true}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"destination\":{\"namespace\":\"default\",\"pod_name\":\"web\"}"),
            std::string::npos);
  EXPECT_EQ(json.find("\"source\":{"), std::string::npos);  // unknown peer: omitted
  EXPECT_NE(json.find("\"ingress_allowed_by\":[{\"name\":\"allow-web\",\"namespace\":\"default\","
                      "\"kind\":\"NetworkPolicy\"}]"),
            std::string::npos);
  EXPECT_NE(json.find("\"bytes\":{\"to_destination\":10,\"to_source\":20}"), std::string::npos);
  EXPECT_NE(json.find("\"duration_ns\":3000000"), std::string::npos);
}

// Every Picket close reason that can drop a flow maps to a DropReason of flow.proto; the others
// (which only end forwarded connections) to none.
TEST(FlowRecordTest, EveryDropReasonIsHubbles) {
  for (filters::CloseReason reason : filters::kAllCloseReasons) {
    FlowRecord r = Denied();
    r.close_reason = reason;
    r.policies.clear();
    std::string json = FlowRecordJson(r, NodeIdentity{"default", "client", "n1"});
    SCOPED_TRACE(std::string(filters::CloseReasonName(reason)));
    ExpectHubbleFlow(json);
    EXPECT_NE(
        json.find("\"close_reason\":\"" + std::string(filters::CloseReasonName(reason)) + "\""),
        std::string::npos);
    const std::string_view hubble = HubbleDropReason(reason);
    if (hubble.empty()) {
      EXPECT_EQ(json.find("drop_reason_desc"), std::string::npos);
    } else {
      EXPECT_NE(json.find("\"drop_reason_desc\":\"" + std::string(hubble) + "\""),
                std::string::npos);
    }
  }
  EXPECT_EQ(HubbleDropReason(filters::CloseReason::kNoPolicyYet),
            "NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION");
  EXPECT_EQ(HubbleDropReason(filters::CloseReason::kPolicyDenied), "POLICY_DENIED");
  EXPECT_EQ(HubbleDropReason(filters::CloseReason::kPolicyChanged), "POLICY_DENIED");
  EXPECT_EQ(HubbleDropReason(filters::CloseReason::kNormal), "");
}

TEST(FlowRecordTest, UdpAndSctpFlowsNameTheirL4) {
  FlowRecord r = Denied();
  for (auto [protocol, name] :
       {std::pair{config::Protocol::kUDP, "UDP"}, std::pair{config::Protocol::kSCTP, "SCTP"}}) {
    r.protocol = protocol;
    std::string json = FlowRecordJson(r, NodeIdentity{"default", "client", ""});
    ExpectHubbleFlow(json);
    EXPECT_NE(json.find(std::string("\"l4\":{\"") + name +
                        "\":{\"source_port\":44916,\"destination_port\":80}}"),
              std::string::npos)
        << json;
    EXPECT_EQ(json.find("\"TCP\""), std::string::npos);
  }
}

// A Service destination: Hubble's Service {name, namespace}; the ClusterIP and port, which
// flow.Service has no field for, go with Picket's facts in extensions.
TEST(FlowRecordTest, ServiceDestination) {
  FlowRecord r = Denied();
  r.destination_service = std::make_shared<filters::ServiceAddress>(
      filters::ServiceAddress{"shop/web", {*policy::IpAddress::Parse("10.96.0.10"), 80}});
  std::string json = FlowRecordJson(r, NodeIdentity{"default", "client", ""});
  ExpectHubbleFlow(json);
  EXPECT_NE(json.find("\"destination_service\":{\"name\":\"web\",\"namespace\":\"shop\"}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"service_address\":{\"ip\":\"10.96.0.10\",\"port\":80}"), std::string::npos)
      << json;
}

// The checker itself: it must reject what Hubble's schema does not have.
TEST(HubbleSchemaTest, RejectsWhatFlowProtoDoesNotHave) {
  const std::string good = FlowRecordJson(Denied(), NodeIdentity{"default", "client", "n1"});
  ASSERT_TRUE(testing::CheckHubbleFlowLine(good).empty());
  auto errors_of = [&](const std::string& from, const std::string& to) {
    std::string bad = good;
    size_t at = bad.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    bad.replace(at, from.size(), to);
    std::vector<std::string> errors = testing::CheckHubbleFlowLine(bad);
    return errors.empty() ? std::string() : errors[0];
  };
  EXPECT_EQ(errors_of("\"POLICY_DENIED\"", "\"NO_POLICY_YET\""),
            "flow.drop_reason_desc: \"NO_POLICY_YET\" is not a value of flow.DropReason");
  EXPECT_EQ(errors_of("\"is_reply\":false", "\"close_reason\":\"x\""),
            "flow.close_reason: unknown field of flow.Flow");
  EXPECT_EQ(errors_of("\"source_port\":44916", "\"source_port\":\"44916\""),
            "flow.l4.TCP.source_port: must be an integer 0..4294967295");
  EXPECT_EQ(errors_of("\"kind\":\"NetworkPolicy\"", "\"kind\":1"),
            "flow.egress_denied_by[0].kind: must be a string");
  EXPECT_EQ(errors_of("\"time\":\"2023-08-21T12:18:58.510175415Z\",\"uuid",
                      "\"time\":\"2023-08-21 12:18:58\",\"uuid"),
            "flow.time: must be an RFC 3339 UTC timestamp string");
  EXPECT_EQ(errors_of("google.protobuf.Struct", "picket.Flow"),
            "flow.extensions.@type: must be type.googleapis.com/google.protobuf.Struct");
  EXPECT_EQ(errors_of("\"flags\":{\"SYN\":true}}", "\"flags\":{\"SYN\":true}},\"UDP\":{}"),
            "flow.l4.UDP: oneof protocol already set by TCP");
}

TEST(FlowRecordTest, SuppressedRecord) {
  auto t = std::chrono::system_clock::time_point(std::chrono::seconds(0));
  SuppressedSummary summary;
  summary.total = 42;
  summary.by_reason[static_cast<size_t>(SuppressReason::kPerSource)] = 40;
  summary.by_reason[static_cast<size_t>(SuppressReason::kGlobalBytes)] = 2;
  summary.top_sources = {{"10.0.0.9", 40}};
  summary.interval_ms = 1000;
  EXPECT_EQ(SuppressedJson(t, summary, NodeIdentity{"ns", "p", ""}),
            "{\"suppressed\":42,\"by_reason\":{\"per_source\":40,\"global_bytes\":2},"
            "\"top_sources\":[{\"source\":\"10.0.0.9\",\"count\":40}],\"interval_ms\":1000,"
            "\"pod\":\"ns/p\",\"time\":\"1970-01-01T00:00:00.000000000Z\"}");
}

TEST(FlowRecordTest, PolicyChangedRecord) {
  auto t = std::chrono::system_clock::time_point(std::chrono::seconds(0));
  RevocationSummary summary;
  summary.policy_version = "v2";
  summary.count = 500;
  summary.policies = {"default/allow-web"};
  summary.sample = {Denied()};
  std::string json = PolicyChangedJson(t, summary, NodeIdentity{"ns", "p", ""});
  EXPECT_EQ(json.rfind("{\"policy_changed\":{\"count\":500,\"policy_version\":\"v2\","
                       "\"policies\":[\"default/allow-web\"],\"sample\":[{\"flow\":{",
                       0),
            0u)
      << json;
  EXPECT_NE(json.find("\"connection_id\":7"), std::string::npos);
  EXPECT_NE(json.find("]},\"verdict\":\"DROPPED\",\"close_reason\":\"policy_changed\","
                      "\"pod\":\"ns/p\",\"time\":\"1970-01-01T00:00:00.000000000Z\"}"),
            std::string::npos)
      << json;
  size_t flows = 0;
  std::vector<std::string> errors = testing::CheckHubbleFlowLog(json + "\n", &flows);
  EXPECT_TRUE(errors.empty()) << errors[0];
  EXPECT_EQ(flows, 1u);
  // With the Kubernetes node known, the summaries name it too.
  EXPECT_NE(PolicyChangedJson(t, summary, NodeIdentity{"ns", "p", "n1"})
                .find("\"pod\":\"ns/p\",\"node_name\":\"n1\",\"time\""),
            std::string::npos);
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
