// In-process tests of net/http_server.h over real loopback sockets (port 0): the server runs on a
// loop thread, blocking clients with receive timeouts talk to it. Timeouts are set small (tens of
// milliseconds) so that the bound under test, not a sleep, decides when the server acts.
#include "net/http_server.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>

#include "control/certs.h"
#include "test/net/http_test_client.h"
#include "test/proxy/test_net.h"

namespace picket::net {
namespace {

using testing::HttpRequestText;
using testing::HttpTestClient;
using Clock = std::chrono::steady_clock;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override { std::signal(SIGPIPE, SIG_IGN); }

  void TearDown() override {
    if (server_) {
      loop_.Call([&] { server_.reset(); });  // closes it; the loop finishes the handles
    }
    EXPECT_EQ(loop_.StopAndClose(), 0);
  }

  void Start(HttpServerOptions options = {}) {
    loop_.Call([&] {
      server_ = HttpServer::Create(loop_.loop(), std::move(options));
      server_->Handle("/echo", [](const HttpRequest& r) {
        HttpResponse out =
            HttpResponse::Text(200, r.method + " " + r.path + "?" + r.query + " " + r.body);
        out.headers.emplace_back("X-Seen", std::string(r.Header("x-test").value_or("-")));
        return out;
      });
      server_->Handle("/get", {"GET"},
                      [](const HttpRequest&) { return HttpResponse::Text(200, "got\n"); });
      server_->Handle("/big", [](const HttpRequest&) {
        return HttpResponse::Text(200, std::string(8 << 20, 'z'));
      });
      server_->Handle("/throw",
                      [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
      // Asynchronous: answered now ("now"), never ("never"), or when the test says (Release).
      server_->HandleAsync("/async", {"POST"}, [this](const HttpRequest& r, HttpResponder done) {
        if (r.body == "now") {
          done(HttpResponse::Text(200, "now\n"));
          done(HttpResponse::Text(500, "a second answer is ignored\n"));
        } else if (r.body != "never") {
          held_.push_back({r.body, std::move(done)});
        }
      });
      auto listening = server_->Listen("127.0.0.1", 0);
      ASSERT_TRUE(listening.has_value()) << listening.error().ToString();
    });
    loop_.Start();
  }

  // Answers the held asynchronous requests, in order, with their body.
  size_t Release() {
    size_t n = 0;
    loop_.Call([&] {
      auto held = std::move(held_);
      held_.clear();
      n = held.size();
      for (auto& [body, done] : held) done(HttpResponse::Text(200, "later " + body));
    });
    return n;
  }

  size_t Held() {
    size_t n = 0;
    loop_.Call([&] { n = held_.size(); });
    return n;
  }

  HttpServerCounters Counters() {
    HttpServerCounters c;
    loop_.Call([&] { c = server_->counters(); });
    return c;
  }

  std::unique_ptr<HttpTestClient> Connect(SSL_CTX* tls = nullptr) {
    auto c = HttpTestClient::Connect(server_->port(), tls);
    EXPECT_NE(c, nullptr);
    return c;
  }

  // Sends `raw` on a new connection; returns the reply and expects the server to close.
  testing::HttpReply Refused(const std::string& raw) {
    auto c = Connect();
    c->Send(raw);
    auto reply = c->Read();
    EXPECT_TRUE(reply.has_value()) << raw;
    if (reply) {
      EXPECT_TRUE(reply->Has("Connection: close")) << reply->head;
    }
    EXPECT_TRUE(c->WaitClosed());
    return reply.value_or(testing::HttpReply{});
  }

  testing::LoopThread loop_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::pair<std::string, HttpResponder>> held_;  // loop thread
};

TEST_F(HttpServerTest, AsyncHandlersAnswerLaterInOrder) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(HttpRequestText("POST", "/async", "now")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "now\n");
  // Pipelined: the second waits for the first's answer; then it is dispatched in turn.
  ASSERT_TRUE(c->Send(HttpRequestText("POST", "/async", "a") +
                      HttpRequestText("POST", "/echo", "b") +
                      HttpRequestText("POST", "/async", "c")));
  ASSERT_TRUE(testing::WaitFor([&] { return Held() == 1; }));
  EXPECT_EQ(Release(), 1u);
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "later a");
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /echo? b");
  ASSERT_TRUE(testing::WaitFor([&] { return Held() == 1; }));
  EXPECT_EQ(Release(), 1u);
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "later c");
  EXPECT_FALSE(r->Has("Connection: close"));
}

