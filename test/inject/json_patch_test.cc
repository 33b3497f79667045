// Tests inject/json_patch.h: RFC 6901 escaping, RFC 6902 operations (including the RFC's own
// examples), and that CreatePatch + ApplyPatch reproduce the mutated document.
#include "inject/json_patch.h"

#include <gtest/gtest.h>

#include "config/document.h"

namespace picket::inject {
namespace {

using config::Node;

Node J(const std::string& text) {
  auto n = config::ParseJson(text, "t");
  EXPECT_TRUE(n.has_value()) << text << ": " << (n ? "" : n.error().ToString());
  return n ? *n : Node();
}

TEST(JsonPatch, EscapesTokens) {
  EXPECT_EQ(EscapePointerToken("picket.dev/status"), "picket.dev~1status");
  EXPECT_EQ(EscapePointerToken("a~b/c"), "a~0b~1c");
}

TEST(JsonPatch, AppliesRfcExamples) {
  struct Case {
    const char* doc;
    const char* patch;
    const char* want;  // nullptr: must fail
  } cases[] = {
      {R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux"}])",
       R"({"foo":"bar","baz":"qux"})"},
      {R"({"foo":["bar","baz"]})", R"([{"op":"add","path":"/foo/1","value":"qux"}])",
       R"({"foo":["bar","qux","baz"]})"},
      {R"({"baz":"qux","foo":"bar"})", R"([{"op":"remove","path":"/baz"}])", R"({"foo":"bar"})"},
      {R"({"foo":["bar","qux","baz"]})", R"([{"op":"remove","path":"/foo/1"}])",
       R"({"foo":["bar","baz"]})"},
      {R"({"baz":"qux","foo":"bar"})", R"([{"op":"replace","path":"/baz","value":"boo"}])",
       R"({"baz":"boo","foo":"bar"})"},
      {R"({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}})",
       R"([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])",
       R"({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})"},
      {R"({"foo":["all","grass","cows","eat"]})",
       R"([{"op":"move","from":"/foo/1","path":"/foo/3"}])",
       R"({"foo":["all","cows","eat","grass"]})"},
      {R"({"baz":"qux","foo":["a",2,"c"]})",
       R"([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}])",
       R"({"baz":"qux","foo":["a",2,"c"]})"},
      {R"({"baz":"qux"})", R"([{"op":"test","path":"/baz","value":"bar"}])", nullptr},
      {R"({"foo":"bar"})", R"([{"op":"add","path":"/child","value":{"grandchild":{}}}])",
       R"({"foo":"bar","child":{"grandchild":{}}})"},
      {R"({"foo":"bar"})", R"([{"op":"add","path":"/baz/bat","value":"qux"}])", nullptr},
      {R"({"/":9,"~1":10})", R"([{"op":"test","path":"/~01","value":10}])", R"({"/":9,"~1":10})"},
      {R"({"foo":["bar"]})", R"([{"op":"add","path":"/foo/-","value":["abc","def"]}])",
       R"({"foo":["bar",["abc","def"]]})"},
      {R"({"a":[1]})", R"([{"op":"add","path":"/a/2","value":3}])", nullptr},
      {R"({"a":[1]})", R"([{"op":"add","path":"/a/01","value":3}])", nullptr},
      {R"({"a":{"b":1}})", R"([{"op":"move","from":"/a","path":"/a/b/c"}])", nullptr},
      {R"({"a":1})", R"([{"op":"frobnicate","path":"/a"}])", nullptr},
      {R"({"a":1})", R"([{"op":"add","path":"a","value":1}])", nullptr},
      {R"({"a":1})", R"({"op":"add"})", nullptr},
      {R"({"a":1})", R"([{"op":"copy","from":"/a","path":"/b"}])", R"({"a":1,"b":1})"},
  };
  for (const Case& c : cases) {
    auto r = ApplyPatch(J(c.doc), J(c.patch));
    if (c.want == nullptr) {
      EXPECT_FALSE(r.has_value()) << c.patch;
    } else {
      ASSERT_TRUE(r.has_value()) << c.patch << ": " << r.error().ToString();
      EXPECT_EQ(*r, J(c.want)) << c.patch << " gave " << config::EmitJson(*r);
    }
  }
}

TEST(JsonPatch, CreatesMissingParentsWhole) {
  Node a = J(R"({"metadata":{"name":"x"},"spec":{"containers":[{"name":"app"}]}})");
  Node b = J(R"({"metadata":{"name":"x","annotations":{"picket.dev/status":"{}"}},
                 "spec":{"containers":[{"name":"proxy"},{"name":"app"}],
                         "initContainers":[{"name":"init"}]}})");
  Node patch = CreatePatch(a, b);
  std::string json = config::EmitJson(patch);
  EXPECT_NE(
      json.find(
          R"({"op":"add","path":"/metadata/annotations","value":{"picket.dev/status":"{}"}})"),
      std::string::npos)
      << json;
  EXPECT_NE(json.find(R"({"op":"add","path":"/spec/initContainers","value":[{"name":"init"}]})"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"({"op":"add","path":"/spec/containers/0","value":{"name":"proxy"}})"),
            std::string::npos)
      << json;
  auto applied = ApplyPatch(a, patch);
  ASSERT_TRUE(applied.has_value()) << applied.error().ToString();
  EXPECT_EQ(*applied, b);
}

TEST(JsonPatch, RoundTripsAssortedChanges) {
  const char* pairs[][2] = {
      {R"([1,2,3])", R"([1,3])"},
      {R"([1,2,3])", R"([0,1,2,3,4])"},
      {R"([1,2,3])", R"(["x"])"},
      {R"({"a":{"b":[1,{"c":2}]},"d":1})", R"({"a":{"b":[1,{"c":3,"e":[]}]},"f":"g"})"},
      {R"({"a/b":1,"c~d":2})", R"({"a/b":2})"},
      {R"("x")", R"({"y":1})"},
  };
  for (const auto& p : pairs) {
    Node a = J(p[0]), b = J(p[1]);
    auto r = ApplyPatch(a, CreatePatch(a, b));
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    EXPECT_EQ(*r, b) << p[0] << " -> " << p[1];
  }
}

}  // namespace
}  // namespace picket::inject
