// test/proxy/hubble_schema.h — checks a flow-log line against Hubble's published schema.
//
// Owns: `CheckHubbleFlowLine`, which reads one JSON line as protojson (proto field names, as
// `hubble observe -o json` and the Hubble exporter print) of `observer.GetFlowsResponse` holding
// a `flow.Flow`, and returns every deviation as "path: reason": an unknown field, a value of the
// wrong JSON type, an enum name that flow.proto does not have, a bad RFC 3339 timestamp, more
// than one member of a oneof, an `extensions` Any whose type a stock parser could not resolve.
// The schema is the subset of Cilium's api/v1/flow/flow.proto and api/v1/observer/observer.proto
// that a network-policy sidecar can fill, written out as data in hubble_schema.cc (message →
// field → type, enum → names). Test-only; pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace picket::testing {

// Empty when `line` parses as a GetFlowsResponse with a `flow`.
std::vector<std::string> CheckHubbleFlowLine(std::string_view line);

// Every error of every flow in a flow-log file's text: flow lines are checked whole, the samples
// of a `policy_changed` line each as a flow line; other lines (Picket's `suppressed` summaries)
// are skipped. `flows_checked` (optional) receives how many flows were checked.
std::vector<std::string> CheckHubbleFlowLog(std::string_view text, size_t* flows_checked = nullptr);

}  // namespace picket::testing
