// test/bench/xds_scale_bench.cc — the control server at scale, over the real protocol and TLS.
//
// The parent process runs the control server (XdsSnapshot + XdsServer) for a synthetic cluster
// (test/bench/policy_cluster.h: --pods pods over 100 namespaces, --policies policies); a forked
// child runs --clients lightweight sidecars (XdsClient, each subscribing to the address map as
// a delta wildcard and to its own pod's policy, with a handler that only records what arrives).
// Measured: full compile; initial sync of every client; one pod add and one pod remove reaching
// every client (all are affected: every sidecar holds the address map); bytes the server sent
// per churn; the server's CPU time and RSS (the server is alone in its process).
//
//   bazel run -c opt //test/bench:xds_scale_bench -- --pods 10000 --policies 1000 --clients 1000
//
// The two processes talk over a pipe: the child reports "synced <monotonic ns>" and
// "churn <monotonic ns>"; both sides use CLOCK_MONOTONIC, so differences are meaningful.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "control/certs.h"
#include "control/xds_server.h"
#include "control/xds_snapshot.h"
#include "net/tls.h"
#include "net/xds_message.h"
#include "proxy/xds/xds_client.h"
#include "test/bench/policy_cluster.h"

namespace picket::bench {
namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

long RssKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(std::strlen(field)));
  }
  return -1;
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Flags {
  int pods = 10000;
  int policies = 1000;
  int clients = 1000;
};

const std::string kMarker = "bench-new";

// ---------------------------------------------------------------- child: the sidecars

struct Sidecars : proxy::xds::ResourceHandler {
  int expected_entries = 0;
  int clients = 0;
  int synced = 0;
  int churn_seen = 0;
  int removal_seen = 0;
  int out_fd = -1;
  std::vector<int> entries;  // per client, address entries held (counts only)
  std::vector<bool> has_policy;
  std::vector<bool> done;
  int current = 0;  // which client the next callback is for (set by the wrapper below)

  std::expected<void, std::string> OnResources(const std::string& type_url,
                                               const std::vector<net::Resource>& resources,
                                               const std::vector<std::string>& removed,
                                               bool) override {
    const int c = current;
    if (type_url == net::kPodPolicyType) {
      has_policy[c] = has_policy[c] || !resources.empty();
    } else {
      entries[c] += static_cast<int>(resources.size()) - static_cast<int>(removed.size());
      for (const auto& r : resources) {
        if (r.name.ends_with(kMarker) && ++churn_seen == clients) Report("churn");
      }
      for (const auto& n : removed) {
        if (n.ends_with(kMarker) && ++removal_seen == clients) Report("removal");
      }
    }
    if (!done[c] && has_policy[c] && entries[c] >= expected_entries) {
      done[c] = true;
      if (++synced == clients) Report("synced");
    }
    return {};
  }

  void Report(const char* what) {
    const std::string line = std::string(what) + " " + std::to_string(NowNs()) + "\n";
    if (write(out_fd, line.data(), line.size()) < 0) std::perror("write");
  }
};

// Routes one client's callbacks to the shared recorder with its index.
struct ClientHandler : proxy::xds::ResourceHandler {
  Sidecars* shared;
  int index;
  std::expected<void, std::string> OnResources(const std::string& type_url,
                                               const std::vector<net::Resource>& resources,
                                               const std::vector<std::string>& removed,
                                               bool sotw) override {
    shared->current = index;
    return shared->OnResources(type_url, resources, removed, sotw);
  }
};

