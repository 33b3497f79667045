// picket-control serve's /stats/prometheus on the Kubernetes API source (the test API server, a
// child process) with a real sidecar xDS client: the text is well-formed 0.0.4 and counts what
// happened — sidecars connected, pushes and ACKs per type, lists, watches, events and
// bookmarks per kind, 410 relists after compaction, API errors by status code after injected
// 429s and 500s, and a watch lag per kind.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "control/serve.h"
#include "control/source/from_flags.h"
#include "net/http_client.h"
#include "proxy/xds/policy_source.h"
#include "proxy/xds/xds_client.h"
#include "test/base/prometheus_check.h"
#include "test/control/source/fake_apiserver_process.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

namespace fs = std::filesystem;
using testing::RunUntil;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// The value of the series `key` ("name" or "name{labels}") in `text`, or -1 when absent.
double Value(const std::string& text, const std::string& key) {
  const std::string needle = "\n" + key + " ";
  const size_t at = text.find(needle);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + needle.size()));
}

constexpr const char* kPolicies = "/apis/networking.k8s.io/v1/namespaces/prod/networkpolicies";
constexpr const char* kPolicy =
    R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",)"
    R"("metadata":{"name":"web-egress","namespace":"prod"},"spec":{)"
    R"("podSelector":{"matchLabels":{"app":"web"}},"policyTypes":["Egress"],)"
    R"("egress":[{"ports":[{"port":5432}]}]}})";

class KubernetesMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / ("kmetrics_" + std::to_string(getpid()));
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
    ServeOptions options;
    options.kubeconfig = api_.kubeconfig();
    options.listen = "127.0.0.1:0";
    options.admin = "127.0.0.1:0";
    options.tls_cert = write("server.pem", pki_.server.cert_pem);
    options.tls_key = write("server-key.pem", pki_.server.key_pem);
    options.tls_ca = write("ca.pem", pki_.ca.cert_pem);
    options.debounce_ms = 0;
    source::SourceFlags flags;
    flags.kubeconfig = options.kubeconfig;
    flags.debounce_ms = 0;
    auto made = source::MakeManifestSource(flags);
    ASSERT_TRUE(made.has_value()) << made.error().ToString();
    auto server = ControlServer::Create(&loop_, options, std::move(*made));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    net::HttpClientOptions api;
    api.host = "127.0.0.1";
    api.port = static_cast<uint16_t>(std::stoi(ReadText(api_.dir() + "/ready")));
    api.tls = *net::TlsContext::CreateClient(ReadText(api_.dir() + "/ca.crt") + "\n");
    kubectl_ = std::make_unique<net::HttpClient>(&loop_, api);
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

  int Api(const std::string& method, const std::string& target, const std::string& body = "") {
    net::HttpClientRequest request;
    request.method = method;
    request.target = target;
    request.body = body;
    request.headers = {{"Authorization", "Bearer " + ReadText(api_.dir() + "/token")}};
    if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
    int status = -1;
    kubectl_->Send(std::move(request),
                   [&](base::Result<net::HttpClientResponse> r) { status = r ? r->status : 0; });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return status >= 0; }));
    return status;
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

  // Runs the loop until the metric `key` is at least `at_least` (false: it never got there).
  bool WaitMetric(const std::string& key, double at_least) {
    return RunUntil(
        &loop_, [&] { return Value("\n" + server_->PrometheusText(), key) >= at_least; }, 15000);
  }

  fs::path dir_;
  testing::FakeApiServer api_;
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  testing::TestPki pki_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<net::HttpClient> kubectl_;
  std::unique_ptr<proxy::xds::PolicySource> source_;
  std::unique_ptr<proxy::xds::XdsClient> client_;
  policy::EndpointPolicyPtr applied_;
};

