// e2e: the admission webhook over real HTTPS. A BoringSSL client (verifying the server's
// certificate, generated at test time with the openssl CLI) posts AdmissionReview v1 JSON shaped
// like the Kubernetes documentation's example to a WebhookServer on 127.0.0.1 (port 0), applies
// the returned JSON Patch to the pod and compares it with what picket-inject's CLI path makes of
// the same pod. Bad requests get 400 and the server keeps serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/document.h"
#include "inject/admission.h"
#include "inject/command.h"
#include "inject/injector.h"
#include "inject/json_patch.h"
#include "inject/webhook_server.h"

namespace picket::inject {
namespace {

using config::Node;

struct HttpReply {
  int status = 0;
  std::string body;
};

class WebhookE2E : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::signal(SIGPIPE, SIG_IGN);
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/webhook-" + std::to_string(getpid());
    ProcessRunner runner;
    auto mk = runner.Run({"mkdir", "-p", dir_}, "");
    ASSERT_TRUE(mk && mk->exit_code == 0);
    // Test-only key material, made fresh for every run and never committed.
    auto r = runner.Run(
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", dir_ + "/key.pem", "-out", dir_ + "/cert.pem", "-days", "1", "-subj",
         "/CN=picket-webhook", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
        "");
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_EQ(r->exit_code, 0) << r->err;
  }

  void SetUp() override {
    WebhookConfig cfg;
    cfg.listen = "127.0.0.1:0";
    cfg.tls_cert_file = dir_ + "/cert.pem";
    cfg.tls_key_file = dir_ + "/key.pem";
    cfg.header_timeout = std::chrono::milliseconds(5000);
    auto s = WebhookServer::Start(cfg);
    ASSERT_TRUE(s.has_value()) << s.error().ToString();
    server_ = std::move(*s);

    client_ctx_ = SSL_CTX_new(TLS_client_method());
    ASSERT_NE(client_ctx_, nullptr);
    ASSERT_EQ(SSL_CTX_load_verify_locations(client_ctx_, (dir_ + "/cert.pem").c_str(), nullptr), 1);
    SSL_CTX_set_verify(client_ctx_, SSL_VERIFY_PEER, nullptr);
  }

  void TearDown() override {
    if (server_) server_->Stop();
    SSL_CTX_free(client_ctx_);
  }

  int Dial() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
  }

  // A verified TLS connection to the server.
  SSL* Handshake(int fd) {
    SSL* ssl = SSL_new(client_ctx_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    SSL_set_fd(ssl, fd);
    EXPECT_EQ(SSL_connect(ssl), 1) << "TLS handshake failed";
    return ssl;
  }

  static void WriteAll(SSL* ssl, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      int n = SSL_write(ssl, data.data() + off,
                        static_cast<int>(std::min<size_t>(data.size() - off, 1 << 16)));
      if (n <= 0) return;  // the server may stop reading; its reply is still readable
      off += static_cast<size_t>(n);
    }
  }

  // Reads one response (Content-Length framed).
  static HttpReply ReadReply(SSL* ssl) {
    std::string buf;
    char chunk[16384];
    size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      int n = SSL_read(ssl, chunk, sizeof chunk);
      if (n <= 0) return {};
      buf.append(chunk, static_cast<size_t>(n));
    }
    HttpReply r;
    r.status = std::atoi(buf.substr(9, 3).c_str());
    size_t cl = buf.find("Content-Length: ");
    size_t length = cl == std::string::npos ? 0 : std::strtoul(buf.c_str() + cl + 16, nullptr, 10);
    std::string body = buf.substr(header_end + 4);
    while (body.size() < length) {
      int n = SSL_read(ssl, chunk, sizeof chunk);
      if (n <= 0) break;
      body.append(chunk, static_cast<size_t>(n));
    }
    r.body = body;
    return r;
  }

  static std::string Request(const std::string& method, const std::string& path,
                             const std::string& body) {
    return method + " " + path + " HTTP/1.1\r\nHost: picket-webhook\r\n" +
           "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }

  HttpReply Send(const std::string& raw) {
    int fd = Dial();
    SSL* ssl = Handshake(fd);
    WriteAll(ssl, raw);
    HttpReply r = ReadReply(ssl);
    SSL_free(ssl);
    close(fd);
    return r;
  }

  HttpReply Post(const std::string& body) { return Send(Request("POST", "/inject", body)); }

  void ExpectHealthy() {
    HttpReply r = Send(Request("GET", "/healthz", ""));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok\n");
  }

  static std::string dir_;
  std::unique_ptr<WebhookServer> server_;
  SSL_CTX* client_ctx_ = nullptr;
};

std::string WebhookE2E::dir_;

