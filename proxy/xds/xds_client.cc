// proxy/xds/xds_client.cc — see xds_client.h; the protocol rules are control/PROTOCOL.md §4.
#include "proxy/xds/xds_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "base/json.h"
#include "base/prometheus_text.h"
#include "net/host_port.h"

namespace picket::proxy::xds {
namespace {

uint64_t WallMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string AddressText(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    uv_ip4_name(sin, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
  uv_ip6_name(sin6, host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(ntohs(sin6->sin6_port));
}

}  // namespace

const char* XdsStateName(XdsClientStatus::State state) {
  switch (state) {
    case XdsClientStatus::State::kIdle:
      return "idle";
    case XdsClientStatus::State::kResolving:
      return "resolving";
    case XdsClientStatus::State::kConnecting:
      return "connecting";
    case XdsClientStatus::State::kConnected:
      return "connected";
    case XdsClientStatus::State::kBackoff:
      return "backoff";
    case XdsClientStatus::State::kClosed:
      return "closed";
  }
  return "?";
}

uint64_t BackoffDelayMs(uint32_t attempt, uint64_t initial_ms, uint64_t max_ms, double random01) {
  const double base = std::min<double>(
      static_cast<double>(max_ms),
      static_cast<double>(initial_ms) * std::pow(2.0, std::min<uint32_t>(attempt, 40)));
  const double jitter = 0.5 + 0.5 * std::clamp(random01, 0.0, 1.0);
  return static_cast<uint64_t>(base * jitter);
}

base::Result<std::unique_ptr<XdsClient>> XdsClient::Create(uv_loop_t* loop,
                                                           XdsClientOptions options,
                                                           ResourceHandler* handler) {
  std::vector<std::pair<std::string, uint16_t>> servers;
  auto hp = net::SplitHostPort(options.server);
  if (!hp) return std::unexpected(base::Error::Of("xds server " + hp.error()));
  servers.push_back(*hp);
  for (const std::string& fallback : options.fallback_servers) {
    auto fhp = net::SplitHostPort(fallback);
    if (!fhp) return std::unexpected(base::Error::Of("xds fallback server " + fhp.error()));
    servers.push_back(*fhp);
  }
  if (!options.tls) return std::unexpected(base::Error::Of("xds: a TLS context is required"));
  if (options.subscriptions.empty())
    return std::unexpected(base::Error::Of("xds: no subscriptions"));
  auto resolver = Resolver::Create(loop);
  if (!resolver) return std::unexpected(resolver.error());
  std::unique_ptr<XdsClient> client(new XdsClient(loop, std::move(options), handler));
  client->servers_ = std::move(servers);
  client->host_ = client->servers_[0].first;
  client->port_ = client->servers_[0].second;
  client->resolver_ = std::move(*resolver);
  return client;
}

XdsClient::XdsClient(uv_loop_t* loop, XdsClientOptions options, ResourceHandler* handler)
    : loop_(loop),
      options_(std::move(options)),
      handler_(handler),
      decoder_(options_.max_frame_size),
      random_(std::random_device{}()) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  uv_timer_init(loop_, &keepalive_timer_);
  keepalive_timer_.data = this;
  open_handles_ = 2;
  for (const auto& sub : options_.subscriptions) {
    types_[sub.type_url].subscription = sub;
    status_.types[sub.type_url];
  }
}

XdsClient::~XdsClient() {
  if (stream_ != nullptr) stream_->Close();
}

void XdsClient::Start() {
  if (closing_ || status_.state != XdsClientStatus::State::kIdle) return;
  Resolve();
}

void XdsClient::Resolve() {
  status_.state = XdsClientStatus::State::kResolving;
  host_ = servers_[server_index_].first;
  port_ = servers_[server_index_].second;
  // Re-resolved on every attempt: the server may have moved.
  resolver_->Resolve(host_, port_, [this](auto result) { OnResolved(std::move(result)); });
}

void XdsClient::OnResolved(base::Result<Resolver::Addresses> result) {
  if (closing_) return;
  if (!result) {
    status_.last_error = host_ + ": " + result.error().ToString();
    ++status_.connect_failures;
    spdlog::warn("xds: {}", status_.last_error);
    NextServerOrBackoff();
    return;
  }
  addresses_ = std::move(*result);
  next_address_ = 0;
  TryNextAddress();
}

void XdsClient::TryNextAddress() {
  if (closing_) return;
  if (next_address_ >= addresses_.size()) {
    NextServerOrBackoff();
    return;
  }
  const sockaddr_storage& address = addresses_[next_address_++];
  status_.state = XdsClientStatus::State::kConnecting;
  status_.server_address = AddressText(address);
  decoder_ = net::FrameDecoder(options_.max_frame_size);
  node_sent_ = false;
  auto stream =
      net::TlsStream::Connect(loop_, reinterpret_cast<const sockaddr*>(&address), options_.tls,
                              options_.server_name.empty() ? host_ : options_.server_name, this);
  if (!stream) {
    status_.last_error = status_.server_address + ": " + stream.error().ToString();
    ++status_.connect_failures;
    TryNextAddress();
    return;
  }
  stream_ = *stream;
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<XdsClient*>(t->data)->OnConnectTimeout(); },
      options_.connect_timeout_ms, 0);
}

