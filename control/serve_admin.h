// control/serve_admin.h — the control server's admin endpoint: plain HTTP/1.1 on loopback.
//
// Owns: a net::HttpServer with three read-only routes: GET /status (JSON: connected sidecars
// with pod, node, connected since, per type the last ACKed and the latest version, last NACK and
// when — what `picket-control status` shows; every resource's version; manifest errors;
// the unprotected pods), GET /stats/prometheus (text exposition format 0.0.4) and GET /ready
// (200 once the first manifest load succeeded, else 503). One request per connection; another
// method gets 405, another path 404, a malformed request 400. Request heads are capped at 8 KiB.
//
// Loop-thread only. Close() and run the loop until `done` before destroying.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "base/error.h"
#include "net/http_server.h"

namespace picket::control {

class AdminServer {
 public:
  // `status` returns the /status body; `ready` decides /ready; `metrics` returns the
  // /stats/prometheus body.
  [[nodiscard]] static base::Result<std::unique_ptr<AdminServer>> Create(
      uv_loop_t* loop, const std::string& host, uint16_t port, std::function<std::string()> status,
      std::function<bool()> ready, std::function<std::string()> metrics);
  ~AdminServer() = default;
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  uint16_t port() const { return http_->port(); }
  void Close(std::function<void()> done) { http_->Close(std::move(done)); }

 private:
  explicit AdminServer(std::unique_ptr<net::HttpServer> http) : http_(std::move(http)) {}
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace picket::control
