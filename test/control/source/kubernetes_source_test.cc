// Tests of control/source/kubernetes_source.h (and its reflector) against the Kubernetes API test
// server (test/k8s/apiserver/fake_apiserver.py, started per test on 127.0.0.1 port 0): the first
// state only after every kind is listed; watch events reaching updates; compaction → relist with
// no smaller world in between; dropped watches resumed from the last version without a relist;
// 429 Retry-After honoured (measured); 500s backed off with jitter (bounded request count); token
// rotation → 401 → token re-read → recovered; bad objects reported and their last good version
// kept; pods that must not be enforced on skipped. The loop runs on the test thread; waiting is
// bounded by deadlines.
#include "control/source/kubernetes_source.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/json.h"
#include "control/source/kubernetes_snapshot.h"
#include "test/control/source/fake_apiserver_process.h"

namespace picket::control::source {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class KubernetesSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::signal(SIGPIPE, SIG_IGN);
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/kapi-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(server_.Start(dir_, "test/control/source/testdata/kube_seed.json"))
        << server_.log();
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    uv_timer_init(&loop_, &tick_);
    loop_ready_ = true;
    auto config = LoadKubeconfig(dir_ + "/kubeconfig");
    ASSERT_TRUE(config.has_value()) << config.error().ToString();
    config_ = *config;
    net::HttpClientOptions admin;
    admin.host = config_.host;
    admin.port = config_.port;
    admin.tls = *net::TlsContext::CreateClient(config_.ca_pem);
    admin_ = std::make_unique<net::HttpClient>(&loop_, admin);
  }

  void TearDown() override {
    if (!loop_ready_) return;
    if (source_) {
      bool closed = false;
      source_->Close([&] { closed = true; });
      EXPECT_TRUE(RunUntil([&] { return closed; }));
      source_.reset();
    }
    admin_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
    server_.Stop();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  bool RunUntil(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 5, 5);
    const auto deadline = Clock::now() + timeout;
    while (!done() && Clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    uv_timer_stop(&tick_);
    return done();
  }

  // A request as kubectl would make it (with the current token).
  net::HttpClientResponse Api(const std::string& method, const std::string& target,
                              const std::string& body = "") {
    net::HttpClientRequest request;
    request.method = method;
    request.target = target;
    request.body = body;
    std::string token = ReadFile(dir_ + "/token");
    while (!token.empty() && token.back() == '\n') token.pop_back();
    request.headers = {{"Authorization", "Bearer " + token}};
    if (!body.empty()) {
      request.headers.emplace_back(
          "Content-Type", method == "PATCH" ? "application/merge-patch+json" : "application/json");
    }
    bool done = false;
    net::HttpClientResponse out;
    admin_->Send(std::move(request), [&](base::Result<net::HttpClientResponse> r) {
      done = true;
      EXPECT_TRUE(r.has_value()) << r.error().ToString();
      if (r) out = std::move(*r);
    });
    EXPECT_TRUE(RunUntil([&] { return done; }));
    return out;
  }
  void Control(const std::string& what) {
    EXPECT_EQ(Api("POST", "/_test/" + what).status, 200) << what;
  }
  std::string Policy(const std::string& name, const std::string& cidr = "10.0.0.0/8") {
    return R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":")" +
           name +
           R"(","namespace":"x"},"spec":{"podSelector":{},"ingress":[{"from":[{"ipBlock":{"cidr":")" +
           cidr + R"("}}]}]}})";
  }
  static constexpr const char* kPolicies =
      "/apis/networking.k8s.io/v1/namespaces/x/networkpolicies";

  void StartSource(const std::function<void(KubernetesSourceOptions&)>& edit = {}) {
    KubernetesSourceOptions options;
    options.config = config_;
    options.reflector.backoff_initial_ms = 100;
    options.reflector.backoff_max_ms = 800;
    options.reflector.watch_timeout_s = 60;
    options.seed = 12345;
    if (edit) edit(options);
    auto source = KubernetesSource::Create(std::move(options));
    ASSERT_TRUE(source.has_value()) << source.error().ToString();
    source_ = std::move(*source);
    ASSERT_TRUE(
        source_->Start(&loop_, [this](SourceUpdate u) { updates_.push_back(std::move(u)); }));
  }

  const KubeReflector& Reflector(KubeKind kind) {
    for (const auto& r : source_->reflectors()) {
      if (r->kind().kind == kind) return *r;
    }
    abort();
  }

  static std::set<std::string> Names(const config::Cluster& c) {
    std::set<std::string> out;
    for (const auto& n : c.namespaces) out.insert("Namespace " + n.name);
    for (const auto& p : c.pods) out.insert("Pod " + p.ns + "/" + p.name);
    for (const auto& p : c.policies) out.insert("NetworkPolicy " + p.ns + "/" + p.name);
    for (const auto& s : c.services) out.insert("Service " + s.ns + "/" + s.name);
    for (const auto& s : c.endpoint_slices) out.insert("EndpointSlice " + s.ns + "/" + s.name);
    return out;
  }
  // The names in the latest delivered state.
  std::set<std::string> Latest() {
    for (auto it = updates_.rbegin(); it != updates_.rend(); ++it) {
      if (it->cluster) return Names(*it->cluster);
    }
    return {};
  }
  bool LatestHas(const std::string& name) { return Latest().count(name) == 1; }

  std::string dir_;
  testing::FakeApiServer server_;
  bool loop_ready_ = false;
  uv_loop_t loop_{};
  uv_timer_t tick_{};
  KubeConfig config_;
  std::unique_ptr<net::HttpClient> admin_;
  std::unique_ptr<KubernetesSource> source_;
  std::vector<SourceUpdate> updates_;
};

