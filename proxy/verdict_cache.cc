// proxy/verdict_cache.cc — see verdict_cache.h.
#include "proxy/verdict_cache.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "config/bootstrap.h"

namespace picket::proxy {

// One nftables transaction in `buffer`: begin, the messages Put() adds, end (Send()).
class NftBatch {
 public:
  NftBatch(char* buffer, size_t size, uint32_t* seq) : seq_(seq) {
    batch_ = mnl_nlmsg_batch_start(buffer, size);
    nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), (*seq_)++);
    mnl_nlmsg_batch_next(batch_);
    first_seq_ = *seq_;  // the first Put()'s
  }
  ~NftBatch() { mnl_nlmsg_batch_stop(batch_); }
  NftBatch(const NftBatch&) = delete;
  NftBatch& operator=(const NftBatch&) = delete;

  // A message header of `type`; returns it and its seq (`last_seq()`).
  nlmsghdr* Put(uint16_t type, uint16_t flags) {
    last_seq_ = (*seq_)++;
    return nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), type,
                                 NFPROTO_INET, flags, last_seq_);
  }
  void Next() { mnl_nlmsg_batch_next(batch_); }
  uint32_t first_seq() const { return first_seq_; }
  uint32_t last_seq() const { return last_seq_; }
  bool Send(mnl_socket* socket) {
    nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), (*seq_)++);
    mnl_nlmsg_batch_next(batch_);
    return mnl_socket_sendto(socket, mnl_nlmsg_batch_head(batch_), mnl_nlmsg_batch_size(batch_)) >=
           0;
  }

 private:
  uint32_t* seq_;
  mnl_nlmsg_batch* batch_;
  uint32_t first_seq_ = 0;
  uint32_t last_seq_ = 0;
};

namespace {

constexpr size_t kBufferBytes = 64 * 1024;
constexpr size_t kMaxPendingPerSend = VerdictCache::kMaxRememberedPerIteration;
// libnftnl writes a transaction into the buffer unchecked: an element takes at most 32 bytes
// (list-element nest, key nest, value attribute with a 20-byte IPv6 key), plus four message
// headers and the batch's begin and end.
static_assert(kMaxPendingPerSend * 32 + 4 * 256 + 2 * 64 <= kBufferBytes);
constexpr int kSocketBufferBytes = 1024 * 1024;
constexpr int kAckTimeoutMs = 1000;

// The sets, by direction (filters::Direction: inbound 0, outbound 1) and family.
struct SetSpec {
  const char* name;
  const char* chain;
  bool v6;
  uint32_t peer_offset;  // in the network header: the source inbound, the destination outbound
};
constexpr SetSpec kSets[2][2] = {
    {{"in4", "in_syn", false, 12}, {"in6", "in_syn", true, 8}},
    {{"out4", "out_syn", false, 16}, {"out6", "out_syn", true, 24}},
};

// The base chains, by direction: each holds one rule, the SYN test, which jumps to the
// direction's chain of lookups (kSets' `chain`), so any other packet costs one short rule.
struct BaseChain {
  const char* name;
  uint32_t hook;
  const char* syn_chain;
};
constexpr BaseChain kBaseChains[2] = {
    {"in", NF_INET_PRE_ROUTING, "in_syn"},
    {"out", NF_INET_LOCAL_OUT, "out_syn"},
};

uint32_t KeyLen(bool v6) { return (v6 ? 16 : 4) + 4; }  // peer . port, the port padded to 4

// nft's datatype ids (ipv4_addr 7, ipv6_addr 8, inet_service 13) concatenated 6 bits apiece:
// only for a reader such as `nft list`; the kernel looks at the length.
uint32_t KeyType(bool v6) { return ((v6 ? 8u : 7u) << 6) | 13u; }

SysError Failure(std::string what, int code = errno) { return SysError{code, std::move(what)}; }

// Expression builders for the rules.
nftnl_expr* Meta(uint32_t key, uint32_t dreg) {
  nftnl_expr* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
  return e;
}
nftnl_expr* MetaSet(uint32_t key, uint32_t sreg) {
  nftnl_expr* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, sreg);
  return e;
}
nftnl_expr* CmpEq(uint32_t sreg, const void* data, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  return e;
}
nftnl_expr* Payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
  nftnl_expr* e = nftnl_expr_alloc("payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
  return e;
}
// reg = (reg & mask) ^ xor, over `len` bytes.
nftnl_expr* Bitwise(uint32_t reg, const void* mask, const void* xor_, uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("bitwise");
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
  nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
  nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor_, len);
  return e;
}

