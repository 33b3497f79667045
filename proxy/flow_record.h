// proxy/flow_record.h — one connection's flow record and its JSON line (Hubble's exact shape).
//
// Owns: `FlowRecord` (what a worker knows when a connection is decided or closed) and
// `FlowRecordJson`, the one rendering used by the flow-log file and by /flows. Each line is a
// Hubble `observer.GetFlowsResponse` as protojson prints it with proto field names
// (`UseProtoNames`, what Cilium's flow.pb.json.go MarshalJSON and so `hubble observe -o json`
// and the Hubble exporter print): `{"flow":{...},"node_name":...,"time":...}`. Every key is a
// field of Cilium api/v1/flow/flow.proto `Flow` and every enum value one of its names:
// `time`, `uuid` (random v4), `verdict`, `drop_reason_desc` (HubbleDropReason below), `IP`,
// `l4` (`TCP`/`UDP`/`SCTP` with ports, TCP `flags`), `source`/`destination` Endpoint
// {namespace, pod_name, labels}, `Type` L3_L4, `node_name` (the Kubernetes node, bootstrap
// `node.node_name`; omitted when unknown), `destination_service` {name, namespace},
// `traffic_direction`, `is_reply` false, `{egress,ingress}_{allowed,denied}_by` [Policy].
// What Hubble has no field for (Picket's close reason, the policy detail, bytes, duration,
// connection id, the Service address) is in `extensions`, a google.protobuf.Any holding a
// google.protobuf.Struct (a well-known type every protojson parser resolves) under the one key
// "picket": `"extensions":{"@type":"type.googleapis.com/google.protobuf.Struct",
// "value":{"picket":{"close_reason":...}}}`. Default values are omitted, as protojson does.
// test/proxy/hubble_schema.h checks the lines against the published schema.
//
// Pure functions; any thread. Peer enrichment (LookupPeer) happens at rendering time, on the
// flow-log writer thread, with the snapshot the record carries.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
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
  std::string ns;         // the pod's namespace
  std::string name;       // the pod's name
  std::string node_name;  // the Kubernetes node (spec.nodeName); empty: unknown, omitted
};

// Hubble's flow.proto DropReason name for a close reason that ends a DROPPED flow; empty for the
// reasons that only end forwarded connections (DROP_REASON_UNKNOWN, which protojson omits).
std::string_view HubbleDropReason(filters::CloseReason reason);
// A random (version 4) UUID, lower-case hex with dashes, from BoringSSL's RAND_bytes.
std::string RandomUuid();

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
// "interval_ms":...,"pod":"ns/name","node_name":...,"time":...}`; reasons with zero are omitted,
// `node_name` (the Kubernetes node) when unknown. Picket's own line, not a Hubble flow.
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
// "verdict":"DROPPED","close_reason":"policy_changed","pod":"ns/name","node_name":...,
// "time":...}`; each sample is a full flow line (FlowRecordJson). Picket's own line.
std::string PolicyChangedJson(std::chrono::system_clock::time_point time,
                              const RevocationSummary& summary, const NodeIdentity& node);

// RFC 3339 with nanoseconds, UTC: 2023-08-21T12:12:18.510175415Z.
std::string Rfc3339(std::chrono::system_clock::time_point time);

}  // namespace picket::proxy
