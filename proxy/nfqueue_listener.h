// proxy/nfqueue_listener.h — the packet-verdict listener: the first packet of each new UDP or
// SCTP flow, queued by picket-init's rules (inject/datagram_rules.h), decided on the worker loop.
//
// Owns: `NfqueueListener` (Listener::Kind::kPacketVerdict), one netlink socket bound to NFQUEUE
// queue `queue` of this network namespace (libmnl + libnetfilter_queue; needs CAP_NET_ADMIN).
// The socket is watched with uv_poll on the worker's loop: each readable event reads up to
// `kPacketsPerEvent` packets (non-blocking), parses each one's headers (proxy/packet_headers.h),
// asks the handler (ListenerHandler::OnPacketFlow) and sends the verdicts of the round in one
// sendmsg (one NFQNL_MSG_VERDICT per packet, batched), then yields to the loop, so the TCP relay
// on the same loop is never starved. The hook says the direction: PREROUTING is inbound,
// POSTROUTING (after any Service DNAT, so egress is judged against the backend) outbound.
// Fail closed: a packet that does not parse is dropped; the queue is configured without
// NFQA_CFG_F_FAIL_OPEN, so a full queue drops; once this listener is closed (or the process is
// gone) the kernel drops what it would queue (the rules use no --queue-bypass). Only one socket
// may bind a queue number in a namespace: one worker owns this listener.
//
// Threads: Open() on any thread; the rest on the loop's thread. Lifetime as every Listener
// (proxy/listener.h): after Close(), destroy it once the loop has run again.
#pragma once

#include <uv.h>

#include <cstdint>
#include <expected>
#include <memory>

#include "proxy/listener.h"
#include "proxy/socket_util.h"

struct mnl_socket;

namespace picket::proxy {

class NfqueueListener final : public Listener {
 public:
  static constexpr int kPacketsPerEvent = 256;
  // Bytes of each packet the kernel copies to us: every header we read (kMaxHeaderBytes).
  static constexpr uint32_t kCopyRange = 512;

  // Binds `queue` (the bind is acknowledged, so EPERM without CAP_NET_ADMIN, or EBUSY when
  // another socket has the queue, is reported here). `max_len`: packets the kernel keeps
  // waiting for a verdict before it drops new ones.
  [[nodiscard]] static std::expected<std::unique_ptr<NfqueueListener>, SysError> Open(
      uv_loop_t* loop, uint16_t queue, uint32_t max_len);
  ~NfqueueListener() override;

  uint16_t queue() const { return queue_; }
  void Start(ListenerHandler* handler) override;
  void Pause() override;
  void Close() override;

 private:
  NfqueueListener(uv_loop_t* loop, uint16_t queue, mnl_socket* socket);
  static void OnReadable(uv_poll_t* h, int status, int events);
  void ReadBatch();

  uv_loop_t* const loop_;
  const uint16_t queue_;
  mnl_socket* socket_;
  uint32_t port_id_ = 0;
  uv_poll_t poll_{};
  ListenerHandler* handler_ = nullptr;
  bool handle_initialized_ = false;
  bool watching_ = false;
  std::unique_ptr<char[]> receive_buffer_;
  std::unique_ptr<char[]> verdict_buffer_;
};

}  // namespace picket::proxy
