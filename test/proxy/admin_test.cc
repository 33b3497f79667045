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
