// control/xds_stream_push.cc — what one stream is sent, and when (control/PROTOCOL.md §4.2–4.3,
// §6.1): state of the world, delta by name and wildcard, revision mode, scoped types, and the
// framing of each response. The rest of XdsStream (handshake, requests, ACK/NACK, status) is in
// control/xds_stream.cc.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "base/hash.h"
#include "control/xds_server.h"
#include "control/xds_stream.h"

namespace picket::control {
namespace {

// A stored resource as a response carries it: the object encoded once by the server, shared and
// spliced verbatim into the frame (never parsed or re-serialised here).
net::Resource WireResource(const StoredResource& r) {
  net::Resource out;
  out.wire = r.wire;
  return out;
}

// A SotW selection's version: the one resource's, or a hash over names and versions.
std::string SelectionVersion(
    const std::vector<std::pair<std::string_view, const StoredResource*>>& selected) {
  if (selected.size() == 1) return selected[0].second->version;
  std::string all;
  for (const auto& [name, r] : selected) all.append(name).append("=").append(r->version) += ';';
  return base::HashVersion(all);
}

}  // namespace

void XdsStream::SendAfterRequest(const std::string& type_url, Subscription& sub) {
  if (Scoped(type_url)) {
    // An ACK of a scoped type may be what other types' pushes wait for (ScopedBehind).
    RetrySends();
  } else {
    TrySend(type_url, sub);
  }
}

bool XdsStream::ScopedBehind() const {
  for (const auto& [type_url, s] : subscriptions_) {
    if (!Scoped(type_url)) continue;
    if (!s.pending_nonce.empty()) return true;  // sent, not yet ACKed
    if (!s.delta) {
      if (s.dirty) return true;
    } else if (s.revision_mode) {
      if (!(*s.sent_scope == *server_.ScopeOf(own_name()))) return true;  // scope not yet sent
    } else if (!s.initial_sent) {
      return true;  // the first response has not gone out
    }
  }
  return false;
}

void XdsStream::TrySend(const std::string& type_url, Subscription& sub) {
  if (state_ != State::kActive || tls_ == nullptr || !sub.pending_nonce.empty()) return;
  // The peers a new rule names go first: a pod policy waits until the stream holds, ACKed, what
  // its scope sees now (control/PROTOCOL.md §6.1), so a new allow is never enforced without its
  // peers. Another type's ACK then retries it (SendAfterRequest).
  if (!Scoped(type_url) && ScopedBehind()) return;
  // Backpressure: while the server's unsent bytes are over budget, wait for the queues to
  // drain (XdsServer calls RetrySends) instead of building more responses.
  if (!server_.MaySend(this)) return;
  if (sub.delta) {
    SendDelta(type_url, sub);
  } else {
    SendSotw(type_url, sub);
  }
}

std::string XdsStream::LatestVersion(const std::string& type_url, const Subscription& sub) const {
  const auto* type = server_.FindType(type_url);
  if (sub.delta && sub.revision_mode && Scoped(type_url)) {
    // Pushes carry the type's version but only go out when something this pod sees changed.
    const bool caught_up = (type == nullptr || type->revision <= sub.sent_revision) &&
                           sub.sent_scope != nullptr &&
                           *sub.sent_scope == *server_.ScopeOf(own_name());
    return caught_up && !sub.scoped_version.empty() ? sub.scoped_version
                                                    : server_.TypeVersion(type_url);
  }
  if (sub.wildcard && !(Scoped(type_url) && !sub.delta)) return server_.TypeVersion(type_url);
  if (sub.delta) {
    // Pushes carry the type's version but only go out when a subscribed name changed: while the
    // stream holds every subscribed name at its current version, the last push is the latest.
    for (const std::string& name : sub.names) {
      const StoredResource* r = nullptr;
      if (type != nullptr) {
        auto found = type->resources.find(name);
        if (found != type->resources.end()) r = &found->second;
      }
      auto held = sub.sent.find(name);
      if (r != nullptr ? held == sub.sent.end() || held->second != r->version
                       : held != sub.sent.end()) {
        return server_.TypeVersion(type_url);
      }
    }
    return sub.pending_version.empty() ? server_.TypeVersion(type_url) : sub.pending_version;
  }
  return SelectionVersion(SelectSotw(type_url, sub));
}

std::vector<std::pair<std::string_view, const StoredResource*>> XdsStream::SelectSotw(
    const std::string& type_url, const Subscription& sub) const {
  std::vector<std::pair<std::string_view, const StoredResource*>> selected;
  const auto* type = server_.FindType(type_url);
  if (type == nullptr) return selected;
  const ResourceScope* scope = Scoped(type_url) ? server_.ScopeOf(own_name()).get() : nullptr;
  auto select = [&](std::string_view name, const StoredResource& r) {
    if (scope == nullptr || scope->Sees(r.tags)) selected.emplace_back(name, &r);
  };
  if (sub.wildcard) {
    for (const auto& [name, r] : type->resources) select(name, r);
  } else {
    for (const std::string& name : sub.names) {
      auto r = type->resources.find(name);
      if (r != type->resources.end()) select(r->first, r->second);
    }
  }
  return selected;
}

void XdsStream::SendSotw(const std::string& type_url, Subscription& sub) {
  if (!sub.dirty) return;
  sub.dirty = false;
  const auto selected = SelectSotw(type_url, sub);
  // As LatestVersion says, from the selection made once.
  const std::string version = sub.wildcard && !Scoped(type_url) ? server_.TypeVersion(type_url)
                                                                : SelectionVersion(selected);
  const bool resuming = std::exchange(sub.resuming, false);
  if (version == sub.sent_version) {  // nothing this stream sees has changed
    if (resuming) NoteResumed(type_url, sub, version, selected.size());
    return;
  }
  sub.sent_version = version;
  sub.pending_nonce = NextNonce();
  sub.pending_version = version;

  net::DiscoveryResponse response;
  response.version_info = version;
  response.type_url = type_url;
  response.nonce = sub.pending_nonce;
  response.control_plane = server_.options_.control_plane_id;
  response.resources.reserve(selected.size());
  for (const auto& entry : selected) response.resources.push_back(WireResource(*entry.second));
  ++server_.stats_.responses_sent;
  ++server_.stats_.by_type[type_url].responses_sent;
  server_.stats_.resources_sent += selected.size();
  WriteFrame(net::EncodeFramedMessage(response));
}

void XdsStream::SendDelta(const std::string& type_url, Subscription& sub) {
  if (sub.revision_mode) {
    SendDeltaSinceRevision(type_url, sub);
    return;
  }
  const bool scoped = Scoped(type_url);
  if (sub.pending.empty() && !sub.pending_all && !(scoped && !sub.initial_sent)) return;
  // Not const: VisibleTo caches each scope's list in it.
  XdsServer::TypeState* type = server_.FindType(type_url);
  // Scoped: a resource this pod does not see is, to this stream, a resource that does not exist.
  const ScopePtr scope = scoped ? server_.ScopeOf(own_name()) : nullptr;
  std::vector<Changed> changed;
  std::vector<std::string> removed;
  const bool resuming = std::exchange(sub.resuming, false);
  // A wildcard subscription that covers everything (its next state is revision mode) keeps no
  // per-name record.
  const bool keep_sent = !sub.wildcard;
  size_t skipped = 0;
  auto consider = [&](const std::string& name, const StoredResource* found) {
    const bool subscribed = sub.wildcard || sub.names.contains(name);
    const StoredResource* r =
        found != nullptr && (scope == nullptr || scope->Sees(found->tags)) ? found : nullptr;
    auto held = sub.sent.find(name);
    if (subscribed && r != nullptr) {
      if (held != sub.sent.end() && held->second == r->version) {
        ++skipped;
        return;
      }
      if (keep_sent) sub.sent[name] = r->version;
      changed.emplace_back(name, r);
    } else if (held != sub.sent.end() || (subscribed && r == nullptr && sub.names.contains(name))) {
      if (held != sub.sent.end()) sub.sent.erase(held);
      removed.push_back(name);
    }
  };
  if (sub.pending_all && type != nullptr) {
    // A first wildcard sync: what it is not shown yields nothing, so only what its scope sees
    // is walked (the list is shared by every stream of an equal scope).
    const XdsServer::TypeState::Visible* visible =
        scope != nullptr && sub.wildcard && sub.names.empty() && sub.sent.empty()
            ? server_.VisibleTo(*type, scope)
            : nullptr;
    if (visible != nullptr) {
      for (const auto& [name, r] : *visible) consider(*name, r);
    } else {
      // Every stored resource, in one pass over the store (no per-name lookups).
      for (const auto& [name, r] : type->resources) consider(name, &r);
    }
  }
  for (const std::string& name : sub.pending) {
    const StoredResource* found = nullptr;
    if (type != nullptr) {
      auto it = type->resources.find(name);
      if (it != type->resources.end()) {
        if (sub.pending_all) continue;  // already considered
        found = &it->second;
      }
    }
    consider(name, found);
  }
  sub.pending_all = false;
  sub.pending.clear();
  if (sub.wildcard) {
    // The initial sync covered every name: from now on only the revision is tracked.
    sub.revision_mode = true;
    sub.sent_revision = type != nullptr ? type->revision : 0;
    sub.sent.clear();
    sub.sent_scope = scope;
  }
  if (resuming) server_.stats_.resources_skipped_on_resume += skipped;
  if (changed.empty() && removed.empty()) {
    if (resuming) {
      NoteResumed(type_url, sub, server_.TypeVersion(type_url), 0);
      sub.scoped_version = sub.acked_version;
      return;
    }
    // A scoped stream may see nothing yet: its first response says so (it is in sync).
    if (!scoped || sub.initial_sent) return;
  }
  WriteDelta(type_url, sub, changed, removed);
}

void XdsStream::SendDeltaSinceRevision(const std::string& type_url, Subscription& sub) {
  if (Scoped(type_url)) {
    SendScopedSinceRevision(type_url, sub);
    return;
  }
  const auto* type = server_.FindType(type_url);
  if (type == nullptr || type->revision <= sub.sent_revision) return;
  if (FellBehind(type->removed_floor, sub)) return;
  std::vector<Changed> changed;
  std::vector<std::string> removed;
  for (auto it = type->by_revision.upper_bound(sub.sent_revision); it != type->by_revision.end();
       ++it) {
    changed.emplace_back(it->second, &type->resources.find(it->second)->second);
  }
  for (auto it = type->removed_log.upper_bound(sub.sent_revision); it != type->removed_log.end();
       ++it) {
    removed.push_back(it->second.name);
  }
  sub.sent_revision = type->revision;
  if (changed.empty() && removed.empty()) return;
  WriteDelta(type_url, sub, changed, removed);
}

bool XdsStream::FellBehind(uint64_t removed_floor, const Subscription& sub) {
  if (sub.sent_revision >= removed_floor) return false;
  CloseWithStatus(net::StatusCode::kUnavailable,
                  "stream fell behind the removal log; reconnect to resync");
  return true;
}

void XdsStream::SendScopedSinceRevision(const std::string& type_url, Subscription& sub) {
  const auto* type = server_.FindType(type_url);
  const ScopePtr& scope = server_.ScopeOf(own_name());
  const ResourceScope& before = *sub.sent_scope;
  const bool rescope = scope != sub.sent_scope && !(*scope == before);
  if (type == nullptr || (type->revision <= sub.sent_revision && !rescope)) {
    if (!rescope) sub.sent_scope = scope;
    return;
  }
  if (FellBehind(type->removed_floor, sub)) return;
  // What the stream holds: each resource unchanged since the last push, as the scope of that
  // push saw it. A resource changed since is sent if seen now; if not seen now it is reported
  // removed when the stream may hold an older version (seen by the old scope, or tagged
  // differently then). Reporting a name the sidecar does not hold is harmless; missing one is not.
  std::vector<Changed> changed;
  std::vector<std::string> removed;
  auto consider = [&](const std::string& name, const StoredResource& r) {
    const bool sees = scope->Sees(r.tags);
    if (r.revision > sub.sent_revision) {
      if (sees) {
        changed.emplace_back(name, &r);
      } else if (r.tags_revision > sub.sent_revision || before.Sees(r.tags)) {
        removed.push_back(name);
      }
      return;
    }
    const bool held = before.Sees(r.tags);
    if (sees && !held) changed.emplace_back(name, &r);
    if (!sees && held) removed.push_back(name);
  };
  if (rescope) {
    for (const auto& [name, r] : type->resources) consider(name, r);
  } else {
    for (auto it = type->by_revision.upper_bound(sub.sent_revision); it != type->by_revision.end();
         ++it) {
      consider(it->second, type->resources.find(it->second)->second);
    }
  }
  for (auto it = type->removed_log.upper_bound(sub.sent_revision); it != type->removed_log.end();
       ++it) {
    const auto& gone = it->second;
    if (gone.tags_revision > sub.sent_revision || before.Sees(gone.tags)) {
      removed.push_back(gone.name);
    }
  }
  sub.sent_revision = type->revision;
  sub.sent_scope = scope;
  if (changed.empty() && removed.empty()) return;
  WriteDelta(type_url, sub, changed, removed);
}

void XdsStream::WriteDelta(const std::string& type_url, Subscription& sub,
                           const std::vector<Changed>& changed,
                           const std::vector<std::string>& removed) {
  sub.pending_nonce = NextNonce();
  sub.pending_version = server_.TypeVersion(type_url);
  sub.scoped_version = sub.pending_version;
  sub.initial_sent = true;
  net::DeltaDiscoveryResponse response;
  response.system_version_info = sub.pending_version;
  response.type_url = type_url;
  response.removed_resources = removed;
  response.nonce = sub.pending_nonce;
  response.control_plane = server_.options_.control_plane_id;
  response.resources.reserve(changed.size());
  for (const auto& entry : changed) response.resources.push_back(WireResource(*entry.second));
  ++server_.stats_.responses_sent;
  ++server_.stats_.by_type[type_url].responses_sent;
  server_.stats_.resources_sent += changed.size();
  WriteFrame(net::EncodeFramedMessage(response));
}

void XdsStream::WriteFrame(const std::string& framed) {
  if (tls_ == nullptr) return;
  server_.stats_.bytes_sent += framed.size();
  server_.NoteQueued(framed.size());
  if (auto ok = tls_->Write(framed); !ok) {
    spdlog::warn("xds: stream {} write failed: {}", id_, ok.error().ToString());
    Close();
  }
}

}  // namespace picket::control
