// proxy/xds/resolver.h — asynchronous host name resolution with c-ares on a libuv loop.
//
// Owns: one c-ares channel whose sockets are watched with uv_poll handles and whose timeouts
// run on a uv_timer, so resolving never blocks the loop. One lookup at a time (the xDS client
// resolves once per connection attempt). IP literals are answered without a query.
//
// Loop-thread only. Close() and run the loop until `done` before destroying.
#pragma once

#include <ares.h>
#include <sys/socket.h>
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"

namespace picket::proxy::xds {

class Resolver {
 public:
  using Addresses = std::vector<sockaddr_storage>;
  using Callback = std::function<void(base::Result<Addresses>)>;

  [[nodiscard]] static base::Result<std::unique_ptr<Resolver>> Create(uv_loop_t* loop);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Resolves `host` (A and AAAA) and calls `callback` later on the loop, never from inside
  // Resolve. A new Resolve cancels the previous lookup (its callback is not called).
  void Resolve(const std::string& host, uint16_t port, Callback callback);
  // Cancels the lookup in flight, if any (its callback is not called).
  void Cancel();
  void Close(std::function<void()> done);

 private:
  struct Poll;
  explicit Resolver(uv_loop_t* loop) : loop_(loop) {}
  static void OnSocketState(void* data, ares_socket_t fd, int readable, int writable);
  static void OnAddrInfo(void* arg, int status, int timeouts, ares_addrinfo* result);
  void UpdateTimer();
  void Deliver(base::Result<Addresses> result);
  void MaybeFinishClose();

  uv_loop_t* loop_;
  ares_channel channel_ = nullptr;
  uv_timer_t timer_{};    // c-ares timeouts
  uv_async_t deliver_{};  // defers results so callbacks never run inside Resolve
  std::map<ares_socket_t, Poll*> polls_;
  uint64_t generation_ = 0;  // lookups started; stale answers are dropped
  Callback callback_;
  base::Result<Addresses> pending_result_;
  bool has_pending_result_ = false;
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace picket::proxy::xds
