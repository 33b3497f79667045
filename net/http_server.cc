// net/http_server.cc — see http_server.h.
#include "net/http_server.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <unordered_map>

#include "net/http_connection.h"
#include "net/uv_error.h"

namespace picket::net {

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string SerializeHttpResponse(const HttpResponse& response, bool head_only, bool close,
                                  bool keep_alive_1_0) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " ";
  out += HttpStatusText(response.status);
  out += "\r\n";
  // RFC 9110 §8.6: no Content-Length (and no content) in a 1xx or 204 response.
  const bool bodiless = response.status < 200 || response.status == 204;
  if (!bodiless) {
    if (!response.content_type.empty()) out += "Content-Type: " + response.content_type + "\r\n";
    out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  }
  for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
  if (close) out += "Connection: close\r\n";
  if (keep_alive_1_0 && !close) out += "Connection: keep-alive\r\n";
  out += "\r\n";
  if (!head_only && !bodiless) out += response.body;
  return out;
}

class HttpServer::Core final : public HttpConnection::Owner {
 public:
  Core(uv_loop_t* loop, HttpServerOptions options) : loop_(loop), options_(std::move(options)) {}

  struct Route {
    std::vector<std::string> methods;
    HttpHandler handler;
    HttpAsyncHandler async_handler;  // instead of `handler` when set
  };

  std::optional<HttpResponse> Dispatch(const HttpRequest& request,
                                       const HttpResponder& responder) override {
    auto it = routes_.find(request.path);
    if (it == routes_.end()) {
      if (!not_found_) return HttpResponse::Text(404, "not found: " + request.path + "\n");
      return Call(not_found_, request);
    }
    const std::vector<std::string>& methods = it->second.methods;
    auto allows = [&](std::string_view m) {
      return std::find(methods.begin(), methods.end(), m) != methods.end();
    };
    if (!methods.empty() && !allows(request.method) &&
        !(request.method == "HEAD" && allows("GET"))) {
      std::string allow;
      for (const std::string& m : methods) allow += (allow.empty() ? "" : ", ") + m;
      if (allows("GET") && !allows("HEAD")) allow += ", HEAD";
      HttpResponse r = HttpResponse::Text(
          405, request.path + ": method " + request.method + " not allowed; use " + allow + "\n");
      r.headers.emplace_back("Allow", allow);
      return r;
    }
    if (it->second.async_handler) {
      try {  // no exception crosses the libuv callback
        it->second.async_handler(request, responder);
      } catch (const std::exception& e) {
        responder(HttpResponse::Text(500, std::string("internal error: ") + e.what() + "\n"));
      } catch (...) {
        responder(HttpResponse::Text(500, "internal error\n"));
      }
      return std::nullopt;
    }
    return Call(it->second.handler, request);
  }

  void OnConnectionClosed(HttpConnection* connection) override {
    connections_.erase(connection);
    MaybeFinish();
  }

  base::Result<void> Listen(const sockaddr* address) {
    if (closing_) return std::unexpected(base::Error::Of("the server is closed"));
    if (listener_open_) return std::unexpected(base::Error::Of("already listening"));
    if (int rc = uv_tcp_init(loop_, &listener_); rc < 0)
      return std::unexpected(UvError("uv_tcp_init", rc));
    listener_.data = this;
    listener_open_ = true;
    if (int rc = uv_tcp_bind(&listener_, address, 0); rc < 0) {
      return std::unexpected(UvError("bind", rc));
    }
    const int rc = uv_listen(
        reinterpret_cast<uv_stream_t*>(&listener_), options_.backlog,
        [](uv_stream_t* s, int status) { static_cast<Core*>(s->data)->OnConnection(status); });
    if (rc < 0) return std::unexpected(UvError("listen", rc));
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ =
        ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    return {};
  }

