// In-process tests of net/http_client.h against a scripted TLS server on the same loop
// (127.0.0.1, port 0): requests and headers on the wire, keep-alive reuse, chunked and
// streamed bodies written in odd pieces across loop turns, every bound and timeout, server
// verification, a stale pooled connection, cancellation. Every test ends with the loop closed.
#include "net/http_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/certs.h"
#include "net/tls_stream.h"

namespace picket::net {
namespace {

using Clock = std::chrono::steady_clock;

// One accepted connection of the scripted server.
struct ServerConn : TlsStream::Handler {
  TlsStream* stream = nullptr;
  std::string received;
  std::string last_head;  // the latest request head, "\r\n\r\n" included
  int heads = 0;          // request heads seen so far
  std::function<void(ServerConn&)> on_request;

  void OnTlsReady(TlsStream&) override {}
  void OnTlsData(TlsStream&, std::string_view data) override {
    received.append(data);
    size_t at;
    while ((at = received.find("\r\n\r\n")) != std::string::npos) {
      last_head = received.substr(0, at + 4);
      received.erase(0, at + 4);
      ++heads;
      if (on_request) on_request(*this);
    }
  }
  void OnTlsClosed(TlsStream&, const std::string&) override { stream = nullptr; }
  void Write(const std::string& bytes) {
    if (stream != nullptr) (void)stream->Write(bytes);
  }
  void Close() {
    if (stream != nullptr) std::exchange(stream, nullptr)->Close();
  }
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    auto ca = control::MakeCa("test-ca");
    ASSERT_TRUE(ca.has_value());
    ca_pem_ = ca->cert_pem;
    auto leaf = control::MakeLeaf(*ca, {"server", {"localhost"}, {"127.0.0.1"}, {}, 1});
    ASSERT_TRUE(leaf.has_value());
    auto server_tls = TlsContext::CreateServerOnly(leaf->cert_pem, leaf->key_pem);
    ASSERT_TRUE(server_tls.has_value());
    server_tls_ = *server_tls;
    uv_tcp_init(&loop_, &listener_);
    listener_.data = this;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    ASSERT_EQ(uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0), 0);
    ASSERT_EQ(
        uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 16,
                  [](uv_stream_t* s, int) { static_cast<HttpClientTest*>(s->data)->Accept(); }),
        0);
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    uv_timer_init(&loop_, &tick_);
  }

  void TearDown() override {
    client_.reset();
    for (auto& c : conns_) c->Close();
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void Accept() {
    auto conn = std::make_unique<ServerConn>();
    auto stream =
        TlsStream::Accept(reinterpret_cast<uv_stream_t*>(&listener_), server_tls_, conn.get());
    ASSERT_TRUE(stream.has_value());
    conn->stream = *stream;
    conn->on_request = on_request_;
    conns_.push_back(std::move(conn));
  }

  HttpClient& Client(const std::function<void(HttpClientOptions&)>& edit = {}) {
    HttpClientOptions options;
    if (edit) edit(options);
    options.host = options.host.empty() ? "127.0.0.1" : options.host;
    options.port = options.port == 443 ? port_ : options.port;
    if (!options.tls) {
      auto tls = TlsContext::CreateClient(ca_pem_);
      EXPECT_TRUE(tls.has_value());
      options.tls = *tls;
    }
    client_ = std::make_unique<HttpClient>(&loop_, std::move(options));
    return *client_;
  }

  // Runs the loop until `done` or `timeout`; a ticking timer keeps the loop from blocking.
  bool RunUntil(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 5, 5);
    const auto deadline = Clock::now() + timeout;
    while (!done() && Clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    uv_timer_stop(&tick_);
    return done();
  }

  static HttpClientRequest Streamed(std::string target,
                                    std::function<void(std::string_view)> on_line) {
    HttpClientRequest r;
    r.target = std::move(target);
    r.on_line = std::move(on_line);
    return r;
  }

  struct Outcome {
    bool called = false;
    base::Result<HttpClientResponse> result = std::unexpected(base::Error::Of("not called"));
  };
  // Sends and waits for `done`.
  Outcome Get(HttpClientRequest request) {
    auto out = std::make_shared<Outcome>();
    if (request.target.empty()) request.target = "/x";
    client_->Send(std::move(request), [out](base::Result<HttpClientResponse> r) {
      out->called = true;
      out->result = std::move(r);
    });
    RunUntil([&] { return out->called; });
    return *out;
  }

  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_timer_t tick_{};
  uint16_t port_ = 0;
  std::string ca_pem_;
  std::shared_ptr<TlsContext> server_tls_;
  std::function<void(ServerConn&)> on_request_;
  std::vector<std::unique_ptr<ServerConn>> conns_;
  std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpClientTest, SendsHeadersAndReusesTheConnection) {
  on_request_ = [](ServerConn& c) {
    c.Write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(c.last_head.size()) +
            "\r\n\r\n" + c.last_head);
  };
  Client();
  HttpClientRequest request;
  request.target = "/api/v1/pods?limit=2";
  request.headers = {{"Authorization", "Bearer t0k"}};
  Outcome first = Get(request);
  ASSERT_TRUE(first.result.has_value()) << first.result.error().ToString();
  EXPECT_EQ(first.result->status, 200);
  const std::string& echoed = first.result->body;
  EXPECT_TRUE(echoed.starts_with("GET /api/v1/pods?limit=2 HTTP/1.1\r\n")) << "[" << echoed << "]";
  EXPECT_NE(echoed.find("\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n"),
            std::string::npos);
  EXPECT_NE(echoed.find("\r\nAuthorization: Bearer t0k\r\n"), std::string::npos);
  EXPECT_NE(echoed.find("\r\nAccept: application/json\r\n"), std::string::npos);
  Outcome second = Get(request);
  ASSERT_TRUE(second.result.has_value());
  EXPECT_EQ(client_->connections_opened(), 1u);
  EXPECT_EQ(conns_.size(), 1u);
}

