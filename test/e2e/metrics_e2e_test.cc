// The sidecar's metrics listener end to end, as root (issue 17, "Scraping in a cluster"): pod "a"
// (10.84.1.2) with the real picket-init capture rules (`--metrics-port=15090`, as the injector
// writes them) and the real picket-proxy as uid 1337 from the bootstrap `picket-inject bootstrap
// --metrics-port=15090` writes, under a NetworkPolicy that denies all ingress. From the node, as
// Prometheus would scrape it:
//   - GET http://10.84.1.2:15090/stats/prometheus answers 200 with the metrics (the port is left
//     out of capture, so the deny-all ingress policy does not apply to it, as with Istio's 15090);
//   - every other path there (POST /quitquitquit included) is a 404 and the sidecar stays up;
//   - an app port is captured and denied (the connection gets no HTTP answer);
//   - with picket-init run again without --metrics-port, the same scrape is captured to the
//     inbound listener and denied: the exclusion is what makes the port reachable.
// Fails loudly without root.
#include <gtest/gtest.h>
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
constexpr char kSubnet[] = "10.84";
constexpr uint16_t kMetricsPort = 15090;

// "STATUS\nBODY" of one HTTP/1.1 request from `ns` to addr:port; "" when there is no HTTP answer
// (refused, reset, or nothing within the 5 s bound).
std::string Request(const Netns& ns, const std::string& addr, uint16_t port,
                    const std::string& method, const std::string& target) {
  const int fd = ConnectFrom(ns, addr, port, std::chrono::seconds(5));
  if (fd < 0) return "";
  timeval bound{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  const std::string request = method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char buf[65536];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.size() < 12 || body == std::string::npos) return "";
  return response.substr(9, 3) + "\n" + response.substr(body + 4);
}

class MetricsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(RequireRoot("metrics_e2e_test"));
    signal(SIGPIPE, SIG_IGN);
    ASSERT_NO_FATAL_FAILURE(MakeSharedDir("picket-metrics-e2e", &dir_));
    net_ = std::make_unique<PodNetwork>("mx", kSubnet);
    ASSERT_EQ(net_->Create(1), "");
    pod_ip_ = PodIpOn(kSubnet, 0);
    AtomicWrite(dir_ / "manifests" / "pod.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e}\n---\napiVersion: v1\n"
                "kind: Pod\nmetadata: {name: a, namespace: e2e, labels: {app: a}}\nspec: "
                "{containers: [{name: c, image: x}]}\nstatus: {podIP: " +
                    pod_ip_ +
                    "}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: "
                    "{name: deny-in, namespace: e2e}\nspec: {podSelector: {}, policyTypes: "
                    "[Ingress]}\n");
    CommandResult compiled = RunCommand({Runfile("control/picket-control"), "compile", "-f",
                                         (dir_ / "manifests" / "pod.yaml"), "--pod", "e2e/a", "-o",
                                         (dir_ / "policy.json")});
    ASSERT_EQ(compiled.status, 0) << compiled.output;
    chmod((dir_ / "policy.json").c_str(), 0644);
    CommandResult init = pod().Exec(
        {Runfile("inject/picket-init"), "--metrics-port=" + std::to_string(kMetricsPort)});
    ASSERT_EQ(init.status, 0) << init.output;
    CommandResult generated = RunCommand(
        {Runfile("inject/picket-inject"), "bootstrap", "--namespace", "e2e", "--pod", "a", "--ip",
         pod_ip_, "--policy-file", (dir_ / "policy.json").string(), "--metrics-port",
         std::to_string(kMetricsPort), "--output", (dir_ / "bootstrap.yaml").string()});
    ASSERT_EQ(generated.status, 0) << generated.output;
    chmod((dir_ / "bootstrap.yaml").c_str(), 0644);
    const std::string proxy_bin = CopyProxy(dir_);
    ASSERT_TRUE(proxy_.Start(pod(), {proxy_bin, "--config", (dir_ / "bootstrap.yaml")}, kProxyUid,
                             (dir_ / "proxy.log").string()));
    ASSERT_TRUE(WaitFor([&] { return AdminGet(pod(), "/ready").starts_with("200"); }))
        << ReadFile((dir_ / "proxy.log").string());
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "--- proxy ---\n%s\n", ReadFile((dir_ / "proxy.log").string()).c_str());
    }
    proxy_.Signal(SIGKILL);
    (void)proxy_.Wait(std::chrono::seconds(5));
    net_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  Netns& pod() { return net_->pod(0); }

  fs::path dir_;
  std::unique_ptr<PodNetwork> net_;
  std::string pod_ip_;
  Child proxy_;
};

TEST_F(MetricsE2eTest, ScrapedFromOutsideThePodAndNothingElseServed) {
  const std::string scrape =
      Request(net_->node(), pod_ip_, kMetricsPort, "GET", "/stats/prometheus");
  EXPECT_TRUE(scrape.starts_with("200\n")) << scrape;
  EXPECT_NE(scrape.find("# TYPE picket_build_info gauge"), std::string::npos) << scrape;
  for (const char* method : {"POST", "GET"}) {
    for (const char* path : {"/quitquitquit", "/drain_listeners", "/config_dump", "/ready"}) {
      EXPECT_TRUE(Request(net_->node(), pod_ip_, kMetricsPort, method, path).starts_with("404\n"))
          << method << " " << path;
    }
  }
  EXPECT_TRUE(AdminGet(pod(), "/ready").starts_with("200")) << "the sidecar is still up";
  // An app port is captured and the deny-all ingress policy holds.
  EXPECT_EQ(Request(net_->node(), pod_ip_, kAppPort, "GET", "/"), "");

  // Without the exclusion the scrape is captured to the inbound listener and denied like any port.
  CommandResult init = pod().Exec({Runfile("inject/picket-init")});
  ASSERT_EQ(init.status, 0) << init.output;
  EXPECT_EQ(Request(net_->node(), pod_ip_, kMetricsPort, "GET", "/stats/prometheus"), "");
}

}  // namespace
}  // namespace picket::e2e