TEST_F(KubernetesMetricsTest, CountsSidecarsWatchesRelistsAndApiErrors) {
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->ready(); }));
  StartSidecar();
  ASSERT_EQ(Api("POST", kPolicies, kPolicy), 201);
  ASSERT_TRUE(WaitMetric("picket_control_kube_watch_events_total{kind=\"NetworkPolicy\"}", 1));

  std::string text = "\n" + server_->PrometheusText();
  EXPECT_EQ(testing::CheckPrometheusText(text.substr(1)), "") << text;
  EXPECT_EQ(Value(text, "picket_control_sidecars_connected"), 1) << text;
  EXPECT_EQ(Value(text, "picket_control_ready"), 1);
  EXPECT_EQ(Value(text, "picket_control_manifest_errors"), 0);
  for (const char* kind : {"Namespace", "Pod", "NetworkPolicy"}) {
    const std::string k = std::string("{kind=\"") + kind + "\"}";
    EXPECT_EQ(Value(text, "picket_control_kube_listed" + k), 1) << kind;
    EXPECT_GE(Value(text, "picket_control_kube_lists_total" + k), 1) << kind;
    EXPECT_GE(Value(text, "picket_control_kube_watches_total" + k), 1) << kind;
    const double lag = Value(text, "picket_control_kube_watch_lag_seconds" + k);
    EXPECT_GE(lag, 0) << kind << "\n" << text;
    EXPECT_LT(lag, 60) << kind;
  }
  EXPECT_EQ(Value(text, "picket_control_kube_objects{kind=\"Pod\"}"), 2);
  EXPECT_EQ(Value(text, "picket_control_kube_objects{kind=\"NetworkPolicy\"}"), 1);
  // Pushes and ACKs per type: the sidecar ACKed what it was sent.
  bool some_type = false;
  for (size_t at = text.find("\npicket_control_acks_total{type_url=\""); at != std::string::npos;
       at = text.find("\npicket_control_acks_total{type_url=\"", at + 1)) {
    some_type = true;
    const size_t q = text.find('"', at + 37);
    const std::string type = text.substr(at + 37, q - at - 37);
    EXPECT_GE(Value(text, "picket_control_acks_total{type_url=\"" + type + "\"}"), 1) << type;
    EXPECT_GE(Value(text, "picket_control_responses_sent_total{type_url=\"" + type + "\"}"), 1);
    EXPECT_EQ(Value(text, "picket_control_nacks_total{type_url=\"" + type + "\"}"), 0);
  }
  EXPECT_TRUE(some_type) << text;
  EXPECT_EQ(Value(text, "picket_control_kube_relists_total{kind=\"Pod\"}"), 0);

  // History compacted and watches cut: the watches resume from a compacted version, get 410
  // and relist.
  ASSERT_EQ(Api("POST", "/_test/compact"), 200);
  ASSERT_EQ(Api("POST", "/_test/drop-watches"), 200);
  EXPECT_TRUE(WaitMetric("picket_control_kube_relists_total{kind=\"Pod\"}", 1))
      << server_->PrometheusText();

  // 429s, then 500s, on every path while the watches are cut: counted by code.
  ASSERT_EQ(Api("POST", "/_test/fail?code=429&count=2&retry_after=1"), 200);
  ASSERT_EQ(Api("POST", "/_test/drop-watches"), 200);
  EXPECT_TRUE(RunUntil(
      &loop_,
      [&] {
        const std::string t = server_->PrometheusText();
        return t.find("code=\"429\"} ") != std::string::npos;
      },
      15000))
      << server_->PrometheusText();
  ASSERT_EQ(Api("POST", "/_test/fail?code=500&count=2"), 200);
  ASSERT_EQ(Api("POST", "/_test/drop-watches"), 200);
  EXPECT_TRUE(RunUntil(
      &loop_,
      [&] {
        const std::string t = server_->PrometheusText();
        return t.find("code=\"500\"} ") != std::string::npos;
      },
      15000))
      << server_->PrometheusText();
  text = server_->PrometheusText();
  EXPECT_EQ(testing::CheckPrometheusText(text), "") << text;
  std::printf("%s", text.c_str());
}

}  // namespace
}  // namespace picket::control
