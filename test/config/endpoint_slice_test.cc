// EndpointSlice objects (discovery.k8s.io/v1): decoding, defaulting (ready when the condition is
// absent, protocol TCP) and kube-apiserver's ValidateEndpointSlice messages and field paths,
// through the manifest loader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "config/manifest_loader.h"
#include "test/config/manifest_test_util.h"

namespace picket::config {
namespace {

using ::testing::ElementsAre;
using testing::ErrorsOf;
using testing::MustLoad;

// An EndpointSlice shop/web-abc of Service web whose body (after metadata, at column 0) is `body`.
std::string Slice(std::string_view body) {
  return "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-abc\n"
         "  namespace: shop\n  labels: {kubernetes.io/service-name: web}\n" +
         std::string(body);
}

TEST(EndpointSliceTest, DecodesEndpointsConditionsTargetRefsAndPorts) {
  LoadResult r = MustLoad(Slice(R"(addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-1
  targetRef: {kind: Pod, name: web-1, namespace: shop, uid: 1234}
- addresses: [10.0.0.2]
  conditions: {ready: false}
  targetRef: {kind: Pod, name: web-2, namespace: shop}
- addresses: [10.0.0.3]
ports:
- {name: http, port: 8080, protocol: TCP, appProtocol: http}
- {name: dns, port: 5353, protocol: UDP}
- {port: 7000}
)"));
  ASSERT_EQ(r.cluster.endpoint_slices.size(), 1u);
  const EndpointSlice& s = r.cluster.endpoint_slices[0];
  EXPECT_EQ(s.ns, "shop");
  EXPECT_EQ(s.name, "web-abc");
  EXPECT_EQ(s.service_name, "web");
  EXPECT_EQ(s.address_type, "IPv4");
  EXPECT_EQ(s.source.line, 1);
  ASSERT_EQ(s.endpoints.size(), 3u);
  EXPECT_THAT(s.endpoints[0].addresses, ElementsAre("10.0.0.1"));
  EXPECT_TRUE(s.endpoints[0].ready);
  EXPECT_EQ(s.endpoints[0].target_pod, "web-1");
  EXPECT_FALSE(s.endpoints[1].ready);
  EXPECT_TRUE(s.endpoints[2].ready);  // "nil should be interpreted as ready"
  EXPECT_EQ(s.endpoints[2].target_pod, "");
  ASSERT_EQ(s.ports.size(), 3u);
  EXPECT_EQ(s.ports[0].name, "http");
  EXPECT_EQ(s.ports[0].port, 8080);
  EXPECT_EQ(s.ports[1].protocol, Protocol::kUDP);
  EXPECT_EQ(s.ports[2].name, "");
  EXPECT_EQ(s.ports[2].protocol, Protocol::kTCP);  // defaulted
}

TEST(EndpointSliceTest, DualStackSlicesAndOtherTargetRefKinds) {
  LoadResult r = MustLoad(Slice(R"(addressType: IPv6
endpoints:
- addresses: ["fd00::1"]
  targetRef: {kind: Node, name: node-1}
ports: [{name: http, port: 8080}]
)"));
  ASSERT_EQ(r.cluster.endpoint_slices.size(), 1u);
  EXPECT_EQ(r.cluster.endpoint_slices[0].address_type, "IPv6");
  EXPECT_EQ(r.cluster.endpoint_slices[0].endpoints[0].target_pod, "");  // not a Pod
}

TEST(EndpointSliceTest, ValidatesAsTheApiServer) {
  EXPECT_THAT(ErrorsOf(Slice("endpoints: []\n")),
              ElementsAre("t.yaml:1: EndpointSlice shop/web-abc: addressType: Required value"));
  EXPECT_THAT(ErrorsOf(Slice("addressType: IP\n")),
              ElementsAre("t.yaml:7: EndpointSlice shop/web-abc: addressType: Unsupported value: "
                          "\"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""));
  EXPECT_THAT(ErrorsOf(Slice("addressType: IPv4\nendpoints:\n- conditions: {ready: true}\n")),
              ElementsAre("t.yaml:9: EndpointSlice shop/web-abc: endpoints[0].addresses: "
                          "Required value: must contain at least 1 address"));
  EXPECT_THAT(
      ErrorsOf(Slice("addressType: IPv4\nendpoints:\n- addresses: [10.0.0.1, \"fd00::1\"]\n")),
      ElementsAre("t.yaml:9: EndpointSlice shop/web-abc: endpoints[0].addresses[1]: "
                  "Invalid value: \"fd00::1\": must be a valid IPv4 address"));
  EXPECT_THAT(ErrorsOf(Slice("addressType: IPv6\nendpoints:\n- addresses: [10.0.0.1]\n")),
              ElementsAre("t.yaml:9: EndpointSlice shop/web-abc: endpoints[0].addresses[0]: "
                          "Invalid value: \"10.0.0.1\": must be a valid IPv6 address"));
  EXPECT_THAT(
      ErrorsOf(Slice("addressType: IPv4\nendpoints:\n- addresses: [1.2.3.4]\n  conditions: "
                     "{ready: maybe}\n")),
      ElementsAre(::testing::HasSubstr("t.yaml:10: EndpointSlice shop/web-abc: "
                                       "endpoints[0].conditions.ready: Invalid type: expected a "
                                       "boolean")));
  EXPECT_THAT(ErrorsOf(Slice("addressType: IPv4\nports:\n- {name: http, port: 80}\n"
                             "- {name: http, port: 81}\n")),
              ElementsAre("t.yaml:10: EndpointSlice shop/web-abc: ports[1].name: Duplicate value: "
                          "\"http\""));
  EXPECT_THAT(ErrorsOf(Slice("addressType: IPv4\nports:\n- {name: Web_Port, port: 80}\n")),
              ::testing::SizeIs(1));
  EXPECT_THAT(ErrorsOf(Slice("addressType: IPv4\nports:\n- {port: 80, protocol: HTTP}\n")),
              ElementsAre("t.yaml:9: EndpointSlice shop/web-abc: ports[0].protocol: Unsupported "
                          "value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""));
  EXPECT_THAT(ErrorsOf(Slice("addressType: IPv4\nports:\n- {port: 70000}\n")),
              ElementsAre("t.yaml:9: EndpointSlice shop/web-abc: ports[0].port: Invalid value: "
                          "70000: must be between 1 and 65535, inclusive"));
}

TEST(EndpointSliceTest, BoundsEndpointsAndAddresses) {
  std::string many = "addressType: IPv4\nendpoints:\n";
  for (int i = 0; i < 1001; ++i) many += "- addresses: [10.0.0.1]\n";
  EXPECT_THAT(ErrorsOf(Slice(many)),
              ElementsAre("t.yaml:9: EndpointSlice shop/web-abc: endpoints: Too many: 1001: must "
                          "have at most 1000 items"));
  std::string addresses = "addressType: IPv4\nendpoints:\n- addresses: [";
  for (int i = 0; i < 101; ++i) addresses += std::string(i ? "," : "") + "10.0.0.1";
  EXPECT_THAT(ErrorsOf(Slice(addresses + "]\n")),
              ElementsAre("t.yaml:9: EndpointSlice shop/web-abc: endpoints[0].addresses: Too "
                          "many: 101: must have at most 100 items"));
}

TEST(EndpointSliceTest, DuplicateSlicesAreRejected) {
  EXPECT_THAT(ErrorsOf(Slice("addressType: IPv4\n") + "---\n" + Slice("addressType: IPv4\n")),
              ElementsAre("t.yaml:9: EndpointSlice shop/web-abc: duplicate object: already "
                          "defined at t.yaml:1"));
}

}  // namespace
}  // namespace picket::config
