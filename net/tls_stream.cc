// net/tls_stream.cc — see tls_stream.h.
#include "net/tls_stream.h"

#include <arpa/inet.h>

namespace picket::net {
namespace {

struct WriteRequest {
  uv_write_t req;
  std::string data;
};

}  // namespace

TlsStream::TlsStream(std::unique_ptr<TlsEngine> engine, Handler* handler)
    : engine_(std::move(engine)), handler_(handler) {}

base::Result<void> TlsStream::Init(uv_loop_t* loop) {
  if (int rc = uv_tcp_init(loop, &tcp_); rc < 0) return std::unexpected(UvError("uv_tcp_init", rc));
  tcp_.data = this;
  ++open_handles_;
  uv_timer_init(loop, &linger_timer_);
  linger_timer_.data = this;
  ++open_handles_;
  return {};
}

base::Result<TlsStream*> TlsStream::Connect(uv_loop_t* loop, const sockaddr* address,
                                            std::shared_ptr<TlsContext> context,
                                            std::string_view verify_name, Handler* handler) {
  auto engine = TlsEngine::Create(std::move(context), verify_name);
  if (!engine) return std::unexpected(engine.error());
  auto* stream = new TlsStream(std::move(*engine), handler);
  if (auto ok = stream->Init(loop); !ok) {
    delete stream;
    return std::unexpected(ok.error());
  }
  stream->connect_req_.data = stream;
  const int rc = uv_tcp_connect(
      &stream->connect_req_, &stream->tcp_, address,
      [](uv_connect_t* req, int status) { static_cast<TlsStream*>(req->data)->OnConnect(status); });
  if (rc < 0) {
    stream->handler_ = nullptr;
    stream->Close();
    return std::unexpected(UvError("uv_tcp_connect", rc));
  }
  return stream;
}

base::Result<TlsStream*> TlsStream::Accept(uv_stream_t* server, std::shared_ptr<TlsContext> context,
                                           Handler* handler) {
  auto engine = TlsEngine::Create(std::move(context));
  if (!engine) return std::unexpected(engine.error());
  auto* stream = new TlsStream(std::move(*engine), handler);
  if (auto ok = stream->Init(server->loop); !ok) {
    delete stream;
    return std::unexpected(ok.error());
  }
  if (int rc = uv_accept(server, reinterpret_cast<uv_stream_t*>(&stream->tcp_)); rc < 0) {
    stream->handler_ = nullptr;
    stream->Close();
    return std::unexpected(UvError("uv_accept", rc));
  }
  uv_tcp_nodelay(&stream->tcp_, 1);
  stream->StartReading();
  return stream;
}

void TlsStream::OnConnect(int status) {
  if (closing_) return;
  if (status < 0) {
    Fail(UvError("connect", status).ToString());
    return;
  }
  uv_tcp_nodelay(&tcp_, 1);
  StartReading();
  // The client speaks first: drive the handshake to produce the ClientHello.
  std::string plaintext;
  bool peer_closed = false;
  if (auto ok = engine_->Process(plaintext, peer_closed); !ok) {
    Fail(ok.error().ToString());
    return;
  }
  if (!SendCiphertext()) return;
}

void TlsStream::StartReading() {
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<TlsStream*>(h->data);
        *buf = uv_buf_init(self->read_buffer_, sizeof self->read_buffer_);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        static_cast<TlsStream*>(s->data)->OnRead(nread, buf);
      });
}

void TlsStream::OnRead(ssize_t nread, const uv_buf_t* buf) {
  if (closing_ || nread == 0) return;
  if (nread < 0) {
    Fail(nread == UV_EOF ? std::string("peer closed the connection")
                         : UvError("read", static_cast<int>(nread)).ToString());
    return;
  }
  const bool was_ready = engine_->handshake_done();
  engine_->FeedCiphertext(std::string_view(buf->base, static_cast<size_t>(nread)));
  std::string plaintext;
  bool peer_closed = false;
  auto processed = engine_->Process(plaintext, peer_closed);
  // Send whatever the engine produced (handshake records, or an alert before failing).
  if (!SendCiphertext()) return;
  if (!processed) {
    Fail(processed.error().ToString());
    return;
  }
  if (!was_ready && engine_->handshake_done() && handler_ != nullptr) {
    handler_->OnTlsReady(*this);
  }
  if (!plaintext.empty() && handler_ != nullptr && !closing_) {
    handler_->OnTlsData(*this, plaintext);
  }
  if (peer_closed && !closing_) Fail("peer closed the connection (close_notify)");
}

bool TlsStream::SendCiphertext() {
  std::string out = engine_->TakeCiphertext();
  if (out.empty()) return true;
  auto* w = new WriteRequest{};
  w->data = std::move(out);
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  const int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                          [](uv_write_t* req, int status) {
                            auto* w = reinterpret_cast<WriteRequest*>(req);
                            auto* self = static_cast<TlsStream*>(req->handle->data);
                            delete w;
                            if (status < 0 && status != UV_ECANCELED) {
                              self->Fail(UvError("write", status).ToString());
                            }
                          });
  if (rc < 0) {
    delete w;
    Fail(UvError("write", rc).ToString());
    return false;
  }
  return true;
}

base::Result<void> TlsStream::Write(std::string_view plaintext) {
  if (closing_) return std::unexpected(base::Error::Of("stream is closing"));
  if (auto ok = engine_->Write(plaintext); !ok) return ok;
  if (!SendCiphertext()) return std::unexpected(base::Error::Of("write failed"));
  return {};
}

size_t TlsStream::write_queue_bytes() const {
  return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_));
}

std::string TlsStream::PeerAddress() const {
  sockaddr_storage ss{};
  int len = sizeof ss;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    uv_ip4_name(sin, host, sizeof host);
    port = ntohs(sin->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  uv_ip6_name(sin6, host, sizeof host);
  port = ntohs(sin6->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

void TlsStream::Fail(const std::string& reason) {
  if (closing_) return;
  Handler* handler = handler_;
  handler_ = nullptr;
  if (handler != nullptr) handler->OnTlsClosed(*this, reason);
  Close();
}

void TlsStream::Close() {
  handler_ = nullptr;
  if (closing_) return;
  closing_ = true;
  CloseHandles();
}

void TlsStream::CloseAfterFlush(uint64_t linger_ms) {
  handler_ = nullptr;
  if (closing_) return;
  closing_ = true;
  engine_->Shutdown();
  std::string out = engine_->TakeCiphertext();
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  uv_read_stop(stream);
  if (!out.empty()) {
    auto* w = new WriteRequest{};
    w->data = std::move(out);
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    if (uv_write(&w->req, stream, &b, 1,
                 [](uv_write_t* req, int) { delete reinterpret_cast<WriteRequest*>(req); }) < 0) {
      delete w;
    }
  }
  shutdown_req_.data = this;
  if (uv_shutdown(&shutdown_req_, stream, [](uv_shutdown_t* req, int) {
        static_cast<TlsStream*>(req->data)->CloseHandles();
      }) < 0) {
    CloseHandles();
    return;
  }
  uv_timer_start(
      &linger_timer_, [](uv_timer_t* t) { static_cast<TlsStream*>(t->data)->CloseHandles(); },
      linger_ms, 0);
}

void TlsStream::CloseHandles() {
  auto on_closed = [](uv_handle_t* h) { static_cast<TlsStream*>(h->data)->OnHandleClosed(); };
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&tcp_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
  }
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&linger_timer_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&linger_timer_), on_closed);
  }
}

void TlsStream::OnHandleClosed() {
  if (--open_handles_ == 0) delete this;
}

}  // namespace picket::net