nftnl_rule* NewRule(const char* chain) {
  nftnl_rule* r = nftnl_rule_alloc();
  nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
  nftnl_rule_set_str(r, NFTNL_RULE_TABLE, VerdictCache::kTable);
  nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
  return r;
}

// `meta l4proto tcp tcp flags & (fin|syn|rst|ack) == syn jump <syn_chain>` (iptables' --syn).
nftnl_rule* SynRule(const BaseChain& base) {
  nftnl_rule* r = NewRule(base.name);
  const uint8_t tcp = IPPROTO_TCP;
  nftnl_rule_add_expr(r, Meta(NFT_META_L4PROTO, NFT_REG_1));
  nftnl_rule_add_expr(r, CmpEq(NFT_REG_1, &tcp, 1));
  const uint8_t flags_mask = 0x17, flags_none = 0, syn = 0x02;
  nftnl_rule_add_expr(r, Payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1));
  nftnl_rule_add_expr(r, Bitwise(NFT_REG_1, &flags_mask, &flags_none, 1));
  nftnl_rule_add_expr(r, CmpEq(NFT_REG_1, &syn, 1));
  nftnl_expr* jump = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(jump, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(jump, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(NFT_JUMP));
  nftnl_expr_set_str(jump, NFTNL_EXPR_IMM_CHAIN, base.syn_chain);
  nftnl_rule_add_expr(r, jump);
  return r;
}

// In the SYN chain: `meta nfproto <family> <peer> . tcp dport @<set> counter
// meta mark set mark & ~<ours> | <judged>`.
nftnl_rule* CacheRule(const SetSpec& set, uint32_t set_id) {
  nftnl_rule* r = NewRule(set.chain);
  const uint8_t nfproto = set.v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
  nftnl_rule_add_expr(r, Meta(NFT_META_NFPROTO, NFT_REG_1));
  nftnl_rule_add_expr(r, CmpEq(NFT_REG_1, &nfproto, 1));
  const uint32_t peer_len = set.v6 ? 16 : 4;
  nftnl_rule_add_expr(r,
                      Payload(NFT_PAYLOAD_NETWORK_HEADER, set.peer_offset, peer_len, NFT_REG32_00));
  nftnl_rule_add_expr(r, Payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_00 + peer_len / 4));
  nftnl_expr* lookup = nftnl_expr_alloc("lookup");
  nftnl_expr_set_u32(lookup, NFTNL_EXPR_LOOKUP_SREG, NFT_REG32_00);
  nftnl_expr_set_str(lookup, NFTNL_EXPR_LOOKUP_SET, set.name);
  nftnl_expr_set_u32(lookup, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
  nftnl_rule_add_expr(r, lookup);
  nftnl_rule_add_expr(r, nftnl_expr_alloc("counter"));
  const uint32_t keep = ~config::kVerdictMarkMask, judged = config::kVerdictMarkJudged;
  nftnl_rule_add_expr(r, Meta(NFT_META_MARK, NFT_REG_1));
  nftnl_rule_add_expr(r, Bitwise(NFT_REG_1, &keep, &judged, 4));
  nftnl_rule_add_expr(r, MetaSet(NFT_META_MARK, NFT_REG_1));
  return r;
}

