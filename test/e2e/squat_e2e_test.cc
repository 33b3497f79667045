// The proxy's listener ports cannot be squatted by the app (issue 11, item 7), end to end, as
// root: pod "a" (10.95.1.2) with the real picket-init capture rules and the real picket-proxy as
// uid 1337 taking its policy from `picket-control serve`; pod "b" (10.95.2.2) a client without a
// sidecar whom a's ingress allows on the app port. The sidecar is killed; an app as uid 1000 binds
// 15006 and 15001 (IPv4 and IPv6, as the proxy does) in a's namespace. Then:
//   - b's connection to a's app port, redirected to the squatter, never completes and the squatter
//     accepts nothing — also when every SYN is answered with a SYN cookie (a SYN-ACK without a
//     socket, net.ipv4.tcp_syncookies=2);
//   - the app's own outbound connections, IPv4 and IPv6, redirected to its own 15001, fail too
//     (the IPv6 one checks the ip6tables guard: a's link gets fd00:95::2/64 for a route);
//   - the proxy started while the ports are squatted exits 1 and never becomes ready;
//   - with the guard's jumps deleted the same squatter does accept b's connection and the app's
//     own IPv4 and IPv6 connections (the attack is real and the guard is what stops it);
//     picket-init run again puts the guard back;
//   - once the squatter is gone the proxy starts (as uid 1337, SO_REUSEADDR) and b reaches the
//     app through it again.
// Fails loudly without root.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
constexpr char kSubnet[] = "10.95";
constexpr uid_t kAppUid = 1000;

// The squatting app: binds the proxy's two listener ports on 0.0.0.0 and ::, says so, makes one
// outbound connection of its own per family (captured to its own 15001 by iptables and by
// ip6tables), then accepts whatever arrives and says so for each, until SIGTERM.
constexpr char kSquatter[] = R"(import os, select, signal, socket, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
listeners = []
for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for port in (15006, 15001):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        s.listen(16)
        s.setblocking(False)
        listeners.append(s)
print("listening as uid", os.getuid(), flush=True)
for family, name, dest in ((socket.AF_INET, "outbound", sys.argv[1]),
                           (socket.AF_INET6, "outbound6", sys.argv[2])):
    out = socket.socket(family, socket.SOCK_STREAM)
    out.settimeout(2)
    try:
        out.connect((dest, 80))
        print(name, "connected", flush=True)
    except OSError as e:
        print(name, "failed:", e, flush=True)
while True:
    ready, _, _ = select.select(listeners, [], [])
    for s in ready:
        conn, peer = s.accept()
        print("accepted", peer, flush=True)
        conn.close()
)";

std::string PodIp(int i) { return PodIpOn(kSubnet, i); }

std::string Manifests() {
  std::string out = "apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e}\n";
  const char* names[] = {"a", "b"};
  for (int i = 0; i < 2; ++i) {
    out += "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + std::string(names[i]) +
           ", namespace: e2e, labels: {app: " + names[i] +
           "}}\nspec: {containers: [{name: c, image: x}]}\nstatus: {podIP: " + PodIp(i) + "}\n";
  }
  out +=
      "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: in, "
      "namespace: e2e}\nspec:\n  podSelector: {matchLabels: {app: a}}\n  policyTypes: [Ingress]\n"
      "  ingress:\n  - from: [{podSelector: {matchLabels: {app: b}}}]\n    ports: [{port: " +
      std::to_string(kAppPort) + "}]\n";
  return out;
}

// Whether a TCP connection from `ns` to addr:port completes within `timeout` (non-blocking
// connect and poll: a SYN-ACK that never comes is a timeout, not an error).
bool Completes(const Netns& ns, const std::string& addr, uint16_t port,
               std::chrono::milliseconds timeout) {
  return ns.InNetns([&] {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int done = 0;
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      done = 1;
    } else if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int err = 0;
      socklen_t len = sizeof err;
      if (poll(&p, 1, static_cast<int>(timeout.count())) == 1 &&
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        done = 1;
      }
    }
    close(fd);
    return done;
  }) == 1;
}

