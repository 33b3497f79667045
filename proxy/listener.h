// proxy/listener.h — where a worker's flows come from: the listener seam.
//
// Owns: `Listener` (one bound socket that hands new flows to its `ListenerHandler`, the
// worker), `ListenerHandler`, and MakeListeners — the one function that turns the bootstrap's
// `listeners` section into a worker's listeners: TCP accept listeners (`Kind::kTcpAccept`,
// redirected connections on the outbound and inbound ports). The packet-verdict listener
// (`Kind::kPacketVerdict`, proxy/nfqueue_listener.h: the first packet of each new UDP or SCTP
// flow is decided and the kernel carries the rest) is made by the one worker that owns the queue.
// The handler has one method per kind of flow, so the TCP accept path keeps exactly one indirect
// call per connection (ListenerHandler::OnAccepted) and no allocation.
//
// Threads: MakeListeners and the first Start() may run on the creating thread before the
// worker's loop runs; everything else on the loop's thread. A Listener must outlive its handle:
// after Close(), destroy it only once the loop has run again (the worker destroys its listeners
// after its loop has finished). A listener that was never started only owns its socket.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <vector>

#include "base/error.h"
#include "config/bootstrap.h"
#include "filters/filter.h"
#include "proxy/packet_headers.h"
#include "proxy/socket_util.h"

namespace picket::proxy {

class Listener;

// What becomes of a queued packet (kPacketVerdict).
enum class PacketVerdict : uint8_t {
  kDrop,    // dropped (UDP/SCTP denied; anything that cannot be judged)
  kAccept,  // the kernel carries the flow
  kReject,  // TCP denied: answered with a reset (the filter table's REJECT, by its mark)
};

// The owner of listeners (the worker). Called on the loop's thread.
class ListenerHandler {
 public:
  // A new TCP connection; `fd` is non-blocking and now the handler's.
  virtual void OnAccepted(Listener& listener, int fd, const sockaddr_storage& peer) = 0;
  // accept() failed for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): the
  // connection stays queued and the socket readable, so the listener has stopped reading this
  // round; the handler should Pause() its listeners and Start() them again later.
  virtual void OnAcceptExhausted(Listener& listener, int error) = 0;
  // Any other accept() error (the next readable event retries).
  virtual void OnAcceptError(Listener& listener, int error) = 0;
  // The first packet of a new UDP, SCTP or (verdict mode) TCP flow (kPacketVerdict). Must not
  // block. The default drops (fail closed).
  virtual PacketVerdict OnPacketFlow(Listener& /*listener*/, filters::Direction /*direction*/,
                                     const PacketFlow& /*flow*/) {
    return PacketVerdict::kDrop;
  }
  // A queued packet whose headers did not parse; it is dropped.
  virtual void OnPacketUnparsed(Listener& /*listener*/, const base::Error& /*error*/) {}

 protected:
  ~ListenerHandler() = default;
};

class Listener {
 public:
  enum class Kind {
    kTcpAccept,      // a listening TCP socket: accept4() per connection
    kServiceAccept,  // the same, transparent, on one Service address and port (verdict mode,
                     // proxy/service_routes.h): its bound address is every flow's destination
    kPacketVerdict,  // an NFQUEUE queue: a verdict per new flow (nfqueue_listener.h)
  };

  virtual ~Listener() = default;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  Kind kind() const { return kind_; }
  filters::Direction direction() const { return direction_; }
  const filters::Endpoint& local_address() const { return local_address_; }  // the bound port

  // Starts, or resumes after Pause(), delivering flows to `handler`. No-op once closed.
  virtual void Start(ListenerHandler* handler) = 0;
  // Stops delivering; flows wait in the kernel's queue.
  virtual void Pause() = 0;
  // Stops for good and releases the socket. Idempotent.
  virtual void Close() = 0;

 protected:
  Listener(Kind kind, filters::Direction direction, filters::Endpoint local_address)
      : kind_(kind), direction_(direction), local_address_(local_address) {}

 private:
  const Kind kind_;
  const filters::Direction direction_;
  const filters::Endpoint local_address_;
};

// A worker's listeners from the bootstrap's `listeners` section: outbound then inbound, each on
// IPv4 and/or IPv6 (SO_REUSEPORT, so every worker binds the same ports and the kernel spreads
// flows over them). Port 0 takes any port; the IPv6 listener then takes the port its IPv4 twin
// got. Handles are created on `loop` at the first Start().
[[nodiscard]] std::expected<std::vector<std::unique_ptr<Listener>>, SysError> MakeListeners(
    uv_loop_t* loop, const config::Bootstrap::Listeners& config, uint16_t outbound_port,
    uint16_t inbound_port);

// A transparent outbound listener on `service` (a Service address and port the routing table
// delivers in the pod; SO_REUSEPORT, one per worker). Needs CAP_NET_ADMIN.
[[nodiscard]] std::expected<std::unique_ptr<Listener>, SysError> MakeServiceListener(
    uv_loop_t* loop, const filters::Endpoint& service);

}  // namespace picket::proxy