  base::Result<void> ListenUnix(const std::string& path) {
    if (closing_) return std::unexpected(base::Error::Of("the server is closed"));
    if (listener_open_) return std::unexpected(base::Error::Of("already listening"));
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return std::unexpected(base::Error::Of("the path is longer than a Unix socket's (" +
                                             std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                             " bytes)"));
    }
    if (int rc = uv_pipe_init(loop_, &pipe_listener_, 0); rc < 0)
      return std::unexpected(UvError("uv_pipe_init", rc));
    pipe_listener_.data = this;
    listener_open_ = true;
    listener_is_pipe_ = true;
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());  // stale
    if (int rc = uv_pipe_bind(&pipe_listener_, path.c_str()); rc < 0) {
      return std::unexpected(UvError("bind", rc));
    }
    socket_path_ = path;
    if (chmod(path.c_str(), 0600) != 0) {
      return std::unexpected(UvError("chmod 0600", -errno));
    }
    const int rc = uv_listen(Listener(), options_.backlog, [](uv_stream_t* s, int status) {
      static_cast<Core*>(s->data)->OnConnection(status);
    });
    if (rc < 0) return std::unexpected(UvError("listen", rc));
    return {};
  }

  void Close(std::function<void()> done) {
    if (finished_) {
      if (done) done();
      return;
    }
    if (done) done_ = std::move(done);
    if (closing_) return;
    closing_ = true;
    routes_.clear();
    not_found_ = nullptr;
    if (!socket_path_.empty()) unlink(socket_path_.c_str());
    if (listener_open_) {
      uv_close(reinterpret_cast<uv_handle_t*>(Listener()), [](uv_handle_t* h) {
        auto* self = static_cast<Core*>(h->data);
        self->listener_open_ = false;
        self->MaybeFinish();
      });
    }
    for (auto& [raw, connection] : connections_) connection->Close();
    MaybeFinish();  // last: it may free this
  }

  // The owner is gone: close, and free this once every handle has closed.
  void Detach() {
    detached_ = true;
    if (finished_) {
      delete this;
      return;
    }
    Close({});
  }

  uv_loop_t* loop_;
  HttpServerOptions options_;
  HttpServerCounters counters_;
  std::unordered_map<std::string, Route> routes_;
  HttpHandler not_found_;
  uint16_t port_ = 0;

 private:
  static HttpResponse Call(const HttpHandler& handler, const HttpRequest& request) {
    try {  // no exception crosses the libuv callback
      return handler(request);
    } catch (const std::exception& e) {
      return HttpResponse::Text(500, std::string("internal error: ") + e.what() + "\n");
    } catch (...) {
      return HttpResponse::Text(500, "internal error\n");
    }
  }

  void OnConnection(int status) {
    if (status < 0 || closing_) return;
    auto connection = std::make_unique<HttpConnection>(options_, counters_, *this);
    HttpConnection* raw = connection.get();
    connections_.emplace(raw, std::move(connection));
    // A uv_tcp_t connection takes a Unix-domain fd as well: libuv's uv_accept opens the accepted
    // fd as a stream whatever the listener's type, and TCP_NODELAY on it fails harmlessly.
    raw->Accept(Listener(),
                /*refuse=*/counters_.open >= options_.max_connections);
  }

  void MaybeFinish() {
    if (!closing_ || finished_ || listener_open_ || !connections_.empty()) return;
    finished_ = true;
    auto done = std::move(done_);
    done_ = nullptr;
    if (detached_) {
      delete this;
      if (done) done();
      return;
    }
    if (done) done();  // may destroy the HttpServer, which then frees this (finished_)
  }

  uv_stream_t* Listener() {
    return listener_is_pipe_ ? reinterpret_cast<uv_stream_t*>(&pipe_listener_)
                             : reinterpret_cast<uv_stream_t*>(&listener_);
  }

  uv_tcp_t listener_{};
  uv_pipe_t pipe_listener_{};
  bool listener_is_pipe_ = false;
  std::string socket_path_;  // ListenUnix's file, removed on Close
  bool listener_open_ = false;
  bool closing_ = false;
  bool finished_ = false;
  bool detached_ = false;
  std::function<void()> done_;
  std::unordered_map<HttpConnection*, std::unique_ptr<HttpConnection>> connections_;
};

std::unique_ptr<HttpServer> HttpServer::Create(uv_loop_t* loop, HttpServerOptions options) {
  return std::unique_ptr<HttpServer>(new HttpServer(new Core(loop, std::move(options))));
}

HttpServer::~HttpServer() { core_->Detach(); }

void HttpServer::Handle(std::string path, std::vector<std::string> methods, HttpHandler handler) {
  core_->routes_[std::move(path)] = Core::Route{std::move(methods), std::move(handler), nullptr};
}

void HttpServer::HandleNotFound(HttpHandler handler) { core_->not_found_ = std::move(handler); }

void HttpServer::HandleAsync(std::string path, std::vector<std::string> methods,
                             HttpAsyncHandler handler) {
  core_->routes_[std::move(path)] = Core::Route{std::move(methods), nullptr, std::move(handler)};
}

base::Result<void> HttpServer::Listen(const std::string& host, uint16_t port) {
  sockaddr_storage address{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&address)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&address)) != 0) {
    return std::unexpected(base::Error::Of("listen address \"" + host + "\" is not an IP address"));
  }
  auto listening = core_->Listen(reinterpret_cast<const sockaddr*>(&address));
  if (!listening) {
    return std::unexpected(
        std::move(listening.error()).Context("listen on " + host + ":" + std::to_string(port)));
  }
  return {};
}

base::Result<void> HttpServer::Listen(const sockaddr* address) { return core_->Listen(address); }

uint16_t HttpServer::port() const { return core_->port_; }

base::Result<void> HttpServer::ListenUnix(const std::string& path) {
  auto listening = core_->ListenUnix(path);
  if (!listening) return std::unexpected(std::move(listening.error()).Context("listen on " + path));
  return {};
}

void HttpServer::Close(std::function<void()> done) { core_->Close(std::move(done)); }

const HttpServerCounters& HttpServer::counters() const { return core_->counters_; }

}  // namespace picket::net
