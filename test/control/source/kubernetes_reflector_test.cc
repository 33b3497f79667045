// Unit tests of control/source/kubernetes_reflector.h against a scripted HTTPS server on the same
// loop (127.0.0.1, port 0), which answers each request line exactly as the test says: paginated
// lists (limit / continue), an expired continue token (410) restarting the list from its first
// page, the objects replaced only when the last page arrived, and a watch resumed from the last
// BOOKMARK's resourceVersion after the server ended the stream.
#include "control/source/kubernetes_reflector.h"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/certs.h"
#include "net/tls_stream.h"

namespace picket::control::source {
namespace {

using Clock = std::chrono::steady_clock;

std::string Pod(const std::string& name, const std::string& ip, const std::string& rv) {
  return R"({"metadata":{"name":")" + name + R"(","namespace":"x","resourceVersion":")" + rv +
         R"("},"spec":{"containers":[{"name":"c","image":"i"}]},"status":{"podIPs":[{"ip":")" + ip +
         R"("}]}})";
}

std::string Json(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string Chunk(const std::string& data) {
  char size[16];
  snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

// One accepted connection: hands each request's target to the script, writes what it returns.
struct ScriptConn : net::TlsStream::Handler {
  net::TlsStream* stream = nullptr;
  std::string received;
  std::function<std::string(const std::string& target)> script;
  void OnTlsReady(net::TlsStream&) override {}
  void OnTlsData(net::TlsStream&, std::string_view data) override {
    received.append(data);
    size_t end;
    while ((end = received.find("\r\n\r\n")) != std::string::npos) {
      const std::string head = received.substr(0, end);
      received.erase(0, end + 4);
      const size_t sp1 = head.find(' ');
      const std::string target = head.substr(sp1 + 1, head.find(' ', sp1 + 1) - sp1 - 1);
      const std::string reply = script(target);
      if (stream != nullptr && !reply.empty()) (void)stream->Write(reply);
    }
  }
  void OnTlsClosed(net::TlsStream&, const std::string&) override { stream = nullptr; }
};

class KubeReflectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    auto ca = MakeCa("test-ca");
    ASSERT_TRUE(ca.has_value());
    auto leaf = MakeLeaf(*ca, {"server", {}, {"127.0.0.1"}, {}, 1});
    ASSERT_TRUE(leaf.has_value());
    server_tls_ = *net::TlsContext::CreateServerOnly(leaf->cert_pem, leaf->key_pem);
    uv_tcp_init(&loop_, &listener_);
    listener_.data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    ASSERT_EQ(uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0), 0);
    ASSERT_EQ(
        uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16,
                  [](uv_stream_t* s, int) { static_cast<KubeReflectorTest*>(s->data)->Accept(); }),
        0);
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    uv_timer_init(&loop_, &tick_);
    net::HttpClientOptions options;
    options.host = "127.0.0.1";
    options.port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    options.tls = *net::TlsContext::CreateClient(ca->cert_pem);
    client_ = std::make_unique<net::HttpClient>(&loop_, options);
  }

  void TearDown() override {
    reflector_.reset();
    client_.reset();
    for (auto& c : conns_) {
      if (c->stream != nullptr) std::exchange(c->stream, nullptr)->Close();
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void Accept() {
    auto conn = std::make_unique<ScriptConn>();
    auto stream =
        net::TlsStream::Accept(reinterpret_cast<uv_stream_t*>(&listener_), server_tls_, conn.get());
    ASSERT_TRUE(stream.has_value());
    conn->stream = *stream;
    ScriptConn* raw = conn.get();
    conns_.push_back(std::move(conn));
    raw->script = [this, raw](const std::string& target) {
      targets_.push_back(target);
      return script_(target, *raw);
    };
  }

  void StartReflector(ReflectorOptions options) {
    reflector_ = std::make_unique<KubeReflector>(&loop_, WatchedKinds()[1], client_.get(), &token_,
                                                 options, 7, [this] {
                                                   ++changes_;
                                                   sizes_.push_back(reflector_->objects().size());
                                                 });
    reflector_->Start();
  }

  bool RunUntil(const std::function<bool()>& done) {
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 5, 5);
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!done() && Clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    uv_timer_stop(&tick_);
    return done();
  }

  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_timer_t tick_{};
  std::shared_ptr<net::TlsContext> server_tls_;
  std::vector<std::unique_ptr<ScriptConn>> conns_;
  std::function<std::string(const std::string&, ScriptConn&)> script_;
  std::vector<std::string> targets_;
  std::unique_ptr<net::HttpClient> client_;
  BearerToken token_{"t", ""};
  std::unique_ptr<KubeReflector> reflector_;
  int changes_ = 0;
  std::vector<size_t> sizes_;  // objects held at each change
};