TEST_F(HttpServerTest, AsyncHandlerWithoutAnswerTimesOutAndALateAnswerIsDropped) {
  HttpServerOptions options;
  options.async_timeout_ms = 50;
  Start(options);
  auto c = Connect();
  ASSERT_TRUE(c->Send(HttpRequestText("POST", "/async", "never")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(r->Has("Connection: close"));
  EXPECT_TRUE(c->WaitClosed());
  // A held request whose connection closed: its answer goes nowhere, harmlessly.
  auto d = Connect();
  ASSERT_TRUE(d->Send(HttpRequestText("POST", "/async", "held")));
  ASSERT_TRUE(testing::WaitFor([&] { return Held() == 1; }));
  d.reset();
  ASSERT_TRUE(testing::WaitFor([&] { return Counters().open == 0; }));
  EXPECT_EQ(Release(), 1u);
  EXPECT_EQ(Counters().timed_out, 2u);  // the 503, and the held one's own timeout
}

TEST_F(HttpServerTest, AnswersAndKeepsTheConnectionAlive) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(HttpRequestText("GET", "/echo?a=1", "", "X-Test: yes\r\n")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "GET /echo?a=1 ");
  EXPECT_TRUE(r->Has("X-Seen: yes"));
  EXPECT_FALSE(r->Has("Connection: close"));
  ASSERT_TRUE(c->Send(HttpRequestText("POST", "/echo", "hello")));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /echo? hello");
  const HttpServerCounters counters = Counters();
  EXPECT_EQ(counters.accepted, 1u);
  EXPECT_EQ(counters.requests, 2u);
  EXPECT_EQ(counters.open, 1u);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  auto c = Connect();
  std::string burst;
  for (int i = 0; i < 20; ++i) burst += HttpRequestText("POST", "/echo", std::to_string(i));
  ASSERT_TRUE(c->Send(burst));
  for (int i = 0; i < 20; ++i) {
    auto r = c->Read();
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->body, "POST /echo? " + std::to_string(i));
  }
  EXPECT_EQ(Counters().requests, 20u);
}

