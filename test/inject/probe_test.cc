// Tests inject/probe.h against the proxy's real admin endpoint (proxy/admin.h) on a Unix socket
// and on loopback TCP (port 0): /ready and POST /drain through the socket the injected probe
// uses, /drain refused on TCP, and the errors that make `picket-inject probe` exit 1 or 2.
#include "inject/probe.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "proxy/admin.h"

namespace picket::inject {
namespace {

class CountingHandler : public proxy::AdminHandler {
 public:
  std::string ServerState() const override { return state; }
  std::string PrometheusStats() const override { return ""; }
  std::string ConfigDump() const override { return "{}"; }
  std::vector<std::string> Flows(const std::string&) const override { return {}; }
  void Drain() override { ++drains; }
  std::string state = "LIVE";
  int drains = 0;
};

class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    // Under /tmp, not TEST_TMPDIR: a socket path must fit sun_path (108 bytes).
    std::string dir_template = "/tmp/picket-probe-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
    dir_ = dir_template;
    socket_ = dir_ + "/admin/admin.sock";
    unix_ = std::make_unique<proxy::AdminServer>(&loop_, handler_, proxy::AdminScope::kFull);
    auto listening = unix_->ListenUnix(socket_);
    ASSERT_TRUE(listening) << listening.error().ToString();
    tcp_ = std::make_unique<proxy::AdminServer>(&loop_, handler_, proxy::AdminScope::kReadOnly);
    auto tcp_listening = tcp_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(tcp_listening) << tcp_listening.error().ToString();
  }

  void TearDown() override {
    if (unix_) unix_->Close();
    if (tcp_) tcp_->Close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    unix_.reset();
    tcp_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
    unlink(socket_.c_str());
    rmdir((dir_ + "/admin").c_str());
    rmdir(dir_.c_str());
  }

  // Runs the blocking probe on a thread while this thread drives the loop.
  std::expected<int, ProbeError> Run(const ProbeRequest& request) {
    auto result = std::async(std::launch::async, [request] { return Probe(request); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (result.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready &&
           std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop_, UV_RUN_NOWAIT);
    }
    return result.get();
  }

  ProbeRequest OnSocket(std::string path, std::string method = "GET") {
    ProbeRequest r;
    r.socket = socket_;
    r.path = std::move(path);
    r.method = std::move(method);
    return r;
  }

  uv_loop_t loop_;
  CountingHandler handler_;
  std::string dir_;
  std::string socket_;
  std::unique_ptr<proxy::AdminServer> unix_;
  std::unique_ptr<proxy::AdminServer> tcp_;
};

TEST_F(ProbeTest, ReadinessAndDrainThroughTheAdminSocket) {
  EXPECT_EQ(Run(OnSocket("/ready")), 200);
  handler_.state = "PRE_INITIALIZING";
  EXPECT_EQ(Run(OnSocket("/ready")), 503);
  EXPECT_EQ(Run(OnSocket("/drain", "POST")), 200);
  EXPECT_EQ(handler_.drains, 1);
}

TEST_F(ProbeTest, LoopbackTcpIsReadOnly) {
  ProbeRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(tcp_->port()) + "/ready";
  EXPECT_EQ(Run(r), 200);
  r.url = "http://127.0.0.1:" + std::to_string(tcp_->port()) + "/drain";
  r.method = "POST";
  EXPECT_EQ(Run(r), 403);
  EXPECT_EQ(handler_.drains, 0);
}

TEST_F(ProbeTest, ErrorsSayWhetherTheRequestOrTheEndpointIsWrong) {
  auto missing = Run([&] {
    ProbeRequest r = OnSocket("/ready");
    r.socket = dir_ + "/admin/none.sock";
    return r;
  }());
  ASSERT_FALSE(missing.has_value());
  EXPECT_FALSE(missing.error().usage);
  EXPECT_NE(missing.error().error.ToString().find("none.sock"), std::string::npos);
  for (ProbeRequest bad : {OnSocket("/ready", "DELETE"), OnSocket("ready")}) {
    auto r = Probe(bad);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().usage) << r.error().error.ToString();
  }
  ProbeRequest remote;
  remote.url = "http://example.com/ready";
  EXPECT_TRUE(Probe(remote).error().usage);
  remote.url = "http://127.0.0.1:0/ready";
  EXPECT_EQ(Probe(remote).error().error.field, "--url");
}

}  // namespace
}  // namespace picket::inject
