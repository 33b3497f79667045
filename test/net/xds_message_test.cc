#include "net/xds_message.h"

#include <gtest/gtest.h>

namespace picket::net {
namespace {

TEST(XdsMessageTest, EveryMessageRoundTrips) {
  const std::string payload = R"({"ips":["10.0.0.1"],"n":9007199254740993})";
  const Message messages[] = {
      DiscoveryRequest{Node{"id", "ns", "pod", "ua"},
                       "v1",
                       {"ns/pod"},
                       std::string(kPodPolicyType),
                       "3",
                       Status{3, "bad"}},
      DiscoveryResponse{
          "v2", {{"ns/pod", "v2", payload, {}}}, std::string(kPodPolicyType), "4", "cp", {}},
      DeltaDiscoveryRequest{Node{"id", "ns", "pod", ""},
                            std::string(kAddressEntryType),
                            {"*"},
                            {"x/y"},
                            {{"a/b", "1"}},
                            "5",
                            std::nullopt},
      DeltaDiscoveryResponse{"sv",
                             {{"a/b", "2", payload, {}}},
                             std::string(kAddressEntryType),
                             {"c/d"},
                             "6",
                             "cp",
                             {}},
      StreamStatus{{7, "denied"}},
      Keepalive{},
  };
  for (const Message& m : messages) {
    const std::string text = EncodeMessage(m);
    auto decoded = DecodeMessage(text);
    ASSERT_TRUE(decoded.has_value()) << text << ": " << decoded.error().ToString();
    EXPECT_EQ(*decoded, m) << text;
    EXPECT_EQ(EncodeMessage(*decoded), text);  // decoded payloads re-encode unchanged
  }
}

TEST(XdsMessageTest, DecodedPayloadsViewTheFrameDocument) {
  const std::string text =
      R"({"delta_discovery_response":{"resources":[{"name":"a/b","version":"1",)"
      R"("resource":{"ips":["10.0.0.1"]}}],"type_url":"t","nonce":"1"}})";
  std::vector<Resource> resources;
  {
    auto m = DecodeMessage(text);
    ASSERT_TRUE(m.has_value()) << m.error().ToString();
    auto& delta = std::get<DeltaDiscoveryResponse>(*m);
    ASSERT_NE(delta.payloads.document, nullptr);
    EXPECT_TRUE(delta.resources[0].encoded.empty());
    EXPECT_EQ(delta.resources[0].value.Find("ips")->size(), 1u);
    // A copy of the message shares the document, so its values outlive the original.
    DeltaDiscoveryResponse copy = delta;
    m = Keepalive{};
    EXPECT_EQ(copy.resources[0].value.ToJson(), R"({"ips":["10.0.0.1"]})");
  }
}

// node.metadata.udp_sctp_enforced: true, false and absent each survive a round trip; absent
// encodes no `metadata` at all (what a sidecar that does not say sends).
TEST(XdsMessageTest, NodeMetadataRoundTrips) {
  for (std::optional<bool> enforced :
       {std::optional<bool>(true), std::optional<bool>(false), std::optional<bool>()}) {
    Node node{"id", "ns", "pod", "ua"};
    node.udp_sctp_enforced = enforced;
    for (const Message& m :
         {Message(DiscoveryRequest{node, "", {}, "t", "", std::nullopt}),
          Message(DeltaDiscoveryRequest{node, "t", {"*"}, {}, {}, "", std::nullopt})}) {
      const std::string text = EncodeMessage(m);
      EXPECT_EQ(text.find("\"metadata\"") != std::string::npos, enforced.has_value()) << text;
      auto decoded = DecodeMessage(text);
      ASSERT_TRUE(decoded.has_value()) << text << ": " << decoded.error().ToString();
      EXPECT_EQ(*decoded, m) << text;
      EXPECT_EQ(EncodeMessage(*decoded), text);
    }
  }
  auto node_of = [](const char* text) -> std::optional<Node> {
    auto m = DecodeMessage(text);
    EXPECT_TRUE(m.has_value()) << text << ": " << m.error().ToString();
    if (!m.has_value()) return std::nullopt;
    return std::get<DiscoveryRequest>(*m).node;
  };
  // Free-form: keys nobody reads are ignored; null reads as absent.
  auto node =
      node_of(R"({"discovery_request":{"type_url":"t","node":{"id":"i","namespace":"n","pod":"p",)"
              R"("metadata":{"udp_sctp_enforced":false,"cluster":"x","n":[1,{}]}}}})");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->udp_sctp_enforced, std::optional<bool>(false));
  node =
      node_of(R"({"discovery_request":{"type_url":"t","node":{"id":"i","namespace":"n","pod":"p",)"
              R"("metadata":{"udp_sctp_enforced":null}}}})");
  ASSERT_TRUE(node.has_value());
  EXPECT_EQ(node->udp_sctp_enforced, std::nullopt);
}

TEST(XdsMessageTest, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"discovery_request":{"type_url":1}})",
       "discovery_request.type_url: Invalid value: 1: expected a string"},
      {R"({"discovery_request":{}})", "discovery_request.type_url: Required value"},
      {R"({"discovery_request":{"type_url":"t","bogus":1}})",
       "discovery_request.bogus: unknown field \"bogus\""},
      {R"({"discovery_request":{"type_url":"t","type_url":"u"}})",
       "discovery_request.type_url: duplicate field \"type_url\""},
      {R"({"discovery_request":{"type_url":"t","resource_names":[""]}})",
       "discovery_request.resource_names[0]: Invalid value: \"\": a resource name must be "
       "1..512 bytes"},
      {R"({"discovery_request":{"type_url":"t","resource_names":["a","a"]}})",
       "discovery_request.resource_names[1]: duplicate resource name \"a\""},
      {R"({"discovery_request":{"type_url":"t","node":{"id":"x"}}})",
       "discovery_request.node.namespace: Required value"},
      {R"({"discovery_request":{"type_url":"t","node":{"id":"i","namespace":"n","pod":"p",)"
       R"("metadata":{"udp_sctp_enforced":"no"}}}})",
       "discovery_request.node.metadata.udp_sctp_enforced: Invalid value: \"no\": expected a "
       "boolean"},
      {R"({"discovery_request":{"type_url":"t","node":{"id":"i","namespace":"n","pod":"p",)"
       R"("metadata":[]}}})",
       "discovery_request.node.metadata: Invalid value: [...]: expected an object"},
      {R"({"discovery_request":{"type_url":"t","error_detail":{"code":99}}})",
       "discovery_request.error_detail.code: Invalid value: 99: must be between 0 and 16, "
       "inclusive"},
      {R"({"delta_discovery_request":{"type_url":"t","initial_resource_versions":{"a":1}}})",
       "delta_discovery_request.initial_resource_versions.a: Invalid value: 1: expected a "
       "string"},
      {R"({"discovery_response":{"version_info":"v","type_url":"t","nonce":"1",)"
       R"("resources":[{"name":"a","version":"1"}]}})",
       "discovery_response.resources[0].resource: Required value"},
      {R"({"discovery_response":{"version_info":"v","type_url":"t","nonce":"1",)"
       R"("resources":[{"name":"a","version":"1","resource":{}},{"name":"a","version":"1","resource":{}}]}})",
       "discovery_response.resources[1].name: duplicate resource name \"a\""},
      {R"({"discovery_response":{"version_info":"v","type_url":"t","nonce":""}})",
       "discovery_response.nonce: Required value: must not be empty"},
      {R"({"hello":{}})", "unknown message \"hello\""},
      {R"({"keepalive":{},"status":{}})",
       "a message must be a JSON object with exactly one member naming its kind"},
      {R"([1])", "a message must be a JSON object with exactly one member naming its kind"},
      {R"({"keepalive":)",
       "invalid JSON: malformed structure (a missing or superfluous comma, "
       "colon, brace or bracket)"},
  };
  for (const auto& [text, error] : cases) {
    auto m = DecodeMessage(text);
    ASSERT_FALSE(m.has_value()) << text;
    EXPECT_EQ(m.error().ToString(), error) << text;
  }
}

}  // namespace
}  // namespace picket::net
