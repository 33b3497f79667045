// proxy/listener.cc — see listener.h. The TCP accept listener: the accept loop that used to live
// in the worker, unchanged (a batch of accept4() per readable event, then back to the loop).
#include "proxy/listener.h"

#include <unistd.h>

#include <cerrno>

namespace picket::proxy {
namespace {

constexpr int kBacklog = 4096;
constexpr int kAcceptBatch = 64;  // accepts per readable event, then yield to the loop

class TcpAcceptListener final : public Listener {
 public:
  TcpAcceptListener(uv_loop_t* loop, filters::Direction direction, filters::Endpoint local, int fd,
                    Kind kind = Kind::kTcpAccept)
      : Listener(kind, direction, local), loop_(loop), fd_(fd) {}

  ~TcpAcceptListener() override {
    // A started listener is closed by its owner before the loop ends; one never started only
    // holds its socket.
    if (!handle_initialized_ && fd_ >= 0) close(fd_);
  }

  void Start(ListenerHandler* handler) override {
    if (fd_ < 0) return;
    handler_ = handler;
    if (!handle_initialized_) {
      uv_poll_init_socket(loop_, &poll_, fd_);
      poll_.data = this;
      handle_initialized_ = true;
    }
    watching_ = true;
    uv_poll_start(&poll_, UV_READABLE, &TcpAcceptListener::OnReadable);
  }

  void Pause() override {
    if (!watching_) return;
    watching_ = false;
    uv_poll_stop(&poll_);
  }

  void Close() override {
    if (fd_ < 0) return;
    Pause();
    if (handle_initialized_) {
      // uv_close takes the fd out of the loop's epoll at once; then it can be closed.
      uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
    }
    close(fd_);
    fd_ = -1;
  }

 private:
  static void OnReadable(uv_poll_t* h, int status, int) {
    if (status < 0) return;  // a listening socket error: the next event retries
    static_cast<TcpAcceptListener*>(h->data)->Accept();
  }

  void Accept() {
    for (int i = 0; i < kAcceptBatch && watching_; ++i) {
      sockaddr_storage peer{};
      socklen_t len = sizeof(peer);
      const int fd =
          accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK) return;
        if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
        if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
          handler_->OnAcceptExhausted(*this, error);
        } else {
          handler_->OnAcceptError(*this, error);
        }
        return;
      }
      handler_->OnAccepted(*this, fd, peer);
    }
  }

  uv_loop_t* const loop_;
  int fd_;
  uv_poll_t poll_{};
  ListenerHandler* handler_ = nullptr;
  bool handle_initialized_ = false;
  bool watching_ = false;
};

}  // namespace

std::expected<std::vector<std::unique_ptr<Listener>>, SysError> MakeListeners(
    uv_loop_t* loop, const config::Bootstrap::Listeners& config, uint16_t outbound_port,
    uint16_t inbound_port) {
  std::vector<std::unique_ptr<Listener>> listeners;
  for (filters::Direction direction :
       {filters::Direction::kOutbound, filters::Direction::kInbound}) {
    uint16_t port = direction == filters::Direction::kOutbound ? outbound_port : inbound_port;
    for (bool v6 : {false, true}) {
      if ((v6 && !config.ipv6) || (!v6 && !config.ipv4)) continue;
      filters::Endpoint any;
      any.address.v6 = v6;
      any.port = port;
      auto fd = Listen(any, kBacklog);
      if (!fd) return std::unexpected(fd.error());  // the ones made so far close their sockets
      port = LocalPort(*fd);                        // the v6 listener takes the port the v4 one got
      any.port = port;
      listeners.push_back(std::make_unique<TcpAcceptListener>(loop, direction, any, *fd));
    }
  }
  return listeners;
}

std::expected<std::unique_ptr<Listener>, SysError> MakeServiceListener(
    uv_loop_t* loop, const filters::Endpoint& service) {
  auto fd = Listen(service, kBacklog, /*transparent=*/true);
  if (!fd) return std::unexpected(fd.error());
  return std::make_unique<TcpAcceptListener>(loop, filters::Direction::kOutbound, service, *fd,
                                             Listener::Kind::kServiceAccept);
}

}  // namespace picket::proxy
