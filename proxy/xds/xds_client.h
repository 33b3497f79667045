// proxy/xds/xds_client.h — the sidecar's client for the control server (control/PROTOCOL.md).
//
// Owns: the connection lifecycle (resolve the server's host name with c-ares → try each address
// → mutual TLS → subscribe → stream), keepalives, capped exponential backoff with jitter between
// attempts, and the per-type protocol state: versions held, nonces, ACK/NACK. What resources
// mean is not its business: each response goes to a ResourceHandler, which validates and applies
// it atomically or returns an error; the client ACKs or NACKs accordingly. On disconnect nothing
// is un-applied: the sidecar keeps enforcing the last good state while the client reconnects.
//
// Loop-thread only; ResourceHandler is called on the loop thread. Close() and run the loop until
// `done` before destroying. The handler must outlive the client.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "net/frame.h"
#include "net/tls.h"
#include "net/tls_stream.h"
#include "net/xds_message.h"
#include "proxy/xds/resolver.h"

namespace picket::proxy::xds {

// The seam between the protocol and what resources mean (policy_source.h is the real one).
class ResourceHandler {
 public:
  virtual ~ResourceHandler() = default;
  // One response for `type_url`. State of the world: `resources` is the full set and `removed`
  // is empty. Delta: changed resources and removed names. Apply all or nothing; an error is
  // sent back as the NACK's error_detail.
  [[nodiscard]] virtual base::Result<void> OnResources(const std::string& type_url,
                                                       const std::vector<net::Resource>& resources,
                                                       const std::vector<std::string>& removed,
                                                       bool state_of_the_world) = 0;
};

struct XdsSubscription {
  std::string type_url;
  bool delta = false;
  std::vector<std::string> resource_names;  // empty: wildcard (own-pod types: the server fills)
};

struct XdsClientOptions {
  std::string server;  // "host:port", "[v6]:port"
  // More "host:port"s (control-server replicas at distinct addresses), tried in order after
  // every address of `server` on each attempt. Usually empty: one Service name whose addresses
  // are the replicas does the same.
  std::vector<std::string> fallback_servers;
  std::string server_name;  // certificate name to verify; default: the host part of each server
  std::shared_ptr<net::TlsContext> tls;
  net::Node node;
  std::vector<XdsSubscription> subscriptions;
  uint64_t connect_timeout_ms = 5000;
  uint64_t initial_backoff_ms = 250;
  uint64_t max_backoff_ms = 30000;
  uint64_t keepalive_interval_ms = 15000;  // silence for 3 intervals drops the connection
  uint32_t max_frame_size = net::kDefaultMaxFrameSize;
};

// The delay before reconnect attempt `attempt` (0-based): min(max, initial * 2^attempt), scaled
// by a jitter factor in [0.5, 1) drawn from `random01` in [0, 1).
uint64_t BackoffDelayMs(uint32_t attempt, uint64_t initial_ms, uint64_t max_ms, double random01);

struct XdsTypeStatus {
  std::string last_acked_version;
  uint64_t last_acked_unix_ms = 0;
  uint64_t acks = 0;
  uint64_t nacks = 0;
  std::string last_nack_version;  // the version that was rejected
  std::string last_nack_error;
  uint64_t last_nack_unix_ms = 0;
};

struct XdsClientStatus {
  enum class State : uint8_t { kIdle, kResolving, kConnecting, kConnected, kBackoff, kClosed };
  State state = State::kIdle;
  std::string server_address;  // the address of the current/last connection
  uint64_t connects = 0;       // streams established
  uint64_t disconnects = 0;
  uint64_t connect_failures = 0;
  std::string last_error;
  std::map<std::string, XdsTypeStatus> types;
  bool connected() const { return state == State::kConnected; }
};

const char* XdsStateName(XdsClientStatus::State state);

class XdsClient : public net::TlsStream::Handler {
 public:
  [[nodiscard]] static base::Result<std::unique_ptr<XdsClient>> Create(uv_loop_t* loop,
                                                                       XdsClientOptions options,
                                                                       ResourceHandler* handler);
  ~XdsClient() override;
  XdsClient(const XdsClient&) = delete;
  XdsClient& operator=(const XdsClient&) = delete;

  void Start();
  void Close(std::function<void()> done);
  // The TLS context of the next connections (a renewed certificate); the current stream, if
  // any, keeps the one it was opened with.
  void SetTls(std::shared_ptr<net::TlsContext> tls) { options_.tls = std::move(tls); }

  const XdsClientStatus& status() const { return status_; }
  // For /config_dump: the status as a JSON object.
  std::string StatusJson() const;
  // For /stats/prometheus: picket_xds_* gauges and counters (text format 0.0.4).
  std::string PrometheusText() const;

  // TlsStream::Handler
  void OnTlsReady(net::TlsStream& stream) override;
  void OnTlsData(net::TlsStream& stream, std::string_view plaintext) override;
  void OnTlsClosed(net::TlsStream& stream, const std::string& reason) override;

 private:
  struct TypeState {
    XdsSubscription subscription;
    std::string applied_version;              // SotW: last applied
    std::map<std::string, std::string> held;  // delta: name → version applied
  };

  XdsClient(uv_loop_t* loop, XdsClientOptions options, ResourceHandler* handler);
  void Resolve();
  void OnResolved(base::Result<Resolver::Addresses> result);
  void TryNextAddress();
  // This attempt's addresses ran out: the next server of the list, or backoff after the last.
  void NextServerOrBackoff();
  void OnConnectTimeout();
  void Disconnect(const std::string& reason);
  void ScheduleReconnect();
  void SendSubscriptions();
  void HandleFrame(std::string_view body);
  void HandleResponse(net::DiscoveryResponse response);
  void HandleDelta(net::DeltaDiscoveryResponse response);
  void RecordResult(XdsTypeStatus& s, const std::string& version, const base::Result<void>& result);
  void Send(const net::Message& message);
  void OnKeepalive();
  void MaybeFinishClose();

  uv_loop_t* loop_;
  XdsClientOptions options_;
  ResourceHandler* handler_;
  std::vector<std::pair<std::string, uint16_t>> servers_;  // `server`, then the fallbacks
  size_t server_index_ = 0;                                // the one being resolved/tried
  std::string host_;
  uint16_t port_ = 0;
  std::unique_ptr<Resolver> resolver_;
  Resolver::Addresses addresses_;
  size_t next_address_ = 0;
  net::TlsStream* stream_ = nullptr;
  net::FrameDecoder decoder_;
  uv_timer_t timer_{};  // connect timeout and backoff
  uv_timer_t keepalive_timer_{};
  uint64_t last_receive_ms_ = 0;
  uint64_t last_keepalive_tick_ms_ = 0;
  uint32_t attempt_ = 0;
  bool node_sent_ = false;
  std::map<std::string, TypeState> types_;
  XdsClientStatus status_;
  std::mt19937_64 random_;
  int open_handles_ = 0;
  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace picket::proxy::xds
