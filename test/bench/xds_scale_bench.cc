// test/bench/xds_scale_bench.cc — the control server at scale, over the real protocol and TLS.
//
// The parent process runs the control server (XdsSnapshot + XdsServer) for a synthetic cluster
// (test/bench/policy_cluster.h: --pods pods over 100 namespaces, --policies policies); a forked
// child runs --clients lightweight sidecars (XdsClient, each subscribing to the address map as
// a delta wildcard and to its own pod's policy, with a handler that only records what arrives).
// Measured: full compile; initial sync of every client; one pod add and one pod remove reaching
// the sidecars whose scope holds the pod (control/PROTOCOL.md §6.1: scoped pushes; the server
// says how many right after the change, and each client reports its own arrival, so the p99 is
// over the sidecars reached); bytes the server sent per churn; the server's CPU time and RSS (the
// server is alone in its process). `--shape all` adds, in every namespace, a policy allowing
// ingress from every pod, so every scope is the whole cluster (the worst case). The last line is
// one summary: initial_sync_s= peak_rss_mb= bytes_sent_mb= pod_add_p99_ms=
// pod_add_bytes_per_sidecar= (numbers only).
//
//   bazel run -c opt //test/bench:xds_scale_bench -- --pods 10000 --policies 1000 --clients 1000
//       [--shape default|all]
//
// The two processes talk over a pipe: the child reports "synced <monotonic ns>" and
// "churn <monotonic ns>"; both sides use CLOCK_MONOTONIC, so differences are meaningful.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
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
#include "net/frame.h"
#include "net/tls.h"
#include "net/tls_stream.h"
#include "net/xds_message.h"
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
  // "default": the synthetic cluster as it is; "all": plus, in every namespace, a policy that
  // selects every pod and allows ingress from every pod of every namespace, so every sidecar's
  // scope is the whole cluster (the worst case of scoped pushes).
  std::string shape = "default";
};

const std::string kMarker = "bench-new";

// ---------------------------------------------------------------- child: the sidecars

// A lightweight sidecar speaking the real protocol over real TLS: it subscribes exactly as
// proxy/xds does (delta wildcard AddressEntry + its own PodPolicy, node on the first request),
// answers every response with an ACK carrying its nonce (and SotW version), and answers
// keepalives — but it scans each frame instead of building a JSON tree, so one process can
// host a thousand of them and the figures are the server's. (proxy/xds's full client is what
// test/e2e and test/control exercise.)
struct Recorder {
  int clients = 0;
  int synced = 0;
  int out_fd = -1;
  void Report(const char* what) {
    const std::string line = std::string(what) + " " + std::to_string(NowNs()) + "\n";
    if (write(out_fd, line.data(), line.size()) < 0) std::perror("write");
  }
};

std::string Field(std::string_view frame, std::string_view key) {
  const std::string needle = "\"" + std::string(key) + "\":\"";
  const size_t at = frame.rfind(needle);
  if (at == std::string_view::npos) return {};
  const size_t begin = at + needle.size();
  return std::string(frame.substr(begin, frame.find('"', begin) - begin));
}

class LightSidecar : public net::TlsStream::Handler {
 public:
  LightSidecar(Recorder& recorder, net::Node node) : recorder_(recorder), node_(std::move(node)) {}

  bool Connect(uv_loop_t* loop, const sockaddr* address, std::shared_ptr<net::TlsContext> tls) {
    auto stream = net::TlsStream::Connect(loop, address, std::move(tls), "127.0.0.1", this);
    if (!stream) {
      std::cerr << stream.error().ToString() << "\n";
      return false;
    }
    stream_ = *stream;
    return true;
  }

  void OnTlsReady(net::TlsStream&) override {
    net::DeltaDiscoveryRequest addresses;
    addresses.node = node_;
    addresses.type_url = net::kAddressEntryType;
    addresses.resource_names_subscribe = {"*"};
    Send(addresses);
    net::DiscoveryRequest policy;
    policy.type_url = net::kPodPolicyType;
    policy.resource_names = {node_.ns + "/" + node_.pod};
    Send(policy);
  }

  void OnTlsData(net::TlsStream&, std::string_view data) override {
    decoder_.Feed(data);
    while (true) {
      auto frame = decoder_.Next();
      if (!frame || !frame->has_value()) return;
      HandleFrame(**frame);
    }
  }

  void Keepalive() { Send(net::Keepalive{}); }

  void OnTlsClosed(net::TlsStream&, const std::string& reason) override {
    stream_ = nullptr;
    std::cerr << "sidecar " << node_.pod << " closed: " << reason << "\n";
  }

