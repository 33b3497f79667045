// control/serve_admin.cc — see serve_admin.h.
#include "control/serve_admin.h"

#include <arpa/inet.h>

namespace picket::control {
namespace {

bool IsLoopback(const std::string& host) {
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return host == "::1";
}

}  // namespace

base::Result<std::unique_ptr<AdminServer>> AdminServer::Create(uv_loop_t* loop,
                                                               const std::string& host,
                                                               uint16_t port,
                                                               std::function<std::string()> status,
                                                               std::function<bool()> ready) {
  if (!IsLoopback(host)) {
    return std::unexpected(base::Error::At(
        "--admin", "admin address " + host + " is not loopback (127.0.0.0/8 or ::1)"));
  }
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
  s->http_->HandleNotFound([](const net::HttpRequest&) {
    net::HttpResponse r = net::HttpResponse::Text(404, "try /status or /ready\n");
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
