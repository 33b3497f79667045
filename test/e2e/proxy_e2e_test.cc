// picket-proxy end to end: two pods as network namespaces joined by veth, the capture rules a
// sidecar needs installed in the client pod, the real binary running there as uid 1337 with a
// policy file compiled by `picket-control compile` from small manifests. Each case runs on IPv4
// and on IPv6, and in both capture modes: relay (iptables and ip6tables: nat OUTPUT → 15001
// except uid 1337, nat PREROUTING → 15006) and verdict (the real `picket-init --capture=verdict`:
// each new TCP flow's first packet judged from the verdict queue, the sidecar with
// CAP_NET_ADMIN; the kernel carries allowed connections, so the app sees its real peer). The
// expectations are the same but where a verdict cannot look like a relay: a denied connection is
// refused at connect() (the kernel's reset answers the SYN) instead of reset after it, a revoked
// one fails with ECONNABORTED (its socket aborted; the peer gets the reset), and at SIGTERM
// there is nothing to drain. Assertions are on flow records (/flows), counters
// (/stats/prometheus) and bytes — never on log text. Needs root; fails loudly without it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "test/e2e/netns.h"
#include "test/proxy/hubble_schema.h"

namespace picket::e2e {
namespace {

constexpr uid_t kProxyUid = 1337;
constexpr uint16_t kAllowedOut = 7000;  // server pod port the client may reach
constexpr uint16_t kDeniedOut = 7001;
constexpr uint16_t kAllowedIn = 8000;  // client pod port the server may reach
constexpr uint16_t kDeniedIn = 8001;
constexpr size_t kBulk = 64 << 20;

struct Family {
  bool v6;
  const char* client_ip;
  const char* server_ip;
  const char* loopback;
  const char* node_ip;  // the client pod's node (status.hostIPs), added in the server namespace
};
const Family kV4{false, "10.77.0.1", "10.77.0.2", "127.0.0.1", "10.77.0.254"};
const Family kV6{true, "fd00:77::1", "fd00:77::2", "::1", "fd00:77::fe"};

std::string Runfile(const std::string& path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  return std::string(dir ? dir : ".") + "/picket/" + path;
}

// A deterministic byte stream and its FNV-1a hash, produced and checked chunk by chunk.
class Stream {
 public:
  explicit Stream(uint64_t seed) : state_(seed | 1) {}
  void Fill(char* data, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      state_ ^= state_ << 13;
      state_ ^= state_ >> 7;
      state_ ^= state_ << 17;
      data[i] = static_cast<char>(state_);
    }
  }

 private:
  uint64_t state_;
};

uint64_t Fnv(uint64_t h, const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(data[i])) * 0x100000001b3ull;
  return h;
}
constexpr uint64_t kFnvInit = 0xcbf29ce484222325ull;

uint64_t StreamHash(uint64_t seed, size_t n) {
  Stream s(seed);
  std::vector<char> buf(1 << 16);
  uint64_t h = kFnvInit;
  while (n > 0) {
    size_t k = std::min(n, buf.size());
    s.Fill(buf.data(), k);
    h = Fnv(h, buf.data(), k);
    n -= k;
  }
  return h;
}

bool SendStream(int fd, uint64_t seed, size_t n) {
  Stream s(seed);
  std::vector<char> buf(1 << 16);
  while (n > 0) {
    size_t k = std::min(n, buf.size());
    s.Fill(buf.data(), k);
    for (size_t off = 0; off < k;) {
      ssize_t w = send(fd, buf.data() + off, k - off, MSG_NOSIGNAL);
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    n -= k;
  }
  return true;
}

// Reads to EOF; the byte count and hash, and the errno of a failed read (0 at EOF).
struct Received {
  size_t bytes = 0;
  uint64_t hash = kFnvInit;
  int error = 0;
};
Received ReceiveAll(int fd) {
  Received r;
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n == 0) return r;
    if (n < 0) {
      r.error = errno;
      return r;
    }
    r.hash = Fnv(r.hash, buf.data(), static_cast<size_t>(n));
    r.bytes += static_cast<size_t>(n);
  }
}

// "addr port" of a socket address (IPv4-mapped IPv6 as IPv4).
std::string AddressAndPort(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    return std::string(text) + " " + std::to_string(ntohs(a.sin_port));
  }
  const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
  inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text);
  return std::string(text) + " " + std::to_string(ntohs(a.sin6_port));
}

std::string LocalAddressAndPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return AddressAndPort(ss);
}

