// Tests the picket-inject and picket-init binaries' command lines (argument parsing, stdin/stdout,
// exit codes, `bootstrap --exec`), on top of the library tests.
#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "inject/command.h"

namespace picket::inject {
namespace {

std::string Root() {
  char cwd[PATH_MAX];
  return getcwd(cwd, sizeof cwd);
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandResult RunBinary(std::vector<std::string> argv, const std::string& input = "") {
  argv[0] = Root() + "/inject/" + argv[0];
  ProcessRunner runner;
  auto r = runner.Run(argv, input);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().ToString());
  return r ? *r : CommandResult{-1, "", ""};
}

TEST(InjectCli, FileAndStdinGiveTheGolden) {
  const std::string golden = Read("test/inject/testdata/deployment.out.yaml");
  CommandResult r = RunBinary({"picket-inject", "-f", "test/inject/testdata/deployment.in.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, golden);
  r = RunBinary({"picket-inject", "inject", "--filename=-"},
                Read("test/inject/testdata/deployment.in.yaml"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, golden);

  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string out = std::string(tmp != nullptr ? tmp : "/tmp") + "/cli-out.yaml";
  r = RunBinary({"picket-inject", "-f", "test/inject/testdata/hostnetwork.in.yaml", "-o", out});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.err.find("===> Skipping injection because DaemonSet"), std::string::npos) << r.err;
  EXPECT_EQ(Read(out), Read("test/inject/testdata/hostnetwork.out.yaml"));
}

TEST(InjectCli, ErrorsExitNonZero) {
  EXPECT_EQ(RunBinary({"picket-inject", "-f", "/nonexistent.yaml"}).exit_code, 1);
  EXPECT_EQ(RunBinary({"picket-inject", "-f", "-", "--bogus", "x"}, "a: 1\n").exit_code, 2);
  EXPECT_EQ(RunBinary({"picket-inject", "frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunBinary({"picket-inject", "-f", "-", "--outbound-port", "0"}, "a: 1\n").exit_code, 2);
  CommandResult r = RunBinary({"picket-inject", "-f", "-"}, "a: [\n");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("<stdin>:"), std::string::npos) << r.err;
  EXPECT_EQ(RunBinary({"picket-inject", "--help"}).exit_code, 0);
}

TEST(InjectCli, EnforcementStrictRefusesWhatPermissiveInjects) {
  // capabilities.in.yaml keeps NET_RAW by annotation and by a container's own `add`.
  const std::string in = "test/inject/testdata/capabilities.in.yaml";
  CommandResult r = RunBinary({"picket-inject", "-f", in});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Read("test/inject/testdata/capabilities.out.yaml"));
  EXPECT_NE(r.err.find("===> Deployment \"shop/tools\": container \"pinger\" adds NET_RAW"),
            std::string::npos)
      << r.err;
  r = RunBinary({"picket-inject", "-f", in, "--enforcement", "strict"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("spec.containers[1].securityContext.capabilities.add: Forbidden"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("picket.dev/enforcement=strict"), std::string::npos) << r.err;
  r = RunBinary(
      {"picket-inject", "-f", "test/inject/testdata/pod.in.yaml", "--enforcement=strict"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Read("test/inject/testdata/pod.out.yaml"));
  EXPECT_EQ(RunBinary({"picket-inject", "-f", in, "--enforcement", "lax"}).exit_code, 2);
}

// Native sidecars from --kubernetes-version 1.29 on; classic before or without it; the explicit
// --native-sidecar[=false] wins either way.
TEST(InjectCli, KubernetesVersionChoosesTheSidecarForm) {
  const std::string in = "test/inject/testdata/job_native.in.yaml";
  const std::string native = Read("test/inject/testdata/job_native.out.yaml");
  CommandResult r = RunBinary({"picket-inject", "-f", in, "--kubernetes-version", "v1.29.3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, native);
  r = RunBinary({"picket-inject", "-f", in, "--kubernetes-version=1.28", "--native-sidecar"});
  EXPECT_EQ(r.out, native);
  for (std::vector<std::string> classic :
       {std::vector<std::string>{"picket-inject", "-f", in},
        {"picket-inject", "-f", in, "--kubernetes-version", "v1.28.4"},
        {"picket-inject", "-f", in, "--kubernetes-version=v1.30.0", "--native-sidecar=false"}}) {
    r = RunBinary(classic);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("restartPolicy: Always"), std::string::npos) << classic.back();
    EXPECT_NE(r.out.find("  containers:\n      - name: picket-proxy"), std::string::npos) << r.out;
  }
  r = RunBinary({"picket-inject", "-f", in, "--kubernetes-version", "latest"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--kubernetes-version: \"latest\" is not a Kubernetes version"),
            std::string::npos)
      << r.err;
}

TEST(InjectCli, BootstrapPrintsWritesAndExecs) {
  CommandResult r =
      RunBinary({"picket-inject", "bootstrap", "--namespace", "shop", "--pod", "web-0", "--ip",
                 "10.0.0.7", "--ip=fd00::7", "--policy-file", "/p.json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  name: web-0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  - fd00::7\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("policy_file: /p.json\n"), std::string::npos) << r.out;

  // As the injected sidecar runs it: downward-API values, a file, then exec of the proxy
  // (here /bin/echo, which prints the arguments it was given).
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string file = std::string(tmp != nullptr ? tmp : "/tmp") + "/bootstrap.yaml";
  r = RunBinary({"picket-inject", "bootstrap", "--namespace=shop", "--pod=web-0",
                 "--ip=10.0.0.7,fd00::7", "--xds-address=picket-control:15012",
                 "--xds-cert=/certs/tls.crt", "--xds-key=/certs/tls.key", "--xds-ca=/certs/ca.crt",
                 "--output=" + file, "--exec=/bin/echo"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "--config=" + file + "\n");
  EXPECT_NE(Read(file).find("xds:\n  address: picket-control:15012\n  tls:\n"
                            "    cert: /certs/tls.crt\n    key: /certs/tls.key\n"
                            "    ca: /certs/ca.crt\n"),
            std::string::npos)
      << Read(file);

  r = RunBinary({"picket-inject", "bootstrap", "--namespace=shop", "--pod=web-0", "--ip=$(POD_IPS)",
                 "--policy-file=/p"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is not an IP address"), std::string::npos) << r.err;
}

// picket-proxy refuses an xds section without mutual-TLS files at start-up; the generator must
// refuse it first: exit 2, the missing flags named, nothing written and nothing executed.
TEST(InjectCli, BootstrapWithXdsButNoTlsIsRefused) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string file = std::string(tmp != nullptr ? tmp : "/tmp") + "/no-tls-bootstrap.yaml";
  std::remove(file.c_str());
  const std::vector<std::string> base = {"picket-inject",    "bootstrap",
                                         "--namespace=shop", "--pod=web-0",
                                         "--ip=10.0.0.7",    "--xds-address=picket-control:15012",
                                         "--output=" + file, "--exec=/bin/echo"};
  CommandResult r = RunBinary(base);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");  // /bin/echo did not run
  EXPECT_NE(r.err.find("picket-inject bootstrap: --xds-address needs mutual TLS: missing "
                       "--xds-cert, --xds-key, --xds-ca"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::ifstream(file).good()) << "a refused bootstrap was written";

  std::vector<std::string> partial = base;
  partial.push_back("--xds-cert=/certs/tls.crt");
  r = RunBinary(partial);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing --xds-key, --xds-ca ("), std::string::npos) << r.err;
  EXPECT_FALSE(std::ifstream(file).good()) << "a refused bootstrap was written";

  // To stdout: nothing printed either.
  r = RunBinary({"picket-inject", "bootstrap", "--namespace=shop", "--pod=web-0", "--ip=10.0.0.7",
                 "--xds-address=picket-control:15012", "--xds-ca=/certs/ca.crt"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("missing --xds-cert, --xds-key ("), std::string::npos) << r.err;

  // With all three it is written (and the proxy's validator accepts it: bootstrap_gen_test).
  std::vector<std::string> full = partial;
  full.push_back("--xds-key=/certs/tls.key");
  full.push_back("--xds-ca=/certs/ca.crt");
  r = RunBinary(full);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "--config=" + file + "\n");
  EXPECT_NE(Read(file).find("    ca: /certs/ca.crt\n"), std::string::npos) << Read(file);
}

TEST(InjectCli, ProbeFailsWhenNothingListens) {
  // Port 1 on loopback: nothing listens there in a test sandbox.
  EXPECT_EQ(RunBinary({"picket-inject", "probe", "--url=http://127.0.0.1:1/ready"}).exit_code, 1);
  EXPECT_EQ(RunBinary({"picket-inject", "probe", "--url=http://example.com/ready"}).exit_code, 2);
  CommandResult r = RunBinary({"picket-inject", "probe", "--group=1337"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--group needs --user"), std::string::npos) << r.err;
}

// `bootstrap --capture=verdict` writes `capture: verdict`; other values are a usage error.
TEST(InjectCli, BootstrapCapture) {
  const std::vector<std::string> base = {"picket-inject", "bootstrap",     "--namespace=shop",
                                         "--pod=api",     "--ip=10.0.0.9", "--policy-file=/p"};
  std::vector<std::string> verdict = base;
  verdict.push_back("--capture=verdict");
  CommandResult r = RunBinary(verdict);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\ncapture: verdict\n"), std::string::npos) << r.out;
  std::vector<std::string> relay = base;
  relay.push_back("--capture=relay");
  r = RunBinary(relay);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("capture"), std::string::npos) << r.out;
  std::vector<std::string> bad = base;
  bad.push_back("--capture=tproxy");
  r = RunBinary(bad);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--capture"), std::string::npos) << r.err;
}

TEST(InitCli, DryRunAndBadFlags) {
  CommandResult r = RunBinary({"picket-init", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Read("test/inject/testdata/init_default.golden"));
  r = RunBinary({"picket-init", "--dry-run", "--exclude-outbound-cidrs=10.0.0.0/40"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--exclude-outbound-cidrs"), std::string::npos) << r.err;
  EXPECT_EQ(RunBinary({"picket-init", "--help"}).exit_code, 0);
  r = RunBinary({"picket-init", "--dry-run", "--capture=tproxy"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--capture: \"tproxy\" is not a capture mode: supported values: relay, "
                       "verdict"),
            std::string::npos)
      << r.err;
  r = RunBinary({"picket-init", "--dry-run", "--capture", "verdict"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Read("test/inject/testdata/init_verdict_default.golden"));
  EXPECT_NE(RunBinary({"picket-init", "--help"}).out.find("--capture"), std::string::npos);
}

}  // namespace
}  // namespace picket::inject