 private:
  void HandleFrame(std::string_view frame) {
    const std::string nonce = Field(frame, "nonce");
    if (frame.starts_with("{\"delta_discovery_response\"")) {
      net::DeltaDiscoveryRequest ack;
      ack.type_url = net::kAddressEntryType;
      ack.response_nonce = nonce;
      Send(ack);
      const bool marker = frame.find(kMarker) != std::string_view::npos;
      if (!addresses_) {
        addresses_ = true;
        MaybeSynced();
      } else if (marker && frame.find("\"removed_resources\"") != std::string_view::npos) {
        recorder_.Report("removal");  // one line per sidecar reached: the parent counts them
      } else if (marker) {
        recorder_.Report("churn");
      }
    } else if (frame.starts_with("{\"discovery_response\"")) {
      net::DiscoveryRequest ack;
      ack.type_url = net::kPodPolicyType;
      ack.resource_names = {node_.ns + "/" + node_.pod};
      ack.version_info = Field(frame, "version_info");
      ack.response_nonce = nonce;
      Send(ack);
      if (!policy_) {
        policy_ = true;
        MaybeSynced();
      }
    }
  }

  void MaybeSynced() {
    if (addresses_ && policy_ && ++recorder_.synced == recorder_.clients) {
      recorder_.Report("synced");
    }
  }

  void Send(const net::Message& m) {
    if (stream_ != nullptr) (void)stream_->Write(net::EncodeFrame(net::EncodeMessage(m)));
  }

  Recorder& recorder_;
  net::Node node_;
  net::TlsStream* stream_ = nullptr;
  net::FrameDecoder decoder_;
  bool addresses_ = false;
  bool policy_ = false;
};

int RunSidecars(const Flags& flags, int in_fd, int out_fd, const control::PemPair& ca,
                const std::vector<std::pair<std::string, std::string>>& pods) {
  uint16_t port = 0;
  if (read(in_fd, &port, sizeof port) != sizeof port) return 1;
  uv_loop_t loop;
  uv_loop_init(&loop);
  Recorder recorder;
  recorder.clients = flags.clients;
  recorder.out_fd = out_fd;
  sockaddr_in address{};
  uv_ip4_addr("127.0.0.1", port, &address);
  std::vector<std::unique_ptr<LightSidecar>> sidecars;
  const int64_t t0 = NowNs();
  for (int i = 0; i < flags.clients; ++i) {
    const auto& [ns, name] = pods[i];
    auto leaf = control::MakeLeaf(
        ca, {name, {}, {}, {control::SpiffePodUri("cluster.local", ns, name)}, 1});
    auto tls = net::TlsContext::Create(net::TlsRole::kClient,
                                       {leaf->cert_pem, leaf->key_pem, ca.cert_pem});
    if (!tls) {
      std::cerr << tls.error().ToString() << "\n";
      return 1;
    }
    sidecars.push_back(std::make_unique<LightSidecar>(
        recorder, net::Node{"bench-" + std::to_string(i), ns, name, "bench"}));
    if (!sidecars.back()->Connect(&loop, reinterpret_cast<sockaddr*>(&address), *tls)) return 1;
  }
  std::fprintf(stderr, "child: %d sidecars connecting (%.0f ms, certificates included)\n",
               flags.clients, Ms(NowNs() - t0));
  // Keepalives every 15 s, as proxy/xds sends them.
  uv_timer_t keepalive;
  uv_timer_init(&loop, &keepalive);
  keepalive.data = &sidecars;
  uv_timer_start(
      &keepalive,
      [](uv_timer_t* t) {
        for (auto& s : *static_cast<std::vector<std::unique_ptr<LightSidecar>>*>(t->data)) {
          s->Keepalive();
        }
      },
      15000, 15000);
  // Runs until the parent kills this process.
  uv_run(&loop, UV_RUN_DEFAULT);
  return 0;
}

// ---------------------------------------------------------------- parent: the server

struct Parent {
  uv_loop_t* loop = nullptr;
  control::XdsServer* server = nullptr;
  control::XdsSnapshot* snapshot = nullptr;
  config::Cluster cluster;
  std::vector<std::pair<std::string, std::string>> client_pods;
  std::string buffer;
  int64_t t_start = 0, t_churn = 0, t_remove = 0;
  uint64_t bytes_before = 0;
  double cpu_before = 0;
  int phase = 0;
  // The summary line's figures.
  double initial_sync_s = 0;
  double bytes_sent_mb = 0;
  double pod_add_p99_ms = 0;
  long pod_add_bytes_per_sidecar = 0;
  // Churn: how many sidecars must see the change, and when each did.
  size_t expected = 0;
  std::vector<int64_t> arrivals;
};

