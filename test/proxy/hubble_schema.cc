#include "test/proxy/hubble_schema.h"

#include <cstdint>
#include <map>
#include <set>

#include "base/json.h"

namespace picket::testing {
namespace {

using base::JsonValue;

enum class Kind { kString, kBool, kUint32, kUint64, kEnum, kMessage, kTimestamp, kBoolValue, kAny };

struct Field {
  Kind kind;
  std::string_view type = {};  // the message or enum name
  bool repeated = false;
  std::string_view oneof = {};
};

using Message = std::map<std::string_view, Field>;

Field Str() { return {Kind::kString}; }
Field Strs() { return {Kind::kString, {}, true}; }
Field Bool() { return {Kind::kBool}; }
Field U32() { return {Kind::kUint32}; }
Field U64() { return {Kind::kUint64}; }
Field Enum(std::string_view e) { return {Kind::kEnum, e}; }
Field Msg(std::string_view m) { return {Kind::kMessage, m}; }
Field Msgs(std::string_view m) { return {Kind::kMessage, m, true}; }
Field OneOf(std::string_view m, std::string_view group) {
  return {Kind::kMessage, m, false, group};
}

// Cilium api/v1/flow/flow.proto (and observer.proto's GetFlowsResponse), with the protojson
// names of UseProtoNames: the field names exactly as declared.
const std::map<std::string_view, Message>& Messages() {
  static const auto* messages = new std::map<std::string_view, Message>{
      {"GetFlowsResponse",
       {{"flow", OneOf("Flow", "response_types")},
        {"node_name", Str()},
        {"time", {Kind::kTimestamp}}}},
      {"Flow",
       {{"time", {Kind::kTimestamp}},
        {"uuid", Str()},
        {"verdict", Enum("Verdict")},
        {"drop_reason", U32()},
        {"auth_type", Enum("AuthType")},
        {"ethernet", Msg("Ethernet")},
        {"IP", Msg("IP")},
        {"l4", Msg("Layer4")},
        {"source", Msg("Endpoint")},
        {"destination", Msg("Endpoint")},
        {"Type", Enum("FlowType")},
        {"node_name", Str()},
        {"node_labels", Strs()},
        {"source_names", Strs()},
        {"destination_names", Strs()},
        {"reply", Bool()},
        {"source_service", Msg("Service")},
        {"destination_service", Msg("Service")},
        {"traffic_direction", Enum("TrafficDirection")},
        {"policy_match_type", U32()},
        {"drop_reason_desc", Enum("DropReason")},
        {"is_reply", {Kind::kBoolValue}},
        {"proxy_port", U32()},
        {"socket_cookie", U64()},
        {"cgroup_id", U64()},
        {"egress_allowed_by", Msgs("Policy")},
        {"ingress_allowed_by", Msgs("Policy")},
        {"egress_denied_by", Msgs("Policy")},
        {"ingress_denied_by", Msgs("Policy")},
        {"policy_log", Strs()},
        {"extensions", {Kind::kAny}}}},
      {"Ethernet", {{"source", Str()}, {"destination", Str()}}},
      {"IP",
       {{"source", Str()},
        {"destination", Str()},
        {"ipVersion", Enum("IPVersion")},
        {"encrypted", Bool()}}},
      {"Layer4",
       {{"TCP", OneOf("TCP", "protocol")},
        {"UDP", OneOf("UDP", "protocol")},
        {"ICMPv4", OneOf("ICMPv4", "protocol")},
        {"ICMPv6", OneOf("ICMPv6", "protocol")},
        {"SCTP", OneOf("SCTP", "protocol")}}},
      {"TCP", {{"source_port", U32()}, {"destination_port", U32()}, {"flags", Msg("TCPFlags")}}},
      {"UDP", {{"source_port", U32()}, {"destination_port", U32()}}},
      {"SCTP", {{"source_port", U32()}, {"destination_port", U32()}}},
      {"ICMPv4", {{"type", U32()}, {"code", U32()}}},
      {"ICMPv6", {{"type", U32()}, {"code", U32()}}},
      {"TCPFlags",
       {{"FIN", Bool()},
        {"SYN", Bool()},
        {"RST", Bool()},
        {"PSH", Bool()},
        {"ACK", Bool()},
        {"URG", Bool()},
        {"ECE", Bool()},
        {"CWR", Bool()},
        {"NS", Bool()}}},
      {"Endpoint",
       {{"ID", U32()},
        {"identity", U32()},
        {"cluster_name", Str()},
        {"namespace", Str()},
        {"labels", Strs()},
        {"pod_name", Str()},
        {"workloads", Msgs("Workload")}}},
      {"Workload", {{"name", Str()}, {"kind", Str()}}},
      {"Service", {{"name", Str()}, {"namespace", Str()}}},
      {"Policy",
       {{"name", Str()},
        {"namespace", Str()},
        {"labels", Strs()},
        {"revision", U64()},
        {"kind", Str()}}},
  };
  return *messages;
}

const std::map<std::string_view, std::set<std::string_view>>& Enums() {
  static const auto* enums = new std::map<std::string_view, std::set<std::string_view>>{
      {"Verdict",
       {"VERDICT_UNKNOWN", "FORWARDED", "DROPPED", "ERROR", "AUDIT", "REDIRECTED", "TRACED",
        "TRANSLATED"}},
      {"AuthType", {"DISABLED", "SPIRE", "TEST_ALWAYS_FAIL"}},
      {"FlowType", {"UNKNOWN_TYPE", "L3_L4", "L7", "SOCK"}},
      {"TrafficDirection", {"TRAFFIC_DIRECTION_UNKNOWN", "INGRESS", "EGRESS"}},
      {"IPVersion", {"IP_NOT_USED", "IPv4", "IPv6"}},
      {"DropReason",
       {"DROP_REASON_UNKNOWN",
        "INVALID_SOURCE_MAC",
        "INVALID_DESTINATION_MAC",
        "INVALID_SOURCE_IP",
        "POLICY_DENIED",
        "INVALID_PACKET_DROPPED",
        "CT_TRUNCATED_OR_INVALID_HEADER",
        "CT_MISSING_TCP_ACK_FLAG",
        "CT_UNKNOWN_L4_PROTOCOL",
        "CT_CANNOT_CREATE_ENTRY_FROM_PACKET",
        "UNSUPPORTED_L3_PROTOCOL",
        "MISSED_TAIL_CALL",
        "ERROR_WRITING_TO_PACKET",
        "UNKNOWN_L4_PROTOCOL",
        "UNKNOWN_ICMPV4_CODE",
        "UNKNOWN_ICMPV4_TYPE",
        "UNKNOWN_ICMPV6_CODE",
        "UNKNOWN_ICMPV6_TYPE",
        "ERROR_RETRIEVING_TUNNEL_KEY",
        "ERROR_RETRIEVING_TUNNEL_OPTIONS",
        "INVALID_GENEVE_OPTION",
        "UNKNOWN_L3_TARGET_ADDRESS",
        "STALE_OR_UNROUTABLE_IP",
        "NO_MATCHING_LOCAL_CONTAINER_FOUND",
        "ERROR_WHILE_CORRECTING_L3_CHECKSUM",
        "ERROR_WHILE_CORRECTING_L4_CHECKSUM",
        "CT_MAP_INSERTION_FAILED",
        "INVALID_IPV6_EXTENSION_HEADER",
        "IP_FRAGMENTATION_NOT_SUPPORTED",
        "SERVICE_BACKEND_NOT_FOUND",
        "NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT",
        "FAILED_TO_INSERT_INTO_PROXYMAP",
        "REACHED_EDT_RATE_LIMITING_DROP_HORIZON",
        "UNKNOWN_CONNECTION_TRACKING_STATE",
        "LOCAL_HOST_IS_UNREACHABLE",
        "NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION",
        "UNSUPPORTED_L2_PROTOCOL",
        "NO_MAPPING_FOR_NAT_MASQUERADE",
        "UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE",
        "FIB_LOOKUP_FAILED",
        "ENCAPSULATION_TRAFFIC_IS_PROHIBITED",
        "INVALID_IDENTITY",
        "UNKNOWN_SENDER",
        "NAT_NOT_NEEDED",
        "IS_A_CLUSTERIP",
        "FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND",
        "FORBIDDEN_ICMPV6_MESSAGE",
        "DENIED_BY_LB_SRC_RANGE_CHECK",
        "SOCKET_LOOKUP_FAILED",
        "SOCKET_ASSIGN_FAILED",
        "PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL",
        "POLICY_DENY",
        "VLAN_FILTERED",
        "INVALID_VNI",
        "INVALID_TC_BUFFER",
        "NO_SID",
        "MISSING_SRV6_STATE",
        "NAT46",
        "NAT64",
        "AUTH_REQUIRED",
        "CT_NO_MAP_FOUND",
        "SNAT_NO_MAP_FOUND",
        "INVALID_CLUSTER_ID",
        "UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP",
        "NO_EGRESS_GATEWAY",
        "TTL_EXCEEDED",
        "NO_NODE_ID",
        "DROP_HOST_NOT_READY",
        "DROP_EP_NOT_READY"}},
  };
  return *enums;
}

// google.protobuf.Timestamp in JSON: "1972-01-01T10:00:20.021Z" — 0, 3, 6 or 9 fraction
// digits when printed; any 1..9 accepted when parsed. Picket always writes UTC ("Z").
bool IsRfc3339(std::string_view s) {
  auto digits = [&](size_t at, size_t n) {
    if (at + n > s.size()) return false;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
    }
    return true;
  };
  if (s.size() < 20 || !digits(0, 4) || s[4] != '-' || !digits(5, 2) || s[7] != '-' ||
      !digits(8, 2) || s[10] != 'T' || !digits(11, 2) || s[13] != ':' || !digits(14, 2) ||
      s[16] != ':' || !digits(17, 2)) {
    return false;
  }
  size_t i = 19;
  if (s[i] == '.') {
    size_t n = 0;
    while (i + 1 + n < s.size() && s[i + 1 + n] >= '0' && s[i + 1 + n] <= '9') ++n;
    if (n == 0 || n > 9) return false;
    i += 1 + n;
  }
  return i + 1 == s.size() && s[i] == 'Z';
}

class Checker {
 public:
  std::vector<std::string> errors;

