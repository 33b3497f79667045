// The real picket-proxy binary's admin: its /stats/prometheus passes the real promtool with only
// the documented lint notes (README "Sidecar metrics"), on the admin endpoints and on the
// metrics listener (which serves nothing else), /server_info describes the process, the
// TCP endpoint refuses /quitquitquit, and POST /quitquitquit on admin.socket makes the process
// exit 0 (waited for through a pidfd, with a deadline; no sleeps).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/json.h"
#include "test/base/cli_contract.h"
#include "test/base/promtool.h"

namespace picket::proxy {
namespace {

// Envoy's names kept for dashboards although they are counters without "_total" (README
// "Sidecar metrics", the exceptions table). Nothing else may be reported.
const std::set<std::string> kDocumentedLintNotes = {
    "envoy_tcp_idle_timeout counter metrics should have \"_total\" suffix",
    "envoy_tcp_rbac_allowed counter metrics should have \"_total\" suffix",
    "envoy_tcp_rbac_denied counter metrics should have \"_total\" suffix",
};

// A port the kernel picked for 127.0.0.1, released for the proxy to bind.
uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

// One HTTP/1.1 request on a connected stream socket; the whole response (the admin closes).
std::string Exchange(int fd, const std::string& method, const std::string& target) {
  const std::string request = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return "write failed";
  }
  std::string response;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) response.append(buf, static_cast<size_t>(n));
  close(fd);
  return response;
}

std::string UnixRequest(const std::string& path, const std::string& method,
                        const std::string& target) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return std::string("connect failed: ") + std::strerror(errno);
  }
  return Exchange(fd, method, target);
}

std::string TcpRequest(uint16_t port, const std::string& method, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return std::string("connect failed: ") + std::strerror(errno);
  }
  return Exchange(fd, method, target);
}

