// proxy/verdict_cache.h on the real kernel, as root, in network namespaces of its own, under
// picket-init's real verdict-mode rules with no sidecar bound to the queue (so every SYN the
// cache does not allow is refused, as it is when the sidecar is gone): a remembered peer and port
// connect, v4 and v6, outbound and inbound, and nothing else does; Clear empties every set; the
// table goes with its socket (the sidecar's death); a full set refuses more and says so; a second
// cache in the namespace is refused while the first lives; hits are read back by direction; one
// loop iteration sends at most kMaxRememberedPerIteration entries.
// Fails loudly without root.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "proxy/stats.h"
#include "proxy/verdict_cache.h"
#include "test/e2e/netns.h"
#include "test/e2e/pod_network.h"

namespace picket::e2e {
namespace {

using proxy::VerdictCache;
using Direction = filters::Direction;

struct Addresses {
  const char* pod;
  const char* peer;
};
constexpr Addresses kV4{"10.78.0.1", "10.78.0.2"};
constexpr Addresses kV6{"fd00:78::1", "fd00:78::2"};

class VerdictCacheE2eTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the verdict cache tests create network namespaces, nftables "
                                "tables and iptables rules: run them as root (they do not skip)";
    pod_ = std::make_unique<Netns>(UniqueName("vcp"));
    peer_ = std::make_unique<Netns>(UniqueName("vcq"));
    ASSERT_TRUE(pod_->ok() && peer_->ok());
    std::string error;
    ASSERT_TRUE(LinkNamespaces(*pod_, kV4.pod, kV6.pod, *peer_, kV4.peer, kV6.peer, &error))
        << error;
    CommandResult r = pod_->Exec({Runfile("inject/picket-init"), "--capture=verdict"});
    ASSERT_EQ(r.status, 0) << r.output;
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    // Servers: in the peer (the pod's outbound connections) and in the pod (inbound ones).
    for (int i = 0; i < 3; ++i) {
      peer_listeners_[i] = ListenIn(*peer_, a().peer, 0);
      pod_listeners_[i] = ListenIn(*pod_, a().pod, 0);
      ASSERT_GE(peer_listeners_[i], 0);
      ASSERT_GE(pod_listeners_[i], 0);
    }
  }

  void TearDown() override {
    if (cache_) CloseCache();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
    for (int fd : peer_listeners_) close(fd);
    for (int fd : pod_listeners_) close(fd);
    peer_.reset();
    pod_.reset();
  }

  static const Addresses& a() { return GetParam() ? kV6 : kV4; }

  // Opens a cache inside the pod's namespace (its socket stays there).
  std::expected<std::unique_ptr<VerdictCache>, proxy::SysError> OpenIn(
      const Netns& ns, VerdictCache::Options options = {}) {
    std::expected<std::unique_ptr<VerdictCache>, proxy::SysError> out =
        std::unexpected(proxy::SysError{0, "not run"});
    ns.InNetns([&] {
      out = VerdictCache::Open(&loop_, options, &stats_);
      return 0;
    });
    return out;
  }
  // Close, let the loop run the handles' close callbacks, then destroy.
  void CloseCache() {
    cache_->Close();
    uv_run(&loop_, UV_RUN_NOWAIT);
    cache_.reset();
  }

  static uint16_t PortOf(int listener) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(listener, reinterpret_cast<sockaddr*>(&ss), &len);
    return proxy::EndpointFromSockaddr(ss).port;
  }
  uint16_t PeerPort(int i) const { return PortOf(peer_listeners_[i]); }
  uint16_t PodPort(int i) const { return PortOf(pod_listeners_[i]); }

  // Whether a connection gets through: the pod's out to the peer's server `i`, or the peer's in
  // to the pod's server `i`. Refused at once otherwise (the rules' reset of an unjudged SYN).
  bool ConnectsOut(int i) { return Connects(*pod_, a().peer, PeerPort(i)); }
  bool ConnectsIn(int i) { return Connects(*peer_, a().pod, PodPort(i)); }
  static bool Connects(const Netns& from, const std::string& to, uint16_t port) {
    const int fd = ConnectFrom(from, to, port, std::chrono::seconds(5));
    if (fd >= 0) {
      close(fd);
      return true;
    }
    EXPECT_EQ(errno, ECONNREFUSED) << std::strerror(errno);
    return false;
  }

  // Runs the loop (its check handle sends what was remembered; its poll reads the kernel's
  // answers; its timer asks for the hits) until `done` or 10 s.
  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    uv_timer_t wake;
    uv_timer_init(&loop_, &wake);
    // Bounds each pass: the cache's own handles do not keep the loop alive.
    uv_timer_start(
        &wake, [](uv_timer_t*) {}, 50, 50);
    bool ok = true;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        ok = false;
        break;
      }
      uv_run(&loop_, UV_RUN_ONCE);
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return ok;
  }
  // One pass: what was remembered is sent.
  void Flush() { uv_run(&loop_, UV_RUN_NOWAIT); }

  uv_loop_t loop_;
  proxy::Stats stats_;
  std::unique_ptr<Netns> pod_, peer_;
  int peer_listeners_[3] = {-1, -1, -1};
  int pod_listeners_[3] = {-1, -1, -1};
  std::unique_ptr<VerdictCache> cache_;
};

