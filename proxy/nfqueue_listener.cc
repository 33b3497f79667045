// proxy/nfqueue_listener.cc — see nfqueue_listener.h.
#include "proxy/nfqueue_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <span>
#include <string>
#include <vector>

#include "config/bootstrap.h"
#include "proxy/packet_headers.h"

namespace picket::proxy {
namespace {

// recvmmsg: up to kSlots queued packets per system call, each in a slot of its own (a packet's
// message is its headers — at most kCopyRange bytes of it — plus a few attributes).
constexpr int kSlots = 64;
constexpr size_t kSlotBytes = 2048;
constexpr size_t kReceiveBufferBytes = kSlots * kSlotBytes;
constexpr size_t kVerdictBufferBytes = 32 * 1024;
constexpr int kSocketBufferBytes = 4 * 1024 * 1024;

SysError Fail(std::string what, int code = errno) { return SysError{code, std::move(what)}; }

// Sends one config message and waits for its acknowledgement (the socket is still blocking).
std::expected<void, SysError> Configure(mnl_socket* socket, uint32_t port_id, nlmsghdr* nlh,
                                        const std::string& what) {
  nlh->nlmsg_flags |= NLM_F_ACK;
  static uint32_t seq = 0;
  nlh->nlmsg_seq = ++seq;
  if (mnl_socket_sendto(socket, nlh, nlh->nlmsg_len) < 0) return std::unexpected(Fail(what));
  char buf[MNL_SOCKET_BUFFER_SIZE];
  ssize_t n = mnl_socket_recvfrom(socket, buf, sizeof buf);
  if (n < 0) return std::unexpected(Fail(what));
  if (mnl_cb_run(buf, static_cast<size_t>(n), nlh->nlmsg_seq, port_id, nullptr, nullptr) < 0) {
    return std::unexpected(Fail(what));
  }
  return {};
}

struct Round {
  ListenerHandler* handler;
  Listener* listener;
  mnl_nlmsg_batch* batch;
  uint16_t queue;
  int packets = 0;
};

// UDP/SCTP: drop, or accept by sending the packet through the hook that queued it again
// (NF_REPEAT) marked kVerdictMarkJudged: our chains return on that mark and the nat table binds
// the flow, so its later packets never reach a rule of ours. TCP (verdict mode): always accepted
// into the next hooks, with our mark bits saying what they do with it — none (the kernel carries
// the flow), reject (the filter table resets it) or relay (the nat table redirects it). Bits
// outside kVerdictMarkMask are the packet's own and kept (config/bootstrap.h's mark contract).
void PutVerdict(Round& round, uint32_t id, PacketVerdict verdict, bool tcp, uint32_t mark = 0) {
  nlmsghdr* nlh = nfq_nlmsg_put(static_cast<char*>(mnl_nlmsg_batch_current(round.batch)),
                                NFQNL_MSG_VERDICT, round.queue);
  if (verdict == PacketVerdict::kDrop) {
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), NF_DROP);
  } else if (!tcp) {
    // Already judged and queued again (a rule of someone else's queueing it past our chains'
    // return): accept on, never a loop between the hook and us.
    const bool again = (mark & config::kVerdictMarkMask) == config::kVerdictMarkJudged;
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), again ? NF_ACCEPT : NF_REPEAT);
    nfq_nlmsg_verdict_put_mark(nlh,
                               (mark & ~config::kVerdictMarkMask) | config::kVerdictMarkJudged);
  } else {
    nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), NF_ACCEPT);
    const uint32_t ours = verdict == PacketVerdict::kReject ? config::kVerdictMarkReject : 0;
    if (ours != 0 || (mark & config::kVerdictMarkMask) != 0) {
      nfq_nlmsg_verdict_put_mark(nlh, (mark & ~config::kVerdictMarkMask) | ours);
    }
  }
  mnl_nlmsg_batch_next(round.batch);
}

int OnPacket(const nlmsghdr* nlh, void* data) {
  auto& round = *static_cast<Round*>(data);
  nlattr* attr[NFQA_MAX + 1] = {};
  if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr) return MNL_CB_OK;
  const auto* header =
      static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
  const uint32_t id = ntohl(header->packet_id);
  ++round.packets;
  if (attr[NFQA_PAYLOAD] == nullptr) {
    round.handler->OnPacketUnparsed(*round.listener, base::Error::At("packet", "no payload"));
    PutVerdict(round, id, PacketVerdict::kDrop, /*tcp=*/false);
    return MNL_CB_OK;
  }
  std::span<const uint8_t> payload(
      static_cast<const uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD])),
      mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]));
  base::Result<PacketFlow> flow = ParsePacketFlow(payload);
  if (!flow) {
    round.handler->OnPacketUnparsed(*round.listener, flow.error());
    PutVerdict(round, id, PacketVerdict::kDrop, /*tcp=*/false);
    return MNL_CB_OK;
  }
  const uint32_t mark = attr[NFQA_MARK] != nullptr ? ntohl(mnl_attr_get_u32(attr[NFQA_MARK])) : 0;
  const filters::Direction direction = header->hook == NF_INET_PRE_ROUTING
                                           ? filters::Direction::kInbound
                                           : filters::Direction::kOutbound;
  PacketVerdict verdict = round.handler->OnPacketFlow(*round.listener, direction, *flow);
  // Reject and relay are TCP's only: a UDP/SCTP flow is accepted or dropped here.
  const bool tcp = flow->protocol == config::Protocol::kTCP;
  if (!tcp && verdict != PacketVerdict::kAccept) verdict = PacketVerdict::kDrop;
  PutVerdict(round, id, verdict, tcp, mark);
  return MNL_CB_OK;
}

}  // namespace

