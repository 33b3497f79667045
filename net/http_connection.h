// net/http_connection.h — one server-side HTTP/1.1 connection (internal to //net:http_server).
//
// Owns: the accepted uv_tcp_t, one uv_timer_t (whichever deadline the state calls for), the
// request parser, and the TLS engine when the server speaks TLS. States and their deadlines:
//   kHead       reading a request head           header_timeout_ms → 408, close
//   kBody       reading a Content-Length body    body_timeout_ms → 408, close
//   kIdle       keep-alive, between requests     idle_timeout_ms → close
//   kWaiting    an asynchronous handler has the  async_timeout_ms → 503, close
//               request; nothing more is read
//   kLingering  response sent, our side shut;    linger_ms → close
//               the peer's bytes are dropped
//   kClosing    handles closing
// Transitions happen in Enter() only. Close() is the one close path; the memory is released by
// the owner from OnConnectionClosed(), which runs from the last handle's close callback.
//
// Loop-thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "net/http_parser.h"
#include "net/http_server.h"
#include "net/tls.h"

namespace picket::net {

class HttpConnection {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    // The response, or nullopt when an asynchronous handler took the request and will call
    // `responder` (made by the connection for this request).
    virtual std::optional<HttpResponse> Dispatch(const HttpRequest& request,
                                                 const HttpResponder& responder) = 0;
    // From the last close callback: the owner frees the connection.
    virtual void OnConnectionClosed(HttpConnection* connection) = 0;
  };

  enum class State { kHead, kBody, kIdle, kWaiting, kLingering, kClosing };

  HttpConnection(const HttpServerOptions& options, HttpServerCounters& counters, Owner& owner);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Accepts the pending connection of `listener` and starts reading; `refuse` closes it at once.
  // On failure the connection closes itself (OnConnectionClosed follows).
  void Accept(uv_stream_t* listener, bool refuse);
  // Closes now; pending output is dropped. Idempotent.
  void Close();

  State state() const { return state_; }

 private:
  void Enter(State state);
  void OnTimer();
  void OnRead(ssize_t nread, const uv_buf_t* buf);
  void OnWritten(int status);
  void OnShutdown(int status);
  void OnHandleClosed();
  void Pump();
  void Respond(const HttpRequest* request, const HttpResponse& response, bool close);
  // An asynchronous handler's response for request number `seq`.
  void OnAsyncResponse(uint64_t seq, HttpResponse response);
  void Send(std::string_view plaintext);
  void SendRaw(std::string bytes);
  void StartLingering();
  void UpdateReading();
  size_t pending_output() const;

  const HttpServerOptions& options_;
  HttpServerCounters& counters_;
  Owner& owner_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  int open_handles_ = 0;
  State state_ = State::kHead;
  bool counted_open_ = false;
  bool reading_ = false;
  bool peer_eof_ = false;  // the peer half-closed while responses were still queued
  HttpRequestParser parser_;
  std::unique_ptr<TlsEngine> tls_;
  size_t lingered_bytes_ = 0;
  // Asynchronous requests: the one being answered (its number, its copy), whether its handler is
  // still running (a response given from inside it is kept in `sync_response_`), and whether the
  // peer closed meanwhile. `alive_` is what responders hold: reset when the connection closes.
  uint64_t async_seq_ = 0;
  std::optional<HttpRequest> waiting_request_;
  bool in_dispatch_ = false;
  std::optional<HttpResponse> sync_response_;
  bool close_after_response_ = false;
  std::shared_ptr<HttpConnection*> alive_;
  char read_buffer_[16384];
};

}  // namespace picket::net
