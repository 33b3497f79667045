// control/csr_server.h against the Kubernetes API test server (a child process, its TokenRequest
// and TokenReview): pod-bound tokens minted as kubelet asks for them, CSRs sent over
// server-authenticated TLS, on one loop in the test thread. Every refusal the issue lists has its
// test: another pod's identity asked for in the CSR, another audience, an expired token, a pod
// deleted and re-created (uid differs), weak or malformed keys; plus the bounds (rate,
// concurrent reviews) and the API failing.
#include "control/csr_server.h"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/json.h"
#include "test/control/csr_test_util.h"
#include "test/control/source/fake_apiserver_process.h"
#include "test/control/xds_test_util.h"

namespace picket::control {
namespace {

namespace fs = std::filesystem;
using testing::CsrKey;
using testing::MakeTestCsr;
using testing::RunUntil;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

struct Reply {
  int status = 0;
  std::string reason;  // of an error body
  std::string chain;
  std::string expires_at;
  std::string retry_after;
};

class CsrServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = fs::path(tmp != nullptr ? tmp : "/tmp") / ("csr_" + std::to_string(getpid()));
    ASSERT_TRUE(api_.Start((dir_ / "api").string(), "test/control/testdata/csr_seed.json"))
        << api_.log();
    uv_loop_init(&loop_);
    loop_ready_ = true;
    pki_ = testing::TestPki::Make();
    net::HttpClientOptions kubectl;
    kubectl.host = "127.0.0.1";
    kubectl.port = static_cast<uint16_t>(std::stoi(ReadText(api_.dir() + "/ready")));
    kubectl.tls = *net::TlsContext::CreateClient(ReadText(api_.dir() + "/ca.crt") + "\n");
    kubectl_ = std::make_unique<net::HttpClient>(&loop_, kubectl);
    for (const char* pod : {"a", "b"}) pods_[std::string("prod/") + pod] = PodUidFromApi(pod);
  }

