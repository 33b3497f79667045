// e2e: picket-init in real network namespaces (needs root; fails loudly without it).
//
// Topology, made per test and removed after it: namespace "app" (the pod) and "peer" joined by a
// veth pair, 10.231.N.0/24 and fd00:231:N::/64 on the link, and 10.232.N.0/24 / fd00:232:N::/64
// routed from app to peer (destinations that exist only in this test). No packet leaves the two
// namespaces: captured connections end at listeners inside "app".
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "test/e2e/init_util.h"

namespace picket::e2e {
namespace {

// The proxy's uid: listeners standing in for the proxy on 15001/15006 are created as it, or
// picket-init's listener guard rejects their SYN-ACKs.
constexpr uid_t kProxyUid = 1337;

std::string InitBinary() {
  char cwd[PATH_MAX];
  return std::string(getcwd(cwd, sizeof cwd)) + "/inject/picket-init";
}

bool HasPendingConnection(int listen_fd) {
  pollfd p{listen_fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

// A connection attempt that fails at once (a reset), not by timing out (a dropped SYN is
// retransmitted after a second).
bool RefusedAtOnce(const Netns& from, const std::string& addr, uint16_t port) {
  const auto start = std::chrono::steady_clock::now();
  const int fd = ConnectFrom(from, addr, port, 2000);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  if (fd >= 0) {
    close(fd);
    return false;
  }
  return elapsed < std::chrono::milliseconds(800);
}

class InitE2E : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "this e2e test creates network namespaces and iptables rules: "
                                "run it as root (it does not skip)";
    const int pid = getpid();
    n_ = std::to_string(pid % 250 + 1);
    app_ = std::make_unique<Netns>("pk-init-" + std::to_string(pid) + "-app");
    peer_ = std::make_unique<Netns>("pk-init-" + std::to_string(pid) + "-peer");
    const std::string va = "pkia" + std::to_string(pid), vp = "pkip" + std::to_string(pid);
    e2e::Run({"ip", "link", "add", va, "netns", app_->name(), "type", "veth", "peer", "name", vp,
              "netns", peer_->name()});
    app_->Exec({"ip", "addr", "add", AppV4() + "/24", "dev", va});
    app_->Exec({"ip", "addr", "add", AppV6() + "/64", "dev", va, "nodad"});
    app_->Exec({"ip", "link", "set", va, "up"});
    peer_->Exec({"ip", "addr", "add", PeerV4() + "/24", "dev", vp});
    peer_->Exec({"ip", "addr", "add", PeerV6() + "/64", "dev", vp, "nodad"});
    peer_->Exec({"ip", "link", "set", vp, "up"});
    app_->Exec({"ip", "route", "add", "10.232." + n_ + ".0/24", "via", PeerV4()});
    app_->Exec({"ip", "-6", "route", "add", "fd00:232:" + n_ + "::/64", "via", PeerV6()});
  }

  void TearDown() override {
    for (int fd : fds_) close(fd);
    app_.reset();  // deleting the namespace removes its links and rules
    peer_.reset();
  }

  int Keep(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

  std::string AppV4() const { return "10.231." + n_ + ".1"; }
  std::string PeerV4() const { return "10.231." + n_ + ".2"; }
  std::string AppV6() const { return "fd00:231:" + n_ + "::1"; }
  std::string PeerV6() const { return "fd00:231:" + n_ + "::2"; }

  // Runs picket-init inside the app namespace.
  inject::CommandResult Init(std::vector<std::string> args, bool check = true) {
    args.insert(args.begin(), InitBinary());
    return app_->Exec(args, check);
  }

  std::string Save(const char* tool, const char* table = "nat") {
    std::string out = app_->Exec({tool, "-t", table}).out;
    std::string kept;  // drop the timestamped comment lines
    size_t pos = 0;
    while (pos < out.size()) {
      size_t end = out.find('\n', pos);
      std::string line = out.substr(pos, end - pos);
      if (line.rfind("#", 0) != 0) kept += line + "\n";
      pos = end == std::string::npos ? out.size() : end + 1;
    }
    return kept;
  }

  void ExpectNoPicketRules() {
    for (const char* tool : {"iptables-save", "ip6tables-save"}) {
      std::string all = app_->Exec({tool}).out;
      EXPECT_EQ(all.find("PICKET_"), std::string::npos) << tool << ":\n" << all;
    }
  }

  std::string n_;
  std::unique_ptr<Netns> app_, peer_;
  std::vector<int> fds_;
};

TEST_F(InitE2E, OutboundTcpOfTheAppReachesTheOutboundListenerWithItsOriginalDestination) {
  Init({});
  const int l4 = Keep(ListenIn(*app_, "0.0.0.0", 15001, kProxyUid));
  const int l6 = Keep(ListenIn(*app_, "::", 15001, kProxyUid));
  const int local = Keep(ListenIn(*app_, "127.0.0.1", 18080));
  ASSERT_GE(l4, 0);
  ASSERT_GE(l6, 0);
  struct Target {
    std::string addr;
    uint16_t port;
    bool v6;
  };
  const std::vector<Target> targets{
      {"10.232." + n_ + ".7", 80, false},
      {"10.232." + n_ + ".8", 5432, false},
      {PeerV4(), 9999, false},
      {"10.231." + n_ + ".99", 1, false},
      {"fd00:232:" + n_ + "::7", 443, true},
      {PeerV6(), 65535, true},
      {"fd00:231:" + n_ + "::99", 22, true},
  };
  for (const Target& t : targets) {
    SCOPED_TRACE(t.addr + " port " + std::to_string(t.port));
    const int c = Keep(ConnectFrom(*app_, t.addr, t.port));
    ASSERT_GE(c, 0) << "connect failed: not redirected?";
    const int a = Keep(AcceptWithin(t.v6 ? l6 : l4, 3000));
    ASSERT_GE(a, 0) << "the outbound listener got nothing";
    const std::string want =
        t.v6 ? "[" + t.addr + "]:" + std::to_string(t.port) : t.addr + ":" + std::to_string(t.port);
    EXPECT_EQ(OriginalDestination(a, t.v6), want);
  }
  // localhost is never captured.
  const int c = Keep(ConnectFrom(*app_, "127.0.0.1", 18080));
  ASSERT_GE(c, 0);
  EXPECT_GE(Keep(AcceptWithin(local, 3000)), 0);
  EXPECT_FALSE(HasPendingConnection(l4));
}

TEST_F(InitE2E, TheProxyUidIsNotCaptured) {
  Init({});
  const int l4 = Keep(ListenIn(*app_, "0.0.0.0", 15001, kProxyUid));
  const int l6 = Keep(ListenIn(*app_, "::", 15001, kProxyUid));
  const int p4 = Keep(ListenIn(*peer_, PeerV4(), 7000));
  const int p6 = Keep(ListenIn(*peer_, PeerV6(), 7000));
  ASSERT_TRUE(l4 >= 0 && l6 >= 0 && p4 >= 0 && p6 >= 0);

  const std::string v4 = PeerV4(), v6 = PeerV6();
  const int nsfd = open(("/var/run/netns/" + app_->name()).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(nsfd, 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Child: join the app namespace as uid/gid 1337 and connect to the peer directly.
    if (setns(nsfd, CLONE_NEWNET) != 0 || setgroups(0, nullptr) != 0 ||
        setresgid(1337, 1337, 1337) != 0 || setresuid(1337, 1337, 1337) != 0) {
      _exit(10);
    }
    int failures = 0;
    sockaddr_in a4{};
    a4.sin_family = AF_INET;
    a4.sin_port = htons(7000);
    inet_pton(AF_INET, v4.c_str(), &a4.sin_addr);
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(7000);
    inet_pton(AF_INET6, v6.c_str(), &a6.sin6_addr);
    timeval tv{3, 0};
    int s4 = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s4, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s4, reinterpret_cast<sockaddr*>(&a4), sizeof a4) != 0) failures |= 1;
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    setsockopt(s6, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s6, reinterpret_cast<sockaddr*>(&a6), sizeof a6) != 0) failures |= 2;
    _exit(failures);
  }
  close(nsfd);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "uid 1337 could not reach the peer (bits: 1=v4 2=v6)";
  EXPECT_GE(Keep(AcceptWithin(p4, 3000)), 0)
      << "IPv4 connection of uid 1337 did not reach the peer";
  EXPECT_GE(Keep(AcceptWithin(p6, 3000)), 0)
      << "IPv6 connection of uid 1337 did not reach the peer";
  EXPECT_FALSE(HasPendingConnection(l4));
  EXPECT_FALSE(HasPendingConnection(l6));

