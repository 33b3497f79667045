// A Job's pod end to end, as root (issue 17: "a Job in the e2e pod namespaces whose sidecar exits
// after /quitquitquit"). The Job pod (10.85.1.2) and a server pod "digits" (10.85.2.2) are network
// namespaces behind a node namespace. The Job pod's containers are what the real picket-inject
// makes of test/inject/testdata/job.in.yaml (classic) and job_native.in.yaml (native):
// picket-init with the injected args; the sidecar container's command (`picket-inject bootstrap
// … --user=1337 --group=1337 --exec=picket-proxy`, its policy from `picket-control compile`
// instead of the control server, paths under a test directory) started as a container runtime
// starts it for the injected securityContext (root with NET_ADMIN, SETGID and SETUID only,
// no_new_privs); the kubelet's probes are the injected probe commands, run the same way. The app
// (uid 1000, job_app.py) fetches its work from digits:9000, which the pod's egress policy allows,
// then connects to digits:9001, which it denies (the server answers there from the node): reset
// by the sidecar and logged DROPPED. It exits 0. Then:
//   - classic: the README's `kubectl exec POD -c picket-proxy -- picket-inject probe
//     --socket=… --method=POST --path=/quitquitquit --user=1337 --group=1337`, run as the runtime
//     runs an exec in that container, makes the sidecar exit 0 at once. Without --user the same
//     exec is refused (the socket's directory is uid 1337's, 0700; root there has no
//     CAP_DAC_OVERRIDE) and the sidecar keeps running;
//   - native: the kubelet stops the sidecar with SIGTERM once the app has exited: it exits 0
//     within its drain timeout.
// Both exit codes are recorded and no process is left in the pod. Fails loudly without root.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/document.h"
#include "test/e2e/pod_network.h"
#include "test/e2e/sidecar.h"

