// The control plane end to end, as root: `picket-control serve` in a "node" network namespace,
// three pods as namespaces routed through it, in each pod a sidecar (xds_sidecar_probe: the
// proxy/xds client picket-proxy embeds, enforcing ingress on one port) taking its policy over
// mutual TLS. Real connections between the pods show enforcement; the time from a manifest
// write to the new policy being in force in every sidecar is measured and printed (p50/p99);
// killing the server changes nothing for traffic; restarting it resyncs every sidecar; a
// sidecar with pod A's certificate asking as pod B is refused; a snapshot a sidecar rejects is
// NACKed and shown on the server's admin endpoint. Fails loudly without root.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
constexpr uint16_t kAdminPort = 15013;
constexpr int kPods = 3;  // a (client), b (server), c (other client)
const char* kNames[kPods] = {"a", "b", "c"};
// Pod i is 10.89.<i+1>.2, the node's end of its link 10.89.<i+1>.1.
constexpr char kSubnet[] = "10.89";

std::string NodeIp(int i) { return NodeIpOn(kSubnet, i); }
std::string PodIp(int i) { return PodIpOn(kSubnet, i); }

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string PodsYaml(bool with_d) {
  std::string out = "apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e}\n";
  for (int i = 0; i < kPods + (with_d ? 1 : 0); ++i) {
    const std::string name = i < kPods ? kNames[i] : "d";
    const std::string ip = i < kPods ? PodIp(i) : "10.89.9.9";
    // d is a replica of a (app: a): every policy's peer, so in every sidecar's scope (a pod no
    // rule names would not be pushed to any sidecar at all).
    const std::string app = i < kPods ? name : "a";
    out += "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
           ", namespace: e2e, labels: {app: " + app +
           "}}\nspec: {containers: [{name: c, "
           "image: x}]}\nstatus: {podIP: " +
           ip + "}\n";
  }
  return out;
}

// Every pod's ingress: only from app=`from` on kAppPort (+ `extra_port`, so each edit is a new
// version for every sidecar).
std::string PolicyYaml(const std::string& from, int extra_port) {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b-in, "
         "namespace: e2e}\nspec:\n  podSelector: {}\n  policyTypes: "
         "[Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: " +
         from + "}}}]\n    ports: [{port: " + std::to_string(kAppPort) +
         "}, {port: " + std::to_string(extra_port) + "}]\n";
}

// "applied <ns> <version>" lines of a probe's log.
std::vector<std::pair<int64_t, std::string>> Applied(const std::string& log) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::istringstream in(ReadFile(log));
  std::string word, version;
  long long ns;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    if (l >> word && word == "applied" && l >> ns >> version) out.emplace_back(ns, version);
  }
  return out;
}

class XdsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "xds_e2e_test needs root (network namespaces); run as root";
    dir_ = fs::path(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") /
           ("xds_e2e_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "manifests");
    net_ = std::make_unique<PodNetwork>("x", kSubnet);
    const std::string net_error = net_->Create(kPods);
    ASSERT_EQ(net_error, "");
    std::vector<CertFor> certs;
    for (int i = 0; i < kPods; ++i) certs.push_back({NodeIp(i), std::string("e2e/") + kNames[i]});
    ASSERT_NO_FATAL_FAILURE(MakeCerts(dir_ / "certs", certs));
    AtomicWrite(dir_ / "manifests" / "pods.yaml", PodsYaml(false));
    AtomicWrite(dir_ / "manifests" / "policy.yaml", PolicyYaml("a", 9100));
    StartServer();
    for (int i = 0; i < kPods; ++i) {
      probes_.push_back(std::make_unique<Child>());
      StartProbe(i, kNames[i], i == 0 ? "10.89.9.9" : "");
    }
    for (int i = 0; i < kPods; ++i) {
      ASSERT_TRUE(WaitFor([&] { return !Applied(ProbeLog(i)).empty(); }))
          << "sidecar " << kNames[i] << " never applied a policy:\n"
          << ReadFile(ProbeLog(i));
    }
  }

  void TearDown() override {
    probes_.clear();  // Child destructors kill by PID
    server_.reset();
    net_.reset();  // links, then namespaces
    if (!HasFailure()) fs::remove_all(dir_);
  }

  void StartServer() {
    server_ = std::make_unique<Child>();
    StartControl(*server_, net_->node(), dir_,
                 {"--admin", "127.0.0.1:" + std::to_string(kAdminPort)});
  }

  std::string ProbeLog(int i) const {
    return (dir_ / ("probe-" + std::to_string(i) + ".log")).string();
  }

  void StartProbe(int i, const std::string& as_pod, const std::string& reject_peer) {
    const fs::path c = dir_ / "certs";
    const std::string cert = (c / "pods" / ("e2e." + std::string(kNames[i]) + ".pem")).string();
    const std::string key = (c / "pods" / ("e2e." + std::string(kNames[i]) + "-key.pem")).string();
    std::vector<std::string> argv = {Runfile("test/e2e/xds_sidecar_probe"),
                                     "--xds",
                                     NodeIp(i) + ":" + std::to_string(kXdsPort),
                                     "--cert",
                                     cert,
                                     "--key",
                                     key,
                                     "--ca",
                                     (c / "ca.pem").string(),
                                     "--ns",
                                     "e2e",
                                     "--pod",
                                     as_pod,
                                     "--port",
                                     std::to_string(kAppPort)};
    if (!reject_peer.empty()) argv.insert(argv.end(), {"--reject-peer", reject_peer});
    ASSERT_TRUE(probes_[i]->Start(net_->pod(i), argv, std::nullopt, ProbeLog(i)));
  }

  // Connects from pod `from` to b:kAppPort; true when b's sidecar answered "ok".
  bool Reaches(int from) {
    const int fd = ConnectFrom(net_->pod(from), PodIp(1), kAppPort, std::chrono::seconds(2));
    if (fd < 0) return false;
    char buf[8] = {};
    const ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n == 3 && std::string(buf, 3) == "ok\n";
  }

  // GET /status from the server's admin endpoint inside the node namespace.
  std::string AdminStatus() {
    const int fd = ConnectFrom(net_->node(), "127.0.0.1", kAdminPort, std::chrono::seconds(2));
    if (fd < 0) return "";
    const std::string req = "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
    if (write(fd, req.data(), req.size()) < 0) return "";
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
    close(fd);
    return out;
  }

  fs::path dir_;
  std::unique_ptr<PodNetwork> net_;
  std::unique_ptr<Child> server_;
  std::vector<std::unique_ptr<Child>> probes_;
};

