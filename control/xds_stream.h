// control/xds_stream.h — one sidecar's stream on the control server: the per-connection
// protocol state machine (control/PROTOCOL.md §4).
//
// Owns: the connection's TlsStream pointer (see net/tls_stream.h for its close path), the frame
// decoder, the peer's authenticated identity (its certificate's SPIFFE URI) and node, and one
// Subscription per type: mode (state of the world or delta), subscribed names, what the
// sidecar has been sent, the outstanding nonce, the last ACK and NACK.
//
// States: kHandshake (TLS) → kAwaitNode (verified certificate, no request yet) → kActive →
// kClosed. Every refusal sends a terminal `status` frame naming the reason, then closes.
//
// Loop-thread only. Owned by XdsServer, which outlives it; freed by the server after it closed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "net/frame.h"
#include "net/tls_stream.h"
#include "net/xds_message.h"

namespace picket::control {

class XdsServer;
struct ResourceScope;
struct StoredResource;

class XdsStream : public net::TlsStream::Handler {
 public:
  enum class State : uint8_t { kHandshake, kAwaitNode, kActive, kClosed };

  XdsStream(XdsServer& server, uint64_t id, uint64_t now_ms);
  ~XdsStream() override;
  XdsStream(const XdsStream&) = delete;
  XdsStream& operator=(const XdsStream&) = delete;

  // Accepts the pending connection on `listener`. False: refused (already counted).
  bool Accept(uv_stream_t* listener);

  // Resources of `type_url` named `names` changed (or were removed): push if subscribed.
  void OnResourcesChanged(std::string_view type_url, const std::set<std::string>& names);
  // This pod's scope changed (XdsServer::SetScopes): push what entered it, remove what left.
  void OnScopeChanged();
  // Closes now without a status (server shutdown) or with one.
  void Close();
  void CloseWithStatus(net::StatusCode code, const std::string& message);
  // Sweep: close on handshake, idle or partial-frame timeout.
  void CheckTimeouts(uint64_t now_ms);
  // Counts as activity (the server's loop was stalled; the peer may have been sending).
  void NoteActivity(uint64_t now_ms) {
    last_activity_ms_ = now_ms;
    if (partial_since_ms_ != 0) partial_since_ms_ = now_ms;
  }

  // Bytes handed to the socket but not yet written.
  size_t queued_bytes() const;
  // Re-attempts every subscription's push (after backpressure lifted).
  void RetrySends();

  State state() const { return state_; }
  const std::string& identity() const { return spiffe_id_; }
  // "ns/name" of the pod the client certificate names; empty before the TLS handshake.
  std::string pod_name() const { return spiffe_id_.empty() ? std::string() : own_name(); }
  // Gives back this stream's share of the server's buffered-bytes budget and frees the
  // decoder's buffer (the stream closed).
  void ReleaseBuffered();
  uint64_t id() const { return id_; }
  // The node (first request) says `udp_sctp_enforced: false`.
  bool SaysUdpSctpUnenforced() const {
    return node_ && node_->udp_sctp_enforced.has_value() && !*node_->udp_sctp_enforced;
  }
  // This stream as one JSON object of the admin endpoint's /status "sidecars".
  void WriteStatus(base::JsonWriter& w) const;

  // TlsStream::Handler
  void OnTlsReady(net::TlsStream& stream) override;
  void OnTlsData(net::TlsStream& stream, std::string_view plaintext) override;
  void OnTlsClosed(net::TlsStream& stream, const std::string& reason) override;

 private:
  struct Subscription {
    bool delta = false;
    bool wildcard = false;
    std::set<std::string, std::less<>> names;
    // SotW: something visible changed since the last response.
    bool dirty = false;
    std::string sent_version;  // SotW: version of the last response sent
    // Delta: what the sidecar holds (name → version) and names to reconsider.
    std::map<std::string, std::string, std::less<>> sent;
    std::set<std::string, std::less<>> pending;
    bool pending_all = false;  // reconsider every stored resource (a wildcard's initial sync)
    // Delta wildcard, after the initial sync: only the type revision last sent is kept, and
    // later pushes are "everything past it" (`sent` is then empty).
    bool revision_mode = false;
    uint64_t sent_revision = 0;
    // Scoped types (XdsServerOptions::scoped_types): the scope the last push was computed with
    // (in revision mode the stream holds exactly what it saw of each resource unchanged since),
    // and the version of that push, which stays the latest while nothing visible changes.
    std::shared_ptr<const ResourceScope> sent_scope;
    std::string scoped_version;
    bool initial_sent = false;  // a first response went out (scoped: even an empty one)
    // The first request of this type on the stream said what the sidecar holds (resume after
    // a reconnect, perhaps to another replica): the first push skips what it holds.
    bool resuming = false;
    std::string pending_nonce;  // outstanding response; next push waits for its ACK/NACK
    std::string pending_version;
    std::string acked_version;
    uint64_t acked_at_ms = 0;
    uint64_t acks = 0;
    uint64_t nacks = 0;
    std::optional<net::Status> last_nack;
    std::string last_nack_version;
    uint64_t last_nack_ms = 0;
  };

