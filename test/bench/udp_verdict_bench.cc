// New UDP flows through the sidecar's verdict path, against the same traffic with no capture, in
// the same run on the same machine (root; network namespaces). For each mode a fresh pair of
// namespaces ("client", "server") joined by veth:
//   none     picket-init --udp-sctp=false (TCP capture only, so conntrack is on, as in any
//            Picket pod), no sidecar: UDP not captured;
//   verdict  picket-init's rules in the client and picket-proxy as uid 1337 with ambient
//            CAP_NET_ADMIN, its policy allowing UDP to the server's ports.
// Measures, per mode: new flows/s (every datagram from a distinct 5-tuple, at most --window in
// flight), one-way first-packet latency (p50/p99, serial new flows, send → server receive, one
// clock), datagrams/s of one established flow (1200 B for --seconds, --rounds rounds alternating
// between the modes; the ratio is the median of the per-round ratios), and in verdict mode the
// sidecar's CPU per 1,000 new flows (/proc/PID/stat utime+stime over the flows/s phase).
//
//   bazel build //test/bench:udp_verdict_bench //proxy:picket-proxy //inject:picket-init
//     //control:picket-control     (one command line), then, as root, from the workspace:
//   bazel-bin/test/bench/udp_verdict_bench [--flows=N] [--window=N] [--latency-flows=N]
//     [--queues=N]   (verdict queues and sidecar workers; default 2, one per CPU here)
//     [--seconds=S] [--rounds=N]   (established flow: seconds per round, rounds per mode)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test/e2e/netns.h"

namespace picket::e2e {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string bin_dir = "bazel-bin";
  int flows = 60000;  // new flows in the flows/s phase
  int window = 512;   // in flight at most (the kernel queue holds 4096)
  int latency_flows = 3000;
  // Verdict queues (picket-init --nfqueue-count, udp_sctp.queues), one sidecar worker each: a
  // packet waits in its CPU's queue, read by a worker that runs on that CPU. 1: one queue, one
  // worker (the reader then runs wherever the scheduler puts it).
  int queues = 2;
  double seconds = 1.0;  // one established-flow round
  // Established-flow rounds per mode, alternating none, verdict, none, ... so that both modes
  // see the same machine load; the ratio is the median of the per-round ratios.
  int rounds = 7;
};

constexpr char kClientV4[] = "10.79.0.1";
constexpr char kServerV4[] = "10.79.0.2";
constexpr int kServerPorts = 4;  // × the client sockets' source ports = distinct 5-tuples
constexpr uint16_t kFirstPort = 9100;

sockaddr_in Addr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

int UdpIn(const Netns& ns, const char* ip, uint16_t port, bool nonblock) {
  return ns.InNetns([&]() -> int {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    int size = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    sockaddr_in a = Addr(ip, port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  });
}

long CpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close_paren + 2));
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stol(f);
    if (i == 15) stime = std::stol(f);
  }
  return utime + stime;
}

struct Result {
  double flows_per_s = 0;
  long flows_lost = 0;
  double p50_us = 0, p99_us = 0;
  double established_per_s = 0;
  double cpu_ms_per_1000 = -1;
};

class Bench {
 public:
  Bench(const Options& o, bool verdict) : o_(o), verdict_(verdict) {}