void XdsClient::NextServerOrBackoff() {
  if (++server_index_ < servers_.size()) {
    Resolve();
    return;
  }
  ScheduleReconnect();
}

void XdsClient::OnConnectTimeout() {
  if (stream_ == nullptr || status_.state != XdsClientStatus::State::kConnecting) return;
  status_.last_error = status_.server_address + ": connect timeout";
  ++status_.connect_failures;
  stream_->Close();
  stream_ = nullptr;
  TryNextAddress();
}

void XdsClient::OnTlsReady(net::TlsStream&) {
  uv_timer_stop(&timer_);
  status_.state = XdsClientStatus::State::kConnected;
  ++status_.connects;
  last_receive_ms_ = uv_now(loop_);
  last_keepalive_tick_ms_ = last_receive_ms_;
  spdlog::info("xds: connected to {}:{} ({})", host_, port_, status_.server_address);
  SendSubscriptions();
  uv_timer_start(
      &keepalive_timer_, [](uv_timer_t* t) { static_cast<XdsClient*>(t->data)->OnKeepalive(); },
      options_.keepalive_interval_ms, options_.keepalive_interval_ms);
}

void XdsClient::SendSubscriptions() {
  for (auto& [type_url, type] : types_) {
    const XdsSubscription& sub = type.subscription;
    std::optional<net::Node> node;
    if (!node_sent_) node = options_.node;
    node_sent_ = true;
    if (sub.delta) {
      net::DeltaDiscoveryRequest req;
      req.node = std::move(node);
      req.type_url = type_url;
      req.resource_names_subscribe =
          sub.resource_names.empty() ? std::vector<std::string>{"*"} : sub.resource_names;
      // Resume: tell the server what we hold so it sends only what changed.
      req.initial_resource_versions = type.held;
      Send(req);
    } else {
      net::DiscoveryRequest req;
      req.node = std::move(node);
      req.version_info = type.applied_version;
      req.resource_names = sub.resource_names;
      req.type_url = type_url;
      Send(req);
    }
  }
}

void XdsClient::OnTlsData(net::TlsStream&, std::string_view plaintext) {
  last_receive_ms_ = uv_now(loop_);
  decoder_.Feed(plaintext);
  while (stream_ != nullptr) {
    auto frame = decoder_.Next();
    if (!frame) {
      Disconnect("bad frame from the server: " + frame.error().ToString());
      return;
    }
    if (!frame->has_value()) return;
    HandleFrame(**frame);
  }
}

void XdsClient::HandleFrame(std::string_view body) {
  auto message = net::DecodeMessage(body);
  if (!message) {
    Disconnect("bad message from the server: " + message.error().ToString());
    return;
  }
  if (auto* r = std::get_if<net::DiscoveryResponse>(&*message)) {
    HandleResponse(std::move(*r));
  } else if (auto* d = std::get_if<net::DeltaDiscoveryResponse>(&*message)) {
    HandleDelta(std::move(*d));
  } else if (auto* s = std::get_if<net::StreamStatus>(&*message)) {
    Disconnect("server closed the stream: code " + std::to_string(s->status.code) + ": " +
               s->status.message);
  } else if (std::holds_alternative<net::Keepalive>(*message)) {
    // last_receive_ms_ is already updated.
  } else {
    Disconnect("unexpected message from the server: " + std::string(MessageName(*message)));
  }
}

