#include "proxy/flow_record.h"

#include <openssl/rand.h>

#include <ctime>

#include "base/json.h"

namespace picket::proxy {
namespace {

// The one namespaced key of the google.protobuf.Struct in `extensions`.
constexpr char kExtensionsOpen[] =
    ",\"extensions\":{\"@type\":\"type.googleapis.com/google.protobuf.Struct\","
    "\"value\":{\"picket\":{";

void AppendEndpoint(std::string* out, const char* key, const policy::PeerInfo* peer,
                    const NodeIdentity* self) {
  std::string ns, pod;
  const config::Labels* labels = nullptr;
  if (peer != nullptr) {
    ns = peer->ns;
    pod = peer->pod;
    labels = &peer->labels;
  } else if (self != nullptr) {
    ns = self->ns;
    pod = self->name;
  }
  if (ns.empty() && pod.empty()) return;
  *out += ",\"";
  *out += key;
  *out += "\":{";
  bool first = true;
  auto field = [&](const char* k) {
    if (!first) *out += ',';
    first = false;
    *out += '"';
    *out += k;
    *out += "\":";
  };
  // Endpoint declaration order: namespace, labels, pod_name.
  if (!ns.empty()) {
    field("namespace");
    base::AppendJsonString(*out, ns);
  }
  if (labels != nullptr && !labels->empty()) {
    field("labels");
    *out += '[';
    bool first_label = true;
    for (const auto& [k, v] : *labels) {
      if (!first_label) *out += ',';
      first_label = false;
      // As Cilium prints Kubernetes pod labels: source prefix "k8s:", then key=value.
      base::AppendJsonString(*out, "k8s:" + k + "=" + v);
    }
    *out += ']';
  }
  if (!pod.empty()) {
    field("pod_name");
    base::AppendJsonString(*out, pod);
  }
  *out += '}';
}

// flow.Policy {name, namespace, kind}: Picket's policies are Kubernetes NetworkPolicies.
void AppendPolicies(std::string* out, const char* key, const std::vector<std::string>& policies) {
  if (policies.empty()) return;
  *out += ",\"";
  *out += key;
  *out += "\":[";
  for (size_t i = 0; i < policies.size(); ++i) {
    if (i > 0) *out += ',';
    const std::string& p = policies[i];
    size_t slash = p.find('/');
    *out += "{\"name\":";
    base::AppendJsonString(*out, slash == std::string::npos ? p : p.substr(slash + 1));
    if (slash != std::string::npos && slash > 0) {
      *out += ",\"namespace\":";
      base::AppendJsonString(*out, p.substr(0, slash));
    }
    *out += ",\"kind\":\"NetworkPolicy\"}";
  }
  *out += ']';
}

// TCP flags of the event the record stands for: the refused SYN of a denied connection, or
// how a relayed one ended (FIN when it finished or idled out, RST when it was reset).
const char* TcpFlags(const FlowRecord& r) {
  if (!r.relayed) return "{\"SYN\":true}";
  if (r.close_reason == filters::CloseReason::kNormal ||
      r.close_reason == filters::CloseReason::kIdleTimeout) {
    return "{\"FIN\":true}";
  }
  return "{\"RST\":true}";
}

void AppendNodeName(std::string* out, const NodeIdentity& node) {
  if (node.node_name.empty()) return;
  *out += ",\"node_name\":";
  base::AppendJsonString(*out, node.node_name);
}

}  // namespace

std::string_view HubbleDropReason(filters::CloseReason reason) {
  switch (reason) {
    case filters::CloseReason::kPolicyDenied:
    case filters::CloseReason::kPolicyChanged:
      return "POLICY_DENIED";
    case filters::CloseReason::kNoPolicyYet:
      return "NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION";
    case filters::CloseReason::kConnectionLimit:
    case filters::CloseReason::kResourceExhausted:
      return "CT_MAP_INSERTION_FAILED";
    case filters::CloseReason::kLoopDetected:
      return "UNKNOWN_L3_TARGET_ADDRESS";
    case filters::CloseReason::kUpstreamConnectFailed:
    case filters::CloseReason::kUpstreamConnectTimeout:
      return "STALE_OR_UNROUTABLE_IP";
    case filters::CloseReason::kNormal:
    case filters::CloseReason::kPeerReset:
    case filters::CloseReason::kIdleTimeout:
    case filters::CloseReason::kShutdown:
      return "";  // they end forwarded connections only
  }
  return "";
}

std::string RandomUuid() {
  uint8_t b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // variant 10
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[b[i] >> 4];
    out += kHex[b[i] & 0x0f];
  }
  return out;
}

std::string Rfc3339(std::chrono::system_clock::time_point time) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ns / 1000000000);
  long frac = static_cast<long>(ns % 1000000000);
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[64];
  snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", utc.tm_year + 1900,
           utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, frac);
  return buf;
}

