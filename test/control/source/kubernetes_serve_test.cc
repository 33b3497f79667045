// picket-control serve with `--kubeconfig`, in-process: the control server reads the Kubernetes
// API test server (a child process) and pushes to a real sidecar xDS client (proxy/xds) for pod
// prod/web. Creating, editing and deleting a NetworkPolicy and relabelling a pod through the API
// change what the sidecar enforces; the time from the API write to the new policy applied in the
// sidecar is measured (p50/p99 printed). Compaction, cut watches, 429s and 500s while the
// sidecar holds its policy change no decision, and the server recovers by itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "base/json.h"
#include "control/csr_server.h"
#include "control/serve.h"
#include "control/source/from_flags.h"
#include "net/http_client.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_agent.h"
#include "proxy/xds/xds_client.h"
#include "test/control/csr_test_util.h"
#include "test/control/source/fake_apiserver_process.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using testing::RunUntil;

policy::IpAddress Ip(const char* s) { return *policy::IpAddress::Parse(s); }

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::string EgressPolicy(int port) {
  return R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",)"
         R"("metadata":{"name":"web-egress","namespace":"prod"},"spec":{)"
         R"("podSelector":{"matchLabels":{"app":"web"}},"policyTypes":["Egress"],)"
         R"("egress":[{"to":[{"podSelector":{"matchLabels":{"app":"db"}}}],)"
         R"("ports":[{"port":)" +
         std::to_string(port) + "}]}]}}";
}

constexpr const char* kPolicies = "/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies";

class KubernetesServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / ("kserve_" + std::to_string(getpid()));
    ASSERT_TRUE(
        api_.Start((dir_ / "api").string(), "test/control/source/testdata/kube_serve_seed.json"))
        << api_.log();
    uv_loop_init(&loop_);
    loop_ready_ = true;
    pki_ = testing::TestPki::Make();
    fs::create_directories(dir_ / "certs");
    auto write = [&](const std::string& name, const std::string& text) {
      std::ofstream(dir_ / "certs" / name) << text;
      return (dir_ / "certs" / name).string();
    };
    options_.kubeconfig = api_.kubeconfig();
    options_.listen = "127.0.0.1:0";
    options_.admin = "127.0.0.1:0";
    options_.tls_cert = write("server.pem", pki_.server.cert_pem);
    options_.tls_key = write("server-key.pem", pki_.server.key_pem);
    options_.tls_ca = write("ca.pem", pki_.ca.cert_pem);
    options_.debounce_ms = 0;
    options_.csr_listen = "127.0.0.1:0";
    options_.cert_validity_s = 3;  // sidecars in token mode renew every 2 s
    options_.ca_key = write("ca-key.pem", pki_.ca.key_pem);
    source::SourceFlags flags;
    flags.kubeconfig = options_.kubeconfig;
    flags.debounce_ms = 0;
    auto made = source::MakeManifestSource(flags);
    ASSERT_TRUE(made.has_value()) << made.error().ToString();
    auto server = ControlServer::Create(&loop_, options_, std::move(*made));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    net::HttpClientOptions admin;
    admin.host = "127.0.0.1";
    admin.port = static_cast<uint16_t>(std::stoi(ReadText(api_.dir() + "/ready")));
    admin.tls = *net::TlsContext::CreateClient(ReadText(api_.dir() + "/ca.crt") + "\n");
    kubectl_ = std::make_unique<net::HttpClient>(&loop_, admin);
  }

  void TearDown() override {
    if (!loop_ready_) return;
    if (client_) {
      bool closed = false;
      client_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      client_.reset();
    }
    kubectl_.reset();
    if (server_) {
      bool closed = false;
      server_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
      server_.reset();
    }
    testing::DrainAndCloseLoop(&loop_);
    api_.Stop();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // What kubectl would send (the current token), waiting for the answer.
  int Api(const std::string& method, const std::string& target, const std::string& body = "") {
    return ApiBody(method, target, body).first;
  }

  std::pair<int, std::string> ApiBody(const std::string& method, const std::string& target,
                                      const std::string& body = "") {
    net::HttpClientRequest request;
    request.method = method;
    request.target = target;
    request.body = body;
    request.headers = {{"Authorization", "Bearer " + ReadText(api_.dir() + "/token")}};
    if (!body.empty()) {
      request.headers.emplace_back(
          "Content-Type", method == "PATCH" ? "application/merge-patch+json" : "application/json");
    }
    int status = -1;
    std::string text;
    kubectl_->Send(std::move(request), [&](base::Result<net::HttpClientResponse> r) {
      status = r ? r->status : 0;
      if (r) text = r->body;
    });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return status >= 0; }));
    return {status, text};
  }

  // What the sidecar does with its projected token: a P-256 key, a CSR, the chain back.
  std::optional<control::PemPair> IssueFor(const std::string& pod) {
    auto [status, body] = ApiBody(
        "POST", "/api/v1/namespaces/prod/serviceaccounts/default/token",
        R"({"spec":{"audiences":["picket"],"boundObjectRef":{"kind":"Pod","apiVersion":"v1",)"
        R"("name":")" +
            pod + R"("}}})");
    EXPECT_EQ(status, 201) << body;
    auto doc = base::ParseJson(body);
    if (!doc) return std::nullopt;
    const std::string token(doc->root().Find("status")->Find("token")->AsString().value_or(""));
    const auto csr = testing::MakeTestCsr(testing::CsrKey::kP256, "ignored");
    net::HttpClientOptions o;
    o.host = "127.0.0.1";
    o.port = server_->csr_port();
    o.tls = *net::TlsContext::CreateClient(pki_.ca.cert_pem);
    net::HttpClient client(&loop_, o);
    net::HttpClientRequest request;
    request.method = "POST";
    request.target = std::string(kSignPath);
    request.headers = {{"Authorization", "Bearer " + token}};
    base::JsonWriter w;
    w.BeginObject().Member("csr", csr.pem).EndObject();
    request.body = w.Take();
    std::optional<control::PemPair> out;
    bool done = false;
    client.Send(std::move(request), [&](base::Result<net::HttpClientResponse> r) {
      done = true;
      EXPECT_TRUE(r.has_value() && r->status == 200) << (r ? r->body : r.error().ToString());
      if (!r || r->status != 200) return;
      auto reply = base::ParseJson(r->body);
      if (!reply) return;
      out = control::PemPair{
          std::string(reply->root().Find("certificate_chain")->AsString().value_or("")),
          csr.key_pem};
    });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return done; }));
    client.Close();
    return out;
  }

  void StartSidecar(std::optional<control::PemPair> identity = {}) {
    source_ = std::make_unique<proxy::xds::PolicySource>(
        "prod", "web", [this](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
          applied_ = std::move(p);
          applied_at_.push_back(Clock::now());
          return {};
        });
    proxy::xds::XdsClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(server_->xds_port());
    o.tls = pki_.Context(net::TlsRole::kClient, identity ? *identity : pki_.Pod("prod", "web"));
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

  fs::path dir_;
  testing::FakeApiServer api_;
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  testing::TestPki pki_;
  ServeOptions options_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<net::HttpClient> kubectl_;
  std::unique_ptr<proxy::xds::PolicySource> source_;
  std::unique_ptr<proxy::xds::XdsClient> client_;
  policy::EndpointPolicyPtr applied_;
  std::vector<Clock::time_point> applied_at_;
};

