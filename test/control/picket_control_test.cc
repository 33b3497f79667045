// The picket-control offline subcommands, run as a subprocess on temporary manifest files.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/document.h"
#include "policy/endpoint_policy.h"

extern char** environ;

namespace picket::control {
namespace {

namespace fs = std::filesystem;

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class PicketControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const char* workspace = std::getenv("TEST_WORKSPACE");
    ASSERT_TRUE(srcdir != nullptr && workspace != nullptr) << "run under bazel test";
    binary_ = fs::path(srcdir) / workspace / "control" / "picket-control";
    ASSERT_TRUE(fs::exists(binary_)) << binary_;
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") /
           ("picket_control_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

  RunResult Exec(std::vector<std::string> args) {
    args.insert(args.begin(), binary_.string());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string out_path = (dir_ / "stdout").string();
    const std::string err_path = (dir_ / "stderr").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = 0;
    RunResult run;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn: " << rc;
      return run;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    run.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    run.out = ReadFile(out_path);
    run.err = ReadFile(err_path);
    return run;
  }

  fs::path binary_;
  fs::path dir_;
};

constexpr char kCluster[] = R"(apiVersion: v1
kind: Namespace
metadata: {name: x}
---
apiVersion: v1
kind: Namespace
metadata: {name: y}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: web}}
spec:
  containers:
  - name: c
    image: i
    ports: [{containerPort: 8080, name: http}]
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: y, labels: {app: db}}
spec:
  containers: [{name: c, image: i}]
status: {podIP: 10.0.0.2}
)";

constexpr char kPolicy[] = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: x}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {app: db}}}]
    ports: [{port: http}]
)";

