#include "base/json.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace picket::base {
namespace {

JsonDocument Parse(std::string_view text, const JsonLimits& limits = {}) {
  auto doc = ParseJson(text, limits);
  EXPECT_TRUE(doc.has_value()) << (doc ? "" : doc.error().ToString());
  return std::move(*doc);
}

std::string ErrorOf(std::string_view text, const JsonLimits& limits = {}) {
  auto doc = ParseJson(text, limits);
  return doc ? "parsed" : doc.error().ToString();
}

TEST(JsonTest, AnEmptyViewWithoutDataIsAnErrorNotUndefinedBehaviour) {
  // std::string_view() has a null data(); simdjson copies from it (found by the jsonpatch
  // fuzzer under UBSan: null passed to memcpy).
  EXPECT_NE(ErrorOf(std::string_view()).find("invalid JSON"), std::string::npos);
  EXPECT_NE(ErrorOf(std::string_view("", 0)).find("invalid JSON"), std::string::npos);
}

TEST(JsonTest, ReadsEveryKind) {
  JsonDocument doc = Parse(R"( {"b": [1, 2.5, -3e2, true, false, null], "a": "x\"\\\n\u00e9"} )");
  JsonValue root = doc.root();
  ASSERT_TRUE(root.IsObject());
  EXPECT_EQ(root.size(), 2u);
  EXPECT_EQ(root.Find("a")->AsString(), "x\"\\\n\xc3\xa9");
  std::vector<JsonType> types;
  for (JsonValue v : root.Find("b")->Elements()) types.push_back(v.type());
  EXPECT_EQ(types, (std::vector<JsonType>{JsonType::kInt64, JsonType::kDouble, JsonType::kDouble,
                                          JsonType::kBool, JsonType::kBool, JsonType::kNull}));
  std::vector<std::string_view> keys;
  for (const JsonMember& m : root.Members()) keys.push_back(m.key);
  EXPECT_EQ(keys, (std::vector<std::string_view>{"b", "a"}));  // document order
  EXPECT_FALSE(root.Find("c").has_value());
  EXPECT_EQ(root.Find("b")->At(1)->AsDouble(), 2.5);
  EXPECT_FALSE(root.Find("b")->At(6).has_value());
  EXPECT_FALSE(root.At(0).has_value());
  EXPECT_FALSE(root.Find("b")->Find("x").has_value());
  EXPECT_EQ(root.ToJson(), R"({"b":[1,2.5,-300.0,true,false,null],"a":"x\"\\\n)"
                           "\xc3\xa9\"}");
}

