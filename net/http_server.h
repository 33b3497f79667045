// net/http_server.h — the one HTTP/1.1 server: event-driven on a libuv loop, plain TCP or TLS.
//
// Owns: `HttpServer` (a listener, its connections and the routes), `HttpResponse`,
// `HttpServerOptions` (every bound and timeout) and `HttpServerCounters`. Requests are framed by
// net/http_parser.h (Content-Length bodies; Transfer-Encoding is refused with 501); TLS is
// net/tls.h's engine over the connection's own socket.
//
// Bounds: a request head over `limits.max_header_bytes` → 431, a body over
// `limits.max_body_bytes` → 413 (from its Content-Length, before reading it), more than
// `max_connections` open → the new connection is accepted and closed at once (counted refused).
// Timeouts: a request head not complete `header_timeout_ms` after the connection was accepted
// (first request, TLS handshake included) or after its first byte (later requests) → 408 and
// close (a connection still in its TLS handshake is closed silently); a body not complete
// `body_timeout_ms` after its head → 408 and close; a keep-alive connection with nothing to say
// for `idle_timeout_ms` → closed. A response that closes the connection is followed by a
// lingering close (our side shut down, the peer's remaining bytes read and dropped for at most
// `linger_ms`) so the peer reads the response instead of a reset. Pipelined requests are answered
// in order; reading pauses while more than `max_pending_output` bytes wait to be sent. A request
// with "Expect: 100-continue" gets the interim 100 before its body is read.
//
// Routing: exact paths. A route may name its methods (GET implies HEAD); another method gets 405
// with `Allow`. An unknown path gets the not-found handler (default: 404). A HEAD response carries
// the GET response's length but no body. Handlers run on the loop thread, synchronously, and
// must be quick; an exception out of a handler becomes a 500. An asynchronous route
// (HandleAsync) gets an `HttpResponder` to call once, later, on the loop thread (e.g. after a
// request of its own): its connection reads nothing more until then (pipelined requests wait),
// and answers 503 and closes when no response came `async_timeout_ms` after the request. A
// responder called after its connection closed (or after that timeout) does nothing.
//
// Threads: loop-thread only — create, register, listen, close and destroy on the thread that runs
// `loop`. Lifetime: destroying the server closes it; its handles finish closing on the loop (run
// the loop until Close()'s `done`, or until it has no handles, before uv_loop_close). No handler is
// called after Close() or destruction.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "net/http_parser.h"
#include "net/tls.h"

namespace picket::net {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // extra fields, sent as given
  std::string body;

  static HttpResponse Text(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;
// Sends the response of one asynchronous request; only the first call counts.
using HttpResponder = std::function<void(HttpResponse)>;
using HttpAsyncHandler = std::function<void(const HttpRequest&, HttpResponder)>;

struct HttpServerOptions {
  HttpParserLimits limits;
  size_t max_connections = 1024;
  uint64_t header_timeout_ms = 10'000;
  uint64_t body_timeout_ms = 30'000;
  uint64_t idle_timeout_ms = 60'000;
  uint64_t linger_ms = 2'000;
  uint64_t async_timeout_ms = 30'000;  // an asynchronous handler's response → 503, close
  size_t max_pending_output = 1 << 20;
  // false: every response carries "Connection: close" (one request per connection).
  bool keep_alive = true;
  std::shared_ptr<TlsContext> tls;  // null: plain TCP
  int backlog = 511;
};

struct HttpServerCounters {
  uint64_t accepted = 0;      // connections taken on
  uint64_t refused = 0;       // connections closed at once: `max_connections` were open
  uint64_t timed_out = 0;     // dropped by the header or body timeout
  uint64_t idle_closed = 0;   // keep-alive connections closed by the idle timeout
  uint64_t requests = 0;      // requests handed to a handler (or answered 404/405)
  uint64_t bad_requests = 0;  // streams refused by the parser (400/413/431/501/505)
  uint64_t tls_failures = 0;  // TLS handshakes or records that failed
  size_t open = 0;            // accepted connections not yet closed
};

// The status line, fields and (unless `head_only`) body. `close` adds "Connection: close";
// `keep_alive_1_0` adds "Connection: keep-alive" (an HTTP/1.0 peer that asked for it).
std::string SerializeHttpResponse(const HttpResponse& response, bool head_only, bool close,
                                  bool keep_alive_1_0 = false);

class HttpServer {
 public:
  [[nodiscard]] static std::unique_ptr<HttpServer> Create(uv_loop_t* loop,
                                                          HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `methods` empty: any method reaches the handler.
  void Handle(std::string path, std::vector<std::string> methods, HttpHandler handler);
  void Handle(std::string path, HttpHandler handler) { Handle(std::move(path), {}, handler); }
  void HandleNotFound(HttpHandler handler);
  // The handler answers through its responder, now or later (see the file comment).
  void HandleAsync(std::string path, std::vector<std::string> methods, HttpAsyncHandler handler);

  // Binds and listens. `host` is an IPv4 or IPv6 literal ("::" listens on both families).
  [[nodiscard]] base::Result<void> Listen(const std::string& host, uint16_t port);
  [[nodiscard]] base::Result<void> Listen(const sockaddr* address);
  uint16_t port() const;  // the bound port (useful with port 0); 0 before Listen
  // Instead of Listen: a Unix-domain stream socket at `path`, mode 0600 (only its owner — the
  // process's uid — and root may connect). A stale socket file at `path` is replaced; the file is
  // removed on Close. Who may reach it also depends on the directory: the caller picks one.
  [[nodiscard]] base::Result<void> ListenUnix(const std::string& path);

  // Closes the listener and every connection (in-flight responses are dropped). `done` runs on
  // the loop once every handle is closed. Idempotent; a later `done` replaces an earlier one.
  void Close(std::function<void()> done = {});

  const HttpServerCounters& counters() const;

  class Core;

 private:
  explicit HttpServer(Core* core) : core_(core) {}
  Core* core_;  // frees itself once closed and every handle's close callback has run
};

}  // namespace picket::net