  void TearDown() override {
    if (!loop_ready_) return;
    kubectl_.reset();
    client_.reset();
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

  void StartServer(CsrServerOptions options = {}, std::optional<source::KubeConfig> api = {}) {
    options.listen_host = "127.0.0.1";
    options.listen_port = 0;
    options.validity = std::chrono::seconds(3600);
    auto ca = CertificateAuthority::FromPem(pki_.ca.cert_pem, pki_.ca.key_pem);
    ASSERT_TRUE(ca.has_value()) << ca.error().ToString();
    auto tls = net::TlsContext::CreateServerOnly(pki_.server.cert_pem, pki_.server.key_pem);
    ASSERT_TRUE(tls.has_value()) << tls.error().ToString();
    if (!api) {
      auto config = source::LoadKubeconfig(api_.kubeconfig());
      ASSERT_TRUE(config.has_value()) << config.error().ToString();
      api = *config;
    }
    auto server = CsrServer::Create(
        &loop_, options, *tls, *ca, *api, [this](const std::string& ns, const std::string& name) {
          auto it = pods_.find(ns + "/" + name);
          return it == pods_.end() ? std::nullopt : std::optional(it->second);
        });
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    net::HttpClientOptions c;
    c.host = "127.0.0.1";
    c.port = server_->port();
    c.tls = *net::TlsContext::CreateClient(pki_.ca.cert_pem);
    client_ = std::make_unique<net::HttpClient>(&loop_, c);
  }

  // One API request as kubectl would send it; the response body (empty on failure).
  std::pair<int, std::string> Api(const std::string& method, const std::string& target,
                                  const std::string& body = "") {
    net::HttpClientRequest request;
    request.method = method;
    request.target = target;
    request.body = body;
    request.headers = {{"Authorization", "Bearer " + ReadText(api_.dir() + "/token")},
                       {"Content-Type", "application/json"}};
    std::optional<std::pair<int, std::string>> out;
    kubectl_->Send(std::move(request), [&](base::Result<net::HttpClientResponse> r) {
      out = r ? std::pair(r->status, r->body) : std::pair(0, r.error().ToString());
    });
    EXPECT_TRUE(RunUntil(&loop_, [&] { return out.has_value(); }));
    return out.value_or(std::pair(0, ""));
  }

  std::string PodUidFromApi(const std::string& name) {
    auto [status, body] = Api("GET", "/api/v1/namespaces/prod/pods/" + name);
    EXPECT_EQ(status, 200) << body;
    auto doc = base::ParseJson(body);
    if (!doc) return "";
    return std::string(doc->root().Find("metadata")->Find("uid")->AsString().value_or(""));
  }

  // What kubelet asks for a projected serviceAccountToken volume.
  std::string Token(const std::string& pod, const std::string& audience = "picket",
                    bool bound = true) {
    std::string body = R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",)"
                       R"("spec":{"audiences":[")" +
                       audience + R"("],"expirationSeconds":3600)";
    if (bound)
      body += R"(,"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":")" + pod + "\"}";
    body += "}}";
    auto [status, text] =
        Api("POST", "/api/v1/namespaces/prod/serviceaccounts/default/token", body);
    EXPECT_EQ(status, 201) << text;
    auto doc = base::ParseJson(text);
    if (!doc) return "";
    return std::string(doc->root().Find("status")->Find("token")->AsString().value_or(""));
  }

  // POST /picket.v1.Certificates/Sign, waiting for the answer.
  Reply Sign(const std::string& token, const std::string& csr_pem) {
    base::JsonWriter w;
    w.BeginObject().Member("csr", csr_pem).EndObject();
    return SignRaw(token, w.Take());
  }

  net::HttpClientRequest SignRequest(const std::string& token, std::string body) {
    net::HttpClientRequest request;
    request.method = "POST";
    request.target = std::string(kSignPath);
    request.body = std::move(body);
    request.headers = {{"Content-Type", "application/json"}};
    if (!token.empty()) request.headers.emplace_back("Authorization", "Bearer " + token);
    return request;
  }

  static Reply Decode(const base::Result<net::HttpClientResponse>& r) {
    Reply reply;
    if (!r) {
      reply.reason = r.error().ToString();
      return reply;
    }
    reply.status = r->status;
    reply.retry_after = std::string(r->Header("retry-after").value_or(""));
    auto doc = base::ParseJson(r->body);
    EXPECT_TRUE(doc.has_value()) << r->body;
    if (!doc) return reply;
    auto get = [&](const char* key) {
      auto v = doc->root().Find(key);
      return v ? std::string(v->AsString().value_or("")) : std::string();
    };
    reply.reason = get("reason");
    reply.chain = get("certificate_chain");
    reply.expires_at = get("expires_at");
    if (r->status != 200) {
      EXPECT_EQ(doc->root().Find("code")->AsInt64(), r->status) << r->body;
      EXPECT_FALSE(get("message").empty()) << r->body;
    }
    return reply;
  }

  Reply SignRaw(const std::string& token, std::string body) {
    std::optional<Reply> out;
    client_->Send(SignRequest(token, std::move(body)),
                  [&](base::Result<net::HttpClientResponse> r) { out = Decode(r); });
    EXPECT_TRUE(RunUntil(
        &loop_, [&] { return out.has_value(); }, 15000));
    return out.value_or(Reply{});
  }

  uint64_t Refused(const std::string& reason) {
    auto it = server_->counters().refused.find(reason);
    return it == server_->counters().refused.end() ? 0 : it->second;
  }

  fs::path dir_;
  testing::FakeApiServer api_;
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  testing::TestPki pki_;
  std::map<std::string, std::string> pods_;  // the "watched state": ns/name -> uid
  std::unique_ptr<net::HttpClient> kubectl_;
  std::unique_ptr<CsrServer> server_;
  std::unique_ptr<net::HttpClient> client_;
};

