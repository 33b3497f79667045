// control/xds_server.h — the control server's protocol side: TLS listener, one state machine
// per sidecar stream, resource store, pushes, ACK/NACK bookkeeping.
//
// Owns: the listening socket, every connected sidecar stream (control/xds_stream.h), and the
// current resources of every type (name → version + payload). Whoever computes resources
// (control/xds_snapshot.h) calls Update(); the server works out which streams each change
// affects and pushes state-of-the-world or delta responses as each stream subscribed
// (control/PROTOCOL.md). It never blocks: a stream with an un-ACKed response gets the next one
// only after its ACK/NACK, so a slow sidecar costs one pending flag, not a queue.
//
// Loop-thread only: construct, call and destroy on the thread running `loop`. Close() must be
// called, and the loop run until the close completes, before destruction.
#pragma once

#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "net/frame.h"
#include "net/tls.h"

namespace picket::control {

class XdsStream;

struct XdsServerOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;  // 0: pick one (see port())
  std::string trust_domain = "cluster.local";
  std::string control_plane_id = "picket-control";
  // Bounds on what sidecars can make the server hold (each breach closes the offending stream
  // with a terminal status and is counted in XdsServerStats):
  // - one request frame: a header announcing more is refused before its body is buffered;
  uint32_t max_frame_size = net::kDefaultMaxRequestFrameSize;
  // - the bytes of partial frames buffered by all streams together;
  size_t max_buffered_bytes = 64u << 20;
  // - how long a frame may stay incomplete (a peer that sends a header and holds);
  uint64_t frame_timeout_ms = 30000;
  // - streams per SPIFFE identity. A sidecar needs one; two allow a reconnect to overlap a
  //   connection the server has not yet seen die. When another arrives the OLDEST is closed:
  //   refusing the new one would lock a reconnecting sidecar out until the old one timed out.
  size_t max_streams_per_identity = 2;
  uint64_t handshake_timeout_ms = 10000;  // TLS + first request
  uint64_t idle_timeout_ms = 60000;       // no frame at all (the client keeps alive every 15 s)
  uint64_t sweep_interval_ms = 1000;
  // Backpressure: when the bytes queued on all sockets exceed this, pushes wait until they
  // drain (checked every 5 ms), so a burst (initial sync of many sidecars) cannot balloon memory.
  size_t max_queued_bytes = 32u << 20;
  // How long the time a pod's last stream closed is remembered (for the unprotected-pod grace,
  // control/unprotected.h); a pod gone longer is forgotten, so the memory is bounded by the pods
  // that connected within it.
  uint64_t disconnect_memory_ms = 10 * 60 * 1000;
  // Per type: resources a stream may subscribe to only under its own "ns/pod" name.
  std::set<std::string, std::less<>> own_pod_only_types;
  // Per type: scoped resources (control/PROTOCOL.md §6.1). Each stream sees only the resources
  // whose tags its pod's ResourceScope (SetScopes) contains, whatever it subscribes to, and a pod
  // without a scope sees none of them.
  std::set<std::string, std::less<>> scoped_types;
};

// What one pod may see of the scoped types: a set of tags. A scoped resource carries its own
// tags (Upsert::tags) and is visible to a pod whose scope holds any of them. The tags mean what
// the resources' producer says (control/xds_snapshot.h: identity ids and named ports).
// Immutable once shared: pods with equal scopes share one, and pointer equality is the fast path
// of "did this pod's scope change".
class ResourceScope {
 public:
  ResourceScope() = default;
  explicit ResourceScope(std::vector<uint32_t> tags);  // any order; duplicates are dropped

  bool Sees(std::span<const uint32_t> resource_tags) const {
    for (uint32_t tag : resource_tags) {
      if (Has(tag)) return true;
    }
    return false;
  }
  size_t size() const { return size_; }  // distinct tags
  bool empty() const { return size_ == 0; }
  uint64_t Hash() const;  // of the content: equal scopes hash equal
  friend bool operator==(const ResourceScope& a, const ResourceScope& b) {
    return a.size_ == b.size_ && a.dense_ == b.dense_ && a.sparse_ == b.sparse_;
  }

 private:
  // Small tags (identity ids are dense from 0) are one bit each; the rest are searched.
  static constexpr uint32_t kDenseLimit = 1u << 22;
  bool Has(uint32_t tag) const {
    if (tag < kDenseLimit) {
      const size_t word = tag / 64;
      return word < dense_.size() && (dense_[word] >> (tag % 64)) & 1;
    }
    return std::binary_search(sparse_.begin(), sparse_.end(), tag);
  }
  size_t size_ = 0;
  std::vector<uint64_t> dense_;   // its last word is never zero, so equal sets are equal vectors
  std::vector<uint32_t> sparse_;  // ascending
};
using ScopePtr = std::shared_ptr<const ResourceScope>;

