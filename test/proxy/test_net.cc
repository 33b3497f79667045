#include "test/proxy/test_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace picket::testing {

bool WaitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return predicate();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

LoopThread::LoopThread() {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, &LoopThread::OnAsync);
  async_.data = this;
}

LoopThread::~LoopThread() { StopAndClose(); }

void LoopThread::Start() {
  thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
}

void LoopThread::OnAsync(uv_async_t* h) {
  auto* self = static_cast<LoopThread*>(h->data);
  std::vector<std::function<void()>> run;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    run.swap(self->pending_);
  }
  for (auto& fn : run) fn();
}

void LoopThread::Call(std::function<void()> fn) {
  if (!thread_.joinable()) {
    fn();
    return;
  }
  std::promise<void> done;
  auto future = done.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back([&] {
      fn();
      done.set_value();
    });
  }
  uv_async_send(&async_);
  future.wait();
}

int LoopThread::StopAndClose() {
  if (closed_) return 0;
  Call([this] { uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr); });
  closed_ = true;
  if (thread_.joinable()) {
    thread_.join();
  } else {
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  return uv_loop_close(&loop_);
}

namespace {

// A TCP socket bound to 127.0.0.1:0 (its port in *port), -1 on failure.
int BindLoopback(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(sin);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sin), len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(sin.sin_port);
  return fd;
}

}  // namespace

int ListenLoopback(uint16_t* port, int backlog) {
  int fd = BindLoopback(port);
  if (fd >= 0 && listen(fd, backlog) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

uint16_t UnusedLoopbackPort() {
  uint16_t port = 0;
  int fd = BindLoopback(&port);
  if (fd < 0) return 0;
  close(fd);
  return port;
}

EchoServer::EchoServer() {
  fd_ = ListenLoopback(&port_, 128);
  thread_ = std::thread([this] { Serve(); });
}

EchoServer::~EchoServer() {
  stop_ = true;
  shutdown(fd_, SHUT_RDWR);
  thread_.join();
  close(fd_);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& t : handlers_) t.join();
}

void EchoServer::Serve() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    sockaddr_in peer{};
    socklen_t peer_len = sizeof(peer);
    int c = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text));
    last_peer_ = text;
    ++accepted_;
    handlers_.emplace_back([c] {
      char buf[65536];
      for (;;) {
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        if (!SendAll(c, buf, static_cast<size_t>(n))) break;
      }
      shutdown(c, SHUT_WR);
      // Wait for the peer's close so the last bytes are not turned into a reset.
      while (recv(c, buf, sizeof(buf), 0) > 0) {
      }
      close(c);
    });
  }
}

OneShotServer::OneShotServer(std::function<void(int fd)> serve) {
  fd_ = ListenLoopback(&port_, 16);
  if (fd_ < 0) return;
  thread_ = std::thread([this, serve = std::move(serve)] {
    int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn >= 0) serve(conn);
  });
}

OneShotServer::~OneShotServer() {
  if (fd_ < 0) return;
  shutdown(fd_, SHUT_RDWR);  // wakes a pending accept()
  thread_.join();
  close(fd_);
}

int ConnectTo(uint16_t port, bool v6) {
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    sin6->sin6_port = htons(port);
    len = sizeof(*sin6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin->sin_port = htons(port);
    len = sizeof(*sin);
  }
  timeval tv{10, 0};  // no test waits forever on a socket
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

std::string ReadToEnd(int fd, int* error) {
  std::string out;
  char buf[65536];
  *error = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return out;
    if (n < 0) {
      *error = errno;
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

bool ReadExactly(int fd, char* data, size_t n) {
  while (n > 0) {
    ssize_t r = recv(fd, data, n, 0);
    if (r <= 0) return false;
    data += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

std::string Http(uint16_t port, const std::string& method, const std::string& target) {
  int fd = ConnectTo(port);
  if (fd < 0) return "connect failed";
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  SendAll(fd, request.data(), request.size());
  int error = 0;
  std::string response = ReadToEnd(fd, &error);
  close(fd);
  size_t sp = response.find(' ');
  size_t body = response.find("\r\n\r\n");
  if (sp == std::string::npos || body == std::string::npos) return "bad response: " + response;
  return response.substr(sp + 1, 3) + "\n" + response.substr(body + 4);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rng();
    std::memcpy(&out[i], &v, std::min<size_t>(4, n - i));
  }
  return out;
}

}  // namespace picket::testing
