// picket-proxy taking its policy from the control server, end to end, as root: `picket-control
// serve` (certificates from `picket-control certs`) in a "node" network namespace routing three
// pod namespaces; in each pod the capture rules of the real picket-init and the real
// picket-proxy as uid 1337, its bootstrap written by `picket-inject bootstrap --xds-address …`
// (nothing but the xds section as policy source). Real TCP connections between the pods show
// enforcement: an edit of the NetworkPolicy file in the manifests directory changes what every
// sidecar allows (waited for by polling each sidecar's /config_dump policy version); killing the
// control server changes nothing for traffic; restarting it resyncs every sidecar; /config_dump
// and /stats/prometheus show the xDS state (connected, last ACKed version), and each node tells the
// control server whether its sidecar enforces UDP/SCTP; SIGTERM still ends
// each sidecar with exit 0. Fails loudly without root.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
constexpr int kPods = 3;  // a (client), b (server), c (other client)
const char* kNames[kPods] = {"a", "b", "c"};
// Pod i is 10.93.<i+1>.2, the node's end of its link 10.93.<i+1>.1.
constexpr char kSubnet[] = "10.93";

std::string NodeIp(int i) { return NodeIpOn(kSubnet, i); }
std::string PodIp(int i) { return PodIpOn(kSubnet, i); }

std::string PodsYaml() {
  std::string out = "apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e}\n";
  for (int i = 0; i < kPods; ++i) {
    out += "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + std::string(kNames[i]) +
           ", namespace: e2e, labels: {app: " + kNames[i] +
           "}}\nspec: {containers: [{name: c, image: x}]}\nstatus: {podIP: " + PodIp(i) + "}\n";
  }
  return out;
}

// Every pod's ingress: only from app=`from` on kAppPort (+ `extra_port`, so each edit is a new
// version for every sidecar). Egress is not restricted.
std::string PolicyYaml(const std::string& from, int extra_port) {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: in, "
         "namespace: e2e}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n"
         "  - from: [{podSelector: {matchLabels: {app: " +
         from + "}}}]\n    ports: [{port: " + std::to_string(kAppPort) +
         "}, {port: " + std::to_string(extra_port) + "}]\n";
}