TEST_F(KubernetesServeTest, SidecarWithAnIssuedCertificateGetsItsPolicy) {
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  auto identity = IssueFor("web");
  ASSERT_TRUE(identity.has_value());
  StartSidecar(identity);  // the mutual-TLS stream opens with the issued certificate
  EXPECT_TRUE(Allowed(80));
  ASSERT_EQ(Api("POST", kPolicies, EgressPolicy(5432)), 201);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return !Allowed(80); }));
  EXPECT_TRUE(Allowed(5432));
  const std::string metrics = server_->PrometheusText();
  EXPECT_NE(metrics.find("picket_control_certificates_issued_total 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("picket_control_token_reviews_total 1\n"), std::string::npos);
}

// The sidecar's own flow (proxy/xds/xds_agent.h in token mode): only a token file and the CA
// bundle; the certificate is issued, the stream opens with it, and it is renewed (3 s
// certificates, renewed at 2 s) while the stream and the policy stay.
TEST_F(KubernetesServeTest, TokenModeAgentObtainsRenewsAndKeepsItsStream) {
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  auto [status, body] =
      ApiBody("POST", "/api/v1/namespaces/prod/serviceaccounts/default/token",
              R"({"spec":{"audiences":["picket"],"expirationSeconds":3600,)"
              R"("boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"web"}}})");
  ASSERT_EQ(status, 201) << body;
  auto doc = base::ParseJson(body);
  ASSERT_TRUE(doc.has_value());
  const std::string token_file = (dir_ / "token").string();
  std::ofstream(token_file) << doc->root().Find("status")->Find("token")->AsString().value_or("");
  proxy::xds::XdsAgentConfig config;
  config.address = "127.0.0.1:" + std::to_string(server_->xds_port());
  config.ca = options_.tls_ca;
  config.token_file = token_file;
  config.csr_address = "127.0.0.1:" + std::to_string(server_->csr_port());
  config.ns = "prod";
  config.pod = "web";
  size_t applies = 0;
  auto agent = proxy::xds::XdsAgent::Create(
      &loop_, config, [&](policy::EndpointPolicyPtr p) -> std::expected<void, std::string> {
        applied_ = std::move(p);
        ++applies;
        return {};
      });
  ASSERT_TRUE(agent.has_value()) << agent.error().ToString();
  (*agent)->Start();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return applied_ != nullptr; }));
  ASSERT_EQ(Api("POST", kPolicies, EgressPolicy(5432)), 201);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return !Allowed(80); }));
  const size_t applies_before = applies;
  // Three renewals at 2 s each: the stream stays up throughout, no decision changes.
  ASSERT_TRUE(RunUntil(
      &loop_, [&] { return (*agent)->certs()->status().issued >= 4; }, 20000));
  EXPECT_FALSE(Allowed(80));
  EXPECT_TRUE(Allowed(5432));
  EXPECT_EQ(applies, applies_before);
  EXPECT_EQ((*agent)->status().connects, 1u);
  EXPECT_EQ((*agent)->status().disconnects, 0u);
  EXPECT_EQ((*agent)->certs()->status().failures, 0u);
  EXPECT_EQ(server_->csr()->counters().issued, 4u);
  const std::string metrics = (*agent)->PrometheusText();
  EXPECT_NE(metrics.find("picket_xds_certificates_issued_total 4\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("picket_xds_certificate_failures_total 0\n"), std::string::npos);
  bool closed = false;
  (*agent)->Close([&] { closed = true; });
  EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
}

// A sidecar that starts before its pod has an IP (not yet in the watched state): refused with
// 503 PodNotSynced, it retries with backoff and gets its certificate once the pod is synced.
TEST_F(KubernetesServeTest, TokenModeAgentRetriesUntilItsPodIsSynced) {
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  ASSERT_EQ(Api("POST", "/api/v1/namespaces/prod/pods",
                R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"late",)"
                R"("labels":{"app":"late"}},"spec":{"containers":[{"name":"c","image":"x"}]}})"),
            201);
  auto [status, body] =
      ApiBody("POST", "/api/v1/namespaces/prod/serviceaccounts/default/token",
              R"({"spec":{"audiences":["picket"],"boundObjectRef":{"kind":"Pod","apiVersion":"v1",)"
              R"("name":"late"}}})");
  ASSERT_EQ(status, 201) << body;
  auto doc = base::ParseJson(body);
  ASSERT_TRUE(doc.has_value());
  const std::string token_file = (dir_ / "late-token").string();
  std::ofstream(token_file) << doc->root().Find("status")->Find("token")->AsString().value_or("");
  proxy::xds::XdsAgentConfig config;
  config.address = "127.0.0.1:" + std::to_string(server_->xds_port());
  config.ca = options_.tls_ca;
  config.token_file = token_file;
  config.csr_address = "127.0.0.1:" + std::to_string(server_->csr_port());
  config.ns = "prod";
  config.pod = "late";
  bool applied = false;
  auto agent = proxy::xds::XdsAgent::Create(
      &loop_, config, [&](policy::EndpointPolicyPtr) -> std::expected<void, std::string> {
        applied = true;
        return {};
      });
  ASSERT_TRUE(agent.has_value()) << agent.error().ToString();
  (*agent)->Start();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return (*agent)->certs()->status().failures >= 1; }));
  EXPECT_NE((*agent)->certs()->status().last_error.find("PodNotSynced"), std::string::npos)
      << (*agent)->certs()->status().last_error;
  EXPECT_FALSE(applied);
  EXPECT_EQ((*agent)->status().connects, 0u);  // no stream without a certificate
  ASSERT_EQ(Api("PATCH", "/api/v1/namespaces/prod/pods/late/status",
                R"({"status":{"podIP":"10.0.0.9","podIPs":[{"ip":"10.0.0.9"}]}})"),
            200);
  ASSERT_TRUE(RunUntil(
      &loop_, [&] { return applied; }, 15000));
  EXPECT_EQ((*agent)->certs()->status().issued, 1u);
  bool closed = false;
  (*agent)->Close([&] { closed = true; });
  EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
}

