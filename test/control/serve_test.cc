// picket-control serve in-process: a manifest directory watched for changes, pushes reaching a
// real sidecar client, a bad manifest keeping the last good state, the admin endpoint over HTTP,
// and a ConfigMap volume's layout loading each object once.
#include "control/serve.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "base/json.h"
#include "control/source/from_flags.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_client.h"
#include "test/base/promtool.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

namespace fs = std::filesystem;
using testing::RunUntil;

constexpr const char* kPods = R"(
apiVersion: v1
kind: Namespace
metadata: {name: prod}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: prod, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: prod, labels: {app: db}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.2}
)";

std::string EgressPolicy(int port) {
  return R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: prod}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: )" +
         std::to_string(port) + "}]\n";
}

void WriteFile(const fs::path& path, const std::string& text) {
  // Write to a temporary name and rename, as editors and kubectl-like tools do.
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
  {
    std::ofstream out(tmp);
    out << text;
  }
  fs::rename(tmp, path);
}

policy::IpAddress Ip(const char* s) { return *policy::IpAddress::Parse(s); }

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    pki_ = testing::TestPki::Make();
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / ("serve_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "manifests" / "policies");
    fs::create_directories(dir_ / "certs");
    auto write = [&](const std::string& name, const std::string& text) {
      std::ofstream(dir_ / "certs" / name) << text;
      return (dir_ / "certs" / name).string();
    };
    options_.manifests_dir = (dir_ / "manifests").string();
    options_.listen = "127.0.0.1:0";
    options_.admin = "127.0.0.1:0";
    options_.unprotected_grace_ms = 0;  // a gap is listed at once
    options_.tls_cert = write("server.pem", pki_.server.cert_pem);
    options_.tls_key = write("server-key.pem", pki_.server.key_pem);
    options_.tls_ca = write("ca.pem", pki_.ca.cert_pem);
    WriteManifests(dir_ / "manifests");
    auto source = source::MakeManifestSource({options_.manifests_dir, options_.debounce_ms});
    ASSERT_TRUE(source.has_value()) << source.error().ToString();
    auto server = ControlServer::Create(&loop_, options_, std::move(*source));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
  }

  virtual void WriteManifests(const fs::path& dir) {
    WriteFile(dir / "pods.yaml", kPods);
    WriteFile(dir / "policies" / "web.yaml", EgressPolicy(5432));
  }

  void TearDown() override {
    if (client_) {
      bool closed = false;
      client_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      client_.reset();
    }
    bool closed = false;
    server_->Close([&] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    server_.reset();
    testing::DrainAndCloseLoop(&loop_);
    fs::remove_all(dir_);
  }

  void StartSidecar() {
    source_ = std::make_unique<proxy::xds::PolicySource>(
        "prod", "web", [this](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
          applied_ = std::move(p);
          return {};
        });
    proxy::xds::XdsClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(server_->xds_port());
    o.tls = pki_.Context(net::TlsRole::kClient, pki_.Pod("prod", "web"));
    o.node = {"test", "prod", "web", "test"};
    o.subscriptions = source_->Subscriptions();
    auto client = proxy::xds::XdsClient::Create(&loop_, std::move(o), source_.get());
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    client_ = std::move(*client);
    client_->Start();
    ASSERT_TRUE(RunUntil(&loop_, [&] { return applied_ != nullptr; }));
  }

  bool Allowed(int port) {
    return applied_->CheckEgress(Ip("10.0.0.2"), port, config::Protocol::kTCP).allowed;
  }

  // GET `path` from the admin endpoint; the loop runs while waiting.
  std::string AdminGet(const std::string& path) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server_->admin_port());
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    std::string response;
    RunUntil(&loop_, [&] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) > 0) response.append(buf, n);
      return n == 0;
    });
    close(fd);
    return response;
  }

  uv_loop_t loop_;
  testing::TestPki pki_;
  fs::path dir_;
  ServeOptions options_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<proxy::xds::PolicySource> source_;
  std::unique_ptr<proxy::xds::XdsClient> client_;
  policy::EndpointPolicyPtr applied_;
};

