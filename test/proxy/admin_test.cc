#include "proxy/admin.h"

#include <gtest/gtest.h>

#include "proxy/stats.h"

namespace picket::proxy {
namespace {

class FakeHandler final : public AdminHandler {
 public:
  std::string ServerState() const override { return state; }
  std::string PrometheusStats() const override { return "x 1\n"; }
  std::string ConfigDump() const override { return "{}"; }
  std::vector<std::string> Flows(const std::string& verdict) const override {
    last_verdict = verdict;
    return {"{\"a\":1}", "{\"b\":2}"};
  }
  void Drain() override { ++drains; }

  std::string state = "PRE_INITIALIZING";
  mutable std::string last_verdict = "unset";
  int drains = 0;
};

AdminResponse Get(FakeHandler& h, const std::string& target, const std::string& method = "GET") {
  auto request = ParseAdminRequest(method + " " + target + " HTTP/1.1\r\nHost: x");
  EXPECT_TRUE(request.has_value());
  return RouteAdmin(*request, h);
}

TEST(AdminTest, ParsesRequestLine) {
  auto r = ParseAdminRequest("GET /flows?verdict=DROPPED HTTP/1.1\r\nHost: a");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/flows");
  EXPECT_EQ(r->query, "verdict=DROPPED");
  EXPECT_FALSE(ParseAdminRequest("GET /x"));
  EXPECT_FALSE(ParseAdminRequest("GET x HTTP/1.1"));
  EXPECT_FALSE(ParseAdminRequest("GET /x SPDY/3"));
}

TEST(AdminTest, ReadyIs503UntilLive) {
  FakeHandler h;
  AdminResponse r = Get(h, "/ready");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "PRE_INITIALIZING\n");
  h.state = "LIVE";
  EXPECT_EQ(Get(h, "/ready").status, 200);
  h.state = "DRAINING";
  EXPECT_EQ(Get(h, "/ready").status, 503);
}

TEST(AdminTest, StatsAreText004) {
  FakeHandler h;
  AdminResponse r = Get(h, "/stats/prometheus");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(AdminTest, FlowsFilterByVerdict) {
  FakeHandler h;
  AdminResponse r = Get(h, "/flows?verdict=DROPPED");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(h.last_verdict, "DROPPED");
  EXPECT_EQ(r.body, "{\"a\":1}\n{\"b\":2}\n");
  Get(h, "/flows");
  EXPECT_EQ(h.last_verdict, "");
  EXPECT_EQ(Get(h, "/flows?verdict=MAYBE").status, 400);
}

TEST(AdminTest, DrainNeedsPost) {
  FakeHandler h;
  EXPECT_EQ(Get(h, "/drain").status, 400);
  EXPECT_EQ(h.drains, 0);
  EXPECT_EQ(Get(h, "/drain", "POST").status, 200);
  EXPECT_EQ(h.drains, 1);
}

TEST(AdminTest, UnknownPathAndWrongMethod) {
  FakeHandler h;
  EXPECT_EQ(Get(h, "/nope").status, 404);
  EXPECT_EQ(Get(h, "/ready", "POST").status, 405);
  EXPECT_EQ(Get(h, "/config_dump").content_type, "application/json");
}

TEST(AdminTest, SerializesWithLengthAndClose) {
  AdminResponse r;
  r.status = 503;
  r.body = "abc";
  EXPECT_EQ(SerializeAdminResponse(r),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nabc");
}

// /config_dump's "service_map": every Service the sidecar applied, with its ClusterIPs, ports and
// backends, and the version it came with.
TEST(AdminTest, ServiceMapJsonListsEveryServiceAndTheVersion) {
  ServiceMapDump dump;
  dump.version = "svc-42";
  dump.service_count = 2;
  dump.address_count = 3;
  dump.services = std::vector<ServiceMapDump::Service>{
      {.ns = "shop",
       .name = "db",
       .cluster_ips = {"10.96.0.20"},
       .ports = {{.name = "", .port = 5432, .protocol = "TCP", .backends = {}}}},
      {.ns = "shop",
       .name = "web",
       .cluster_ips = {"10.96.0.10", "fd00:96::10"},
       .ports =
           {{.name = "http",
             .port = 80,
             .protocol = "TCP",
             .backends = {{.pod = "web-0", .ips = {"10.0.0.7", "fd00::7"}, .target_port = 8080},
                          {.pod = "web-1", .ips = {"10.0.0.8"}, .target_port = 8080}}},
            {.name = "dns", .port = 53, .protocol = "UDP", .backends = {}}}},
  };
  EXPECT_EQ(ServiceMapJson(dump),
            R"({"version":"svc-42","service_count":2,"address_count":3,"services":[)"
            R"({"namespace":"shop","name":"db","cluster_ips":["10.96.0.20"],)"
            R"("ports":[{"name":"","port":5432,"protocol":"TCP","backends":[]}]},)"
            R"({"namespace":"shop","name":"web","cluster_ips":["10.96.0.10","fd00:96::10"],)"
            R"("ports":[{"name":"http","port":80,"protocol":"TCP","backends":[)"
            R"({"pod":"web-0","ips":["10.0.0.7","fd00::7"],"target_port":8080},)"
            R"({"pod":"web-1","ips":["10.0.0.8"],"target_port":8080}]},)"
            R"({"name":"dns","port":53,"protocol":"UDP","backends":[]}]}]})");
}

TEST(AdminTest, ServiceMapJsonEscapesAndSaysWhenNotListed) {
  ServiceMapDump dump;
  dump.version = "v\"1\\\n\x01";  // the version comes from the network
  dump.services = std::vector<ServiceMapDump::Service>{};
  EXPECT_EQ(ServiceMapJson(dump),
            R"({"version":"v\"1\\\n\u0001","service_count":0,"address_count":0,"services":[]})");
  // Not listed is null, never an empty list that would read as "no Services".
  dump.services.reset();
  dump.service_count = 4;
  EXPECT_EQ(ServiceMapJson(dump),
            R"({"version":"v\"1\\\n\u0001","service_count":4,"address_count":0,"services":null})");
}

TEST(StatsTest, PrometheusFamiliesAreWellFormed) {
  Stats stats;
  stats.outbound.accepted = 5;
  stats.CountClose(filters::Direction::kInbound, filters::CloseReason::kPolicyDenied);
  std::string text = RenderPrometheus(stats, true);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find("envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"outbound\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("picket_connections_closed_total{direction=\"inbound\","
                      "reason=\"policy_denied\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("picket_policy_loaded 1\n"), std::string::npos);
  // Every sample's family was declared (TYPE) before it, and each family only once.
  std::set<std::string> typed;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(typed.insert(name).second) << name;
    } else if (line[0] != '#') {
      std::string name = line.substr(0, line.find_first_of("{ "));
      EXPECT_TRUE(typed.count(name)) << line;
    }
  }
}

}  // namespace
}  // namespace picket::proxy
