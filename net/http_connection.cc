// net/http_connection.cc — see http_connection.h.
#include "net/http_connection.h"

namespace picket::net {
namespace {

// Past this many dropped bytes a lingering peer is cut off without waiting for linger_ms.
constexpr size_t kMaxLingerBytes = 64u << 20;

struct WriteRequest {
  uv_write_t req;
  std::string data;
  HttpConnection* connection;
};

uv_stream_t* Stream(uv_tcp_t* tcp) { return reinterpret_cast<uv_stream_t*>(tcp); }
uv_handle_t* Handle(void* handle) { return static_cast<uv_handle_t*>(handle); }

}  // namespace

HttpConnection::HttpConnection(const HttpServerOptions& options, HttpServerCounters& counters,
                               Owner& owner)
    : options_(options), counters_(counters), owner_(owner), parser_(options.limits) {}

HttpConnection::~HttpConnection() = default;

void HttpConnection::Accept(uv_stream_t* listener, bool refuse) {
  uv_timer_init(listener->loop, &timer_);
  timer_.data = this;
  ++open_handles_;
  if (uv_tcp_init(listener->loop, &tcp_) == 0) {
    tcp_.data = this;
    ++open_handles_;
  } else {
    Close();
    return;
  }
  if (uv_accept(listener, Stream(&tcp_)) != 0) {
    Close();
    return;
  }
  if (refuse) {
    ++counters_.refused;
    Close();
    return;
  }
  ++counters_.accepted;
  ++counters_.open;
  counted_open_ = true;
  uv_tcp_nodelay(&tcp_, 1);
  if (options_.tls != nullptr) {
    auto engine = TlsEngine::Create(options_.tls);
    if (!engine) {
      ++counters_.tls_failures;
      Close();
      return;
    }
    tls_ = std::move(*engine);
  }
  // The first request's header deadline runs from the accept: it covers the TLS handshake and a
  // client that connects and says nothing.
  Enter(State::kHead);
  UpdateReading();
}

void HttpConnection::Enter(State state) {
  state_ = state;
  uint64_t timeout_ms = 0;
  switch (state) {
    case State::kHead:
      timeout_ms = options_.header_timeout_ms;
      break;
    case State::kBody:
      timeout_ms = options_.body_timeout_ms;
      break;
    case State::kIdle:
      timeout_ms = options_.idle_timeout_ms;
      break;
    case State::kWaiting:
      timeout_ms = options_.async_timeout_ms;
      break;
    case State::kLingering:
      timeout_ms = options_.linger_ms;
      break;
    case State::kClosing:
      uv_timer_stop(&timer_);
      return;
  }
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<HttpConnection*>(t->data)->OnTimer(); }, timeout_ms,
      0);
}

void HttpConnection::OnTimer() {
  switch (state_) {
    case State::kHead:
      ++counters_.timed_out;
      if (tls_ != nullptr && !tls_->handshake_done()) {
        Close();
      } else {
        Respond(nullptr, HttpResponse::Text(408, "request header timeout\n"), true);
      }
      return;
    case State::kBody:
      ++counters_.timed_out;
      Respond(nullptr, HttpResponse::Text(408, "request body timeout\n"), true);
      return;
    case State::kIdle:
      ++counters_.idle_closed;
      Close();
      return;
    case State::kWaiting: {
      ++counters_.timed_out;
      ++async_seq_;  // the handler's responder now does nothing
      const HttpRequest request = std::move(*waiting_request_);
      waiting_request_.reset();
      Respond(&request, HttpResponse::Text(503, "no response in time\n"), true);
      return;
    }
    case State::kLingering:
      Close();
      return;
    case State::kClosing:
      return;
  }
}

size_t HttpConnection::pending_output() const {
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_));
}