std::string FlowRecordJson(const FlowRecord& r, const NodeIdentity& node) {
  const bool ingress = r.direction == filters::Direction::kInbound;
  const std::string time = Rfc3339(r.time);
  std::string out;
  out.reserve(768);
  // Flow fields in flow.proto declaration order, as protojson prints them.
  out += "{\"flow\":{\"time\":\"" + time + "\",\"uuid\":\"" + RandomUuid() + "\",\"verdict\":\"";
  out += r.forwarded ? "FORWARDED" : "DROPPED";
  out += "\",\"IP\":{\"source\":\"" + r.source.address.ToString() + "\",\"destination\":\"" +
         r.destination.address.ToString() + "\",\"ipVersion\":\"";
  out += r.source.address.v6 ? "IPv6" : "IPv4";
  out += "\"},\"l4\":{\"";
  out += config::ProtocolName(r.protocol);
  out += "\":{\"source_port\":" + std::to_string(r.source.port) +
         ",\"destination_port\":" + std::to_string(r.destination.port);
  if (r.protocol == config::Protocol::kTCP) {
    out += ",\"flags\":";
    out += TcpFlags(r);
  }
  out += "}}";
  const policy::PeerInfo* src_peer = r.policy ? r.policy->LookupPeer(r.source.address) : nullptr;
  const policy::PeerInfo* dst_peer =
      r.policy ? r.policy->LookupPeer(r.destination.address) : nullptr;
  // This pod is the source of egress and the destination of ingress, known or not.
  AppendEndpoint(&out, "source", src_peer, ingress ? nullptr : &node);
  AppendEndpoint(&out, "destination", dst_peer, ingress ? &node : nullptr);
  out += ",\"Type\":\"L3_L4\"";
  AppendNodeName(&out, node);
  const filters::ServiceAddress* svc = r.destination_service.get();
  if (svc != nullptr) {
    const size_t slash = svc->name.find('/');
    out += ",\"destination_service\":{\"name\":";
    base::AppendJsonString(out,
                           slash == std::string::npos ? svc->name : svc->name.substr(slash + 1));
    if (slash != std::string::npos && slash > 0) {
      out += ",\"namespace\":";
      base::AppendJsonString(out, svc->name.substr(0, slash));
    }
    out += '}';
  }
  out += ",\"traffic_direction\":\"";
  out += ingress ? "INGRESS" : "EGRESS";
  out += '"';
  if (!r.forwarded) {
    const std::string_view reason = HubbleDropReason(r.close_reason);
    if (!reason.empty()) {
      out += ",\"drop_reason_desc\":\"";
      out += reason;
      out += '"';
    }
  }
  out += ",\"is_reply\":false";
  const char* by = ingress ? (r.forwarded ? "ingress_allowed_by" : "ingress_denied_by")
                           : (r.forwarded ? "egress_allowed_by" : "egress_denied_by");
  AppendPolicies(&out, by, r.policies);
  // Picket's own facts, namespaced (see the header comment).
  out += kExtensionsOpen;
  out += "\"close_reason\":\"";
  out += filters::CloseReasonName(r.close_reason);
  out += '"';
  if (!r.detail.empty()) {
    out += ",\"policy_detail\":";
    base::AppendJsonString(out, r.detail);
  }
  if (r.relayed) {
    out += ",\"bytes\":{\"to_destination\":" + std::to_string(r.bytes_to_destination) +
           ",\"to_source\":" + std::to_string(r.bytes_to_source) + "}";
    out += ",\"duration_ns\":" + std::to_string(r.duration.count());
  }
  if (svc != nullptr) {
    out += ",\"service_address\":{\"ip\":\"" + svc->address.address.ToString() +
           "\",\"port\":" + std::to_string(svc->address.port) + "}";
  }
  out += ",\"connection_id\":" + std::to_string(r.connection_id);
  out += "}}}";
  out += '}';
  AppendNodeName(&out, node);
  out += ",\"time\":\"" + time + "\"}";
  return out;
}

std::string SuppressedJson(std::chrono::system_clock::time_point time,
                           const SuppressedSummary& summary, const NodeIdentity& node) {
  std::string out = "{\"suppressed\":" + std::to_string(summary.total) + ",\"by_reason\":{";
  bool first = true;
  for (size_t i = 0; i < summary.by_reason.size(); ++i) {
    if (summary.by_reason[i] == 0) continue;
    if (!first) out += ',';
    first = false;
    out += '"';
    out += SuppressReasonName(static_cast<SuppressReason>(i));
    out += "\":" + std::to_string(summary.by_reason[i]);
  }
  out += "},\"top_sources\":[";
  for (size_t i = 0; i < summary.top_sources.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"source\":";
    base::AppendJsonString(out, summary.top_sources[i].first);
    out += ",\"count\":" + std::to_string(summary.top_sources[i].second) + "}";
  }
  out += "],\"interval_ms\":" + std::to_string(summary.interval_ms);
  out += ",\"pod\":";
  base::AppendJsonString(out, node.ns + "/" + node.name);
  AppendNodeName(&out, node);
  out += ",\"time\":\"" + Rfc3339(time) + "\"}";
  return out;
}

std::string PolicyChangedJson(std::chrono::system_clock::time_point time,
                              const RevocationSummary& summary, const NodeIdentity& node) {
  std::string out = "{\"policy_changed\":{\"count\":" + std::to_string(summary.count);
  out += ",\"policy_version\":";
  base::AppendJsonString(out, summary.policy_version);
  out += ",\"policies\":[";
  for (size_t i = 0; i < summary.policies.size(); ++i) {
    if (i > 0) out += ',';
    base::AppendJsonString(out, summary.policies[i]);
  }
  out += "],\"sample\":[";
  for (size_t i = 0; i < summary.sample.size(); ++i) {
    if (i > 0) out += ',';
    out += FlowRecordJson(summary.sample[i], node);
  }
  out += "]},\"verdict\":\"DROPPED\",\"close_reason\":\"policy_changed\",\"pod\":";
  base::AppendJsonString(out, node.ns + "/" + node.name);
  AppendNodeName(&out, node);
  out += ",\"time\":\"" + Rfc3339(time) + "\"}";
  return out;
}

}  // namespace picket::proxy