TEST_P(VerdictCacheE2eTest, ARememberedPeerAndPortConnectAndNothingElseDoes) {
  // No sidecar on the queue: the rules refuse every new flow.
  EXPECT_FALSE(ConnectsOut(0));
  EXPECT_FALSE(ConnectsIn(0));
  auto cache = OpenIn(*pod_);
  ASSERT_TRUE(cache) << cache.error().ToString();
  cache_ = std::move(*cache);
  EXPECT_TRUE(stats_.verdict_cache.on.load());

  const auto peer = *base::IpAddress::Parse(a().peer);
  cache_->Remember(Direction::kOutbound, peer, PeerPort(0));
  cache_->Remember(Direction::kInbound, peer, PodPort(1));
  Flush();
  EXPECT_EQ(stats_.verdict_cache.remembered.load(), 2u);
  EXPECT_TRUE(ConnectsOut(0));
  EXPECT_TRUE(ConnectsOut(0));  // and again: an entry is not used up
  EXPECT_FALSE(ConnectsOut(1)) << "another port of the same peer";
  EXPECT_FALSE(ConnectsIn(0)) << "another port of the pod, from the same peer";
  EXPECT_TRUE(ConnectsIn(1));
  // The other direction of a remembered pair is not allowed by it.
  EXPECT_FALSE(Connects(*pod_, a().peer, PodPort(1)));

  // The hits, by direction, also counted as accepted and allowed connections.
  ASSERT_TRUE(RunUntil([&] {
    return stats_.verdict_cache.hits[static_cast<size_t>(Direction::kOutbound)].load() == 2 &&
           stats_.verdict_cache.hits[static_cast<size_t>(Direction::kInbound)].load() == 1;
  })) << "outbound hits "
      << stats_.verdict_cache.hits[1].load() << ", inbound " << stats_.verdict_cache.hits[0].load();
  EXPECT_EQ(stats_.outbound.accepted.load(), 2u);
  EXPECT_EQ(stats_.outbound.allowed.load(), 2u);
  EXPECT_EQ(stats_.inbound.allowed.load(), 1u);

  // A policy change: every set is empty when Clear returns.
  cache_->Clear();
  EXPECT_TRUE(cache_->open());
  EXPECT_EQ(stats_.verdict_cache.clears.load(), 1u);
  EXPECT_FALSE(ConnectsOut(0));
  EXPECT_FALSE(ConnectsIn(1));
}

TEST_P(VerdictCacheE2eTest, WhatWasRememberedButNotSentIsDroppedByAClear) {
  auto cache = OpenIn(*pod_);
  ASSERT_TRUE(cache) << cache.error().ToString();
  cache_ = std::move(*cache);
  cache_->Remember(Direction::kOutbound, *base::IpAddress::Parse(a().peer), PeerPort(0));
  // Judged by the old snapshot, not yet sent: must not land after the change.
  cache_->Clear();
  Flush();
  EXPECT_EQ(stats_.verdict_cache.remembered.load(), 0u);
  EXPECT_FALSE(ConnectsOut(0));
}