const std::set<std::string> kSeeded = {
    "Namespace default", "Namespace kube-system",    "Namespace x",  "Namespace y", "Pod x/a",
    "Pod y/b",           "NetworkPolicy x/deny-all", "Service x/web"};

std::set<std::string> WithoutSystemNamespaces(std::set<std::string> names) {
  // The test server may create the usual namespaces (default, kube-system, ...): ignore them.
  std::set<std::string> out;
  for (const auto& n : names) {
    if (n.starts_with("Namespace ") && n != "Namespace x" && n != "Namespace y") continue;
    out.insert(n);
  }
  return out;
}

TEST_F(KubernetesSourceTest, FirstStateOnlyAfterEveryKindIsListedAndPodsAreFiltered) {
  // The NetworkPolicy list fails twice: nothing may be delivered until it has succeeded.
  Control("fail?code=500&count=2&path=/apis/networking.k8s.io/v1/networkpolicies");
  StartSource();
  ASSERT_TRUE(RunUntil([&] { return Reflector(KubeKind::kPod).listed(); }));
  EXPECT_TRUE(updates_.empty());
  ASSERT_TRUE(RunUntil([&] { return !updates_.empty(); }));
  EXPECT_TRUE(Reflector(KubeKind::kNetworkPolicy).listed());
  EXPECT_EQ(Reflector(KubeKind::kNetworkPolicy).counters().failures, 2u);
  ASSERT_TRUE(updates_[0].cluster.has_value());
  EXPECT_EQ(WithoutSystemNamespaces(Names(*updates_[0].cluster)), WithoutSystemNamespaces(kSeeded));
  EXPECT_TRUE(updates_[0].errors.empty()) << base::ToString(updates_[0].errors);
  // Succeeded, hostNetwork and IP-less pods are not in the world; the others carry their IPs.
  for (const config::Pod& pod : updates_[0].cluster->pods) {
    if (pod.name == "a") {
      EXPECT_EQ(pod.ips, (std::vector<std::string>{"10.1.0.1", "fd00::1"}));
      EXPECT_EQ(pod.host_ips, std::vector<std::string>{"192.168.0.1"});
      EXPECT_EQ(pod.ports.at(0).name, "http");
    }
  }
  EXPECT_EQ(updates_[0].cluster->services.at(0).cluster_ips,
            std::vector<std::string>{"10.96.0.10"});
}

