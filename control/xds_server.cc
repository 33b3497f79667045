// control/xds_server.cc — see xds_server.h.
#include "control/xds_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/hash.h"
#include "control/xds_stream.h"
#include "net/tls_stream.h"
#include "net/xds_message.h"

namespace picket::control {

base::Result<std::unique_ptr<XdsServer>> XdsServer::Create(uv_loop_t* loop,
                                                           std::shared_ptr<net::TlsContext> tls,
                                                           XdsServerOptions options) {
  std::unique_ptr<XdsServer> server(new XdsServer(loop, std::move(tls), std::move(options)));
  if (auto ok = server->Listen(); !ok) {
    // The handles are initialised: close them before the server goes away.
    server->Close();
    uv_run(loop, UV_RUN_NOWAIT);
    return std::unexpected(ok.error());
  }
  return server;
}

XdsServer::XdsServer(uv_loop_t* loop, std::shared_ptr<net::TlsContext> tls,
                     XdsServerOptions options)
    : loop_(loop), tls_(std::move(tls)), options_(std::move(options)) {
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  uv_timer_init(loop_, &sweep_timer_);
  sweep_timer_.data = this;
  uv_timer_init(loop_, &drain_timer_);
  drain_timer_.data = this;
  open_handles_ = 3;
}

XdsServer::~XdsServer() {
  // Close() must have run; streams are already closed, so their destructors do nothing.
  streams_.clear();
  dead_streams_.clear();
}

base::Result<void> XdsServer::Listen() {
  sockaddr_storage addr{};
  if (uv_ip4_addr(options_.listen_host.c_str(), options_.listen_port,
                  reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(options_.listen_host.c_str(), options_.listen_port,
                  reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return std::unexpected(
        base::Error::Of("listen address \"" + options_.listen_host + "\" is not an IP"));
  }
  if (int rc = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), 0); rc < 0) {
    return std::unexpected(net::UvError("bind " + options_.listen_host, rc));
  }
  if (int rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 1024,
                         [](uv_stream_t* s, int status) {
                           static_cast<XdsServer*>(s->data)->OnConnection(status);
                         });
      rc < 0) {
    return std::unexpected(net::UvError("listen", rc));
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  uv_timer_start(
      &sweep_timer_, [](uv_timer_t* t) { static_cast<XdsServer*>(t->data)->OnSweep(); },
      options_.sweep_interval_ms, options_.sweep_interval_ms);
  return {};
}

void XdsServer::OnConnection(int status) {
  if (status < 0 || closing_) return;
  auto stream = std::make_unique<XdsStream>(*this, next_stream_id_++, NowMs());
  ++stats_.streams_accepted;
  if (!stream->Accept(reinterpret_cast<uv_stream_t*>(&listener_))) {
    dead_streams_.push_back(std::move(stream));
    return;
  }
  ++stats_.streams_active;
  streams_.push_back(std::move(stream));
}

void XdsServer::OnStreamClosed(XdsStream* stream) {
  auto it = std::find_if(streams_.begin(), streams_.end(),
                         [stream](const auto& s) { return s.get() == stream; });
  if (it == streams_.end()) return;
  stream->ReleaseBuffered();
  if (std::string pod = stream->pod_name(); !pod.empty()) last_disconnect_ms_[pod] = NowMs();
  deferred_.erase(std::remove(deferred_.begin(), deferred_.end(), stream), deferred_.end());
  // Deferred deletion: the stream may be deep in its own callback right now.
  dead_streams_.push_back(std::move(*it));
  *it = std::move(streams_.back());
  streams_.pop_back();
  --stats_.streams_active;
  if (stream->SaysUdpSctpUnenforced()) NoteUdpSctpChange();
}

void XdsServer::AdmitIdentity(XdsStream* stream) {
  std::vector<XdsStream*> same;
  for (const auto& s : streams_) {
    if (s.get() != stream && s->state() != XdsStream::State::kClosed &&
        s->identity() == stream->identity()) {
      same.push_back(s.get());
    }
  }
  if (same.size() < options_.max_streams_per_identity) return;
  // Oldest first (ids increase with time); keep max - 1 of them plus the new stream.
  std::sort(same.begin(), same.end(),
            [](const XdsStream* a, const XdsStream* b) { return a->id() < b->id(); });
  const size_t keep =
      options_.max_streams_per_identity == 0 ? 0 : options_.max_streams_per_identity - 1;
  for (size_t i = 0; i + keep < same.size(); ++i) {
    ++stats_.streams_evicted_per_identity;
    same[i]->CloseWithStatus(net::StatusCode::kResourceExhausted,
                             "replaced by a newer stream of the same identity (at most " +
                                 std::to_string(options_.max_streams_per_identity) +
                                 " per identity)");
  }
}

std::set<std::string> XdsServer::ConnectedPods() const {
  std::set<std::string> pods;
  for (const auto& s : streams_) {
    if (s->state() == XdsStream::State::kAwaitNode || s->state() == XdsStream::State::kActive) {
      pods.insert(s->pod_name());
    }
  }
  return pods;
}

std::set<std::string> XdsServer::UdpSctpUnenforcedPods() const {
  std::set<std::string> pods;
  for (const auto& s : streams_) {
    if (s->state() == XdsStream::State::kActive && s->SaysUdpSctpUnenforced()) {
      pods.insert(s->pod_name());
    }
  }
  return pods;
}

void XdsServer::OnSweep() {
  dead_streams_.clear();
  const uint64_t now = NowMs();
  std::erase_if(last_disconnect_ms_, [&](const auto& entry) {
    return now - entry.second > options_.disconnect_memory_ms;
  });
  // A sweep far later than scheduled means this loop was stalled (a burst of work), not that
  // the peers went quiet: their frames may be waiting in the sockets. Skip timeouts this once.
  const bool stalled = last_sweep_ms_ != 0 && now - last_sweep_ms_ > 3 * options_.sweep_interval_ms;
  last_sweep_ms_ = now;
  if (stalled) {
    for (auto& s : streams_) s->NoteActivity(now);
    return;
  }
  // CheckTimeouts may remove the stream from streams_: iterate over a snapshot of ids.
  std::vector<XdsStream*> current;
  current.reserve(streams_.size());
  for (auto& s : streams_) current.push_back(s.get());
  for (XdsStream* s : current) s->CheckTimeouts(now);
}

bool XdsServer::MaySend(XdsStream* stream) {
  // The sum is O(streams): compute it at most once per loop iteration (uv_now is per iteration).
  if (queued_computed_at_ != uv_now(loop_)) {
    queued_bytes_ = 0;
    for (const auto& s : streams_) queued_bytes_ += s->queued_bytes();
    queued_computed_at_ = uv_now(loop_);
  }
  if (queued_bytes_ <= options_.max_queued_bytes) return true;
  if (std::find(deferred_.begin(), deferred_.end(), stream) == deferred_.end()) {
    deferred_.push_back(stream);
  }
  if (!drain_timer_running_ && !closing_) {
    drain_timer_running_ = true;
    uv_timer_start(
        &drain_timer_, [](uv_timer_t* t) { static_cast<XdsServer*>(t->data)->OnDrainTick(); }, 5,
        5);
  }
  return false;
}

void XdsServer::OnDrainTick() {
  std::vector<XdsStream*> waiting;
  waiting.swap(deferred_);
  // Each retry may defer again (re-adding itself) once the budget is used up.
  for (XdsStream* s : waiting) s->RetrySends();
  if (deferred_.empty()) {
    uv_timer_stop(&drain_timer_);
    drain_timer_running_ = false;
  }
}

XdsServer::TypeState* XdsServer::FindType(std::string_view type_url) {
  auto it = types_.find(type_url);
  return it == types_.end() ? nullptr : &it->second;
}

const XdsServer::TypeState* XdsServer::FindType(std::string_view type_url) const {
  auto it = types_.find(type_url);
  return it == types_.end() ? nullptr : &it->second;
}

const XdsServer::TypeState::Visible* XdsServer::VisibleTo(TypeState& type, const ScopePtr& scope) {
  if (type.visible_revision != type.revision) {
    type.visible.clear();
    type.visible_entries = 0;
    type.visible_revision = type.revision;
  }
  if (auto it = type.visible.find(scope.get()); it != type.visible.end()) {
    return &it->second.second;
  }
  TypeState::Visible list;
  for (const auto& [name, r] : type.resources) {
    if (scope->Sees(r.tags)) list.emplace_back(&name, &r);
  }
  if (type.visible_entries + list.size() > TypeState::kVisibleCacheEntries) return nullptr;
  type.visible_entries += list.size();
  auto [it, inserted] = type.visible.try_emplace(scope.get(), scope, std::move(list));
  return &it->second.second;
}

std::string XdsServer::TypeVersion(std::string_view type_url) const {
  auto* type = const_cast<XdsServer*>(this)->FindType(type_url);
  if (type == nullptr) return base::HashVersion("");
  if (type->version_stale) {
    std::string all;
    for (const auto& [name, r] : type->resources) {
      all.append(name).append("=").append(r.version) += ';';
    }
    type->version = base::HashVersion(all);
    type->version_stale = false;
  }
  return type->version;
}

size_t XdsServer::resource_count(std::string_view type_url) const {
  const TypeState* type = FindType(type_url);
  return type == nullptr ? 0 : type->resources.size();
}

size_t XdsServer::encoded_bytes(std::string_view type_url) const {
  const TypeState* type = FindType(type_url);
  size_t total = 0;
  if (type != nullptr) {
    for (const auto& [name, r] : type->resources) total += r.payload_size;
  }
  return total;
}

void XdsServer::Update(std::string_view type_url, std::vector<Upsert> upserts,
                       const std::vector<std::string>& removals) {
  TypeState& type = types_[std::string(type_url)];
  std::set<std::string> changed;
  for (Upsert& u : upserts) {
    auto it = type.resources.find(u.name);
    if (it != type.resources.end() && it->second.version == u.version) continue;
    const uint64_t revision = ++type.revision;
    // tags_revision: when this name last had other tags (0: never), whether it changed in place
    // or was removed and is back (its removal then leaves the log: see SendScopedSinceRevision).
    uint64_t tags_revision = 0;
    if (it != type.resources.end()) {
      type.by_revision.erase(it->second.revision);
      tags_revision = it->second.tags == u.tags ? it->second.tags_revision : revision;
    }
    if (auto removed = type.removed_at.find(u.name); removed != type.removed_at.end()) {
      const TypeState::Removal& gone = type.removed_log.at(removed->second);
      tags_revision = gone.tags == u.tags ? gone.tags_revision : revision;
      type.removed_log.erase(removed->second);
      type.removed_at.erase(removed);
    }
    type.by_revision.emplace(revision, u.name);
    auto wire =
        std::make_shared<const std::string>(net::EncodeWireResource(u.name, u.version, u.encoded));
    StoredResource stored{u.version, std::move(wire),   u.encoded.size(),
                          revision,  std::move(u.tags), tags_revision};
    type.resources.insert_or_assign(u.name, std::move(stored));
    changed.insert(std::move(u.name));
  }
  for (const std::string& name : removals) {
    auto it = type.resources.find(name);
    if (it == type.resources.end()) continue;
    type.by_revision.erase(it->second.revision);
    TypeState::Removal removal{name, std::move(it->second.tags), it->second.tags_revision};
    type.resources.erase(it);
    const uint64_t revision = ++type.revision;
    type.removed_log.emplace(revision, std::move(removal));
    type.removed_at[name] = revision;
    changed.insert(name);
  }
  // Bound the removal log; a stream that falls behind its start must resync (reconnect).
  const size_t max_log = std::max<size_t>(4096, type.resources.size());
  while (type.removed_log.size() > max_log) {
    auto oldest = type.removed_log.begin();
    type.removed_floor = oldest->first;
    type.removed_at.erase(oldest->second.name);
    type.removed_log.erase(oldest);
  }
  if (changed.empty()) return;
  type.version_stale = true;
  std::vector<XdsStream*> current;
  current.reserve(streams_.size());
  for (auto& s : streams_) current.push_back(s.get());
  for (XdsStream* s : current) s->OnResourcesChanged(type_url, changed);
}

ResourceScope::ResourceScope(std::vector<uint32_t> tags) {
  std::sort(tags.begin(), tags.end());
  tags.erase(std::unique(tags.begin(), tags.end()), tags.end());
  size_ = tags.size();
  for (uint32_t tag : tags) {
    if (tag < kDenseLimit) {
      if (tag / 64 >= dense_.size()) dense_.resize(tag / 64 + 1);
      dense_[tag / 64] |= uint64_t{1} << (tag % 64);
    } else {
      sparse_.push_back(tag);
    }
  }
}

uint64_t ResourceScope::Hash() const {
  const std::string_view dense(reinterpret_cast<const char*>(dense_.data()), dense_.size() * 8);
  const std::string_view sparse(reinterpret_cast<const char*>(sparse_.data()), sparse_.size() * 4);
  return base::Fnv1a64(dense) * base::kFnv1a64Prime ^ base::Fnv1a64(sparse);
}

void XdsServer::SetScopes(const std::vector<std::pair<std::string, ScopePtr>>& scopes) {
  std::set<std::string_view> changed;
  for (const auto& [pod, scope] : scopes) {
    // No scope and an empty one are the same: the pod sees nothing, and nothing is stored.
    const ScopePtr& before = ScopeOf(pod);
    const ScopePtr& after = scope != nullptr ? scope : EmptyScope();
    if (before == after || *before == *after) continue;
    if (after->empty()) {
      scopes_.erase(scopes_.find(pod));
    } else {
      scopes_.insert_or_assign(pod, after);
    }
    changed.insert(pod);
  }
  if (changed.empty()) return;
  std::vector<XdsStream*> affected;
  for (auto& s : streams_) {
    if (s->state() == XdsStream::State::kActive && changed.contains(s->pod_name())) {
      affected.push_back(s.get());
    }
  }
  for (XdsStream* s : affected) s->OnScopeChanged();
}

const ScopePtr& XdsServer::EmptyScope() {
  static const ScopePtr kEmpty = std::make_shared<const ResourceScope>();
  return kEmpty;
}

const ScopePtr& XdsServer::ScopeOf(std::string_view pod) const {
  auto it = scopes_.find(pod);
  return it == scopes_.end() ? EmptyScope() : it->second;
}

size_t XdsServer::VisibleCount(std::string_view type_url, std::string_view pod) const {
  const TypeState* type = FindType(type_url);
  if (type == nullptr) return 0;
  if (!options_.scoped_types.contains(type_url)) return type->resources.size();
  const ResourceScope& scope = *ScopeOf(pod);
  size_t n = 0;
  for (const auto& [name, r] : type->resources) n += scope.Sees(r.tags) ? 1 : 0;
  return n;
}

size_t XdsServer::StreamsSeeing(std::string_view type_url, std::string_view name) const {
  const TypeState* type = FindType(type_url);
  if (type == nullptr) return 0;
  auto r = type->resources.find(name);
  if (r == type->resources.end()) return 0;
  const bool scoped = options_.scoped_types.contains(type_url);
  size_t n = 0;
  for (const auto& s : streams_) {
    if (s->state() != XdsStream::State::kActive) continue;
    n += !scoped || ScopeOf(s->pod_name())->Sees(r->second.tags) ? 1 : 0;
  }
  return n;
}

void XdsServer::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  if (closing_) return;
  closing_ = true;
  while (!streams_.empty()) streams_.back()->Close();
  auto on_close = [](uv_handle_t* h) {
    auto* self = static_cast<XdsServer*>(h->data);
    --self->open_handles_;
    self->MaybeFinishClose();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&sweep_timer_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), on_close);
}

