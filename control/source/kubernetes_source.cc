// control/source/kubernetes_source.cc — see kubernetes_source.h.
#include "control/source/kubernetes_source.h"

#include <random>
#include <utility>

namespace picket::control::source {

base::Result<std::unique_ptr<KubernetesSource>> KubernetesSource::Create(
    KubernetesSourceOptions options) {
  const KubeConfig& c = options.config;
  auto tls = net::TlsContext::CreateClient(c.ca_pem, c.client_cert_pem, c.client_key_pem,
                                           c.insecure_skip_tls_verify);
  if (!tls) return std::unexpected(std::move(tls.error()).Context(c.describe));
  return std::unique_ptr<KubernetesSource>(new KubernetesSource(std::move(options), *tls));
}

KubernetesSource::KubernetesSource(KubernetesSourceOptions options,
                                   std::shared_ptr<net::TlsContext> tls)
    : options_(std::move(options)),
      tls_(std::move(tls)),
      token_(options_.config.token, options_.config.token_file) {
  options_.reflector.path_prefix = options_.config.path_prefix;
  if (options_.seed == 0) options_.seed = std::random_device{}();
}

KubernetesSource::~KubernetesSource() {
  reflectors_.clear();
  client_.reset();
  if (debounce_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(debounce_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

base::Result<void> KubernetesSource::Start(uv_loop_t* loop, OnUpdate on_update) {
  loop_ = loop;
  on_update_ = std::move(on_update);
  net::HttpClientOptions http;
  http.host = options_.config.host;
  http.port = options_.config.port;
  http.tls = tls_;
  http.verify_name = options_.config.tls_server_name;
  http.connect_timeout_ms = options_.connect_timeout_ms;
  http.response_timeout_ms = options_.response_timeout_ms;
  // A watch hears at least a bookmark or its end within its timeout; silence well past that
  // means the connection is gone.
  http.stream_idle_timeout_ms = (2ull * options_.reflector.watch_timeout_s + 30) * 1000;
  client_ = std::make_unique<net::HttpClient>(loop, std::move(http));
  debounce_ = new uv_timer_t;
  uv_timer_init(loop, debounce_);
  debounce_->data = this;
  uint64_t seed = options_.seed;
  for (const KindInfo& kind : WatchedKinds()) {
    reflectors_.push_back(std::make_unique<KubeReflector>(loop, kind, client_.get(), &token_,
                                                          options_.reflector, seed++,
                                                          [this, k = kind.kind] { OnChange(k); }));
  }
  for (auto& r : reflectors_) r->Start();
  return {};
}

void KubernetesSource::OnChange(KubeKind kind) {
  if (closed_) return;
  dirty_.insert(kind);
  ++changes_;
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(debounce_))) return;
  uv_timer_start(
      debounce_, [](uv_timer_t* t) { static_cast<KubernetesSource*>(t->data)->Deliver(); },
      options_.debounce_ms, 0);
}

void KubernetesSource::Deliver() {
  if (closed_ || !on_update_) return;
  for (const auto& r : reflectors_) {
    // Before every kind is listed, a state would be missing whole kinds: deliver nothing yet.
    if (!r->listed()) return;
  }
  SourceUpdate update;
  config::Cluster cluster;
  for (const auto& r : reflectors_) {
    for (const auto& [key, entry] : r->objects()) {
      for (const base::Error& e : entry.errors) update.errors.push_back(e);
      if (!entry.good) continue;
      std::visit(
          [&](const auto& object) {
            using T = std::decay_t<decltype(object)>;
            if constexpr (std::is_same_v<T, config::Namespace>)
              cluster.namespaces.push_back(object);
            if constexpr (std::is_same_v<T, config::Pod>) cluster.pods.push_back(object);
            if constexpr (std::is_same_v<T, config::NetworkPolicy>) {
              cluster.policies.push_back(object);
            }
            if constexpr (std::is_same_v<T, config::Service>) cluster.services.push_back(object);
            if constexpr (std::is_same_v<T, config::EndpointSlice>) {
              cluster.endpoint_slices.push_back(object);
            }
          },
          *entry.good);
    }
  }
  update.pods_only = delivered_ && dirty_.size() == 1 && dirty_.count(KubeKind::kPod) == 1;
  update.parsed = std::exchange(changes_, 0);
  update.cluster = std::move(cluster);
  dirty_.clear();
  delivered_ = true;
  ++updates_;
  on_update_(std::move(update));
}

size_t KubernetesSource::unit_count() const {
  size_t n = 0;
  for (const auto& r : reflectors_) n += r->objects().size();
  return n;
}

void KubernetesSource::WriteStatusMembers(base::JsonWriter& w) const {
  w.Key("kinds").BeginArray();
  for (const auto& r : reflectors_) {
    const ReflectorCounters& c = r->counters();
    w.BeginObject()
        .Member("kind", r->kind().name)
        .Member("listed", r->listed())
        .Member("resource_version", r->resource_version())
        .Member("objects", r->objects().size())
        .Member("lists", c.lists)
        .Member("watches", c.watches)
        .Member("events", c.events)
        .Member("bookmarks", c.bookmarks)
        .Member("relists_410", c.relists_410)
        .Member("status_401", c.status_401)
        .Member("status_429", c.status_429)
        .Member("failures", c.failures)
        .Member("last_error", r->last_error())
        .EndObject();
  }
  w.EndArray();
}

std::vector<SourceKindMetrics> KubernetesSource::KindMetrics() const {
  std::vector<SourceKindMetrics> out;
  for (const auto& r : reflectors_) {
    const ReflectorCounters& c = r->counters();
    SourceKindMetrics m;
    m.kind = r->kind().name;
    m.listed = r->listed();
    m.objects = r->objects().size();
    m.lists = c.lists;
    m.watches = c.watches;
    m.events = c.events;
    m.bookmarks = c.bookmarks;
    m.relists_410 = c.relists_410;
    m.errors_by_code = c.errors_by_code;
    if (c.last_seen_ms != 0 && loop_ != nullptr)
      m.since_last_seen_ms = uv_now(loop_) - c.last_seen_ms;
    out.push_back(std::move(m));
  }
  return out;
}

void KubernetesSource::Close(std::function<void()> done) {
  closed_ = true;
  for (auto& r : reflectors_) r->Stop();
  if (client_) client_->Close();
  if (debounce_ == nullptr) {
    if (done) done();
    return;
  }
  uv_timer_stop(debounce_);
  // The last handle closed by this source: when it is gone, the rest (closed before) are too.
  auto* timer = std::exchange(debounce_, nullptr);
  timer->data = new std::function<void()>(std::move(done));
  reflectors_.clear();
  client_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* h) {
    auto* fn = static_cast<std::function<void()>*>(h->data);
    delete reinterpret_cast<uv_timer_t*>(h);
    if (*fn) (*fn)();
    delete fn;
  });
}

}  // namespace picket::control::source