// The whole table: created only if absent (NLM_F_EXCL), owned by this socket.
void PutTable(NftBatch& batch, const VerdictCache::Options& options) {
  constexpr uint16_t kCreate = NLM_F_CREATE | NLM_F_ACK;
  nftnl_table* table = nftnl_table_alloc();
  nftnl_table_set_u32(table, NFTNL_TABLE_FAMILY, NFPROTO_INET);
  nftnl_table_set_str(table, NFTNL_TABLE_NAME, VerdictCache::kTable);
  nftnl_table_set_u32(table, NFTNL_TABLE_FLAGS, NFT_TABLE_F_OWNER);
  nftnl_table_nlmsg_build_payload(batch.Put(NFT_MSG_NEWTABLE, kCreate | NLM_F_EXCL), table);
  batch.Next();
  nftnl_table_free(table);

  uint32_t set_id = 1;
  for (const auto& by_family : kSets) {
    for (const SetSpec& spec : by_family) {
      nftnl_set* set = nftnl_set_alloc();
      nftnl_set_set_u32(set, NFTNL_SET_FAMILY, NFPROTO_INET);
      nftnl_set_set_str(set, NFTNL_SET_TABLE, VerdictCache::kTable);
      nftnl_set_set_str(set, NFTNL_SET_NAME, spec.name);
      nftnl_set_set_u32(set, NFTNL_SET_ID, set_id++);
      nftnl_set_set_u32(set, NFTNL_SET_FLAGS, NFT_SET_TIMEOUT);
      nftnl_set_set_u32(set, NFTNL_SET_KEY_TYPE, KeyType(spec.v6));
      nftnl_set_set_u32(set, NFTNL_SET_KEY_LEN, KeyLen(spec.v6));
      nftnl_set_set_u32(set, NFTNL_SET_DESC_SIZE, options.max_entries);
      nftnl_set_set_u64(set, NFTNL_SET_TIMEOUT, static_cast<uint64_t>(options.ttl.count()));
      nftnl_set_nlmsg_build_payload(batch.Put(NFT_MSG_NEWSET, kCreate), set);
      batch.Next();
      nftnl_set_free(set);
    }
  }
  for (const BaseChain& base : kBaseChains) {
    // The chain of lookups first, then the base chain that jumps to it.
    for (const char* name : {base.syn_chain, base.name}) {
      nftnl_chain* chain = nftnl_chain_alloc();
      nftnl_chain_set_u32(chain, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
      nftnl_chain_set_str(chain, NFTNL_CHAIN_TABLE, VerdictCache::kTable);
      nftnl_chain_set_str(chain, NFTNL_CHAIN_NAME, name);
      if (name == base.name) {
        nftnl_chain_set_str(chain, NFTNL_CHAIN_TYPE, "filter");
        nftnl_chain_set_u32(chain, NFTNL_CHAIN_HOOKNUM, base.hook);
        nftnl_chain_set_s32(chain, NFTNL_CHAIN_PRIO, VerdictCache::kChainPriority);
        nftnl_chain_set_u32(chain, NFTNL_CHAIN_POLICY, NF_ACCEPT);
      }
      nftnl_chain_nlmsg_build_payload(batch.Put(NFT_MSG_NEWCHAIN, kCreate), chain);
      batch.Next();
      nftnl_chain_free(chain);
    }
  }
  set_id = 1;
  for (const auto& by_family : kSets) {
    for (const SetSpec& spec : by_family) {
      nftnl_rule* rule = CacheRule(spec, set_id++);
      nftnl_rule_nlmsg_build_payload(batch.Put(NFT_MSG_NEWRULE, kCreate | NLM_F_APPEND), rule);
      batch.Next();
      nftnl_rule_free(rule);
    }
  }
  for (const BaseChain& base : kBaseChains) {
    nftnl_rule* rule = SynRule(base);
    nftnl_rule_nlmsg_build_payload(batch.Put(NFT_MSG_NEWRULE, kCreate | NLM_F_APPEND), rule);
    batch.Next();
    nftnl_rule_free(rule);
  }
}

}  // namespace

