// net/http_client.h — the one HTTP/1.1 client: HTTPS to one server on a libuv loop.
//
// Owns: `HttpClient`, requests to one origin (`https://host:port`) over TLS (net/tls_stream.h,
// the server verified by the context's CA), responses framed by net/http_parser.h
// (Content-Length, chunked, or to the end of the connection), keep-alive reuse of idle
// connections, and a line-streaming mode for long-lived bodies (Kubernetes watches: one JSON event
// per line). One request per connection at a time; concurrent requests open more connections.
//
// Bounds, each an error when hit: the header section (`limits`), a buffered body
// (`max_body_bytes`, checked against Content-Length before reading), one streamed line
// (`max_line_bytes`); timeouts: connect + TLS handshake, request → whole response (for a streamed
// body: request → head), silence on a streamed body, and idle pooled connections.
// A request that meets a pooled connection the server has already closed (no byte of the
// response received) is sent once more on a new connection.
//
// Every failure reaches `done` as a base::Error whose reason names the request
// ("GET https://10.0.0.1:6443/api/v1/pods: ...") and what went wrong. `done` is called exactly
// once per request, never from inside Send(), unless the request was cancelled or the client
// closed. Callers add their own headers (e.g. `Authorization: Bearer ...`).
//
// Loop-thread only. Close() (or the destructor) cancels everything; the destructor may run
// anywhere but inside one of this client's callbacks; run the loop afterwards so the handles
// finish closing.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "net/http_parser.h"
#include "net/tls.h"

namespace picket::net {

struct HttpClientOptions {
  std::string host;  // a DNS name or an IP literal (IPv6 without brackets)
  uint16_t port = 443;
  std::shared_ptr<TlsContext> tls;  // a client context (TlsContext::CreateClient)
  std::string verify_name;          // the name the server certificate must carry; empty: `host`
  uint64_t connect_timeout_ms = 10'000;
  uint64_t response_timeout_ms = 60'000;
  uint64_t stream_idle_timeout_ms = 0;  // 0: a streamed body may be silent forever
  uint64_t pool_idle_timeout_ms = 60'000;
  size_t max_idle_connections = 8;
  HttpResponseLimits limits;
  size_t max_body_bytes = 64 << 20;  // a Kubernetes list page is far below this
  size_t max_line_bytes = 16 << 20;  // one watch event
};

struct HttpClientRequest {
  std::string method = "GET";
  std::string target;  // origin-form: "/api/v1/pods?limit=500"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent with Content-Length when not empty
  // When set, a 2xx response's body is not buffered: each line (split at "\n", without it and
  // without a trailing "\r") is handed here as it completes. Other statuses are buffered.
  std::function<void(std::string_view line)> on_line;
};

struct HttpClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;                                          // empty when streamed

  std::optional<std::string_view> Header(std::string_view name) const;
};

class HttpClient {
 public:
  using Done = std::function<void(base::Result<HttpClientResponse>)>;
  using RequestId = uint64_t;

  HttpClient(uv_loop_t* loop, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a request; returns its id (0 after Close()).
  RequestId Send(HttpClientRequest request, Done done);
  // Abandons a request: its connection is closed and `done` is not called. Unknown ids are
  // ignored (the request may have completed).
  void Cancel(RequestId id);
  // Cancels every request and closes every connection. Idempotent.
  void Close();

  // "https://host:port" as requests name it.
  const std::string& origin() const { return origin_; }
  size_t connections_opened() const { return connections_opened_; }
  size_t open_connections() const { return connections_.size(); }
  size_t idle_connections() const { return idle_.size(); }

 private:
  class Connection;
  struct Pending;
  friend class Connection;

  Connection* NewConnection();
  void Dispatch(std::unique_ptr<Pending> pending, bool allow_reuse);
  void Release(Connection* connection, bool reusable);  // back to the pool, or closed
  void Bury(Connection* connection);                    // deleted on the next loop turn
  void Reap();

  uv_loop_t* loop_;
  HttpClientOptions options_;
  std::string origin_;
  std::string host_header_;
  uv_timer_t* reap_timer_;
  std::shared_ptr<bool> alive_;  // resolver callbacks check it
  std::map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> idle_;  // most recently used last
  std::vector<std::unique_ptr<Connection>> dead_;
  uint64_t next_request_id_ = 1;
  uint64_t next_connection_id_ = 1;
  size_t connections_opened_ = 0;
  bool closed_ = false;
};

}  // namespace picket::net