TEST_F(HttpClientTest, StreamsLinesWrittenInOddPiecesAcrossLoopTurns) {
  const std::string events =
      "{\"type\":\"ADDED\",\"object\":{\"n\":1}}\n{\"type\":\"MODIFIED\",\"object\":{}}\r\n"
      "{\"type\":\"BOOKMARK\"}\n";
  ServerConn* server = nullptr;
  on_request_ = [&](ServerConn& c) {
    server = &c;
    c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  };
  Client();
  std::vector<std::string> lines;
  bool done = false;
  int status = 0;
  HttpClientRequest request =
      Streamed("/api/v1/pods?watch=1", [&](std::string_view l) { lines.emplace_back(l); });
  client_->Send(std::move(request), [&](base::Result<HttpClientResponse> r) {
    done = true;
    status = r ? r->status : -1;
  });
  ASSERT_TRUE(RunUntil([&] { return server != nullptr; }));
  // Chunks of 7 bytes, each chunk frame itself written in two pieces on separate turns.
  for (size_t i = 0; i < events.size(); i += 7) {
    const std::string piece = events.substr(i, 7);
    char size[16];
    snprintf(size, sizeof size, "%zx\r\n", piece.size());
    const std::string frame = size + piece + "\r\n";
    const size_t half = frame.size() / 2 + 1;
    server->Write(frame.substr(0, half));
    uv_run(&loop_, UV_RUN_NOWAIT);
    server->Write(frame.substr(half));
    uv_run(&loop_, UV_RUN_NOWAIT);
  }
  ASSERT_TRUE(RunUntil([&] { return lines.size() == 3; }));
  EXPECT_EQ(lines[0], "{\"type\":\"ADDED\",\"object\":{\"n\":1}}");
  EXPECT_EQ(lines[1], "{\"type\":\"MODIFIED\",\"object\":{}}");
  EXPECT_EQ(lines[2], "{\"type\":\"BOOKMARK\"}");
  EXPECT_FALSE(done);
  server->Write("0\r\n\r\n");
  ASSERT_TRUE(RunUntil([&] { return done; }));
  EXPECT_EQ(status, 200);
  EXPECT_EQ(client_->idle_connections(), 1u);
}

