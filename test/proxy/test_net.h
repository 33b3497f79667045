// test/proxy/test_net.h — blocking-socket helpers and a loop thread for in-process proxy tests.
//
// LoopThread runs a libuv loop on its own thread and runs closures there (the Proxy's methods
// belong to its loop thread). EchoServer is a blocking echo server on 127.0.0.1:0 that echoes
// until EOF, then half-closes; OneShotServer accepts one connection on 127.0.0.1:0 and hands it
// to a callback. All waiting is bounded (WaitFor with a deadline).
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace picket::testing {

// Polls `predicate` until true or `timeout`; returns the last value.
bool WaitFor(const std::function<bool()>& predicate,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

class LoopThread {
 public:
  LoopThread();
  ~LoopThread();
  uv_loop_t* loop() { return &loop_; }
  void Start();
  // Runs `fn` on the loop thread and waits for it.
  void Call(std::function<void()> fn);
  // Stops accepting calls, waits until the loop has no more handles; returns uv_loop_close().
  int StopAndClose();

 private:
  static void OnAsync(uv_async_t* h);
  uv_loop_t loop_;
  uv_async_t async_;
  std::mutex mu_;
  std::vector<std::function<void()>> pending_;
  std::thread thread_;
  bool closed_ = false;
};

class EchoServer {
 public:
  EchoServer();
  ~EchoServer();
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  // The source address of the last accepted connection, e.g. "127.0.0.7".
  std::string last_peer() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_peer_;
  }

 private:
  void Serve();
  int fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::thread> handlers_;
  std::string last_peer_;
};

// A one-connection TCP server on 127.0.0.1:0 on a thread of its own: `serve` runs for the first
// accepted connection and owns (closes) its fd. The destructor wakes a pending accept and joins.
class OneShotServer {
 public:
  explicit OneShotServer(std::function<void(int fd)> serve);
  ~OneShotServer();
  OneShotServer(const OneShotServer&) = delete;
  OneShotServer& operator=(const OneShotServer&) = delete;
  bool ok() const { return fd_ >= 0; }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

// A listening TCP socket on 127.0.0.1:0 (its port in *port), -1 on failure.
int ListenLoopback(uint16_t* port, int backlog);
// A port on 127.0.0.1 nobody listens on (bound, then closed again); 0 on failure.
uint16_t UnusedLoopbackPort();

// A blocking TCP connection to 127.0.0.1:port (or ::1), -1 on failure.
int ConnectTo(uint16_t port, bool v6 = false);
bool SendAll(int fd, const char* data, size_t size);
// Reads until EOF or error; returns the bytes and sets *error to errno of a failed read (0 at EOF).
std::string ReadToEnd(int fd, int* error);
// Reads exactly n bytes (false on EOF/error).
bool ReadExactly(int fd, char* data, size_t n);
// A blocking HTTP/1.1 request to 127.0.0.1:port; returns "STATUS\nBODY".
std::string Http(uint16_t port, const std::string& method, const std::string& target);
// Deterministic pseudo-random bytes.
std::string RandomBytes(size_t n, uint32_t seed);

}  // namespace picket::testing
