#include "net/xds_message.h"

#include <gtest/gtest.h>

namespace picket::net {
namespace {

TEST(XdsMessageTest, EveryMessageRoundTrips) {
  Json payload = Json::MakeObject();
  payload["ips"] = Json(Json::Array{Json("10.0.0.1")});
  const Message messages[] = {
      DiscoveryRequest{Node{"id", "ns", "pod", "ua"},
                       "v1",
                       {"ns/pod"},
                       std::string(kPodPolicyType),
                       "3",
                       Status{3, "bad"}},
      DiscoveryResponse{"v2", {{"ns/pod", "v2", payload}}, std::string(kPodPolicyType), "4", "cp"},
      DeltaDiscoveryRequest{Node{"id", "ns", "pod", ""},
                            std::string(kAddressEntryType),
                            {"*"},
                            {"x/y"},
                            {{"a/b", "1"}},
                            "5",
                            std::nullopt},
      DeltaDiscoveryResponse{
          "sv", {{"a/b", "2", payload}}, std::string(kAddressEntryType), {"c/d"}, "6", "cp"},
      StreamStatus{{7, "denied"}},
      Keepalive{},
  };
  for (const Message& m : messages) {
    const std::string text = EncodeMessage(m);
    auto decoded = DecodeMessage(text);
    ASSERT_TRUE(decoded.has_value()) << text << ": " << decoded.error();
    EXPECT_EQ(*decoded, m) << text;
  }
}

TEST(XdsMessageTest, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"discovery_request":{"type_url":1}})", "discovery_request.type_url: expected a string"},
      {R"({"discovery_request":{}})", "discovery_request.type_url: required field is missing"},
      {R"({"discovery_request":{"type_url":"t","bogus":1}})",
       "discovery_request.bogus: unknown field"},
      {R"({"discovery_request":{"type_url":"t","resource_names":["a","a"]}})",
       "discovery_request.resource_names[1]: duplicate resource name \"a\""},
      {R"({"discovery_request":{"type_url":"t","node":{"id":"x"}}})",
       "discovery_request.node.namespace: required field is missing"},
      {R"({"discovery_request":{"type_url":"t","error_detail":{"code":99}}})",
       "discovery_request.error_detail.code: expected an integer status code 0..16"},
      {R"({"discovery_response":{"version_info":"v","type_url":"t","nonce":"1",)"
       R"("resources":[{"name":"a","version":"1","resource":{}},{"name":"a","version":"1","resource":{}}]}})",
       "discovery_response.resources[1].name: duplicate resource name \"a\""},
      {R"({"discovery_response":{"version_info":"v","type_url":"t","nonce":""}})",
       "discovery_response.nonce: must not be empty"},
      {R"({"hello":{}})", "unknown message \"hello\""},
      {R"({"keepalive":{},"status":{}})",
       "a message must be a JSON object with exactly one member naming its kind"},
      {R"([1])", "a message must be a JSON object with exactly one member naming its kind"},
      {R"({"keepalive":)", "invalid JSON: offset 13: unexpected end of input, expected a value"},
  };
  for (const auto& [text, error] : cases) {
    auto m = DecodeMessage(text);
    ASSERT_FALSE(m.has_value()) << text;
    EXPECT_EQ(m.error(), error) << text;
  }
}

}  // namespace
}  // namespace picket::net