TEST_F(KubernetesSourceTest, WatchEventsReachUpdatesAndBadObjectsKeepTheirLastGoodVersion) {
  StartSource();
  ASSERT_TRUE(RunUntil([&] { return !updates_.empty(); }));
  const uint64_t lists = Reflector(KubeKind::kNetworkPolicy).counters().lists;
  EXPECT_EQ(Api("POST", kPolicies, Policy("allow")).status, 201);
  ASSERT_TRUE(RunUntil([&] { return LatestHas("NetworkPolicy x/allow"); }));
  // MODIFIED to something that does not validate: an error, and the last good version stays.
  auto current = base::ParseJson(Api("GET", std::string(kPolicies) + "/allow").body);
  ASSERT_TRUE(current.has_value());
  std::string bad = Policy("allow", "10.0.0.0/33");
  EXPECT_EQ(Api("PUT", std::string(kPolicies) + "/allow", bad).status, 200);
  ASSERT_TRUE(RunUntil([&] { return !updates_.back().errors.empty(); }));
  EXPECT_EQ(updates_.back().errors[0].ToString(),
            "NetworkPolicy x/allow: spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "
            "\"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)");
  EXPECT_TRUE(LatestHas("NetworkPolicy x/allow"));
  // DELETED.
  EXPECT_EQ(Api("DELETE", std::string(kPolicies) + "/allow").status, 200);
  ASSERT_TRUE(RunUntil([&] { return !LatestHas("NetworkPolicy x/allow"); }));
  EXPECT_TRUE(updates_.back().errors.empty());
  // A pod that finishes leaves the world (its IP will be reused).
  EXPECT_EQ(
      Api("PATCH", "/api/v1/namespaces/y/pods/b/status", R"({"status":{"phase":"Succeeded"}})")
          .status,
      200);
  ASSERT_TRUE(RunUntil([&] { return !LatestHas("Pod y/b"); }));
  EXPECT_TRUE(updates_.back().pods_only);
  EXPECT_EQ(Reflector(KubeKind::kNetworkPolicy).counters().lists, lists);  // no relist
}

TEST_F(KubernetesSourceTest, EndpointSlicesAreWatchedAndDecoded) {
  StartSource();
  ASSERT_TRUE(RunUntil([&] { return !updates_.empty(); }));
  EXPECT_TRUE(Reflector(KubeKind::kEndpointSlice).listed());
  constexpr const char* kSlices = "/apis/discovery.k8s.io/v1/namespaces/x/endpointslices";
  EXPECT_EQ(Api("POST", kSlices,
                R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":)"
                R"({"name":"web-abc","namespace":"x","labels":{"kubernetes.io/service-name":)"
                R"("web"}},"addressType":"IPv4","endpoints":[{"addresses":["10.1.0.1"],)"
                R"("conditions":{"ready":true},"targetRef":{"kind":"Pod","name":"a",)"
                R"("namespace":"x"}},{"addresses":["10.1.0.9"],"conditions":{"ready":false}}],)"
                R"("ports":[{"name":"http","port":8080,"protocol":"TCP"}]})")
                .status,
            201);
  ASSERT_TRUE(RunUntil([&] { return LatestHas("EndpointSlice x/web-abc"); }));
  const config::Cluster& cluster = *updates_.back().cluster;
  ASSERT_EQ(cluster.endpoint_slices.size(), 1u);
  const config::EndpointSlice& slice = cluster.endpoint_slices[0];
  EXPECT_EQ(slice.service_name, "web");
  EXPECT_EQ(slice.address_type, "IPv4");
  ASSERT_EQ(slice.endpoints.size(), 2u);
  EXPECT_EQ(slice.endpoints[0].target_pod, "a");
  EXPECT_TRUE(slice.endpoints[0].ready);
  EXPECT_FALSE(slice.endpoints[1].ready);
  EXPECT_EQ(slice.ports.at(0).port, 8080);
  EXPECT_FALSE(updates_.back().pods_only);
  // A slice that does not validate: the API's object error, the rest of the world kept.
  EXPECT_EQ(Api("POST", kSlices,
                R"({"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":)"
                R"({"name":"bad","namespace":"x"},"addressType":"IPv4",)"
                R"("endpoints":[{"addresses":["fd00::1"]}]})")
                .status,
            201);
  ASSERT_TRUE(RunUntil([&] { return !updates_.back().errors.empty(); }));
  EXPECT_EQ(updates_.back().errors[0].ToString(),
            "EndpointSlice x/bad: endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be "
            "a valid IPv4 address");
  EXPECT_TRUE(LatestHas("EndpointSlice x/web-abc"));
  // DELETED.
  EXPECT_EQ(Api("DELETE", std::string(kSlices) + "/web-abc").status, 200);
  ASSERT_TRUE(RunUntil([&] { return !LatestHas("EndpointSlice x/web-abc"); }));
}