int RunSidecars(const Flags& flags, int in_fd, int out_fd, const control::PemPair& ca,
                const std::vector<std::pair<std::string, std::string>>& pods) {
  uint16_t port = 0;
  if (read(in_fd, &port, sizeof port) != sizeof port) return 1;
  uv_loop_t loop;
  uv_loop_init(&loop);
  Sidecars shared;
  shared.expected_entries = static_cast<int>(pods.size());
  shared.clients = flags.clients;
  shared.out_fd = out_fd;
  shared.entries.assign(flags.clients, 0);
  shared.has_policy.assign(flags.clients, false);
  shared.done.assign(flags.clients, false);
  std::vector<ClientHandler> handlers(flags.clients);
  std::vector<std::unique_ptr<proxy::xds::XdsClient>> clients;
  const int64_t t0 = NowNs();
  for (int i = 0; i < flags.clients; ++i) {
    const auto& [ns, name] = pods[i * pods.size() / flags.clients];
    auto leaf = control::MakeLeaf(
        ca, {name, {}, {}, {control::SpiffePodUri("cluster.local", ns, name)}, 1});
    auto tls = net::TlsContext::Create(net::TlsRole::kClient,
                                       {leaf->cert_pem, leaf->key_pem, ca.cert_pem});
    if (!tls) {
      std::cerr << tls.error() << "\n";
      return 1;
    }
    handlers[i].shared = &shared;
    handlers[i].index = i;
    proxy::xds::XdsClientOptions o;
    o.server = "127.0.0.1:" + std::to_string(port);
    o.tls = *tls;
    o.node = {"bench-" + std::to_string(i), ns, name, "bench"};
    o.subscriptions = {{std::string(net::kAddressEntryType), true, {}},
                       {std::string(net::kPodPolicyType), false, {ns + "/" + name}}};
    o.connect_timeout_ms = 60000;
    auto client = proxy::xds::XdsClient::Create(&loop, std::move(o), &handlers[i]);
    if (!client) {
      std::cerr << client.error() << "\n";
      return 1;
    }
    clients.push_back(std::move(*client));
    clients.back()->Start();
  }
  std::fprintf(stderr, "child: %d clients created in %.0f ms (certificates included)\n",
               flags.clients, Ms(NowNs() - t0));
  // Runs until the parent closes its end of the pipe (then this process is killed).
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}

// ---------------------------------------------------------------- parent: the server

struct Parent {
  uv_loop_t* loop = nullptr;
  control::XdsServer* server = nullptr;
  control::XdsSnapshot* snapshot = nullptr;
  config::Cluster cluster;
  std::string buffer;
  int64_t t_start = 0, t_churn = 0, t_remove = 0;
  uint64_t bytes_before = 0;
  double cpu_before = 0;
  int phase = 0;
};

