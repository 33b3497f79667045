// The sidecar's service map: decoding untrusted Service resources (every malformed field named)
// and the (ClusterIP, port, protocol) → backends index.
#include "proxy/xds/service_map.h"

#include <gtest/gtest.h>

#include "base/json.h"

namespace picket::proxy::xds {
namespace {

policy::IpAddress Ip(const char* s) { return *policy::IpAddress::Parse(s); }

constexpr const char* kWeb =
    R"({"namespace":"shop","name":"web","cluster_ips":["10.96.0.10","fd00:96::a"],
        "ports":[{"name":"http","port":80,"protocol":"TCP","backends":[
                   {"pod":"web-1","ips":["10.0.0.1","fd00::1"],"port":8080},
                   {"pod":"web-2","ips":["10.0.0.2"],"port":9090}]},
                 {"name":"dns","port":53,"protocol":"UDP","backends":[]}]})";

base::Result<ServiceEntry> Decode(const std::string& text, const char* name = "shop/web") {
  auto json = base::ParseJson(text);
  EXPECT_TRUE(json.has_value()) << text;
  if (!json) return std::unexpected(base::Error::Of("bad test JSON"));
  return DecodeServiceEntry(json->root(), name);  // the entry keeps no view into the document
}

std::string ErrorOf(const std::string& text, const char* name = "shop/web") {
  auto entry = Decode(text, name);
  return entry ? "" : entry.error().ToString();
}