void XdsClient::RecordResult(XdsTypeStatus& s, const std::string& version,
                             const base::Result<void>& result) {
  if (result) {
    ++s.acks;
    s.last_acked_version = version;
    s.last_acked_unix_ms = WallMs();
    attempt_ = 0;  // a working stream: the next disconnect starts backoff afresh
  } else {
    ++s.nacks;
    s.last_nack_version = version;
    s.last_nack_error = result.error().ToString();
    s.last_nack_unix_ms = WallMs();
    spdlog::warn("xds: rejected version {}: {}", version, s.last_nack_error);
  }
}

void XdsClient::HandleResponse(net::DiscoveryResponse response) {
  auto it = types_.find(response.type_url);
  if (it == types_.end() || it->second.subscription.delta) {
    Disconnect("response for a type not subscribed as state of the world: " + response.type_url);
    return;
  }
  TypeState& type = it->second;
  auto result = handler_->OnResources(response.type_url, response.resources, {}, true);
  RecordResult(status_.types[response.type_url], response.version_info, result);
  net::DiscoveryRequest ack;
  ack.type_url = response.type_url;
  ack.resource_names = type.subscription.resource_names;
  ack.response_nonce = response.nonce;
  if (result) {
    type.applied_version = response.version_info;
  } else {
    ack.error_detail =
        net::Status{static_cast<int>(net::StatusCode::kInvalidArgument), result.error().ToString()};
  }
  ack.version_info = type.applied_version;  // NACK: the previous good version
  Send(ack);
}

void XdsClient::HandleDelta(net::DeltaDiscoveryResponse response) {
  auto it = types_.find(response.type_url);
  if (it == types_.end() || !it->second.subscription.delta) {
    Disconnect("delta response for a type not subscribed as delta: " + response.type_url);
    return;
  }
  TypeState& type = it->second;
  auto result = handler_->OnResources(response.type_url, response.resources,
                                      response.removed_resources, false);
  RecordResult(status_.types[response.type_url], response.system_version_info, result);
  net::DeltaDiscoveryRequest ack;
  ack.type_url = response.type_url;
  ack.response_nonce = response.nonce;
  if (result) {
    for (const auto& r : response.resources) type.held[r.name] = r.version;
    for (const auto& name : response.removed_resources) type.held.erase(name);
  } else {
    ack.error_detail =
        net::Status{static_cast<int>(net::StatusCode::kInvalidArgument), result.error().ToString()};
  }
  Send(ack);
}

void XdsClient::Send(const net::Message& message) {
  if (stream_ == nullptr) return;
  if (auto ok = stream_->Write(net::EncodeFrame(net::EncodeMessage(message))); !ok) {
    Disconnect("write: " + ok.error().ToString());
  }
}

void XdsClient::OnKeepalive() {
  if (stream_ == nullptr || status_.state != XdsClientStatus::State::kConnected) return;
  const uint64_t now = uv_now(loop_);
  // A tick far later than scheduled means this loop was stalled, not that the server was
  // silent: bytes may be waiting in the socket. Restart the silence clock instead of dropping.
  if (now - last_keepalive_tick_ms_ > 2 * options_.keepalive_interval_ms) {
    last_receive_ms_ = now;
  }
  last_keepalive_tick_ms_ = now;
  if (now - last_receive_ms_ > 3 * options_.keepalive_interval_ms) {
    Disconnect("no frame from the server for 3 keepalive intervals");
    return;
  }
  // A stream that lasted an interval works even if it had nothing to send (a resume to a
  // replica that holds the same versions): the next disconnect starts backoff afresh.
  attempt_ = 0;
  Send(net::Keepalive{});
}

void XdsClient::OnTlsClosed(net::TlsStream&, const std::string& reason) {
  stream_ = nullptr;
  if (closing_) return;
  if (status_.state == XdsClientStatus::State::kConnecting) {
    // This address failed before the stream was up: try the next one.
    uv_timer_stop(&timer_);
    status_.last_error = status_.server_address + ": " + reason;
    ++status_.connect_failures;
    TryNextAddress();
    return;
  }
  Disconnect(reason);
}