void HttpConnection::UpdateReading() {
  if (state_ == State::kClosing) return;
  const bool want = state_ == State::kLingering ||
                    (state_ != State::kWaiting && pending_output() <= options_.max_pending_output);
  if (want && !reading_) {
    reading_ = uv_read_start(
                   Stream(&tcp_),
                   [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                     auto* self = static_cast<HttpConnection*>(h->data);
                     *buf = uv_buf_init(self->read_buffer_, sizeof self->read_buffer_);
                   },
                   [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
                     static_cast<HttpConnection*>(s->data)->OnRead(nread, buf);
                   }) == 0;
  } else if (!want && reading_) {
    uv_read_stop(Stream(&tcp_));
    reading_ = false;
  }
}

void HttpConnection::OnRead(ssize_t nread, const uv_buf_t* buf) {
  if (state_ == State::kClosing || nread == 0) return;
  if (nread < 0) {
    // The peer half-closed after its request: finish sending the responses, then close (from
    // OnShutdown). Otherwise (an error, or nothing left to send) whatever was half-read is
    // abandoned.
    reading_ = false;  // libuv stopped reading at EOF
    if (nread == UV_EOF && pending_output() > 0) {
      peer_eof_ = true;
      if (state_ != State::kLingering) StartLingering();
      return;
    }
    Close();
    return;
  }
  const std::string_view data(buf->base, static_cast<size_t>(nread));
  if (state_ == State::kLingering) {
    lingered_bytes_ += data.size();
    if (lingered_bytes_ > kMaxLingerBytes) Close();
    return;
  }
  bool peer_closed = false;
  if (tls_ != nullptr) {
    tls_->FeedCiphertext(data);
    std::string plaintext;
    auto processed = tls_->Process(plaintext, peer_closed);
    SendRaw(tls_->TakeCiphertext());  // handshake records, or an alert before failing
    if (!processed) {
      ++counters_.tls_failures;
      Close();
      return;
    }
    parser_.Feed(plaintext);
  } else {
    parser_.Feed(data);
  }
  Pump();
  if (peer_closed && state_ == State::kWaiting) {
    close_after_response_ = true;
  } else if (peer_closed && state_ != State::kClosing && state_ != State::kLingering) {
    StartLingering();
  }
}

void HttpConnection::Pump() {
  while (state_ == State::kHead || state_ == State::kBody || state_ == State::kIdle) {
    if (pending_output() > options_.max_pending_output) break;  // OnWritten resumes
    HttpRequestParser::Result result = parser_.Next();
    if (result.error) {
      ++counters_.bad_requests;
      Respond(nullptr, HttpResponse::Text(result.error->status, result.error->reason + "\n"), true);
      return;
    }
    if (!result.request) {
      if (parser_.TakeContinueRequest()) Send("HTTP/1.1 100 Continue\r\n\r\n");
      if (parser_.phase() == HttpRequestParser::Phase::kHead && state_ == State::kIdle) {
        Enter(State::kHead);  // a later request's header deadline runs from its first byte
      } else if (parser_.phase() == HttpRequestParser::Phase::kBody && state_ != State::kBody) {
        Enter(State::kBody);
      }
      break;
    }
    ++counters_.requests;
    if (alive_ == nullptr) alive_ = std::make_shared<HttpConnection*>(this);
    const uint64_t seq = ++async_seq_;
    HttpResponder responder = [alive = std::weak_ptr<HttpConnection*>(alive_),
                               seq](HttpResponse response) {
      if (auto connection = alive.lock()) (*connection)->OnAsyncResponse(seq, std::move(response));
    };
    in_dispatch_ = true;
    std::optional<HttpResponse> response = owner_.Dispatch(*result.request, responder);
    in_dispatch_ = false;
    if (state_ == State::kClosing) return;  // the owner closed the server from the handler
    if (!response && sync_response_) response = std::move(sync_response_);
    sync_response_.reset();
    if (!response) {  // answered later: OnAsyncResponse
      waiting_request_ = std::move(*result.request);
      Enter(State::kWaiting);
      break;
    }
    ++async_seq_;  // a synchronous answer: this request's responder is spent
    Respond(&*result.request, *response, !result.request->keep_alive || !options_.keep_alive);
  }
  UpdateReading();
}

