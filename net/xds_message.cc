// net/xds_message.cc — see xds_message.h. Field rules are in control/PROTOCOL.md §3.
#include "net/xds_message.h"

#include <algorithm>
#include <set>

#include "base/json_fields.h"
#include "net/frame.h"

namespace picket::net {
namespace {

using base::JsonFields;
using base::JsonValue;
using base::JsonWriter;
using base::Need;

constexpr size_t kMaxNameLength = 512;

// Reads the fields every message shares; the first reported error is the message's error.
class Decoder {
 public:
  explicit Decoder(base::Errors* errors) : errors_(errors) {}

  void String(JsonFields& r, std::string_view key, std::string& out, Need need = Need::kOptional,
              size_t max = kMaxNameLength) {
    if (auto s = r.String(key, need, max)) out = *s;
  }

  void Names(JsonFields& r, std::string_view key, std::vector<std::string>& out) {
    std::set<std::string_view> unique;
    r.Array(key, Need::kOptional, [&](JsonValue item, const std::string& path) {
      std::optional<std::string_view> name = base::JsonString(item, path, errors_);
      if (!name) return;
      if (name->empty() || name->size() > kMaxNameLength) {
        Report(path, base::InvalidValue(base::ShowJson(item), "a resource name must be 1.." +
                                                                  std::to_string(kMaxNameLength) +
                                                                  " bytes"));
      } else if (!unique.insert(*name).second) {
        Report(path, "duplicate resource name \"" + std::string(*name) + "\"");
      } else {
        out.emplace_back(*name);
      }
    });
  }

  void StatusFields(JsonFields& r, Status& out) {
    if (auto code = r.Int<int>("code", Need::kRequired, 0, 16)) out.code = *code;
    String(r, "message", out.message, Need::kOptional, 1 << 20);
  }

  void StatusField(JsonFields& r, std::optional<Status>& out) {
    auto s = r.Object("error_detail");
    if (!s) return;
    Status status;
    StatusFields(*s, status);
    s->Finish();
    out = std::move(status);
  }

  void NodeField(JsonFields& r, std::optional<Node>& out) {
    auto n = r.Object("node");
    if (!n) return;
    Node node;
    String(*n, "id", node.id, Need::kRequired);
    String(*n, "namespace", node.ns, Need::kRequired, 63);
    String(*n, "pod", node.pod, Need::kRequired, 253);
    String(*n, "user_agent", node.user_agent);
    // Free-form (Envoy's Node.metadata): only the keys read here are checked, others ignored.
    if (auto metadata = n->Object("metadata")) {
      node.udp_sctp_enforced = metadata->Bool("udp_sctp_enforced");
    }
    n->Finish();
    out = std::move(node);
  }

  void Resources(JsonFields& r, std::vector<Resource>& out) {
    std::set<std::string_view> unique;
    r.Array("resources", Need::kOptional, [&](JsonValue item, const std::string& path) {
      JsonFields f(item, path, errors_);
      Resource res;
      std::optional<std::string_view> name = f.String("name", Need::kRequired, kMaxNameLength);
      String(f, "version", res.version, Need::kRequired);
      if (auto body = f.Value("resource", Need::kRequired)) res.value = *body;
      f.Finish();
      if (!name) return;
      if (name->empty()) {
        Report(f.Path("name"), "Required value: must not be empty");
      } else if (!unique.insert(*name).second) {
        // Duplicate names in one response are a protocol violation (xDS: NACK).
        Report(f.Path("name"), "duplicate resource name \"" + std::string(*name) + "\"");
      }
      res.name = std::string(*name);
      out.push_back(std::move(res));
    });
  }

  void Report(const std::string& path, std::string reason) {
    errors_->push_back(base::Error::At(path, std::move(reason)));
  }