TEST_F(HttpClientTest, AStreamingRequestWithAnErrorStatusGetsTheBody) {
  on_request_ = [](ServerConn& c) {
    c.Write("HTTP/1.1 410 Gone\r\nContent-Length: 9\r\n\r\n{\"k\":\"v\"}");
  };
  Client();
  int lines = 0;
  Outcome out = Get(Streamed("/w", [&](std::string_view) { ++lines; }));
  ASSERT_TRUE(out.result.has_value());
  EXPECT_EQ(out.result->status, 410);
  EXPECT_EQ(out.result->body, "{\"k\":\"v\"}");
  EXPECT_EQ(lines, 0);
}

TEST_F(HttpClientTest, BodyBoundByContentLengthAndByChunks) {
  on_request_ = [](ServerConn& c) {
    if (c.heads == 1) {
      c.Write("HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n");
    } else {
      c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + std::string(64, 'a') +
              "\r\n40\r\n" + std::string(64, 'b') + "\r\n0\r\n\r\n");
    }
  };
  Client([](HttpClientOptions& o) { o.max_body_bytes = 100; });
  Outcome by_length = Get({});
  ASSERT_FALSE(by_length.result.has_value());
  EXPECT_EQ(by_length.result.error().reason,
            "GET https://127.0.0.1:" + std::to_string(port_) +
                "/x: response body of 101 bytes exceeds the limit of 100 bytes");
  on_request_ = [](ServerConn& c) {
    c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + std::string(64, 'a') +
            "\r\n40\r\n" + std::string(64, 'b') + "\r\n0\r\n\r\n");
  };
  Outcome by_chunks = Get({});
  ASSERT_FALSE(by_chunks.result.has_value());
  EXPECT_TRUE(
      by_chunks.result.error().reason.ends_with("response body exceeds the limit of 100 bytes"))
      << by_chunks.result.error().reason;
}

TEST_F(HttpClientTest, LineAndHeaderBounds) {
  on_request_ = [](ServerConn& c) {
    c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n30\r\n" + std::string(48, 'l') +
            "\r\n");
  };
  Client([](HttpClientOptions& o) { o.max_line_bytes = 32; });
  Outcome line = Get(Streamed("/w", [](std::string_view) {}));
  ASSERT_FALSE(line.result.has_value());
  EXPECT_TRUE(
      line.result.error().reason.ends_with("a streamed line exceeds the limit of 32 bytes"));

  on_request_ = [](ServerConn& c) {
    c.Write("HTTP/1.1 200 OK\r\nX-Big: " + std::string(200, 'h') + "\r\n\r\n");
  };
  Client([](HttpClientOptions& o) { o.limits.max_header_bytes = 128; });
  Outcome head = Get({});
  ASSERT_FALSE(head.result.has_value());
  EXPECT_TRUE(head.result.error().reason.ends_with(
      "malformed response: response header section exceeds 128 bytes"))
      << head.result.error().reason;
}