class SquatE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(RequireRoot("squat_e2e_test"));
    signal(SIGPIPE, SIG_IGN);
    ASSERT_NO_FATAL_FAILURE(MakeSharedDir("picket-squat-e2e", &dir_));
    net_ = std::make_unique<PodNetwork>("sq", kSubnet);
    ASSERT_EQ(net_->Create(2), "");
    CommandResult init = pod_a().Exec({Runfile("inject/picket-init")});
    ASSERT_EQ(init.status, 0) << init.output;
    // An IPv6 address on a's link, so an IPv6 destination has a route (and is captured).
    CommandResult v6 = pod_a().Exec(
        {"sh", "-c",
         "ip -6 addr add fd00:95::2/64 nodad dev $(ls /sys/class/net | grep -vx lo | head -1)"});
    ASSERT_EQ(v6.status, 0) << v6.output;
    ASSERT_NO_FATAL_FAILURE(MakeCerts(dir_ / "certs", {{NodeIpOn(kSubnet, 0), "e2e/a"}}));
    AtomicWrite(dir_ / "manifests" / "all.yaml", Manifests());
    ASSERT_NO_FATAL_FAILURE(StartControl(control_, net_->node(), dir_));
    app_ = std::make_unique<AnswerServer>(pod_a(), PodIp(0), kAppPort,
                                          [](int c) { (void)!send(c, "ok\n", 3, MSG_NOSIGNAL); });
    ASSERT_TRUE(app_->ok());
    proxy_bin_ = CopyProxy(dir_);
    const fs::path script = dir_ / "squatter.py";
    ASSERT_TRUE(WriteFile(script.string(), kSquatter));
    chmod(script.c_str(), 0644);
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const char* log : {"a1/proxy.log", "a2/proxy.log", "a3/proxy.log", "squatter.log"}) {
        std::fprintf(stderr, "--- %s ---\n%s\n", log, ReadFile((dir_ / log).string()).c_str());
      }
    }
    proxy_.reset();
    squatter_.reset();
    app_.reset();
    control_.Signal(SIGKILL);
    net_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  Netns& pod_a() { return net_->pod(0); }
  Netns& pod_b() { return net_->pod(1); }

  // Pod a's sidecar, its files in <dir>/<run>.
  Sidecar SidecarA(const std::string& run) const {
    return {"e2e", "a", PodIp(0), NodeIpOn(kSubnet, 0) + ":" + std::to_string(kXdsPort),
            (dir_ / run).string()};
  }
  void StartProxy(const std::string& run) {
    proxy_ = std::make_unique<Child>();
    StartSidecar(*proxy_, pod_a(), dir_ / "certs", proxy_bin_, SidecarA(run));
  }

  // b → a's app through a's sidecar: true when the app's "ok" came through.
  bool Reaches() {
    const int fd = ConnectFrom(pod_b(), PodIp(0), kAppPort, std::chrono::seconds(2));
    if (fd < 0) return false;
    char buf[8] = {};
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    close(fd);
    return n == 3 && std::string(buf, 3) == "ok\n";
  }

  std::string SquatterLog() { return ReadFile((dir_ / "squatter.log").string()); }

  fs::path dir_;
  std::unique_ptr<PodNetwork> net_;
  Child control_;
  std::unique_ptr<AnswerServer> app_;
  std::string proxy_bin_;
  std::unique_ptr<Child> proxy_;
  std::unique_ptr<Child> squatter_;
};