  void CheckMessage(const JsonValue& v, std::string_view type, const std::string& path) {
    if (!v.IsObject()) {
      Fail(path, "must be an object (" + std::string(type) + "), is " +
                     std::string(base::DescribeJsonType(v.type())));
      return;
    }
    const Message& message = Messages().at(type);
    std::map<std::string_view, std::string_view> oneofs;  // group → the member set
    for (const base::JsonMember& m : v.Members()) {
      const std::string at = path.empty() ? std::string(m.key) : path + "." + std::string(m.key);
      auto it = message.find(m.key);
      if (it == message.end()) {
        Fail(at, "unknown field of flow." + std::string(type));
        continue;
      }
      const Field& f = it->second;
      if (!f.oneof.empty()) {
        auto [prev, inserted] = oneofs.emplace(f.oneof, m.key);
        if (!inserted) {
          Fail(at,
               "oneof " + std::string(f.oneof) + " already set by " + std::string(prev->second));
        }
      }
      if (f.repeated) {
        if (!m.value.IsArray()) {
          Fail(at, "repeated field must be an array");
          continue;
        }
        size_t i = 0;
        for (const JsonValue& e : m.value.Elements()) {
          CheckValue(e, f, at + "[" + std::to_string(i++) + "]");
        }
      } else {
        CheckValue(m.value, f, at);
      }
    }
  }