TEST_P(VerdictCacheE2eTest, TheTableGoesWithItsSocket) {
  auto cache = OpenIn(*pod_);
  ASSERT_TRUE(cache) << cache.error().ToString();
  cache_ = std::move(*cache);
  cache_->Remember(Direction::kOutbound, *base::IpAddress::Parse(a().peer), PeerPort(0));
  Flush();
  ASSERT_TRUE(ConnectsOut(0));
  // While it lives, the namespace has room for one: the table is its owner's, and a second
  // sidecar's socket may not touch it.
  auto second = OpenIn(*pod_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, EPERM) << second.error().ToString();
  // The socket closes (as when the sidecar dies): the kernel deletes the table at once.
  CloseCache();
  EXPECT_FALSE(stats_.verdict_cache.on.load());
  EXPECT_FALSE(ConnectsOut(0));
  // And a new one can be made.
  auto again = OpenIn(*pod_);
  ASSERT_TRUE(again) << again.error().ToString();
  cache_ = std::move(*again);
  EXPECT_FALSE(ConnectsOut(0)) << "a new table starts empty";
}

TEST_P(VerdictCacheE2eTest, AFullSetRefusesMoreAndSaysSo) {
  auto cache = OpenIn(*pod_, {.max_entries = 2, .ttl = std::chrono::seconds(60)});
  ASSERT_TRUE(cache) << cache.error().ToString();
  cache_ = std::move(*cache);
  const auto peer = *base::IpAddress::Parse(a().peer);
  cache_->Remember(Direction::kOutbound, peer, PeerPort(0));
  Flush();
  cache_->Remember(Direction::kOutbound, peer, PeerPort(1));
  Flush();
  cache_->Remember(Direction::kOutbound, peer, PeerPort(2));
  Flush();
  ASSERT_TRUE(RunUntil([&] { return stats_.verdict_cache.refused.load() == 1; }))
      << "refused " << stats_.verdict_cache.refused.load();
  EXPECT_EQ(stats_.verdict_cache.remembered.load(), 2u);
  EXPECT_TRUE(ConnectsOut(0));
  EXPECT_TRUE(ConnectsOut(1));
  EXPECT_FALSE(ConnectsOut(2)) << "past max_entries: judged in userspace, not cached";
  // The bound is per set: the inbound one still takes entries.
  cache_->Remember(Direction::kInbound, peer, PodPort(0));
  Flush();
  EXPECT_TRUE(ConnectsIn(0));
}

TEST_P(VerdictCacheE2eTest, OneLoopIterationSendsAtMostItsBoundInOneTransaction) {
  auto cache = OpenIn(*pod_);
  ASSERT_TRUE(cache) << cache.error().ToString();
  cache_ = std::move(*cache);
  const auto peer = *base::IpAddress::Parse(a().peer);
  // The bound, then one more, in one iteration: the first kMaxRememberedPerIteration go in one
  // transaction (server 0's port among them), the last (server 1's) is not kept.
  const size_t bound = VerdictCache::kMaxRememberedPerIteration;
  cache_->Remember(Direction::kOutbound, peer, PeerPort(0));
  for (size_t port = 20000; port < 20000 + bound - 1; ++port) {
    cache_->Remember(Direction::kOutbound, peer, static_cast<uint16_t>(port));
  }
  cache_->Remember(Direction::kOutbound, peer, PeerPort(1));
  Flush();
  EXPECT_EQ(stats_.verdict_cache.remembered.load(), bound);
  EXPECT_TRUE(ConnectsOut(0));
  EXPECT_FALSE(ConnectsOut(1));
  // Nothing came back refused.
  ASSERT_TRUE(RunUntil([&] { return stats_.verdict_cache.hits[1].load() == 1; }));
  EXPECT_EQ(stats_.verdict_cache.refused.load(), 0u);
}

TEST_P(VerdictCacheE2eTest, EntriesExpireAfterTheirTtl) {
  auto cache = OpenIn(*pod_, {.max_entries = 16, .ttl = std::chrono::seconds(1)});
  ASSERT_TRUE(cache) << cache.error().ToString();
  cache_ = std::move(*cache);
  cache_->Remember(Direction::kOutbound, *base::IpAddress::Parse(a().peer), PeerPort(0));
  Flush();
  EXPECT_TRUE(ConnectsOut(0));
  // The kernel's timeout: refused again within a few seconds (polled, each try a real SYN).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    refused = !Connects(*pod_, a().peer, PeerPort(0));
    int passes = 0;
    if (!refused) RunUntil([&] { return passes++ > 0; });  // one pass of the loop: ~50 ms
  }
  EXPECT_TRUE(refused) << "still cached 10 s after a 1 s ttl";
}

INSTANTIATE_TEST_SUITE_P(Families, VerdictCacheE2eTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "V6" : "V4"; });

}  // namespace
}  // namespace picket::e2e