TEST_F(PicketControlTest, ValidatePrintsSummary) {
  Write("cluster.yaml", kCluster);
  Write("policy.yaml", kPolicy);
  RunResult r = Exec({"validate", "-f", dir_.string()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "valid: 2 namespaces, 2 pods, 1 network policies\n");
}

TEST_F(PicketControlTest, ValidatePrintsEveryErrorAndFails) {
  const std::string bad = Write("bad.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {}
  ingress:
  - ports: [{protocol: tcp}, {port: 0}]
)");
  RunResult r = Exec({"validate", "-f", bad});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(bad + ":"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("spec.ingress[0].ports[0].protocol"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("spec.ingress[0].ports[1].port"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(PicketControlTest, MatrixJsonIsExact) {
  const std::string a = Write("cluster.yaml", kCluster);
  const std::string b = Write("policy.yaml", kPolicy);
  RunResult r = Exec(
      {"matrix", "-f", a, b, "--ports", "80,8080", "--protocols", "TCP,UDP", "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"probes\":["
            "{\"from\":\"x/a\",\"to\":\"y/b\",\"port\":80,\"protocol\":\"TCP\",\"allowed\":true},"
            "{\"from\":\"y/b\",\"to\":\"x/a\",\"port\":80,\"protocol\":\"TCP\",\"allowed\":false},"
            "{\"from\":\"x/a\",\"to\":\"y/b\",\"port\":80,\"protocol\":\"UDP\",\"allowed\":true},"
            "{\"from\":\"y/b\",\"to\":\"x/a\",\"port\":80,\"protocol\":\"UDP\",\"allowed\":false},"
            "{\"from\":\"x/a\",\"to\":\"y/b\",\"port\":8080,\"protocol\":\"TCP\",\"allowed\":true},"
            "{\"from\":\"y/b\",\"to\":\"x/a\",\"port\":8080,\"protocol\":\"TCP\",\"allowed\":true},"
            "{\"from\":\"x/a\",\"to\":\"y/b\",\"port\":8080,\"protocol\":\"UDP\",\"allowed\":true},"
            "{\"from\":\"y/b\",\"to\":\"x/a\",\"port\":8080,\"protocol\":\"UDP\",\"allowed\":false}"
            "]}\n");
}

// -o yaml (kubectl's spelling) prints the --output json document as YAML.
TEST_F(PicketControlTest, MatrixYamlIsTheJsonDocument) {
  const std::string a = Write("cluster.yaml", kCluster);
  const std::string b = Write("policy.yaml", kPolicy);
  RunResult json = Exec({"matrix", "-f", a, b, "--ports", "80", "--output", "json"});
  RunResult yaml = Exec({"matrix", "-f", a, b, "--ports", "80", "-o", "yaml"});
  ASSERT_EQ(json.code, 0) << json.err;
  ASSERT_EQ(yaml.code, 0) << yaml.err;
  EXPECT_EQ(yaml.out,
            "probes:\n"
            "- from: x/a\n  to: y/b\n  port: 80\n  protocol: TCP\n  allowed: true\n"
            "- from: y/b\n  to: x/a\n  port: 80\n  protocol: TCP\n  allowed: false\n");
  auto from_yaml = config::ParseYamlDocuments(yaml.out, "matrix.yaml");
  auto from_json = config::ParseJson(json.out, "matrix.json");
  ASSERT_TRUE(from_yaml.has_value() && from_json.has_value());
  ASSERT_EQ(from_yaml->size(), 1u);
  EXPECT_EQ((*from_yaml)[0], *from_json);
  EXPECT_EQ(Exec({"matrix", "-f", a, b, "--output", "xml"}).code, 2);
}

// With -f, a Deployment stands for its pods: one pod from its template (its labels, ports), an
// address from 192.0.2.0/24, marked synthetic in both outputs; the NetworkPolicy selecting the
// template's labels predicts the cells.
constexpr char kDeployment[] = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: x}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - {name: c, image: i, ports: [{containerPort: 9000, name: grpc}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api, namespace: x}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: grpc}]
)";

TEST_F(PicketControlTest, MatrixOnADeploymentTemplate) {
  const std::string a = Write("cluster.yaml", kCluster);
  const std::string b = Write("deploy.yaml", kDeployment);
  RunResult r = Exec({"matrix", "-f", a, b, "--ports", "9000", "--output", "json"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"pods\":[{\"pod\":\"x/api-template\",\"synthetic\":true,"
            "\"template_of\":\"Deployment x/api\"}],\"probes\":["
            "{\"from\":\"x/a\",\"to\":\"x/api-template\",\"port\":9000,\"protocol\":\"TCP\","
            "\"allowed\":true},"
            "{\"from\":\"x/a\",\"to\":\"y/b\",\"port\":9000,\"protocol\":\"TCP\",\"allowed\":true},"
            "{\"from\":\"x/api-template\",\"to\":\"x/a\",\"port\":9000,\"protocol\":\"TCP\","
            "\"allowed\":true},"
            "{\"from\":\"x/api-template\",\"to\":\"y/b\",\"port\":9000,\"protocol\":\"TCP\","
            "\"allowed\":true},"
            "{\"from\":\"y/b\",\"to\":\"x/a\",\"port\":9000,\"protocol\":\"TCP\",\"allowed\":true},"
            "{\"from\":\"y/b\",\"to\":\"x/api-template\",\"port\":9000,\"protocol\":\"TCP\","
            "\"allowed\":false}"
            "]}\n");
  r = Exec({"matrix", "-f", a, b, "--ports", "9000", "--output", "table"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "9000/TCP\n"
            "               x/a            x/api-template y/b\n"
            "x/a            -              .              .\n"
            "x/api-template .              -              .\n"
            "y/b            .              X              -\n"
            "\n"
            "x/api-template: synthetic, 192.0.2.1 (from Deployment x/api's template)\n");
  r = Exec({"explain", "-f", a, b, "--from", "x/a", "--to", "192.0.2.1", "--port", "9000"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Final verdict: ALLOWED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-> x/api-template (synthetic pod, 192.0.2.1, from Deployment x/api's "
                       "template) port 9000/TCP"),
            std::string::npos)
      << r.out;
  r = Exec({"validate", "-f", a, b});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "valid: 2 namespaces, 3 pods, 1 network policies (1 pods from workload "
            "templates)\n");
  r = Exec({"compile", "-f", a, b, "--pod", "x/api-template"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_EQ(r.err,
            "x/api-template: synthetic pod from Deployment x/api's template (its address is from "
            "a documentation range)\n");
}

// A workload whose pod template is malformed is an error of the workload, with the template's
// field path, in every offline command.
TEST_F(PicketControlTest, MalformedWorkloadTemplateIsAnError) {
  const std::string f = Write("deploy.yaml", R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: x}
spec:
  template:
    metadata: {labels: {app: "-api"}}
)");
  for (const char* command : {"validate", "matrix"}) {
    RunResult r = Exec({command, "-f", f});
    EXPECT_EQ(r.code, 1) << command;
    EXPECT_EQ(r.out, "") << command;
    EXPECT_EQ(r.err.rfind(f + ":6: Deployment x/api: spec.template.metadata.labels: Invalid value: "
                              "\"-api\": ",
                          0),
              0u)
        << command << ": " << r.err;
  }
}

TEST_F(PicketControlTest, MatrixTable) {
  Write("cluster.yaml", kCluster);
  Write("policy.yaml", kPolicy);
  RunResult r = Exec({"matrix", "-f", dir_.string(), "--ports", "8080", "--output", "table"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "8080/TCP\n"
            "    x/a y/b\n"
            "x/a -   .\n"
            "y/b .   -\n");
}

TEST_F(PicketControlTest, ExplainDenied) {
  Write("cluster.yaml", kCluster);
  Write("policy.yaml", kPolicy);
  RunResult r =
      Exec({"explain", "-f", dir_.string(), "--from", "y/b", "--to", "x/a", "--port", "80"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Ingress of x/a: selected by x/web\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(port/protocol did not match)"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("\nFinal verdict: DENIED\n")) << r.out;
}

TEST_F(PicketControlTest, ExplainAllowedByAddress) {
  Write("cluster.yaml", kCluster);
  Write("policy.yaml", kPolicy);
  RunResult r = Exec({"explain", "-f", dir_.string(), "--from", "10.0.0.2", "--to", "10.0.0.1",
                      "--port", "8080", "--protocol", "TCP"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("allowed by x/web ingress rule 0: from namespaceSelector {} podSelector "
                       "{app=db}, port TCP/http (named port)"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(r.out.ends_with("\nFinal verdict: ALLOWED\n")) << r.out;
}

TEST_F(PicketControlTest, ExplainExternalSource) {
  Write("cluster.yaml", kCluster);
  Write("policy.yaml", kPolicy);
  RunResult r = Exec(
      {"explain", "-f", dir_.string(), "--from", "192.0.2.7", "--to", "x/a", "--port", "8080"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("(peer did not match)"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("\nFinal verdict: DENIED\n")) << r.out;
}

TEST_F(PicketControlTest, CompileWritesADecodableSnapshot) {
  Write("cluster.yaml", kCluster);
  Write("policy.yaml", kPolicy);
  // Outside dir_: the loader reads every *.json under -f directories.
  const std::string out = dir_.string() + "-x-a.json";
  RunResult r = Exec({"compile", "-f", dir_.string(), "--pod", "x/a", "-o", out});
  EXPECT_EQ(r.code, 0) << r.err;
  auto snapshot = policy::DecodeEndpointPolicy(ReadFile(out), out);
  ASSERT_TRUE(snapshot.has_value()) << snapshot.error()[0].ToString();
  EXPECT_EQ((*snapshot)->pod_namespace(), "x");
  EXPECT_EQ((*snapshot)->pod_name(), "a");
  const auto b = *policy::IpAddress::Parse("10.0.0.2");
  EXPECT_TRUE((*snapshot)->CheckIngress(b, 8080, config::Protocol::kTCP).allowed);
  EXPECT_FALSE((*snapshot)->CheckIngress(b, 80, config::Protocol::kTCP).allowed);

  RunResult stdout_run = Exec({"compile", "-f", dir_.string(), "--pod", "x/a"});
  EXPECT_EQ(stdout_run.code, 0);
  EXPECT_EQ(stdout_run.out, ReadFile(out));
  fs::remove(out);
}

// A default-deny pod still accepts its own node (kubelet probes); explain says why, and the
// compiled snapshot (what the sidecar enforces) carries the node's addresses.
constexpr char kNodeCluster[] = R"(apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x}
spec:
  containers: [{name: c, image: i}]
status:
  podIP: 10.0.0.1
  hostIP: 192.168.0.1
  hostIPs: [{ip: 192.168.0.1}, {ip: "fd00:1::1"}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec:
  podSelector: {}
)";

TEST_F(PicketControlTest, ExplainAndCompileAllowTheOwnNode) {
  Write("cluster.yaml", kNodeCluster);
  RunResult r = Exec(
      {"explain", "-f", dir_.string(), "--from", "192.168.0.1", "--to", "x/a", "--port", "8080"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Ingress of x/a: selected by x/deny\n  ALLOWED: allowed: from the pod's "
                       "own node 192.168.0.1 (always allowed into the pod)\n"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(r.out.ends_with("\nFinal verdict: ALLOWED\n")) << r.out;
  r = Exec(
      {"explain", "-f", dir_.string(), "--from", "192.168.0.2", "--to", "x/a", "--port", "8080"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("DENIED: no rule of x/deny matched"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with("\nFinal verdict: DENIED\n")) << r.out;

  r = Exec({"compile", "-f", dir_.string(), "--pod", "x/a"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("host_ips":["192.168.0.1","fd00:1::1"])"), std::string::npos) << r.out;
  auto snapshot = policy::DecodeEndpointPolicy(r.out, "compiled");
  ASSERT_TRUE(snapshot.has_value()) << snapshot.error()[0].ToString();
  for (const char* node : {"192.168.0.1", "fd00:1::1"}) {
    const policy::Decision d =
        (*snapshot)->CheckIngress(*policy::IpAddress::Parse(node), 8080, config::Protocol::kTCP);
    EXPECT_TRUE(d.allowed) << node;
    EXPECT_EQ(d.detail, std::string("allowed: from the pod's own node ") + node +
                            " (always allowed into the pod)");
  }
  EXPECT_FALSE(
      (*snapshot)
          ->CheckIngress(*policy::IpAddress::Parse("192.168.0.2"), 8080, config::Protocol::kTCP)
          .allowed);
}

TEST_F(PicketControlTest, UsageErrors) {
  Write("cluster.yaml", kCluster);
  EXPECT_EQ(Exec({}).code, 2);
  EXPECT_EQ(Exec({"frobnicate"}).code, 2);
  EXPECT_EQ(Exec({"matrix"}).code, 2);
  EXPECT_EQ(Exec({"matrix", "-f", dir_.string(), "--ports", "0"}).code, 2);
  EXPECT_EQ(Exec({"matrix", "-f", dir_.string(), "--protocols", "ICMP"}).code, 2);
  EXPECT_EQ(Exec({"matrix", "-f", dir_.string(), "--output", "xml"}).code, 2);
  EXPECT_EQ(Exec({"explain", "-f", dir_.string(), "--from", "x/a"}).code, 2);
  EXPECT_EQ(
      Exec({"explain", "-f", dir_.string(), "--from", "x/zz", "--to", "x/a", "--port", "1"}).code,
      2);
  EXPECT_EQ(Exec({"compile", "-f", dir_.string()}).code, 2);
  EXPECT_EQ(Exec({"compile", "-f", dir_.string(), "--pod", "x/nope"}).code, 1);
  EXPECT_EQ(Exec({"help"}).code, 0);
}

}  // namespace
}  // namespace picket::control