void XdsClient::Disconnect(const std::string& reason) {
  if (stream_ != nullptr) {
    stream_->Close();
    stream_ = nullptr;
  }
  uv_timer_stop(&keepalive_timer_);
  if (closing_) return;
  if (status_.state == XdsClientStatus::State::kConnected) ++status_.disconnects;
  status_.last_error = reason;
  spdlog::warn("xds: disconnected from {}: {} (keeping the last good policy)",
               status_.server_address, reason);
  ScheduleReconnect();
}

void XdsClient::ScheduleReconnect() {
  if (closing_) return;
  status_.state = XdsClientStatus::State::kBackoff;
  const double r = std::uniform_real_distribution<double>(0.0, 1.0)(random_);
  const uint64_t delay =
      BackoffDelayMs(attempt_++, options_.initial_backoff_ms, options_.max_backoff_ms, r);
  server_index_ = 0;  // every attempt starts from the first server of the list
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<XdsClient*>(t->data)->Resolve(); }, delay, 0);
}

void XdsClient::Close(std::function<void()> done) {
  on_closed_ = std::move(done);
  if (closing_) return;
  closing_ = true;
  status_.state = XdsClientStatus::State::kClosed;
  if (stream_ != nullptr) {
    stream_->Close();
    stream_ = nullptr;
  }
  auto on_close = [](uv_handle_t* h) {
    auto* self = static_cast<XdsClient*>(h->data);
    --self->open_handles_;
    self->MaybeFinishClose();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&keepalive_timer_), on_close);
  ++open_handles_;
  resolver_->Close([this] {
    --open_handles_;
    MaybeFinishClose();
  });
}

void XdsClient::MaybeFinishClose() {
  if (open_handles_ > 0 || !on_closed_) return;
  auto done = std::move(on_closed_);
  on_closed_ = nullptr;
  done();
}

std::string XdsClient::StatusJson() const {
  base::JsonWriter w;
  w.BeginObject()
      .Member("server", options_.server)
      .Member("state", XdsStateName(status_.state))
      .Member("connected", status_.connected())
      .Member("server_address", status_.server_address)
      .Member("connects", status_.connects)
      .Member("disconnects", status_.disconnects)
      .Member("connect_failures", status_.connect_failures)
      .Member("last_error", status_.last_error)
      .Key("types")
      .BeginObject();
  for (const auto& [type_url, s] : status_.types) {
    w.Key(type_url)
        .BeginObject()
        .Member("last_acked_version", s.last_acked_version)
        .Member("last_acked_unix_ms", s.last_acked_unix_ms)
        .Member("acks", s.acks)
        .Member("nacks", s.nacks);
    if (s.nacks > 0) {
      w.Key("last_nack")
          .BeginObject()
          .Member("version_info", s.last_nack_version)
          .Member("error", s.last_nack_error)
          .Member("unix_ms", s.last_nack_unix_ms)
          .EndObject();
    }
    w.EndObject();
  }
  w.EndObject().EndObject();
  return w.Take();
}

std::string XdsClient::PrometheusText() const {
  base::PrometheusText p;
  p.Single("picket_xds_connected", "gauge", "1 while the xDS stream to the control server is up.",
           status_.connected() ? 1 : 0);
  p.Single("picket_xds_connects_total", "counter", "xDS streams established.", status_.connects);
  p.Single("picket_xds_disconnects_total", "counter", "xDS streams lost after being established.",
           status_.disconnects);
  p.Single("picket_xds_connect_failures_total", "counter",
           "Attempts to reach the control server that failed (resolve, connect or TLS).",
           status_.connect_failures);
  p.Family("picket_xds_acks_total", "counter", "Responses accepted (ACKed), per resource type.");
  for (const auto& [type_url, s] : status_.types) p.Sample(s.acks, {{"type_url", type_url}});
  p.Family("picket_xds_nacks_total", "counter", "Responses rejected (NACKed), per resource type.");
  for (const auto& [type_url, s] : status_.types) p.Sample(s.nacks, {{"type_url", type_url}});
  p.Family("picket_xds_last_ack_timestamp_seconds", "gauge",
           "Unix time of the last ACK, per resource type.");
  for (const auto& [type_url, s] : status_.types) {
    p.Sample(static_cast<uint64_t>(s.last_acked_unix_ms / 1000), {{"type_url", type_url}});
  }
  return p.Take();
}

}  // namespace picket::proxy::xds
