// proxy/flow_record.h — one connection's flow record and its JSON line (Hubble-like).
//
// Owns: `FlowRecord` (what a worker knows when a connection is decided or closed) and
// `FlowRecordJson`, the one rendering used by the flow-log file and by /flows. The shape follows
// Hubble's exporter (Cilium api/v1/flow/flow.proto; Hubble export docs):
// `{"flow":{...},"node_name":...,"time":...}` with `time`, `verdict` (FORWARDED/DROPPED),
// `drop_reason_desc`, `traffic_direction` (INGRESS/EGRESS), `IP`, `l4.TCP`, `source`/`destination`
// {namespace, pod_name, labels}, and `{egress,ingress}_{allowed,denied}_by`. Picket adds
// `close_reason`, `policy_detail`, `bytes` and `duration_ns`. Empty fields are omitted.
//
// Pure functions; any thread. Peer enrichment (LookupPeer) happens at rendering time, on the
// flow-log writer thread, with the snapshot the record carries.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "filters/close_reason.h"
#include "filters/filter.h"
#include "policy/endpoint_policy.h"
#include "proxy/flow_budget.h"

namespace picket::proxy {

struct FlowRecord {
  std::chrono::system_clock::time_point time;
  bool forwarded = false;  // verdict FORWARDED, else DROPPED
  bool relayed = false;    // bytes moved (or could have): bytes and duration are reported
  filters::CloseReason close_reason = filters::CloseReason::kNormal;
  filters::Direction direction = filters::Direction::kOutbound;
  config::Protocol protocol = config::Protocol::kTCP;  // l4.TCP / l4.UDP / l4.SCTP
  filters::Endpoint source;
  filters::Endpoint destination;  // the original destination (for a Service: the backend)
  // Set when the connection was sent to a Service address (then `destination` is the backend
  // picked, or the ClusterIP when none was allowed).
  std::shared_ptr<const filters::ServiceAddress> destination_service;
  uint64_t connection_id = 0;
  uint64_t bytes_to_destination = 0;
  uint64_t bytes_to_source = 0;
  std::chrono::nanoseconds duration{0};
  std::vector<std::string> policies;  // "ns/name" that decided
  std::string detail;
  policy::EndpointPolicyPtr policy;  // for LookupPeer; may be null
};

struct NodeIdentity {
  std::string ns;
  std::string name;
};

// One JSON object (no trailing newline).
std::string FlowRecordJson(const FlowRecord& record, const NodeIdentity& node);
// What the flow log did not write during one interval.
struct SuppressedSummary {
  uint64_t total = 0;
  // Indexed by SuppressReason (proxy/flow_budget.h); names in SuppressReasonName().
  std::array<uint64_t, kSuppressReasonCount> by_reason{};
  std::vector<std::pair<std::string, uint64_t>> top_sources;  // largest first, a few
  uint64_t interval_ms = 0;
};
// `{"suppressed":N,"by_reason":{"per_source":n,...},"top_sources":[{"source":ip,"count":n}],
// "interval_ms":...,"node_name":...,"time":...}`; reasons with zero are omitted.
std::string SuppressedJson(std::chrono::system_clock::time_point time,
                           const SuppressedSummary& summary, const NodeIdentity& node);

// The connections one policy change revoked (close reason policy_changed), in one record.
struct RevocationSummary {
  std::string policy_version;  // the snapshot that revoked them
  uint64_t count = 0;
  std::vector<std::string> policies;  // "ns/name" that had allowed them (a bounded union)
  std::vector<FlowRecord> sample;     // the first few
};
// `{"policy_changed":{"count":N,"policy_version":...,"policies":[...],"sample":[<flow>...]},
// "verdict":"DROPPED","close_reason":"policy_changed","node_name":...,"time":...}`.
std::string PolicyChangedJson(std::chrono::system_clock::time_point time,
                              const RevocationSummary& summary, const NodeIdentity& node);

// RFC 3339 with nanoseconds, UTC: 2023-08-21T12:12:18.510175415Z.
std::string Rfc3339(std::chrono::system_clock::time_point time);

}  // namespace picket::proxy