namespace picket::e2e {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr char kSubnet[] = "10.85";
constexpr uid_t kAppUid = 1000;
constexpr uint16_t kDeniedPort = 9001;
constexpr char kDigits[] = "3.14159265358979";
constexpr char kPodName[] = "pi-x7k2p";         // a Job controller's pod name
constexpr char kRunPath[] = "/etc/picket/run";  // the injected run emptyDir's mount path
constexpr milliseconds kDrainTimeout{20000};    // the bootstrap's timeouts.drain default

// The pod's containers as the injector wrote them.
struct InjectedPod {
  std::string ns;                        // metadata.namespace, or "default"
  bool native = false;                   // picket-proxy is an init container
  std::vector<std::string> init_args;    // picket-init's args
  std::vector<std::string> proxy_argv;   // picket-proxy's command and args
  ContainerSecurity proxy_security;      // picket-proxy's securityContext
  std::vector<std::string> ready_probe;  // the probe the kubelet runs before the app starts
};

std::vector<std::string> Strings(const config::Node* seq) {
  std::vector<std::string> out;
  if (seq != nullptr) {
    for (const config::Node& n : seq->items()) out.push_back(n.AsString());
  }
  return out;
}

const config::Node* Container(const config::Node& spec, const char* list, const char* name) {
  const config::Node* items = spec.Find(list);
  if (items == nullptr) return nullptr;
  for (const config::Node& c : items->items()) {
    if (c.StringAt("name") == name) return &c;
  }
  return nullptr;
}

int CapabilityNumber(const std::string& name) {
  static const std::map<std::string, int> kCaps = {{"NET_ADMIN", CAP_NET_ADMIN},
                                                   {"NET_RAW", CAP_NET_RAW},
                                                   {"SETGID", CAP_SETGID},
                                                   {"SETUID", CAP_SETUID}};
  auto it = kCaps.find(name);
  return it == kCaps.end() ? -1 : it->second;
}

// `picket-inject -f <testdata>/<input>` (the classic or native form follows the input, as in
// golden_test), read back into what the test starts.
void Inject(const fs::path& dir, const std::string& input, bool native, InjectedPod* pod) {
  const std::string out = (dir / "injected.yaml").string();
  std::vector<std::string> argv = {Runfile("inject/picket-inject"), "-f",
                                   Runfile("test/inject/testdata/" + input), "-o", out};
  if (native) argv.push_back("--native-sidecar");
  CommandResult injected = RunCommand(argv);
  ASSERT_EQ(injected.status, 0) << injected.output;
  auto docs = config::ParseYamlDocuments(ReadFile(out), out);
  ASSERT_TRUE(docs.has_value()) << docs.error().ToString();
  ASSERT_EQ(docs->size(), 1u);
  const config::Node& job = (*docs)[0];
  ASSERT_EQ(job.StringAt("kind"), "Job");
  pod->ns = job.Find("metadata")->StringAt("namespace");
  if (pod->ns.empty()) pod->ns = "default";
  const config::Node* spec = job.Find("spec")->Find("template")->Find("spec");
  ASSERT_NE(spec, nullptr);
  const config::Node* init = Container(*spec, "initContainers", "picket-init");
  ASSERT_NE(init, nullptr);
  pod->init_args = Strings(init->Find("args"));
  const config::Node* proxy = Container(*spec, "containers", "picket-proxy");
  pod->native = proxy == nullptr;
  if (proxy == nullptr) proxy = Container(*spec, "initContainers", "picket-proxy");
  ASSERT_NE(proxy, nullptr);
  ASSERT_EQ(pod->native, native);
  if (native) {
    ASSERT_EQ(proxy->StringAt("restartPolicy"), "Always");
  }
  pod->proxy_argv = Strings(proxy->Find("command"));
  for (const std::string& a : Strings(proxy->Find("args"))) pod->proxy_argv.push_back(a);
  const config::Node* security = proxy->Find("securityContext");
  ASSERT_NE(security, nullptr);
  pod->proxy_security.uid = static_cast<uid_t>(security->Find("runAsUser")->AsInt());
  pod->proxy_security.gid = static_cast<gid_t>(security->Find("runAsGroup")->AsInt());
  pod->proxy_security.no_new_privs = !security->Find("allowPrivilegeEscalation")->AsBool();
  const config::Node* caps = security->Find("capabilities");
  ASSERT_EQ(Strings(caps->Find("drop")), std::vector<std::string>{"ALL"});
  for (const std::string& name : Strings(caps->Find("add"))) {
    const int cap = CapabilityNumber(name);
    ASSERT_GE(cap, 0) << "capability " << name;
    pod->proxy_security.capabilities.push_back(cap);
  }
  // Native: the kubelet starts the app once the startup probe passed; classic: the test waits
  // for the readiness probe (a classic app container may start before its sidecar is ready).
  const config::Node* probe = proxy->Find(native ? "startupProbe" : "readinessProbe");
  ASSERT_NE(probe, nullptr);
  pod->ready_probe = Strings(probe->Find("exec")->Find("command"));
}

class JobE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(RequireRoot("job_e2e_test"));
    signal(SIGPIPE, SIG_IGN);
    ASSERT_NO_FATAL_FAILURE(MakeSharedDir("picket-job-e2e", &dir_));
    net_ = std::make_unique<PodNetwork>("jb", kSubnet);
    ASSERT_EQ(net_->Create(2), "");
    job_ip_ = PodIpOn(kSubnet, 0);
    digits_ip_ = PodIpOn(kSubnet, 1);
    // The run emptyDir: root's, mode 0777, as the kubelet makes it.
    fs::create_directories(dir_ / "run");
    chmod((dir_ / "run").c_str(), 0777);
    // uid 1337 and 1000 cannot read Bazel's runfiles under /root: copies they can run.
    proxy_bin_ = CopyProxy(dir_);
    for (const char* from : {"inject/picket-inject", "test/e2e/job_app.py"}) {
      const fs::path to = dir_ / fs::path(from).filename();
      fs::copy_file(Runfile(from), to);
      chmod(to.c_str(), 0755);
    }
    // digits: the Job's input on kAppPort, and a port the Job's egress policy does not allow.
    for (auto [port, answer] :
         {std::pair<uint16_t, std::string>{kAppPort, kDigits}, {kDeniedPort, "not for jobs"}}) {
      servers_.push_back(
          std::make_unique<AnswerServer>(net_->pod(1), digits_ip_, port, [answer](int c) {
            const std::string line = answer + "\n";
            (void)!send(c, line.data(), line.size(), MSG_NOSIGNAL);
          }));
      ASSERT_TRUE(servers_.back()->ok());
    }
  }

  void TearDown() override {
    if (HasFailure()) {
      for (const char* log : {"proxy.log", "app.log", "exec.log"}) {
        const std::string text = ReadFile((dir_ / log).string());  // the end: probes repeat
        std::fprintf(stderr, "--- %s ---\n%s\n", log,
                     text.substr(text.size() > 4000 ? text.size() - 4000 : 0).c_str());
      }
    }
    proxy_.reset();  // Child: SIGKILL by PID if still running
    servers_.clear();
    net_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  Netns& pod() { return net_->pod(0); }

  // The pod's manifests and its compiled policy: the Job's pods may reach app=digits on kAppPort
  // and nothing else.
  void CompilePolicy(const std::string& ns) {
    const fs::path manifests = dir_ / "manifests" / "job.yaml";
    AtomicWrite(manifests,
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns +
                    "}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + kPodName +
                    ", namespace: " + ns +
                    ", labels: {job-name: pi}}\nspec: {containers: "
                    "[{name: pi, image: x}]}\nstatus: {podIP: " +
                    job_ip_ +
                    "}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: digits, namespace: " + ns +
                    ", labels: {app: digits}}\nspec: {containers: [{name: c, image: x}]}\n"
                    "status: {podIP: " +
                    digits_ip_ +
                    "}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: "
                    "{name: job-egress, namespace: " +
                    ns +
                    "}\nspec:\n  podSelector: {matchLabels: {job-name: pi}}\n  policyTypes: "
                    "[Egress]\n  egress:\n  - to: [{podSelector: {matchLabels: {app: digits}}}]\n"
                    "    ports: [{port: " +
                    std::to_string(kAppPort) + "}]\n");
    CommandResult compiled =
        RunCommand({Runfile("control/picket-control"), "compile", "-f", manifests.string(), "--pod",
                    ns + "/" + kPodName, "-o", (dir_ / "policy.json").string()});
    ASSERT_EQ(compiled.status, 0) << compiled.output;
    chmod((dir_ / "policy.json").c_str(), 0644);
  }

  // An injected command line for this test: the image's binaries are the copies, the run
  // emptyDir is <dir>/run, the downward API's values are this pod's, and the policy comes from
  // a file instead of the control server (whose --xds-* flags are left out).
  std::vector<std::string> Localize(const std::vector<std::string>& argv, const std::string& ns) {
    const std::map<std::string, std::string> env = {{"$(POD_NAME)", kPodName},
                                                    {"$(POD_NAMESPACE)", ns},
                                                    {"$(POD_IPS)", job_ip_},
                                                    {"$(NODE_NAME)", "node-1"}};
    std::vector<std::string> out;
    for (std::string a : argv) {
      if (a.starts_with("--xds-")) continue;
      for (const auto& [var, value] : env) {
        if (const size_t at = a.find(var); at != std::string::npos)
          a.replace(at, var.size(), value);
      }
      if (const size_t at = a.find(kRunPath); at != std::string::npos) {
        a.replace(at, std::string(kRunPath).size(), (dir_ / "run").string());
      }
      if (a == "picket-inject") a = (dir_ / "picket-inject").string();
      if (a == "--exec=picket-proxy") a = "--exec=" + proxy_bin_;
      out.push_back(a);
    }
    if (out.size() > 1 && out[1] == "bootstrap") {
      out.push_back("--policy-file=" + (dir_ / "policy.json").string());
    }
    return out;
  }

  // A process the runtime starts in the sidecar container (an exec probe, `kubectl exec`): its
  // exit status, its output appended to exec.log.
  std::optional<int> ExecInSidecar(const std::vector<std::string>& argv,
                                   const ContainerSecurity& security) {
    Child exec;
    const std::string log = (dir_ / "exec.log").string();
    if (!exec.Start(pod(), argv, security, log)) return std::nullopt;
    return exec.Wait(std::chrono::seconds(10));
  }

  // Injects `input`, starts the pod up to the app's exit and checks the app did its work through
  // an enforcing sidecar. `injected` is what the injector wrote.
  void RunJobUntilAppExits(const std::string& input, bool native, InjectedPod* injected) {
    ASSERT_NO_FATAL_FAILURE(Inject(dir_, input, native, injected));
    ASSERT_NO_FATAL_FAILURE(CompilePolicy(injected->ns));

    // picket-init (its container runs first and to completion), with the injected args.
    std::vector<std::string> init = {Runfile("inject/picket-init")};
    init.insert(init.end(), injected->init_args.begin(), injected->init_args.end());
    CommandResult captured = pod().Exec(init);
    ASSERT_EQ(captured.status, 0) << captured.output;

    // The sidecar container: its injected command, as the runtime starts it.
    proxy_ = std::make_unique<Child>();
    const std::vector<std::string> sidecar = Localize(injected->proxy_argv, injected->ns);
    ASSERT_TRUE(
        proxy_->Start(pod(), sidecar, injected->proxy_security, (dir_ / "proxy.log").string()));
    const std::vector<std::string> probe = Localize(injected->ready_probe, injected->ns);
    ASSERT_TRUE(WaitFor([&] { return ExecInSidecar(probe, injected->proxy_security) == 0; },
                        std::chrono::seconds(20)))
        << "the injected " << (native ? "startup" : "readiness") << " probe never passed";
    // The proxy runs as uid 1337 (bootstrap --user switched before its exec).
    const std::string status = ReadFile("/proc/" + std::to_string(proxy_->pid()) + "/status");
    EXPECT_NE(status.find("\nUid:\t1337\t1337\t1337\t1337\n"), std::string::npos) << status;

    // The denied port is open: only the sidecar stands between the Job and it.
    const int direct = ConnectFrom(net_->node(), digits_ip_, kDeniedPort, std::chrono::seconds(5));
    ASSERT_GE(direct, 0);
    char buf[32] = {};
    EXPECT_GT(recv(direct, buf, sizeof buf, 0), 0) << "digits:" << kDeniedPort << " from the node";
    close(direct);

    // The app container.
    Child app;
    ASSERT_TRUE(app.Start(pod(),
                          {"/usr/bin/python3", (dir_ / "job_app.py").string(), digits_ip_,
                           std::to_string(kAppPort), kDigits, std::to_string(kDeniedPort)},
                          ContainerSecurity{kAppUid, kAppUid, {}, false},
                          (dir_ / "app.log").string()));
    app_exit_ = app.Wait(std::chrono::seconds(30));
    const std::string app_log = ReadFile((dir_ / "app.log").string());
    ASSERT_EQ(app_exit_, 0) << app_log;
    EXPECT_NE(app_log.find(std::string("fetched '") + kDigits + "'"), std::string::npos) << app_log;
    EXPECT_NE(app_log.find(":" + std::to_string(kDeniedPort) + ": reset"), std::string::npos)
        << app_log;
    // The sidecar enforced: one DROPPED record for the denied connection.
    const std::string dropped = AdminGet(pod(), "/flows?verdict=DROPPED");
    EXPECT_TRUE(dropped.starts_with("200\n")) << dropped;
    EXPECT_NE(dropped.find("\"destination_port\":" + std::to_string(kDeniedPort)),
              std::string::npos)
        << dropped;
    EXPECT_EQ(dropped.find("\"destination_port\":" + std::to_string(kAppPort)), std::string::npos)
        << dropped;
  }

  // The pod is complete: nothing runs in its network namespace any more.
  void ExpectNothingLeft() {
    CommandResult pids = RunCommand({"ip", "netns", "pids", pod().name()});
    EXPECT_EQ(pids.status, 0) << pids.output;
    EXPECT_EQ(pids.output, "") << "processes left in the pod";
    EXPECT_EQ(AdminGet(pod(), "/ready"), "") << "the admin endpoint still answers";
  }

  fs::path dir_;
  std::unique_ptr<PodNetwork> net_;
  std::string job_ip_, digits_ip_, proxy_bin_;
  std::vector<std::unique_ptr<AnswerServer>> servers_;
  std::unique_ptr<Child> proxy_;
  std::optional<int> app_exit_;
};

