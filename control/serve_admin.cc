// control/serve_admin.cc — see serve_admin.h.
#include "control/serve_admin.h"

namespace picket::control {

base::Result<std::unique_ptr<AdminServer>> AdminServer::Create(
    uv_loop_t* loop, const std::string& host, uint16_t port, std::function<std::string()> status,
    std::function<bool()> ready, std::function<std::string()> metrics) {
  // Read-only (GET/HEAD of /status and /ready): it may listen where kubelet's readiness probe
  // reaches it (examples/kubernetes uses 0.0.0.0); nothing on it changes state.
  net::HttpServerOptions options;
  options.keep_alive = false;  // one request per connection: readers read to EOF
  options.limits.max_header_bytes = 8192;
  options.limits.max_body_bytes = 0;
  options.max_connections = 64;
  std::unique_ptr<AdminServer> s(new AdminServer(net::HttpServer::Create(loop, options)));
  s->http_->Handle("/status", {"GET"}, [status = std::move(status)](const net::HttpRequest&) {
    net::HttpResponse r = net::HttpResponse::Text(200, status() + "\n");
    r.content_type = "application/json";
    return r;
  });
  s->http_->Handle("/ready", {"GET"}, [ready = std::move(ready)](const net::HttpRequest&) {
    net::HttpResponse r = ready() ? net::HttpResponse::Text(200, "LIVE\n")
                                  : net::HttpResponse::Text(503, "NOT READY\n");
    r.content_type = "text/plain";
    return r;
  });
  s->http_->Handle("/stats/prometheus", {"GET"},
                   [metrics = std::move(metrics)](const net::HttpRequest&) {
                     net::HttpResponse r = net::HttpResponse::Text(200, metrics());
                     r.content_type = "text/plain; version=0.0.4";
                     return r;
                   });
  s->http_->HandleNotFound([](const net::HttpRequest&) {
    net::HttpResponse r =
        net::HttpResponse::Text(404, "try /status, /stats/prometheus or /ready\n");
    r.content_type = "text/plain";
    return r;
  });
  if (auto listening = s->http_->Listen(host, port); !listening) {
    bool closed = false;
    s->Close([&closed] { closed = true; });
    while (!closed) uv_run(loop, UV_RUN_ONCE);
    return std::unexpected(std::move(listening.error()).Context("admin"));
  }
  return s;
}

}  // namespace picket::control