TEST_F(KubernetesServeTest, ApiWritesChangeWhatTheSidecarEnforces) {
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  StartSidecar();
  EXPECT_TRUE(Allowed(80));  // no policy selects web: not isolated

  // Create, then edit the port ten times: each write is measured to the sidecar's apply.
  std::vector<double> latencies_ms;
  for (int edit = 0; edit <= 10; ++edit) {
    const size_t before = applied_at_.size();
    const int port = 5000 + edit;
    const auto t0 = Clock::now();
    if (edit == 0) {
      ASSERT_EQ(Api("POST", kPolicies, EgressPolicy(port)), 201);
    } else {
      ASSERT_EQ(Api("PUT", std::string(kPolicies) + "/web-egress", EgressPolicy(port)), 200);
    }
    // Enforced: the new port allowed, 80 not. A change that widens the scope is two applies
    // (the new peers' entries first, then the policy: control/PROTOCOL.md §6.1); the latency is
    // to the last.
    ASSERT_TRUE(RunUntil(
        &loop_, [&] { return applied_at_.size() > before && Allowed(port) && !Allowed(80); }))
        << "edit " << edit << " never reached the sidecar";
    latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(applied_at_.back() - t0).count());
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p50 = latencies_ms[latencies_ms.size() / 2];
  const double p99 = latencies_ms.back();  // 11 samples: the maximum
  std::printf("API write -> applied in the sidecar: n=%zu p50=%.1f ms p99(max)=%.1f ms\n",
              latencies_ms.size(), p50, p99);
  RecordProperty("api_to_sidecar_p50_ms", std::to_string(p50));
  EXPECT_LE(p99, 100.0);

  // Relabel db: the policy no longer selects it as a peer.
  size_t before = applied_at_.size();
  ASSERT_EQ(
      Api("PATCH", "/api/v1/namespaces/prod/pods/db", R"({"metadata":{"labels":{"app":"cache"}}})"),
      200);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return applied_at_.size() > before && !Allowed(5010); }));

  // /status shows each kind's watch.
  auto status = base::ParseJson(server_->StatusJson());
  ASSERT_TRUE(status.has_value());
  const base::JsonValue kinds = *status->root().Find("manifests")->Find("kinds");
  ASSERT_EQ(kinds.size(), 5u) << kinds.ToJson();
  for (const base::JsonValue& kind : kinds.Elements()) {
    EXPECT_EQ(kind.Find("listed")->AsBool(), true) << kind.ToJson();
    EXPECT_GE(kind.Find("watches")->AsInt64().value_or(0), 1) << kind.ToJson();
  }
  EXPECT_GE(kinds.At(2)->Find("events")->AsInt64().value_or(0), 11) << kinds.ToJson();

  // Delete the policy: web is not isolated any more.
  before = applied_at_.size();
  ASSERT_EQ(Api("DELETE", std::string(kPolicies) + "/web-egress"), 200);
  ASSERT_TRUE(RunUntil(&loop_, [&] { return applied_at_.size() > before && Allowed(80); }));
}

