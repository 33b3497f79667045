#include "proxy/admin.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

// The request as net::HttpServer hands it to the route (the parser has its own tests).
net::HttpResponse Get(FakeHandler& h, const std::string& target,
                      const std::string& method = "GET") {
  net::HttpRequest request;
  request.method = method;
  const size_t q = target.find('?');
  request.path = target.substr(0, q);
  if (q != std::string::npos) request.query = target.substr(q + 1);
  return RouteAdmin(request, h);
}

TEST(AdminTest, ReadyIs503UntilLive) {
  FakeHandler h;
  net::HttpResponse r = Get(h, "/ready");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "PRE_INITIALIZING\n");
  h.state = "LIVE";
  EXPECT_EQ(Get(h, "/ready").status, 200);
  h.state = "DRAINING";
  EXPECT_EQ(Get(h, "/ready").status, 503);
}

TEST(AdminTest, StatsAreText004) {
  FakeHandler h;
  net::HttpResponse r = Get(h, "/stats/prometheus");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
}

TEST(AdminTest, FlowsFilterByVerdict) {
  FakeHandler h;
  net::HttpResponse r = Get(h, "/flows?verdict=DROPPED");
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
  net::HttpRequest post;
  post.method = "POST";
  post.path = "/drain";
  EXPECT_EQ(RouteAdmin(post, h, AdminScope::kReadOnly).status, 403);  // the TCP endpoint
  EXPECT_EQ(h.drains, 1);
}

TEST(AdminTest, UnknownPathAndWrongMethod) {
  FakeHandler h;
  EXPECT_EQ(Get(h, "/nope").status, 404);
  EXPECT_EQ(Get(h, "/ready", "POST").status, 405);
  EXPECT_EQ(Get(h, "/config_dump").content_type, "application/json");
}

TEST(AdminTest, ServesEachRouteOneRequestPerConnection) {
  FakeHandler h;
  h.state = "LIVE";
  uv_loop_t loop;
  uv_loop_init(&loop);
  AdminServer server(&loop, h, AdminScope::kFull);
  ASSERT_TRUE(server.Listen("127.0.0.1", 0).has_value());
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", server.port(), &addr);
  connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // completes on the loop
  const std::string request = "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string response;
  bool sent = false;
  // Drive the loop until the server has answered and closed (EOF), within a deadline.
  uv_timer_t deadline;
  uv_timer_init(&loop, &deadline);
  bool expired = false;
  deadline.data = &expired;
  uv_timer_start(
      &deadline, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, 5000, 0);
  uv_timer_t tick;  // wakes the loop while the client socket (outside the loop) makes progress
  uv_timer_init(&loop, &tick);
  uv_timer_start(
      &tick, [](uv_timer_t*) {}, 1, 1);
  while (!expired) {
    uv_run(&loop, UV_RUN_ONCE);
    if (!sent) {
      sent = write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size());
      continue;
    }
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) response.append(buf, static_cast<size_t>(n));
    if (n == 0) break;
  }
  close(fd);
  EXPECT_FALSE(expired);
  EXPECT_EQ(response,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
            "Connection: close\r\n\r\nLIVE\n");
  server.Close();
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
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