// One resource as the server holds it: the payload its producer encoded once
// (control/xds_snapshot.cc), wrapped once into the object every response carries and spliced
// verbatim into each (net::Resource::wire).
struct StoredResource {
  std::string version;
  // {"name":…,"version":…,"resource":<payload>} (net::EncodeWireResource), shared.
  std::shared_ptr<const std::string> wire;
  size_t payload_size = 0;  // the payload's bytes (encoded_bytes)
  uint64_t revision = 0;    // the type's revision at which this version was stored
  // Scoped types: who may see it (ResourceScope), and the revision at which this name last had
  // other tags (0: never), so a stream sent it under other tags, that may hold it without seeing
  // it now, is told it is gone.
  std::vector<uint32_t> tags;
  uint64_t tags_revision = 0;
};

struct XdsServerStats {
  uint64_t streams_accepted = 0;
  uint64_t streams_active = 0;
  uint64_t streams_refused = 0;  // every stream closed with a non-OK status (all reasons)
  // Resource bounds (XdsServerOptions), each also counted in streams_refused:
  uint64_t streams_evicted_per_identity = 0;  // oldest closed: identity over its stream cap
  uint64_t frames_too_large = 0;              // header announced more than max_frame_size
  uint64_t frame_timeouts = 0;                // a frame incomplete after frame_timeout_ms
  uint64_t buffer_budget_refusals = 0;        // partial frames over max_buffered_bytes
  uint64_t responses_sent = 0;
  uint64_t resources_sent = 0;
  // Resume (PROTOCOL.md §4.5): resources not sent on a new stream because the sidecar said it
  // already holds their version (delta initial_resource_versions, SotW version_info), and the
  // subscriptions whose first request needed nothing sent at all.
  uint64_t resources_skipped_on_resume = 0;
  uint64_t subscriptions_resumed = 0;
  uint64_t bytes_sent = 0;  // frame bytes before TLS
  uint64_t acks = 0;
  uint64_t nacks = 0;
  // The same three per resource type (type URL → counts), for /stats/prometheus.
  struct PerType {
    uint64_t responses_sent = 0;
    uint64_t acks = 0;
    uint64_t nacks = 0;
  };
  std::map<std::string, PerType, std::less<>> by_type;
};

class XdsServer {
 public:
  [[nodiscard]] static base::Result<std::unique_ptr<XdsServer>> Create(
      uv_loop_t* loop, std::shared_ptr<net::TlsContext> tls, XdsServerOptions options);
  ~XdsServer();
  XdsServer(const XdsServer&) = delete;
  XdsServer& operator=(const XdsServer&) = delete;

  uint16_t port() const { return port_; }

  // Replaces or adds `upserts` (name → payload) and removes `removals` of `type_url`, then
  // pushes to every affected stream. A resource whose version is unchanged is not resent.
  struct Upsert {
    std::string name;
    std::string version;              // base::HashVersion(encoded)
    std::string encoded;              // the payload's JSON text
    std::vector<uint32_t> tags = {};  // scoped types only: ascending (ResourceScope)
  };
  void Update(std::string_view type_url, std::vector<Upsert> upserts,
              const std::vector<std::string>& removals);

  // Scoped types: replaces the scope of each pod ("ns/name") listed; nullptr removes it (the pod
  // then sees no scoped resource). Streams of those pods are sent what entered their scope and
  // told what left it.
  void SetScopes(const std::vector<std::pair<std::string, ScopePtr>>& scopes);
  // The scope of `pod` (never null: the empty scope when none was set).
  const ScopePtr& ScopeOf(std::string_view pod) const;
  static const ScopePtr& EmptyScope();
  // Scoped types: how many resources of `type_url` `pod`'s scope sees, and how many active
  // streams see resource `name` (what the scale benchmark reports and waits for).
  size_t VisibleCount(std::string_view type_url, std::string_view pod) const;
  size_t StreamsSeeing(std::string_view type_url, std::string_view name) const;

  // Stops listening and closes every stream; `done` runs once all handles are closed.
  void Close(std::function<void()> done = nullptr);

  // Status for the admin endpoint: streams, per-type resource versions, as a JSON object, or
  // its members ("sidecars", "resources", "stats") written into an object the caller opened.
  std::string StatusJson() const;
  void WriteStatusMembers(base::JsonWriter& w) const;
  const XdsServerStats& stats() const { return stats_; }
  // Pods ("ns/name", as their client certificates name them) with an authenticated stream now.
  std::set<std::string> ConnectedPods() const;
  // When each pod's most recent stream closed (loop time, ms), for pods seen within
  // options.disconnect_memory_ms.
  const std::map<std::string, uint64_t, std::less<>>& last_disconnect_ms() const {
    return last_disconnect_ms_;
  }
  // Pods with an active stream whose node says `udp_sctp_enforced: false` (PROTOCOL.md §3.7).
  std::set<std::string> UdpSctpUnenforcedPods() const;
  // Called (not during Close) after a stream whose node says `udp_sctp_enforced: false` became
  // active or closed, i.e. whenever UdpSctpUnenforcedPods() may have changed.
  void SetUdpSctpObserver(std::function<void()> observer) {
    udp_sctp_observer_ = std::move(observer);
  }
  // Bytes of partial frames buffered by all streams now.
  size_t buffered_bytes() const { return buffered_bytes_; }
  // The per-type version of everything currently stored (hash over names and versions).
  std::string TypeVersion(std::string_view type_url) const;
  size_t resource_count(std::string_view type_url) const;
  // Bytes of the stored wire form of every resource of `type_url`.
  size_t encoded_bytes(std::string_view type_url) const;

