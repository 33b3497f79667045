#include "policy/selector.h"

#include <gtest/gtest.h>

#include "test/policy/cluster_builder.h"

namespace picket::policy {
namespace {

using config::SelectorOperator;
using testing::Expr;
using testing::Sel;

TEST(SelectorTest, EmptySelectorMatchesEverything) {
  EXPECT_TRUE(Matches({}, {}));
  EXPECT_TRUE(Matches({}, {{"a", "b"}}));
}

TEST(SelectorTest, Operators) {
  const config::Labels labels = {{"app", "web"}, {"tier", ""}};
  EXPECT_TRUE(Matches(Sel({{"app", "web"}}), labels));
  EXPECT_FALSE(Matches(Sel({{"app", "db"}}), labels));
  EXPECT_FALSE(Matches(Sel({{"missing", "x"}}), labels));
  EXPECT_TRUE(Matches(Sel({{"tier", ""}}), labels)) << "empty value is a value";
  EXPECT_TRUE(Matches(Expr("app", SelectorOperator::kIn, {"db", "web"}), labels));
  EXPECT_FALSE(Matches(Expr("app", SelectorOperator::kNotIn, {"db", "web"}), labels));
  EXPECT_TRUE(Matches(Expr("app", SelectorOperator::kNotIn, {"db"}), labels));
  // "NotIn: true if the key is absent".
  EXPECT_TRUE(Matches(Expr("missing", SelectorOperator::kNotIn, {"x"}), labels));
  EXPECT_TRUE(Matches(Expr("tier", SelectorOperator::kExists), labels));
  EXPECT_FALSE(Matches(Expr("missing", SelectorOperator::kExists), labels));
  EXPECT_TRUE(Matches(Expr("missing", SelectorOperator::kDoesNotExist), labels));
  EXPECT_FALSE(Matches(Expr("app", SelectorOperator::kDoesNotExist), labels));
}

TEST(SelectorTest, RequirementsAreAnded) {
  config::LabelSelector s = Sel({{"app", "web"}});
  s.requirements.push_back({"tier", SelectorOperator::kExists, {}});
  EXPECT_TRUE(Matches(s, {{"app", "web"}, {"tier", "x"}}));
  EXPECT_FALSE(Matches(s, {{"app", "web"}}));
}

TEST(SelectorTest, DescribeIsCanonical) {
  EXPECT_EQ(Describe({}), "{}");
  config::LabelSelector a = Sel({{"b", "2"}, {"a", "1"}});
  a.requirements.push_back({"c", SelectorOperator::kNotIn, {"y", "x"}});
  a.requirements.push_back({"d", SelectorOperator::kExists, {}});
  a.requirements.push_back({"e", SelectorOperator::kDoesNotExist, {}});
  a.requirements.push_back({"f", SelectorOperator::kIn, {"2", "1"}});
  EXPECT_EQ(Describe(a), "{!e, a=1, b=2, c notin (x,y), d, f in (1,2)}");
  // matchLabels k: v and matchExpressions k In [v] are the same selector.
  EXPECT_EQ(Describe(Sel({{"k", "v"}})), Describe(Expr("k", SelectorOperator::kIn, {"v"})));
}

}  // namespace
}  // namespace picket::policy