  // The same connection from the app's uid (root here) is captured.
  ASSERT_GE(Keep(ConnectFrom(*app_, PeerV4(), 7000)), 0);
  const int a = Keep(AcceptWithin(l4, 3000));
  ASSERT_GE(a, 0);
  EXPECT_EQ(OriginalDestination(a, false), PeerV4() + ":7000");
  EXPECT_FALSE(HasPendingConnection(p4));
}

TEST_F(InitE2E, InboundTcpToAnyPortReachesTheInboundListener) {
  Init({"--exclude-inbound-ports=9100"});
  const int l4 = Keep(ListenIn(*app_, "0.0.0.0", 15006, kProxyUid));
  const int l6 = Keep(ListenIn(*app_, "::", 15006, kProxyUid));
  const int readiness = Keep(ListenIn(*app_, "0.0.0.0", 15021));
  const int metrics = Keep(ListenIn(*app_, "::", 9100));
  ASSERT_TRUE(l4 >= 0 && l6 >= 0 && readiness >= 0 && metrics >= 0);
  for (uint16_t port : {80, 8080, 31337, 15001}) {
    SCOPED_TRACE("port " + std::to_string(port));
    ASSERT_GE(Keep(ConnectFrom(*peer_, AppV4(), port)), 0);
    int a = Keep(AcceptWithin(l4, 3000));
    ASSERT_GE(a, 0);
    EXPECT_EQ(OriginalDestination(a, false), AppV4() + ":" + std::to_string(port));
    ASSERT_GE(Keep(ConnectFrom(*peer_, AppV6(), port)), 0);
    a = Keep(AcceptWithin(l6, 3000));
    ASSERT_GE(a, 0);
    EXPECT_EQ(OriginalDestination(a, true), "[" + AppV6() + "]:" + std::to_string(port));
  }
  // Excluded ports (the readiness port always, 9100 by flag) reach their own listeners.
  ASSERT_GE(Keep(ConnectFrom(*peer_, AppV4(), 15021)), 0);
  EXPECT_GE(Keep(AcceptWithin(readiness, 3000)), 0);
  ASSERT_GE(Keep(ConnectFrom(*peer_, AppV6(), 9100)), 0);
  EXPECT_GE(Keep(AcceptWithin(metrics, 3000)), 0);
  EXPECT_FALSE(HasPendingConnection(l4));
  EXPECT_FALSE(HasPendingConnection(l6));
}

// Fail closed: with the verdict queue's rules and no sidecar reading the queue, the first packet
// of every new UDP flow is dropped, both ways and in both families; with --udp-sctp=false (or
// before picket-init) the same datagrams arrive, which shows the test can see them.
TEST_F(InitE2E, NewUdpFlowsAreDroppedWithoutASidecar) {
  struct Pair {
    std::string app, peer;
  };
  const std::vector<Pair> pairs{{AppV4(), PeerV4()}, {AppV6(), PeerV6()}};
  auto exchange = [&](const Pair& p, uint16_t port) {
    // Returns bit 1: app → peer arrived, bit 2: peer → app arrived. Fresh ports: new flows.
    int result = 0;
    const int peer = Keep(UdpSocketIn(*peer_, p.peer, port));
    const int app = Keep(UdpSocketIn(*app_, p.app, port));
    if (peer < 0 || app < 0) return -1;
    // Both directions are new flows of their own (different source ports).
    const int app_client = Keep(UdpSocketIn(*app_, p.app, 0));
    const int peer_client = Keep(UdpSocketIn(*peer_, p.peer, 0));
    EXPECT_TRUE(SendUdp(app_client, p.peer, port, "out"));
    EXPECT_TRUE(SendUdp(peer_client, p.app, port, "in"));
    if (ReceiveUdpWithin(peer, 500) == "out") result |= 1;
    if (ReceiveUdpWithin(app, 500) == "in") result |= 2;
    return result;
  };
  for (const Pair& p : pairs) EXPECT_EQ(exchange(p, 7100), 3) << p.app << ": without rules";
  Init({});
  for (const Pair& p : pairs) EXPECT_EQ(exchange(p, 7101), 0) << p.app << ": not dropped";
  Init({"--udp-sctp=false"});
  for (const Pair& p : pairs) EXPECT_EQ(exchange(p, 7102), 3) << p.app << ": opted out";
  for (const char* table : {"nat", "mangle", "filter"}) {
    const std::string saved = app_->Exec({"iptables-save", "-t", table}).out;
    EXPECT_EQ(saved.find("PICKET_DGRAM"), std::string::npos) << saved;
  }
}

TEST_F(InitE2E, RerunChangesNothingAndCleanupRemovesEverything) {
  Init({});
  const std::string v4 = Save("iptables-save"), v6 = Save("ip6tables-save");
  EXPECT_NE(v4.find(":PICKET_OUTPUT"), std::string::npos) << v4;
  EXPECT_NE(v6.find(":PICKET_OUTPUT"), std::string::npos) << v6;
  // UDP/SCTP: new flows in nat, packets conntrack cannot place in filter; nothing in mangle.
  EXPECT_NE(v4.find("-A POSTROUTING -p udp -j PICKET_DGRAM_OUT\n"), std::string::npos) << v4;
  EXPECT_NE(v6.find("-A PREROUTING -p sctp -j PICKET_DGRAM_IN\n"), std::string::npos) << v6;
  EXPECT_EQ(Save("iptables-save", "mangle").find("PICKET_"), std::string::npos);
  const std::string m4 = Save("iptables-save", "mangle"), m6 = Save("ip6tables-save", "mangle");
  // The listener guard (filter table), one jump per family.
  const std::string f4 = Save("iptables-save", "filter"), f6 = Save("ip6tables-save", "filter");
  EXPECT_NE(f4.find(":PICKET_LISTEN_GUARD"), std::string::npos) << f4;
  EXPECT_NE(f6.find(":PICKET_LISTEN_GUARD"), std::string::npos) << f6;
  Init({});
  EXPECT_EQ(Save("iptables-save"), v4);
  EXPECT_EQ(Save("ip6tables-save"), v6);
  EXPECT_EQ(Save("iptables-save", "mangle"), m4);
  EXPECT_EQ(Save("ip6tables-save", "mangle"), m6);
  EXPECT_EQ(Save("iptables-save", "filter"), f4);
  EXPECT_EQ(Save("ip6tables-save", "filter"), f6);
  Init({"--cleanup"});
  ExpectNoPicketRules();
  Init({"--cleanup"});  // nothing left to remove is fine
  ExpectNoPicketRules();
}

// --capture=verdict: each new TCP flow's first packet is marked "reject" and queued to the
// sidecar with --queue-bypass (mangle), what is still so marked is reset (filter), and nat only
// redirects what the sidecar marked for the relay. With no sidecar bound to the queue every new
// flow is refused at once, both ways and in both families (fail closed); loopback is never judged.
// Re-running changes nothing, relay mode removes every PICKET_TCP_* chain and jump, and cleanup
// leaves nothing of ours.
TEST_F(InitE2E, VerdictModeInstallsConvergesSwitchesAndCleansUp) {
  Init({"--capture=verdict"});
  for (const char* tool : {"iptables-save", "ip6tables-save"}) {
    SCOPED_TRACE(tool);
    const std::string mangle = Save(tool, "mangle"), filter = Save(tool, "filter"),
                      nat = Save(tool, "nat");
    for (const char* line :
         {":PICKET_TCP_IN - [0:0]", ":PICKET_TCP_OUT - [0:0]", ":PICKET_TCP_JUDGE - [0:0]",
          "-A PREROUTING -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j PICKET_TCP_IN",
          "-A OUTPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j PICKET_TCP_OUT",
          "-A PICKET_TCP_IN -i lo -j RETURN", "-A PICKET_TCP_IN -j PICKET_TCP_JUDGE",
          "-A PICKET_TCP_OUT -m owner --uid-owner 1337 -j RETURN",
          "-A PICKET_TCP_OUT -o lo -j RETURN", "-A PICKET_TCP_OUT -j PICKET_TCP_JUDGE",
          "-A PICKET_TCP_JUDGE -m mark --mark 0x30000/0x30000 -j RETURN",
          "-A PICKET_TCP_JUDGE -j MARK --set-xmark 0x10000/0x30000",
          "-A PICKET_TCP_JUDGE -j NFQUEUE --queue-num 15000 --queue-bypass"}) {
      EXPECT_NE(mangle.find(std::string(line) + "\n"), std::string::npos) << line << "\n" << mangle;
    }
    for (const char* line :
         {":PICKET_TCP_REJECT - [0:0]", ":PICKET_LISTEN_GUARD - [0:0]", ":PICKET_DGRAM_IN - [0:0]",
          "-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j PICKET_TCP_REJECT",
          "-A OUTPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j PICKET_TCP_REJECT",
          "-A PICKET_TCP_REJECT -p tcp -m mark --mark 0x10000/0x30000 -j REJECT --reject-with "
          "tcp-reset"}) {
      EXPECT_NE(filter.find(std::string(line) + "\n"), std::string::npos) << line << "\n" << filter;
    }
    // No TCP in nat either way (the sidecar routes TCP to Services to itself): only the
    // UDP/SCTP capture.
    EXPECT_EQ(nat.find("-p tcp"), std::string::npos) << nat;
    EXPECT_EQ(nat.find("PICKET_OUTPUT"), std::string::npos) << nat;
    EXPECT_NE(nat.find("-A PREROUTING -p udp -j PICKET_DGRAM_IN\n"), std::string::npos) << nat;
  }

  // No sidecar reads the queue: refused at once (a reset, not a timeout), nothing accepted.
  const int p4 = Keep(ListenIn(*peer_, PeerV4(), 7200));
  const int p6 = Keep(ListenIn(*peer_, PeerV6(), 7200));
  const int a4 = Keep(ListenIn(*app_, "0.0.0.0", 7201));
  const int a6 = Keep(ListenIn(*app_, "::", 7202));
  ASSERT_TRUE(p4 >= 0 && p6 >= 0 && a4 >= 0 && a6 >= 0);
  EXPECT_TRUE(RefusedAtOnce(*app_, PeerV4(), 7200));
  EXPECT_TRUE(RefusedAtOnce(*app_, PeerV6(), 7200));
  EXPECT_TRUE(RefusedAtOnce(*peer_, AppV4(), 7201));
  EXPECT_TRUE(RefusedAtOnce(*peer_, AppV6(), 7202));
  EXPECT_FALSE(HasPendingConnection(p4));
  EXPECT_FALSE(HasPendingConnection(p6));
  EXPECT_FALSE(HasPendingConnection(a4));
  EXPECT_FALSE(HasPendingConnection(a6));
  // The pod talking to itself is never judged.
  ASSERT_GE(Keep(ConnectFrom(*app_, "127.0.0.1", 7201)), 0);
  EXPECT_GE(Keep(AcceptWithin(a4, 3000)), 0);

  // A re-run changes nothing, in any table of either family.
  std::vector<std::string> before;
  for (const char* tool : {"iptables-save", "ip6tables-save"}) {
    for (const char* table : {"nat", "mangle", "filter"}) before.push_back(Save(tool, table));
  }
  Init({"--capture=verdict"});
  std::vector<std::string> after;
  for (const char* tool : {"iptables-save", "ip6tables-save"}) {
    for (const char* table : {"nat", "mangle", "filter"}) after.push_back(Save(tool, table));
  }
  EXPECT_EQ(after, before);

  // Relay mode: no PICKET_TCP_* chain or jump left; relay's rules are back.
  Init({});
  for (const char* tool : {"iptables-save", "ip6tables-save"}) {
    const std::string all = app_->Exec({tool}).out;
    EXPECT_EQ(all.find("PICKET_TCP_"), std::string::npos) << tool << ":\n" << all;
    EXPECT_NE(all.find("-A PREROUTING -p tcp -j PICKET_INBOUND\n"), std::string::npos) << all;
    EXPECT_NE(all.find(":PICKET_DGRAM_OUT"), std::string::npos) << all;
    EXPECT_EQ(all.find("0x20000/0x30000"), std::string::npos) << all;
  }

  // Verdict again, then cleanup: nothing of ours in any table, and the refused flows connect.
  Init({"--capture=verdict"});
  EXPECT_NE(Save("ip6tables-save", "filter").find(":PICKET_TCP_REJECT"), std::string::npos);
  Init({"--cleanup"});
  ExpectNoPicketRules();
  ASSERT_GE(Keep(ConnectFrom(*app_, PeerV6(), 7200)), 0);
  EXPECT_GE(Keep(AcceptWithin(p6, 3000)), 0);
  ASSERT_GE(Keep(ConnectFrom(*peer_, AppV4(), 7201)), 0);
  EXPECT_GE(Keep(AcceptWithin(a4, 3000)), 0);
}

TEST_F(InitE2E, AFailureMidInstallLeavesNoRule) {
  // ip6tables-restore replaced by a script that fails after IPv4 was applied.
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string script = std::string(tmp != nullptr ? tmp : "/tmp") +
                             "/failing-ip6tables-restore-" + std::to_string(getpid()) + ".sh";
  {
    std::ofstream f(script);
    f << "#!/bin/sh\n"
         "cat >/dev/null\n"
         "echo 'ip6tables-restore: simulated failure on line 9' >&2\n"
         "exit 4\n";
  }
  chmod(script.c_str(), 0755);
  const auto r = Init({"--ip6tables-restore=" + script}, /*check=*/false);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(script + " --noflush"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("simulated failure on line 9"), std::string::npos) << r.err;
  ExpectNoPicketRules();

  // Over an existing install, a failed refresh leaves the previous rules exactly as they were.
  Init({});
  const std::string v4 = Save("iptables-save"), v6 = Save("ip6tables-save");
  const auto r2 = Init({"--outbound-port=16001", "--ip6tables-restore=" + script}, false);
  EXPECT_NE(r2.exit_code, 0);
  EXPECT_EQ(Save("iptables-save"), v4);
  EXPECT_EQ(Save("ip6tables-save"), v6);
  unlink(script.c_str());
}

}  // namespace
}  // namespace picket::e2e