TEST_F(KubernetesSourceTest, CompactionRelistsWithoutEverShowingASmallerWorld) {
  // The reflectors resume 2.5-5 s after the cut: room for three local requests on a loaded
  // machine (a resume before the compaction would see no 410).
  StartSource([](KubernetesSourceOptions& o) { o.reflector.backoff_initial_ms = 5000; });
  ASSERT_TRUE(RunUntil([&] { return !updates_.empty(); }));
  const size_t first = updates_.size();
  // Cut the watches, change the world and compact while the reflectors wait to resume: their
  // resourceVersion is gone, so each resumed watch gets an in-stream ERROR 410 and relists.
  Control("drop-watches");
  EXPECT_EQ(Api("POST", kPolicies, Policy("while-away")).status, 201);
  EXPECT_EQ(Api("DELETE", "/api/v1/namespaces/y/pods/b").status, 200);
  Control("compact");
  ASSERT_TRUE(RunUntil([&] {
    return LatestHas("NetworkPolicy x/while-away") && !LatestHas("Pod y/b") &&
           Reflector(KubeKind::kPod).counters().relists_410 >= 1;
  }));
  EXPECT_GE(Reflector(KubeKind::kNetworkPolicy).counters().relists_410, 1u);
  // Every state delivered after the compaction holds everything that existed throughout.
  for (size_t i = first; i < updates_.size(); ++i) {
    if (!updates_[i].cluster) continue;
    const auto names = Names(*updates_[i].cluster);
    for (const char* kept :
         {"Pod x/a", "NetworkPolicy x/deny-all", "Service x/web", "Namespace x"}) {
      EXPECT_EQ(names.count(kept), 1u) << "update " << i << " lacks " << kept;
    }
  }
}

TEST_F(KubernetesSourceTest, DroppedWatchesResumeFromTheLastVersionWithoutARelist) {
  StartSource();
  ASSERT_TRUE(RunUntil([&] { return !updates_.empty(); }));
  const ReflectorCounters before = Reflector(KubeKind::kNetworkPolicy).counters();
  Control("split?bytes=7");  // events now arrive in 7-byte chunks
  Control("drop-watches");
  EXPECT_EQ(Api("POST", kPolicies, Policy("after-drop")).status, 201);
  ASSERT_TRUE(RunUntil([&] { return LatestHas("NetworkPolicy x/after-drop"); }));
  const ReflectorCounters& after = Reflector(KubeKind::kNetworkPolicy).counters();
  EXPECT_EQ(after.lists, before.lists);
  EXPECT_EQ(after.relists_410, 0u);
  EXPECT_GT(after.watches, before.watches);
}

TEST_F(KubernetesSourceTest, TooManyRequestsWaitsForRetryAfter) {
  Control("fail?code=429&count=1&retry_after=1&path=/api/v1/namespaces");
  const auto start = Clock::now();
  StartSource();
  ASSERT_TRUE(RunUntil([&] { return !updates_.empty(); }));
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, std::chrono::milliseconds(990));
  const ReflectorCounters& c = Reflector(KubeKind::kNamespace).counters();
  EXPECT_EQ(c.status_429, 1u);
  ASSERT_EQ(c.delays_ms.size(), 1u);
  EXPECT_EQ(c.delays_ms[0], 1000u);
  std::printf("429 Retry-After: 1 -> first state after %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()));
}

TEST_F(KubernetesSourceTest, ServerErrorsBackOffWithJitterAndABoundedRequestCount) {
  Control("fail?code=500&count=7&path=/api/v1/pods");
  const auto start = Clock::now();
  StartSource();
  ASSERT_TRUE(RunUntil([&] { return !updates_.empty(); }));
  const ReflectorCounters& c = Reflector(KubeKind::kPod).counters();
  EXPECT_EQ(c.failures, 7u);
  // Seven failures, the list that succeeded, then its watch(es): never a hot loop.
  EXPECT_EQ(c.requests - c.watches, 8u);
  ASSERT_EQ(c.delays_ms.size(), 7u);
  // Equal jitter around a doubling cap: [cap/2, cap] with cap 100, 200, 400, 800, 800, ...
  uint64_t cap = 100;
  uint64_t total = 0;
  for (uint64_t d : c.delays_ms) {
    EXPECT_GE(d, cap / 2);
    EXPECT_LE(d, cap);
    total += d;
    cap = std::min<uint64_t>(cap * 2, 800);
  }
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(total));
  std::set<uint64_t> distinct(c.delays_ms.begin() + 3, c.delays_ms.end());
  EXPECT_GT(distinct.size(), 1u) << "no jitter at the cap";
}