std::expected<std::unique_ptr<VerdictCache>, SysError> VerdictCache::Open(uv_loop_t* loop,
                                                                          Options options,
                                                                          Stats* stats) {
  mnl_socket* socket = mnl_socket_open(NETLINK_NETFILTER);
  if (socket == nullptr) return std::unexpected(Failure("socket(NETLINK_NETFILTER) for nftables"));
  std::unique_ptr<VerdictCache> cache(new VerdictCache(stats, socket));
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    return std::unexpected(Failure("bind nftables socket"));
  }
  const int fd = mnl_socket_get_fd(socket);
  int size = kSocketBufferBytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  {
    NftBatch batch(cache->buffer_.get(), kBufferBytes, &cache->seq_);
    PutTable(batch, options);
    if (const int error = cache->Commit(batch); error != 0) {
      return std::unexpected(Failure("create table inet picket", error));
    }
  }
  uv_check_init(loop, &cache->check_);
  uv_poll_init(loop, &cache->poll_, fd);
  uv_timer_init(loop, &cache->hits_timer_);
  cache->check_.data = cache->poll_.data = cache->hits_timer_.data = cache.get();
  uv_poll_start(&cache->poll_, UV_READABLE, &VerdictCache::OnReadable);
  uv_timer_start(&cache->hits_timer_, &VerdictCache::OnHitsTimer, kHitsInterval.count(),
                 kHitsInterval.count());
  // Neither keeps the loop alive: the worker's listeners and connections do.
  uv_unref(reinterpret_cast<uv_handle_t*>(&cache->poll_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&cache->hits_timer_));
  stats->verdict_cache.on.store(true, std::memory_order_relaxed);
  return cache;
}

VerdictCache::VerdictCache(Stats* stats, mnl_socket* socket)
    : stats_(stats), socket_(socket), buffer_(new char[kBufferBytes]) {}

VerdictCache::~VerdictCache() {
  // Open() failed before the handles existed (else Close() ran: socket_ is null).
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

int VerdictCache::Commit(NftBatch& batch) {
  if (!batch.Send(socket_)) return errno;
  // Every message is acknowledged, in order; the first error is the one to report (the
  // transaction is then aborted whole).
  int error = 0;
  for (uint32_t seq = batch.first_seq(); seq <= batch.last_seq(); ++seq) {
    int this_error = 0;
    if (!Drain(seq, &this_error)) return ETIMEDOUT;
    if (error == 0) error = this_error;
  }
  return error;
}

void VerdictCache::Close() {
  if (socket_ == nullptr) return;
  stats_->verdict_cache.on.store(false, std::memory_order_relaxed);
  pending_.clear();
  // An open cache is one Open() returned: its handles exist.
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&hits_timer_), nullptr);
  // The kernel deletes the table with its owner's socket.
  mnl_socket_close(socket_);
  socket_ = nullptr;
}

void VerdictCache::Fail(const std::string& why) {
  stats_->verdict_cache.failures.fetch_add(1, std::memory_order_relaxed);
  last_error_ = why;
  Close();
}

void VerdictCache::Remember(filters::Direction direction, const base::IpAddress& peer,
                            uint16_t port) {
  if (socket_ == nullptr || pending_.size() >= kMaxPendingPerSend) return;
  if (pending_.empty()) uv_check_start(&check_, &VerdictCache::OnCheck);
  pending_.push_back({direction, peer, port});
}

void VerdictCache::OnCheck(uv_check_t* h) { static_cast<VerdictCache*>(h->data)->SendPending(); }