TEST_F(XdsE2eTest, PolicyEditsReachEverySidecarAndChangeTraffic) {
  EXPECT_TRUE(Reaches(0)) << "a → b should be allowed";
  EXPECT_FALSE(Reaches(2)) << "c → b should be denied";

  // Edit the policy repeatedly; each write must be enforced in every sidecar.
  std::vector<double> latencies_ms;
  for (int edit = 1; edit <= 10; ++edit) {
    std::vector<size_t> before;
    for (int i = 0; i < kPods; ++i) before.push_back(Applied(ProbeLog(i)).size());
    const std::string from = edit % 2 == 1 ? "c" : "a";
    const int64_t t0 = RealtimeNs();
    AtomicWrite(dir_ / "manifests" / "policy.yaml", PolicyYaml(from, 9100 + edit));
    for (int i = 0; i < kPods; ++i) {
      ASSERT_TRUE(WaitFor([&] { return Applied(ProbeLog(i)).size() > before[i]; }))
          << "edit " << edit << " never reached sidecar " << kNames[i];
    }
    // Enforced. A change that widens a scope is two applies (the new peers' entries, then the
    // policy naming them: control/PROTOCOL.md §6.1): the latency is to each sidecar's last.
    EXPECT_TRUE(WaitFor([&] { return Reaches(2) == (from == "c") && Reaches(0) == (from == "a"); }))
        << "edit " << edit;
    for (int i = 0; i < kPods; ++i) {
      latencies_ms.push_back((Applied(ProbeLog(i)).back().first - t0) / 1e6);
    }
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p50 = latencies_ms[latencies_ms.size() / 2];
  const double p99 = latencies_ms[std::min(latencies_ms.size() - 1,
                                           static_cast<size_t>(latencies_ms.size() * 0.99))];
  std::printf(
      "file write -> enforcement in every sidecar: n=%zu p50=%.1f ms p99=%.1f ms "
      "max=%.1f ms\n",
      latencies_ms.size(), p50, p99, latencies_ms.back());
  RecordProperty("enforcement_p50_ms", std::to_string(p50));
  RecordProperty("enforcement_p99_ms", std::to_string(p99));
  EXPECT_LE(p99, 100.0);
}

TEST_F(XdsE2eTest, ServerDownKeepsLastGoodAndRestartResyncs) {
  server_->Signal(SIGKILL);
  ASSERT_TRUE(server_->Wait(std::chrono::seconds(5)).has_value());
  // Traffic is unchanged with the server gone.
  EXPECT_TRUE(Reaches(0));
  EXPECT_FALSE(Reaches(2));
  // A change made while it is down is picked up by every sidecar after the restart.
  AtomicWrite(dir_ / "manifests" / "policy.yaml", PolicyYaml("c", 9200));
  std::vector<size_t> before;
  for (int i = 0; i < kPods; ++i) before.push_back(Applied(ProbeLog(i)).size());
  StartServer();
  for (int i = 0; i < kPods; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Applied(ProbeLog(i)).size() > before[i]; }))
        << "sidecar " << kNames[i] << " did not resync";
  }
  EXPECT_TRUE(WaitFor([&] { return Reaches(2); }));
  EXPECT_FALSE(Reaches(0));
  ASSERT_TRUE(WaitFor([&] {
    const std::string s = AdminStatus();
    size_t n = 0;
    for (size_t p = s.find("\"state\":\"active\""); p != std::string::npos;
         p = s.find("\"state\":\"active\"", p + 1)) {
      ++n;
    }
    return n == kPods;
  })) << AdminStatus();
}

TEST_F(XdsE2eTest, OtherPodsIdentityIsRefused) {
  // Pod c's certificate, claiming to be b: refused, and b's policy never reaches it.
  Child impostor;
  const std::string log = (dir_ / "impostor.log").string();
  const fs::path c = dir_ / "certs";
  ASSERT_TRUE(impostor.Start(
      net_->pod(2),
      {Runfile("test/e2e/xds_sidecar_probe"), "--xds", NodeIp(2) + ":" + std::to_string(kXdsPort),
       "--cert", (c / "pods" / "e2e.c.pem").string(), "--key",
       (c / "pods" / "e2e.c-key.pem").string(), "--ca", (c / "ca.pem").string(), "--ns", "e2e",
       "--pod", "b", "--port", std::to_string(kAppPort + 1)},
      std::nullopt, log));
  ASSERT_TRUE(WaitFor([&] {
    return AdminStatus().find("\"streams_refused\":0") == std::string::npos;
  })) << AdminStatus();
  EXPECT_TRUE(Applied(log).empty());
}

TEST_F(XdsE2eTest, RejectedSnapshotIsNackedAndVisibleOnTheServer) {
  // Sidecar a rejects any snapshot naming 10.89.9.9; adding pod d with that IP makes it NACK.
  const size_t before = Applied(ProbeLog(0)).size();
  AtomicWrite(dir_ / "manifests" / "pods.yaml", PodsYaml(true));
  ASSERT_TRUE(WaitFor([&] {
    return AdminStatus().find("address map names forbidden peer 10.89.9.9") != std::string::npos;
  })) << AdminStatus();
  EXPECT_EQ(Applied(ProbeLog(0)).size(), before);  // a kept its last good policy
  EXPECT_TRUE(Reaches(0));
}

}  // namespace
}  // namespace picket::e2e
