#include "proxy/flow_record.h"

#include <ctime>

#include "base/json.h"

namespace picket::proxy {
namespace {

// Hubble's names where they exist (POLICY_DENIED); picket's reason in upper case otherwise.
std::string DropReasonDesc(filters::CloseReason reason) {
  if (reason == filters::CloseReason::kPolicyDenied ||
      reason == filters::CloseReason::kPolicyChanged) {
    return "POLICY_DENIED";
  }
  std::string out(filters::CloseReasonName(reason));
  for (char& c : out) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return out;
}

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
  if (!ns.empty()) {
    field("namespace");
    base::AppendJsonString(*out, ns);
  }
  if (!pod.empty()) {
    field("pod_name");
    base::AppendJsonString(*out, pod);
  }
  if (labels != nullptr && !labels->empty()) {
    field("labels");
    *out += '[';
    bool first_label = true;
    for (const auto& [k, v] : *labels) {
      if (!first_label) *out += ',';
      first_label = false;
      base::AppendJsonString(*out, "k8s:" + k + "=" + v);
    }
    *out += ']';
  }
  *out += '}';
}

void AppendPolicies(std::string* out, const char* key, const std::vector<std::string>& policies) {
  if (policies.empty()) return;
  *out += ",\"";
  *out += key;
  *out += "\":[";
  for (size_t i = 0; i < policies.size(); ++i) {
    if (i > 0) *out += ',';
    const std::string& p = policies[i];
    size_t slash = p.find('/');
    *out += "{\"namespace\":";
    base::AppendJsonString(*out, slash == std::string::npos ? "" : p.substr(0, slash));
    *out += ",\"name\":";
    base::AppendJsonString(*out, slash == std::string::npos ? p : p.substr(slash + 1));
    *out += '}';
  }
  *out += ']';
}

}  // namespace

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
  std::string node_name = node.ns + "/" + node.name;
  std::string out;
  out.reserve(512);
  out += "{\"flow\":{\"time\":\"" + time + "\",\"verdict\":\"";
  out += r.forwarded ? "FORWARDED" : "DROPPED";
  out += '"';
  if (!r.forwarded) out += ",\"drop_reason_desc\":\"" + DropReasonDesc(r.close_reason) + "\"";
  out += ",\"traffic_direction\":\"";
  out += ingress ? "INGRESS" : "EGRESS";
  out += "\",\"IP\":{\"source\":\"" + r.source.address.ToString() + "\",\"destination\":\"" +
         r.destination.address.ToString() + "\",\"ipVersion\":\"";
  out += r.source.address.v6 ? "IPv6" : "IPv4";
  out += "\"},\"l4\":{\"";
  out += config::ProtocolName(r.protocol);
  out += "\":{\"source_port\":" + std::to_string(r.source.port) +
         ",\"destination_port\":" + std::to_string(r.destination.port) + "}}";
  const policy::PeerInfo* src_peer = r.policy ? r.policy->LookupPeer(r.source.address) : nullptr;
  const policy::PeerInfo* dst_peer =
      r.policy ? r.policy->LookupPeer(r.destination.address) : nullptr;
  // This pod is the source of egress and the destination of ingress, known or not.
  AppendEndpoint(&out, "source", src_peer, ingress ? nullptr : &node);
  AppendEndpoint(&out, "destination", dst_peer, ingress ? &node : nullptr);
  if (const filters::ServiceAddress* svc = r.destination_service.get()) {
    const size_t slash = svc->name.find('/');
    out += ",\"destination_service\":{\"namespace\":";
    base::AppendJsonString(out, slash == std::string::npos ? "" : svc->name.substr(0, slash));
    out += ",\"name\":";
    base::AppendJsonString(out,
                           slash == std::string::npos ? svc->name : svc->name.substr(slash + 1));
    out += ",\"ip\":\"" + svc->address.address.ToString() +
           "\",\"port\":" + std::to_string(svc->address.port) + "}";
  }
  out += ",\"node_name\":";
  base::AppendJsonString(out, node_name);
  out += ",\"is_reply\":false,\"Type\":\"L3_L4\"";
  const char* by = ingress ? (r.forwarded ? "ingress_allowed_by" : "ingress_denied_by")
                           : (r.forwarded ? "egress_allowed_by" : "egress_denied_by");
  AppendPolicies(&out, by, r.policies);
  out += ",\"close_reason\":\"";
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
  out += ",\"connection_id\":" + std::to_string(r.connection_id);
  out += "},\"node_name\":";
  base::AppendJsonString(out, node_name);
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
  out += ",\"node_name\":";
  base::AppendJsonString(out, node.ns + "/" + node.name);
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
  out += "]},\"verdict\":\"DROPPED\",\"close_reason\":\"policy_changed\",\"node_name\":";
  base::AppendJsonString(out, node.ns + "/" + node.name);
  out += ",\"time\":\"" + Rfc3339(time) + "\"}";
  return out;
}

}  // namespace picket::proxy
