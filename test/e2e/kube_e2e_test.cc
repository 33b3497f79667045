// The Kubernetes API source end to end, as root: the Kubernetes API test server and
// `picket-control serve --kubeconfig` in a "node" network namespace, three pods as namespaces, in
// each a sidecar probe (xds_sidecar_probe: the proxy/xds client, enforcing ingress on one port).
// Debian's kubectl 1.20 (/opt/kubectl-1.20, or $KUBECTL) labels pods and applies, edits and
// deletes a NetworkPolicy; real connections between the pods show each change enforced. The time
// from starting kubectl to the new policy applied in every sidecar is printed (p50/p99; it
// includes kubectl's own start-up). Fails loudly without root.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <sstream>

#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
constexpr int kPods = 3;  // a (client), b (server), c (other client)
const char* kNames[kPods] = {"a", "b", "c"};
constexpr char kSubnet[] = "10.86";

std::string NodeIp(int i) { return NodeIpOn(kSubnet, i); }
std::string PodIp(int i) { return PodIpOn(kSubnet, i); }

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string KubectlPath() {
  const char* env = std::getenv("KUBECTL");
  return env != nullptr ? env : "/opt/kubectl-1.20/usr/bin/kubectl";
}

// Pods with their IPs in status, as the API server holds them once scheduled.
std::string SeedJson() {
  std::string items = R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"e2e"}})";
  for (int i = 0; i < kPods; ++i) {
    items += R"(,{"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + std::string(kNames[i]) +
             R"(","namespace":"e2e","labels":{"app":")" + kNames[i] +
             R"("}},"spec":{"containers":[{"name":"c","image":"x"}]},"status":{"phase":"Running",)"
             R"("podIP":")" +
             PodIp(i) + R"(","podIPs":[{"ip":")" + PodIp(i) + R"("}]}})";
  }
  return R"({"apiVersion":"v1","kind":"List","items":[)" + items + "]}";
}

// Every pod's ingress: only from app=`from` on kAppPort (+ `extra_port`, so each apply is a new
// version for every sidecar).
std::string PolicyYaml(const std::string& from, int extra_port) {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b-in, "
         "namespace: e2e}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n"
         "  - from: [{podSelector: {matchLabels: {app: " +
         from + "}}}]\n    ports: [{port: " + std::to_string(kAppPort) +
         "}, {port: " + std::to_string(extra_port) + "}]\n";
}

// "applied <ns> <version>" lines of a probe's log.
std::vector<int64_t> Applied(const std::string& log) {
  std::vector<int64_t> out;
  std::istringstream in(ReadFile(log));
  std::string line, word, version;
  long long ns;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    if (l >> word && word == "applied" && l >> ns >> version) out.push_back(ns);
  }
  return out;
}

