// inject/webhook_server.h — the HTTPS server behind `picket-inject webhook`.
//
// Owns: a listening socket, a BoringSSL server context, and one thread per connection (a blocking
// design chosen for clarity: admission traffic is a few requests per pod creation, bounded by
// `max_connections`; every socket read and write has a timeout and every request a deadline, so
// a slow or stuck client holds one thread for at most `request_timeout`). Routes:
//   POST /inject   AdmissionReview v1 in, AdmissionReview v1 out (inject/admission.h)
//   GET  /healthz  200 "ok"
// Requests are HTTP/1.1 with Content-Length (keep-alive honoured); bodies over `max_body_bytes`,
// malformed requests and malformed reviews get 400 with a plain-text reason and never take the
// server down.
//
// Threads: Start() and Stop() from one owning thread; the accept loop and the connection threads
// are internal. Stop() (also run by the destructor) closes the listener, wakes every connection
// and joins every thread before returning. The process must ignore SIGPIPE (a peer may reset
// while we write; BoringSSL writes with write(2)).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "inject/injector.h"

struct ssl_ctx_st;

namespace picket::inject {

struct WebhookConfig {
  std::string listen = ":15017";  // host:port, [v6]:port or :port (all addresses)
  std::string tls_cert_file;      // PEM chain
  std::string tls_key_file;       // PEM private key
  InjectOptions inject;
  size_t max_body_bytes = 4 << 20;
  size_t max_header_bytes = 16 << 10;
  size_t max_connections = 64;
  std::chrono::milliseconds io_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};
  std::function<void(std::string_view)> log;  // one line per request/problem; may be empty
};

class WebhookServer {
 public:
  [[nodiscard]] static std::expected<std::unique_ptr<WebhookServer>, std::string> Start(
      WebhookConfig config);
  ~WebhookServer();
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  uint16_t port() const { return port_; }  // the bound port (useful with port 0)
  void Stop();

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  explicit WebhookServer(WebhookConfig config) : config_(std::move(config)) {}
  void AcceptLoop();
  void Serve(Connection* conn);
  void Log(const std::string& line) const;

  WebhookConfig config_;
  ssl_ctx_st* ctx_ = nullptr;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards connections_ and each Connection::fd
  std::list<Connection> connections_;
};

}  // namespace picket::inject