TEST_F(SquatE2eTest, SquattedListenerPortsCompleteNoConnection) {
  ASSERT_NO_FATAL_FAILURE(StartProxy("a1"));
  ASSERT_NO_FATAL_FAILURE(WaitReady(pod_a(), SidecarA("a1")));
  ASSERT_TRUE(WaitFor([&] { return Reaches(); })) << "b → a should be allowed";

  // The sidecar dies; the app takes its ports.
  proxy_->Signal(SIGKILL);
  ASSERT_TRUE(proxy_->Wait(std::chrono::seconds(5)).has_value());
  squatter_ = std::make_unique<Child>();
  ASSERT_TRUE(squatter_->Start(
      pod_a(), {"/usr/bin/python3", (dir_ / "squatter.py").string(), PodIp(1), "fd00:95::1"},
      kAppUid, (dir_ / "squatter.log").string()));
  ASSERT_TRUE(WaitFor([&] { return SquatterLog().find("outbound6 ") != std::string::npos; }))
      << SquatterLog();
  EXPECT_NE(SquatterLog().find("listening as uid 1000\n"), std::string::npos) << SquatterLog();
  // Captured, answered by no SYN-ACK: a timeout (not, say, an unreachable network).
  EXPECT_NE(SquatterLog().find("outbound failed: timed out"), std::string::npos) << SquatterLog();
  EXPECT_NE(SquatterLog().find("outbound6 failed: timed out"), std::string::npos) << SquatterLog();

  // Inbound to the app port lands on the squatter's 15006 and never completes.
  EXPECT_FALSE(Completes(pod_b(), PodIp(0), kAppPort, std::chrono::seconds(2)));
  // Every SYN answered with a cookie (no socket on the SYN-ACK): still nothing completes.
  CommandResult cookies = pod_a().Exec({"sysctl", "-qw", "net.ipv4.tcp_syncookies=2"});
  ASSERT_EQ(cookies.status, 0) << cookies.output;
  EXPECT_FALSE(Completes(pod_b(), PodIp(0), kAppPort, std::chrono::seconds(2)));
  cookies = pod_a().Exec({"sysctl", "-qw", "net.ipv4.tcp_syncookies=1"});
  ASSERT_EQ(cookies.status, 0) << cookies.output;

  // The proxy cannot bind what the app holds: it says so and exits 1, never ready.
  ASSERT_NO_FATAL_FAILURE(StartProxy("a2"));
  EXPECT_EQ(proxy_->Wait(std::chrono::seconds(10)), std::optional<int>(1));
  EXPECT_EQ(AdminGet(pod_a(), "/ready"), "");
  EXPECT_EQ(SquatterLog().find("accepted"), std::string::npos) << SquatterLog();

  // The guard is what stops it: without its jumps, the squatter accepts b's connection and the
  // app's own redirected connections, in both families.
  for (const char* tool : {"iptables", "ip6tables"}) {
    CommandResult unguard = pod_a().Exec({tool, "-D", "OUTPUT", "-p", "tcp", "-m", "multiport",
                                          "--sports", "15001,15006", "-m", "tcp", "--tcp-flags",
                                          "SYN,ACK", "SYN,ACK", "-j", "PICKET_LISTEN_GUARD"});
    ASSERT_EQ(unguard.status, 0) << tool << ": " << unguard.output;
  }
  EXPECT_TRUE(Completes(pod_b(), PodIp(0), kAppPort, std::chrono::seconds(2)));
  EXPECT_TRUE(WaitFor([&] { return SquatterLog().find("accepted") != std::string::npos; }))
      << SquatterLog();
  Child own;
  ASSERT_TRUE(own.Start(pod_a(),
                        {"/usr/bin/python3", "-c",
                         "import socket\n"
                         "for f, d in ((socket.AF_INET, '" +
                             PodIp(1) +
                             "'), (socket.AF_INET6, 'fd00:95::1')):\n"
                             "  s = socket.socket(f); s.settimeout(2); s.connect((d, 80))\n"
                             "print('both connected', flush=True)\n"},
                        kAppUid, (dir_ / "own.log").string()));
  EXPECT_EQ(own.Wait(std::chrono::seconds(10)), std::optional<int>(0))
      << ReadFile((dir_ / "own.log").string());
  CommandResult again = pod_a().Exec({Runfile("inject/picket-init")});
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_FALSE(Completes(pod_b(), PodIp(0), kAppPort, std::chrono::seconds(2)));

  // The squatter exits: the proxy binds again and b reaches the app through it.
  squatter_->Signal(SIGTERM);
  ASSERT_TRUE(squatter_->Wait(std::chrono::seconds(5)).has_value());
  ASSERT_NO_FATAL_FAILURE(StartProxy("a3"));
  ASSERT_NO_FATAL_FAILURE(WaitReady(pod_a(), SidecarA("a3")));
  EXPECT_TRUE(WaitFor([&] { return Reaches(); }));
  proxy_->Signal(SIGTERM);
  EXPECT_EQ(proxy_->Wait(std::chrono::seconds(10)), std::optional<int>(0));
}

}  // namespace
}  // namespace picket::e2e
