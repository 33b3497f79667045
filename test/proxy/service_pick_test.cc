// Tests PickServiceBackend: which backend of a Service address an outbound connection goes to,
// with a real ServiceMap and a fake policy that allows egress by port (each backend here listens
// on its own port, so "allowed port" means "allowed backend").
#include "proxy/service_pick.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "proxy/flow_record.h"
#include "test/filters/fake_policy.h"

namespace picket::proxy {
namespace {

using xds::ServiceEntry;
using xds::ServiceMap;

policy::IpAddress Ip(const char* text) { return *policy::IpAddress::Parse(text); }

const char* kVip = "10.96.0.10";

// shop/web at 10.96.0.10:80 → a (10.0.0.1:8081), b (10.0.0.2:8082), c (10.0.0.3:8083).
xds::ServiceMapPtr MakeMap(bool with_backends = true) {
  ServiceEntry e;
  e.ns = "shop";
  e.name = "web";
  e.cluster_ips = {Ip(kVip)};
  ServiceEntry::Port port;
  port.name = "http";
  port.port = 80;
  if (with_backends) {
    port.backends = {{"a", {Ip("10.0.0.1")}, 8081},
                     {"b", {Ip("10.0.0.2")}, 8082},
                     {"c", {Ip("10.0.0.3")}, 8083}};
  }
  e.ports = {port};
  auto map = ServiceMap::Build({{"shop/web", e}});
  EXPECT_TRUE(map.has_value()) << map.error().ToString();
  return *map;
}

testing::FakePolicy Allowing(std::set<uint16_t> ports) {
  return testing::FakePolicy("v1", std::move(ports), {});
}

filters::Endpoint Vip(uint16_t port = 80) { return {Ip(kVip), port}; }

TEST(ServicePick, NotAServiceAddressIsNotAPick) {
  auto map = MakeMap();
  uint64_t rotation = 0;
  auto policy = Allowing({80, 8081});
  EXPECT_FALSE(
      PickServiceBackend(*map, policy, {Ip("10.0.0.1"), 8081}, config::Protocol::kTCP, rotation));
  EXPECT_FALSE(PickServiceBackend(*map, policy, Vip(81), config::Protocol::kTCP, rotation));
  EXPECT_FALSE(PickServiceBackend(*map, policy, Vip(), config::Protocol::kUDP, rotation));
  EXPECT_EQ(rotation, 0u);
}

TEST(ServicePick, PicksTheOnlyAllowedBackendWhateverTheRotation) {
  auto map = MakeMap();
  auto policy = Allowing({8082});
  for (uint64_t rotation = 0; rotation < 6;) {
    const uint64_t before = rotation;
    auto pick = PickServiceBackend(*map, policy, Vip(), config::Protocol::kTCP, rotation);
    ASSERT_TRUE(pick);
    EXPECT_EQ(rotation, before + 1);
    ASSERT_TRUE(pick->backend) << pick->denial.detail;
    EXPECT_EQ(*pick->backend, (filters::Endpoint{Ip("10.0.0.2"), 8082}));
    ASSERT_TRUE(pick->service);
    EXPECT_EQ(pick->service->name, "shop/web");
    EXPECT_EQ(pick->service->address, Vip());
  }
}

TEST(ServicePick, RotatesOverAllowedBackends) {
  auto map = MakeMap();
  auto policy = Allowing({8081, 8083});  // a and c; b is skipped
  uint64_t rotation = 0;
  std::multiset<uint16_t> ports;
  for (int i = 0; i < 6; ++i) {
    auto pick = PickServiceBackend(*map, policy, Vip(), config::Protocol::kTCP, rotation);
    ASSERT_TRUE(pick && pick->backend);
    ports.insert(pick->backend->port);
  }
  // Starts at a, b (→ c), c: a twice, c four times over six picks.
  EXPECT_EQ(ports.count(8081), 2u);
  EXPECT_EQ(ports.count(8083), 4u);
  EXPECT_EQ(ports.count(8082), 0u);
}

TEST(ServicePick, DeniesWhenNoBackendIsAllowedEvenIfTheClusterIpWould) {
  auto map = MakeMap();
  auto policy = Allowing({80});  // the Service port (as if the ClusterIP were allowed)
  uint64_t rotation = 0;
  auto pick = PickServiceBackend(*map, policy, Vip(), config::Protocol::kTCP, rotation);
  ASSERT_TRUE(pick);
  EXPECT_FALSE(pick->backend);
  EXPECT_EQ(pick->denial.action, filters::FilterResult::Action::kDeny);
  EXPECT_EQ(pick->denial.reason, filters::CloseReason::kPolicyDenied);
  EXPECT_EQ(pick->denial.detail, "none of 3 backends of Service shop/web allowed by egress policy");
  EXPECT_EQ(pick->denial.policies, std::vector<std::string>{"default/egress-policy"});
  ASSERT_TRUE(pick->service);
  EXPECT_EQ(pick->service->name, "shop/web");
}

TEST(ServicePick, DeniesAServiceWithoutBackends) {
  auto map = MakeMap(/*with_backends=*/false);
  auto policy = Allowing({80, 8081});
  uint64_t rotation = 0;
  auto pick = PickServiceBackend(*map, policy, Vip(), config::Protocol::kTCP, rotation);
  ASSERT_TRUE(pick);
  EXPECT_FALSE(pick->backend);
  EXPECT_EQ(pick->denial.reason, filters::CloseReason::kPolicyDenied);
  EXPECT_EQ(pick->denial.detail, "Service shop/web has no backends");
}

TEST(ServicePick, FlowRecordNamesTheServiceAndTheBackend) {
  FlowRecord r;
  r.forwarded = true;
  r.source = {Ip("10.0.0.9"), 40000};
  r.destination = {Ip("10.0.0.2"), 8082};
  r.destination_service =
      std::make_shared<const filters::ServiceAddress>(filters::ServiceAddress{"shop/web", Vip()});
  const std::string json = FlowRecordJson(r, {"default", "client", ""});
  EXPECT_NE(json.find("\"destination\":\"10.0.0.2\""), std::string::npos) << json;
  // Hubble's flow.Service is {name, namespace}; the address dialed is in Picket's extensions.
  EXPECT_NE(json.find("\"destination_service\":{\"name\":\"web\",\"namespace\":\"shop\"}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"service_address\":{\"ip\":\"10.96.0.10\",\"port\":80}"), std::string::npos)
      << json;
}

}  // namespace
}  // namespace picket::proxy