TEST_F(CsrServerTest, IssuesThePodOfTheTokenWhateverTheCsrAsksFor) {
  StartServer();
  // Pod a's token with a CSR naming pod b (subject and SAN): the certificate names a, only.
  const auto csr = MakeTestCsr(CsrKey::kP256, "spiffe://cluster.local/ns/prod/pod/b");
  const Reply r = Sign(Token("a"), csr.pem);
  ASSERT_EQ(r.status, 200) << r.reason;
  const auto leaf = testing::ReadLeaf(r.chain);
  ASSERT_TRUE(leaf.ok);
  EXPECT_EQ(leaf.uris, std::vector<std::string>{"spiffe://cluster.local/ns/prod/pod/a"});
  EXPECT_EQ(leaf.public_key_der, csr.public_key_der);
  EXPECT_NE(r.chain.find(pki_.ca.cert_pem), std::string::npos);  // the chain ends with the CA
  EXPECT_EQ(r.expires_at.size(), 20u) << r.expires_at;           // RFC 3339, UTC
  // The issued leaf is usable as the sidecar's mTLS identity (chains to the CA, key matches).
  EXPECT_EQ(server_->counters().issued, 1u);
  EXPECT_EQ(server_->counters().reviews, 1u);
  EXPECT_EQ(server_->counters().reviews_in_flight, 0u);
}

TEST_F(CsrServerTest, TokenForAnotherAudienceIsRefused) {
  StartServer();
  const Reply r = Sign(Token("a", "https://kubernetes.default.svc.cluster.local"),
                       MakeTestCsr(CsrKey::kP256, "").pem);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.reason, "Unauthenticated");
  EXPECT_EQ(Refused("Unauthenticated"), 1u);
  EXPECT_EQ(server_->counters().issued, 0u);
}

TEST_F(CsrServerTest, ExpiredTokenIsRefused) {
  StartServer();
  const std::string token = Token("a");
  ASSERT_EQ(Sign(token, MakeTestCsr(CsrKey::kP256, "").pem).status, 200);
  ASSERT_EQ(Api("POST", "/_test/advance-token-clock?seconds=3600").first, 200);
  const Reply r = Sign(token, MakeTestCsr(CsrKey::kP256, "").pem);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.reason, "Unauthenticated");
}

TEST_F(CsrServerTest, PodDeletedAndRecreatedWithTheSameNameIsRefused) {
  StartServer();
  const std::string old_token = Token("b");
  ASSERT_EQ(Api("DELETE", "/api/v1/namespaces/prod/pods/b").first, 200);
  ASSERT_EQ(Api("POST", "/api/v1/namespaces/prod/pods",
                R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"},)"
                R"("spec":{"containers":[{"name":"c","image":"x"}]}})")
                .first,
            201);
  // The old pod's token: the API server itself no longer authenticates it.
  Reply r = Sign(old_token, MakeTestCsr(CsrKey::kP256, "").pem);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.reason, "Unauthenticated");
  // The new pod's token while the watched state still holds the old pod: refused too.
  r = Sign(Token("b"), MakeTestCsr(CsrKey::kP256, "").pem);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.reason, "PodUidMismatch");
  // Once the watched state has the new pod, its token is good.
  pods_["prod/b"] = PodUidFromApi("b");
  EXPECT_EQ(Sign(Token("b"), MakeTestCsr(CsrKey::kP256, "").pem).status, 200);
  // A pod the state does not hold (yet): retry later.
  pods_.erase("prod/b");
  r = Sign(Token("b"), MakeTestCsr(CsrKey::kP256, "").pem);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.reason, "PodNotSynced");
  EXPECT_EQ(r.retry_after, "1");
}

TEST_F(CsrServerTest, WeakOrMalformedKeysAreRefusedBeforeAnyReview) {
  StartServer();
  const std::string token = Token("a");
  struct Case {
    std::string csr;
    const char* reason;
  };
  const Case cases[] = {
      {MakeTestCsr(CsrKey::kRsa1024, "").pem, "WeakKey"},
      {MakeTestCsr(CsrKey::kRsa2048, "").pem, "UnsupportedKey"},
      {MakeTestCsr(CsrKey::kP384, "").pem, "UnsupportedKey"},
      {MakeTestCsr(CsrKey::kP256, "", /*forge=*/true).pem, "BadCsrSignature"},
      {"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
       "MalformedCsr"},
      {"not a csr", "MalformedCsr"},
      {MakeTestCsr(CsrKey::kP256, "").pem + MakeTestCsr(CsrKey::kP256, "").pem, "MalformedCsr"},
  };
  for (const Case& c : cases) {
    const Reply r = Sign(token, c.csr);
    EXPECT_EQ(r.status, 400) << c.reason;
    EXPECT_EQ(r.reason, c.reason);
  }
  EXPECT_EQ(SignRaw(token, "{\"csr\": 5}").reason, "BadRequest");
  EXPECT_EQ(SignRaw(token, "[").reason, "BadRequest");
  EXPECT_EQ(server_->counters().reviews, 0u);
  EXPECT_EQ(Refused("UnsupportedKey"), 2u);
}