TEST_F(JobE2eTest, ClassicSidecarExitsAfterQuitquitquit) {
  InjectedPod injected;
  ASSERT_NO_FATAL_FAILURE(RunJobUntilAppExits("job.in.yaml", false, &injected));
  // The app has exited; the classic sidecar would run on. What the README has the operator run:
  // kubectl exec POD -c picket-proxy -- picket-inject probe
  //   --socket=/etc/picket/run/admin/admin.sock --method=POST --path=/quitquitquit
  //   --user=1337 --group=1337
  const std::vector<std::string> quit =
      Localize({"picket-inject", "probe", std::string("--socket=") + kRunPath + "/admin/admin.sock",
                "--method=POST", "--path=/quitquitquit", "--user=1337", "--group=1337"},
               injected.ns);
  // Without --user, root in that container cannot reach the socket: refused, sidecar unmoved.
  const std::vector<std::string> as_root(quit.begin(), quit.end() - 2);
  ASSERT_TRUE(WriteFile((dir_ / "exec.log").string(), ""));
  EXPECT_EQ(ExecInSidecar(as_root, injected.proxy_security), 1);
  const std::string refused = ReadFile((dir_ / "exec.log").string());
  EXPECT_NE(refused.find("Permission denied (its directory is uid 1337's: run the probe as it, "
                         "--user=1337)"),
            std::string::npos)
      << refused;
  EXPECT_TRUE(AdminGet(pod(), "/ready").starts_with("200")) << "the sidecar is still up";

  const auto t0 = steady_clock::now();
  EXPECT_EQ(ExecInSidecar(quit, injected.proxy_security), 0)
      << ReadFile((dir_ / "exec.log").string());
  const std::optional<int> sidecar_exit = proxy_->Wait(std::chrono::seconds(5));
  const double ms = std::chrono::duration<double, std::milli>(steady_clock::now() - t0).count();
  std::printf("classic Job: app exit %d, sidecar exit %d %.1f ms after POST /quitquitquit\n",
              app_exit_.value_or(-1), sidecar_exit.value_or(-1), ms);
  ASSERT_EQ(sidecar_exit, 0) << "the sidecar did not exit within 5 s of /quitquitquit";
  ExpectNothingLeft();
}

TEST_F(JobE2eTest, NativeSidecarExitsOnSigtermAfterTheApp) {
  InjectedPod injected;
  ASSERT_NO_FATAL_FAILURE(RunJobUntilAppExits("job_native.in.yaml", true, &injected));
  // The main container has exited: the kubelet terminates the sidecar (SIGTERM).
  const auto t0 = steady_clock::now();
  proxy_->Signal(SIGTERM);
  const std::optional<int> sidecar_exit = proxy_->Wait(kDrainTimeout);
  const double ms = std::chrono::duration<double, std::milli>(steady_clock::now() - t0).count();
  std::printf("native Job: app exit %d, sidecar exit %d %.1f ms after SIGTERM\n",
              app_exit_.value_or(-1), sidecar_exit.value_or(-1), ms);
  ASSERT_EQ(sidecar_exit, 0) << "the sidecar did not exit 0 within its drain timeout";
  ExpectNothingLeft();
}

}  // namespace
}  // namespace picket::e2e