const std::string kMarkerName = "ns-0/" + kMarker;

double Percentile(std::vector<int64_t> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]);
}

void StartRemoval(Parent& p);
void Finish(Parent& p);

// Scope share: what part of the address map each client's scope holds.
void PrintScopeShare(const Parent& p) {
  const size_t total = p.server->resource_count(net::kAddressEntryType);
  std::vector<int64_t> visible;
  for (const auto& [ns, name] : p.client_pods) {
    visible.push_back(
        static_cast<int64_t>(p.server->VisibleCount(net::kAddressEntryType, ns + "/" + name)));
  }
  std::printf(
      "scope per sidecar: min %.0f, median %.0f, max %.0f of %zu address entries "
      "(median %.1f%%)\n",
      Percentile(visible, 0), Percentile(visible, 0.5), Percentile(visible, 1.0), total,
      total == 0 ? 0.0 : 100.0 * Percentile(visible, 0.5) / static_cast<double>(total));
}

void EndChurn(Parent& p) {
  auto& stats = p.server->stats();
  const uint64_t bytes = stats.bytes_sent - p.bytes_before;
  p.pod_add_p99_ms = Ms(static_cast<int64_t>(Percentile(p.arrivals, 0.99)) - p.t_churn);
  if (p.arrivals.empty()) p.pod_add_p99_ms = 0;
  p.pod_add_bytes_per_sidecar = p.expected == 0 ? 0 : static_cast<long>(bytes / p.expected);
  std::printf(
      "pod add -> the %zu of %lu sidecars whose scope holds it: p50 %.1f ms, p99 %.1f ms; "
      "bytes sent %.1f KB (%ld B per sidecar reached)\n",
      p.expected, static_cast<unsigned long>(stats.streams_active),
      p.arrivals.empty() ? 0.0 : Ms(static_cast<int64_t>(Percentile(p.arrivals, 0.5)) - p.t_churn),
      p.pod_add_p99_ms, bytes / 1e3, p.pod_add_bytes_per_sidecar);
  StartRemoval(p);
}

void StartRemoval(Parent& p) {
  p.cluster.pods.pop_back();
  p.bytes_before = p.server->stats().bytes_sent;
  p.arrivals.clear();
  p.t_remove = NowNs();
  p.phase = 2;
  auto ok = p.snapshot->SetCluster(p.cluster, true);
  if (!ok) std::printf("pod remove failed\n");
  if (p.expected == 0) Finish(p);
}

void Finish(Parent& p) {
  auto& stats = p.server->stats();
  if (p.expected > 0) {
    std::printf(
        "pod remove -> %zu sidecars: p99 %.1f ms; bytes sent %.1f KB (%.0f B per sidecar)\n",
        p.expected, Ms(static_cast<int64_t>(Percentile(p.arrivals, 0.99)) - p.t_remove),
        (stats.bytes_sent - p.bytes_before) / 1e3,
        static_cast<double>(stats.bytes_sent - p.bytes_before) / p.expected);
  }
  std::printf(
      "server totals: CPU %.2f s, RSS %ld MB (peak %ld MB), %lu responses, %lu ACKs, "
      "%lu NACKs\n",
      CpuSeconds() - p.cpu_before, RssKb("VmRSS:") / 1024, RssKb("VmHWM:") / 1024,
      static_cast<unsigned long>(stats.responses_sent), static_cast<unsigned long>(stats.acks),
      static_cast<unsigned long>(stats.nacks));
  std::printf(
      "initial_sync_s=%.3f peak_rss_mb=%ld bytes_sent_mb=%.1f pod_add_p99_ms=%.1f "
      "pod_add_bytes_per_sidecar=%ld\n",
      p.initial_sync_s, RssKb("VmHWM:") / 1024, p.bytes_sent_mb, p.pod_add_p99_ms,
      p.pod_add_bytes_per_sidecar);
  std::fflush(stdout);
  p.server->Close(nullptr);
  p.phase = -1;
}