 private:
  base::Errors* errors_;
};

void DecodeBody(std::string_view kind, JsonFields& r, Decoder& d, Message& out) {
  if (kind == "discovery_request") {
    DiscoveryRequest m;
    d.NodeField(r, m.node);
    d.String(r, "version_info", m.version_info);
    d.Names(r, "resource_names", m.resource_names);
    d.String(r, "type_url", m.type_url, Need::kRequired);
    d.String(r, "response_nonce", m.response_nonce);
    d.StatusField(r, m.error_detail);
    out = std::move(m);
  } else if (kind == "discovery_response") {
    DiscoveryResponse m;
    d.String(r, "version_info", m.version_info, Need::kRequired);
    d.Resources(r, m.resources);
    d.String(r, "type_url", m.type_url, Need::kRequired);
    if (auto nonce = r.String("nonce", Need::kRequired, kMaxNameLength)) {
      if (nonce->empty()) r.Report("nonce", "Required value: must not be empty");
      m.nonce = *nonce;
    }
    d.String(r, "control_plane", m.control_plane);
    out = std::move(m);
  } else if (kind == "delta_discovery_request") {
    DeltaDiscoveryRequest m;
    d.NodeField(r, m.node);
    d.String(r, "type_url", m.type_url, Need::kRequired);
    d.Names(r, "resource_names_subscribe", m.resource_names_subscribe);
    d.Names(r, "resource_names_unsubscribe", m.resource_names_unsubscribe);
    if (auto versions = r.Object("initial_resource_versions")) {
      for (const base::JsonMember& member : versions->object().Members()) {
        if (member.key.empty() || member.key.size() > kMaxNameLength) {
          versions->Report(member.key, "a resource name must be 1.." +
                                           std::to_string(kMaxNameLength) + " bytes");
        } else if (auto v = versions->String(member.key, Need::kRequired)) {
          m.initial_resource_versions.emplace(member.key, *v);
        }
      }
    }
    d.String(r, "response_nonce", m.response_nonce);
    d.StatusField(r, m.error_detail);
    out = std::move(m);
  } else if (kind == "delta_discovery_response") {
    DeltaDiscoveryResponse m;
    d.String(r, "system_version_info", m.system_version_info);
    d.Resources(r, m.resources);
    d.String(r, "type_url", m.type_url, Need::kRequired);
    d.Names(r, "removed_resources", m.removed_resources);
    if (auto nonce = r.String("nonce", Need::kRequired, kMaxNameLength)) {
      if (nonce->empty()) r.Report("nonce", "Required value: must not be empty");
      m.nonce = *nonce;
    }
    d.String(r, "control_plane", m.control_plane);
    out = std::move(m);
  } else if (kind == "status") {
    StreamStatus m;
    d.StatusFields(r, m.status);
    out = std::move(m);
  } else {
    out = Keepalive{};
  }
  r.Finish();
}

void WriteStatus(JsonWriter& w, const Status& s) {
  w.BeginObject().Member("code", s.code);
  if (!s.message.empty()) w.Member("message", s.message);
  w.EndObject();
}

void WriteNames(JsonWriter& w, std::string_view key, const std::vector<std::string>& names) {
  w.Key(key).BeginArray();
  for (const auto& n : names) w.String(n);
  w.EndArray();
}

void WriteResources(JsonWriter& w, const std::vector<Resource>& resources) {
  w.Key("resources").BeginArray();
  for (const Resource& r : resources) {
    if (r.wire) {
      w.Raw(*r.wire);
      continue;
    }
    w.BeginObject().Member("name", r.name).Member("version", r.version).Key("resource");
    if (r.encoded.empty()) {
      w.Value(r.value);
    } else {
      w.Raw(r.encoded);
    }
    w.EndObject();
  }
  w.EndArray();
}

void WriteNode(JsonWriter& w, const std::optional<Node>& n) {
  if (!n) return;
  w.Key("node").BeginObject().Member("id", n->id).Member("namespace", n->ns).Member("pod", n->pod);
  if (!n->user_agent.empty()) w.Member("user_agent", n->user_agent);
  if (n->udp_sctp_enforced) {
    w.Key("metadata").BeginObject().Member("udp_sctp_enforced", *n->udp_sctp_enforced).EndObject();
  }
  w.EndObject();
}

void MemberIfNotEmpty(JsonWriter& w, std::string_view key, const std::string& value) {
  if (!value.empty()) w.Member(key, value);
}

struct Encoder {
  JsonWriter& w;