 private:
  friend class XdsStream;
  // Every change to a type bumps its revision. Wildcard delta streams remember only the revision
  // they were last sent and get "what changed since": per-stream state is O(1), not O(names)
  // (control/PROTOCOL.md §6).
  struct TypeState {
    std::map<std::string, StoredResource, std::less<>> resources;
    std::string version;  // recomputed lazily
    bool version_stale = true;
    uint64_t revision = 0;
    std::map<uint64_t, std::string> by_revision;  // present resources by their revision
    struct Removal {
      std::string name;
      std::vector<uint32_t> tags;  // its tags when removed, and since when it had them
      uint64_t tags_revision = 0;
    };
    std::map<uint64_t, Removal> removed_log;                  // removals by revision (bounded)
    std::map<std::string, uint64_t, std::less<>> removed_at;  // name → its removed_log key
    uint64_t removed_floor = 0;  // removals at or below this revision were pruned
    // Scoped types: what each scope sees at `visible_revision`, computed on a stream's initial
    // wildcard sync and shared by every stream with that scope (pods with equal scopes share one
    // object), so a sync walks its visible resources, not the whole store. Dropped when the
    // revision moves (any upsert or removal); the ScopePtr keeps its key alive. Bounded: at most
    // kVisibleCacheEntries pairs in all (16 B each); past that a sync walks the store.
    using Visible = std::vector<std::pair<const std::string*, const StoredResource*>>;
    static constexpr size_t kVisibleCacheEntries = size_t{2} << 20;  // 32 MiB
    uint64_t visible_revision = 0;
    size_t visible_entries = 0;
    std::unordered_map<const ResourceScope*, std::pair<ScopePtr, Visible>> visible;
  };

  XdsServer(uv_loop_t* loop, std::shared_ptr<net::TlsContext> tls, XdsServerOptions options);
  [[nodiscard]] base::Result<void> Listen();
  void OnConnection(int status);
  void OnSweep();
  void OnStreamClosed(XdsStream* stream);
  // A stream saying it does not enforce UDP/SCTP became active or closed.
  void NoteUdpSctpChange() {
    if (!closing_ && udp_sctp_observer_) udp_sctp_observer_();
  }
  // `stream` just authenticated: closes the oldest streams of its identity over the cap.
  void AdmitIdentity(XdsStream* stream);
  // Whether `stream` may build and send a response now; if not, it is retried later.
  bool MaySend(XdsStream* stream);
  void NoteQueued(size_t bytes) { queued_bytes_ += bytes; }
  void OnDrainTick();
  void MaybeFinishClose();
  TypeState* FindType(std::string_view type_url);
  const TypeState* FindType(std::string_view type_url) const;
  // The resources of `type` that `scope` sees, in name order (TypeState::visible); nullptr when
  // the cache is full (the caller walks the store).
  const TypeState::Visible* VisibleTo(TypeState& type, const ScopePtr& scope);
  uint64_t NowMs() const { return uv_now(loop_); }

  uv_loop_t* loop_;
  std::shared_ptr<net::TlsContext> tls_;
  XdsServerOptions options_;
  uv_tcp_t listener_{};
  uv_timer_t sweep_timer_{};
  uv_timer_t drain_timer_{};
  std::vector<XdsStream*> deferred_;  // waiting for the queued bytes to drop under budget
  bool drain_timer_running_ = false;
  size_t buffered_bytes_ = 0;  // sum of the streams' partial frames (XdsStream::AccountBuffered)
  size_t queued_bytes_ = 0;    // sum of the streams' socket queues, plus what was sent since
  uint64_t last_sweep_ms_ = 0;
  uint64_t queued_computed_at_ = UINT64_MAX;
  uint16_t port_ = 0;
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
  std::function<void()> udp_sctp_observer_;
  std::map<std::string, TypeState, std::less<>> types_;
  std::map<std::string, uint64_t, std::less<>> last_disconnect_ms_;  // "ns/name" → when
  std::map<std::string, ScopePtr, std::less<>> scopes_;              // "ns/name" → its scope
  std::vector<std::unique_ptr<XdsStream>> streams_;
  std::vector<std::unique_ptr<XdsStream>> dead_streams_;  // freed on the next sweep
  uint64_t next_stream_id_ = 1;
  XdsServerStats stats_;
};

}  // namespace picket::control
