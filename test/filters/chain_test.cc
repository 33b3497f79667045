#include "filters/chain.h"

#include <gtest/gtest.h>

#include "filters/close_reason.h"
#include "filters/connection_limit_filter.h"
#include "filters/policy_filter.h"
#include "test/filters/fake_policy.h"

namespace picket::filters {
namespace {

class FixedSource final : public PolicySource {
 public:
  const policy::EndpointPolicy* CurrentPolicy() const override { return policy.get(); }
  std::shared_ptr<const policy::EndpointPolicy> policy;
};

ConnectionInfo Info(Direction direction, uint16_t dst_port) {
  ConnectionInfo info;
  info.direction = direction;
  info.source = {*policy::IpAddress::Parse("10.0.0.1"), 40000};
  info.original_destination = {*policy::IpAddress::Parse("10.0.0.2"), dst_port};
  return info;
}

TEST(CloseReasonTest, NamesAreStableAndRoundTrip) {
  EXPECT_EQ(CloseReasonName(CloseReason::kPolicyDenied), "policy_denied");
  EXPECT_EQ(CloseReasonName(CloseReason::kNoPolicyYet), "no_policy_yet");
  EXPECT_EQ(CloseReasonName(CloseReason::kPolicyChanged), "policy_changed");
  for (CloseReason r : kAllCloseReasons) {
    ASSERT_EQ(ParseCloseReason(CloseReasonName(r)), r) << CloseReasonName(r);
    EXPECT_EQ(CloseReasonIndex(r), static_cast<size_t>(r));
  }
  EXPECT_FALSE(ParseCloseReason("nope").has_value());
}

TEST(PolicyFilterTest, NoPolicyFailsClosed) {
  FixedSource source;
  PolicyFilter filter(source);
  FilterResult r = filter.OnNewConnection(Info(Direction::kOutbound, 80));
  EXPECT_EQ(r.action, FilterResult::Action::kDeny);
  EXPECT_EQ(r.reason, CloseReason::kNoPolicyYet);
}

TEST(PolicyFilterTest, OutboundUsesEgressAndInboundUsesIngress) {
  FixedSource source;
  source.policy =
      std::make_shared<testing::FakePolicy>("v1", std::set<uint16_t>{80}, std::set<uint16_t>{8080});
  PolicyFilter filter(source);
  FilterResult out_ok = filter.OnNewConnection(Info(Direction::kOutbound, 80));
  EXPECT_EQ(out_ok.action, FilterResult::Action::kContinue);
  EXPECT_EQ(out_ok.policies, std::vector<std::string>{"default/egress-policy"});

  FilterResult out_denied = filter.OnNewConnection(Info(Direction::kOutbound, 8080));
  EXPECT_EQ(out_denied.action, FilterResult::Action::kDeny);
  EXPECT_EQ(out_denied.reason, CloseReason::kPolicyDenied);
  EXPECT_NE(out_denied.detail.find("none of the rules"), std::string::npos);

  EXPECT_EQ(filter.OnNewConnection(Info(Direction::kInbound, 8080)).action,
            FilterResult::Action::kContinue);
  FilterResult in_denied = filter.OnNewConnection(Info(Direction::kInbound, 80));
  EXPECT_EQ(in_denied.action, FilterResult::Action::kDeny);
  EXPECT_EQ(in_denied.policies, std::vector<std::string>{"default/ingress-policy"});
}

TEST(PolicyFilterTest, SeesTheSnapshotSwappedIntoTheSource) {
  FixedSource source;
  PolicyFilter filter(source);
  source.policy =
      std::make_shared<testing::FakePolicy>("v1", std::set<uint16_t>{80}, std::set<uint16_t>{});
  EXPECT_EQ(filter.OnNewConnection(Info(Direction::kOutbound, 80)).action,
            FilterResult::Action::kContinue);
  source.policy =
      std::make_shared<testing::FakePolicy>("v2", std::set<uint16_t>{}, std::set<uint16_t>{});
  EXPECT_EQ(filter.OnNewConnection(Info(Direction::kOutbound, 80)).reason,
            CloseReason::kPolicyDenied);
}

TEST(ConnectionLimitFilterTest, DeniesAtTheLimit) {
  std::atomic<int64_t> active{0};
  ConnectionLimitFilter filter(2, active);
  EXPECT_EQ(filter.OnNewConnection(Info(Direction::kOutbound, 80)).action,
            FilterResult::Action::kContinue);
  active = 2;
  FilterResult r = filter.OnNewConnection(Info(Direction::kOutbound, 80));
  EXPECT_EQ(r.action, FilterResult::Action::kDeny);
  EXPECT_EQ(r.reason, CloseReason::kConnectionLimit);
  active = 1;
  EXPECT_EQ(filter.OnNewConnection(Info(Direction::kOutbound, 80)).action,
            FilterResult::Action::kContinue);
}

TEST(FilterChainTest, BuildsLimitThenPolicyAndStopsAtFirstDeny) {
  FixedSource source;
  source.policy =
      std::make_shared<testing::FakePolicy>("v1", std::set<uint16_t>{80}, std::set<uint16_t>{});
  std::atomic<int64_t> active{0};
  FilterChain chain = BuildFilterChain(ChainConfig{1}, ChainDeps{&source, &active});
  EXPECT_EQ(chain.size(), 2u);
  FilterResult allowed = chain.Run(Info(Direction::kOutbound, 80));
  EXPECT_EQ(allowed.action, FilterResult::Action::kContinue);
  EXPECT_EQ(allowed.policies, std::vector<std::string>{"default/egress-policy"});

  active = 1;  // the limit is checked first: the policy is not consulted
  FilterResult limited = chain.Run(Info(Direction::kOutbound, 80));
  EXPECT_EQ(limited.reason, CloseReason::kConnectionLimit);
  EXPECT_TRUE(limited.policies.empty());
}

TEST(FilterChainTest, NoLimitFilterWhenUnlimited) {
  FixedSource source;
  FilterChain chain = BuildFilterChain(ChainConfig{0}, ChainDeps{&source, nullptr});
  EXPECT_EQ(chain.size(), 1u);
  EXPECT_EQ(chain.Run(Info(Direction::kInbound, 1)).reason, CloseReason::kNoPolicyYet);
}

}  // namespace
}  // namespace picket::filters