void VerdictCache::SendPending() {
  uv_check_stop(&check_);
  if (socket_ == nullptr || pending_.empty()) return;
  NftBatch batch(buffer_.get(), kBufferBytes, &seq_);
  size_t sent = 0;
  for (size_t d = 0; d < 2; ++d) {
    for (const SetSpec& spec : kSets[d]) {
      nftnl_set* set = nullptr;
      for (const Pending& p : pending_) {
        if (static_cast<size_t>(p.direction) != d || p.peer.v6 != spec.v6) continue;
        if (set == nullptr) {
          set = nftnl_set_alloc();
          nftnl_set_set_str(set, NFTNL_SET_TABLE, kTable);
          nftnl_set_set_str(set, NFTNL_SET_NAME, spec.name);
        }
        uint8_t key[20] = {};
        const size_t peer_len = spec.v6 ? 16 : 4;
        std::memcpy(key, p.peer.bytes.data(), peer_len);
        const uint16_t port = htons(p.port);
        std::memcpy(key + peer_len, &port, 2);
        nftnl_set_elem* element = nftnl_set_elem_alloc();
        nftnl_set_elem_set(element, NFTNL_SET_ELEM_KEY, key, KeyLen(spec.v6));
        nftnl_set_elem_add(set, element);
        ++sent;
      }
      if (set == nullptr) continue;
      // No acknowledgement asked: only an error comes back (a full set: ENFILE), read by
      // OnReadable. An element already there is no error (no NLM_F_EXCL).
      nftnl_set_elems_nlmsg_build_payload(batch.Put(NFT_MSG_NEWSETELEM, NLM_F_CREATE), set);
      batch.Next();
      nftnl_set_free(set);
    }
  }
  pending_.clear();
  if (!batch.Send(socket_)) {
    stats_->verdict_cache.refused.fetch_add(sent, std::memory_order_relaxed);
    return;
  }
  stats_->verdict_cache.remembered.fetch_add(sent, std::memory_order_relaxed);
  // An error aborts the whole transaction: all of its elements were refused.
  adds_in_flight_.push_back({batch.first_seq(), batch.last_seq(), sent});
  if (adds_in_flight_.size() > kMaxAddsInFlight) adds_in_flight_.pop_front();
}

void VerdictCache::Clear() {
  if (socket_ == nullptr) return;
  pending_.clear();
  uv_check_stop(&check_);
  NftBatch batch(buffer_.get(), kBufferBytes, &seq_);
  for (const auto& by_family : kSets) {
    for (const SetSpec& spec : by_family) {
      nftnl_set* set = nftnl_set_alloc();
      nftnl_set_set_str(set, NFTNL_SET_TABLE, kTable);
      nftnl_set_set_str(set, NFTNL_SET_NAME, spec.name);
      // A NEWSETELEM's opposite with no element: the kernel flushes the set.
      nftnl_set_elems_nlmsg_build_payload(batch.Put(NFT_MSG_DELSETELEM, NLM_F_ACK), set);
      batch.Next();
      nftnl_set_free(set);
    }
  }
  if (const int error = Commit(batch); error != 0) {
    return Fail("empty the sets: " + std::string(std::strerror(error)));
  }
  stats_->verdict_cache.clears.fetch_add(1, std::memory_order_relaxed);
}

void VerdictCache::OnHitsTimer(uv_timer_t* h) {
  static_cast<VerdictCache*>(h->data)->RequestHits();
}

void VerdictCache::RequestHits() {
  if (socket_ == nullptr || dump_seq_ != 0) return;  // the last dump is still coming
  nftnl_rule* rule = nftnl_rule_alloc();
  nftnl_rule_set_str(rule, NFTNL_RULE_TABLE, kTable);
  dump_seq_ = seq_++;
  nlmsghdr* nlh =
      nftnl_nlmsg_build_hdr(buffer_.get(), NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, dump_seq_);
  nftnl_rule_nlmsg_build_payload(nlh, rule);
  nftnl_rule_free(rule);
  hits_dump_[0] = hits_dump_[1] = 0;
  if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) dump_seq_ = 0;
}

