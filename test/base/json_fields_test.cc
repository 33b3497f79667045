#include "base/json_fields.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace picket::base {
namespace {

JsonDocument Parse(std::string_view text) {
  auto doc = ParseJson(text);
  EXPECT_TRUE(doc.has_value()) << (doc ? "" : doc.error().ToString());
  return std::move(*doc);
}

std::vector<std::string> Lines(const Errors& errors) {
  std::vector<std::string> out;
  for (const Error& e : errors) out.push_back(e.ToString());
  return out;
}

TEST(JsonFieldsTest, ReadsTypedFields) {
  JsonDocument doc =
      Parse(R"({"name":"web","port":8080,"big":18446744073709551615,"on":true,"none":null,)"
            R"("meta":{"uid":"u1"},"ips":["10.0.0.1","10.0.0.2"]})");
  Errors errors;
  JsonFields r(doc.root(), "spec", &errors);
  EXPECT_EQ(r.String("name", Need::kRequired), "web");
  EXPECT_EQ(r.Int<uint16_t>("port", Need::kRequired, 1, 65535), 8080);
  EXPECT_EQ(r.Uint64("big"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(r.Bool("on"), true);
  EXPECT_EQ(r.String("none"), std::nullopt);  // null is absent
  EXPECT_EQ(r.String("missing"), std::nullopt);
  auto meta = r.Object("meta");
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->path(), "spec.meta");
  EXPECT_EQ(meta->String("uid"), "u1");
  meta->Finish();
  std::vector<std::string> ips, paths;
  EXPECT_TRUE(r.Array("ips", Need::kRequired, [&](JsonValue v, const std::string& path) {
    ips.emplace_back(*JsonString(v, path, &errors));
    paths.push_back(path);
  }));
  EXPECT_EQ(ips, (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(paths, (std::vector<std::string>{"spec.ips[0]", "spec.ips[1]"}));
  r.Finish();
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(errors.empty()) << ToString(errors);
}

TEST(JsonFieldsTest, ReportsEveryProblem) {
  JsonDocument doc =
      Parse(R"({"name":42,"port":70000,"neg":-1,"frac":1.5,"on":"yes","meta":[1],"ips":"x",)"
            R"("extra":1,"dup":1,"dup":2,"dup":3,"long":"abcdef","ips2":[1]})");
  Errors errors;
  JsonFields r(doc.root(), "", &errors);
  EXPECT_EQ(r.String("name"), std::nullopt);
  EXPECT_EQ(r.Int<uint16_t>("port", Need::kOptional, 1, 65535), std::nullopt);
  EXPECT_EQ(r.Uint32("neg"), std::nullopt);
  EXPECT_EQ(r.Int<int>("frac"), std::nullopt);
  EXPECT_EQ(r.Bool("on"), std::nullopt);
  EXPECT_FALSE(r.Object("meta").has_value());
  EXPECT_FALSE(r.Array("ips", Need::kOptional, [](JsonValue, const std::string&) {}));
  EXPECT_EQ(r.String("required", Need::kRequired), std::nullopt);
  EXPECT_EQ(r.Value("dup")->AsInt64(), 1);
  EXPECT_EQ(r.String("long", Need::kOptional, 5), std::nullopt);
  r.Array("ips2", Need::kOptional, [&](JsonValue v, const std::string& path) {
    EXPECT_EQ(JsonInt(v, 2, 3, path, &errors), std::nullopt);
  });
  r.Finish();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(Lines(errors),
            (std::vector<std::string>{
                R"(dup: duplicate field "dup")",
                "name: Invalid value: 42: expected a string",
                "port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "neg: Invalid value: -1: must be between 0 and 4294967295, inclusive",
                "frac: Invalid value: 1.5: expected an integer",
                R"(on: Invalid value: "yes": expected a boolean)",
                "meta: Invalid value: [...]: expected an object",
                R"(ips: Invalid value: "x": expected an array)",
                "required: Required value",
                "long: Too long: may not be longer than 5 bytes",
                "ips2[0]: Invalid value: 1: must be between 2 and 3, inclusive",
                R"(extra: unknown field "extra")",
            }));
}

TEST(JsonFieldsTest, NotAnObject) {
  JsonDocument doc = Parse(R"(["a"])");
  Errors errors;
  JsonFields r(doc.root(), "spec", &errors);
  EXPECT_EQ(r.String("a", Need::kRequired), std::nullopt);  // reads nothing, reports once
  r.Finish();
  EXPECT_EQ(Lines(errors),
            (std::vector<std::string>{"spec: Invalid value: [...]: expected an object"}));
}

TEST(JsonFieldsTest, ShowsLongStringsCut) {
  JsonDocument doc = Parse("\"" + std::string(100, 'a') + "\"");
  EXPECT_EQ(ShowJson(doc.root()), "\"" + std::string(64, 'a') + "...\"");
  JsonDocument obj = Parse(R"({"a":1})");
  EXPECT_EQ(ShowJson(obj.root()), "{...}");
}

TEST(JsonFieldsTest, PathHelpers) {
  EXPECT_EQ(Child("", "a"), "a");
  EXPECT_EQ(Child("a", "b"), "a.b");
  EXPECT_EQ(Index("a", 3), "a[3]");
  EXPECT_EQ(InvalidValue("1", "why"), "Invalid value: 1: why");
}

}  // namespace
}  // namespace picket::base
