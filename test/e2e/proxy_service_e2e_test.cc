// picket-proxy egress to a Service ClusterIP, end to end, as root: `picket-control serve` in a
// "node" network namespace routing three pod namespaces: the client pod `a` (capture rules of the
// real picket-init, the real picket-proxy as uid 1337 taking its policy and service map over
// xDS) and two backend pods selected by the Service e2e/web (ClusterIP 10.96.77.10, an address
// that exists nowhere: the sidecar must connect straight to a backend). Each backend answers its
// own byte, so the client sees which backend it reached. a's egress policy allows only backend 1
// → every connection to ClusterIP:80 reaches backend 1; after a policy edit allowing neither,
// connections are reset with one DROPPED flow record naming the Service. It runs in both capture
// modes: in verdict mode (picket-init --capture=verdict) the ClusterIP still goes to the relay
// (the sidecar's verdict marks it for the nat redirect), which picks the backend, while the pod
// addresses themselves take the verdict path (backend 1 directly: carried by the kernel; backend
// 2: refused). Fails loudly without root.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
constexpr int kPods = 3;  // a (client), b1 and b2 (backends of e2e/web)
const char* kNames[kPods] = {"a", "b1", "b2"};
const char* kClusterIp = "10.96.77.10";
// Pod i is 10.94.<i+1>.2, the node's end of its link 10.94.<i+1>.1.
constexpr char kSubnet[] = "10.94";

std::string NodeIp(int i) { return NodeIpOn(kSubnet, i); }
std::string PodIp(int i) { return PodIpOn(kSubnet, i); }

std::string ClusterYaml() {
  std::string out = "apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e}\n";
  out +=
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: e2e, labels: {app: "
      "client}}\nspec: {containers: [{name: c, image: x}]}\nstatus: {podIP: " +
      PodIp(0) + "}\n";
  for (int i = 1; i < kPods; ++i) {
    out += "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + std::string(kNames[i]) +
           ", namespace: e2e, labels: {app: web, backend: \"" + std::to_string(i) +
           "\"}}\nspec: {containers: [{name: c, image: x}]}\nstatus: {podIP: " + PodIp(i) + "}\n";
  }
  out +=
      "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: e2e}\nspec: "
      "{clusterIP: " +
      std::string(kClusterIp) +
      ", selector: {app: web}, ports: [{port: 80, targetPort: " + std::to_string(kAppPort) +
      "}]}\n";
  return out;
}

// a's egress: only to pods labelled backend=`backend`, on kAppPort.
std::string PolicyYaml(const std::string& backend) {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: out, "
         "namespace: e2e}\nspec:\n  podSelector: {matchLabels: {app: client}}\n  policyTypes: "
         "[Egress]\n  egress:\n  - to: [{podSelector: {matchLabels: {backend: \"" +
         backend + "\"}}}]\n    ports: [{port: " + std::to_string(kAppPort) + "}]\n";
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A backend: answers `byte` to every connection, then closes.
std::unique_ptr<AnswerServer> ByteServer(const Netns& ns, const std::string& addr, uint16_t port,
                                         char byte) {
  return std::make_unique<AnswerServer>(ns, addr, port,
                                        [byte](int c) { (void)!send(c, &byte, 1, MSG_NOSIGNAL); });
}

class ProxyServiceE2eTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(RequireRoot("proxy_service_e2e_test"));
    signal(SIGPIPE, SIG_IGN);
    ASSERT_NO_FATAL_FAILURE(MakeSharedDir("picket-proxy-svc-e2e", &dir_));

    net_ = std::make_unique<PodNetwork>("ps", kSubnet);
    const std::string net_error = net_->Create(kPods);
    ASSERT_EQ(net_error, "");
    // Only the client has a sidecar: the real capture rules of the injected init container.
    std::vector<std::string> init_argv{Runfile("inject/picket-init")};
    if (verdict()) {
      // The Service range given: the ClusterIP stays connection-tracked for the nat redirect to
      // the relay, pod-to-pod TCP is not.
      init_argv.insert(init_argv.end(), {"--capture=verdict", "--service-cidrs=10.96.0.0/12"});
    }
    CommandResult init = net_->pod(0).Exec(init_argv);
    ASSERT_EQ(init.status, 0) << init.output;

    ASSERT_NO_FATAL_FAILURE(MakeCerts(dir_ / "certs", {{NodeIp(0), "e2e/a"}}));
    AtomicWrite(dir_ / "manifests" / "cluster.yaml", ClusterYaml());
    AtomicWrite(dir_ / "manifests" / "policy.yaml", PolicyYaml("1"));
    server_ = std::make_unique<Child>();
    ASSERT_NO_FATAL_FAILURE(StartControl(*server_, net_->node(), dir_));

    for (int i = 1; i < kPods; ++i) {
      backends_.push_back(ByteServer(net_->pod(i), PodIp(i), kAppPort, static_cast<char>('0' + i)));
      ASSERT_TRUE(backends_.back()->ok());
    }

    sidecar_ = {
        "e2e",    "a", PodIp(0), NodeIp(0) + ":" + std::to_string(kXdsPort), (dir_ / "a").string(),
        verdict()};
    proxy_ = std::make_unique<Child>();
    ASSERT_NO_FATAL_FAILURE(
        StartSidecar(*proxy_, net_->pod(0), dir_ / "certs", CopyProxy(dir_), sidecar_));
    ASSERT_NO_FATAL_FAILURE(WaitReady(net_->pod(0), sidecar_));
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "--- sidecar ---\n%s\n--- control ---\n%s\n",
                   ReadFile(sidecar_.log()).c_str(),
                   ReadFile((dir_ / "control.log").string()).c_str());
    }
    proxy_.reset();  // Child destructors kill by PID
    server_.reset();
    backends_.clear();
    net_.reset();  // links, then namespaces
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // "STATUS\nBODY" from the client's admin endpoint (127.0.0.1:15000), "" if down.
  std::string Admin(const std::string& target) { return AdminGet(net_->pod(0), target); }

  std::string PolicyVersion() {
    return JsonField(Admin("/config_dump"), "\"policy\":{", "version");
  }

  static bool verdict() { return GetParam(); }

  // One unlabelled sample of the client's /stats/prometheus (-1 when absent).
  long Metric(const std::string& name) {
    const std::string stats = Admin("/stats/prometheus");
    const size_t at = stats.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::strtol(stats.c_str() + at + name.size() + 2, nullptr, 10);
  }

  // The byte the backend behind ClusterIP:80 (or at `address`:`port`) answered a connection
  // from the client with; '\0' when the connection failed or was reset.
  char ViaService(const std::string& address = kClusterIp, uint16_t port = 80) {
    const int fd = ConnectFrom(net_->pod(0), address, port, std::chrono::seconds(2));
    if (fd < 0) return '\0';
    char byte = '\0';
    const ssize_t n = recv(fd, &byte, 1, 0);
    close(fd);
    return n == 1 ? byte : '\0';
  }

  fs::path dir_;
  Sidecar sidecar_;
  std::unique_ptr<PodNetwork> net_;
  std::unique_ptr<Child> server_;
  std::vector<std::unique_ptr<AnswerServer>> backends_;
  std::unique_ptr<Child> proxy_;
};