TEST_F(CsrServerTest, MissingOrUnboundTokensAndApiFailures) {
  StartServer();
  const std::string csr = MakeTestCsr(CsrKey::kP256, "").pem;
  Reply r = Sign("", csr);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.reason, "MissingToken");
  r = Sign(Token("a", "picket", /*bound=*/false), csr);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.reason, "NoBoundPod");
  ASSERT_EQ(Api("POST", "/_test/fail?code=500&count=1&path=/apis/authentication.k8s.io/").first,
            200);
  r = Sign(Token("a"), csr);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.reason, "TokenReviewFailed");
  EXPECT_EQ(Sign(Token("a"), csr).status, 200);  // the next review goes through
}

TEST_F(CsrServerTest, RateLimited) {
  CsrServerOptions options;
  options.rate_per_s = 0.001;
  options.burst = 2;
  StartServer(options);
  const std::string csr = MakeTestCsr(CsrKey::kP256, "").pem;
  const std::string token = Token("a");
  EXPECT_EQ(Sign(token, csr).status, 200);
  EXPECT_EQ(Sign(token, csr).status, 200);
  const Reply r = Sign(token, csr);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.reason, "RateLimited");
  EXPECT_EQ(server_->counters().reviews, 2u);
}

TEST_F(CsrServerTest, ConcurrentReviewsAreBoundedAndAStuckApiTimesOut) {
  // An "API server" that accepts connections and never answers: reviews stay in flight.
  uv_tcp_t silent;
  uv_tcp_init(&loop_, &silent);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ASSERT_EQ(uv_tcp_bind(&silent, reinterpret_cast<const sockaddr*>(&addr), 0), 0);
  ASSERT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(&silent), 8, [](uv_stream_t*, int) {}), 0);
  int len = sizeof addr;
  uv_tcp_getsockname(&silent, reinterpret_cast<sockaddr*>(&addr), &len);
  source::KubeConfig stuck;
  stuck.host = "127.0.0.1";
  stuck.port = ntohs(addr.sin_port);
  stuck.ca_pem = pki_.ca.cert_pem;
  stuck.token = "t";
  CsrServerOptions options;
  options.max_concurrent_reviews = 1;
  options.review_timeout_ms = 300;
  StartServer(options, stuck);
  const std::string csr = MakeTestCsr(CsrKey::kP256, "").pem;
  std::optional<Reply> first;
  base::JsonWriter w;
  w.BeginObject().Member("csr", csr).EndObject();
  client_->Send(SignRequest("tok", w.Take()),
                [&](base::Result<net::HttpClientResponse> r) { first = Decode(r); });
  ASSERT_TRUE(RunUntil(&loop_, [&] { return server_->counters().reviews_in_flight == 1; }));
  const Reply second = Sign("tok", csr);
  EXPECT_EQ(second.status, 503);
  EXPECT_EQ(second.reason, "TooManyReviews");
  ASSERT_TRUE(RunUntil(&loop_, [&] { return first.has_value(); }));
  EXPECT_EQ(first->status, 503);
  EXPECT_EQ(first->reason, "TokenReviewFailed");
  EXPECT_EQ(server_->counters().reviews_in_flight, 0u);
  bool closed = false;
  silent.data = &closed;
  uv_close(reinterpret_cast<uv_handle_t*>(&silent),
           [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
  EXPECT_TRUE(RunUntil(&loop_, [&] { return closed; }));
}

}  // namespace
}  // namespace picket::control
