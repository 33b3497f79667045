// Per-pod identity end to end, as root (issue 13): the Kubernetes API test server and
// `picket-control serve --kubeconfig --csr-listen` in a "node" network namespace, three pods as
// namespaces, in each a sidecar probe (xds_sidecar_probe: proxy/xds's XdsAgent as picket-proxy
// wires it, enforcing ingress on one port) that starts with only its pod's projected token
// (a TokenRequest bound to the pod, made with Debian's kubectl 1.20 `create --raw`) and the CA
// bundle. Each obtains its certificate over HTTPS, opens its mutual-TLS stream with it, syncs
// its policy and enforces it on real connections. Then 10 s certificates over 60 s of traffic:
// every sidecar renews several times, no decision changes, no stream drops. Fails loudly
// without root.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr int kPods = 3;  // a (allowed client), b (server), c (refused client)
const char* kNames[kPods] = {"a", "b", "c"};
constexpr char kSubnet[] = "10.87";
constexpr uint16_t kCsrPort = 15014;
constexpr int kValidityS = 10;
constexpr int kTrafficS = 60;  // six certificate lifetimes

std::string NodeIp(int i) { return NodeIpOn(kSubnet, i); }
std::string PodIp(int i) { return PodIpOn(kSubnet, i); }

std::string KubectlPath() {
  const char* env = std::getenv("KUBECTL");
  return env != nullptr ? env : "/opt/kubectl-1.20/usr/bin/kubectl";
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
           R"({"name":"b-in","namespace":"e2e"},"spec":{"podSelector":{"matchLabels":)"
           R"({"app":"b"}},"policyTypes":["Ingress"],"ingress":[{"from":[{"podSelector":)"
           R"({"matchLabels":{"app":"a"}}}],"ports":[{"port":)" +
           std::to_string(kAppPort) + "}]}]}}";
  return R"({"apiVersion":"v1","kind":"List","items":[)" + items + "]}";
}

// Lines of a probe's log starting with `word`.
std::vector<std::string> Lines(const std::string& log, const std::string& word) {
  std::vector<std::string> out;
  std::istringstream in(ReadFile(log));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(word + " ", 0) == 0) out.push_back(line);
  }
  return out;
}

class IdentityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "identity_e2e_test needs root (network namespaces); run as root";
    ASSERT_TRUE(fs::exists(KubectlPath()))
        << "no kubectl at " << KubectlPath() << " (tools/install-deps.sh unpacks Debian's 1.20)";
    dir_ = fs::path(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") /
           ("identity_e2e_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "api");
    net_ = std::make_unique<PodNetwork>("i", kSubnet);
    ASSERT_EQ(net_->Create(kPods), "");
    std::vector<CertFor> servers;  // the control server's certificate names every node IP
    for (int i = 0; i < kPods; ++i) servers.push_back({NodeIp(i), "e2e/unused"});
    ASSERT_NO_FATAL_FAILURE(MakeCerts(dir_ / "certs", servers));
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

    const fs::path c = dir_ / "certs";
    server_ = std::make_unique<Child>();
    ASSERT_TRUE(server_->Start(net_->node(),
                               {Runfile("control/picket-control"),
                                "serve",
                                "--kubeconfig",
                                (dir_ / "api" / "kubeconfig").string(),
                                "--listen",
                                "0.0.0.0:" + std::to_string(kXdsPort),
                                "--admin",
                                "127.0.0.1:0",
                                "--tls-cert",
                                (c / "server.pem").string(),
                                "--tls-key",
                                (c / "server-key.pem").string(),
                                "--tls-ca",
                                (c / "ca.pem").string(),
                                "--debounce-ms",
                                "0",
                                "--csr-listen",
                                "0.0.0.0:" + std::to_string(kCsrPort),
                                "--ca-key",
                                (c / "ca-key.pem").string(),
                                "--cert-validity-s",
                                std::to_string(kValidityS)},
                               std::nullopt, (dir_ / "control.log").string()));
    for (int i = 0; i < kPods; ++i) {
      const std::string token_file = (dir_ / ("token-" + std::string(kNames[i]))).string();
      ASSERT_NO_FATAL_FAILURE(MintToken(kNames[i], token_file));
      probes_.push_back(std::make_unique<Child>());
      ASSERT_TRUE(probes_[i]->Start(
          net_->pod(i),
          {Runfile("test/e2e/xds_sidecar_probe"), "--xds",
           NodeIp(i) + ":" + std::to_string(kXdsPort), "--token-file", token_file, "--csr",
           NodeIp(i) + ":" + std::to_string(kCsrPort), "--ca", (c / "ca.pem").string(), "--ns",
           "e2e", "--pod", kNames[i], "--port", std::to_string(kAppPort)},
          std::nullopt, ProbeLog(i)));
    }
    for (int i = 0; i < kPods; ++i) {
      ASSERT_TRUE(WaitFor([&] { return !Lines(ProbeLog(i), "applied").empty(); }))
          << "sidecar " << kNames[i] << " never applied a policy:\n"
          << ReadFile(ProbeLog(i)) << "\ncontrol:\n"
          << ReadFile((dir_ / "control.log").string());
    }
  }

  void TearDown() override {
    probes_.clear();  // Child destructors kill by PID
    server_.reset();
    if (api_) {
      api_->Signal(SIGTERM);
      if (!api_->Wait(std::chrono::seconds(5))) api_->Signal(SIGKILL);
      api_.reset();
    }
    net_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // What kubelet does for a projected serviceAccountToken volume: a TokenRequest bound to the
  // pod (kubectl 1.20 has no `create token`: the raw POST), the token written to `file`.
  void MintToken(const std::string& pod, const std::string& file) {
    const std::string body = (dir_ / ("tokenrequest-" + pod + ".json")).string();
    AtomicWrite(body, R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",)"
                      R"("spec":{"audiences":["picket"],"expirationSeconds":3600,)"
                      R"("boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":")" +
                          pod + "\"}}}");
    const std::string out = (dir_ / ("tokenrequest-" + pod + ".out")).string();
    Child kubectl;
    ASSERT_TRUE(kubectl.Start(
        net_->node(),
        {KubectlPath(), "--kubeconfig", (dir_ / "api" / "kubeconfig").string(), "create", "--raw",
         "/api/v1/namespaces/e2e/serviceaccounts/default/token", "-f", body},
        std::nullopt, out));
    const std::optional<int> status = kubectl.Wait(std::chrono::seconds(20));
    ASSERT_TRUE(status.has_value()) << "kubectl did not finish";
    ASSERT_EQ(*status, 0) << ReadFile(out);
    const std::string text = ReadFile(out);
    const std::string key = "\"token\":\"";
    const size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos) << text;
    const size_t end = text.find('"', at + key.size());
    ASSERT_NE(end, std::string::npos) << text;
    AtomicWrite(file, text.substr(at + key.size(), end - at - key.size()));
  }

  std::string ProbeLog(int i) const {
    return (dir_ / ("probe-" + std::to_string(i) + ".log")).string();
  }

  bool Reaches(int from) {
    const int fd = ConnectFrom(net_->pod(from), PodIp(1), kAppPort, std::chrono::seconds(2));
    if (fd < 0) return false;
    char buf[8] = {};
    const ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    return n == 3 && std::string(buf, 3) == "ok\n";
  }

  fs::path dir_;
  std::unique_ptr<PodNetwork> net_;
  std::unique_ptr<Child> api_;
  std::unique_ptr<Child> server_;
  std::vector<std::unique_ptr<Child>> probes_;
};

TEST_F(IdentityE2eTest, SidecarsStartWithATokenAndRenewUnderTraffic) {
  // Every sidecar got its certificate before its stream.
  for (int i = 0; i < kPods; ++i) {
    EXPECT_FALSE(Lines(ProbeLog(i), "cert").empty()) << ReadFile(ProbeLog(i));
  }
  EXPECT_TRUE(Reaches(0)) << "a -> b must be allowed";
  EXPECT_FALSE(Reaches(2)) << "c -> b must be refused";

  // 60 s of traffic (6 certificate lifetimes): decisions never change.
  const auto end = Clock::now() + std::chrono::seconds(kTrafficS);
  int checks = 0, changed = 0;
  while (Clock::now() < end) {
    changed += Reaches(0) ? 0 : 1;
    changed += Reaches(2) ? 1 : 0;
    checks += 2;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // pacing, not sync
  }
  std::printf("identity e2e: %d decisions over %d s, %d changed\n", checks, kTrafficS, changed);
  EXPECT_EQ(changed, 0);
  for (int i = 0; i < kPods; ++i) {
    const auto certs = Lines(ProbeLog(i), "cert");
    // Issued at start, then every ~2/3 of 10 s (about 10 over 60 s): at least one per lifetime.
    EXPECT_GE(certs.size(), static_cast<size_t>(1 + kTrafficS / kValidityS))
        << "sidecar " << kNames[i] << ":\n"
        << ReadFile(ProbeLog(i));
    // One stream, never dropped: the connection states went to "connected" once and stayed.
    const auto states = Lines(ProbeLog(i), "xds");
    ASSERT_FALSE(states.empty());
    EXPECT_NE(states.back().find(" connected "), std::string::npos) << states.back();
    int connected = 0;
    for (const auto& s : states) connected += s.find(" connected ") != std::string::npos ? 1 : 0;
    EXPECT_EQ(connected, 1) << ReadFile(ProbeLog(i));
    std::printf("sidecar %s: %zu certificates, %d stream(s)\n", kNames[i], certs.size(), connected);
  }
}

}  // namespace
}  // namespace picket::e2e
