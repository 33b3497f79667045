// picket-control serve in-process with real sidecar streams (proxy/xds's XdsClient on loopback
// mutual TLS), each node saying whether it enforces UDP/SCTP: a pod whose policy names UDP 53 is
// listed on /status `udp_sctp_unenforced` and counted in /stats/prometheus only while its
// sidecar says `udp_sctp_enforced: false`; a sidecar that enforces, or a TCP-only policy, is
// not listed; the warning is logged once per change, not per request; a policy edit that names
// UDP lists that pod without a reconnect, and a sidecar that leaves is no longer listed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/json.h"
#include "control/serve.h"
#include "control/source/from_flags.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_client.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

namespace fs = std::filesystem;
using testing::RunUntil;

std::string PodYaml(const std::string& name, const std::string& app, const std::string& ip) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         ", namespace: prod, labels: {app: " + app +
         "}}\nspec: {containers: [{name: c, image: x}]}\nstatus: {podIP: " + ip + "}\n---\n";
}

// `app`'s egress to anything on `ports` (a YAML flow list).
std::string EgressPolicy(const std::string& name, const std::string& app,
                         const std::string& ports) {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " + name +
         ", namespace: prod}\nspec:\n  podSelector: {matchLabels: {app: " + app +
         "}}\n  policyTypes: [Egress]\n  egress:\n  - ports: " + ports + "\n";
}

void WriteFile(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
  std::ofstream(tmp) << text;
  fs::rename(tmp, path);
}

struct Sidecar {
  std::unique_ptr<proxy::xds::PolicySource> source;
  std::unique_ptr<proxy::xds::XdsClient> client;
  policy::EndpointPolicyPtr applied;
};

class UdpSctpServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    pki_ = testing::TestPki::Make();
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / ("udp_sctp_serve_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "manifests");
    fs::create_directories(dir_ / "certs");
    auto write = [&](const std::string& name, const std::string& text) {
      std::ofstream(dir_ / "certs" / name) << text;
      return (dir_ / "certs" / name).string();
    };
    ServeOptions options;
    options.manifests_dir = (dir_ / "manifests").string();
    options.listen = "127.0.0.1:0";
    options.admin = "127.0.0.1:0";
    options.tls_cert = write("server.pem", pki_.server.cert_pem);
    options.tls_key = write("server-key.pem", pki_.server.key_pem);
    options.tls_ca = write("ca.pem", pki_.ca.cert_pem);
    // dns and dns2 share an identity (app: dns); web is TCP only.
    WriteFile(dir_ / "manifests" / "pods.yaml",
              "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---\n" +
                  PodYaml("dns", "dns", "10.0.0.1") + PodYaml("dns2", "dns", "10.0.0.2") +
                  PodYaml("web", "web", "10.0.0.3"));
    WriteFile(dir_ / "manifests" / "dns.yaml",
              EgressPolicy("dns-egress", "dns", "[{protocol: UDP, port: 53}]"));
    WriteFile(dir_ / "manifests" / "web.yaml",
              EgressPolicy("web-egress", "web", "[{protocol: TCP, port: 5432}]"));
    auto source = source::MakeManifestSource({options.manifests_dir, options.debounce_ms});
    ASSERT_TRUE(source.has_value()) << source.error().ToString();
    auto server = ControlServer::Create(&loop_, options, std::move(*source));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  }

  void TearDown() override {
    for (auto& [name, sidecar] : sidecars_) Stop(sidecar);
    bool closed = false;
    server_->Close([&] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    server_.reset();
    testing::DrainAndCloseLoop(&loop_);
    fs::remove_all(dir_);
  }

  // Connects pod prod/`name`'s sidecar, its node saying `enforced`; returns once it applied
  // its policy.
  void Connect(const std::string& name, std::optional<bool> enforced) {
    Sidecar& s = sidecars_[name];
    s.source = std::make_unique<proxy::xds::PolicySource>(
        "prod", name, [&s](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
          s.applied = std::move(p);
          return {};
        });
    proxy::xds::XdsClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(server_->xds_port());
    o.tls = pki_.Context(net::TlsRole::kClient, pki_.Pod("prod", name));
    o.node = {"test~" + name, "prod", name, "test", enforced};
    o.subscriptions = s.source->Subscriptions();
    auto client = proxy::xds::XdsClient::Create(&loop_, std::move(o), s.source.get());
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    s.client = std::move(*client);
    s.client->Start();
    ASSERT_TRUE(RunUntil(&loop_, [&] { return s.applied != nullptr; }));
  }

  void Stop(Sidecar& s) {
    if (!s.client) return;
    bool closed = false;
    s.client->Close([&] { closed = true; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
    s.client.reset();
  }

  // GET `path` from the admin endpoint (the body only); the loop runs while waiting.
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
    EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
    const size_t body = response.find("\r\n\r\n");
    return body == std::string::npos ? "" : response.substr(body + 4);
  }

  // /status `udp_sctp_unenforced`, as "pod:policy,...:protocol,..." per listed pod, plus the
  // count and warnings members.
  struct Listed {
    std::vector<std::string> pods;
    uint64_t count = 99;
    uint64_t warnings = 99;
  };
  Listed Status() {
    Listed out;
    auto body = base::ParseJson(AdminGet("/status"));
    EXPECT_TRUE(body.has_value());
    if (!body.has_value()) return out;
    const base::JsonValue u = *body->root().Find("udp_sctp_unenforced");
    out.count = *u.Find("count")->AsUint64();
    out.warnings = *u.Find("warnings")->AsUint64();
    for (size_t i = 0; i < u.Find("pods")->size(); ++i) {
      const base::JsonValue pod = *u.Find("pods")->At(i);
      std::string line = std::string(*pod.Find("pod")->AsString()) + ":";
      for (size_t j = 0; j < pod.Find("policies")->size(); ++j) {
        line += std::string(j ? "," : "") + std::string(*pod.Find("policies")->At(j)->AsString());
      }
      line += ":";
      for (size_t j = 0; j < pod.Find("protocols")->size(); ++j) {
        line += std::string(j ? "," : "") + std::string(*pod.Find("protocols")->At(j)->AsString());
      }
      out.pods.push_back(line);
    }
    return out;
  }

  // A sample of /stats/prometheus.
  int Metric(const std::string& name) {
    const std::string metrics = AdminGet("/stats/prometheus");
    const std::string key = "\n" + name + " ";
    const size_t at = metrics.find(key);
    EXPECT_NE(at, std::string::npos) << metrics;
    return at == std::string::npos ? -1 : std::stoi(metrics.substr(at + key.size()));
  }

  uv_loop_t loop_;
  testing::TestPki pki_;
  fs::path dir_;
  std::unique_ptr<ControlServer> server_;
  std::map<std::string, Sidecar> sidecars_;
};

constexpr const char* kGauge = "picket_control_udp_sctp_unenforced_pods";
constexpr const char* kWarnings = "picket_control_udp_sctp_unenforced_warnings_total";

TEST_F(UdpSctpServeTest, UnenforcedSidecarOfAPodWhosePolicyNamesUdpIsListed) {
  // Enforcing (dns2: same policy as dns), TCP only (web), and not saying (dns, an older sidecar):
  // nothing listed.
  Connect("dns2", true);
  Connect("web", false);
  Connect("dns", std::nullopt);
  Listed s = Status();
  EXPECT_EQ(s.count, 0u);
  EXPECT_TRUE(s.pods.empty());
  EXPECT_EQ(s.warnings, 0u);
  EXPECT_EQ(Metric(kGauge), 0);
  // /status shows what each node said.
  const std::string status = AdminGet("/status");
  EXPECT_NE(status.find(R"("pod":"dns2","user_agent":"test","udp_sctp_enforced":true)"),
            std::string::npos)
      << status;
  EXPECT_NE(status.find(R"("pod":"dns","user_agent":"test","udp_sctp_enforced":null)"),
            std::string::npos)
      << status;

  // dns reconnects saying it does not enforce: listed, counted, one warning.
  Stop(sidecars_["dns"]);
  sidecars_["dns"].applied = nullptr;
  Connect("dns", false);
  s = Status();
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.pods, std::vector<std::string>{"prod/dns:prod/dns-egress:UDP"});
  EXPECT_EQ(s.warnings, 1u);
  EXPECT_EQ(Metric(kGauge), 1);
  EXPECT_EQ(Metric(kWarnings), 1);

  // More requests on the streams (an address-map push to all three, ACKed: each gets a new
  // replica of its own app, which its scope holds) change nothing: no new warning.
  const uint64_t acks = server_->xds().stats().acks;
  WriteFile(dir_ / "manifests" / "pods.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---\n" +
                PodYaml("dns", "dns", "10.0.0.1") + PodYaml("dns2", "dns", "10.0.0.2") +
                PodYaml("web", "web", "10.0.0.3") + PodYaml("dns3", "dns", "10.0.0.4") +
                PodYaml("web2", "web", "10.0.0.5"));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->xds().stats().acks >= acks + 3; }));
  s = Status();
  EXPECT_EQ(s.pods, std::vector<std::string>{"prod/dns:prod/dns-egress:UDP"});
  EXPECT_EQ(s.warnings, 1u);

  // web's policy now names UDP 53 too: web is listed without reconnecting (one more warning).
  WriteFile(dir_ / "manifests" / "web.yaml",
            EgressPolicy("web-egress", "web",
                         "[{protocol: TCP, port: 5432}, {protocol: UDP, "
                         "port: 53}]"));
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Status().count == 2; }));
  s = Status();
  EXPECT_EQ(s.pods, (std::vector<std::string>{"prod/dns:prod/dns-egress:UDP",
                                              "prod/web:prod/web-egress:UDP"}));
  EXPECT_EQ(s.warnings, 2u);
  EXPECT_EQ(Metric(kGauge), 2);

  // dns's sidecar leaves: no longer listed.
  Stop(sidecars_["dns"]);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Status().count == 1; }));
  EXPECT_EQ(Status().pods, std::vector<std::string>{"prod/web:prod/web-egress:UDP"});
  EXPECT_EQ(Metric(kGauge), 1);
  EXPECT_EQ(Metric(kWarnings), 2);
}

}  // namespace
}  // namespace picket::control