TEST_F(HttpServerTest, BodyArrivingInPiecesAndExpectContinue) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Le"));
  ASSERT_TRUE(c->Send("ngth: 6\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c->Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c->Send("abc"));
  ASSERT_TRUE(c->Send("def"));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /echo? abcdef");
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(HttpRequestText("GET", "/get", "", "Connection: close\r\n")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->Has("Connection: close"));
  EXPECT_TRUE(c->WaitClosed());

  auto old = Connect();
  ASSERT_TRUE(old->Send("GET /get HTTP/1.0\r\n\r\n"));  // 1.0: no Host needed, closes by default
  r = old->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(old->WaitClosed());

  auto kept = Connect();
  ASSERT_TRUE(kept->Send("GET /get HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  r = kept->Read();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->Has("Connection: keep-alive"));
  ASSERT_TRUE(kept->Send("GET /get HTTP/1.0\r\n\r\n"));
  EXPECT_TRUE(kept->Read().has_value());
}

TEST_F(HttpServerTest, APeerThatHalfClosesStillGetsTheWholeResponse) {
  Start();
  auto c = Connect();
  ASSERT_TRUE(c->Send(HttpRequestText("GET", "/big")));
  ASSERT_EQ(shutdown(c->fd(), SHUT_WR), 0);  // EOF reaches the server while it is still writing
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.size(), 8u << 20);
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(HttpServerTest, KeepAliveCanBeTurnedOff) {
  HttpServerOptions options;
  options.keep_alive = false;
  Start(options);
  auto c = Connect();
  ASSERT_TRUE(c->Send(HttpRequestText("GET", "/get")));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->Has("Connection: close"));
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(HttpServerTest, RoutesMethodsAndHead) {
  Start();
  auto c = Connect();
  c->Send(HttpRequestText("GET", "/nope"));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  c->Send(HttpRequestText("POST", "/get", ""));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_TRUE(r->Has("Allow: GET, HEAD")) << r->head;
  c->Send(HttpRequestText("HEAD", "/get"));
  r = c->Read(/*head_request=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->Has("Content-Length: 4"));
  EXPECT_EQ(r->body, "");
  c->Send(HttpRequestText("GET", "/throw"));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  // The connection still works after all of them.
  c->Send(HttpRequestText("GET", "/get"));
  r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "got\n");
}

TEST_F(HttpServerTest, MalformedRequestsGetTheirStatusAndAClose) {
  Start();
  EXPECT_EQ(Refused("\x16\x03garbage\r\n\r\n").status, 400);
  EXPECT_EQ(Refused("GET /get HTTP/1.1\r\n\r\n").status, 400);  // no Host
  EXPECT_EQ(Refused("GET http://a/get HTTP/1.1\r\nHost: a\r\n\r\n").status, 400);
  EXPECT_EQ(Refused("GET /get HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n").status, 400);
  EXPECT_EQ(Refused("GET /get HTTP/1.1\r\nHost : a\r\n\r\n").status, 400);
  EXPECT_EQ(Refused("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n").status, 400);
  EXPECT_EQ(
      Refused("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
          .status,
      400);
  EXPECT_EQ(Refused("GET /get HTTP/2.0\r\nHost: a\r\n\r\n").status, 505);
  const testing::HttpReply chunked = Refused(
      "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
      "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 501);
  EXPECT_NE(chunked.body.find("Content-Length"), std::string::npos);
  EXPECT_EQ(Counters().bad_requests, 9u);
}

TEST_F(HttpServerTest, HeaderAndBodyBounds) {
  HttpServerOptions options;
  options.limits.max_header_bytes = 1024;
  options.limits.max_body_bytes = 100;
  Start(options);
  // Headers that never end: refused once past the bound, without waiting for the blank line.
  EXPECT_EQ(Refused("GET /get HTTP/1.1\r\nX: " + std::string(2000, 'a')).status, 431);
  EXPECT_EQ(
      Refused("GET /get HTTP/1.1\r\nHost: x\r\nX: " + std::string(1100, 'a') + "\r\n\r\n").status,
      431);
  // A body over the bound is refused from its Content-Length; the client may still be sending.
  const testing::HttpReply big = Refused(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'b'));
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("exceeds the limit of 100 bytes"), std::string::npos) << big.body;
  auto c = Connect();
  c->Send(HttpRequestText("POST", "/echo", std::string(100, 'c')));
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, HeaderTimeoutDropsASlowClient) {
  HttpServerOptions options;
  options.header_timeout_ms = 100;
  Start(options);
  auto c = Connect();
  const auto start = Clock::now();
  c->Send("GET /get HTTP/1.1\r\nHo");  // and nothing more
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(90));
  // A client that connects and says nothing is bounded by the same deadline.
  auto silent = Connect();
  EXPECT_TRUE(silent->WaitClosed());
  const HttpServerCounters counters = Counters();
  EXPECT_EQ(counters.timed_out, 2u);
}

TEST_F(HttpServerTest, BodyTimeout) {
  HttpServerOptions options;
  options.body_timeout_ms = 100;
  Start(options);
  auto c = Connect();
  c->Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_TRUE(c->WaitClosed());
  EXPECT_EQ(Counters().timed_out, 1u);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionsAreClosed) {
  HttpServerOptions options;
  options.idle_timeout_ms = 100;
  Start(options);
  auto c = Connect();
  c->Send(HttpRequestText("GET", "/get"));
  ASSERT_TRUE(c->Read());
  EXPECT_TRUE(c->WaitClosed());
  const HttpServerCounters counters = Counters();
  EXPECT_EQ(counters.idle_closed, 1u);
  EXPECT_EQ(counters.timed_out, 0u);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitAreRefused) {
  HttpServerOptions options;
  options.max_connections = 2;
  Start(options);
  auto a = Connect();
  auto b = Connect();
  for (auto* c : {a.get(), b.get()}) {  // both accepted and served
    c->Send(HttpRequestText("GET", "/get"));
    ASSERT_TRUE(c->Read());
  }
  auto third = Connect();
  EXPECT_TRUE(third->WaitClosed());
  const HttpServerCounters counters = Counters();
  EXPECT_EQ(counters.refused, 1u);
  EXPECT_EQ(counters.accepted, 2u);
  EXPECT_EQ(counters.open, 2u);
}

TEST_F(HttpServerTest, CloseWithOpenConnectionsFinishes) {
  Start();
  auto idle = Connect();
  idle->Send(HttpRequestText("GET", "/get"));
  ASSERT_TRUE(idle->Read());
  auto half = Connect();
  half->Send("GET /get HTTP/1.1\r\n");
  bool done = false;
  loop_.Call([&] { server_->Close([&done] { done = true; }); });
  EXPECT_TRUE(idle->WaitClosed());
  EXPECT_TRUE(half->WaitClosed());
  loop_.Call([] {});
  loop_.Call([&] { EXPECT_TRUE(done); });
}

class HttpsServerTest : public HttpServerTest {
 protected:
  void SetUp() override {
    HttpServerTest::SetUp();
    auto ca = control::MakeCa("test-ca");
    ASSERT_TRUE(ca.has_value());
    auto leaf = control::MakeLeaf(*ca, {"server", {}, {"127.0.0.1"}, {}, 1});
    ASSERT_TRUE(leaf.has_value());
    auto tls = TlsContext::CreateServerOnly(leaf->cert_pem, leaf->key_pem);
    ASSERT_TRUE(tls.has_value()) << tls.error().ToString();
    tls_ = *tls;
    client_ = SSL_CTX_new(TLS_client_method());
    BIO* bio = BIO_new_mem_buf(ca->cert_pem.data(), static_cast<int>(ca->cert_pem.size()));
    X509* ca_cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(client_), ca_cert);
    X509_free(ca_cert);
    BIO_free(bio);
    SSL_CTX_set_verify(client_, SSL_VERIFY_PEER, nullptr);
  }
  void TearDown() override {
    HttpServerTest::TearDown();
    SSL_CTX_free(client_);
  }

  std::shared_ptr<TlsContext> tls_;
  SSL_CTX* client_ = nullptr;
};

TEST_F(HttpsServerTest, ServesOverTlsWithKeepAliveAndBounds) {
  HttpServerOptions options;
  options.tls = tls_;
  options.header_timeout_ms = 200;
  Start(options);
  auto c = Connect(client_);
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 3; ++i) {
    c->Send(HttpRequestText("POST", "/echo", "tls" + std::to_string(i)));
    auto r = c->Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, "POST /echo? tls" + std::to_string(i));
  }
  c->Send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  auto r = c->Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 501);
  EXPECT_TRUE(c->WaitClosed());

  // A client that does not speak TLS is dropped.
  auto plain = Connect();
  plain->Send(HttpRequestText("GET", "/get"));
  EXPECT_TRUE(plain->WaitClosed());
  // A client that connects and never finishes its handshake is dropped by the header timeout.
  auto stuck = Connect();
  EXPECT_TRUE(stuck->WaitClosed());
  const HttpServerCounters counters = Counters();
  EXPECT_EQ(counters.tls_failures, 1u);
  EXPECT_EQ(counters.timed_out, 1u);
  EXPECT_EQ(counters.requests, 3u);
}

}  // namespace
}  // namespace picket::net