TEST_F(ServeTest, FileEditChangesEnforcementInTheSidecar) {
  StartSidecar();
  EXPECT_TRUE(Allowed(5432));
  EXPECT_FALSE(Allowed(6379));
  const auto start = std::chrono::steady_clock::now();
  WriteFile(dir_ / "manifests" / "policies" / "web.yaml", EgressPolicy(6379));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Allowed(6379); }));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(Allowed(5432));
  EXPECT_LT(ms, 1000.0);
  std::cout << "file write -> enforcement: " << ms << " ms\n";
}

TEST_F(ServeTest, InvalidManifestIsReportedAndLastGoodKept) {
  StartSidecar();
  WriteFile(dir_ / "manifests" / "policies" / "web.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web-egress, "
            "namespace: prod}\nspec: {podSelector: {}, egress: [{ports: [{port: 70000}]}]}\n");
  ASSERT_TRUE(
      RunUntil(&loop_, [&] { return server_->StatusJson().find("70000") != std::string::npos; }));
  auto status = base::ParseJson(server_->StatusJson());
  ASSERT_TRUE(status.has_value());
  const base::JsonValue errors = *status->root().Find("manifests")->Find("errors");
  ASSERT_GT(errors.size(), 0u);
  EXPECT_NE(errors.At(0)->AsString()->find("web.yaml"), std::string::npos);
  // Still enforcing the last good policy, and the file's good objects are still in force.
  EXPECT_TRUE(Allowed(5432));
  EXPECT_FALSE(Allowed(6379));
  // Fixing the file clears the error.
  WriteFile(dir_ / "manifests" / "policies" / "web.yaml", EgressPolicy(6379));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Allowed(6379); }));
  status = base::ParseJson(server_->StatusJson());
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->root().Find("manifests")->Find("errors")->size(), 0u);
}

TEST_F(ServeTest, AdminEndpointServesStatusAndReady) {
  StartSidecar();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->xds().stats().acks >= 2; }));
  const std::string status = AdminGet("/status");
  ASSERT_TRUE(status.starts_with("HTTP/1.1 200 OK\r\n")) << status;
  auto body = base::ParseJson(status.substr(status.find("\r\n\r\n") + 4));
  ASSERT_TRUE(body.has_value()) << body.error().ToString();
  const base::JsonValue sidecars = *body->root().Find("sidecars");
  ASSERT_EQ(sidecars.size(), 1u);
  EXPECT_EQ(sidecars.At(0)->Find("node")->Find("pod")->AsString(), "web");
  EXPECT_FALSE(sidecars.At(0)
                   ->Find("subscriptions")
                   ->Find(net::kPodPolicyType)
                   ->Find("last_acked_version")
                   ->AsString()
                   ->empty());
  EXPECT_TRUE(AdminGet("/ready").starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(AdminGet("/nope").starts_with("HTTP/1.1 404"));
}

// The real promtool (test/base/promtool.h) reads both ends' metrics with no lint note: the
// control server's /stats/prometheus (over HTTP, with a sidecar connected and ACKing, so every
// per-type family has samples) and the sidecar's picket_xds_* families.
TEST_F(ServeTest, MetricsPassPromtool) {
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  StartSidecar();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->xds().stats().by_type.size() > 0; }));
  const std::string response = AdminGet("/stats/prometheus");
  const std::string body = response.substr(response.find("\r\n\r\n") + 4);
  EXPECT_NE(body.find("\npicket_control_acks_total{type_url="), std::string::npos) << body;
  EXPECT_TRUE(body.starts_with("# HELP picket_build_info ")) << body;
  EXPECT_EQ(testing::PromtoolUnexpected(body, {}), "") << body;
  const std::string sidecar = client_->PrometheusText();
  EXPECT_NE(sidecar.find("\npicket_xds_acks_total{type_url="), std::string::npos) << sidecar;
  EXPECT_EQ(testing::PromtoolUnexpected(sidecar, {}), "") << sidecar;
}

