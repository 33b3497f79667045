// Policy engine benchmarks: full compile, lookups (hit/miss, v4/v6) at 1k and 10k policies,
// one pod add and remove — at 10k pods in 100 namespaces.
//
// bazel run //test/bench:policy_bench -- --benchmark_repetitions=5
//     --benchmark_report_aggregates_only=true   (one command line)
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <memory>
#include <random>

#include "policy/cluster_policy.h"
#include "policy/endpoint_policy.h"
#include "test/bench/policy_cluster.h"

namespace picket::bench {
namespace {

constexpr int kNamespaces = 100;
constexpr int kPods = 10000;

const config::Cluster& ClusterWith(int policies) {
  static std::map<int, config::Cluster> cache;
  auto it = cache.find(policies);
  if (it == cache.end()) {
    it = cache.emplace(policies, SyntheticCluster(kNamespaces, kPods, policies)).first;
  }
  return it->second;
}

policy::ClusterPolicy& CompiledWith(int policies) {
  static std::map<int, std::unique_ptr<policy::ClusterPolicy>> cache;
  auto& slot = cache[policies];
  if (!slot) slot = std::move(*policy::ClusterPolicy::Compile(ClusterWith(policies)));
  return *slot;
}

void BM_FullCompile(benchmark::State& state) {
  const config::Cluster& cluster = ClusterWith(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto compiled = policy::ClusterPolicy::Compile(cluster);
    benchmark::DoNotOptimize(compiled);
  }
  auto compiled = policy::ClusterPolicy::Compile(cluster);
  state.counters["identities"] = static_cast<double>((*compiled)->identity_count());
  state.counters["selectors"] = static_cast<double>((*compiled)->selector_count());
}
BENCHMARK(BM_FullCompile)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

struct Query {
  policy::IpAddress src, dst;
  uint16_t port;
  config::Protocol protocol;
};

// kind 0: pod → pod IPv4; 1: pod → pod IPv6; 2: pod → external IPv4 (miss); 3: external IPv6 →
// pod (miss). `equal_work`: only pods labelled app-0 … app-9, whose rules are the same kinds at
// 1k and 10k policies (at 10k a namespace's policies also select app-10 … app-19).
std::vector<Query> Queries(int kind, bool equal_work = false) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> ns(0, kNamespaces - 1),
      pod_index(0, kPods / kNamespaces / (equal_work ? 2 : 1) - 1);
  auto pod = [&](std::mt19937& r) {
    const int j = pod_index(r);
    return equal_work ? j / 10 * 20 + j % 10 : j;  // MakePod's app is app-(j % 20)
  };
  const uint16_t ports[] = {8080, 5432, 443, 80, 9001, 8050, 53};
  std::vector<Query> out;
  for (int i = 0; i < 4096; ++i) {
    const int sn = ns(rng), sp = pod(rng), dn = ns(rng), dp = pod(rng);
    Query q;
    q.port = ports[i % 7];
    q.protocol = q.port == 53 ? config::Protocol::kUDP : config::Protocol::kTCP;
    switch (kind) {
      case 0:
        q.src = *policy::IpAddress::Parse(PodV4(sn, sp));
        q.dst = *policy::IpAddress::Parse(PodV4(dn, dp));
        break;
      case 1:
        q.src = *policy::IpAddress::Parse(PodV6(sn, sp));
        q.dst = *policy::IpAddress::Parse(PodV6(dn, dp));
        break;
      case 2:
        q.src = *policy::IpAddress::Parse(PodV4(sn, sp));
        q.dst = *policy::IpAddress::Parse("203.0." + std::to_string(i % 256) + ".7");
        break;
      default:
        q.src = *policy::IpAddress::Parse("2001:db8::" + std::to_string(i % 9000 + 1));
        q.dst = *policy::IpAddress::Parse(PodV6(dn, dp));
        break;
    }
    out.push_back(q);
  }
  return out;
}

// The cluster-wide hot path: address hash → identities → both sides' rules.
void LookupLoop(benchmark::State& state, const policy::ClusterPolicy& cp,
                const std::vector<Query>& queries) {
  size_t i = 0, allowed = 0;
  for (auto _ : state) {
    const Query& q = queries[i++ & 4095];
    allowed += cp.Allowed(q.src, q.dst, q.port, q.protocol);
  }
  state.counters["allowed_ratio"] =
      static_cast<double>(allowed) / static_cast<double>(state.iterations());
  // The work the cluster's rules ask of a lookup, untimed: rule sets evaluated (an isolated side;
  // the ingress side only after the egress side allowed, as Allowed does) and their distinct
  // entries, per lookup.
  double rule_sets = 0, entries = 0;
  auto count = [&](const policy::ClusterPolicy::SideVerdict& side) {
    if (!side.enforced || !side.verdict.isolated) return;
    rule_sets += 1;
    entries += static_cast<double>(side.rules->index.distinct.size());
  };
  for (const Query& q : queries) {
    const auto v = cp.Check(cp.FindAddress(q.src), cp.FindAddress(q.dst), q.port, q.protocol);
    if (v.self) continue;
    count(v.egress);
    if (v.egress.verdict.allowed) count(v.ingress);
  }
  state.counters["rule_sets"] = rule_sets / static_cast<double>(queries.size());
  state.counters["entries"] = entries / static_cast<double>(queries.size());
}

void BM_Lookup(benchmark::State& state) {
  const policy::ClusterPolicy& cp = CompiledWith(static_cast<int>(state.range(0)));
  LookupLoop(state, cp, Queries(static_cast<int>(state.range(1))));
}
BENCHMARK(BM_Lookup)->ArgNames({"policies", "kind"})->ArgsProduct({{1000, 10000}, {0, 1, 2, 3}});

// BM_Lookup on the pods whose rules are the same kinds at 1k and 10k policies (Queries'
// `equal_work`; the rule_sets and entries counters say how equal): what is left of the growth is
// the lookup's, not the synthetic cluster's.
void BM_LookupEqualWork(benchmark::State& state) {
  const policy::ClusterPolicy& cp = CompiledWith(static_cast<int>(state.range(0)));
  LookupLoop(state, cp, Queries(static_cast<int>(state.range(1)), true));
}
BENCHMARK(BM_LookupEqualWork)
    ->ArgNames({"policies", "kind"})
    ->ArgsProduct({{1000, 10000}, {0, 1, 2, 3}});

// The sidecar's path: one pod's EndpointPolicy, egress decisions with provenance.
void BM_EndpointCheckEgress(benchmark::State& state) {
  const int policies = static_cast<int>(state.range(0));
  // ns-3/pod-3 (app-3): selected by egress policies in kind-3 namespaces.
  auto ep = policy::CompileEndpointPolicy(ClusterWith(policies), Ns(3), "pod-3");
  const std::vector<Query> queries = Queries(static_cast<int>(state.range(1)));
  size_t i = 0;
  for (auto _ : state) {
    const Query& q = queries[i++ & 4095];
    benchmark::DoNotOptimize((*ep)->CheckEgress(q.dst, q.port, q.protocol));
  }
}
BENCHMARK(BM_EndpointCheckEgress)
    ->ArgNames({"policies", "kind"})
    ->ArgsProduct({{1000, 10000}, {0, 2}});

// One pod add (new label set: selectors evaluated for one identity) and its removal, timed
// separately. `new_identity` 0 reuses an existing label set (address map only).
void BM_AddPod(benchmark::State& state) {
  policy::ClusterPolicy& cp = CompiledWith(static_cast<int>(state.range(0)));
  const bool new_identity = state.range(1) != 0;
  int n = 0;
  for (auto _ : state) {
    config::Pod pod = MakePod(7, 100 + n);
    pod.name = "extra-" + std::to_string(n);
    pod.ips = {"10.250." + std::to_string(n / 250 % 250) + "." + std::to_string(n % 250 + 1)};
    if (new_identity) pod.labels["instance"] = std::to_string(n);
    ++n;
    const auto start = std::chrono::steady_clock::now();
    auto added = cp.AddPod(pod);
    const auto mid = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(added);
    cp.RemovePod(pod.ns, pod.name);
    state.SetIterationTime(std::chrono::duration<double>(mid - start).count());
  }
}
BENCHMARK(BM_AddPod)
    ->ArgNames({"policies", "new_identity"})
    ->ArgsProduct({{1000, 10000}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

void BM_RemovePod(benchmark::State& state) {
  policy::ClusterPolicy& cp = CompiledWith(static_cast<int>(state.range(0)));
  const bool new_identity = state.range(1) != 0;
  int n = 0;
  for (auto _ : state) {
    config::Pod pod = MakePod(8, 100 + n);
    pod.name = "extra-" + std::to_string(n);
    pod.ips = {"10.251." + std::to_string(n / 250 % 250) + "." + std::to_string(n % 250 + 1)};
    if (new_identity) pod.labels["instance"] = std::to_string(n);
    ++n;
    auto added = cp.AddPod(pod);
    benchmark::DoNotOptimize(added);
    const auto start = std::chrono::steady_clock::now();
    cp.RemovePod(pod.ns, pod.name);
    const auto end = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
  }
}
BENCHMARK(BM_RemovePod)
    ->ArgNames({"policies", "new_identity"})
    ->ArgsProduct({{1000, 10000}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace picket::bench

BENCHMARK_MAIN();