constexpr char kPod[] = R"({"apiVersion":"v1","kind":"Pod",
  "metadata":{"generateName":"web-7d4b9c-","namespace":"shop","labels":{"app":"web",
    "pod-template-hash":"7d4b9c"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet",
    "name":"web-7d4b9c","uid":"3b1e2a40","controller":true,"blockOwnerDeletion":true}]},
  "spec":{"containers":[{"name":"web","image":"nginx:1.25","ports":[{"containerPort":80,
    "protocol":"TCP"}],"resources":{},"terminationMessagePath":"/dev/termination-log",
    "imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","dnsPolicy":"ClusterFirst",
    "serviceAccountName":"default","securityContext":{"runAsNonRoot":true}}})";

std::string Review(const std::string& object) {
  return R"({"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{
    "uid":"705ab4f5-6393-11e8-b7cc-42010a800002",
    "kind":{"group":"","version":"v1","kind":"Pod"},
    "resource":{"group":"","version":"v1","resource":"pods"},
    "requestKind":{"group":"","version":"v1","kind":"Pod"},
    "requestResource":{"group":"","version":"v1","resource":"pods"},
    "name":"","namespace":"shop","operation":"CREATE",
    "userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller",
      "uid":"014fbff9a07c","groups":["system:serviceaccounts","system:authenticated"]},
    "object":)" +
         object + R"(,"oldObject":null,"dryRun":false,
    "options":{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}}})";
}

