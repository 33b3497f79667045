// test/bench/json_bench.cc — which JSON reader for untrusted input: simdjson 3.0 (DOM) versus
// nlohmann-json 3.11, and base/json.h (our wrapper over simdjson) on two realistic documents:
//   pods:    a Kubernetes PodList of 10,000 pods (~3 KB each: labels, annotations, owner
//            references, containers with ports, status with podIPs/hostIPs/conditions);
//   address: a 10,000-entry Picket address map, as one delta_discovery_response frame
//            (net/xds_message.h; payloads as policy::EncodeAddressEntry writes them).
// Each is parsed only (Parse) and parsed with every field visited (Walk). Counters: bytes/s,
// `alloc_bytes` (all bytes allocated per document) and `peak_bytes` (peak live heap during one
// parse, over what was live before), from the counting operator new below, and `peak_rss` (the
// growth of resident memory during one parse: simdjson reserves ~15 bytes per input byte but
// touches only what the document needs; Linux's /proc/self/clear_refs resets the high-water
// mark before each parse).
//
// bazel run -c opt //test/bench:json_bench -- --benchmark_repetitions=5
//     --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <nlohmann/json.hpp>
#include <string>

#include "base/json.h"

// --- Counting allocator ---------------------------------------------------------------------

namespace {
size_t g_allocated = 0;  // total bytes ever allocated
size_t g_live = 0;
size_t g_peak = 0;

void* Count(void* p) {
  if (p == nullptr) return p;
  const size_t n = malloc_usable_size(p);
  g_allocated += n;
  g_live += n;
  if (g_live > g_peak) g_peak = g_live;
  return p;
}
void Release(void* p) {
  if (p == nullptr) return;
  g_live -= malloc_usable_size(p);
  std::free(p);
}
void* Allocate(size_t n) {
  void* p = Count(std::malloc(n == 0 ? 1 : n));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* AllocateAligned(size_t n, std::align_val_t a) {
  const size_t align = static_cast<size_t>(a);
  void* p = Count(std::aligned_alloc(align, (n + align - 1) / align * align));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(size_t n) { return Allocate(n); }
void* operator new[](size_t n) { return Allocate(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return Count(std::malloc(n ? n : 1));
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return Count(std::malloc(n ? n : 1));
}
void* operator new(size_t n, std::align_val_t a) { return AllocateAligned(n, a); }
void* operator new[](size_t n, std::align_val_t a) { return AllocateAligned(n, a); }
void operator delete(void* p) noexcept { Release(p); }
void operator delete[](void* p) noexcept { Release(p); }
void operator delete(void* p, size_t) noexcept { Release(p); }
void operator delete[](void* p, size_t) noexcept { Release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { Release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { Release(p); }
void operator delete(void* p, std::align_val_t) noexcept { Release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { Release(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { Release(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { Release(p); }

namespace {

using picket::base::JsonWriter;

// --- The documents --------------------------------------------------------------------------

std::string Hex(uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(digits, '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[i] = kHex[v & 0xf];
  return s;
}

std::string Uid(uint64_t i) {
  return Hex(i * 0x9e3779b9, 8) + "-" + Hex(i, 4) + "-4" + Hex(i * 7, 3) + "-a" + Hex(i * 13, 3) +
         "-" + Hex(i * 0x51ed27, 12);
}

std::string Ip(uint64_t i) {
  return "10." + std::to_string(1 + (i >> 16) % 250) + "." + std::to_string((i >> 8) & 255) + "." +
         std::to_string(i & 255);
}

void Condition(JsonWriter& w, std::string_view type) {
  w.BeginObject()
      .Member("type", type)
      .Member("status", "True")
      .Key("lastProbeTime")
      .Null()
      .Member("lastTransitionTime", "2026-12-01T10:15:42Z")
      .EndObject();
}

void Container(JsonWriter& w, uint64_t i, std::string_view name, int port) {
  w.BeginObject()
      .Member("name", name)
      .Member("image", "registry.example.com/team-" + std::to_string(i % 40) + "/" +
                           std::string(name) + ":v1." + std::to_string(i % 17) + ".3")
      .Key("ports")
      .BeginArray()
      .BeginObject()
      .Member("name", "http")
      .Member("containerPort", port)
      .Member("protocol", "TCP")
      .EndObject()
      .BeginObject()
      .Member("name", "metrics")
      .Member("containerPort", 9090)
      .Member("protocol", "TCP")
      .EndObject()
      .EndArray()
      .Key("env")
      .BeginArray()
      .BeginObject()
      .Member("name", "POD_NAME")
      .Key("valueFrom")
      .BeginObject()
      .Key("fieldRef")
      .BeginObject()
      .Member("apiVersion", "v1")
      .Member("fieldPath", "metadata.name")
      .EndObject()
      .EndObject()
      .EndObject()
      .BeginObject()
      .Member("name", "LOG_LEVEL")
      .Member("value", "info")
      .EndObject()
      .EndArray()
      .Key("resources")
      .BeginObject()
      .Key("limits")
      .BeginObject()
      .Member("cpu", "500m")
      .Member("memory", "256Mi")
      .EndObject()
      .Key("requests")
      .BeginObject()
      .Member("cpu", "100m")
      .Member("memory", "128Mi")
      .EndObject()
      .EndObject()
      .Key("volumeMounts")
      .BeginArray()
      .BeginObject()
      .Member("name", "kube-api-access-" + Hex(i, 5))
      .Member("readOnly", true)
      .Member("mountPath", "/var/run/secrets/kubernetes.io/serviceaccount")
      .EndObject()
      .EndArray()
      .Member("terminationMessagePath", "/dev/termination-log")
      .Member("imagePullPolicy", "IfNotPresent")
      .EndObject();
}

void Pod(JsonWriter& w, uint64_t i) {
  const std::string ns = "team-" + std::to_string(i % 100);
  const std::string app = "app-" + std::to_string(i % 500);
  const std::string name = app + "-" + Hex(i * 2654435761u, 10) + "-" + Hex(i, 5);
  w.BeginObject().Key("metadata").BeginObject();
  w.Member("name", name).Member("generateName", app + "-" + Hex(i * 2654435761u, 10) + "-");
  w.Member("namespace", ns).Member("uid", Uid(i));
  w.Member("resourceVersion", std::to_string(100000000 + i * 37));
  w.Member("creationTimestamp", "2026-12-01T10:15:" + std::to_string(10 + i % 50) + "Z");
  w.Key("labels").BeginObject();
  w.Member("app.kubernetes.io/name", app).Member("app.kubernetes.io/instance", app + "-prod");
  w.Member("app.kubernetes.io/version", "1." + std::to_string(i % 17) + ".3");
  w.Member("pod-template-hash", Hex(i * 2654435761u, 10)).Member("tier", i % 3 ? "backend" : "web");
  w.EndObject();
  w.Key("annotations").BeginObject();
  w.Member("kubectl.kubernetes.io/restartedAt", "2026-11-30T08:00:00Z");
  w.Member("prometheus.io/scrape", "true").Member("prometheus.io/port", "9090");
  w.EndObject();
  w.Key("ownerReferences").BeginArray().BeginObject();
  w.Member("apiVersion", "apps/v1").Member("kind", "ReplicaSet");
  w.Member("name", app + "-" + Hex(i * 2654435761u, 10)).Member("uid", Uid(i + 1000000));
  w.Member("controller", true).Member("blockOwnerDeletion", true);
  w.EndObject().EndArray();
  w.EndObject();  // metadata
  w.Key("spec").BeginObject();
  w.Key("volumes").BeginArray().BeginObject().Member("name", "kube-api-access-" + Hex(i, 5));
  w.Key("projected").BeginObject().Member("defaultMode", 420).EndObject();
  w.EndObject().EndArray();
  w.Key("containers").BeginArray();
  Container(w, i, app, 8080);
  Container(w, i, "sidecar", 15001);
  w.EndArray();
  w.Member("restartPolicy", "Always").Member("terminationGracePeriodSeconds", 30);
  w.Member("dnsPolicy", "ClusterFirst").Member("serviceAccountName", "default");
  w.Member("nodeName", "node-" + std::to_string(i % 200));
  w.Key("securityContext").BeginObject().EndObject();
  w.Member("schedulerName", "default-scheduler").Member("priority", 0);
  w.Member("enableServiceLinks", true).Member("preemptionPolicy", "PreemptLowerPriority");
  w.EndObject();  // spec
  w.Key("status").BeginObject().Member("phase", "Running");
  w.Key("conditions").BeginArray();
  for (std::string_view t : {"Initialized", "Ready", "ContainersReady", "PodScheduled"}) {
    Condition(w, t);
  }
  w.EndArray();
  w.Member("hostIP", "192.168.1." + std::to_string(i % 200));
  w.Key("hostIPs").BeginArray().BeginObject().Member("ip", "192.168.1." + std::to_string(i % 200));
  w.EndObject().EndArray();
  w.Member("podIP", Ip(i));
  w.Key("podIPs").BeginArray().BeginObject().Member("ip", Ip(i)).EndObject();
  w.BeginObject().Member("ip", "fd00::" + Hex(i, 4)).EndObject().EndArray();
  w.Member("startTime", "2026-12-01T10:15:42Z").Member("qosClass", "Burstable");
  w.EndObject();  // status
  w.EndObject();
}

std::string PodList(int pods) {
  JsonWriter w;
  w.BeginObject().Member("kind", "PodList").Member("apiVersion", "v1");
  w.Key("metadata").BeginObject().Member("resourceVersion", "123456789").EndObject();
  w.Key("items").BeginArray();
  for (int i = 0; i < pods; ++i) Pod(w, i);
  w.EndArray().EndObject();
  return w.Take();
}

// As policy::EncodeAddressEntry writes one.
std::string AddressEntry(uint64_t i) {
  JsonWriter w;
  w.BeginObject().Member("identity", 1000 + i % 3000);
  w.Member("namespace", "team-" + std::to_string(i % 100));
  w.Member("pod", "app-" + std::to_string(i % 500) + "-" + Hex(i * 2654435761u, 10));
  w.Key("ips").BeginArray().String(Ip(i)).String("fd00::" + Hex(i, 4)).EndArray();
  w.Key("labels").BeginObject();
  w.Member("app.kubernetes.io/name", "app-" + std::to_string(i % 500));
  w.Member("pod-template-hash", Hex(i * 2654435761u, 10)).Member("tier", i % 3 ? "backend" : "web");
  w.EndObject();
  w.Key("named_ports").BeginArray();
  w.BeginObject().Member("name", "http").Member("port", 8080).Member("protocol", "TCP").EndObject();
  w.BeginObject().Member("name", "metrics").Member("port", 9090).Member("protocol", "TCP");
  w.EndObject().EndArray().EndObject();
  return w.Take();
}

std::string AddressMap(int entries) {
  JsonWriter w;
  w.BeginObject().Key("delta_discovery_response").BeginObject();
  w.Member("system_version_info", "v42").Key("resources").BeginArray();
  for (int i = 0; i < entries; ++i) {
    w.BeginObject().Member("name", "team-" + std::to_string(i % 100) + "/pod-" + std::to_string(i));
    w.Member("version", Hex(i * 0x9e3779b97f4a7c15ull, 16)).Key("resource").Raw(AddressEntry(i));
    w.EndObject();
  }
  w.EndArray().Member("type_url", "type.picket.dev/picket.v1.AddressEntry");
  w.Member("nonce", "17").Member("control_plane", "picket-control");
  w.EndObject().EndObject();
  return w.Take();
}

const std::string& Document(int which) {
  static const std::string* pods = new std::string(PodList(10000));
  static const std::string* address = new std::string(AddressMap(10000));
  return which == 0 ? *pods : *address;
}

// --- Walks: visit every value, fold it into a number the optimiser must keep -----------------

uint64_t Walk(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      uint64_t h = 1;
      simdjson::dom::array a = e.get_array().value_unsafe();
      for (simdjson::dom::element x : a) h += Walk(x);
      return h;
    }
    case simdjson::dom::element_type::OBJECT: {
      uint64_t h = 2;
      simdjson::dom::object o = e.get_object().value_unsafe();
      for (auto [k, v] : o) h += k.size() + Walk(v);
      return h;
    }
    case simdjson::dom::element_type::STRING:
      return e.get_string().value_unsafe().size();
    case simdjson::dom::element_type::INT64:
      return static_cast<uint64_t>(e.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64:
      return e.get_uint64().value_unsafe();
    case simdjson::dom::element_type::DOUBLE:
      return static_cast<uint64_t>(e.get_double().value_unsafe());
    case simdjson::dom::element_type::BOOL:
      return e.get_bool().value_unsafe() ? 3 : 4;
    case simdjson::dom::element_type::NULL_VALUE:
      return 5;
  }
  return 0;
}

uint64_t Walk(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::array: {
      uint64_t h = 1;
      for (const auto& x : j) h += Walk(x);
      return h;
    }
    case nlohmann::json::value_t::object: {
      uint64_t h = 2;
      for (const auto& [k, v] : j.items()) h += k.size() + Walk(v);
      return h;
    }
    case nlohmann::json::value_t::string:
      return j.get_ref<const std::string&>().size();
    case nlohmann::json::value_t::number_integer:
      return static_cast<uint64_t>(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return j.get<uint64_t>();
    case nlohmann::json::value_t::number_float:
      return static_cast<uint64_t>(j.get<double>());
    case nlohmann::json::value_t::boolean:
      return j.get<bool>() ? 3 : 4;
    default:
      return 5;
  }
}

uint64_t Walk(picket::base::JsonValue v) {
  using picket::base::JsonType;
  switch (v.type()) {
    case JsonType::kArray: {
      uint64_t h = 1;
      for (picket::base::JsonValue x : v.Elements()) h += Walk(x);
      return h;
    }
    case JsonType::kObject: {
      uint64_t h = 2;
      for (const picket::base::JsonMember& m : v.Members()) h += m.key.size() + Walk(m.value);
      return h;
    }
    case JsonType::kString:
      return v.AsString()->size();
    case JsonType::kInt64:
      return static_cast<uint64_t>(*v.AsInt64());
    case JsonType::kUint64:
      return *v.AsUint64();
    case JsonType::kDouble:
      return static_cast<uint64_t>(*v.AsDouble());
    case JsonType::kBool:
      return *v.AsBool() ? 3 : 4;
    case JsonType::kNull:
      return 5;
  }
  return 0;
}

// VmRSS or VmHWM of this process, in bytes (0 when /proc is not there).
size_t ProcStatus(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0)
      return std::strtoull(line.c_str() + std::strlen(field), nullptr, 10) * 1024;
  }
  return 0;
}

// Every allocation of 128 KiB or more gets its own mapping, returned to the kernel when freed,
// so that resident-memory growth measures one parse and not the heap's history.
[[maybe_unused]] const int kMmapThreshold = mallopt(M_MMAP_THRESHOLD, 128 << 10);

void ResetPeakRss() {
  malloc_trim(0);  // hand freed heap pages back first
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

// --- Benchmarks -----------------------------------------------------------------------------

enum Reader { kSimdjson, kNlohmann, kBase };

template <Reader kReader, bool kWalk>
void BM_Json(benchmark::State& state) {
  const std::string& text = Document(static_cast<int>(state.range(0)));
  size_t allocated = 0, peak = 0, rss = 0;
  for (auto _ : state) {
    state.PauseTiming();
    ResetPeakRss();
    const size_t rss_before = ProcStatus("VmRSS:");
    state.ResumeTiming();
    const size_t allocated_before = g_allocated;
    const size_t live_before = g_live;
    g_peak = g_live;
    uint64_t h = 0;
    if constexpr (kReader == kSimdjson) {
      simdjson::dom::parser parser;  // a fresh parser each time, as a one-shot read would
      simdjson::dom::element root = parser.parse(text.data(), text.size()).value();
      if constexpr (kWalk) h = Walk(root);
      benchmark::DoNotOptimize(root);
    } else if constexpr (kReader == kNlohmann) {
      nlohmann::json j = nlohmann::json::parse(text);
      if constexpr (kWalk) h = Walk(j);
      benchmark::DoNotOptimize(j);
    } else {
      auto doc = picket::base::ParseJson(text);
      if (!doc) state.SkipWithError(doc.error().ToString().c_str());
      if constexpr (kWalk) h = Walk(doc->root());
      benchmark::DoNotOptimize(doc);
    }
    benchmark::DoNotOptimize(h);
    allocated = g_allocated - allocated_before;
    peak = std::max(peak, g_peak - live_before);
    state.PauseTiming();
    rss = std::max(rss, ProcStatus("VmHWM:") - rss_before);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["doc_bytes"] = static_cast<double>(text.size());
  state.counters["alloc_bytes"] = static_cast<double>(allocated);
  state.counters["peak_bytes"] = static_cast<double>(peak);
  state.counters["peak_rss"] = static_cast<double>(rss);
}

// Arg 0: the PodList; arg 1: the address-map frame.
BENCHMARK(BM_Json<kSimdjson, false>)
    ->Name("simdjson/parse")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Json<kSimdjson, true>)
    ->Name("simdjson/walk")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Json<kNlohmann, false>)
    ->Name("nlohmann/parse")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Json<kNlohmann, true>)
    ->Name("nlohmann/walk")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Json<kBase, false>)
    ->Name("base_json/parse")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Json<kBase, true>)
    ->Name("base_json/walk")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