void HttpConnection::OnAsyncResponse(uint64_t seq, HttpResponse response) {
  if (seq != async_seq_ || state_ == State::kClosing) return;  // spent, or too late
  ++async_seq_;
  if (in_dispatch_) {
    sync_response_ = std::move(response);
    return;
  }
  if (state_ != State::kWaiting || !waiting_request_) return;
  const HttpRequest request = std::move(*waiting_request_);
  waiting_request_.reset();
  Respond(&request, response, close_after_response_ || !request.keep_alive || !options_.keep_alive);
  if (state_ == State::kIdle) Pump();  // pipelined requests read meanwhile
  UpdateReading();
}

void HttpConnection::Respond(const HttpRequest* request, const HttpResponse& response, bool close) {
  const bool head_only = request != nullptr && request->method == "HEAD";
  const bool keep_alive_1_0 = request != nullptr && !close && request->version_minor == 0;
  Send(SerializeHttpResponse(response, head_only, close, keep_alive_1_0));
  if (state_ == State::kClosing) return;
  if (close) {
    StartLingering();
  } else {
    Enter(State::kIdle);
  }
}

void HttpConnection::Send(std::string_view plaintext) {
  if (tls_ == nullptr) {
    SendRaw(std::string(plaintext));
    return;
  }
  if (auto ok = tls_->Write(plaintext); !ok) {
    ++counters_.tls_failures;
    Close();
    return;
  }
  SendRaw(tls_->TakeCiphertext());
}

void HttpConnection::SendRaw(std::string bytes) {
  if (bytes.empty() || state_ == State::kClosing) return;
  auto* w = new WriteRequest{{}, std::move(bytes), this};
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  const int rc = uv_write(&w->req, Stream(&tcp_), &b, 1, [](uv_write_t* req, int status) {
    auto* w = reinterpret_cast<WriteRequest*>(req);
    HttpConnection* connection = w->connection;
    delete w;
    // Cancelled writes complete before the close callback: the connection is still alive.
    if (status != UV_ECANCELED) connection->OnWritten(status);
  });
  if (rc < 0) {
    delete w;
    Close();
  }
}

void HttpConnection::OnWritten(int status) {
  if (state_ == State::kClosing) return;
  if (status < 0) {
    Close();
    return;
  }
  if (state_ != State::kLingering && !reading_) Pump();  // backpressure released
}

void HttpConnection::StartLingering() {
  Enter(State::kLingering);
  if (tls_ != nullptr) {
    tls_->Shutdown();  // close_notify
    SendRaw(tls_->TakeCiphertext());
    if (state_ == State::kClosing) return;
  }
  // The shutdown waits for queued writes; then the peer sees EOF and closes its side.
  auto* req = new uv_shutdown_t{};
  req->data = this;
  if (uv_shutdown(req, Stream(&tcp_), [](uv_shutdown_t* r, int status) {
        auto* connection = static_cast<HttpConnection*>(r->data);
        delete r;
        // Cancelled shutdowns complete before the close callback: the connection is alive.
        if (status != UV_ECANCELED) connection->OnShutdown(status);
      }) != 0) {
    delete req;
    Close();
    return;
  }
  UpdateReading();
}

void HttpConnection::OnShutdown(int status) {
  // Our responses are out. A peer that already sent EOF has nothing more to say.
  if (peer_eof_ || status < 0) Close();
}

void HttpConnection::Close() {
  if (state_ == State::kClosing) return;
  Enter(State::kClosing);
  alive_.reset();  // responders of this connection now do nothing
  if (counted_open_) {
    --counters_.open;
    counted_open_ = false;
  }
  reading_ = false;
  auto on_closed = [](uv_handle_t* h) { static_cast<HttpConnection*>(h->data)->OnHandleClosed(); };
  if (open_handles_ > 1) uv_close(Handle(&tcp_), on_closed);
  uv_close(Handle(&timer_), on_closed);
}

void HttpConnection::OnHandleClosed() {
  if (--open_handles_ == 0) owner_.OnConnectionClosed(this);  // frees this connection
}

}  // namespace picket::net
