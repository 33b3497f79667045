// Service objects: decoding, defaulting (protocol TCP, targetPort = port) and the API server's
// validation messages, through the manifest loader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "config/manifest_loader.h"
#include "test/config/manifest_test_util.h"

namespace picket::config {
namespace {

using ::testing::ElementsAre;
using testing::ErrorsOf;
using ::testing::IsEmpty;
using testing::MustLoad;

// A Service shop/web whose spec is `spec` (indented by the caller at 2 spaces under `spec:`).
std::string Svc(std::string_view spec) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: shop\nspec:\n" +
         std::string(spec);
}

TEST(ServiceTest, DecodesPortsSelectorAndClusterIp) {
  LoadResult r = MustLoad(Svc(R"(  type: ClusterIP
  clusterIP: 10.96.0.10
  selector: {app: web}
  sessionAffinity: None
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
  - {name: raw, port: 8443}
)"));
  ASSERT_EQ(r.cluster.services.size(), 1u);
  EXPECT_THAT(r.notices, IsEmpty());
  const Service& s = r.cluster.services[0];
  EXPECT_EQ(s.ns, "shop");
  EXPECT_EQ(s.name, "web");
  EXPECT_EQ(s.source.line, 1);
  EXPECT_THAT(s.cluster_ips, ElementsAre("10.96.0.10"));
  EXPECT_EQ(s.selector, (Labels{{"app", "web"}}));
  ASSERT_EQ(s.ports.size(), 3u);
  EXPECT_EQ(s.ports[0].name, "http");
  EXPECT_EQ(s.ports[0].port, 80);
  EXPECT_EQ(s.ports[0].protocol, Protocol::kTCP);  // defaulted
  EXPECT_EQ(std::get<std::string>(s.ports[0].target_port), "http");
  EXPECT_EQ(s.ports[1].protocol, Protocol::kUDP);
  EXPECT_EQ(std::get<uint16_t>(s.ports[1].target_port), 5353);
  EXPECT_EQ(std::get<uint16_t>(s.ports[2].target_port), 8443);  // defaulted to port
}

TEST(ServiceTest, DualStackHeadlessAndNoSelector) {
  LoadResult dual = MustLoad(Svc(R"(  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00:96::a"]
  ports: [{port: 80}]
)"));
  ASSERT_EQ(dual.cluster.services.size(), 1u);
  EXPECT_THAT(dual.cluster.services[0].cluster_ips, ElementsAre("10.96.0.10", "fd00:96::a"));
  EXPECT_TRUE(dual.cluster.services[0].selector.empty());

  LoadResult headless = MustLoad(Svc("  clusterIP: None\n  selector: {app: web}\n"));
  ASSERT_EQ(headless.cluster.services.size(), 1u);
  EXPECT_THAT(headless.cluster.services[0].cluster_ips, IsEmpty());
  EXPECT_THAT(headless.cluster.services[0].ports, IsEmpty());

  LoadResult external = MustLoad(Svc("  type: ExternalName\n  externalName: example.com\n"));
  ASSERT_EQ(external.cluster.services.size(), 1u);
  EXPECT_THAT(external.cluster.services[0].cluster_ips, IsEmpty());
}

TEST(ServiceTest, ValidatesPorts) {
  EXPECT_THAT(ErrorsOf(Svc("  ports: [{port: 80, targetPort: 70000}]\n")),
              ElementsAre("t.yaml:7: Service shop/web: spec.ports[0].targetPort: Invalid value: "
                          "70000: must be between 1 and 65535, inclusive"));
  EXPECT_THAT(
      ErrorsOf(Svc("  ports: [{port: 80, targetPort: web_port}]\n")),
      ElementsAre("t.yaml:7: Service shop/web: spec.ports[0].targetPort: Invalid value: "
                  "\"web_port\": must contain only alpha-numeric characters (a-z, 0-9), and "
                  "hyphens (-)"));
  EXPECT_THAT(ErrorsOf(Svc("  ports: [{port: 0}]\n")),
              ElementsAre("t.yaml:7: Service shop/web: spec.ports[0].port: Invalid value: 0: "
                          "must be between 1 and 65535, inclusive"));
  EXPECT_THAT(ErrorsOf(Svc("  ports:\n  - {port: 80}\n  - {name: b, port: 81}\n")),
              ElementsAre("t.yaml:8: Service shop/web: spec.ports[0].name: Required value"));
  EXPECT_THAT(ErrorsOf(Svc("  ports:\n  - {name: a, port: 80}\n  - {name: a, port: 81}\n")),
              ElementsAre("t.yaml:9: Service shop/web: spec.ports[1].name: Duplicate value: "
                          "\"a\""));
  EXPECT_THAT(ErrorsOf(Svc("  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 80}\n")),
              ElementsAre("t.yaml:9: Service shop/web: spec.ports[1]: Duplicate value: "
                          "\"80/TCP\""));
  EXPECT_THAT(ErrorsOf(Svc("  ports: [{port: 80, protocol: ICMP}]\n")),
              ElementsAre("t.yaml:7: Service shop/web: spec.ports[0].protocol: Unsupported "
                          "value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\""));
  EXPECT_THAT(ErrorsOf(Svc("  ports: [{port: 80, targetPort: [1]}]\n")),
              ElementsAre("t.yaml:7: Service shop/web: spec.ports[0].targetPort: Invalid type: "
                          "expected an integer or a string, got a list"));
  EXPECT_THAT(ErrorsOf(Svc("  ports: []\n")),
              ElementsAre("t.yaml:7: Service shop/web: spec.ports: Required value"));
  // The same port number over two protocols is fine (DNS).
  EXPECT_THAT(ErrorsOf(Svc("  ports:\n  - {name: a, port: 53}\n  - {name: b, port: 53, protocol: "
                           "UDP}\n")),
              IsEmpty());
}

TEST(ServiceTest, ValidatesClusterIpsTypeAndSelector) {
  EXPECT_THAT(ErrorsOf(Svc("  clusterIP: 10.96.0.300\n  ports: [{port: 80}]\n")),
              ElementsAre("t.yaml:7: Service shop/web: spec.clusterIP: Invalid value: "
                          "\"10.96.0.300\": must be empty, 'None', or a valid IP address"));
  EXPECT_THAT(ErrorsOf(Svc("  clusterIP: 10.96.0.1\n  clusterIPs: [10.96.0.2]\n"
                           "  ports: [{port: 80}]\n")),
              ElementsAre("t.yaml:8: Service shop/web: spec.clusterIPs[0]: Invalid value: "
                          "\"10.96.0.2\": must match clusterIP when both are specified"));
  EXPECT_THAT(ErrorsOf(Svc("  clusterIPs: [10.96.0.1, 10.96.0.2]\n  ports: [{port: 80}]\n")),
              ElementsAre("t.yaml:7: Service shop/web: spec.clusterIPs[1]: Invalid value: "
                          "\"10.96.0.2\": may specify no more than one IP for each IP family"));
  EXPECT_THAT(ErrorsOf(Svc("  type: Magic\n  ports: [{port: 80}]\n")),
              ElementsAre("t.yaml:7: Service shop/web: spec.type: Unsupported value: \"Magic\": "
                          "supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", "
                          "\"NodePort\""));
  EXPECT_THAT(ErrorsOf(Svc("  selector: {app: \"-web\"}\n  ports: [{port: 80}]\n")),
              ElementsAre(::testing::StartsWith(
                  "t.yaml:7: Service shop/web: spec.selector: Invalid value: \"-web\": ")));
  EXPECT_THAT(ErrorsOf("apiVersion: v1\nkind: Service\nmetadata: {name: Web}\n"
                       "spec: {ports: [{port: 80}]}\n"),
              ElementsAre(::testing::StartsWith(
                  "t.yaml:3: Service default/Web: metadata.name: Invalid value: \"Web\": ")));
}

TEST(ServiceTest, DuplicatesAreErrorsOtherKindsStillSkipped) {
  EXPECT_THAT(ErrorsOf(Svc("  ports: [{port: 80}]\n") + "---\n" + Svc("  ports: [{port: 81}]\n")),
              ElementsAre("t.yaml:9: Service shop/web: duplicate object: already defined at "
                          "t.yaml:1"));
  LoadResult r = MustLoad(Svc("  ports: [{port: 80}]\n") +
                          "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
  EXPECT_EQ(r.cluster.services.size(), 1u);
  EXPECT_THAT(r.notices,
              ElementsAre("t.yaml:9: skipping ConfigMap c (not used by the policy engine)"));
}

}  // namespace
}  // namespace picket::config