// prod/web is selected by web-egress: unprotected until its sidecar connects, protected while it
// is, unprotected again once it is gone; /status lists it and /stats/prometheus counts it.
TEST_F(ServeTest, SelectedPodWithoutSidecarIsReportedUnprotected) {
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  // The /status body (its "unprotected" member is checked by the caller).
  auto status = [&] {
    const std::string response = AdminGet("/status");
    return response.substr(response.find("\r\n\r\n") + 4);
  };
  auto listed = [&] {
    auto body = base::ParseJson(status());
    EXPECT_TRUE(body.has_value());
    return body.has_value() ? *body->root().Find("unprotected")->Find("count")->AsUint64() : 99;
  };
  auto count = [&] {
    const std::string metrics = AdminGet("/stats/prometheus");
    const std::string key = "\npicket_control_unprotected_pods ";
    const size_t at = metrics.find(key);
    EXPECT_NE(at, std::string::npos) << metrics;
    return at == std::string::npos ? -1 : std::stoi(metrics.substr(at + key.size()));
  };
  {
    auto body = base::ParseJson(status());
    ASSERT_TRUE(body.has_value());
    const base::JsonValue u = *body->root().Find("unprotected");
    ASSERT_EQ(u.Find("count")->AsUint64(), 1u);
    EXPECT_EQ(u.Find("selected")->AsUint64(), 1u);
    const base::JsonValue pod = *u.Find("pods")->At(0);
    EXPECT_EQ(pod.Find("pod")->AsString(), "prod/web");
    EXPECT_EQ(pod.Find("policies")->At(0)->AsString(), "prod/web-egress");
    EXPECT_GT(pod.Find("since_unix_ms")->AsInt64(), 0);
  }
  EXPECT_EQ(count(), 1);

  StartSidecar();
  EXPECT_EQ(listed(), 0u);
  EXPECT_EQ(count(), 0);

  bool closed = false;
  client_->Close([&] { closed = true; });
  ASSERT_TRUE(RunUntil(&loop_, [&] { return closed; }));
  client_.reset();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->xds().stats().streams_active == 0; }));
  EXPECT_EQ(listed(), 1u);
  EXPECT_EQ(count(), 1);
}

// A ConfigMap mounted as a volume: the data in `..<timestamp>/`, `..data` pointing at it, and a
// top-level link per key. Each object is loaded once (not "duplicate pod") and serve is ready.
class ServeConfigMapTest : public ServeTest {
 protected:
  void WriteManifests(const fs::path& dir) override {
    const fs::path data = dir / "..2026_12_07_00_00_00.123456789";
    fs::create_directories(data);
    WriteFile(data / "pods.yaml", kPods);
    WriteFile(data / "web.yaml", EgressPolicy(5432));
    fs::create_directory_symlink(data.filename(), dir / "..data");
    fs::create_symlink(fs::path("..data") / "pods.yaml", dir / "pods.yaml");
    fs::create_symlink(fs::path("..data") / "web.yaml", dir / "web.yaml");
  }
};

TEST_F(ServeConfigMapTest, LoadsEachObjectOnceAndIsReady) {
  EXPECT_TRUE(server_->ready());
  auto status = base::ParseJson(server_->StatusJson());
  ASSERT_TRUE(status.has_value());
  std::optional<base::JsonValue> manifests = status->root().Find("manifests");
  ASSERT_TRUE(manifests.has_value());
  EXPECT_EQ(manifests->Find("errors")->size(), 0u);
  EXPECT_EQ(manifests->Find("cluster_errors")->size(), 0u) << server_->StatusJson();
  EXPECT_EQ(manifests->Find("files")->AsInt64(), 2);
  EXPECT_EQ(server_->xds().resource_count(net::kPodPolicyType), 2u);  // web and db
  EXPECT_TRUE(AdminGet("/ready").starts_with("HTTP/1.1 200"));
  StartSidecar();
  EXPECT_TRUE(Allowed(5432));
}