TEST_F(KubeReflectorTest, PagesExpiredContinueRestartsAndWatchResumesFromBookmark) {
  int continued = 0;
  ScriptConn* watcher = nullptr;
  script_ = [&](const std::string& target, ScriptConn& conn) -> std::string {
    if (target == "/api/v1/pods?limit=2") {
      return Json(200, R"({"metadata":{"continue":"c+1/="},"items":[)" + Pod("a", "10.0.0.1", "3") +
                           "," + Pod("b", "10.0.0.2", "4") + "]}");
    }
    if (target == "/api/v1/pods?limit=2&continue=c%2B1%2F%3D") {
      if (++continued == 1) {
        return Json(410, R"({"kind":"Status","status":"Failure","reason":"Expired","code":410})");
      }
      return Json(200, R"({"metadata":{"resourceVersion":"7"},"items":[)" +
                           Pod("c", "10.0.0.3", "6") + "]}");
    }
    if (target.starts_with("/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=7&")) {
      watcher = &conn;
      return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
             Chunk(R"({"type":"ADDED","object":)" + Pod("d", "10.0.0.4", "8") + "}\n") +
             Chunk(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})"
                   "\n") +
             "0\r\n\r\n";  // the server ends the watch (its timeoutSeconds)
    }
    if (target.starts_with("/api/v1/pods?watch=1&allowWatchBookmarks=true&resourceVersion=9&")) {
      return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";  // stays open
    }
    return Json(404, "{}");
  };
  ReflectorOptions options;
  options.page_size = 2;
  options.watch_timeout_s = 10;
  StartReflector(options);
  ASSERT_TRUE(RunUntil([&] {
    return targets_.size() >= 6 && targets_.back().find("resourceVersion=9") != std::string::npos;
  })) << ::testing::PrintToString(targets_);
  EXPECT_EQ(targets_[0], "/api/v1/pods?limit=2");
  EXPECT_EQ(targets_[1], "/api/v1/pods?limit=2&continue=c%2B1%2F%3D");  // 410 Expired
  EXPECT_EQ(targets_[2], "/api/v1/pods?limit=2");                       // the list starts over
  EXPECT_EQ(targets_[3], "/api/v1/pods?limit=2&continue=c%2B1%2F%3D");
  EXPECT_TRUE(
      targets_[4].starts_with("/api/v1/pods?watch=1&allowWatchBookmarks=true&"
                              "resourceVersion=7&timeoutSeconds="));
  // timeoutSeconds is drawn from [10, 20).
  const int timeout = std::stoi(targets_[4].substr(targets_[4].rfind('=') + 1));
  EXPECT_GE(timeout, 10);
  EXPECT_LT(timeout, 20);
  const ReflectorCounters& c = reflector_->counters();
  EXPECT_EQ(c.relists_410, 1u);
  EXPECT_EQ(c.lists, 1u);
  EXPECT_EQ(c.bookmarks, 1u);
  // The list replaced the (empty) objects in one step with both pages' objects; then the
  // watch added one: no change ever showed a partial list.
  ASSERT_GE(sizes_.size(), 2u);
  EXPECT_EQ(sizes_[0], 3u);
  EXPECT_EQ(sizes_[1], 4u);
  EXPECT_EQ(reflector_->resource_version(), "9");
  EXPECT_NE(watcher, nullptr);
}

}  // namespace
}  // namespace picket::control::source