  void operator()(const DiscoveryRequest& m) const {
    WriteNode(w, m.node);
    w.Member("version_info", m.version_info);
    WriteNames(w, "resource_names", m.resource_names);
    w.Member("type_url", m.type_url);
    MemberIfNotEmpty(w, "response_nonce", m.response_nonce);
    if (m.error_detail) WriteStatus(w.Key("error_detail"), *m.error_detail);
  }
  void operator()(const DiscoveryResponse& m) const {
    w.Member("version_info", m.version_info);
    WriteResources(w, m.resources);
    w.Member("type_url", m.type_url).Member("nonce", m.nonce);
    MemberIfNotEmpty(w, "control_plane", m.control_plane);
  }
  void operator()(const DeltaDiscoveryRequest& m) const {
    WriteNode(w, m.node);
    w.Member("type_url", m.type_url);
    if (!m.resource_names_subscribe.empty()) {
      WriteNames(w, "resource_names_subscribe", m.resource_names_subscribe);
    }
    if (!m.resource_names_unsubscribe.empty()) {
      WriteNames(w, "resource_names_unsubscribe", m.resource_names_unsubscribe);
    }
    if (!m.initial_resource_versions.empty()) {
      w.Key("initial_resource_versions").BeginObject();
      for (const auto& [name, version] : m.initial_resource_versions) w.Member(name, version);
      w.EndObject();
    }
    MemberIfNotEmpty(w, "response_nonce", m.response_nonce);
    if (m.error_detail) WriteStatus(w.Key("error_detail"), *m.error_detail);
  }
  void operator()(const DeltaDiscoveryResponse& m) const {
    MemberIfNotEmpty(w, "system_version_info", m.system_version_info);
    WriteResources(w, m.resources);
    w.Member("type_url", m.type_url);
    if (!m.removed_resources.empty()) WriteNames(w, "removed_resources", m.removed_resources);
    w.Member("nonce", m.nonce);
    MemberIfNotEmpty(w, "control_plane", m.control_plane);
  }
  void operator()(const StreamStatus& m) const {
    w.Member("code", m.status.code);
    MemberIfNotEmpty(w, "message", m.status.message);
  }
  void operator()(const Keepalive&) const {}
};

constexpr std::string_view kNames[] = {"discovery_request",
                                       "discovery_response",
                                       "delta_discovery_request",
                                       "delta_discovery_response",
                                       "status",
                                       "keepalive"};

}  // namespace

base::Result<Message> DecodeMessage(std::string_view body) {
  auto parsed = base::ParseJson(body);
  if (!parsed) return std::unexpected(std::move(parsed.error()));
  auto document = std::make_shared<const base::JsonDocument>(std::move(*parsed));
  const JsonValue root = document->root();
  if (!root.IsObject() || root.size() != 1) {
    return std::unexpected(
        base::Error::Of("a message must be a JSON object with exactly one member naming its kind"));
  }
  const base::JsonMember envelope = *root.Members().begin();
  if (std::find(std::begin(kNames), std::end(kNames), envelope.key) == std::end(kNames)) {
    return std::unexpected(
        base::Error::Of("unknown message \"" + std::string(envelope.key) + "\""));
  }
  base::Errors errors;
  Decoder decoder(&errors);
  JsonFields reader(envelope.value, std::string(envelope.key), &errors);
  Message message;
  DecodeBody(envelope.key, reader, decoder, message);
  if (!errors.empty()) return std::unexpected(std::move(errors.front()));
  if (auto* m = std::get_if<DiscoveryResponse>(&message)) m->payloads.document = document;
  if (auto* m = std::get_if<DeltaDiscoveryResponse>(&message)) m->payloads.document = document;
  return message;
}

std::string EncodeMessage(const Message& message) {
  JsonWriter w;
  w.BeginObject().Key(MessageName(message)).BeginObject();
  std::visit(Encoder{w}, message);
  w.EndObject().EndObject();
  return w.Take();
}

std::string EncodeWireResource(std::string_view name, std::string_view version,
                               std::string_view payload) {
  std::string out;
  out.reserve(name.size() + version.size() + payload.size() + 40);
  return JsonWriter(std::move(out))
      .BeginObject()
      .Member("name", name)
      .Member("version", version)
      .Key("resource")
      .Raw(payload)
      .EndObject()
      .Take();
}

std::string Resource::PayloadJson() const {
  if (wire) {
    auto doc = base::ParseJson(*wire);
    if (!doc) return {};
    auto payload = doc->root().Find("resource");
    return payload ? payload->ToJson() : std::string();
  }
  return encoded.empty() ? value.ToJson() : encoded;
}

namespace {

// What a message will take once encoded, roughly: enough to reserve the buffer once for a large
// response (its resources), not exact.
size_t SizeHint(const Message& message) {
  const std::vector<Resource>* resources = nullptr;
  if (const auto* d = std::get_if<DeltaDiscoveryResponse>(&message)) resources = &d->resources;
  if (const auto* s = std::get_if<DiscoveryResponse>(&message)) resources = &s->resources;
  size_t n = 512;
  if (resources != nullptr) {
    for (const Resource& r : *resources) {
      n += r.wire ? r.wire->size() : r.name.size() + r.version.size() + r.encoded.size() + 64;
    }
  }
  return n;
}

}  // namespace

std::string EncodeFramedMessage(const Message& message) {
  std::string buffer;
  buffer.reserve(kFrameHeaderSize + SizeHint(message));
  buffer.assign(kFrameHeaderSize, '\0');
  JsonWriter w(std::move(buffer));
  w.BeginObject().Key(MessageName(message)).BeginObject();
  std::visit(Encoder{w}, message);
  w.EndObject().EndObject();
  std::string framed = w.Take();
  SetFrameHeader(framed);
  return framed;
}

std::string_view MessageName(const Message& message) { return kNames[message.index()]; }

}  // namespace picket::net
