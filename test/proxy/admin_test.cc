#include "proxy/admin.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "base/json.h"
#include "base/log.h"
#include "base/version.h"
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
  void DrainListeners(bool inbound_only, bool graceful) override {
    drain_listeners.push_back(std::string(inbound_only ? "inbound" : "all") +
                              (graceful ? "+graceful" : ""));
  }
  void Quit() override { ++quits; }
  ServerInfo Info() const override {
    return {.uptime_seconds = 42,
            .concurrency = 2,
            .config_path = "/etc/picket/bootstrap.yaml",
            .service_node = "shop/web-0",
            .drain_time_seconds = 20};
  }

  std::string state = "PRE_INITIALIZING";
  mutable std::string last_verdict = "unset";
  int drains = 0;
  int quits = 0;
  std::vector<std::string> drain_listeners;
};

// The request as net::HttpServer hands it to the route (the parser has its own tests).
net::HttpResponse Get(FakeHandler& h, const std::string& target, const std::string& method = "GET",
                      AdminScope scope = AdminScope::kFull) {
  net::HttpRequest request;
  request.method = method;
  const size_t q = target.find('?');
  request.path = target.substr(0, q);
  if (q != std::string::npos) request.query = target.substr(q + 1);
  return RouteAdmin(request, h, scope);
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

// Every POST verb: refused with 403 on the TCP endpoint (whatever the method), 400 on a GET,
// served on admin.socket.
TEST(AdminTest, MutatingVerbsOnlyOnTheAdminSocketAndOnlyByPost) {
  for (const char* path : {"/drain", "/drain_listeners", "/quitquitquit"}) {
    SCOPED_TRACE(path);
    FakeHandler h;
    for (const char* method : {"GET", "POST"}) {
      const net::HttpResponse r = Get(h, path, method, AdminScope::kReadOnly);
      EXPECT_EQ(r.status, 403);
      EXPECT_NE(r.body.find("admin.socket"), std::string::npos) << r.body;
    }
    EXPECT_EQ(Get(h, path, "GET").status, 400);
    EXPECT_EQ(h.drains + h.quits + h.drain_listeners.size(), 0u);
    EXPECT_EQ(Get(h, path, "POST").status, 200);
    EXPECT_EQ(h.drains + h.quits + h.drain_listeners.size(), 1u);
  }
}

TEST(AdminTest, DrainListenersTakesInboundOnlyAndGraceful) {
  FakeHandler h;
  for (const char* target :
       {"/drain_listeners", "/drain_listeners?inboundonly", "/drain_listeners?graceful",
        "/drain_listeners?inboundonly&graceful"}) {
    EXPECT_EQ(Get(h, target, "POST").status, 200) << target;
  }
  EXPECT_EQ(h.drain_listeners,
            (std::vector<std::string>{"all", "inbound", "all+graceful", "inbound+graceful"}));
}

TEST(AdminTest, QuitQuitQuit) {
  FakeHandler h;
  const net::HttpResponse r = Get(h, "/quitquitquit", "POST");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "OK\n");
  EXPECT_EQ(h.quits, 1);
}

TEST(AdminTest, ServerInfoIsEnvoysJsonSubset) {
  FakeHandler h;
  h.state = "DRAINING";
  const net::HttpResponse r = Get(h, "/server_info");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  auto doc = base::ParseJson(r.body);
  ASSERT_TRUE(doc.has_value()) << r.body;
  const base::JsonValue root = doc->root();
  EXPECT_EQ(root.Find("state")->AsString(), "DRAINING");
  EXPECT_EQ(root.Find("uptime_current_epoch")->AsString(), "42s");
  EXPECT_EQ(root.Find("uptime_all_epochs")->AsString(), "42s");
  EXPECT_EQ(root.Find("version")->AsString(), std::string(base::GitCommit()) + "/" +
                                                  std::string(base::Version()) +
                                                  "/Clean/RELEASE/BoringSSL");
  const base::JsonValue options = *root.Find("command_line_options");
  EXPECT_EQ(options.Find("concurrency")->AsUint64(), 2u);
  EXPECT_EQ(options.Find("config_path")->AsString(), "/etc/picket/bootstrap.yaml");
  EXPECT_EQ(options.Find("service_node")->AsString(), "shop/web-0");
  EXPECT_EQ(options.Find("drain_time")->AsString(), "20s");
  EXPECT_EQ(options.Find("mode")->AsString(), "Serve");
  EXPECT_TRUE(options.Find("log_level")->AsString().has_value());
  // A read: served on the TCP endpoint too.
  EXPECT_EQ(Get(h, "/server_info", "GET", AdminScope::kReadOnly).status, 200);
  EXPECT_EQ(Get(h, "/server_info", "POST").status, 405);
}