std::expected<std::unique_ptr<NfqueueListener>, SysError> NfqueueListener::Open(uv_loop_t* loop,
                                                                                uint16_t queue,
                                                                                uint32_t max_len) {
  const std::string what = "nfqueue " + std::to_string(queue);
  mnl_socket* socket = mnl_socket_open(NETLINK_NETFILTER);
  if (socket == nullptr) return std::unexpected(Fail("socket(NETLINK_NETFILTER) for " + what));
  std::unique_ptr<NfqueueListener> listener(new NfqueueListener(loop, queue, socket));
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    return std::unexpected(Fail("bind " + what));
  }
  listener->port_id_ = mnl_socket_get_portid(socket);
  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
  if (auto r = Configure(socket, listener->port_id_, nlh, "bind " + what); !r) {
    return std::unexpected(r.error());
  }
  nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, queue);
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, kCopyRange);
  nfq_nlmsg_cfg_put_qmaxlen(nlh, max_len);
  // Fail-open explicitly off (a full queue drops); GSO packets are judged as they are (we read
  // headers only), so the kernel need not segment them for us.
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN));
  if (auto r = Configure(socket, listener->port_id_, nlh, "configure " + what); !r) {
    return std::unexpected(r.error());
  }
  const int fd = mnl_socket_get_fd(socket);
  int on = 1;
  // A burst larger than the socket buffer is dropped by the kernel (fail closed); do not make
  // recv() report it as an error.
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on);
  int size = kSocketBufferBytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return listener;
}

NfqueueListener::NfqueueListener(uv_loop_t* loop, uint16_t queue, mnl_socket* socket)
    : Listener(Kind::kPacketVerdict, filters::Direction::kInbound, filters::Endpoint{}),
      loop_(loop),
      queue_(queue),
      socket_(socket),
      receive_buffer_(new char[kReceiveBufferBytes]),
      verdict_buffer_(new char[kVerdictBufferBytes]) {}

NfqueueListener::~NfqueueListener() {
  // A started listener is closed by its owner before the loop ends.
  if (!handle_initialized_ && socket_ != nullptr) mnl_socket_close(socket_);
}

void NfqueueListener::Start(ListenerHandler* handler) {
  if (socket_ == nullptr) return;
  handler_ = handler;
  if (!handle_initialized_) {
    uv_poll_init(loop_, &poll_, mnl_socket_get_fd(socket_));
    poll_.data = this;
    handle_initialized_ = true;
  }
  watching_ = true;
  uv_poll_start(&poll_, UV_READABLE, &NfqueueListener::OnReadable);
}

void NfqueueListener::Pause() {
  if (!watching_) return;
  watching_ = false;
  uv_poll_stop(&poll_);
}

void NfqueueListener::Close() {
  if (socket_ == nullptr) return;
  Pause();
  if (handle_initialized_) uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
  // Closing the socket unbinds the queue: the kernel drops what it would queue from now on.
  mnl_socket_close(socket_);
  socket_ = nullptr;
}

void NfqueueListener::OnReadable(uv_poll_t* h, int status, int) {
  if (status < 0) return;
  static_cast<NfqueueListener*>(h->data)->ReadBatch();
}

void NfqueueListener::ReadBatch() {
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(verdict_buffer_.get(), kVerdictBufferBytes / 2);
  Round round{handler_, this, batch, queue_};
  auto flush = [&] {
    if (mnl_nlmsg_batch_is_empty(batch)) return;
    // A verdict that cannot be sent leaves its packet queued until the queue is unbound (then
    // dropped): never accepted by mistake.
    mnl_socket_sendto(socket_, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch));
    mnl_nlmsg_batch_reset(batch);
  };
  const int fd = mnl_socket_get_fd(socket_);
  mmsghdr messages[kSlots];
  iovec slots[kSlots];
  while (round.packets < kPacketsPerEvent && watching_) {
    for (int i = 0; i < kSlots; ++i) {
      slots[i] = {receive_buffer_.get() + static_cast<size_t>(i) * kSlotBytes, kSlotBytes};
      messages[i] = {};
      messages[i].msg_hdr.msg_iov = &slots[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
    const int n = recvmmsg(fd, messages, kSlots, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: drained for now
    }
    for (int i = 0; i < n; ++i) {
      mnl_cb_run(slots[i].iov_base, messages[i].msg_len, 0, port_id_, &OnPacket, &round);
    }
    // The batch holds half its buffer: room for a whole receive's verdicts past the mark.
    if (mnl_nlmsg_batch_size(batch) > kVerdictBufferBytes / 4) flush();
    if (n < kSlots) break;
  }
  flush();
  mnl_nlmsg_batch_stop(batch);
}

}  // namespace picket::proxy