TEST_F(WebhookE2E, PatchAppliedToThePodEqualsTheCliInjection) {
  HttpReply r = Post(Review(kPod));
  ASSERT_EQ(r.status, 200) << r.body;
  auto reply = config::ParseJson(r.body, "reply");
  ASSERT_TRUE(reply.has_value()) << r.body;
  EXPECT_EQ(reply->StringAt("apiVersion"), "admission.k8s.io/v1");
  EXPECT_EQ(reply->StringAt("kind"), "AdmissionReview");
  const Node& response = *reply->Find("response");
  EXPECT_EQ(response.StringAt("uid"), "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_TRUE(response.Find("allowed")->AsBool());
  ASSERT_EQ(response.StringAt("patchType"), "JSONPatch");
  auto patch_text = Base64Decode(response.StringAt("patch"));
  ASSERT_TRUE(patch_text.has_value());
  auto patch = config::ParseJson(*patch_text, "patch");
  ASSERT_TRUE(patch.has_value());
  // RFC 6902 paths: the annotation key's '/' is escaped.
  EXPECT_NE(patch_text->find("\"/metadata/annotations\""), std::string::npos) << *patch_text;
  EXPECT_NE(patch_text->find("\"/spec/initContainers\""), std::string::npos) << *patch_text;

  auto pod = config::ParseJson(kPod, "pod");
  ASSERT_TRUE(pod.has_value());
  auto patched = ApplyPatch(*pod, *patch);
  ASSERT_TRUE(patched.has_value()) << patched.error().ToString();
  auto cli = InjectYamlText(kPod, "pod.json", InjectOptions{});
  ASSERT_TRUE(cli.has_value()) << cli.error().ToString();
  auto cli_docs = config::ParseYamlDocuments(cli->yaml, "cli.yaml");
  ASSERT_TRUE(cli_docs.has_value());
  ASSERT_EQ(cli_docs->size(), 1u);
  EXPECT_EQ(*patched, (*cli_docs)[0]) << config::EmitYaml(*patched);
  // Byte for byte, key order included.
  EXPECT_EQ(config::EmitJson(*patched), config::EmitJson((*cli_docs)[0]));

  // A second admission of the injected pod (reinvocation) changes nothing.
  HttpReply again = Post(Review(config::EmitJson(*patched)));
  ASSERT_EQ(again.status, 200);
  auto again_reply = config::ParseJson(again.body, "again");
  ASSERT_TRUE(again_reply.has_value());
  EXPECT_EQ(again_reply->Find("response")->Find("patch"), nullptr);
}

TEST_F(WebhookE2E, BadRequestsGet400AndTheServerKeepsServing) {
  HttpReply r = Post("{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": ");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("malformed AdmissionReview"), std::string::npos) << r.body;
  ExpectHealthy();

  r = Post(
      R"({"apiVersion":"admission.k8s.io/v1","kind":"ConversionReview","request":{"uid":"x"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("expected kind AdmissionReview"), std::string::npos) << r.body;
  ExpectHealthy();

  // 5 MiB body: refused from its Content-Length (413 Content Too Large).
  r = Post(Review("{\"pad\":\"" + std::string(5 << 20, 'x') + "\"}"));
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("exceeds the limit"), std::string::npos) << r.body;
  ExpectHealthy();

  // Not HTTP at all, and headers that never end.
  r = Send("\x16\x03garbage\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  r = Send("POST /inject HTTP/1.1\r\nX: " + std::string(64 << 10, 'a'));
  EXPECT_EQ(r.status, 431);
  EXPECT_NE(r.body.find("header fields too large"), std::string::npos) << r.body;
  // Chunked requests are not supported (501, RFC 9112 §6.1); the API server sends Content-Length.
  r = Send(
      "POST /inject HTTP/1.1\r\nHost: picket-webhook\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, 501);

  // A client that does not speak TLS.
  int fd = Dial();
  const std::string plain = Request("GET", "/healthz", "");
  ASSERT_EQ(write(fd, plain.data(), plain.size()), static_cast<ssize_t>(plain.size()));
  char buf[256];
  const ssize_t got = read(fd, buf, sizeof buf);  // the server drops it: an alert or EOF
  EXPECT_LT(got, static_cast<ssize_t>(sizeof buf));
  close(fd);

  ExpectHealthy();
  EXPECT_EQ(Post(Review(kPod)).status, 200);
}

TEST_F(WebhookE2E, RoutesAndKeepAlive) {
  EXPECT_EQ(Send(Request("GET", "/nope", "")).status, 404);
  EXPECT_EQ(Send(Request("GET", "/inject", "")).status, 405);
  EXPECT_EQ(Send(Request("POST", "/healthz", "")).status, 405);
  // Several requests on one connection, as the API server sends them.
  int fd = Dial();
  SSL* ssl = Handshake(fd);
  for (int i = 0; i < 3; ++i) {
    WriteAll(ssl, Request("POST", "/inject", Review(kPod)));
    EXPECT_EQ(ReadReply(ssl).status, 200);
    WriteAll(ssl, Request("GET", "/healthz", ""));
    EXPECT_EQ(ReadReply(ssl).status, 200);
  }
  SSL_free(ssl);
  close(fd);
}

// The namespaceSelector picks the path: /inject-strict for namespaces labelled
// picket.dev/enforcement=strict, /inject for the rest
// (examples/kubernetes/30-mutatingwebhook.yaml).
TEST_F(WebhookE2E, StrictPathRefusesWhatThePermissivePathInjects) {
  const std::string pod = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p",
    "namespace":"shop","annotations":{"picket.dev/exclude-outbound-cidrs":"0.0.0.0/0,::/0"}},
    "spec":{"securityContext":{"runAsGroup":1337},"containers":[{"name":"app","image":"a:1"}]}})";
  auto response = [](const HttpReply& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    auto reply = config::ParseJson(r.body, "reply");
    EXPECT_TRUE(reply.has_value()) << r.body;
    return reply.has_value() ? *reply->Find("response") : Node();
  };

  Node permissive = response(Send(Request("POST", "/inject", Review(pod))));
  EXPECT_TRUE(permissive.Find("allowed")->AsBool());
  auto patch = Base64Decode(permissive.StringAt("patch"));
  ASSERT_TRUE(patch.has_value());
  EXPECT_NE(patch->find("\"NET_RAW\""), std::string::npos) << *patch;

  Node strict = response(Send(Request("POST", "/inject-strict", Review(pod))));
  EXPECT_FALSE(strict.Find("allowed")->AsBool());
  EXPECT_EQ(strict.Find("patch"), nullptr);
  const std::string message = strict.Find("status")->StringAt("message");
  for (const char* text :
       {"metadata.annotations[picket.dev/exclude-outbound-cidrs]: Forbidden",
        "spec.securityContext.runAsGroup: Forbidden", "picket.dev/enforcement=strict"}) {
    EXPECT_NE(message.find(text), std::string::npos) << text << " in " << message;
  }

  // An ordinary pod is injected on the strict path too.
  Node ordinary = response(Send(Request("POST", "/inject-strict", Review(kPod))));
  EXPECT_TRUE(ordinary.Find("allowed")->AsBool());
  EXPECT_EQ(ordinary.StringAt("patchType"), "JSONPatch");
  EXPECT_EQ(Send(Request("GET", "/inject-strict", "")).status, 405);
}

TEST_F(WebhookE2E, StopReturnsWithClientsStillConnected) {
  int idle = Dial();
  SSL* ssl = Handshake(idle);
  int half = Dial();  // TCP only, never finishes the handshake
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  SSL_free(ssl);
  close(idle);
  close(half);
}

TEST(WebhookStart, ReportsBadConfiguration) {
  WebhookConfig cfg;
  cfg.listen = "127.0.0.1:0";
  cfg.tls_cert_file = "/nonexistent/cert.pem";
  cfg.tls_key_file = "/nonexistent/key.pem";
  auto s = WebhookServer::Start(cfg);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().ToString().find("--tls-cert"), std::string::npos) << s.error().ToString();
  cfg.listen = "not-an-address:99";
  EXPECT_FALSE(WebhookServer::Start(cfg).has_value());
}

}  // namespace
}  // namespace picket::inject