  void HandleFrame(std::string_view body);
  // Reports the decoder's partial-frame bytes to the server's total.
  void AccountBuffered();
  void HandleMessage(net::DiscoveryRequest request);
  void HandleMessage(net::DeltaDiscoveryRequest request);
  // Node check on the first request. False: the stream was closed.
  bool CheckNode(const std::optional<net::Node>& node);
  // Own-pod-only types: every name must be this pod's. False: the stream was closed.
  bool CheckNames(std::string_view type_url, const std::vector<std::string>& names);
  void RecordAckOrNack(const std::string& type_url, Subscription& sub, const std::string& version,
                       const std::optional<net::Status>& error);
  void TrySend(const std::string& type_url, Subscription& sub);
  // After a request of `type_url` was handled: its push, or, for a scoped type, every push.
  void SendAfterRequest(const std::string& type_url, Subscription& sub);
  // A scoped subscription of this stream has something unsent or un-ACKed; the other types'
  // pushes wait for it.
  bool ScopedBehind() const;
  // The version this subscription would be sent now, for SendSotw and /status's "latest_version"
  // (what `picket-control status` compares the ACKed one with). SotW: of the resources it
  // selects; wildcard: the type's; delta by name: the last push's while the stream holds every
  // subscribed name at its current version, else the type's.
  std::string LatestVersion(const std::string& type_url, const Subscription& sub) const;
  void SendSotw(const std::string& type_url, Subscription& sub);
  void SendDelta(const std::string& type_url, Subscription& sub);
  void SendDeltaSinceRevision(const std::string& type_url, Subscription& sub);
  // Revision mode of a scoped type: what changed since the last push, filtered by the scope,
  // or — when the scope itself changed — every resource that entered or left it.
  void SendScopedSinceRevision(const std::string& type_url, Subscription& sub);
  bool Scoped(std::string_view type_url) const;
  // Revision mode: removals older than `removed_floor` were pruned from the log, so a stream
  // that last synced before it cannot be told them: closed (it reconnects and resyncs). True then.
  bool FellBehind(uint64_t removed_floor, const Subscription& sub);
  // SotW: the resources this subscription selects now (scoped: only those its pod sees).
  std::vector<std::pair<std::string_view, const StoredResource*>> SelectSotw(
      const std::string& type_url, const Subscription& sub) const;
  // The first push after a resume found nothing to send: counts it, records `version` as ACKed.
  void NoteResumed(std::string_view type_url, Subscription& sub, const std::string& version,
                   size_t skipped);
  // A resource to send: its name and what the server stores for it.
  using Changed = std::pair<std::string, const StoredResource*>;
  void WriteDelta(const std::string& type_url, Subscription& sub,
                  const std::vector<Changed>& changed, const std::vector<std::string>& removed);
  // Queues one framed message (net::EncodeFramedMessage) on the connection.
  void WriteFrame(const std::string& framed);
  std::string NextNonce() { return std::to_string(++nonce_counter_); }
  std::string own_name() const { return ns_ + "/" + pod_; }
  uint64_t IdleLimit() const;

  XdsServer& server_;
  uint64_t id_;
  State state_ = State::kHandshake;
  net::TlsStream* tls_ = nullptr;
  net::FrameDecoder decoder_;
  std::string peer_address_;
  std::string spiffe_id_;
  std::string ns_;
  std::string pod_;
  std::optional<net::Node> node_;
  std::map<std::string, Subscription, std::less<>> subscriptions_;
  uint64_t nonce_counter_ = 0;
  uint64_t connected_ms_;
  uint64_t connected_unix_ms_;  // wall clock (ms since the Unix epoch) at accept, for /status
  uint64_t last_activity_ms_;
  uint64_t partial_since_ms_ = 0;  // when the frame now incomplete began; 0: none
  size_t accounted_buffered_ = 0;  // this stream's part of XdsServer::buffered_bytes_
  std::string close_reason_;
};

// "spiffe://<trust_domain>/ns/<ns>/pod/<name>" → {ns, name}, or nullopt.
std::optional<std::pair<std::string, std::string>> ParseSpiffePodId(std::string_view uri,
                                                                    std::string_view trust_domain);

}  // namespace picket::control
