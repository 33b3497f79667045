// proxy/xds/resolver.cc — see resolver.h.
#include "proxy/xds/resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace picket::proxy::xds {

struct Resolver::Poll {
  uv_poll_t handle;
  Resolver* owner;
  ares_socket_t fd;
};

namespace {

struct LookupContext {
  Resolver* resolver;
  uint64_t generation;
  uint16_t port;
};

}  // namespace

base::Result<std::unique_ptr<Resolver>> Resolver::Create(uv_loop_t* loop) {
  std::unique_ptr<Resolver> r(new Resolver(loop));
  ares_options options{};
  options.sock_state_cb = &Resolver::OnSocketState;
  options.sock_state_cb_data = r.get();
  options.timeout = 2000;  // ms per try
  options.tries = 2;
  const int rc = ares_init_options(&r->channel_, &options,
                                   ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (rc != ARES_SUCCESS) {
    return std::unexpected(base::Error::Of(std::string("c-ares init: ") + ares_strerror(rc)));
  }
  uv_timer_init(loop, &r->timer_);
  r->timer_.data = r.get();
  uv_async_init(loop, &r->deliver_, [](uv_async_t* a) {
    auto* self = static_cast<Resolver*>(a->data);
    if (!self->has_pending_result_) return;
    self->has_pending_result_ = false;
    Callback cb = std::move(self->callback_);
    self->callback_ = nullptr;
    if (cb) cb(std::move(self->pending_result_));
  });
  r->deliver_.data = r.get();
  r->open_handles_ = 2;
  return r;
}

Resolver::~Resolver() {
  if (channel_ != nullptr) ares_destroy(channel_);
}

void Resolver::Deliver(base::Result<Addresses> result) {
  pending_result_ = std::move(result);
  has_pending_result_ = true;
  uv_async_send(&deliver_);
}

void Resolver::Resolve(const std::string& host, uint16_t port, Callback callback) {
  Cancel();
  callback_ = std::move(callback);
  const uint64_t generation = ++generation_;
  // IP literals need no query.
  sockaddr_storage ss{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    Deliver(Addresses{ss});
    return;
  }
  if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    Deliver(Addresses{ss});
    return;
  }
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  auto* ctx = new LookupContext{this, generation, port};
  ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, &Resolver::OnAddrInfo, ctx);
  UpdateTimer();
}

void Resolver::OnAddrInfo(void* arg, int status, int, ares_addrinfo* result) {
  std::unique_ptr<LookupContext> ctx(static_cast<LookupContext*>(arg));
  Resolver* self = ctx->resolver;
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED ||
      ctx->generation != self->generation_) {
    if (result != nullptr) ares_freeaddrinfo(result);
    return;
  }
  if (status != ARES_SUCCESS) {
    self->Deliver(
        std::unexpected(base::Error::Of(std::string("resolve: ") + ares_strerror(status))));
    return;
  }
  Addresses addresses;
  for (ares_addrinfo_node* n = result->nodes; n != nullptr; n = n->ai_next) {
    sockaddr_storage ss{};
    if (n->ai_family == AF_INET || n->ai_family == AF_INET6) {
      std::memcpy(&ss, n->ai_addr, n->ai_addrlen);
      if (n->ai_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(ctx->port);
      } else {
        reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(ctx->port);
      }
      addresses.push_back(ss);
    }
  }
  ares_freeaddrinfo(result);
  if (addresses.empty()) {
    self->Deliver(std::unexpected(base::Error::Of("resolve: no addresses")));
  } else {
    self->Deliver(std::move(addresses));
  }
}

void Resolver::Cancel() {
  ++generation_;
  callback_ = nullptr;
  has_pending_result_ = false;
  if (channel_ != nullptr) ares_cancel(channel_);
}

void Resolver::OnSocketState(void* data, ares_socket_t fd, int readable, int writable) {
  auto* self = static_cast<Resolver*>(data);
  auto it = self->polls_.find(fd);
  if (!readable && !writable) {
    if (it == self->polls_.end()) return;
    Poll* p = it->second;
    self->polls_.erase(it);
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), [](uv_handle_t* h) {
      auto* poll = static_cast<Poll*>(h->data);
      Resolver* owner = poll->owner;
      delete poll;
      --owner->open_handles_;
      owner->MaybeFinishClose();
    });
    return;
  }
  Poll* p = nullptr;
  if (it == self->polls_.end()) {
    p = new Poll{{}, self, fd};
    if (uv_poll_init_socket(self->loop_, &p->handle, fd) != 0) {
      delete p;
      return;
    }
    p->handle.data = p;
    ++self->open_handles_;
    self->polls_[fd] = p;
  } else {
    p = it->second;
  }
  const int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  uv_poll_start(&p->handle, events, [](uv_poll_t* h, int status, int events) {
    auto* poll = static_cast<Poll*>(h->data);
    Resolver* owner = poll->owner;
    const ares_socket_t fd = poll->fd;
    // On error, let c-ares find out by reading and writing.
    const bool r = status < 0 || (events & UV_READABLE);
    const bool w = status < 0 || (events & UV_WRITABLE);
    ares_process_fd(owner->channel_, r ? fd : ARES_SOCKET_BAD, w ? fd : ARES_SOCKET_BAD);
    owner->UpdateTimer();
  });
}

void Resolver::UpdateTimer() {
  if (closing_) return;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
    uv_timer_stop(&timer_);
    return;
  }
  const uint64_t ms = static_cast<uint64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000 + 1;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Resolver*>(t->data);
        ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        self->UpdateTimer();
      },
      ms, 0);
}

void Resolver::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  if (closing_) return;
  Cancel();
  closing_ = true;
  // Destroying the channel closes its sockets, which closes their polls via OnSocketState.
  ares_destroy(channel_);
  channel_ = nullptr;
  for (auto& [fd, p] : polls_) {
    uv_poll_stop(&p->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), [](uv_handle_t* h) {
      auto* poll = static_cast<Poll*>(h->data);
      Resolver* owner = poll->owner;
      delete poll;
      --owner->open_handles_;
      owner->MaybeFinishClose();
    });
  }
  polls_.clear();
  auto on_close = [](uv_handle_t* h) {
    auto* self = static_cast<Resolver*>(h->data);
    --self->open_handles_;
    self->MaybeFinishClose();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&deliver_), on_close);
}

void Resolver::MaybeFinishClose() {
  if (!closing_ || open_handles_ > 0 || !on_closed_) return;
  auto done = std::move(on_closed_);
  on_closed_ = nullptr;
  done();
}

}  // namespace picket::proxy::xds