void VerdictCache::OnReadable(uv_poll_t* h, int status, int) {
  if (status < 0) return;
  int error = 0;
  static_cast<VerdictCache*>(h->data)->Drain(0, &error);
}

bool VerdictCache::Drain(uint32_t wait_seq, int* error) {
  if (socket_ == nullptr) return false;
  const int fd = mnl_socket_get_fd(socket_);
  while (socket_ != nullptr) {
    const ssize_t n = recv(fd, buffer_.get(), kBufferBytes, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        // The kernel dropped messages for us: a dump in progress is incomplete (the next one
        // counts what it missed); an awaited answer may be gone (then the wait times out).
        dump_seq_ = 0;
        continue;
      }
      if (errno != EAGAIN) return false;
      if (wait_seq == 0) return true;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, kAckTimeoutMs) <= 0) return false;
      continue;
    }
    bool acked = false;
    int len = static_cast<int>(n);
    for (const nlmsghdr* nlh = reinterpret_cast<const nlmsghdr*>(buffer_.get());
         mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      OnMessage(nlh, wait_seq, &acked, error);
    }
    if (acked) return true;
  }
  return false;
}

void VerdictCache::OnMessage(const nlmsghdr* nlh, uint32_t wait_seq, bool* acked, int* error) {
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
    if (wait_seq != 0 && nlh->nlmsg_seq == wait_seq) {
      *acked = true;
      *error = -err->error;
      return;
    }
    if (err->error == 0) return;
    if (nlh->nlmsg_seq == dump_seq_) {
      dump_seq_ = 0;
      return;
    }
    for (auto it = adds_in_flight_.begin(); it != adds_in_flight_.end(); ++it) {
      if (nlh->nlmsg_seq < it->first || nlh->nlmsg_seq > it->last) continue;
      stats_->verdict_cache.remembered.fetch_sub(it->elements, std::memory_order_relaxed);
      stats_->verdict_cache.refused.fetch_add(it->elements, std::memory_order_relaxed);
      adds_in_flight_.erase(it);
      break;
    }
    return;
  }
  if (nlh->nlmsg_seq != dump_seq_ || dump_seq_ == 0) return;
  if (nlh->nlmsg_type == NLMSG_DONE) {
    dump_seq_ = 0;
    for (size_t d = 0; d < 2; ++d) {
      // Counters only grow while the table lives.
      const uint64_t delta = hits_dump_[d] > hits_seen_[d] ? hits_dump_[d] - hits_seen_[d] : 0;
      hits_seen_[d] = hits_dump_[d];
      if (delta == 0) continue;
      stats_->verdict_cache.hits[d].fetch_add(delta, std::memory_order_relaxed);
      // A cached SYN is a connection the policy allowed, as one judged in userspace.
      DirectionStats& direction = stats_->For(static_cast<filters::Direction>(d));
      direction.accepted.fetch_add(delta, std::memory_order_relaxed);
      direction.allowed.fetch_add(delta, std::memory_order_relaxed);
    }
    return;
  }
  if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
      NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWRULE) {
    return;
  }
  nftnl_rule* rule = nftnl_rule_alloc();
  if (nftnl_rule_nlmsg_parse(nlh, rule) == 0 && nftnl_rule_is_set(rule, NFTNL_RULE_CHAIN)) {
    const size_t d =
        std::strcmp(nftnl_rule_get_str(rule, NFTNL_RULE_CHAIN), kBaseChains[1].syn_chain) == 0
            ? static_cast<size_t>(filters::Direction::kOutbound)
            : static_cast<size_t>(filters::Direction::kInbound);
    nftnl_expr_iter* it = nftnl_expr_iter_create(rule);
    for (nftnl_expr* e = nftnl_expr_iter_next(it); e != nullptr; e = nftnl_expr_iter_next(it)) {
      if (std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "counter") == 0) {
        hits_dump_[d] += nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
      }
    }
    nftnl_expr_iter_destroy(it);
  }
  nftnl_rule_free(rule);
}

}  // namespace picket::proxy