TEST_F(KubernetesSourceTest, RotatedTokenIsPickedUpAndReadAgainAfterA401) {
  // Our own copy of the token file, so the test decides what the source can notice.
  const std::string mine = dir_ + "/my-token";
  fs::copy_file(dir_ + "/token", mine);
  config_.token.clear();
  config_.token_file = mine;
  StartSource();
  ASSERT_TRUE(RunUntil([&] { return !updates_.empty(); }));

  // 1. Rotated by replacing the file (a new inode, as kubelet does): read before the next
  //    request, no 401 needed.
  Control("rotate-token");
  fs::copy_file(dir_ + "/token", mine + ".new");
  fs::rename(mine + ".new", mine);
  Control("drop-watches");
  EXPECT_EQ(Api("POST", kPolicies, Policy("after-rotation")).status, 201);
  ASSERT_TRUE(RunUntil([&] { return LatestHas("NetworkPolicy x/after-rotation"); }));

  // 2. Rewritten in place with the same size and mtime: nothing to notice until the server
  //    answers 401; then the token is read again and the source recovers by itself.
  struct stat st {};
  ASSERT_EQ(stat(mine.c_str(), &st), 0);
  Control("rotate-token");
  const std::string rotated = ReadFile(dir_ + "/token");
  ASSERT_EQ(rotated.size(), static_cast<size_t>(st.st_size));
  {
    std::fstream f(mine, std::ios::in | std::ios::out);
    f << rotated;
  }
  const timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, mine.c_str(), times, 0), 0);
  Control("drop-watches");
  EXPECT_EQ(Api("POST", kPolicies, Policy("after-401")).status, 201);
  ASSERT_TRUE(RunUntil([&] { return LatestHas("NetworkPolicy x/after-401"); }));
  uint64_t total_401 = 0;
  for (const auto& r : source_->reflectors()) total_401 += r->counters().status_401;
  EXPECT_GE(total_401, 1u);
  std::printf("401s after an in-place rotation: %llu (then recovered)\n",
              static_cast<unsigned long long>(total_401));
}

TEST_F(KubernetesSourceTest, ReadOnceListsEachKindOnceWithoutWatching) {
  KubernetesSourceOptions options;
  options.config = config_;
  auto snapshot = ReadKubernetesCluster(options, 10'000);
  ASSERT_TRUE(snapshot.has_value()) << snapshot.error().ToString();
  EXPECT_EQ(WithoutSystemNamespaces(Names(snapshot->cluster)), WithoutSystemNamespaces(kSeeded));
  auto stats = base::ParseJson(Api("GET", "/_test/stats").body);
  ASSERT_TRUE(stats.has_value());
  const base::JsonValue lists = *stats->root().Find("requests")->Find("list");
  EXPECT_EQ(lists.size(), 5u) << lists.ToJson();
  for (const char* kind : {"namespaces", "pods", "networkpolicies", "services", "endpointslices"}) {
    EXPECT_EQ(lists.Find(kind)->AsInt64(), 1) << kind;
  }
  EXPECT_EQ(stats->root().Find("watches")->AsInt64(), 0);

  // A kind that cannot be listed: the error says which and why, after the deadline.
  Control("fail?code=500&count=1000&path=/api/v1/services");
  options.reflector.backoff_initial_ms = 50;
  auto failed = ReadKubernetesCluster(options, 400);
  ASSERT_FALSE(failed.has_value());
  const std::string reason = failed.error().ToString();
  EXPECT_NE(reason.find("no complete list within 400 ms: Service list: HTTP 500:"),
            std::string::npos)
      << reason;
}

TEST_F(KubernetesSourceTest, ClientCertificateAndTokenFileKubeconfigs) {
  // The test server also writes a kubeconfig with client-certificate / client-key files and one
  // with a tokenFile: both authenticate through the same client.
  for (const char* name : {"kubeconfig-clientcert", "kubeconfig-tokenfile"}) {
    auto config = LoadKubeconfig(dir_ + "/" + name);
    ASSERT_TRUE(config.has_value()) << config.error().ToString();
    KubernetesSourceOptions options;
    options.config = *config;
    auto snapshot = ReadKubernetesCluster(options, 10'000);
    ASSERT_TRUE(snapshot.has_value()) << name << ": " << snapshot.error().ToString();
    EXPECT_EQ(WithoutSystemNamespaces(Names(snapshot->cluster)), WithoutSystemNamespaces(kSeeded))
        << name;
  }
  // Without any credentials the server answers 401, and the error says so.
  KubernetesSourceOptions anonymous;
  anonymous.config = config_;
  anonymous.config.token.clear();
  anonymous.reflector.backoff_initial_ms = 50;
  auto refused = ReadKubernetesCluster(anonymous, 300);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.error().reason.find("Namespace list: HTTP 401: "), std::string::npos)
      << refused.error().ToString();
}

}  // namespace
}  // namespace picket::control::source