void Step(Parent& p, const std::string& event, int64_t at) {
  auto& stats = p.server->stats();
  if (event == "synced") {
    p.initial_sync_s = static_cast<double>(at - p.t_start) / 1e9;
    p.bytes_sent_mb = stats.bytes_sent / 1e6;
    std::printf(
        "initial sync: %d clients x (their scope of %zu address entries + own policy): %.0f ms; "
        "server sent %.1f MB, CPU %.2f s, RSS %ld MB\n",
        static_cast<int>(stats.streams_active), p.server->resource_count(net::kAddressEntryType),
        Ms(at - p.t_start), stats.bytes_sent / 1e6, CpuSeconds() - p.cpu_before,
        RssKb("VmRSS:") / 1024);
    PrintScopeShare(p);
    // One pod add: a replica of an existing pod (same labels, so an existing identity).
    config::Pod pod = MakePod(0, 0);
    pod.name = kMarker;
    pod.ips = {"10.250.0.1"};
    p.cluster.pods.push_back(pod);
    p.bytes_before = stats.bytes_sent;
    p.arrivals.clear();
    p.phase = 1;
    p.t_churn = NowNs();
    auto ok = p.snapshot->SetCluster(p.cluster, /*pods_only=*/true);
    if (!ok) std::printf("pod add failed: %s\n", ok.error()[0].ToString().c_str());
    // Pushes are decided inside SetCluster: who must see the pod is known now.
    p.expected = p.server->StreamsSeeing(net::kAddressEntryType, kMarkerName);
    std::printf("pod add: computed in %.2f ms\n", p.snapshot->stats().last_compute_ms);
    if (p.expected == 0) EndChurn(p);
  } else if (event == "churn" && p.phase == 1) {
    p.arrivals.push_back(at);
    if (p.arrivals.size() == p.expected) EndChurn(p);
  } else if (event == "removal" && p.phase == 2) {
    p.arrivals.push_back(at);
    if (p.arrivals.size() == p.expected) Finish(p);
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
    if (f == "--shape") flags.shape = argv[i + 1];
  }
  if (flags.shape != "default" && flags.shape != "all") {
    std::fprintf(stderr, "--shape: \"%s\" is not one of default, all\n", flags.shape.c_str());
    return 2;
  }
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);

  auto ca = control::MakeCa("bench CA", 1);
  auto server_cert = control::MakeLeaf(*ca, {"server", {"localhost"}, {"127.0.0.1"}, {}, 1});
  config::Cluster cluster = SyntheticCluster(100, flags.pods, flags.policies);
  if (flags.shape == "all") {
    for (const config::Namespace& ns : std::vector<config::Namespace>(cluster.namespaces)) {
      config::NetworkPolicy all;
      all.ns = ns.name;
      all.name = "allow-from-every-pod";
      all.policy_types_ingress = true;
      config::NetworkPolicyRule rule;
      config::NetworkPolicyPeer everyone;
      everyone.namespace_selector = config::LabelSelector{};
      rule.peers.push_back(everyone);
      all.ingress.push_back(rule);
      cluster.policies.push_back(std::move(all));
    }
  }
  // The clients' pods, spread evenly over the cluster; parent and child use the same list.
  std::vector<std::pair<std::string, std::string>> pods;
  for (int i = 0; i < flags.clients; ++i) {
    const config::Pod& p = cluster.pods[i * cluster.pods.size() / flags.clients];
    pods.emplace_back(p.ns, p.name);
  }
  std::printf("cluster: %zu pods, %zu policies, %zu namespaces, shape %s; %d sidecars\n",
              cluster.pods.size(), cluster.policies.size(), cluster.namespaces.size(),
              flags.shape.c_str(), flags.clients);

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
  options.scoped_types.insert(std::string(net::kAddressEntryType));  // as control/serve.cc
  auto tls = net::TlsContext::Create(net::TlsRole::kServer,
                                     {server_cert->cert_pem, server_cert->key_pem, ca->cert_pem});
  auto server = control::XdsServer::Create(&loop, *tls, options);
  if (!server) {
    std::cerr << server.error().ToString() << "\n";
    return 1;
  }
  control::XdsSnapshot snapshot(**server);
  auto compiled = snapshot.SetCluster(cluster);
  if (!compiled) {
    std::cerr << compiled.error()[0].ToString() << "\n";
    return 1;
  }
  std::printf(
      "full compile + encode: %.0f ms (%zu address entries: %.1f MB, %.0f B each; %zu pod "
      "policies: %.1f MB), server RSS %ld MB\n",
      snapshot.stats().last_compute_ms, (*server)->resource_count(net::kAddressEntryType),
      (*server)->encoded_bytes(net::kAddressEntryType) / 1e6,
      static_cast<double>((*server)->encoded_bytes(net::kAddressEntryType)) /
          std::max<size_t>(1, (*server)->resource_count(net::kAddressEntryType)),
      (*server)->resource_count(net::kPodPolicyType),
      (*server)->encoded_bytes(net::kPodPolicyType) / 1e6, RssKb("VmRSS:") / 1024);

  Parent parent;
  parent.loop = &loop;
  parent.server = server->get();
  parent.snapshot = &snapshot;
  parent.cluster = cluster;
  parent.client_pods = pods;
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
