// A bench, not a test: allowed egress latency (connect + 1-byte echo + close through the proxy)
// idle and while one source (127.0.0.2) floods denied connections. Loopback, port 0, one
// worker. Prints p50/p99 in microseconds. Run: bazel run //test/proxy:flow_flood_bench
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "proxy/proxy.h"
#include "test/filters/fake_policy.h"
#include "test/proxy/test_net.h"

namespace picket::proxy {
namespace {

using Clock = std::chrono::steady_clock;

int ConnectFrom(const char* source, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source, &src.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src));
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::vector<double> Measure(uint16_t port, int n) {
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    int fd = ConnectFrom("127.0.0.1", port);
    char c = 'x';
    if (fd < 0 || !testing::SendAll(fd, &c, 1) || !testing::ReadExactly(fd, &c, 1)) {
      if (fd >= 0) close(fd);
      continue;
    }
    close(fd);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  return us;
}

void Print(const char* what, const std::vector<double>& us) {
  if (us.empty()) return;
  std::printf("%s: n=%zu p50=%.0fus p99=%.0fus max=%.0fus\n", what, us.size(), us[us.size() / 2],
              us[us.size() * 99 / 100], us.back());
}

int Main() {
  signal(SIGPIPE, SIG_IGN);
  testing::EchoServer echo;
  uint16_t denied_port = 9;  // the policy allows only the echo port
  config::Bootstrap b;
  b.node = {"default", "client", {"10.0.0.1"}, ""};
  b.listeners.outbound_port = 0;
  b.listeners.inbound_port = 0;
  b.listeners.ipv6 = false;
  b.admin.port = 0;
  const std::string log_path = "/tmp/flow_flood_bench-" + std::to_string(getpid()) + ".log";
  b.flow_log.path = log_path;
  b.flow_log.max_size_bytes = 1ull << 40;  // never rotated; removed at the end
  b.workers = 1;
  b.policy_file = "";
  testing::LoopThread loop;
  ProxyOptions options;
  options.handle_signals = false;
  options.original_destination = [&](int fd, bool) -> std::optional<filters::Endpoint> {
    sockaddr_in peer{};
    socklen_t len = sizeof(peer);
    getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
    bool flood = peer.sin_addr.s_addr == htonl(0x7f000002);
    return filters::Endpoint{*policy::IpAddress::Parse("127.0.0.1"),
                             flood ? denied_port : echo.port()};
  };
  Proxy proxy(std::move(b), loop.loop(), options);
  if (auto started = proxy.Start(); !started) return 1;
  loop.Start();
  loop.Call([&] {
    (void)proxy.ApplyPolicy(std::make_shared<testing::FakePolicy>(
        "v1", std::set<uint16_t>{echo.port()}, std::set<uint16_t>{}));
  });
  const uint16_t port = proxy.outbound_port();
  Print("idle", Measure(port, 1000));

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> floods{0};
  std::thread flood([&] {
    while (!stop.load()) {
      int fd = ConnectFrom("127.0.0.2", port);
      if (fd < 0) continue;
      char c;
      if (read(fd, &c, 1) < 0) {  // the reset
      }
      close(fd);
      floods.fetch_add(1);
    }
  });
  auto t0 = Clock::now();
  auto under = Measure(port, 1000);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  flood.join();
  Print("flood", under);
  std::printf("flood rate: %.0f denied/s; flow records written %llu, suppressed %llu\n",
              static_cast<double>(floods.load()) / secs,
              static_cast<unsigned long long>(proxy.stats().flow_records_written.load()),
              static_cast<unsigned long long>(proxy.stats().flow_records_suppressed.load()));
  loop.Call([&] { proxy.Shutdown(); });
  int rc = loop.StopAndClose();
  unlink(log_path.c_str());
  return rc;
}

}  // namespace
}  // namespace picket::proxy

int main() { return picket::proxy::Main(); }