// An application server in a pod: per connection, the first byte picks the mode —
// 'E': echo until EOF; 'S': sink until EOF (hash what came), then send kBulk bytes of stream 2
// while the client's direction stays half-closed, then close.
class AppServer {
 public:
  AppServer(const Netns& ns, const std::string& addr, uint16_t port) {
    fd_ = ListenIn(ns, addr, port);
    if (fd_ >= 0) thread_ = std::thread([this] { Serve(); });
  }
  ~AppServer() {
    stop_ = true;
    if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
    for (auto& t : handlers_) t.join();
  }
  bool ok() const { return fd_ >= 0; }
  int accepted() const { return accepted_.load(); }
  // The last sink's result.
  Received sunk() {
    std::lock_guard<std::mutex> lock(mu_);
    return sunk_;
  }
  // The peer address and port of the last connection accepted ("addr port").
  std::string last_peer() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_peer_;
  }

 private:
  void Serve() {
    while (!stop_) {
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      int c = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
      if (c < 0) continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_peer_ = AddressAndPort(peer);
      }
      ++accepted_;
      handlers_.emplace_back([this, c] { Handle(c); });
    }
  }
  void Handle(int c) {
    timeval tv{20, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char mode = 0;
    if (recv(c, &mode, 1, 0) == 1 && mode == 'S') {
      Received r = ReceiveAll(c);
      {
        std::lock_guard<std::mutex> lock(mu_);
        sunk_ = r;
      }
      SendStream(c, 2, kBulk);
    } else if (mode == 'E') {
      char buf[65536];
      for (;;) {
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0 || send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
      }
    }
    shutdown(c, SHUT_WR);
    char drain[4096];
    while (recv(c, drain, sizeof(drain), 0) > 0) {
    }
    close(c);
  }

  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
  std::vector<std::thread> handlers_;
  std::mutex mu_;
  Received sunk_;
  std::string last_peer_;
};

const char* kManifestHead = R"(apiVersion: v1
kind: Namespace
metadata: {name: default}
---
apiVersion: v1
kind: Pod
metadata: {namespace: default, name: client, labels: {app: client}}
spec:
  containers: [{name: c, image: x}]
status:
  podIPs: [{ip: 10.77.0.1}, {ip: "fd00:77::1"}]
  hostIPs: [{ip: 10.77.0.254}, {ip: "fd00:77::fe"}]
---
apiVersion: v1
kind: Pod
metadata: {namespace: default, name: server, labels: {app: server}}
spec:
  containers: [{name: c, image: x}]
status: {podIPs: [{ip: 10.77.0.2}, {ip: "fd00:77::2"}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {namespace: default, name: client-policy}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress, Ingress]
)";

enum class Mode { kRelay, kVerdict };

class ProxyE2eTest : public ::testing::TestWithParam<std::tuple<Family, Mode>> {
 protected:
  static void TearDownTestSuite() {
    // The Hubble check in TearDown must have seen flows, or it checked nothing (a whole run).
    if (::testing::GTEST_FLAG(filter) == "*") {
      EXPECT_GT(flows_checked_, 10u);
    }
  }
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "picket-proxy e2e tests create network namespaces and iptables "
                                "rules: run them as root (they do not skip)";
    signal(SIGPIPE, SIG_IGN);
    const Family& f = family();
    char dir_template[] = "/tmp/picket-proxy-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    chmod(dir_.c_str(), 0777);  // uid 1337 writes its flow log here

    client_ = std::make_unique<Netns>(UniqueName("pxc"));
    server_ = std::make_unique<Netns>(UniqueName("pxs"));
    ASSERT_TRUE(client_->ok() && server_->ok());
    std::string error;
    ASSERT_TRUE(LinkNamespaces(*client_, kV4.client_ip, kV6.client_ip, *server_, kV4.server_ip,
                               kV6.server_ip, &error))
        << error;
    if (verdict()) {
      // The real capture rules of verdict mode (with the passthrough source on lo), with Service
      // ranges given: pod-to-pod TCP is not connection-tracked (the conformance test runs the
      // tracked form).
      CommandResult r = client_->Exec({Runfile("inject/picket-init"), "--capture=verdict",
                                       "--service-cidrs=10.96.0.0/12,fd00:96::/112"});
      ASSERT_EQ(r.status, 0) << r.output;
    } else {
      // The inbound passthrough source on lo (as picket-init's environment provides).
      ASSERT_EQ(client_->Exec({"ip", "-6", "addr", "add", "::7/128", "dev", "lo"}).status, 0);
      for (const char* tool : {"iptables", "ip6tables"}) {
        for (std::vector<std::string> rule : std::vector<std::vector<std::string>>{
                 {"-A", "OUTPUT", "-p", "tcp", "-m", "owner", "--uid-owner", "1337", "-j",
                  "RETURN"},
                 {"-A", "OUTPUT", "-p", "tcp", "-o", "lo", "-j", "RETURN"},
                 {"-A", "OUTPUT", "-p", "tcp", "-j", "REDIRECT", "--to-ports", "15001"},
                 {"-A", "PREROUTING", "-p", "tcp", "-j", "REDIRECT", "--to-ports", "15006"}}) {
          rule.insert(rule.begin(), {tool, "-w", "-t", "nat"});
          CommandResult r = client_->Exec(rule);
          ASSERT_EQ(r.status, 0) << tool << ": " << r.output;
        }
      }
    }
    // Apps: in the server pod (reached by the client's outbound connections) and in the client
    // pod (reached by inbound connections through 15006).
    apps_.push_back(std::make_unique<AppServer>(*server_, f.server_ip, kAllowedOut));
    apps_.push_back(std::make_unique<AppServer>(*server_, f.server_ip, kDeniedOut));
    apps_.push_back(std::make_unique<AppServer>(*client_, f.client_ip, kAllowedIn));
    apps_.push_back(std::make_unique<AppServer>(*client_, f.client_ip, kDeniedIn));
    for (auto& app : apps_) ASSERT_TRUE(app->ok());

