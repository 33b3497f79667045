// control/serve_admin.cc — see serve_admin.h.
#include "control/serve_admin.h"

#include <arpa/inet.h>

#include <string_view>

#include "net/tls_stream.h"

namespace picket::control {

struct AdminServer::Connection {
  uv_tcp_t tcp;
  uv_write_t write;
  AdminServer* owner;
  std::string request;
  std::string response;
  bool responded = false;
};

namespace {

constexpr size_t kMaxRequest = 8192;

bool IsLoopback(const std::string& host) {
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return host == "::1";
}

std::string HttpResponse(int code, std::string_view reason, std::string_view type,
                         std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
  out += "Content-Type: " + std::string(type) + "\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out.append(body);
  return out;
}

}  // namespace

std::expected<std::unique_ptr<AdminServer>, std::string> AdminServer::Create(
    uv_loop_t* loop, const std::string& host, uint16_t port, std::function<std::string()> status,
    std::function<bool()> ready) {
  if (!IsLoopback(host)) {
    return std::unexpected("admin address " + host + " is not loopback (127.0.0.0/8 or ::1)");
  }
  std::unique_ptr<AdminServer> s(new AdminServer(loop, std::move(status), std::move(ready)));
  uv_tcp_init(loop, &s->listener_);
  s->listener_.data = s.get();
  s->open_handles_ = 1;
  sockaddr_storage addr{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0) {
    uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr));
  }
  int rc = uv_tcp_bind(&s->listener_, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&s->listener_), 64, [](uv_stream_t* l, int st) {
      if (st == 0) static_cast<AdminServer*>(l->data)->OnConnection();
    });
  }
  if (rc < 0) {
    bool closed = false;
    s->Close([&closed] { closed = true; });
    while (!closed) uv_run(loop, UV_RUN_ONCE);
    return std::unexpected(net::UvError("admin listen " + host, rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&s->listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return s;
}

AdminServer::~AdminServer() = default;

void AdminServer::OnConnection() {
  if (closing_) return;
  auto* c = new Connection{};
  c->owner = this;
  uv_tcp_init(loop_, &c->tcp);
  c->tcp.data = c;
  ++open_handles_;
  connections_.insert(c);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_),
                reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    CloseConnection(c);
    return;
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static thread_local char storage[4096];
        *buf = uv_buf_init(storage, sizeof storage);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* c = static_cast<Connection*>(s->data);
        if (c->responded) return;
        if (n < 0) {
          c->owner->CloseConnection(c);
          return;
        }
        c->request.append(buf->base, static_cast<size_t>(n));
        if (c->request.find("\r\n\r\n") != std::string::npos || c->request.size() > kMaxRequest) {
          c->owner->Respond(c);
        }
      });
}

void AdminServer::Respond(Connection* c) {
  c->responded = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  const std::string_view req(c->request);
  const size_t line_end = req.find("\r\n");
  const std::string_view line = req.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
  if (c->request.size() > kMaxRequest || sp1 == std::string_view::npos ||
      sp2 == std::string_view::npos) {
    c->response = HttpResponse(400, "Bad Request", "text/plain", "bad request\n");
  } else {
    const std::string_view method = line.substr(0, sp1);
    std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    if (method != "GET") {
      c->response = HttpResponse(405, "Method Not Allowed", "text/plain", "GET only\n");
    } else if (path == "/status") {
      c->response = HttpResponse(200, "OK", "application/json", status_() + "\n");
    } else if (path == "/ready") {
      c->response = ready_()
                        ? HttpResponse(200, "OK", "text/plain", "LIVE\n")
                        : HttpResponse(503, "Service Unavailable", "text/plain", "NOT READY\n");
    } else {
      c->response = HttpResponse(404, "Not Found", "text/plain", "try /status or /ready\n");
    }
  }
  uv_buf_t b = uv_buf_init(c->response.data(), static_cast<unsigned>(c->response.size()));
  c->write.data = c;
  if (uv_write(&c->write, reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1, [](uv_write_t* w, int) {
        auto* c = static_cast<Connection*>(w->data);
        c->owner->CloseConnection(c);
      }) != 0) {
    CloseConnection(c);
  }
}

void AdminServer::CloseConnection(Connection* c) {
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&c->tcp))) return;
  connections_.erase(c);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), [](uv_handle_t* h) {
    auto* c = static_cast<Connection*>(h->data);
    AdminServer* owner = c->owner;
    delete c;
    --owner->open_handles_;
    owner->MaybeFinishClose();
  });
}

void AdminServer::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  if (closing_) return;
  closing_ = true;
  const std::set<Connection*> open = connections_;
  for (Connection* c : open) CloseConnection(c);
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), [](uv_handle_t* h) {
    auto* self = static_cast<AdminServer*>(h->data);
    --self->open_handles_;
    self->MaybeFinishClose();
  });
}

void AdminServer::MaybeFinishClose() {
  if (!closing_ || open_handles_ > 0 || !on_closed_) return;
  auto done = std::move(on_closed_);
  on_closed_ = nullptr;
  done();
}

}  // namespace picket::control