void Step(Parent& p, const std::string& event, int64_t at) {
  auto& stats = p.server->stats();
  if (event == "synced") {
    std::printf(
        "initial sync: %d clients x (%zu address entries + own policy): %.0f ms; "
        "server sent %.1f MB, CPU %.2f s, RSS %ld MB\n",
        static_cast<int>(stats.streams_active), p.server->resource_count(net::kAddressEntryType),
        Ms(at - p.t_start), stats.bytes_sent / 1e6, CpuSeconds() - p.cpu_before,
        RssKb("VmRSS:") / 1024);
    // One pod add: a replica of an existing pod (same labels, so an existing identity).
    config::Pod pod = MakePod(0, 0);
    pod.name = kMarker;
    pod.ips = {"10.250.0.1"};
    p.cluster.pods.push_back(pod);
    p.bytes_before = stats.bytes_sent;
    p.t_churn = NowNs();
    auto ok = p.snapshot->SetCluster(p.cluster, /*pods_only=*/true);
    if (!ok) std::printf("pod add failed: %s\n", ok.error()[0].ToString().c_str());
    std::printf("pod add: computed in %.2f ms\n", p.snapshot->stats().last_compute_ms);
  } else if (event == "churn") {
    std::printf("pod add -> every sidecar: %.1f ms; bytes sent %.1f KB (%.0f B per sidecar)\n",
                Ms(at - p.t_churn), (stats.bytes_sent - p.bytes_before) / 1e3,
                static_cast<double>(stats.bytes_sent - p.bytes_before) / stats.streams_active);
    p.cluster.pods.pop_back();
    p.bytes_before = stats.bytes_sent;
    p.t_remove = NowNs();
    auto ok = p.snapshot->SetCluster(p.cluster, true);
    if (!ok) std::printf("pod remove failed\n");
  } else if (event == "removal") {
    std::printf("pod remove -> every sidecar: %.1f ms; bytes sent %.1f KB (%.0f B per sidecar)\n",
                Ms(at - p.t_remove), (stats.bytes_sent - p.bytes_before) / 1e3,
                static_cast<double>(stats.bytes_sent - p.bytes_before) / stats.streams_active);
    std::printf(
        "server totals: CPU %.2f s, RSS %ld MB (peak %ld MB), %lu responses, %lu ACKs, "
        "%lu NACKs\n",
        CpuSeconds() - p.cpu_before, RssKb("VmRSS:") / 1024, RssKb("VmHWM:") / 1024,
        static_cast<unsigned long>(stats.responses_sent), static_cast<unsigned long>(stats.acks),
        static_cast<unsigned long>(stats.nacks));
    p.server->Close(nullptr);
    p.phase = -1;
  }
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (f == "--pods") flags.pods = v;
    if (f == "--policies") flags.policies = v;
    if (f == "--clients") flags.clients = v;
  }
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);

  auto ca = control::MakeCa("bench CA", 1);
  auto server_cert = control::MakeLeaf(*ca, {"server", {"localhost"}, {"127.0.0.1"}, {}, 1});
  config::Cluster cluster = SyntheticCluster(100, flags.pods, flags.policies);
  std::vector<std::pair<std::string, std::string>> pods;
  for (const auto& p : cluster.pods) pods.emplace_back(p.ns, p.name);
  std::printf("cluster: %zu pods, %zu policies, %zu namespaces; %d sidecars\n", cluster.pods.size(),
              cluster.policies.size(), cluster.namespaces.size(), flags.clients);

  std::fflush(stdout);
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 1;
  const pid_t child = fork();
  if (child == 0) {
    close(to_child[1]);
    close(from_child[0]);
    _exit(RunSidecars(flags, to_child[0], from_child[1], *ca, pods));
  }
  close(to_child[0]);
  close(from_child[1]);

  const double cpu0 = CpuSeconds();
  uv_loop_t loop;
  uv_loop_init(&loop);
  control::XdsServerOptions options;
  options.own_pod_only_types.insert(std::string(net::kPodPolicyType));
  auto tls = net::TlsContext::Create(net::TlsRole::kServer,
                                     {server_cert->cert_pem, server_cert->key_pem, ca->cert_pem});
  auto server = control::XdsServer::Create(&loop, *tls, options);
  if (!server) {
    std::cerr << server.error() << "\n";
    return 1;
  }
  control::XdsSnapshot snapshot(**server);
  auto compiled = snapshot.SetCluster(cluster);
  if (!compiled) {
    std::cerr << compiled.error()[0].ToString() << "\n";
    return 1;
  }
  std::printf(
      "full compile + encode: %.0f ms (%zu address entries, %zu pod policies), server "
      "RSS %ld MB\n",
      snapshot.stats().last_compute_ms, (*server)->resource_count(net::kAddressEntryType),
      (*server)->resource_count(net::kPodPolicyType), RssKb("VmRSS:") / 1024);

  Parent parent;
  parent.loop = &loop;
  parent.server = server->get();
  parent.snapshot = &snapshot;
  parent.cluster = cluster;
  parent.cpu_before = cpu0;
  parent.t_start = NowNs();
  const uint16_t port = (*server)->port();
  if (write(to_child[1], &port, sizeof port) != sizeof port) return 1;

  uv_poll_t poll;
  uv_poll_init(&loop, &poll, from_child[0]);
  poll.data = &parent;
  uv_poll_start(&poll, UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* p = static_cast<Parent*>(h->data);
    char buf[256];
    const ssize_t n = read(h->io_watcher.fd, buf, sizeof buf);
    if (n <= 0) {
      uv_poll_stop(h);
      uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
      p->server->Close(nullptr);
      return;
    }
    p->buffer.append(buf, n);
    size_t nl;
    while ((nl = p->buffer.find('\n')) != std::string::npos) {
      const std::string line = p->buffer.substr(0, nl);
      p->buffer.erase(0, nl + 1);
      const size_t sp = line.find(' ');
      Step(*p, line.substr(0, sp), std::stoll(line.substr(sp + 1)));
    }
    if (p->phase < 0) {
      uv_poll_stop(h);
      uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
    }
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&poll))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  server->reset();
  uv_loop_close(&loop);
  return 0;
}

}  // namespace
}  // namespace picket::bench

int main(int argc, char** argv) { return picket::bench::Main(argc, argv); }