void XdsServer::MaybeFinishClose() {
  if (open_handles_ > 0) return;
  dead_streams_.clear();
  if (on_closed_) {
    auto done = std::move(on_closed_);
    done();
  }
}

std::string XdsServer::StatusJson() const {
  base::JsonWriter w;
  w.BeginObject();
  WriteStatusMembers(w);
  w.EndObject();
  return w.Take();
}

void XdsServer::WriteStatusMembers(base::JsonWriter& w) const {
  w.Key("sidecars").BeginArray();
  for (const auto& s : streams_) s->WriteStatus(w);
  w.EndArray();
  w.Key("resources").BeginObject();
  for (const auto& [type_url, type] : types_) {
    w.Key(type_url)
        .BeginObject()
        .Member("version", TypeVersion(type_url))
        .Member("count", type.resources.size())
        .Key("resources")
        .BeginObject();
    for (const auto& [name, r] : type.resources) w.Member(name, r.version);
    w.EndObject().EndObject();
  }
  w.EndObject();
  w.Key("stats")
      .BeginObject()
      .Member("streams_accepted", stats_.streams_accepted)
      .Member("streams_active", stats_.streams_active)
      .Member("streams_refused", stats_.streams_refused)
      .Member("streams_evicted_per_identity", stats_.streams_evicted_per_identity)
      .Member("frames_too_large", stats_.frames_too_large)
      .Member("frame_timeouts", stats_.frame_timeouts)
      .Member("buffer_budget_refusals", stats_.buffer_budget_refusals)
      .Member("buffered_bytes", buffered_bytes_)
      .Member("responses_sent", stats_.responses_sent)
      .Member("resources_sent", stats_.resources_sent)
      .Member("resources_skipped_on_resume", stats_.resources_skipped_on_resume)
      .Member("subscriptions_resumed", stats_.subscriptions_resumed)
      .Member("bytes_sent", stats_.bytes_sent)
      .Member("acks", stats_.acks)
      .Member("nacks", stats_.nacks)
      .EndObject();
}

}  // namespace picket::control