 private:
  void Fail(const std::string& path, const std::string& reason) {
    errors.push_back(path + ": " + reason);
  }

  void CheckValue(const JsonValue& v, const Field& f, const std::string& path) {
    switch (f.kind) {
      case Kind::kString:
        if (!v.IsString()) Fail(path, "must be a string");
        return;
      case Kind::kBool:
      case Kind::kBoolValue:
        if (!v.IsBool()) Fail(path, "must be true or false");
        return;
      case Kind::kUint32:
        if (!v.AsInt(0, UINT32_MAX)) Fail(path, "must be an integer 0..4294967295");
        return;
      case Kind::kUint64: {
        // protojson prints 64-bit integers as strings and reads either form.
        auto s = v.AsString();
        bool ok = v.AsUint64().has_value() ||
                  (s && !s->empty() && s->find_first_not_of("0123456789") == std::string::npos);
        if (!ok) Fail(path, "must be an unsigned 64-bit integer (a string or a number)");
        return;
      }
      case Kind::kEnum: {
        auto s = v.AsString();
        if (!s) {
          Fail(path, "must be an enum name (a string) of flow." + std::string(f.type));
        } else if (!Enums().at(f.type).contains(*s)) {
          Fail(path, "\"" + std::string(*s) + "\" is not a value of flow." + std::string(f.type));
        }
        return;
      }
      case Kind::kTimestamp: {
        auto s = v.AsString();
        if (!s || !IsRfc3339(*s)) Fail(path, "must be an RFC 3339 UTC timestamp string");
        return;
      }
      case Kind::kAny:
        CheckAny(v, path);
        return;
      case Kind::kMessage:
        CheckMessage(v, f.type, path);
        return;
    }
  }