TEST(AdminTest, MemoryReportsTheHeapAsEnvoysStrings) {
  FakeHandler h;
  const net::HttpResponse r = Get(h, "/memory", "GET", AdminScope::kReadOnly);
  EXPECT_EQ(r.status, 200);
  auto doc = base::ParseJson(r.body);
  ASSERT_TRUE(doc.has_value()) << r.body;
  for (const char* key :
       {"allocated", "heap_size", "pageheap_unmapped", "pageheap_free", "total_physical_bytes"}) {
    ASSERT_TRUE(doc->root().Find(key).has_value()) << key;
    EXPECT_TRUE(doc->root().Find(key)->AsString().has_value()) << key;
  }
  const auto number = [&](const char* key) {
    return std::stoull(std::string(*doc->root().Find(key)->AsString()));
  };
#if !defined(__SANITIZE_ADDRESS__)
  // glibc's mallinfo2; under ASan the sanitizer's allocator owns the heap and mallinfo2 is zeros.
  EXPECT_GT(number("allocated"), 0u);
#endif
  EXPECT_GE(number("heap_size"), number("allocated"));
  EXPECT_GT(number("total_physical_bytes"), 0u);
}

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : base::kLoggerNames) {
      auto logger = spdlog::get(name);
      if (!logger) logger = spdlog::null_logger_mt(name);
      logger->set_level(spdlog::level::info);
    }
  }
  FakeHandler h;
};

TEST_F(LoggingTest, ListsSetsAllAndSetsOne) {
  net::HttpResponse r = Get(h, "/logging", "GET", AdminScope::kReadOnly);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            "active loggers:\n  conn: info\n  policy: info\n  xds: info\n  inject: info\n"
            "  admin: info\n");
  // Setting is a mutation: not on the TCP endpoint.
  EXPECT_EQ(Get(h, "/logging?level=debug", "POST", AdminScope::kReadOnly).status, 403);
  EXPECT_EQ(spdlog::get("conn")->level(), spdlog::level::info);
  r = Get(h, "/logging?level=debug", "POST");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            "active loggers:\n  conn: debug\n  policy: debug\n  xds: debug\n  inject: debug\n"
            "  admin: debug\n");
  r = Get(h, "/logging?conn=trace&xds=off", "POST");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(spdlog::get("conn")->level(), spdlog::level::trace);
  EXPECT_EQ(spdlog::get("xds")->level(), spdlog::level::off);
  EXPECT_EQ(spdlog::get("policy")->level(), spdlog::level::debug);
}

TEST_F(LoggingTest, BadRequestsChangeNothing) {
  net::HttpResponse r = Get(h, "/logging?conn=debug&level=loud", "POST");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("loud"), std::string::npos) << r.body;
  r = Get(h, "/logging?conn=debug&nosuch=debug", "POST");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("unknown logger \"nosuch\""), std::string::npos) << r.body;
  EXPECT_EQ(spdlog::get("conn")->level(), spdlog::level::info);
  EXPECT_EQ(Get(h, "/logging", "PUT").status, 400);  // a mutation that is not a POST
}

// Envoy's help: any other path lists every endpoint, one line each, with a 404.
TEST(AdminTest, UnknownPathListsEveryEndpoint) {
  FakeHandler h;
  const net::HttpResponse r = Get(h, "/nope", "GET", AdminScope::kReadOnly);
  EXPECT_EQ(r.status, 404);
  EXPECT_TRUE(r.body.starts_with("admin commands are:\n")) << r.body;
  size_t lines = 0;
  for (const AdminEndpoint& e : kAdminEndpoints) {
    EXPECT_NE(r.body.find(std::string("\n  ") + e.path + ": "), std::string::npos) << e.path;
    ++lines;
  }
  EXPECT_EQ(static_cast<size_t>(std::count(r.body.begin(), r.body.end(), '\n')), lines + 1);
  for (const char* path : {"/server_info", "/quitquitquit", "/drain_listeners", "/logging",
                           "/memory", "/ready", "/stats/prometheus", "/config_dump", "/flows"}) {
    EXPECT_NE(r.body.find(std::string("  ") + path + ": "), std::string::npos) << path;
  }
}

// The metrics listener (reachable from the network): /stats/prometheus only, every other path
// 404 without the listing, the mutating verbs included.
TEST(AdminTest, MetricsScopeServesOnlyStats) {
  FakeHandler h;
  h.state = "LIVE";
  const net::HttpResponse stats = Get(h, "/stats/prometheus", "GET", AdminScope::kMetricsOnly);
  EXPECT_EQ(stats.status, 200);
  EXPECT_EQ(stats.body, "x 1\n");
  for (const AdminEndpoint& e : kAdminEndpoints) {
    if (std::string_view(e.path) == "/stats/prometheus") continue;
    for (const char* method : {"GET", "POST"}) {
      const net::HttpResponse r = Get(h, e.path, method, AdminScope::kMetricsOnly);
      EXPECT_EQ(r.status, 404) << e.path << " " << method;
      EXPECT_EQ(r.body.find("admin commands"), std::string::npos) << r.body;
    }
  }
  EXPECT_EQ(Get(h, "/nope", "GET", AdminScope::kMetricsOnly).status, 404);
  EXPECT_EQ(Get(h, "/stats/prometheus", "POST", AdminScope::kMetricsOnly).status, 405);
  EXPECT_EQ(h.drains + h.quits + h.drain_listeners.size(), 0u);
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