    // uid 1337 cannot read Bazel's runfiles under /root: run a copy.
    proxy_bin_ = dir_ + "/picket-proxy";
    std::filesystem::copy_file(Runfile("proxy/picket-proxy"), proxy_bin_);
    chmod(proxy_bin_.c_str(), 0755);
    policy_file_ = dir_ + "/policy.json";
    flow_log_ = dir_ + "/flows.log";
  }

  void TearDown() override {
    if (proxy_.running()) {
      proxy_.Signal(SIGKILL);
      proxy_.Wait(std::chrono::seconds(5));
    }
    apps_.clear();
    if (!dir_.empty()) {
      // Every flow the real picket-proxy wrote is a Hubble flow (flow.proto, protojson names);
      // a line cut by the SIGKILL above is not one the proxy finished, so only whole lines.
      std::string flows = ReadFile(flow_log_);
      flows.erase(flows.rfind('\n') == std::string::npos ? 0 : flows.rfind('\n') + 1);
      size_t checked = 0;
      for (const std::string& e : picket::testing::CheckHubbleFlowLog(flows, &checked)) {
        ADD_FAILURE() << flow_log_ << ": " << e;
      }
      flows_checked_ += checked;
    }
    if (HasFailure() && !dir_.empty()) {
      std::fprintf(stderr, "--- proxy log ---\n%s\n--- flows ---\n%s\n",
                   ReadFile(dir_ + "/proxy.log").c_str(), ReadFile(flow_log_).c_str());
    }
    server_.reset();
    client_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Compiles the client's policy from manifests that allow `egress_port` to the server and
  // `ingress_port` from it, into the policy file (atomically: write, then rename).
  void WritePolicy(uint16_t egress_port, uint16_t ingress_port) {
    std::string manifests = std::string(kManifestHead) +
                            "  egress:\n  - to: [{podSelector: {matchLabels: {app: server}}}]\n"
                            "    ports: [{port: " +
                            std::to_string(egress_port) +
                            "}]\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: "
                            "server}}}]\n    ports: [{port: " +
                            std::to_string(ingress_port) + "}]\n";
    ASSERT_TRUE(WriteFile(dir_ + "/manifests.yaml", manifests));
    CommandResult r =
        RunCommand({Runfile("control/picket-control"), "compile", "-f", dir_ + "/manifests.yaml",
                    "--pod", "default/client", "-o", policy_file_ + ".tmp"});
    ASSERT_EQ(r.status, 0) << r.output;
    ASSERT_EQ(std::rename((policy_file_ + ".tmp").c_str(), policy_file_.c_str()), 0);
  }

  void StartProxy(const std::string& extra = "") {
    std::string bootstrap =
        "node:\n  namespace: default\n  name: client\n  node_name: e2e-node\n"
        "  ips: [" +
        std::string(kV4.client_ip) + ", \"" + kV6.client_ip +
        "\"]\nflow_log:\n  path: " + flow_log_ +
        "\n  log_allowed: " + (log_allowed_ ? "true" : "false") + "\npolicy_file: " + policy_file_ +
        "\nworkers: 2\ntimeouts: {drain: 5s}\n" + (verdict() ? "capture: verdict\n" : "") + extra;
    ASSERT_TRUE(WriteFile(dir_ + "/bootstrap.yaml", bootstrap));
    if (verdict()) {
      // uid 1337 with CAP_NET_ADMIN, as the injector starts it (ambient: kept across exec).
      ASSERT_TRUE(proxy_.Start(*client_,
                               {"setpriv", "--reuid=1337", "--regid=1337", "--clear-groups",
                                "--inh-caps=+net_admin", "--ambient-caps=+net_admin", proxy_bin_,
                                "--config", dir_ + "/bootstrap.yaml", "--log-level", "debug"},
                               std::nullopt, dir_ + "/proxy.log"));
    } else {
      ASSERT_TRUE(proxy_.Start(
          *client_, {proxy_bin_, "--config", dir_ + "/bootstrap.yaml", "--log-level", "debug"},
          kProxyUid, dir_ + "/proxy.log"));
    }
    // Listening once the admin endpoint answers (any status).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Admin("GET", "/ready").empty()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << ReadFile(dir_ + "/proxy.log");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // "STATUS\nBODY" from the admin endpoint (127.0.0.1:15000 in the client pod), "" if down.
  std::string Admin(const std::string& method, const std::string& target) {
    int fd = ConnectFrom(*client_, "127.0.0.1", 15000, std::chrono::seconds(5));
    if (fd < 0) return "";
    std::string request = method + " " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string response;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
    close(fd);
    size_t body = response.find("\r\n\r\n");
    if (response.size() < 12 || body == std::string::npos) return "";
    return response.substr(9, 3) + "\n" + response.substr(body + 4);
  }

  bool WaitReady() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Admin("GET", "/ready").rfind("200", 0) != 0) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  // The value of one Prometheus sample line `name{labels}` (-1 if absent).
  long Counter(const std::string& sample) {
    std::string stats = Admin("GET", "/stats/prometheus");
    size_t at = stats.find("\n" + sample + " ");
    if (at == std::string::npos) return -1;
    return std::strtol(stats.c_str() + at + sample.size() + 2, nullptr, 10);
  }
  long Closed(const std::string& direction, const std::string& reason) {
    return Counter("picket_connections_closed_total{direction=\"" + direction + "\",reason=\"" +
                   reason + "\"}");
  }
  bool WaitCounter(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  // Flow records (JSON lines) from /flows with `verdict` that contain every needle.
  std::vector<std::string> FlowsWith(const std::string& verdict,
                                     const std::vector<std::string>& needles) {
    std::string body = Admin("GET", "/flows?verdict=" + verdict);
    std::vector<std::string> out;
    size_t pos = body.find('\n');  // skip the status line
    while (pos != std::string::npos && pos + 1 < body.size()) {
      size_t eol = body.find('\n', pos + 1);
      std::string line = body.substr(pos + 1, eol - pos - 1);
      bool all = true;
      for (const std::string& n : needles) all = all && line.find(n) != std::string::npos;
      if (all) out.push_back(line);
      pos = eol;
    }
    return out;
  }

  // FlowsWith, polled until `count` records match: the writer thread renders records after the
  // counters move, so a counter is no proof the record is there yet.
  std::vector<std::string> WaitFlows(const std::string& verdict,
                                     const std::vector<std::string>& needles, size_t count) {
    std::vector<std::string> found;
    WaitCounter([&] {
      found = FlowsWith(verdict, needles);
      return found.size() >= count;
    });
    return found;
  }

  static const Family& family() { return std::get<0>(GetParam()); }
  static bool verdict() { return std::get<1>(GetParam()) == Mode::kVerdict; }

  int ConnectOut(uint16_t port) { return ConnectFrom(*client_, family().server_ip, port); }
  int ConnectIn(uint16_t port) { return ConnectFrom(*server_, family().client_ip, port); }

  // The 64 MiB exchange of AppServer mode 'S' over `fd`: kBulk bytes up, then kBulk down while
  // the up direction is half-closed. Checks both hashes.
  void Bulk(int fd, AppServer& app) {
    ASSERT_EQ(send(fd, "S", 1, MSG_NOSIGNAL), 1);
    ASSERT_TRUE(SendStream(fd, 1, kBulk));
    ASSERT_EQ(shutdown(fd, SHUT_WR), 0);  // half-close: the other direction keeps flowing
    Received down = ReceiveAll(fd);
    close(fd);
    EXPECT_EQ(down.error, 0) << std::strerror(down.error);
    EXPECT_EQ(down.bytes, kBulk);
    EXPECT_EQ(down.hash, StreamHash(2, kBulk));
    Received up = app.sunk();
    EXPECT_EQ(up.bytes, kBulk);
    EXPECT_EQ(up.hash, StreamHash(1, kBulk));
  }

  // One round trip through AppServer's echo mode: the mode byte 'E' first (`open`), then
  // `message`, which must come back whole.
  static void Echo(int fd, const std::string& message, bool open = true) {
    const std::string out = (open ? "E" : "") + message;
    ASSERT_EQ(send(fd, out.data(), out.size(), MSG_NOSIGNAL), static_cast<ssize_t>(out.size()));
    std::string back(message.size(), '\0');
    ASSERT_EQ(recv(fd, back.data(), back.size(), MSG_WAITALL), static_cast<ssize_t>(back.size()))
        << std::strerror(errno);
    EXPECT_EQ(back, message);
  }

  // A denied connection: the relay accepts it and resets it; in verdict mode the kernel's reset
  // answers its SYN, so connect() itself fails. Either way at once, with no byte. `relayed`:
  // it reached a listener (the proxy's own, dialled directly) whatever the mode.
  static void ExpectResetAtOnce(int fd, bool relayed = !verdict()) {
    if (!relayed) {
      EXPECT_LT(fd, 0) << "connected, expected a refusal";
      EXPECT_EQ(errno, ECONNREFUSED) << std::strerror(errno);
      if (fd >= 0) close(fd);
      return;
    }
    ASSERT_GE(fd, 0) << std::strerror(errno);
    auto start = std::chrono::steady_clock::now();
    Received r = ReceiveAll(fd);
    close(fd);
    EXPECT_EQ(r.error, ECONNRESET) << std::strerror(r.error);
    EXPECT_EQ(r.bytes, 0u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  }

  AppServer& app(uint16_t port) {
    for (size_t i = 0; i < 4; ++i) {
      if (port == (uint16_t[]){kAllowedOut, kDeniedOut, kAllowedIn, kDeniedIn}[i]) return *apps_[i];
    }
    std::abort();
  }

  std::string dir_, proxy_bin_, policy_file_, flow_log_;
  bool log_allowed_ = true;  // the bootstrap's flow_log.log_allowed
  static inline size_t flows_checked_ = 0;
  std::unique_ptr<Netns> client_, server_;
  std::vector<std::unique_ptr<AppServer>> apps_;
  Child proxy_;
};

TEST_P(ProxyE2eTest, AllowedConnectionsCarry64MiBEachWayByteExactOutboundAndInbound) {
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  int out = ConnectOut(kAllowedOut);
  ASSERT_GE(out, 0) << std::strerror(errno);
  Bulk(out, app(kAllowedOut));
  int in = ConnectIn(kAllowedIn);
  ASSERT_GE(in, 0) << std::strerror(errno);
  const std::string client_end = LocalAddressAndPort(in);
  Bulk(in, app(kAllowedIn));
  // Who the app saw: in verdict mode nothing is relayed, so its peer is the client itself,
  // address and port; the relay connects to it from the passthrough source.
  if (verdict()) {
    EXPECT_EQ(app(kAllowedIn).last_peer(), client_end);
  } else {
    EXPECT_EQ(app(kAllowedIn).last_peer().substr(0, app(kAllowedIn).last_peer().find(' ')),
              family().v6 ? "::7" : "127.0.0.7");
  }
  ASSERT_TRUE(WaitCounter(
      [&] { return Closed("outbound", "normal") == 1 && Closed("inbound", "normal") == 1; }));
  const std::string port_out = "\"destination_port\":" + std::to_string(kAllowedOut);
  auto out_flows = WaitFlows("FORWARDED",
                             {"\"traffic_direction\":\"EGRESS\"", port_out,
                              "\"bytes\":{\"to_destination\":67108865,"
                              "\"to_source\":67108864}"},
                             1);
  EXPECT_EQ(out_flows.size(), 1u);
  auto in_flows = WaitFlows(
      "FORWARDED",
      {"\"traffic_direction\":\"INGRESS\"", "\"destination_port\":" + std::to_string(kAllowedIn),
       "\"source\":{\"namespace\":\"default\",\"labels\":[\"k8s:app=server\"],"
       "\"pod_name\":\"server\"}"},
      1);
  EXPECT_EQ(in_flows.size(), 1u);
}

TEST_P(ProxyE2eTest, DeniedConnectionsAreResetAtOnceWithOneDroppedRecord) {
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  ExpectResetAtOnce(ConnectOut(kDeniedOut));
  ExpectResetAtOnce(ConnectIn(kDeniedIn));
  EXPECT_EQ(app(kDeniedOut).accepted(), 0);  // decided before any upstream connect
  EXPECT_EQ(app(kDeniedIn).accepted(), 0);
  ASSERT_TRUE(WaitCounter([&] {
    return Closed("outbound", "policy_denied") == 1 && Closed("inbound", "policy_denied") == 1;
  }));
  auto egress = WaitFlows("DROPPED", {"\"destination_port\":" + std::to_string(kDeniedOut)}, 1);
  ASSERT_EQ(egress.size(), 1u);
  EXPECT_NE(egress[0].find("\"drop_reason_desc\":\"POLICY_DENIED\""), std::string::npos);
  EXPECT_NE(egress[0].find("\"close_reason\":\"policy_denied\""), std::string::npos);
  EXPECT_NE(egress[0].find("\"egress_denied_by\":[{\"name\":\"client-policy\","
                           "\"namespace\":\"default\",\"kind\":\"NetworkPolicy\"}]"),
            std::string::npos)
      << egress[0];
  EXPECT_NE(egress[0].find("\"destination\":{\"namespace\":\"default\",\"labels\":"
                           "[\"k8s:app=server\"],\"pod_name\":\"server\"}"),
            std::string::npos)
      << egress[0];
  EXPECT_NE(egress[0].find("\"node_name\":\"e2e-node\""), std::string::npos) << egress[0];
  auto ingress = WaitFlows("DROPPED", {"\"destination_port\":" + std::to_string(kDeniedIn)}, 1);
  ASSERT_EQ(ingress.size(), 1u);
  EXPECT_NE(ingress[0].find("\"traffic_direction\":\"INGRESS\""), std::string::npos);
  EXPECT_NE(ingress[0].find("\"ingress_denied_by\""), std::string::npos);
  // The flow-log file holds the same records.
  std::string file = ReadFile(flow_log_);
  EXPECT_NE(file.find("\"destination_port\":" + std::to_string(kDeniedOut)), std::string::npos);
}

TEST_P(ProxyE2eTest, TrafficFromThePodsOwnNodeIsAlwaysAllowedIn) {
  // Kubelet probes come from the pod's node. No rule allows kDeniedIn, yet the node (its
  // status.hostIPs address, here on the server side of the link) gets in, while the server pod
  // on the same port is still reset.
  const Family& f = family();
  std::vector<std::string> add = {
      "ip",  f.v6 ? "-6" : "-4", "addr", "add", std::string(f.node_ip) + (f.v6 ? "/64" : "/24"),
      "dev", LinkEnd('b')};
  if (f.v6) add.push_back("nodad");
  ASSERT_EQ(server_->Exec(add).status, 0);
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  int fd = ConnectFrom(*server_, f.client_ip, kDeniedIn, std::chrono::seconds(20), f.node_ip);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_NO_FATAL_FAILURE(Echo(fd, "probe"));
  close(fd);
  // From the server pod's own address (IPv6 may otherwise pick the node address as source).
  ExpectResetAtOnce(
      ConnectFrom(*server_, f.client_ip, kDeniedIn, std::chrono::seconds(20), f.server_ip));
  ASSERT_TRUE(WaitCounter(
      [&] { return Closed("inbound", "normal") == 1 && Closed("inbound", "policy_denied") == 1; }));
  auto from_node = WaitFlows("FORWARDED",
                             {"\"traffic_direction\":\"INGRESS\"",
                              "\"destination_port\":" + std::to_string(kDeniedIn), "own node"},
                             1);
  EXPECT_EQ(from_node.size(), 1u) << ReadFile(flow_log_);
}

TEST_P(ProxyE2eTest, FailsClosedUntilThePolicyFileAppears) {
  StartProxy();  // no policy file yet
  EXPECT_EQ(Admin("GET", "/ready"), "503\nPRE_INITIALIZING\n");
  ExpectResetAtOnce(ConnectOut(kAllowedOut));
  ExpectResetAtOnce(ConnectIn(kAllowedIn));
  EXPECT_EQ(app(kAllowedOut).accepted(), 0);
  ASSERT_TRUE(WaitCounter([&] {
    return Closed("outbound", "no_policy_yet") == 1 && Closed("inbound", "no_policy_yet") == 1;
  }));
  EXPECT_EQ(WaitFlows("DROPPED", {"\"close_reason\":\"no_policy_yet\""}, 2).size(), 2u);
  // The file appears (atomic rename): the watch loads it, no signal needed.
  WritePolicy(kAllowedOut, kAllowedIn);
  ASSERT_TRUE(WaitReady());
  int fd = ConnectOut(kAllowedOut);
  ASSERT_GE(fd, 0);
  ASSERT_NO_FATAL_FAILURE(Echo(fd, "ping"));
  close(fd);
}

TEST_P(ProxyE2eTest, PolicyUpdateThatRevokesAccessClosesTheConnection) {
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  int fd = ConnectOut(kAllowedOut);
  ASSERT_GE(fd, 0);
  ASSERT_NO_FATAL_FAILURE(Echo(fd, "ping"));
  // One the change leaves allowed (inbound on kAllowedIn): it must go on without a gap.
  int kept = ConnectIn(kAllowedIn);
  ASSERT_GE(kept, 0);
  ASSERT_NO_FATAL_FAILURE(Echo(kept, "keep"));
  // A bad file first: rejected with a precise error, the old policy (and the connection) stay.
  ASSERT_TRUE(WriteFile(policy_file_ + ".tmp", "{\"version\": 1,"));
  ASSERT_EQ(std::rename((policy_file_ + ".tmp").c_str(), policy_file_.c_str()), 0);
  proxy_.Signal(SIGHUP);
  ASSERT_TRUE(WaitCounter([&] { return Counter("picket_policy_update_rejected_total") >= 1; }));
  ASSERT_NO_FATAL_FAILURE(Echo(fd, "pong", /*open=*/false));
  // Now a valid policy that no longer allows port 7000.
  WritePolicy(kDeniedOut, kAllowedIn);
  const auto changed = std::chrono::steady_clock::now();
  Received r = ReceiveAll(fd);
  close(fd);
  // Verdict mode aborts the app's socket (ECONNABORTED here; the peer gets the reset).
  EXPECT_EQ(r.error, verdict() ? ECONNABORTED : ECONNRESET) << std::strerror(r.error);
  EXPECT_LT(std::chrono::steady_clock::now() - changed, std::chrono::seconds(1));
  ASSERT_TRUE(WaitCounter([&] { return Closed("outbound", "policy_changed") == 1; }));
  auto revoked = WaitFlows("DROPPED", {"\"close_reason\":\"policy_changed\""}, 1);
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_NE(revoked[0].find("\"destination_port\":" + std::to_string(kAllowedOut)),
            std::string::npos);
  ASSERT_NO_FATAL_FAILURE(Echo(kept, "still here", /*open=*/false));
  // Then the inbound one is revoked too: its peer (here) is reset.
  WritePolicy(kDeniedOut, kDeniedIn);
  Received in = ReceiveAll(kept);
  close(kept);
  EXPECT_EQ(in.error, ECONNRESET) << std::strerror(in.error);
  ASSERT_TRUE(WaitCounter([&] { return Closed("inbound", "policy_changed") == 1; }));
}

TEST_P(ProxyE2eTest, SigtermStopsAcceptingDrainsAndExitsZero) {
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  int fd = ConnectOut(kAllowedOut);
  ASSERT_GE(fd, 0);
  ASSERT_NO_FATAL_FAILURE(Echo(fd, "ping"));
  proxy_.Signal(SIGTERM);
  // Not accepting any more: a new connection is refused (the capture rules stay: fail closed).
  ASSERT_TRUE(WaitCounter([&] {
    int probe = ConnectOut(kAllowedOut);
    if (probe >= 0) close(probe);
    return probe < 0;
  }));
  if (verdict()) {
    // Nothing to drain: the kernel carries the established connection, which outlives the
    // sidecar, while new connections stay refused until a sidecar binds the queue again.
    std::optional<int> status = proxy_.Wait(std::chrono::seconds(5));
    ASSERT_TRUE(status.has_value()) << "did not exit";
    EXPECT_EQ(*status, 0);
    ASSERT_NO_FATAL_FAILURE(Echo(fd, "pong", /*open=*/false));
    ExpectResetAtOnce(ConnectOut(kAllowedOut));
    // Restarted: new connections are judged again, and the first policy's sweep leaves the
    // still-allowed established one alone.
    StartProxy();
    ASSERT_TRUE(WaitReady());
    int again = ConnectOut(kAllowedOut);
    ASSERT_GE(again, 0) << std::strerror(errno);
    ASSERT_NO_FATAL_FAILURE(Echo(again, "back"));
    close(again);
    ASSERT_NO_FATAL_FAILURE(Echo(fd, "survived", /*open=*/false));
    close(fd);
    return;
  }
  EXPECT_FALSE(proxy_.Wait(std::chrono::milliseconds(200)).has_value());  // still draining
  // The established connection still works, and ends on its own.
  ASSERT_NO_FATAL_FAILURE(Echo(fd, "pong", /*open=*/false));
  shutdown(fd, SHUT_WR);
  Received r = ReceiveAll(fd);
  close(fd);
  EXPECT_EQ(r.error, 0);
  std::optional<int> status = proxy_.Wait(std::chrono::seconds(5));
  ASSERT_TRUE(status.has_value()) << "did not exit after its last connection closed";
  EXPECT_EQ(*status, 0);
  std::string flows = ReadFile(flow_log_);  // flushed before exit
  EXPECT_NE(flows.find("\"close_reason\":\"normal\""), std::string::npos) << flows;
}

// The app dialling the proxy's own listeners directly (not redirected: -o lo returns) at any
// of the pod's own addresses: each attempt is one downstream connection, refused as a loop.
// Before the fix, [::7]:15001 made the proxy dial itself ~7,950 times per attempt.
TEST_P(ProxyE2eTest, DiallingTheProxysOwnListenersIsOneRefusedConnection) {
  // Not egress-isolated (Ingress only): every egress is allowed, so only the loop check stands
  // between the app and a relay to the proxy itself.
  std::string manifests = kManifestHead;
  const std::string types = "policyTypes: [Egress, Ingress]";
  manifests.replace(manifests.find(types), types.size(), "policyTypes: [Ingress]");
  ASSERT_TRUE(WriteFile(dir_ + "/manifests.yaml", manifests));
  CommandResult r =
      RunCommand({Runfile("control/picket-control"), "compile", "-f", dir_ + "/manifests.yaml",
                  "--pod", "default/client", "-o", policy_file_});
  ASSERT_EQ(r.status, 0) << r.output;
  StartProxy();
  ASSERT_TRUE(WaitReady());
  auto downstream = [&] {
    return Counter("envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"outbound\"}") +
           Counter("envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"inbound\"}");
  };
  auto loops = [&] {
    return Closed("outbound", "loop_detected") + Closed("inbound", "loop_detected");
  };
  const std::vector<std::pair<std::string, uint16_t>> targets = {{"::7", 15001},
                                                                 {"127.0.0.7", 15006},
                                                                 {"::ffff:127.0.0.1", 15001},
                                                                 {family().client_ip, 15001},
                                                                 {family().client_ip, 15006}};
  for (const auto& [address, port] : targets) {
    SCOPED_TRACE(address + " port " + std::to_string(port));
    const long before = downstream();
    const long loops_before = loops();
    ExpectResetAtOnce(ConnectFrom(*client_, address, port, std::chrono::seconds(5)),
                      /*relayed=*/true);
    ASSERT_TRUE(WaitCounter([&] { return loops() == loops_before + 1; })) << loops();
    EXPECT_EQ(downstream(), before + 1);  // exactly one connection counted: no loop
  }
}

// Verdict mode without log_allowed (the default): the kernel verdict cache
// (proxy/verdict_cache.h). Every test above runs with log_allowed, so every SYN there is judged
// by the sidecar.
class VerdictCacheE2eTest : public ProxyE2eTest {
 protected:
  void SetUp() override {
    log_allowed_ = false;
    ProxyE2eTest::SetUp();
  }
  long Hits(const std::string& direction) {
    return Counter("picket_verdict_cache_hits_total{direction=\"" + direction + "\"}");
  }
  long Downstream(const std::string& direction) {
    return Counter("envoy_tcp_downstream_cx_total{envoy_tcp_prefix=\"" + direction + "\"}");
  }
  long Added() { return Counter("picket_verdict_cache_entries_added_total"); }
  // An allowed connection both ways, each echoing once: the first of each pair is judged by the
  // sidecar, which puts its peer and port in the cache.
  void ConnectAllowedBothWays() {
    for (int fd : {ConnectOut(kAllowedOut), ConnectIn(kAllowedIn)}) {
      ASSERT_GE(fd, 0) << std::strerror(errno);
      ASSERT_NO_FATAL_FAILURE(Echo(fd, "hello"));
      close(fd);
    }
  }
};

TEST_P(VerdictCacheE2eTest, LaterSynsToAnAllowedPeerSkipTheQueueAndAreStillCounted) {
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  const std::string dump = Admin("GET", "/config_dump");
  EXPECT_NE(dump.find("\"verdict_cache\":{\"on\":true,\"max_entries\":16384"), std::string::npos)
      << dump;
  ASSERT_NO_FATAL_FAILURE(ConnectAllowedBothWays());
  ASSERT_TRUE(WaitCounter([&] { return Added() == 2; })) << Added();
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(ConnectAllowedBothWays());
  // The kernel allowed the three later ones of each direction (its rules' counters, read back
  // once a second), and they count as connections accepted and allowed, as judged ones do.
  ASSERT_TRUE(WaitCounter([&] { return Hits("outbound") == 3 && Hits("inbound") == 3; }))
      << Hits("outbound") << " " << Hits("inbound");
  EXPECT_EQ(Downstream("outbound"), 4);
  EXPECT_EQ(Downstream("inbound"), 4);
  EXPECT_EQ(Added(), 2);
  // A denied flow is never cached: each attempt is judged, reset and logged.
  for (int i = 0; i < 2; ++i) ExpectResetAtOnce(ConnectOut(kDeniedOut));
  EXPECT_EQ(WaitFlows("DROPPED", {"\"destination_port\":" + std::to_string(kDeniedOut)}, 2).size(),
            2u);
}

TEST_P(VerdictCacheE2eTest, APolicyChangeEmptiesTheCacheBeforeTheNextSynIsJudged) {
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  ASSERT_NO_FATAL_FAILURE(ConnectAllowedBothWays());
  ASSERT_TRUE(WaitCounter([&] { return Added() == 2; })) << Added();
  ASSERT_NO_FATAL_FAILURE(ConnectAllowedBothWays());  // from the cache
  // Port kAllowedOut is denied from now on; the worker empties the cache, then swaps (the first
  // policy emptied it once already).
  const long clears = Counter("picket_verdict_cache_clears_total");
  ASSERT_GE(clears, 1);
  WritePolicy(kDeniedOut, kAllowedIn);
  ASSERT_TRUE(
      WaitCounter([&] { return Counter("picket_verdict_cache_clears_total") == clears + 1; }));
  ExpectResetAtOnce(ConnectOut(kAllowedOut));
  EXPECT_EQ(WaitFlows("DROPPED", {"\"destination_port\":" + std::to_string(kAllowedOut)}, 1).size(),
            1u);
  // What the new policy still allows goes on (judged again, then cached again).
  int fd = ConnectIn(kAllowedIn);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_NO_FATAL_FAILURE(Echo(fd, "still allowed"));
  close(fd);
}

TEST_P(VerdictCacheE2eTest, WithTheSidecarKilledACachedPeerIsRefused) {
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  ASSERT_NO_FATAL_FAILURE(ConnectAllowedBothWays());
  ASSERT_TRUE(WaitCounter([&] { return Added() == 2; })) << Added();
  ASSERT_NO_FATAL_FAILURE(ConnectAllowedBothWays());
  ASSERT_TRUE(WaitCounter([&] { return Hits("outbound") == 1 && Hits("inbound") == 1; }));
  // SIGKILL: no cleanup of ours runs. The kernel deletes the table with the dead socket.
  proxy_.Signal(SIGKILL);
  ASSERT_TRUE(proxy_.Wait(std::chrono::seconds(5)).has_value());
  ExpectResetAtOnce(ConnectOut(kAllowedOut));
  ExpectResetAtOnce(ConnectIn(kAllowedIn));
}

TEST_P(VerdictCacheE2eTest, WithLogAllowedThereIsNoCacheAndConfigDumpSaysWhy) {
  log_allowed_ = true;
  WritePolicy(kAllowedOut, kAllowedIn);
  StartProxy();
  ASSERT_TRUE(WaitReady());
  const std::string dump = Admin("GET", "/config_dump");
  EXPECT_NE(dump.find("\"verdict_cache\":{\"on\":false"), std::string::npos) << dump;
  EXPECT_NE(dump.find("flow_log.log_allowed"), std::string::npos) << dump;
  EXPECT_EQ(Counter("picket_verdict_cache_on"), 0);
}

INSTANTIATE_TEST_SUITE_P(Families, VerdictCacheE2eTest,
                         ::testing::Combine(::testing::Values(kV4, kV6),
                                            ::testing::Values(Mode::kVerdict)),
                         [](const ::testing::TestParamInfo<std::tuple<Family, Mode>>& info) {
                           return std::string(std::get<0>(info.param).v6 ? "IPv6" : "IPv4");
                         });

INSTANTIATE_TEST_SUITE_P(FamiliesAndModes, ProxyE2eTest,
                         ::testing::Combine(::testing::Values(kV4, kV6),
                                            ::testing::Values(Mode::kRelay, Mode::kVerdict)),
                         [](const ::testing::TestParamInfo<std::tuple<Family, Mode>>& info) {
                           return std::string(std::get<0>(info.param).v6 ? "IPv6" : "IPv4") +
                                  (std::get<1>(info.param) == Mode::kVerdict ? "Verdict" : "Relay");
                         });

}  // namespace
}  // namespace picket::e2e
