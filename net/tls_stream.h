// net/tls_stream.h — TLS over a libuv TCP stream (client connect or server accept).
//
// Owns: one uv_tcp_t, the TlsEngine for it, and the handle's close path. A TlsStream frees
// itself in its handles' close callbacks (libuv's rule: memory is released only there), so the
// object that uses it holds a plain pointer and gives it up by calling Close() or
// CloseAfterFlush() (after which no Handler method is called again and the pointer must not be
// used), or when Handler::OnTlsClosed tells it the stream is going away.
//
// Loop-thread only: every method and callback runs on the loop that created the stream.
#pragma once

#include <uv.h>

#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "net/tls.h"
#include "net/uv_error.h"

namespace picket::net {

class TlsStream {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // The handshake finished; the peer's certificate is verified. Called once.
    virtual void OnTlsReady(TlsStream& stream) = 0;
    // Decrypted application bytes, in order, in arbitrary pieces.
    virtual void OnTlsData(TlsStream& stream, std::string_view plaintext) = 0;
    // The connection failed or the peer closed it. The stream closes itself right after this
    // returns; forget the pointer. Not called after the owner's own Close().
    virtual void OnTlsClosed(TlsStream& stream, const std::string& reason) = 0;
  };

  // Starts connecting to `address`. `verify_name` as in TlsEngine::Create.
  [[nodiscard]] static base::Result<TlsStream*> Connect(uv_loop_t* loop, const sockaddr* address,
                                                        std::shared_ptr<TlsContext> context,
                                                        std::string_view verify_name,
                                                        Handler* handler);
  // Accepts the pending connection of `server` (call from its connection callback).
  [[nodiscard]] static base::Result<TlsStream*> Accept(uv_stream_t* server,
                                                       std::shared_ptr<TlsContext> context,
                                                       Handler* handler);

  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Encrypts and queues `plaintext` (held until the handshake is done). An error means the
  // connection is unusable: Close() it.
  [[nodiscard]] base::Result<void> Write(std::string_view plaintext);
  // Closes now; pending writes are dropped. Idempotent.
  void Close();
  // Sends close_notify, lets queued writes drain (at most `linger_ms`), then closes.
  void CloseAfterFlush(uint64_t linger_ms = 2000);

  bool ready() const { return engine_->handshake_done(); }
  // Bytes handed to the kernel queue but not yet written.
  size_t write_queue_bytes() const;
  std::vector<std::string> PeerUriSans() const { return engine_->PeerUriSans(); }
  // "ip:port" of the peer, or empty.
  std::string PeerAddress() const;

 private:
  TlsStream(std::unique_ptr<TlsEngine> engine, Handler* handler);
  ~TlsStream() = default;

  [[nodiscard]] base::Result<void> Init(uv_loop_t* loop);
  void StartReading();
  void OnConnect(int status);
  void OnRead(ssize_t nread, const uv_buf_t* buf);
  void Fail(const std::string& reason);
  [[nodiscard]] bool SendCiphertext();
  void CloseHandles();
  void OnHandleClosed();

  std::unique_ptr<TlsEngine> engine_;
  Handler* handler_;
  uv_tcp_t tcp_{};
  uv_timer_t linger_timer_{};
  uv_connect_t connect_req_{};
  uv_shutdown_t shutdown_req_{};
  bool closing_ = false;
  int open_handles_ = 0;
  char read_buffer_[65536];
};

}  // namespace picket::net
