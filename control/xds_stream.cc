// control/xds_stream.cc — see xds_stream.h; the rules implemented are control/PROTOCOL.md §4.
// What each push carries (SotW, delta, scoped) is in control/xds_stream_push.cc.
#include "control/xds_stream.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

#include "control/xds_server.h"

namespace picket::control {
namespace {

constexpr std::string_view kWildcard = "*";

// Wall-clock milliseconds since the epoch, for the admin endpoint's "when".
uint64_t WallMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void WriteNack(base::JsonWriter& w, const std::optional<net::Status>& status,
               const std::string& version, uint64_t at_ms) {
  if (!status) {
    w.Null();
    return;
  }
  w.BeginObject()
      .Member("at_unix_ms", at_ms)
      .Member("code", status->code)
      .Member("message", status->message)
      .Member("version_info", version)
      .EndObject();
}

}  // namespace

std::optional<std::pair<std::string, std::string>> ParseSpiffePodId(std::string_view uri,
                                                                    std::string_view trust_domain) {
  const std::string prefix = "spiffe://" + std::string(trust_domain) + "/ns/";
  if (!uri.starts_with(prefix)) return std::nullopt;
  uri.remove_prefix(prefix.size());
  const size_t slash = uri.find("/pod/");
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  std::string_view ns = uri.substr(0, slash);
  std::string_view pod = uri.substr(slash + 5);
  if (pod.empty() || pod.find('/') != std::string_view::npos ||
      ns.find('/') != std::string_view::npos) {
    return std::nullopt;
  }
  return std::make_pair(std::string(ns), std::string(pod));
}

XdsStream::XdsStream(XdsServer& server, uint64_t id, uint64_t now_ms)
    : server_(server),
      id_(id),
      decoder_(server.options_.max_frame_size),
      connected_ms_(now_ms),
      connected_unix_ms_(WallMs()),
      last_activity_ms_(now_ms) {}

XdsStream::~XdsStream() { Close(); }

bool XdsStream::Accept(uv_stream_t* listener) {
  auto stream = net::TlsStream::Accept(listener, server_.tls_, this);
  if (!stream) {
    spdlog::warn("xds: accept failed: {}", stream.error().ToString());
    state_ = State::kClosed;
    return false;
  }
  tls_ = *stream;
  peer_address_ = tls_->PeerAddress();
  return true;
}

void XdsStream::Close() {
  if (tls_ != nullptr) {
    tls_->Close();
    tls_ = nullptr;
  }
  if (state_ != State::kClosed) {
    state_ = State::kClosed;
    server_.OnStreamClosed(this);
  }
}

void XdsStream::CloseWithStatus(net::StatusCode code, const std::string& message) {
  if (state_ == State::kClosed) return;
  spdlog::warn("xds: stream {} ({} {}) closed: {}", id_, peer_address_,
               spiffe_id_.empty() ? "unauthenticated" : spiffe_id_, message);
  close_reason_ = message;
  if (code != net::StatusCode::kOk) ++server_.stats_.streams_refused;
  if (tls_ != nullptr) {
    WriteFrame(net::EncodeFramedMessage(net::StreamStatus{{static_cast<int>(code), message}}));
    if (tls_ != nullptr) tls_->CloseAfterFlush();
    tls_ = nullptr;
  }
  state_ = State::kClosed;
  server_.OnStreamClosed(this);
}

void XdsStream::CheckTimeouts(uint64_t now_ms) {
  if (state_ == State::kClosed) return;
  const auto& o = server_.options_;
  if (state_ != State::kActive && now_ms - connected_ms_ > o.handshake_timeout_ms) {
    CloseWithStatus(net::StatusCode::kUnavailable, "no request within the handshake timeout");
  } else if (partial_since_ms_ != 0 && now_ms - partial_since_ms_ > o.frame_timeout_ms) {
    ++server_.stats_.frame_timeouts;
    CloseWithStatus(net::StatusCode::kUnavailable,
                    "a frame stayed incomplete for more than " +
                        std::to_string(o.frame_timeout_ms) + " ms (" +
                        std::to_string(decoder_.buffered_bytes()) + " bytes buffered)");
  } else if (state_ == State::kActive && now_ms - last_activity_ms_ > IdleLimit()) {
    CloseWithStatus(net::StatusCode::kUnavailable, "idle timeout (no keepalive)");
  }
}

uint64_t XdsStream::IdleLimit() const {
  // A client still owing an ACK may be busy applying a large response: give it longer.
  for (const auto& [type_url, sub] : subscriptions_) {
    if (!sub.pending_nonce.empty()) return 5 * server_.options_.idle_timeout_ms;
  }
  return server_.options_.idle_timeout_ms;
}

void XdsStream::OnTlsReady(net::TlsStream& stream) {
  for (const std::string& uri : stream.PeerUriSans()) {
    if (auto id = ParseSpiffePodId(uri, server_.options_.trust_domain)) {
      spiffe_id_ = uri;
      ns_ = id->first;
      pod_ = id->second;
      break;
    }
  }
  if (spiffe_id_.empty()) {
    CloseWithStatus(net::StatusCode::kUnauthenticated,
                    "the client certificate has no URI SAN spiffe://" +
                        server_.options_.trust_domain + "/ns/<namespace>/pod/<name>");
    return;
  }
  state_ = State::kAwaitNode;
  server_.AdmitIdentity(this);
}

void XdsStream::OnTlsData(net::TlsStream&, std::string_view plaintext) {
  const uint64_t now = server_.NowMs();
  last_activity_ms_ = now;
  decoder_.Feed(plaintext);
  bool completed = false;
  while (state_ != State::kClosed) {
    auto frame = decoder_.Next();
    if (!frame) {
      if (decoder_.too_large()) ++server_.stats_.frames_too_large;
      CloseWithStatus(decoder_.too_large() ? net::StatusCode::kResourceExhausted
                                           : net::StatusCode::kInvalidArgument,
                      frame.error().ToString());
      return;
    }
    if (!frame->has_value()) break;
    completed = true;
    HandleFrame(**frame);
  }
  if (state_ == State::kClosed) return;
  // The partial-frame clock starts with the first byte of a frame, not of the connection.
  if (!decoder_.mid_frame()) {
    partial_since_ms_ = 0;
  } else if (partial_since_ms_ == 0 || completed) {
    partial_since_ms_ = now;
  }
  AccountBuffered();
  const size_t budget = server_.options_.max_buffered_bytes;
  if (server_.buffered_bytes_ > budget) {
    ++server_.stats_.buffer_budget_refusals;
    CloseWithStatus(
        net::StatusCode::kResourceExhausted,
        "partial frames of all streams would hold more than " + std::to_string(budget) + " bytes");
  }
}

void XdsStream::AccountBuffered() {
  const size_t now = decoder_.buffered_bytes();
  server_.buffered_bytes_ = server_.buffered_bytes_ - accounted_buffered_ + now;
  accounted_buffered_ = now;
}

void XdsStream::ReleaseBuffered() {
  server_.buffered_bytes_ -= accounted_buffered_;
  accounted_buffered_ = 0;
  partial_since_ms_ = 0;
  decoder_ = net::FrameDecoder(server_.options_.max_frame_size);
}

void XdsStream::OnTlsClosed(net::TlsStream&, const std::string& reason) {
  tls_ = nullptr;
  if (state_ == State::kClosed) return;
  close_reason_ = decoder_.mid_frame() ? reason + " (in the middle of a frame)" : reason;
  spdlog::info("xds: stream {} ({} {}) ended: {}", id_, peer_address_, spiffe_id_, close_reason_);
  state_ = State::kClosed;
  server_.OnStreamClosed(this);
}

void XdsStream::HandleFrame(std::string_view body) {
  auto message = net::DecodeMessage(body);
  if (!message) {
    CloseWithStatus(net::StatusCode::kInvalidArgument, "bad frame: " + message.error().ToString());
    return;
  }
  if (state_ == State::kHandshake) {
    // Data can only arrive after the handshake; this is unreachable but cheap to guard.
    CloseWithStatus(net::StatusCode::kUnauthenticated, "request before the TLS handshake");
    return;
  }
  if (auto* req = std::get_if<net::DiscoveryRequest>(&*message)) {
    HandleMessage(std::move(*req));
  } else if (auto* delta = std::get_if<net::DeltaDiscoveryRequest>(&*message)) {
    HandleMessage(std::move(*delta));
  } else if (std::holds_alternative<net::Keepalive>(*message)) {
    WriteFrame(net::EncodeFramedMessage(net::Keepalive{}));
  } else {
    CloseWithStatus(net::StatusCode::kInvalidArgument,
                    "unexpected message from a client: " + std::string(MessageName(*message)));
  }
}

bool XdsStream::CheckNode(const std::optional<net::Node>& node) {
  if (state_ == State::kActive) return true;
  if (!node) {
    CloseWithStatus(net::StatusCode::kInvalidArgument,
                    "the first request of a stream must carry `node`");
    return false;
  }
  if (node->ns != ns_ || node->pod != pod_) {
    CloseWithStatus(
        net::StatusCode::kPermissionDenied,
        "node " + node->ns + "/" + node->pod + " does not match the certificate's " + spiffe_id_);
    return false;
  }
  node_ = node;
  state_ = State::kActive;
  spdlog::info("xds: stream {} ({}) is {} ({})", id_, peer_address_, own_name(), node->id);
  if (SaysUdpSctpUnenforced()) server_.NoteUdpSctpChange();
  return true;
}

bool XdsStream::CheckNames(std::string_view type_url, const std::vector<std::string>& names) {
  if (!server_.options_.own_pod_only_types.contains(type_url)) return true;
  for (const std::string& name : names) {
    if (name != own_name()) {
      CloseWithStatus(net::StatusCode::kPermissionDenied,
                      "pod " + own_name() + " may not subscribe to " + std::string(type_url) +
                          " \"" + name + "\" (a sidecar receives only its own pod's policy)");
      return false;
    }
  }
  return true;
}

void XdsStream::RecordAckOrNack(const std::string& type_url, Subscription& sub,
                                const std::string& version,
                                const std::optional<net::Status>& error) {
  sub.pending_nonce.clear();
  if (error) {
    ++sub.nacks;
    ++server_.stats_.nacks;
    ++server_.stats_.by_type[type_url].nacks;
    sub.last_nack = error;
    sub.last_nack_version = sub.pending_version;
    sub.last_nack_ms = WallMs();
    spdlog::warn("xds: {} NACKed version {}: {}", own_name(), sub.pending_version, error->message);
  } else {
    ++sub.acks;
    ++server_.stats_.acks;
    ++server_.stats_.by_type[type_url].acks;
    sub.acked_version = version.empty() ? sub.pending_version : version;
    sub.acked_at_ms = WallMs();
  }
}

void XdsStream::HandleMessage(net::DiscoveryRequest request) {
  if (!CheckNode(request.node)) return;
  if (!CheckNames(request.type_url, request.resource_names)) return;
  auto [it, created] = subscriptions_.try_emplace(request.type_url);
  Subscription& sub = it->second;
  if (!created && sub.delta) {
    CloseWithStatus(net::StatusCode::kInvalidArgument,
                    "type " + request.type_url + " is subscribed as delta on this stream");
    return;
  }
  if (!request.response_nonce.empty()) {
    // xDS: a request whose nonce is not the latest response's is stale; ignore it.
    if (request.response_nonce != sub.pending_nonce) return;
    RecordAckOrNack(request.type_url, sub, request.version_info, request.error_detail);
  } else if (!created) {
    // A new subscribe on an existing type supersedes the previous one (xDS): answer it.
    sub.sent_version.clear();
  } else if (!request.version_info.empty()) {
    // Resume (PROTOCOL.md §4.5): the sidecar applied this version, perhaps from another
    // replica (versions are content hashes). If it is still current, nothing is sent.
    sub.sent_version = request.version_info;
    sub.resuming = true;
  }
  std::set<std::string, std::less<>> names(request.resource_names.begin(),
                                           request.resource_names.end());
  const bool own_only = server_.options_.own_pod_only_types.contains(request.type_url);
  if (own_only) names = {own_name()};
  const bool wildcard = !own_only && (names.empty() || names.contains(kWildcard));
  if (created || wildcard != sub.wildcard || names != sub.names) {
    sub.wildcard = wildcard;
    sub.names = std::move(names);
    sub.dirty = true;
  }
  if (created) sub.dirty = true;
  SendAfterRequest(request.type_url, sub);
}

void XdsStream::HandleMessage(net::DeltaDiscoveryRequest request) {
  if (!CheckNode(request.node)) return;
  if (!CheckNames(request.type_url, request.resource_names_subscribe)) return;
  auto [it, created] = subscriptions_.try_emplace(request.type_url);
  Subscription& sub = it->second;
  if (created) {
    sub.delta = true;
    // Only the first request of a type on a stream may tell what the client already holds.
    for (auto& [name, version] : request.initial_resource_versions) sub.sent[name] = version;
    sub.resuming = !request.initial_resource_versions.empty();
  } else if (!sub.delta) {
    CloseWithStatus(net::StatusCode::kInvalidArgument,
                    "type " + request.type_url + " is subscribed as state of the world");
    return;
  }
  if (!request.response_nonce.empty()) {
    if (request.response_nonce != sub.pending_nonce) return;
    RecordAckOrNack(request.type_url, sub, "", request.error_detail);
  }
  for (const std::string& name : request.resource_names_subscribe) {
    if (name == kWildcard) {
      if (!sub.wildcard) sub.pending_all = true;
      sub.wildcard = true;
      continue;
    }
    sub.names.insert(name);
    sub.pending.insert(name);
    // xDS: the server must answer a subscribe even when the client holds the resource; forget
    // the version so it is resent (or reported removed if it does not exist).
    if (!created) sub.sent.erase(name);
  }
  for (const std::string& name : request.resource_names_unsubscribe) {
    if (name == kWildcard) {
      sub.wildcard = false;
      sub.revision_mode = false;
    } else {
      sub.names.erase(name);
    }
    sub.sent.erase(name);
    sub.pending.erase(name);
  }
  if (created && request.resource_names_subscribe.empty()) {
    // Legacy wildcard: no names on the first request (own-pod types mean the own name).
    if (server_.options_.own_pod_only_types.contains(request.type_url)) {
      sub.names.insert(own_name());
      sub.pending.insert(own_name());
    } else {
      sub.wildcard = true;
      sub.pending_all = true;
    }
  }
  if (created) {
    // Resources the client claims to hold but that no longer exist get reported as removed.
    for (const auto& [name, version] : sub.sent) sub.pending.insert(name);
  }
  SendAfterRequest(request.type_url, sub);
}

void XdsStream::OnResourcesChanged(std::string_view type_url, const std::set<std::string>& names) {
  if (state_ != State::kActive) return;
  auto it = subscriptions_.find(type_url);
  if (it == subscriptions_.end()) return;
  Subscription& sub = it->second;
  bool affected = false;
  if (sub.wildcard) {
    affected = !names.empty();
    if (sub.delta && !sub.revision_mode && !sub.pending_all) {
      sub.pending.insert(names.begin(), names.end());
    }
  } else {
    for (const std::string& name : sub.names) {
      if (names.contains(name)) {
        affected = true;
        if (sub.delta) sub.pending.insert(name);
      }
    }
  }
  if (!affected) return;
  if (!sub.delta) sub.dirty = true;
  TrySend(it->first, sub);
}

void XdsStream::OnScopeChanged() {
  if (state_ != State::kActive) return;
  for (auto& [type_url, sub] : subscriptions_) {
    if (!Scoped(type_url)) continue;
    if (!sub.delta) {
      sub.dirty = true;
    } else if (!sub.revision_mode) {
      // Revision mode compares with sent_scope itself; otherwise reconsider every name.
      if (sub.wildcard) sub.pending_all = true;
      sub.pending.insert(sub.names.begin(), sub.names.end());
      for (const auto& [n, v] : sub.sent) sub.pending.insert(n);
    }
    TrySend(type_url, sub);
  }
}

bool XdsStream::Scoped(std::string_view type_url) const {
  return server_.options_.scoped_types.contains(type_url);
}

void XdsStream::NoteResumed(std::string_view type_url, Subscription& sub,
                            const std::string& version, size_t skipped) {
  // The sidecar holds exactly what this replica would send: as if it had been sent and ACKed.
  ++server_.stats_.subscriptions_resumed;
  server_.stats_.resources_skipped_on_resume += skipped;
  sub.acked_version = version;
  sub.acked_at_ms = WallMs();
  spdlog::info("xds: {} resumed {} at version {} (nothing resent)", own_name(), type_url, version);
}

size_t XdsStream::queued_bytes() const { return tls_ == nullptr ? 0 : tls_->write_queue_bytes(); }

void XdsStream::RetrySends() {
  for (auto& [type_url, sub] : subscriptions_) TrySend(type_url, sub);
}

void XdsStream::WriteStatus(base::JsonWriter& w) const {
  static constexpr std::string_view kStates[] = {"handshake", "await_node", "active", "closed"};
  w.BeginObject()
      .Member("connected_ms", connected_ms_)
      .Member("connected_unix_ms", connected_unix_ms_)
      .Member("id", id_)
      .Member("identity", spiffe_id_)
      .Member("pod", pod_name());
  if (node_) {
    w.Key("node")
        .BeginObject()
        .Member("id", node_->id)
        .Member("namespace", node_->ns)
        .Member("pod", node_->pod)
        .Member("user_agent", node_->user_agent)
        .Key("udp_sctp_enforced");
    if (node_->udp_sctp_enforced) {
      w.Bool(*node_->udp_sctp_enforced);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.Member("peer", peer_address_).Member("state", kStates[static_cast<int>(state_)]);
  w.Key("subscriptions").BeginObject();
  for (const auto& [type_url, sub] : subscriptions_) {
    w.Key(type_url)
        .BeginObject()
        .Member("acks", sub.acks)
        .Member("last_acked_unix_ms", sub.acked_at_ms)
        .Member("last_acked_version", sub.acked_version)
        .Member("latest_version", LatestVersion(type_url, sub));
    w.Key("last_nack");
    WriteNack(w, sub.last_nack, sub.last_nack_version, sub.last_nack_ms);
    w.Member("mode", sub.delta ? "delta" : "sotw").Member("nacks", sub.nacks);
    w.Member("pending_nonce", sub.pending_nonce);
    if (Scoped(type_url)) w.Member("scope_tags", server_.ScopeOf(own_name())->size());
    if (sub.revision_mode) {
      w.Member("sent_revision", sub.sent_revision);
    } else if (sub.delta) {
      w.Member("resources_held", sub.sent.size());
    }
    w.EndObject();
  }
  w.EndObject().EndObject();
}

}  // namespace picket::control