  // An Any must name a type the reader can resolve; the one a stock protojson reader always has
  // and Picket uses is google.protobuf.Struct, whose JSON is `"value": {object}`.
  void CheckAny(const JsonValue& v, const std::string& path) {
    if (!v.IsObject()) {
      Fail(path, "must be an object (google.protobuf.Any)");
      return;
    }
    auto type = v.Find("@type");
    if (!type || type->AsString() != "type.googleapis.com/google.protobuf.Struct") {
      Fail(path + ".@type", "must be type.googleapis.com/google.protobuf.Struct");
    }
    for (const base::JsonMember& m : v.Members()) {
      if (m.key == "@type") continue;
      if (m.key != "value") {
        Fail(path + "." + std::string(m.key), "unknown field of a Struct Any (only value)");
      } else if (!m.value.IsObject()) {
        Fail(path + ".value", "must be an object (google.protobuf.Struct)");
      }
    }
  }
};

}  // namespace

std::vector<std::string> CheckHubbleFlowLine(std::string_view line) {
  auto doc = base::ParseJson(line);
  if (!doc) return {"not JSON: " + doc.error().ToString()};
  Checker checker;
  checker.CheckMessage(doc->root(), "GetFlowsResponse", "");
  if (checker.errors.empty() && !doc->root().Find("flow")) {
    checker.errors.push_back("flow: missing (not a flow line)");
  }
  return checker.errors;
}

std::vector<std::string> CheckHubbleFlowLog(std::string_view text, size_t* flows_checked) {
  std::vector<std::string> errors;
  size_t checked = 0;
  size_t line_no = 0;
  auto add = [&](std::string_view line, const std::string& where) {
    ++checked;
    for (std::string& e : CheckHubbleFlowLine(line)) errors.push_back(where + ": " + e);
  };
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    const std::string where = "line " + std::to_string(line_no);
    if (line.empty()) continue;
    auto doc = base::ParseJson(line);
    if (!doc) {
      errors.push_back(where + ": not JSON: " + doc.error().ToString());
      continue;
    }
    const JsonValue root = doc->root();
    if (root.Find("flow")) {
      add(line, where);
    } else if (auto changed = root.Find("policy_changed")) {
      size_t i = 0;
      if (auto sample = changed->Find("sample"); sample && sample->IsArray()) {
        for (const JsonValue& s : sample->Elements()) {
          add(s.ToJson(), where + " sample[" + std::to_string(i++) + "]");
        }
      }
    } else if (!root.Find("suppressed")) {
      errors.push_back(where + ": neither a flow, a policy_changed nor a suppressed line");
    }
  }
  if (flows_checked != nullptr) *flows_checked = checked;
  return errors;
}

}  // namespace picket::testing