std::string Body(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

class AdminBinaryTest : public ::testing::Test {
 protected:
  // Bootstrap `process_log: stdout`: the log is read from the proxy's stdout and its stderr is
  // kept apart (other_) to show it stays empty.
  virtual bool ProcessLogOnStdout() const { return false; }

  void SetUp() override {
    char made[] = "/tmp/picket-admin-XXXXXX";  // sun_path is 108 bytes: not TEST_TMPDIR
    ASSERT_NE(mkdtemp(made), nullptr) << std::strerror(errno);
    dir_ = made;
    socket_ = dir_ + "/admin/admin.sock";
    admin_port_ = FreePort();
    metrics_port_ = FreePort();
    config_ = dir_ + "/bootstrap.yaml";
    // The pod's address is loopback here: the metrics listener binds node.ips.
    std::ofstream(config_) << "node: {namespace: shop, name: web-0, ips: [127.0.0.1]}\n"
                           << "policy_file: " << dir_ << "/policy.json\n"
                           << "listeners: {outbound_port: " << FreePort()
                           << ", inbound_port: " << FreePort() << "}\n"
                           << "admin: {address: \"127.0.0.1:" << admin_port_
                           << "\", socket: " << socket_ << ", metrics_port: " << metrics_port_
                           << "}\n"
                           << (ProcessLogOnStdout() ? "process_log: stdout\n" : "");
    int err[2];
    ASSERT_EQ(pipe2(err, O_CLOEXEC), 0);
    int other[2];
    ASSERT_EQ(pipe2(other, O_CLOEXEC), 0);
    const std::string binary = picket::testing::RunfilePath("proxy/picket-proxy");
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      const int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(err[1], ProcessLogOnStdout() ? 1 : 2);
      dup2(other[1], ProcessLogOnStdout() ? 2 : 1);
      execl(binary.c_str(), binary.c_str(), "--config", config_.c_str(), nullptr);
      _exit(127);
    }
    close(err[1]);
    close(other[1]);
    stderr_ = err[0];
    other_ = other[0];
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    ASSERT_GE(pidfd_, 0) << std::strerror(errno);
    // The start line is logged once every listener and the admin endpoints are bound.
    ASSERT_TRUE(ReadStderrUntil("picket-proxy shop/web-0: outbound")) << log_;
  }

  void TearDown() override {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (pidfd_ >= 0) close(pidfd_);
    if (stderr_ >= 0) close(stderr_);
    if (other_ >= 0) close(other_);
    std::filesystem::remove_all(dir_);
  }

  // Reads the proxy's log stream until `text` appears or it ends; bounded by a 20 s deadline.
  bool ReadStderrUntil(const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (log_.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{stderr_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t n = read(stderr_, buf, sizeof buf);
      if (n <= 0) return false;
      log_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  // Waits (pidfd, 20 s deadline) for the process to end; its wait status, or -1.
  int WaitForExit() {
    pollfd p{pidfd_, POLLIN, 0};
    if (poll(&p, 1, 20000) != 1) return -1;
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    reaped_ = true;
    return status;
  }

  std::string dir_, socket_, config_, log_;
  uint16_t admin_port_ = 0;
  uint16_t metrics_port_ = 0;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int stderr_ = -1;  // the stream the process log goes to
  int other_ = -1;   // the other one of stdout and stderr
  bool reaped_ = false;
};

TEST_F(AdminBinaryTest, MetricsPassPromtoolWithOnlyTheDocumentedNotes) {
  const std::string response = UnixRequest(socket_, "GET", "/stats/prometheus");
  ASSERT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  const std::string body = Body(response);
  EXPECT_TRUE(body.starts_with("# HELP picket_build_info ")) << body;
  EXPECT_EQ(picket::testing::PromtoolUnexpected(body, kDocumentedLintNotes), "") << body;
  // The TCP endpoint serves the same families.
  const std::string tcp = Body(TcpRequest(admin_port_, "GET", "/stats/prometheus"));
  EXPECT_EQ(picket::testing::PromtoolUnexpected(tcp, kDocumentedLintNotes), "") << tcp;
}

// The metrics listener (admin.metrics_port, what Prometheus scrapes from outside the pod): the
// same families for promtool, and nothing else — /quitquitquit there is a 404 and the process
// keeps running.
TEST_F(AdminBinaryTest, MetricsPortServesOnlyStats) {
  const std::string response = TcpRequest(metrics_port_, "GET", "/stats/prometheus");
  ASSERT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  EXPECT_EQ(picket::testing::PromtoolUnexpected(Body(response), kDocumentedLintNotes), "")
      << response;
  for (const char* method : {"POST", "GET"}) {
    for (const char* path : {"/quitquitquit", "/drain_listeners", "/config_dump", "/"}) {
      const std::string r = TcpRequest(metrics_port_, method, path);
      EXPECT_TRUE(r.starts_with("HTTP/1.1 404")) << method << " " << path << ": " << r;
    }
  }
  EXPECT_TRUE(TcpRequest(admin_port_, "GET", "/ready").starts_with("HTTP/1.1 503")) << "alive";
}

TEST_F(AdminBinaryTest, ServerInfoDescribesTheProcess) {
  const std::string response = TcpRequest(admin_port_, "GET", "/server_info");
  ASSERT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  auto doc = base::ParseJson(Body(response));
  ASSERT_TRUE(doc.has_value()) << response;
  // No policy file yet: the proxy fails closed and says so.
  EXPECT_EQ(doc->root().Find("state")->AsString(), "PRE_INITIALIZING");
  const base::JsonValue options = *doc->root().Find("command_line_options");
  EXPECT_EQ(options.Find("config_path")->AsString(), config_);
  EXPECT_EQ(options.Find("service_node")->AsString(), "shop/web-0");
  EXPECT_EQ(options.Find("log_level")->AsString(), "info");
  EXPECT_EQ(options.Find("drain_time")->AsString(), "20s");
}

// A classic Job sidecar: the app, done, tells its proxy to exit — over admin.socket only.
TEST_F(AdminBinaryTest, QuitQuitQuitOnTheAdminSocketExitsZero) {
  const std::string refused = TcpRequest(admin_port_, "POST", "/quitquitquit");
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 403")) << refused;
  const std::string response = UnixRequest(socket_, "POST", "/quitquitquit");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  EXPECT_EQ(Body(response), "OK\n");
  const int status = WaitForExit();
  ASSERT_NE(status, -1) << "picket-proxy did not exit within 20 s\n" << log_;
  ReadStderrUntil("\x01");  // the rest of the log, up to EOF
  ASSERT_TRUE(WIFEXITED(status)) << status << "\n" << log_;
  EXPECT_EQ(WEXITSTATUS(status), 0) << log_;
  EXPECT_NE(log_.find("quitquitquit"), std::string::npos) << log_;
}

// Bootstrap `process_log: stdout`: the process log is on stdout (one stream with the flow log,
// whose default path is stdout), stderr stays empty to the end.
class ProcessLogOnStdoutTest : public AdminBinaryTest {
 protected:
  bool ProcessLogOnStdout() const override { return true; }
};

TEST_F(ProcessLogOnStdoutTest, StartAndExitLinesAreOnStdout) {
  // SetUp found the start line on stdout.
  EXPECT_NE(log_.find(" info admin picket-proxy shop/web-0: outbound"), std::string::npos) << log_;
  const std::string response = UnixRequest(socket_, "POST", "/quitquitquit");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200")) << response;
  const int status = WaitForExit();
  ASSERT_NE(status, -1) << "picket-proxy did not exit within 20 s\n" << log_;
  ReadStderrUntil("\x01");  // the rest of stdout, up to EOF
  EXPECT_NE(log_.find("quitquitquit"), std::string::npos) << log_;
  std::string err;
  char buf[4096];
  ssize_t n;
  while ((n = read(other_, buf, sizeof buf)) > 0) err.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace picket::proxy
