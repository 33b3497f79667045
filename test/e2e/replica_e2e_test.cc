// Two control-server replicas, kill one, as root: the Kubernetes API test server and two
// `picket-control serve --kubeconfig` processes (replica A on kXdsPort, B on kXdsPort + 1) in a
// "node" network namespace, three pods as namespaces, in each a sidecar probe (xds_sidecar_probe:
// proxy/xds's XdsAgent with the production reconnect backoff, 250 ms initial, enforcing ingress
// on one port) given A then B. A is SIGKILLed by PID; every sidecar must be connected to B within
// 1 s (the probes print each connection change with its CLOCK_REALTIME time; p50/max printed), no
// probe across the pods may change its answer, no sidecar may apply anything new, and B's /status
// must show nothing sent: every subscription resumed (control/PROTOCOL.md §4.5).
// Fails loudly without root.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
constexpr int kPods = 3;  // a may reach every pod; b and c reach none
const char* kNames[kPods] = {"a", "b", "c"};
constexpr char kSubnet[] = "10.87";
constexpr uint16_t kAdminA = 15113;  // inside the node namespace, which only this test uses
constexpr uint16_t kAdminB = 15114;

std::string NodeIp(int i) { return NodeIpOn(kSubnet, i); }
std::string PodIp(int i) { return PodIpOn(kSubnet, i); }

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string SeedJson() {
  std::string items = R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"e2e"}})";
  for (int i = 0; i < kPods; ++i) {
    items += R"(,{"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + std::string(kNames[i]) +
             R"(","namespace":"e2e","labels":{"app":")" + kNames[i] +
             R"("}},"spec":{"containers":[{"name":"c","image":"x"}]},"status":{"phase":"Running",)"
             R"("podIP":")" +
             PodIp(i) + R"(","podIPs":[{"ip":")" + PodIp(i) + R"("}]}})";
  }
  items += R"(,{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":)"
           R"({"name":"from-a","namespace":"e2e"},"spec":{"podSelector":{},"policyTypes":)"
           R"(["Ingress"],"ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"a"}}}],)"
           R"("ports":[{"port":)" +
           std::to_string(kAppPort) + "}]}]}}";
  return R"({"apiVersion":"v1","kind":"List","items":[)" + items + "]}";
}

// The lines of a probe's log starting with `word`, split into words.
std::vector<std::vector<std::string>> Lines(const std::string& log, const std::string& word) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(ReadFile(log));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::vector<std::string> words;
    for (std::string w; l >> w;) words.push_back(w);
    if (!words.empty() && words[0] == word) out.push_back(std::move(words));
  }
  return out;
}

// The stats member `key` (an unsigned number) of a /status body; -1 if absent.
long long Stat(const std::string& status, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const size_t stats = status.find("\"stats\":{\"streams_accepted\"");  // the xDS server's
  if (stats == std::string::npos) return -1;
  const size_t at = status.find(needle, stats);
  if (at == std::string::npos) return -1;
  return std::atoll(status.c_str() + at + needle.size());
}