TEST(JsonTest, IntegersAreExact) {
  // 2^53 + 1 is the first integer a double cannot hold.
  JsonDocument doc = Parse(
      "[9007199254740993, 9223372036854775807, -9223372036854775808, 18446744073709551615, "
      "-1, 3.0, 1e3]");
  std::vector<JsonValue> v;
  for (JsonValue x : doc.root().Elements()) v.push_back(x);
  ASSERT_EQ(v.size(), 7u);
  EXPECT_EQ(v[0].AsInt64(), int64_t{9007199254740993});
  EXPECT_EQ(v[1].AsInt64(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(v[2].AsInt64(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(v[3].AsInt64(), std::nullopt);
  EXPECT_EQ(v[3].AsUint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(v[3].type(), JsonType::kUint64);
  EXPECT_EQ(v[4].AsUint64(), std::nullopt);
  EXPECT_EQ(v[4].AsInt(-1, 0), -1);
  EXPECT_EQ(v[4].AsInt(0, 1), std::nullopt);
  EXPECT_EQ(v[5].AsInt64(), std::nullopt);  // a double is not an integer
  EXPECT_EQ(v[5].AsDouble(), 3.0);
  EXPECT_EQ(v[6].AsInt64(), std::nullopt);
  EXPECT_EQ(v[1].AsDouble(), 9223372036854775807.0);
  EXPECT_EQ(v[0].AsString(), std::nullopt);
  EXPECT_EQ(v[0].AsBool(), std::nullopt);
}

TEST(JsonTest, WriterRoundTripsExtremes) {
  JsonWriter w;
  w.BeginObject()
      .Member("i53", int64_t{9007199254740993})
      .Member("imax", std::numeric_limits<int64_t>::max())
      .Member("imin", std::numeric_limits<int64_t>::min())
      .Member("umax", std::numeric_limits<uint64_t>::max())
      .Key("d")
      .Double(0.1)
      .Key("whole")
      .Double(5)
      .Key("nan")
      .Double(std::numeric_limits<double>::quiet_NaN())
      .Key("list")
      .BeginArray()
      .Bool(true)
      .Null()
      .Raw(R"({"pre":"encoded"})")
      .BeginArray()
      .EndArray()
      .BeginObject()
      .EndObject()
      .EndArray()
      .Member("s", "q\"")
      .EndObject();
  const std::string text = w.Take();
  EXPECT_EQ(text,
            R"({"i53":9007199254740993,"imax":9223372036854775807,"imin":-9223372036854775808,)"
            R"("umax":18446744073709551615,"d":0.1,"whole":5.0,"nan":null,)"
            R"("list":[true,null,{"pre":"encoded"},[],{}],"s":"q\""})");
  JsonDocument doc = Parse(text);
  EXPECT_EQ(doc.root().Find("i53")->AsInt64(), int64_t{9007199254740993});
  EXPECT_EQ(doc.root().Find("umax")->AsUint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(doc.root().Find("d")->AsDouble(), 0.1);
  EXPECT_EQ(doc.root().ToJson(), text);

  JsonWriter again;
  again.BeginArray().Value(doc.root().Find("list")->Elements().begin().operator*()).EndArray();
  EXPECT_EQ(again.Take(), "[true]");
}

TEST(JsonTest, EscapesEveryControlCharacter) {
  std::string s;
  for (int c = 0; c < 0x20; ++c) s += static_cast<char>(c);
  s += "\"\\/\x7f\xc3\xa9";
  std::string out;
  AppendJsonString(out, s);
  EXPECT_EQ(out,
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
            "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018"
            "\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\/\x7f\xc3\xa9\"");
  JsonDocument doc = Parse(out);
  EXPECT_EQ(doc.root().AsString(), s);
}

TEST(JsonTest, DuplicateKeysAreKept) {
  // The field reader (json_fields.h) reports them; the document keeps what was written.
  JsonDocument doc = Parse(R"({"a":1,"a":2})");
  EXPECT_EQ(doc.root().size(), 2u);
  EXPECT_EQ(doc.root().Find("a")->AsInt64(), 1);
}

TEST(JsonTest, RejectsWithAReason) {
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"", "invalid JSON: no value (empty input)"},
      {"{\"a\":1,}", "invalid JSON: malformed structure"},
      {"[1 2]", "invalid JSON: malformed structure"},
      {"{\"a\" 1}", "invalid JSON: malformed structure"},
      {"[1] x", "invalid JSON: "},
      {"{} {}", "invalid JSON: "},
      {"\"a\xff\"", "invalid JSON: the input is not valid UTF-8"},
      {"\"\xc3\"", "invalid JSON: the input is not valid UTF-8"},
      {"\"a\tb\"", "invalid JSON: a string holds an unescaped control character"},
      {"\"\\x\"", "invalid JSON: a string has an invalid escape"},
      {"\"abc", "invalid JSON: "},
      {"tru", "invalid JSON: an invalid literal"},
      {"nul", "invalid JSON: an invalid literal"},
      {"01", "invalid JSON: an invalid number"},
      {"1.", "invalid JSON: an invalid number"},
      {"123456789012345678901234567890",
       "invalid JSON: an invalid number (or an integer beyond 64 bits)"},
      {"18446744073709551616", "invalid JSON: "},
      {"NaN", "invalid JSON: "},
      {"// comment\n1", "invalid JSON: "},
      {"'a'", "invalid JSON: "},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ErrorOf(c.text).rfind(c.error, 0), 0u) << c.text << " → " << ErrorOf(c.text);
  }
}

TEST(JsonTest, DepthLimit) {
  auto nest = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_EQ(ErrorOf(nest(64)), "parsed");
  EXPECT_EQ(ErrorOf(nest(65)), "invalid JSON: nested deeper than 64 levels");
  EXPECT_EQ(ErrorOf(nest(3), {.max_depth = 2}), "invalid JSON: nested deeper than 2 levels");
  EXPECT_EQ(ErrorOf(nest(200), {.max_depth = 300}), "parsed");
}

TEST(JsonTest, SizeLimit) {
  EXPECT_EQ(ErrorOf("[1,2,3]", {.max_bytes = 7}), "parsed");
  EXPECT_EQ(ErrorOf("[1,2,3] ", {.max_bytes = 7}), "invalid JSON: larger than 7 bytes");
}

TEST(JsonTest, ValuesSurviveMovingTheDocument) {
  JsonDocument doc = Parse(R"({"name":"a-long-enough-string-value","n":[1,2,3]})");
  JsonValue name = *doc.root().Find("name");
  std::string_view view = *name.AsString();
  JsonDocument moved = std::move(doc);
  EXPECT_EQ(view, "a-long-enough-string-value");
  EXPECT_EQ(name.AsString(), "a-long-enough-string-value");
  EXPECT_EQ(moved.root().Find("n")->size(), 3u);
}

TEST(JsonTest, DefaultValueIsNull) {
  JsonValue v;
  EXPECT_TRUE(v.IsNull());
  EXPECT_EQ(v.size(), 0u);
  EXPECT_EQ(v.ToJson(), "null");
  EXPECT_FALSE(v.Find("x").has_value());
  EXPECT_EQ(v.Elements().begin(), v.Elements().end());
  EXPECT_EQ(DescribeJsonType(JsonType::kUint64), "an integer");
}

}  // namespace
}  // namespace picket::base