TEST_F(KubernetesServeTest, ApiFaultsChangeNoDecisionAndTheServerRecovers) {
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  ASSERT_EQ(Api("POST", kPolicies, EgressPolicy(5432)), 201);
  StartSidecar();
  ASSERT_TRUE(RunUntil(&loop_, [&] { return Allowed(5432) && !Allowed(80); }));
  const size_t applies = applied_at_.size();
  // Compaction, cut watches, then 429s and 500s on every path for a while.
  ASSERT_EQ(Api("POST", "/_test/compact"), 200);
  ASSERT_EQ(Api("POST", "/_test/drop-watches"), 200);
  auto run_for = [&](int ms) {
    const auto until = Clock::now() + std::chrono::milliseconds(ms);
    RunUntil(
        &loop_, [&] { return Clock::now() > until; }, 5000);
  };
  run_for(300);
  ASSERT_EQ(Api("POST", "/_test/fail?code=429&count=4&retry_after=1"), 200);
  ASSERT_EQ(Api("POST", "/_test/drop-watches"), 200);
  run_for(1500);
  ASSERT_EQ(Api("POST", "/_test/fail?code=500&count=6"), 200);
  ASSERT_EQ(Api("POST", "/_test/drop-watches"), 200);
  run_for(1500);
  ASSERT_EQ(Api("POST", "/_test/fail?code=500&count=0"), 200);
  EXPECT_TRUE(Allowed(5432));
  EXPECT_FALSE(Allowed(80));
  EXPECT_EQ(applied_at_.size(), applies) << "a fault made the server push a different policy";
  // Recovered: a new edit goes through.
  ASSERT_EQ(Api("PUT", std::string(kPolicies) + "/web-egress", EgressPolicy(6379)), 200);
  ASSERT_TRUE(RunUntil(
      &loop_, [&] { return Allowed(6379) && !Allowed(5432); }, 15000));
}

// The "resources" section of a server's /status: every resource type's version and each
// resource's version.
std::string Resources(const ControlServer& server) {
  auto status = base::ParseJson(server.StatusJson());
  if (!status) return "";
  auto resources = status->root().Find("resources");
  return resources ? resources->ToJson() : "";
}

TEST_F(KubernetesServeTest, TwoReplicasPublishTheSameVersionsForTheSameCluster) {
  source::SourceFlags flags;
  flags.kubeconfig = options_.kubeconfig;
  flags.debounce_ms = 0;
  auto made = source::MakeManifestSource(flags);
  ASSERT_TRUE(made.has_value());
  ServeOptions second = options_;
  auto replica = ControlServer::Create(&loop_, second, std::move(*made));
  ASSERT_TRUE(replica.has_value()) << replica.error().ToString();
  // Generous bounds: each returns as soon as it holds; a loaded CI machine may need seconds.
  ASSERT_TRUE(RunUntil(
      &loop_, [&] { return server_->ready() && (*replica)->ready(); }, 30000));
  const std::string initial = Resources(*server_);
  EXPECT_EQ(initial, Resources(**replica));
  ASSERT_EQ(Api("POST", kPolicies, EgressPolicy(5432)), 201);
  ASSERT_EQ(Api("PATCH", "/api/v1/namespaces/prod/pods/db",
                R"({"metadata":{"labels":{"app":"db","tier":"data"}}})"),
            200);
  // Each replica watches on its own; the same cluster state gives the same versions.
  // Wait until each has seen both writes (its Pod and NetworkPolicy watches each delivered an
  // event), then compare.
  auto seen_both = [](const ControlServer& server) {
    auto status = base::ParseJson(server.StatusJson());
    if (!status) return false;
    const base::JsonValue kinds = *status->root().Find("manifests")->Find("kinds");
    return kinds.At(1)->Find("events")->AsInt64().value_or(0) >= 1 &&
           kinds.At(2)->Find("events")->AsInt64().value_or(0) >= 1;
  };
  ASSERT_TRUE(RunUntil(
      &loop_, [&] { return seen_both(*server_) && seen_both(**replica); }, 30000));
  RunUntil(
      &loop_,
      [&] {
        const std::string now = Resources(*server_);
        return now != initial && now == Resources(**replica);
      },
      30000);
  EXPECT_NE(Resources(*server_), initial);
  EXPECT_EQ(Resources(*server_), Resources(**replica));
  EXPECT_NE(Resources(*server_).find("prod/web"), std::string::npos) << Resources(*server_);
  bool closed = false;
  (*replica)->Close([&] { closed = true; });
  EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
}

}  // namespace
}  // namespace picket::control