class ReplicaE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "replica_e2e_test needs root (network namespaces); run as root";
    dir_ = fs::path(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") /
           ("replica_e2e_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "api");
    net_ = std::make_unique<PodNetwork>("r", kSubnet);
    ASSERT_EQ(net_->Create(kPods), "");
    std::vector<CertFor> certs;
    for (int i = 0; i < kPods; ++i) certs.push_back({NodeIp(i), std::string("e2e/") + kNames[i]});
    ASSERT_NO_FATAL_FAILURE(MakeCerts(dir_ / "certs", certs));
    AtomicWrite(dir_ / "seed.json", SeedJson());
    api_ = std::make_unique<Child>();
    ASSERT_TRUE(
        api_->Start(net_->node(),
                    {"/usr/bin/python3", Runfile("test/k8s/apiserver/fake_apiserver.py"), "--dir",
                     (dir_ / "api").string(), "--seed", (dir_ / "seed.json").string()},
                    std::nullopt, (dir_ / "api.log").string()));
    ASSERT_TRUE(
        WaitFor([&] { return fs::exists(dir_ / "api" / "ready"); }, std::chrono::seconds(20)))
        << ReadFile((dir_ / "api.log").string());
    ASSERT_NO_FATAL_FAILURE(StartReplica(replica_a_, kXdsPort, kAdminA, "a"));
    ASSERT_NO_FATAL_FAILURE(StartReplica(replica_b_, kXdsPort + 1, kAdminB, "b"));
    const fs::path c = dir_ / "certs";
    for (int i = 0; i < kPods; ++i) {
      probes_.push_back(std::make_unique<Child>());
      const std::string base = (c / "pods" / ("e2e." + std::string(kNames[i]))).string();
      ASSERT_TRUE(probes_[i]->Start(
          net_->pod(i),
          {Runfile("test/e2e/xds_sidecar_probe"), "--xds", Address(i, kXdsPort), "--xds-fallback",
           Address(i, kXdsPort + 1), "--initial-backoff-ms", "250", "--cert", base + ".pem",
           "--key", base + "-key.pem", "--ca", (c / "ca.pem").string(), "--ns", "e2e", "--pod",
           kNames[i], "--port", std::to_string(kAppPort)},
          std::nullopt, ProbeLog(i)));
    }
    for (int i = 0; i < kPods; ++i) {
      ASSERT_TRUE(WaitFor([&] { return !Lines(ProbeLog(i), "applied").empty(); }))
          << "sidecar " << kNames[i] << " never applied a policy:\n"
          << ReadFile(ProbeLog(i));
    }
  }

  void TearDown() override {
    probes_.clear();  // Child destructors kill by PID
    replica_a_.reset();
    replica_b_.reset();
    if (api_) {
      api_->Signal(SIGTERM);
      if (!api_->Wait(std::chrono::seconds(5))) api_->Signal(SIGKILL);
      api_.reset();
    }
    net_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  void StartReplica(std::unique_ptr<Child>& replica, uint16_t port, uint16_t admin,
                    const std::string& name) {
    const fs::path c = dir_ / "certs";
    replica = std::make_unique<Child>();
    const std::string log = (dir_ / ("control-" + name + ".log")).string();
    ASSERT_TRUE(replica->Start(
        net_->node(),
        {Runfile("control/picket-control"), "serve", "--kubeconfig",
         (dir_ / "api" / "kubeconfig").string(), "--listen", "0.0.0.0:" + std::to_string(port),
         "--admin", "127.0.0.1:" + std::to_string(admin), "--tls-cert", (c / "server.pem").string(),
         "--tls-key", (c / "server-key.pem").string(), "--tls-ca", (c / "ca.pem").string(),
         "--debounce-ms", "0"},
        std::nullopt, log));
    // Ready: its first full list applied (a Service routes only to ready replicas).
    ASSERT_TRUE(WaitFor([&] { return AdminGet(net_->node(), "/ready", admin).starts_with("200"); },
                        std::chrono::seconds(20)))
        << ReadFile(log);
  }

  std::string Address(int pod, uint16_t port) const {
    return NodeIp(pod) + ":" + std::to_string(port);
  }
  std::string ProbeLog(int i) const {
    return (dir_ / ("probe-" + std::to_string(i) + ".log")).string();
  }

  // Every pod to every other pod on kAppPort: "a>b:1 a>c:1 b>a:0 …".
  std::string Matrix() {
    std::string out;
    for (int from = 0; from < kPods; ++from) {
      for (int to = 0; to < kPods; ++to) {
        if (from == to) continue;
        const int fd =
            ConnectFrom(net_->pod(from), PodIp(to), kAppPort, std::chrono::milliseconds(500));
        bool ok = false;
        if (fd >= 0) {
          char buf[8] = {};
          ok = read(fd, buf, sizeof buf) == 3 && std::string(buf, 3) == "ok\n";
          close(fd);
        }
        out += std::string(kNames[from]) + ">" + kNames[to] + ":" + (ok ? "1 " : "0 ");
      }
    }
    return out;
  }

  std::unique_ptr<PodNetwork> net_;
  std::unique_ptr<Child> api_;
  std::unique_ptr<Child> replica_a_;
  std::unique_ptr<Child> replica_b_;
  std::vector<std::unique_ptr<Child>> probes_;
  fs::path dir_;
};

TEST_F(ReplicaE2eTest, KillOneReplicaEverySidecarResumesOnTheOtherWithinOneSecond) {
  // Every sidecar is on A (its first server) with the policy applied.
  for (int i = 0; i < kPods; ++i) {
    ASSERT_TRUE(WaitFor([&] {
      const auto xds = Lines(ProbeLog(i), "xds");
      return !xds.empty() && xds.back().size() == 4 && xds.back()[2] == "connected" &&
             xds.back()[3] == Address(i, kXdsPort);
    })) << ReadFile(ProbeLog(i));
  }
  const std::string before = Matrix();
  EXPECT_EQ(before, "a>b:1 a>c:1 b>a:0 b>c:0 c>a:0 c>b:0 ");
  std::vector<size_t> applied;
  for (int i = 0; i < kPods; ++i) applied.push_back(Lines(ProbeLog(i), "applied").size());
  ASSERT_EQ(Stat(AdminGet(net_->node(), "/status", kAdminB), "streams_active"), 0);

  const int64_t killed_ns = RealtimeNs();
  replica_a_->Signal(SIGKILL);
  std::vector<double> failover_ms;
  for (int i = 0; i < kPods; ++i) {
    int64_t on_b = 0;
    EXPECT_TRUE(WaitFor(
        [&] {
          for (const auto& line : Lines(ProbeLog(i), "xds")) {
            if (line.size() == 4 && line[2] == "connected" && line[3] == Address(i, kXdsPort + 1)) {
              on_b = std::atoll(line[1].c_str());
              return true;
            }
          }
          return false;
        },
        std::chrono::seconds(5)))
        << "sidecar " << kNames[i] << " never reached replica B:\n"
        << ReadFile(ProbeLog(i));
    if (on_b != 0) failover_ms.push_back((on_b - killed_ns) / 1e6);
  }
  ASSERT_EQ(failover_ms.size(), static_cast<size_t>(kPods));
  std::sort(failover_ms.begin(), failover_ms.end());
  std::cout << "SIGKILL replica A -> every sidecar connected to B: p50 "
            << failover_ms[failover_ms.size() / 2] << " ms, max " << failover_ms.back()
            << " ms over " << kPods << " sidecars\n";
  EXPECT_LE(failover_ms.back(), 1000.0);

  // B resent nothing: every subscription (AddressEntry and PodPolicy per sidecar) resumed.
  std::string status;
  EXPECT_TRUE(WaitFor([&] {
    status = AdminGet(net_->node(), "/status", kAdminB);
    return Stat(status, "subscriptions_resumed") == 2 * kPods;
  })) << status;
  EXPECT_EQ(Stat(status, "streams_active"), kPods) << status;
  EXPECT_EQ(Stat(status, "responses_sent"), 0) << status;
  EXPECT_EQ(Stat(status, "resources_sent"), 0) << status;
  // Each sidecar holds its PodPolicy and the AddressEntries of its scope (from-a: every pod's
  // peers are app=a, and each pod sees itself): a holds 1 entry, b and c 2 each.
  EXPECT_EQ(Stat(status, "resources_skipped_on_resume"), kPods + 1 + 2 + 2) << status;
  std::cout << "replica B after the failover: responses_sent " << Stat(status, "responses_sent")
            << ", resources_sent " << Stat(status, "resources_sent")
            << ", resources_skipped_on_resume " << Stat(status, "resources_skipped_on_resume")
            << ", subscriptions_resumed " << Stat(status, "subscriptions_resumed") << "\n";

  // No decision changed and no sidecar applied anything.
  EXPECT_EQ(Matrix(), before);
  for (int i = 0; i < kPods; ++i) {
    EXPECT_EQ(Lines(ProbeLog(i), "applied").size(), applied[i]) << ReadFile(ProbeLog(i));
  }
}

}  // namespace
}  // namespace picket::e2e