TEST_F(HttpClientTest, TimeoutsEachNameTheirPhase) {
  // Accepts TCP but never speaks TLS: the handshake never completes.
  uv_tcp_t silent;
  uv_tcp_init(&loop_, &silent);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&silent, reinterpret_cast<const sockaddr*>(&addr), 0);
  uv_listen(reinterpret_cast<uv_stream_t*>(&silent), 4, [](uv_stream_t*, int) {});
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&silent, reinterpret_cast<sockaddr*>(&bound), &len);
  const uint16_t silent_port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  Client([&](HttpClientOptions& o) {
    o.port = silent_port;
    o.connect_timeout_ms = 50;
  });
  const auto start = Clock::now();
  Outcome connect = Get({});
  ASSERT_FALSE(connect.result.has_value());
  EXPECT_TRUE(
      connect.result.error().reason.ends_with("connect timeout: no TLS connection within 50 ms"))
      << connect.result.error().reason;
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(45));  // the loop clock is coarse
  uv_close(reinterpret_cast<uv_handle_t*>(&silent), nullptr);

  on_request_ = [](ServerConn&) {};  // never answers
  Client([](HttpClientOptions& o) { o.response_timeout_ms = 40; });
  Outcome response = Get({});
  ASSERT_FALSE(response.result.has_value());
  EXPECT_TRUE(
      response.result.error().reason.ends_with("response timeout: no response within 40 ms"));

  on_request_ = [](ServerConn& c) {
    c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n");
  };
  Client([](HttpClientOptions& o) { o.stream_idle_timeout_ms = 40; });
  Outcome idle = Get(Streamed("/w", [](std::string_view) {}));
  ASSERT_FALSE(idle.result.has_value());
  EXPECT_TRUE(idle.result.error().reason.ends_with("stream idle timeout: no bytes for 40 ms"));
}

TEST_F(HttpClientTest, RefusesAServerTheCaDidNotSign) {
  auto other_ca = control::MakeCa("other-ca");
  ASSERT_TRUE(other_ca.has_value());
  auto tls = TlsContext::CreateClient(other_ca->cert_pem);
  ASSERT_TRUE(tls.has_value());
  Client([&](HttpClientOptions& o) { o.tls = *tls; });
  Outcome out = Get({});
  ASSERT_FALSE(out.result.has_value());
  EXPECT_NE(out.result.error().reason.find("CERTIFICATE_VERIFY_FAILED"), std::string::npos)
      << out.result.error().reason;
}

TEST_F(HttpClientTest, ConnectionRefusedAndBadNames) {
  Client([](HttpClientOptions& o) { o.port = 1; });
  Outcome refused = Get({});
  ASSERT_FALSE(refused.result.has_value());
  EXPECT_EQ(refused.result.error().reason,
            "GET https://127.0.0.1:1/x: connect: connection refused");
  Client([](HttpClientOptions& o) {
    o.host = "localhost";
    o.verify_name = "not-the-server";
  });
  Outcome name = Get({});
  ASSERT_FALSE(name.result.has_value());
  EXPECT_NE(name.result.error().reason.find("CERTIFICATE_VERIFY_FAILED"), std::string::npos)
      << name.result.error().reason;
}

TEST_F(HttpClientTest, ResendsOnceWhenAPooledConnectionWasClosedByTheServer) {
  on_request_ = [](ServerConn& c) {
    if (c.heads == 1) {
      c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    } else {
      c.Close();  // the server gave up on the idle connection as the request arrived
    }
  };
  Client();
  ASSERT_TRUE(Get({}).result.has_value());
  Outcome again = Get({});
  ASSERT_TRUE(again.result.has_value()) << again.result.error().ToString();
  EXPECT_EQ(again.result->body, "ok");
  EXPECT_EQ(client_->connections_opened(), 2u);
}

TEST_F(HttpClientTest, ConnectionCloseIsNotPooledAndCancelledRequestsAreSilent) {
  on_request_ = [](ServerConn& c) {
    c.Write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  };
  Client();
  ASSERT_TRUE(Get({}).result.has_value());
  EXPECT_EQ(client_->idle_connections(), 0u);

  on_request_ = [](ServerConn&) {};
  bool called = false;
  const auto id = client_->Send({}, [&](base::Result<HttpClientResponse>) { called = true; });
  ASSERT_TRUE(RunUntil([&] { return conns_.size() == 2 && conns_[1]->heads == 1; }));
  client_->Cancel(id);
  EXPECT_TRUE(RunUntil([&] { return conns_[1]->stream == nullptr; }));
  EXPECT_FALSE(called);
  EXPECT_EQ(client_->open_connections(), 0u);
}

}  // namespace
}  // namespace picket::net