TEST(ServeFlagsTest, CertificateIssuanceFlags) {
  const std::vector<std::string> base = {"--kubeconfig", "kc", "--tls-cert", "c",
                                         "--tls-key",    "k",  "--tls-ca",   "a"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return ParseServeFlags(args);
  };
  auto ok = with({"--csr-listen", "0.0.0.0:15014", "--ca-key", "ck", "--cert-validity-s", "10",
                  "--csr-max-reviews", "8"});
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  EXPECT_EQ(ok->csr_listen, "0.0.0.0:15014");
  EXPECT_EQ(ok->ca_key, "ck");
  EXPECT_EQ(ok->cert_validity_s, 10u);
  EXPECT_EQ(ok->csr_max_reviews, 8u);
  EXPECT_EQ(with({})->csr_listen, "");  // off unless asked for
  EXPECT_EQ(with({})->cert_validity_s, 86400u);
  EXPECT_FALSE(with({"--ca-key", "ck"}).has_value());  // needs --csr-listen
  EXPECT_FALSE(with({"--csr-listen", "x:1", "--cert-validity-s", "86401"}).has_value());
  EXPECT_FALSE(with({"--csr-listen", "x:1", "--cert-validity-s", "0"}).has_value());
}

TEST(ServeFlagsTest, RequiresManifestsAndTls) {
  EXPECT_FALSE(ParseServeFlags({"--listen", "127.0.0.1:1"}).has_value());
  EXPECT_FALSE(ParseServeFlags({"--manifests", "d"}).has_value());
  EXPECT_FALSE(ParseServeFlags({"--manifests"}).has_value());
  EXPECT_FALSE(ParseServeFlags({"--bogus", "x"}).has_value());
  auto ok = ParseServeFlags({"--manifests", "d", "--tls-cert", "c", "--tls-key", "k", "--tls-ca",
                             "a", "--debounce-ms", "5"});
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  EXPECT_EQ(ok->debounce_ms, 5u);
  EXPECT_EQ(ok->max_manifest_bytes, 64u << 20);
  EXPECT_EQ(ok->max_frame_bytes, 4u << 20);
  EXPECT_EQ(ok->max_streams_per_identity, 2u);
  auto bounds = ParseServeFlags({"--manifests",
                                 "d",
                                 "--tls-cert",
                                 "c",
                                 "--tls-key",
                                 "k",
                                 "--tls-ca",
                                 "a",
                                 "--max-manifest-bytes",
                                 "4096",
                                 "--max-frame-bytes",
                                 "65536",
                                 "--max-buffered-bytes",
                                 "1048576",
                                 "--frame-timeout-ms",
                                 "500",
                                 "--max-streams-per-identity",
                                 "3",
                                 "--unprotected-grace-ms",
                                 "2500"});
  ASSERT_TRUE(bounds.has_value()) << bounds.error().ToString();
  EXPECT_EQ(bounds->max_manifest_bytes, 4096u);
  EXPECT_EQ(bounds->max_frame_bytes, 65536u);
  EXPECT_EQ(bounds->max_buffered_bytes, 1048576u);
  EXPECT_EQ(bounds->frame_timeout_ms, 500u);
  EXPECT_EQ(bounds->max_streams_per_identity, 3u);
  EXPECT_EQ(bounds->unprotected_grace_ms, 2500u);
  EXPECT_FALSE(ParseServeFlags({"--manifests", "d", "--tls-cert", "c", "--tls-key", "k", "--tls-ca",
                                "a", "--max-manifest-bytes", "0"})
                   .has_value());
}

}  // namespace
}  // namespace picket::control