// The application in pod b: answers "ok\n" to every connection, then closes.
std::unique_ptr<AnswerServer> OkServer(const Netns& ns, const std::string& addr, uint16_t port) {
  return std::make_unique<AnswerServer>(ns, addr, port, [](int c) {
    (void)!send(c, "ok\n", 3, MSG_NOSIGNAL);
    shutdown(c, SHUT_WR);
    char drain[256];
    timeval tv{2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (recv(c, drain, sizeof(drain), 0) > 0) {
    }
  });
}

class ProxyXdsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(RequireRoot("proxy_xds_e2e_test"));
    signal(SIGPIPE, SIG_IGN);
    ASSERT_NO_FATAL_FAILURE(MakeSharedDir("picket-proxy-xds-e2e", &dir_));

    net_ = std::make_unique<PodNetwork>("px", kSubnet);
    const std::string net_error = net_->Create(kPods);
    ASSERT_EQ(net_error, "");
    std::vector<CertFor> certs;
    for (int i = 0; i < kPods; ++i) {
      // The real capture rules (and ::7 on lo) of the injected init container.
      CommandResult init = net_->pod(i).Exec({Runfile("inject/picket-init")});
      ASSERT_EQ(init.status, 0) << init.output;
      certs.push_back({NodeIp(i), std::string("e2e/") + kNames[i]});
    }
    ASSERT_NO_FATAL_FAILURE(MakeCerts(dir_ / "certs", certs));
    AtomicWrite(dir_ / "manifests" / "pods.yaml", PodsYaml());
    AtomicWrite(dir_ / "manifests" / "policy.yaml", PolicyYaml("a", 9100));
    ASSERT_NO_FATAL_FAILURE(StartServer());

    app_ = OkServer(net_->pod(1), PodIp(1), kAppPort);
    ASSERT_TRUE(app_->ok());

    const std::string proxy_bin = CopyProxy(dir_);
    for (int i = 0; i < kPods; ++i) {
      proxies_.push_back(std::make_unique<Child>());
      ASSERT_NO_FATAL_FAILURE(
          StartSidecar(*proxies_[i], net_->pod(i), dir_ / "certs", proxy_bin, SidecarOf(i)));
    }
    for (int i = 0; i < kPods; ++i) ASSERT_NO_FATAL_FAILURE(WaitReady(net_->pod(i), SidecarOf(i)));
  }

  void TearDown() override {
    for (int i = 0; i < static_cast<int>(proxies_.size()); ++i) {
      if (HasFailure()) {
        std::fprintf(stderr, "--- sidecar %s ---\n%s\n", kNames[i],
                     ReadFile(SidecarOf(i).log()).c_str());
      }
    }
    if (HasFailure()) {
      std::fprintf(stderr, "--- control ---\n%s\n",
                   ReadFile((dir_ / "control.log").string()).c_str());
    }
    proxies_.clear();  // Child destructors kill by PID
    server_.reset();
    app_.reset();
    net_.reset();  // links, then namespaces
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void StartServer() {
    server_ = std::make_unique<Child>();
    StartControl(*server_, net_->node(), dir_);
  }

  // The sidecar of pod i, with the bootstrap the injector writes for it.
  Sidecar SidecarOf(int i) const {
    return {"e2e", kNames[i], PodIp(i), NodeIp(i) + ":" + std::to_string(kXdsPort),
            (dir_ / kNames[i]).string()};
  }

  // "STATUS\nBODY" from pod i's admin endpoint (127.0.0.1:15000), "" if down.
  std::string Admin(int i, const std::string& target) { return AdminGet(net_->pod(i), target); }

  std::string PolicyVersion(int i) {
    return JsonField(Admin(i, "/config_dump"), "\"policy\":{", "version");
  }
  bool XdsConnected(int i) {
    return Admin(i, "/config_dump").find("\"connected\":true") != std::string::npos;
  }

  // A connection from pod `from` to b's app; true when the app's "ok" came through.
  bool Reaches(int from) {
    const int fd = ConnectFrom(net_->pod(from), PodIp(1), kAppPort, std::chrono::seconds(2));
    if (fd < 0) return false;
    char buf[8] = {};
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    close(fd);
    return n == 3 && std::string(buf, 3) == "ok\n";
  }

  // Writes the policy and waits until every sidecar's /config_dump shows a new version, and b's
  // the whole edit; returns the time from the write to then (an upper bound: polled).
  double EditAndWait(const std::string& from, int extra_port) {
    std::vector<std::string> before;
    for (int i = 0; i < kPods; ++i) before.push_back(PolicyVersion(i));
    // b's /config_dump shows the address entries its rules name: not `from`'s before the edit.
    const std::string from_ip = "\"ips\":[\"" + PodIp(from == "a" ? 0 : 2) + "\"]";
    EXPECT_EQ(Admin(1, "/config_dump").find(from_ip), std::string::npos) << "before the edit";
    const auto t0 = std::chrono::steady_clock::now();
    AtomicWrite(dir_ / "manifests" / "policy.yaml", PolicyYaml(from, extra_port));
    for (int i = 0; i < kPods; ++i) {
      EXPECT_TRUE(WaitFor([&] {
        const std::string v = PolicyVersion(i);
        return !v.empty() && v != before[i];
      })) << "edit (from "
          << from << ") never reached sidecar " << kNames[i];
    }
    // An edit that changes whom b's rules name reaches b in two pushes (the pod policy, and the
    // address entry of the newly named pod, which b's scope did not hold before), each applied as
    // it comes: b has the whole edit once its policy shows `from`'s address.
    EXPECT_TRUE(WaitFor([&] {
      return Admin(1, "/config_dump").find(from_ip) != std::string::npos;
    })) << "b never held "
        << from_ip << ": " << Admin(1, "/config_dump");
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

  fs::path dir_;
  std::unique_ptr<PodNetwork> net_;
  std::unique_ptr<Child> server_;
  std::unique_ptr<AnswerServer> app_;
  std::vector<std::unique_ptr<Child>> proxies_;
};

TEST_F(ProxyXdsE2eTest, PolicyFromControlServerSurvivesItsDeathAndResyncs) {
  // The first snapshot came over xDS: every sidecar is connected and shows what it ACKed.
  for (int i = 0; i < kPods; ++i) {
    ASSERT_TRUE(WaitFor([&] { return XdsConnected(i); })) << Admin(i, "/config_dump");
    const std::string dump = Admin(i, "/config_dump");
    EXPECT_FALSE(PolicyVersion(i).empty()) << dump;
    EXPECT_FALSE(JsonField(dump, "\"xds\":{", "last_acked_version").empty()) << dump;
    const std::string stats = Admin(i, "/stats/prometheus");
    EXPECT_NE(stats.find("\npicket_xds_connected 1\n"), std::string::npos) << stats;
    EXPECT_NE(stats.find("picket_xds_acks_total{"), std::string::npos) << stats;
  }
  EXPECT_TRUE(Reaches(0)) << "a → b should be allowed";
  EXPECT_FALSE(Reaches(2)) << "c → b should be denied";
  // Each sidecar's node tells the control server what its /config_dump says of UDP/SCTP
  // (node.metadata.udp_sctp_enforced); the policy names no UDP port, so nothing is warned about.
  const std::string control = AdminGet(net_->node(), "/status", 15013);
  for (int i = 0; i < kPods; ++i) {
    const bool enforced =
        Admin(i, "/config_dump").find("\"udp_sctp\":{\"enforced\":true") != std::string::npos;
    EXPECT_NE(control.find("\"pod\":\"" + std::string(kNames[i]) +
                           "\",\"user_agent\":\"picket-proxy\",\"udp_sctp_enforced\":" +
                           (enforced ? "true" : "false")),
              std::string::npos)
        << control;
  }
  EXPECT_NE(control.find("\"udp_sctp_unenforced\":{\"count\":0,"), std::string::npos) << control;

  // Edits of the policy file change enforcement in every sidecar.
  std::vector<double> ms;
  for (int edit = 1; edit <= 4; ++edit) {
    const std::string from = edit % 2 == 1 ? "c" : "a";
    ms.push_back(EditAndWait(from, 9100 + edit));
    EXPECT_EQ(Reaches(2), from == "c") << "edit " << edit;
    EXPECT_EQ(Reaches(0), from == "a") << "edit " << edit;
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "file write -> new version in all %d sidecars (polled): median %.1f ms, max %.1f ms\n", kPods,
      ms[ms.size() / 2], ms.back());

  // Killing the control server changes nothing for traffic; the sidecars show the disconnect.
  const std::string last = PolicyVersion(0);
  server_->Signal(SIGKILL);
  ASSERT_TRUE(server_->Wait(std::chrono::seconds(5)).has_value());
  for (int i = 0; i < kPods; ++i) {
    ASSERT_TRUE(WaitFor([&] { return !XdsConnected(i); })) << Admin(i, "/config_dump");
    EXPECT_NE(Admin(i, "/stats/prometheus").find("\npicket_xds_connected 0\n"), std::string::npos);
    EXPECT_EQ(Admin(i, "/ready").rfind("200", 0), 0u);
  }
  EXPECT_EQ(PolicyVersion(0), last);
  EXPECT_TRUE(Reaches(0));
  EXPECT_FALSE(Reaches(2));

  // A change made while it is down reaches every sidecar once it is back.
  std::vector<std::string> before;
  for (int i = 0; i < kPods; ++i) before.push_back(PolicyVersion(i));
  AtomicWrite(dir_ / "manifests" / "policy.yaml", PolicyYaml("c", 9200));
  StartServer();
  for (int i = 0; i < kPods; ++i) {
    ASSERT_TRUE(WaitFor(
        [&] {
          const std::string v = PolicyVersion(i);
          return !v.empty() && v != before[i] && XdsConnected(i);
        },
        std::chrono::seconds(20)))
        << "sidecar " << kNames[i] << " did not resync:\n"
        << Admin(i, "/config_dump");
    const std::string dump = Admin(i, "/config_dump");
    EXPECT_FALSE(JsonField(dump, "\"xds\":{", "last_acked_version").empty()) << dump;
  }
  EXPECT_TRUE(Reaches(2));
  EXPECT_FALSE(Reaches(0));

  // SIGTERM: the xDS stream is closed with the listeners and the main loop ends (exit 0).
  for (int i = 0; i < kPods; ++i) {
    proxies_[i]->Signal(SIGTERM);
    EXPECT_EQ(proxies_[i]->Wait(std::chrono::seconds(10)), std::optional<int>(0))
        << "sidecar " << kNames[i];
  }
}

}  // namespace
}  // namespace picket::e2e
