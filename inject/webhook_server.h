// inject/webhook_server.h — the HTTPS server behind `picket-inject webhook`.
//
// Owns: one libuv loop on one thread, and on it a net::HttpServer (TLS, server-authenticated
// only) with two routes:
//   POST /inject          AdmissionReview v1 in, AdmissionReview v1 out (inject/admission.h),
//                         with `inject.enforcement`
//   POST /inject-strict   the same under Enforcement::kStrict, for the webhook entry whose
//                         namespaceSelector matches picket.dev/enforcement=strict (an
//                         AdmissionReview does not carry the namespace's labels)
//   GET  /healthz  200 "ok"
// Event-driven: a connection costs a socket and a few kilobytes, not a thread, so slow or stuck
// clients cannot starve the API server's requests; each is dropped by the header timeout (or the
// body timeout) instead. Admission handling is quick CPU work and runs on the loop. Requests are
// HTTP/1.1 with Content-Length (keep-alive honoured); a body over `max_body_bytes` gets 413, a head
// over `max_header_bytes` 431, Transfer-Encoding 501, malformed requests and malformed reviews 400
// with a plain-text reason; none of them takes the server down.
//
// Threads: Start() and Stop() from one owning thread; the loop thread is internal. Stop() (also
// run by the destructor) closes the listener and every connection and joins the loop thread.
// The process must ignore SIGPIPE.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/error.h"
#include "inject/injector.h"
#include "net/http_server.h"

namespace picket::inject {

struct WebhookConfig {
  std::string listen = ":15017";  // host:port, [v6]:port or :port (all addresses)
  std::string tls_cert_file;      // PEM chain
  std::string tls_key_file;       // PEM private key
  InjectOptions inject;
  size_t max_body_bytes = 4 << 20;
  size_t max_header_bytes = 16 << 10;
  size_t max_connections = 4096;
  std::chrono::milliseconds header_timeout{10000};  // from accept (TLS handshake included)
  std::chrono::milliseconds body_timeout{10000};
  std::chrono::milliseconds idle_timeout{90000};  // keep-alive connections between reviews
  std::function<void(std::string_view)> log;      // one line per request; runs on the loop thread
};

class WebhookServer {
 public:
  [[nodiscard]] static base::Result<std::unique_ptr<WebhookServer>> Start(WebhookConfig config);
  ~WebhookServer();
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  uint16_t port() const { return port_; }  // the bound port (useful with port 0)
  void Stop();
  // The HTTP server's counters, read on the loop thread (after Stop(): the final ones).
  net::HttpServerCounters Counters();

 private:
  explicit WebhookServer(WebhookConfig config) : config_(std::move(config)) {}
  void Call(std::function<void()> fn);  // runs `fn` on the loop thread and waits
  void OnWake();
  net::HttpResponse Review(const net::HttpRequest& request, const InjectOptions& options);

  WebhookConfig config_;
  InjectOptions strict_;  // config_.inject under Enforcement::kStrict
  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::thread thread_;
  std::unique_ptr<net::HttpServer> http_;  // loop thread only, once the thread runs
  net::HttpServerCounters final_counters_;
  uint16_t port_ = 0;
  bool stopped_ = false;
  std::mutex mu_;  // guards calls_
  std::vector<std::function<void()>> calls_;
};

}  // namespace picket::inject
