// The injected sidecar's admin Unix socket end to end, as root: `picket-inject bootstrap
// --admin-socket` (the injector's path on the run emptyDir, here a root-owned 0777 directory as
// an emptyDir comes) and the real picket-proxy as uid 1337 in a network namespace of its own.
// The readiness probe the injector writes (`picket-inject probe --socket … --path=/ready`)
// passes as uid 1337 and fails as the app's uid 1000, which cannot open the socket; the drain
// path (`--method=POST --path=/drain`, what `kubectl exec` runs) works as 1337, is refused to
// 1000, and takes the sidecar out of readiness. Fails loudly without root.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
constexpr uid_t kAppUid = 1000;

class AdminProbeE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(RequireRoot("admin_probe_e2e_test"));
    ASSERT_NO_FATAL_FAILURE(MakeSharedDir("picket-probe-e2e", &dir_));
    pod_ = std::make_unique<Netns>(UniqueName("pr"));
    ASSERT_TRUE(pod_->ok());
    AtomicWrite(dir_ / "manifests" / "pod.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e}\n---\napiVersion: v1\n"
                "kind: Pod\nmetadata: {name: a, namespace: e2e, labels: {app: a}}\nspec: "
                "{containers: [{name: c, image: x}]}\nstatus: {podIP: 10.96.0.2}\n");
    CommandResult compiled = RunCommand({Runfile("control/picket-control"), "compile", "-f",
                                         (dir_ / "manifests" / "pod.yaml"), "--pod", "e2e/a", "-o",
                                         (dir_ / "policy.json")});
    ASSERT_EQ(compiled.status, 0) << compiled.output;
    chmod((dir_ / "policy.json").c_str(), 0644);
    // The run emptyDir: root's, mode 0777, as the kubelet makes it.
    fs::create_directories(dir_ / "run");
    chmod((dir_ / "run").c_str(), 0777);
    socket_ = (dir_ / "run" / "admin" / "admin.sock").string();
    CommandResult generated = RunCommand(
        {Runfile("inject/picket-inject"), "bootstrap", "--namespace", "e2e", "--pod", "a", "--ip",
         "10.96.0.2", "--policy-file", (dir_ / "policy.json").string(), "--admin-socket", socket_,
         "--output", (dir_ / "run" / "bootstrap.yaml").string()});
    ASSERT_EQ(generated.status, 0) << generated.output;
    chmod((dir_ / "run" / "bootstrap.yaml").c_str(), 0644);
    const std::string proxy_bin = CopyProxy(dir_);
    // uid 1337 and 1000 cannot read Bazel's runfiles under /root: run a copy of the probe too.
    inject_bin_ = (dir_ / "picket-inject").string();
    fs::copy_file(Runfile("inject/picket-inject"), inject_bin_);
    chmod(inject_bin_.c_str(), 0755);
    ASSERT_TRUE(proxy_.Start(*pod_, {proxy_bin, "--config", (dir_ / "run" / "bootstrap.yaml")},
                             kProxyUid, (dir_ / "proxy.log").string()));
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "--- proxy ---\n%s\n", ReadFile((dir_ / "proxy.log").string()).c_str());
    }
    proxy_.Signal(SIGKILL);
    (void)proxy_.Wait(std::chrono::seconds(5));
    pod_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // `picket-inject probe --socket=… --method=… --path=…` inside the pod as `uid`: its exit status.
  std::optional<int> Probe(uid_t uid, const std::string& method, const std::string& path) {
    Child probe;
    if (!probe.Start(
            *pod_,
            {inject_bin_, "probe", "--socket=" + socket_, "--method=" + method, "--path=" + path},
            uid, (dir_ / "probe.log").string())) {
      return std::nullopt;
    }
    return probe.Wait(std::chrono::seconds(10));
  }

  fs::path dir_;
  std::unique_ptr<Netns> pod_;
  std::string socket_;
  std::string inject_bin_;
  Child proxy_;
};

TEST_F(AdminProbeE2eTest, OnlyTheSidecarsUidProbesAndDrainsThroughTheSocket) {
  ASSERT_TRUE(WaitFor([&] { return Probe(kProxyUid, "GET", "/ready") == std::optional<int>(0); }))
      << ReadFile((dir_ / "probe.log").string());
  struct stat st {};
  ASSERT_EQ(stat((dir_ / "run" / "admin").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kProxyUid);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // The app's uid cannot open the socket: it can neither answer for the sidecar nor drain it.
  EXPECT_EQ(Probe(kAppUid, "GET", "/ready"), std::optional<int>(1));
  EXPECT_EQ(Probe(kAppUid, "POST", "/drain"), std::optional<int>(1));
  EXPECT_EQ(Probe(kProxyUid, "GET", "/ready"), std::optional<int>(0));
  // kubectl exec … picket-inject probe --method=POST --path=/drain, as the sidecar's uid.
  EXPECT_EQ(Probe(kProxyUid, "POST", "/drain"), std::optional<int>(0));
  EXPECT_EQ(Probe(kProxyUid, "GET", "/ready"), std::optional<int>(1));  // 503 DRAINING
}

}  // namespace
}  // namespace picket::e2e