  bool SetUp() {
    client_ = std::make_unique<Netns>(UniqueName("pkbc"));
    server_ = std::make_unique<Netns>(UniqueName("pkbs"));
    std::string error;
    if (!client_->ok() || !server_->ok() ||
        !LinkNamespaces(*client_, kClientV4, "fd00:79::1", *server_, kServerV4, "fd00:79::2",
                        &error)) {
      std::fprintf(stderr, "namespaces: %s\n", error.c_str());
      return false;
    }
    if (!verdict_) {
      CommandResult r =
          client_->Exec({o_.bin_dir + "/inject/picket-init", "--ipv6=false", "--udp-sctp=false"});
      if (r.status != 0) std::fprintf(stderr, "picket-init: %s\n", r.output.c_str());
      return r.status == 0;
    }
    char tmpl[] = "/tmp/picket-udp-bench-XXXXXX";
    dir_ = mkdtemp(tmpl);
    chmod(dir_.c_str(), 0777);
    std::string manifests = R"(apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Pod
metadata: {namespace: default, name: client, labels: {app: client}}
spec: {containers: [{name: c, image: x}]}
status: {podIPs: [{ip: 10.79.0.1}]}
---
apiVersion: v1
kind: Pod
metadata: {namespace: default, name: server, labels: {app: server}}
spec: {containers: [{name: c, image: x}]}
status: {podIPs: [{ip: 10.79.0.2}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: default, name: client}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: server}}}]
    ports: [{protocol: UDP, port: 9100, endPort: 9200}]
)";
    WriteFile(dir_ + "/m.yaml", manifests);
    CommandResult r =
        RunCommand({o_.bin_dir + "/control/picket-control", "compile", "-f", dir_ + "/m.yaml",
                    "--pod", "default/client", "-o", dir_ + "/policy.json"});
    if (r.status != 0) {
      std::fprintf(stderr, "compile: %s\n", r.output.c_str());
      return false;
    }
    r = client_->Exec({o_.bin_dir + "/inject/picket-init", "--ipv6=false",
                       "--nfqueue-count=" + std::to_string(o_.queues)});
    if (r.status != 0) {
      std::fprintf(stderr, "picket-init: %s\n", r.output.c_str());
      return false;
    }
    std::filesystem::copy_file(o_.bin_dir + "/proxy/picket-proxy", dir_ + "/picket-proxy");
    chmod((dir_ + "/picket-proxy").c_str(), 0755);
    WriteFile(dir_ + "/b.yaml",
              "node: {namespace: default, name: client, ips: [10.79.0.1]}\n"
              "policy_file: " +
                  dir_ +
                  "/policy.json\n"
                  "flow_log: {path: " +
                  dir_ +
                  "/flows.log}\n"
                  "workers: " +
                  std::to_string(o_.queues) +
                  "\nudp_sctp: {enforce: true, queues: " + std::to_string(o_.queues) + "}\n");
    if (!proxy_.Start(
            *client_,
            {"setpriv", "--reuid=1337", "--regid=1337", "--clear-groups", "--inh-caps=+net_admin",
             "--ambient-caps=+net_admin", dir_ + "/picket-proxy", "--config", dir_ + "/b.yaml"},
            std::nullopt, dir_ + "/proxy.log")) {
      return false;
    }
    // Ready once a new flow passes.
    const int s = UdpIn(*server_, kServerV4, kFirstPort + 99, false);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    bool passed = false;
    while (!passed && Clock::now() < deadline) {
      const int c = UdpIn(*client_, kClientV4, 0, false);
      sockaddr_in to = Addr(kServerV4, kFirstPort + 99);
      sendto(c, "r", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      pollfd p{s, POLLIN, 0};
      passed = poll(&p, 1, 100) == 1;
      close(c);
    }
    close(s);
    if (!passed)
      std::fprintf(stderr, "sidecar not ready:\n%s\n", ReadFile(dir_ + "/proxy.log").c_str());
    return passed;
  }

  ~Bench() {
    if (proxy_.running()) {
      proxy_.Signal(SIGKILL);
      proxy_.Wait(std::chrono::seconds(5));
    }
    server_.reset();
    client_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // The new-flow phases; the established flow is measured by EstablishedRound, alternating.
  Result Run() {
    Result result;
    FlowsPerSecond(&result);
    Latency(&result);
    return result;
  }

  // Datagrams/s of one established flow for --seconds (1200 B; its first datagram, judged in
  // verdict mode, opens the flow before the clock starts).
  double EstablishedRound(uint16_t port) {
    const int server = UdpIn(*server_, kServerV4, port, true);
    const int client = UdpIn(*client_, kClientV4, 0, false);
    sockaddr_in to = Addr(kServerV4, port);
    std::string payload(1200, 'e');
    char buf[2048];
    sendto(client, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    pollfd p{server, POLLIN, 0};
    poll(&p, 1, 1000);
    while (recv(server, buf, sizeof buf, 0) > 0) {
    }
    long received = 0;
    const auto start = Clock::now();
    const auto stop = start + std::chrono::duration<double>(o_.seconds);
    while (Clock::now() < stop) {
      for (int i = 0; i < 32; ++i) {
        sendto(client, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
               sizeof to);
      }
      while (recv(server, buf, sizeof buf, 0) > 0) ++received;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    close(server);
    close(client);
    return received / secs;
  }

 private:
  void FlowsPerSecond(Result* result) {
    std::vector<int> servers;
    for (int i = 0; i < kServerPorts; ++i)
      servers.push_back(UdpIn(*server_, kServerV4, kFirstPort + i, true));
    const int sockets = (o_.flows + kServerPorts - 1) / kServerPorts;
    std::vector<int> clients;
    for (int i = 0; i < sockets; ++i) clients.push_back(UdpIn(*client_, kClientV4, 0, true));
    const long ticks_before = verdict_ ? CpuTicks(proxy_.pid()) : 0;
    long sent = 0, received = 0;
    char buf[64];
    const auto start = Clock::now();
    auto drain = [&] {
      for (int s : servers) {
        while (recv(s, buf, sizeof buf, 0) > 0) ++received;
      }
    };
    for (int port = 0; port < kServerPorts; ++port) {
      sockaddr_in to = Addr(kServerV4, static_cast<uint16_t>(kFirstPort + port));
      for (int c = 0; c < sockets && sent < o_.flows; ++c) {
        while (sent - received >= o_.window) {
          drain();
          if (Clock::now() - start > std::chrono::seconds(60)) break;
        }
        sendto(clients[c], "f", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        ++sent;
      }
    }
    // The stragglers: wait until quiet for 200 ms.
    auto last = Clock::now();
    auto end = last;
    while (Clock::now() - last < std::chrono::milliseconds(200)) {
      const long before = received;
      drain();
      if (received != before) last = end = Clock::now();
    }
    const double secs = std::chrono::duration<double>(end - start).count();
    result->flows_per_s = received / secs;
    result->flows_lost = sent - received;
    if (verdict_) {
      const long ticks = CpuTicks(proxy_.pid()) - ticks_before;
      result->cpu_ms_per_1000 = ticks * 1000.0 / sysconf(_SC_CLK_TCK) / (received / 1000.0);
    }
    for (int fd : servers) close(fd);
    for (int fd : clients) close(fd);
  }

  void Latency(Result* result) {
    const int server = UdpIn(*server_, kServerV4, kFirstPort + 50, false);
    std::vector<double> us;
    sockaddr_in to = Addr(kServerV4, kFirstPort + 50);
    char buf[64];
    for (int i = 0; i < o_.latency_flows; ++i) {
      const int c = UdpIn(*client_, kClientV4, 0, false);  // a new source port: a new flow
      const auto t0 = Clock::now();
      sendto(c, "l", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      pollfd p{server, POLLIN, 0};
      if (poll(&p, 1, 1000) == 1 && recv(server, buf, sizeof buf, 0) > 0) {
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      close(c);
    }
    close(server);
    std::sort(us.begin(), us.end());
    if (!us.empty()) {
      result->p50_us = us[us.size() / 2];
      result->p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
    }
  }

  const Options& o_;
  const bool verdict_;
  std::unique_ptr<Netns> client_, server_;
  std::string dir_;
  Child proxy_;
};

}  // namespace
}  // namespace picket::e2e

int main(int argc, char** argv) {
  using picket::e2e::Bench;
  picket::e2e::Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const std::string prefix = std::string(name) + "=";
      return a.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("--bin-dir"))
      o.bin_dir = v;
    else if (const char* v = value("--flows"))
      o.flows = std::atoi(v);
    else if (const char* v = value("--window"))
      o.window = std::atoi(v);
    else if (const char* v = value("--latency-flows"))
      o.latency_flows = std::atoi(v);
    else if (const char* v = value("--seconds"))
      o.seconds = std::atof(v);
    else if (const char* v = value("--rounds"))
      o.rounds = std::max(1, std::min(40, std::atoi(v)));  // ports 9160.. stay in the policy
    else if (const char* v = value("--queues"))
      o.queues = std::max(1, std::min(64, std::atoi(v)));
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "udp_verdict_bench: run as root (namespaces, iptables, NFQUEUE)\n");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  rlimit nofile{200000, 200000};
  setrlimit(RLIMIT_NOFILE, &nofile);
  // Both setups live side by side (own namespaces each): the new-flow phases run per mode, then
  // the established flow alternates between them.
  picket::e2e::Result results[2];
  std::unique_ptr<Bench> benches[2];
  for (bool verdict : {false, true}) {
    benches[verdict] = std::make_unique<Bench>(o, verdict);
    if (!benches[verdict]->SetUp()) return 1;
    results[verdict] = benches[verdict]->Run();
  }
  std::vector<double> established[2], ratios;
  for (int round = 0; round < o.rounds; ++round) {
    const uint16_t port = static_cast<uint16_t>(picket::e2e::kFirstPort + 60 + round);
    for (bool verdict : {false, true})
      established[verdict].push_back(benches[verdict]->EstablishedRound(port));
    ratios.push_back(established[1].back() / established[0].back());
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  for (bool verdict : {false, true})
    results[verdict].established_per_s = median(established[verdict]);
  std::printf("%-9s %14s %8s %10s %10s %16s %14s\n", "mode", "new_flows/s", "lost", "p50_us",
              "p99_us", "established_pps", "cpu_ms/1k");
  for (bool verdict : {false, true}) {
    const auto& r = results[verdict];
    std::printf("%-9s %14.0f %8ld %10.1f %10.1f %16.0f %14.2f\n", verdict ? "verdict" : "none",
                r.flows_per_s, r.flows_lost, r.p50_us, r.p99_us, r.established_per_s,
                r.cpu_ms_per_1000);
  }
  std::printf("established verdict/none per round:");
  for (double r : ratios) std::printf(" %.3f", r);
  std::printf("\n");
  std::printf("added first-packet latency: p50 %.1f us, p99 %.1f us; established ratio %.3f\n",
              results[1].p50_us - results[0].p50_us, results[1].p99_us - results[0].p99_us,
              median(ratios));
  return 0;
}
