// control/serve_admin.h — the control server's admin endpoint: plain HTTP/1.1 on loopback.
//
// Owns: a loopback-only listener and its short-lived connections. GET /status (JSON: connected
// sidecars with node, last ACKed version, last NACK and when; every resource's version; manifest
// errors), GET /ready (200 once the first manifest load succeeded, else 503). One request per
// connection; anything else is 404/405/400. Requests are capped at 8 KiB.
//
// Loop-thread only. Close() and run the loop until `done` before destroying.
#pragma once

#include <uv.h>

#include <expected>
#include <functional>
#include <memory>
#include <set>
#include <string>

namespace picket::control {

class AdminServer {
 public:
  // `status` returns the /status body; `ready` decides /ready.
  [[nodiscard]] static std::expected<std::unique_ptr<AdminServer>, std::string> Create(
      uv_loop_t* loop, const std::string& host, uint16_t port, std::function<std::string()> status,
      std::function<bool()> ready);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  uint16_t port() const { return port_; }
  void Close(std::function<void()> done);

 private:
  struct Connection;
  AdminServer(uv_loop_t* loop, std::function<std::string()> status, std::function<bool()> ready)
      : loop_(loop), status_(std::move(status)), ready_(std::move(ready)) {}
  void OnConnection();
  void Respond(Connection* c);
  void CloseConnection(Connection* c);
  void MaybeFinishClose();

  uv_loop_t* loop_;
  std::function<std::string()> status_;
  std::function<bool()> ready_;
  uv_tcp_t listener_{};
  std::set<Connection*> connections_;
  uint16_t port_ = 0;
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace picket::control