// kWeb with the first occurrence of `from` replaced by `to`.
std::string Mutate(std::string_view from, std::string_view to) {
  std::string text = kWeb;
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(ServiceMapDecodeTest, DecodesTheDocumentedPayload) {
  auto entry = Decode(kWeb);
  ASSERT_TRUE(entry.has_value()) << entry.error().ToString();
  EXPECT_EQ(entry->ns, "shop");
  EXPECT_EQ(entry->name, "web");
  ASSERT_EQ(entry->cluster_ips.size(), 2u);
  ASSERT_EQ(entry->ports.size(), 2u);
  EXPECT_EQ(entry->ports[0].backends.size(), 2u);
  EXPECT_EQ(entry->ports[1].protocol, config::Protocol::kUDP);
}

TEST(ServiceMapDecodeTest, RejectsMalformedFieldsPrecisely) {
  EXPECT_EQ(ErrorOf("[]"), "shop/web: Invalid value: [...]: expected an object");
  EXPECT_EQ(ErrorOf(kWeb, "shop/other"),
            "shop/other: name: Invalid value: the entry names Service \"shop/web\"");
  EXPECT_EQ(ErrorOf(Mutate(R"("namespace":"shop",)", R"("namespace":"shop","extra":1,)")),
            "shop/web: extra: unknown field \"extra\"");
  EXPECT_EQ(ErrorOf(Mutate(R"("name":"web",)", "")), "shop/web: name: Required value");
  EXPECT_EQ(ErrorOf(Mutate(R"(["10.96.0.10","fd00:96::a"])", "[]")),
            "shop/web: cluster_ips: Required value: at least one address");
  EXPECT_EQ(ErrorOf(Mutate(R"("fd00:96::a")", R"("10.96.0.11")")),
            "shop/web: cluster_ips: Invalid value: holds two addresses of one family");
  EXPECT_EQ(ErrorOf(Mutate(R"("fd00:96::a")", R"("10.96.0.11","fd00::2")")),
            "shop/web: cluster_ips: Too many: 3: must have at most 2 addresses");
  EXPECT_EQ(ErrorOf(Mutate(R"("10.96.0.10")", R"("10.96.0.300")")),
            "shop/web: cluster_ips[0]: Invalid value: \"10.96.0.300\": not an IP address");
  EXPECT_EQ(ErrorOf(Mutate(R"("port":80)", R"("port":0)")),
            "shop/web: ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive");
  EXPECT_EQ(ErrorOf(Mutate(R"("port":80)", R"("port":80.5)")),
            "shop/web: ports[0].port: Invalid value: 80.5: expected an integer");
  EXPECT_EQ(ErrorOf(Mutate(R"("protocol":"UDP")", R"("protocol":"ICMP")")),
            "shop/web: ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", "
            "\"TCP\", \"UDP\"");
  EXPECT_EQ(ErrorOf(Mutate(R"("port":53,"protocol":"UDP")", R"("port":80,"protocol":"TCP")")),
            "shop/web: ports[1]: Duplicate value: 80/TCP");
  EXPECT_EQ(ErrorOf(Mutate(R"("name":"dns")", R"("name":"http")")),
            "shop/web: ports[1].name: Duplicate value: \"http\"");
  EXPECT_EQ(ErrorOf(Mutate(R"("pod":"web-2")", R"("pod":"")")),
            "shop/web: ports[0].backends[1].pod: Required value: must not be empty");
  EXPECT_EQ(ErrorOf(Mutate(R"("ips":["10.0.0.2"])", R"("ips":"10.0.0.2")")),
            "shop/web: ports[0].backends[1].ips: Invalid value: \"10.0.0.2\": expected an array");
  EXPECT_EQ(ErrorOf(Mutate(R"("port":9090)", R"("port":"9090")")),
            "shop/web: ports[0].backends[1].port: Invalid value: \"9090\": expected an integer");
  EXPECT_EQ(ErrorOf(Mutate(R"("backends":[])", R"("backends":null)")),
            "shop/web: ports[1].backends: Required value");
  EXPECT_EQ(ErrorOf(Mutate(R"("namespace":"shop",)", R"("namespace":"shop","namespace":"x",)")),
            "shop/web: namespace: duplicate field \"namespace\"");
}

TEST(ServiceMapTest, FindsBackendsOfTheClusterIpsFamily) {
  auto entry = Decode(kWeb);
  ASSERT_TRUE(entry.has_value());
  auto map = ServiceMap::Build({{"shop/web", *entry}});
  ASSERT_TRUE(map.has_value()) << map.error().ToString();
  EXPECT_EQ((*map)->services(), 1u);
  EXPECT_EQ((*map)->addresses(), 4u);  // 2 ClusterIPs × 2 ports

  const auto* v4 = (*map)->Find(Ip("10.96.0.10"), 80, config::Protocol::kTCP);
  ASSERT_NE(v4, nullptr);
  ASSERT_EQ(v4->size(), 2u);
  EXPECT_EQ((*v4)[0].address, Ip("10.0.0.1"));
  EXPECT_EQ((*v4)[0].port, 8080);
  EXPECT_EQ((*v4)[0].pod, "shop/web-1");
  EXPECT_EQ((*v4)[1].address, Ip("10.0.0.2"));
  EXPECT_EQ((*v4)[1].port, 9090);

  const auto* v6 = (*map)->Find(Ip("fd00:96::a"), 80, config::Protocol::kTCP);
  ASSERT_NE(v6, nullptr);
  ASSERT_EQ(v6->size(), 1u);  // web-2 has no IPv6 address
  EXPECT_EQ((*v6)[0].address, Ip("fd00::1"));

  const auto* dns = (*map)->Find(Ip("10.96.0.10"), 53, config::Protocol::kUDP);
  ASSERT_NE(dns, nullptr);
  EXPECT_TRUE(dns->empty());  // a Service without backends: deny
  ASSERT_NE((*map)->ServiceName(Ip("10.96.0.10"), 53, config::Protocol::kUDP), nullptr);
  EXPECT_EQ(*(*map)->ServiceName(Ip("10.96.0.10"), 53, config::Protocol::kUDP), "shop/web");

  EXPECT_EQ((*map)->Find(Ip("10.96.0.10"), 53, config::Protocol::kTCP), nullptr);
  EXPECT_EQ((*map)->Find(Ip("10.96.0.10"), 81, config::Protocol::kTCP), nullptr);
  EXPECT_EQ((*map)->Find(Ip("10.0.0.1"), 8080, config::Protocol::kTCP), nullptr);
}

TEST(ServiceMapTest, TwoServicesOnOneAddressAreAnError) {
  auto web = Decode(kWeb);
  ASSERT_TRUE(web.has_value());
  ServiceEntry copy = *web;
  copy.name = "copy";
  auto map = ServiceMap::Build({{"shop/copy", copy}, {"shop/web", *web}});
  ASSERT_FALSE(map.has_value());
  EXPECT_EQ(map.error().ToString(),
            "shop/web: 10.96.0.10:80/TCP is already the address of Service shop/copy");
  auto empty = ServiceMap::Build({});
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ((*empty)->Find(Ip("10.96.0.10"), 80, config::Protocol::kTCP), nullptr);
}

}  // namespace
}  // namespace picket::proxy::xds