class KubeE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "kube_e2e_test needs root (network namespaces); run as root";
    ASSERT_TRUE(fs::exists(KubectlPath()))
        << "no kubectl at " << KubectlPath() << " (tools/install-deps.sh unpacks Debian's 1.20)";
    dir_ = fs::path(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR") : "/tmp") /
           ("kube_e2e_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "api");
    net_ = std::make_unique<PodNetwork>("k", kSubnet);
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
    ASSERT_NO_FATAL_FAILURE(Kubectl({"create", "-f", "-"}, PolicyYaml("a", 9100)));

    const fs::path c = dir_ / "certs";
    server_ = std::make_unique<Child>();
    ASSERT_TRUE(server_->Start(
        net_->node(),
        {Runfile("control/picket-control"), "serve", "--kubeconfig",
         (dir_ / "api" / "kubeconfig").string(), "--listen", "0.0.0.0:" + std::to_string(kXdsPort),
         "--admin", "127.0.0.1:0", "--tls-cert", (c / "server.pem").string(), "--tls-key",
         (c / "server-key.pem").string(), "--tls-ca", (c / "ca.pem").string(), "--debounce-ms",
         "0"},
        std::nullopt, (dir_ / "control.log").string()));
    for (int i = 0; i < kPods; ++i) {
      probes_.push_back(std::make_unique<Child>());
      const std::string base = (c / "pods" / ("e2e." + std::string(kNames[i]))).string();
      ASSERT_TRUE(
          probes_[i]->Start(net_->pod(i),
                            {Runfile("test/e2e/xds_sidecar_probe"), "--xds",
                             NodeIp(i) + ":" + std::to_string(kXdsPort), "--cert", base + ".pem",
                             "--key", base + "-key.pem", "--ca", (c / "ca.pem").string(), "--ns",
                             "e2e", "--pod", kNames[i], "--port", std::to_string(kAppPort)},
                            std::nullopt, ProbeLog(i)));
    }
    for (int i = 0; i < kPods; ++i) {
      ASSERT_TRUE(WaitFor([&] { return !Applied(ProbeLog(i)).empty(); }))
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

  // kubectl inside the node namespace (where the API server listens), `stdin_text` on its stdin.
  void Kubectl(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    std::vector<std::string> argv = {KubectlPath(), "--kubeconfig",
                                     (dir_ / "api" / "kubeconfig").string()};
    std::string file;
    std::vector<std::string> rest = args;
    if (!stdin_text.empty()) {
      file = (dir_ / ("kubectl-" + std::to_string(++kubectl_runs_) + ".yaml")).string();
      AtomicWrite(file, stdin_text);
      for (std::string& a : rest) {
        if (a == "-") a = file;
      }
    }
    argv.insert(argv.end(), rest.begin(), rest.end());
    Child kubectl;
    const std::string log = (dir_ / "kubectl.log").string();
    ASSERT_TRUE(kubectl.Start(net_->node(), argv, std::nullopt, log));
    const std::optional<int> status = kubectl.Wait(std::chrono::seconds(20));
    ASSERT_TRUE(status.has_value()) << "kubectl did not finish";
    ASSERT_EQ(*status, 0) << ReadFile(log);
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

  // Runs kubectl, waits until every sidecar applied something new and `enforced()` holds, and
  // returns the latency from kubectl's start to the last sidecar's last apply, in ms. (A change
  // that widens a sidecar's scope is two applies: the new peers' address entries, then the
  // policy that names them — control/PROTOCOL.md §6.1.)
  double ChangeEverywhere(const std::vector<std::string>& args, const std::string& yaml,
                          const std::function<bool()>& enforced) {
    std::vector<size_t> before;
    for (int i = 0; i < kPods; ++i) before.push_back(Applied(ProbeLog(i)).size());
    const int64_t t0 = RealtimeNs();
    Kubectl(args, yaml);
    for (int i = 0; i < kPods; ++i) {
      EXPECT_TRUE(WaitFor([&] { return Applied(ProbeLog(i)).size() > before[i]; }))
          << "kubectl " << args[0] << " never reached sidecar " << kNames[i];
    }
    EXPECT_TRUE(WaitFor(enforced, std::chrono::seconds(2))) << "kubectl " << args[0];
    int64_t last = 0;
    for (int i = 0; i < kPods; ++i) {
      const auto applied = Applied(ProbeLog(i));
      if (applied.size() > before[i]) last = std::max(last, applied.back());
    }
    return (last - t0) / 1e6;
  }

  fs::path dir_;
  std::unique_ptr<PodNetwork> net_;
  std::unique_ptr<Child> api_;
  std::unique_ptr<Child> server_;
  std::vector<std::unique_ptr<Child>> probes_;
  int kubectl_runs_ = 0;
};

TEST_F(KubeE2eTest, KubectlChangesEnforcementInEverySidecar) {
  EXPECT_TRUE(Reaches(0)) << "a -> b should be allowed";
  EXPECT_FALSE(Reaches(2)) << "c -> b should be denied";

  // kubectl label: c becomes app=a, so the policy now admits it.
  ChangeEverywhere({"-n", "e2e", "label", "pod", "c", "app=a", "--overwrite"}, "",
                   [&] { return Reaches(2); });
  ChangeEverywhere({"-n", "e2e", "label", "pod", "c", "app=c", "--overwrite"}, "",
                   [&] { return !Reaches(2); });

  // kubectl apply, alternating who may connect: each apply enforced at every sidecar.
  std::vector<double> latencies_ms;
  for (int edit = 1; edit <= 8; ++edit) {
    const std::string from = edit % 2 == 1 ? "c" : "a";
    latencies_ms.push_back(ChangeEverywhere(
        {"apply", "-f", "-"}, PolicyYaml(from, 9100 + edit),
        [&] { return Reaches(2) == (from == "c") && Reaches(0) == (from == "a"); }));
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  std::printf(
      "kubectl apply (start) -> applied in every sidecar: n=%zu p50=%.1f ms p99(max)=%.1f ms\n",
      latencies_ms.size(), latencies_ms[latencies_ms.size() / 2], latencies_ms.back());

  // kubectl delete: nothing isolates b any more.
  ChangeEverywhere({"-n", "e2e", "delete", "networkpolicy", "b-in"}, "",
                   [&] { return Reaches(0) && Reaches(2); });
}

}  // namespace
}  // namespace picket::e2e
