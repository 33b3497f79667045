#include "net/json.h"

#include <gtest/gtest.h>

namespace picket::net {
namespace {

TEST(JsonTest, RoundTripsSortedAndEscaped) {
  auto j =
      ParseJson(R"( {"b": [1, 2.5, -3e2, true, false, null], "a": "x\"\\\n\u00e9\ud83d\ude00"} )");
  ASSERT_TRUE(j.has_value()) << j.error();
  EXPECT_EQ(j->Serialize(),
            "{\"a\":\"x\\\"\\\\\\n\xc3\xa9\xf0\x9f\x98\x80\",\"b\":[1,2.5,-300,true,false,null]}");
  auto again = ParseJson(j->Serialize());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *j);
}

TEST(JsonTest, IntegerAccess) {
  auto j = ParseJson("[7, 7.5, -1, 1e3]");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(j->as_array()[0].as_int(0, 10), 7);
  EXPECT_FALSE(j->as_array()[1].as_int(0, 10).has_value());
  EXPECT_FALSE(j->as_array()[2].as_int(0, 10).has_value());
  EXPECT_EQ(j->as_array()[3].as_int(0, 1000), 1000);
}

struct BadCase {
  const char* text;
  const char* error;
};

TEST(JsonTest, RejectsWithOffsetAndReason) {
  const BadCase cases[] = {
      {"", "offset 0: unexpected end of input, expected a value"},
      {"{\"a\":1,}", "offset 7: expected a string key"},
      {"[1,]", "offset 3: unexpected character, expected a value"},
      {"{\"a\":1,\"a\":2}", "offset 0: duplicate object key \"a\""},
      {"01", "offset 1: unexpected trailing data after the JSON value"},
      {"\"abc", "offset 4: unterminated string"},
      {"\"\x01\"", "offset 1: control character in string"},
      {"\"\xff\"", "offset 1: invalid UTF-8 in string"},
      {"\"\xc0\xaf\"", "offset 1: invalid UTF-8 in string"},
      {"\"\\ud800\"", "offset 7: unpaired high surrogate"},
      {"\"\\q\"", "offset 2: invalid escape character"},
      {"tru", "offset 0: invalid literal"},
      {"1e999", "offset 0: number out of range"},
      {"[1 2]", "offset 3: expected ',' or ']' in an array"},
      {"// x\n1", "offset 0: unexpected character, expected a value"},
  };
  for (const auto& c : cases) {
    auto j = ParseJson(c.text);
    ASSERT_FALSE(j.has_value()) << c.text;
    EXPECT_EQ(j.error(), c.error) << c.text;
  }
}

TEST(JsonTest, BoundsNesting) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto j = ParseJson(deep);
  ASSERT_FALSE(j.has_value());
  EXPECT_NE(j.error().find("nesting too deep"), std::string::npos);
  EXPECT_TRUE(ParseJson(deep, {.max_depth = 100}).has_value());
}

}  // namespace
}  // namespace picket::net