TEST_P(ProxyServiceE2eTest, ServiceAddressReachesOnlyAnAllowedBackend) {
  // Until the service map arrives, the ClusterIP is an ordinary (denied) destination: wait for
  // the first connection through the Service.
  ASSERT_TRUE(WaitFor([&] { return ViaService() != '\0'; }))
      << "no connection to " << kClusterIp << ":80 got through";
  // Every connection goes to backend 1 (the rotation skips backend 2, which policy denies).
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ViaService(), '1') << "connection " << i;
  // The Service map in force is visible in /config_dump, like every applied resource.
  const std::string dump = Admin("/config_dump");
  EXPECT_NE(dump.find("\"service_map\":{\"version\":\""), std::string::npos) << dump;
  EXPECT_NE(dump.find("\"service_count\":1,"), std::string::npos) << dump;
  EXPECT_NE(dump.find("{\"namespace\":\"e2e\",\"name\":\"web\",\"cluster_ips\":[\"10.96.77.10\"]"),
            std::string::npos)
      << dump;
  EXPECT_NE(dump.find("\"target_port\":"), std::string::npos) << dump;
  EXPECT_NE(dump.find(verdict() ? "\"capture\":{\"mode\":\"verdict\",\"queue\":15000,"
                                  "\"queue_bound\":true,\"verdict_cache\":{\"on\":true,"
                                : "\"capture\":{\"mode\":\"relay\"}"),
            std::string::npos)
      << dump;
  // The pods themselves, not through the Service: the same policy either way. (Verdict mode: the
  // kernel verdict cache now holds backend 1's address and port.)
  EXPECT_EQ(ViaService(PodIp(1), kAppPort), '1');
  EXPECT_EQ(ViaService(PodIp(2), kAppPort), '\0');
  const long clears = Metric("picket_verdict_cache_clears_total");
  if (verdict()) {
    EXPECT_EQ(ViaService(PodIp(1), kAppPort), '1');  // allowed from the cache
    EXPECT_GE(clears, 1);
  }

  // Neither backend allowed: connections to the Service are reset, never sent to the ClusterIP.
  const std::string before = PolicyVersion();
  AtomicWrite(dir_ / "manifests" / "policy.yaml", PolicyYaml("3"));
  ASSERT_TRUE(WaitFor([&] {
    const std::string v = PolicyVersion();
    return !v.empty() && v != before;
  })) << Admin("/config_dump");
  EXPECT_EQ(ViaService(), '\0');
  // Nor backend 1 itself: in verdict mode the policy pushed over xDS emptied the cache first.
  EXPECT_EQ(ViaService(PodIp(1), kAppPort), '\0');
  if (verdict()) {
    EXPECT_GT(Metric("picket_verdict_cache_clears_total"), clears);
  }
  // (Allowed flows are not logged by the injected bootstrap; test/proxy:service_pick_test shows
  // their record naming both the Service and the backend.)
  const std::string why = "none of 2 backends of Service e2e/web allowed by egress policy";
  std::string dropped;
  ASSERT_TRUE(WaitFor([&] {
    dropped = Admin("/flows?verdict=DROPPED");
    return dropped.find(why) != std::string::npos;
  })) << dropped;
  EXPECT_EQ(Count(dropped, why), 1u) << dropped;
  const size_t line = dropped.rfind('\n', dropped.find(why)) + 1;
  const std::string record = dropped.substr(line, dropped.find('\n', line) - line);
  EXPECT_NE(record.find("\"close_reason\":\"policy_denied\""), std::string::npos) << record;
  EXPECT_NE(record.find("\"destination\":\"10.96.77.10\""), std::string::npos) << record;
  EXPECT_NE(record.find("\"destination_service\":{\"name\":\"web\",\"namespace\":\"e2e\"}"),
            std::string::npos)
      << record;

  proxy_->Signal(SIGTERM);
  EXPECT_EQ(proxy_->Wait(std::chrono::seconds(10)), std::optional<int>(0));
}

INSTANTIATE_TEST_SUITE_P(Modes, ProxyServiceE2eTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Verdict" : "Relay";
                         });

}  // namespace
}  // namespace picket::e2e
