// net/xds_message.cc — see xds_message.h. Field rules are in control/PROTOCOL.md §3.
#include "net/xds_message.h"

#include <set>

namespace picket::net {
namespace {

constexpr size_t kMaxNameLength = 512;
constexpr size_t kMaxStringLength = 1 << 20;

// Reads the members of one JSON object, remembering which were consumed so that unknown
// members are reported. Every error carries the field path.
class Reader {
 public:
  // Members may be moved out of `object` (resource payloads), which the caller owns.
  Reader(Json& object, std::string path) : object_(object), path_(std::move(path)) {}

  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }

  bool Fail(std::string_view field, std::string_view reason) {
    if (error_.empty()) {
      error_ = path_;
      if (!field.empty()) error_ += "." + std::string(field);
      error_ += ": " + std::string(reason);
    }
    return false;
  }

  Json* Get(std::string_view key) {
    seen_.insert(std::string(key));
    if (!object_.is_object()) return nullptr;
    auto it = object_.as_object().find(key);
    return it == object_.as_object().end() || it->second.is_null() ? nullptr : &it->second;
  }

  void String(std::string_view key, std::string& out, bool required = false,
              size_t max_length = kMaxStringLength) {
    const Json* v = Get(key);
    if (v == nullptr) {
      if (required) Fail(key, "required field is missing");
      return;
    }
    if (!v->is_string()) {
      Fail(key, "expected a string");
      return;
    }
    if (v->as_string().size() > max_length) {
      Fail(key, "longer than " + std::to_string(max_length) + " bytes");
      return;
    }
    out = v->as_string();
  }

  void Names(std::string_view key, std::vector<std::string>& out) {
    const Json* v = Get(key);
    if (v == nullptr) return;
    if (!v->is_array()) {
      Fail(key, "expected an array of strings");
      return;
    }
    std::set<std::string_view> unique;
    for (size_t i = 0; i < v->as_array().size(); ++i) {
      const Json& item = v->as_array()[i];
      const std::string field = std::string(key) + "[" + std::to_string(i) + "]";
      if (!item.is_string()) {
        Fail(field, "expected a string");
        return;
      }
      if (item.as_string().empty() || item.as_string().size() > kMaxNameLength) {
        Fail(field, "a resource name must be 1.." + std::to_string(kMaxNameLength) + " bytes");
        return;
      }
      if (!unique.insert(item.as_string()).second) {
        Fail(field, "duplicate resource name \"" + item.as_string() + "\"");
        return;
      }
      out.push_back(item.as_string());
    }
  }

  void StatusField(std::string_view key, std::optional<Status>& out) {
    Json* v = Get(key);
    if (v == nullptr) return;
    if (!v->is_object()) {
      Fail(key, "expected an object");
      return;
    }
    Reader r(*v, path_ + "." + std::string(key));
    Status s;
    const Json* code = r.Get("code");
    if (code == nullptr) {
      r.Fail("code", "required field is missing");
    } else if (auto c = code->as_int(0, 16); !c) {
      r.Fail("code", "expected an integer status code 0..16");
    } else {
      s.code = static_cast<int>(*c);
    }
    r.String("message", s.message);
    r.Finish();
    if (!r.ok()) {
      error_ = r.error();
      return;
    }
    out = std::move(s);
  }

  void NodeField(std::optional<Node>& out) {
    Json* v = Get("node");
    if (v == nullptr) return;
    if (!v->is_object()) {
      Fail("node", "expected an object");
      return;
    }
    Reader r(*v, path_ + ".node");
    Node n;
    r.String("id", n.id, true, kMaxNameLength);
    r.String("namespace", n.ns, true, 63);
    r.String("pod", n.pod, true, 253);
    r.String("user_agent", n.user_agent, false, kMaxNameLength);
    r.Finish();
    if (!r.ok()) {
      error_ = r.error();
      return;
    }
    out = std::move(n);
  }

  void Resources(std::vector<Resource>& out) {
    Json* v = Get("resources");
    if (v == nullptr) return;
    if (!v->is_array()) {
      Fail("resources", "expected an array");
      return;
    }
    std::set<std::string, std::less<>> unique;
    for (size_t i = 0; i < v->as_array().size(); ++i) {
      Json& item = v->as_array()[i];
      const std::string field = "resources[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        Fail(field, "expected an object");
        return;
      }
      Reader r(item, path_ + "." + field);
      Resource res;
      r.String("name", res.name, true, kMaxNameLength);
      r.String("version", res.version, true, kMaxNameLength);
      if (Json* body = r.Get("resource")) {
        res.resource = std::move(*body);
      } else {
        r.Fail("resource", "required field is missing");
      }
      r.Finish();
      if (!r.ok()) {
        error_ = r.error();
        return;
      }
      if (res.name.empty()) {
        Fail(field + ".name", "must not be empty");
        return;
      }
      out.push_back(std::move(res));
      // Duplicate names in one response are a protocol violation (xDS: NACK).
      if (!unique.insert(out.back().name).second) {
        Fail(field + ".name", "duplicate resource name \"" + out.back().name + "\"");
        return;
      }
    }
  }

  void Finish() {
    if (!ok()) return;
    for (const auto& [key, value] : object_.as_object()) {
      if (!seen_.contains(key)) {
        Fail(key, "unknown field");
        return;
      }
    }
  }

 private:
  Json& object_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
  std::string error_;
};

Json StatusJson(const Status& s) {
  Json j = Json::MakeObject();
  j["code"] = s.code;
  if (!s.message.empty()) j["message"] = s.message;
  return j;
}

Json NamesJson(const std::vector<std::string>& names) {
  Json j = Json::MakeArray();
  for (const auto& n : names) j.Push(n);
  return j;
}

Json ResourcesJson(const std::vector<Resource>& resources) {
  Json j = Json::MakeArray();
  for (const auto& r : resources) {
    Json item = Json::MakeObject();
    item["name"] = r.name;
    item["version"] = r.version;
    item["resource"] = r.resource;
    j.Push(std::move(item));
  }
  return j;
}

Json NodeJson(const Node& n) {
  Json j = Json::MakeObject();
  j["id"] = n.id;
  j["namespace"] = n.ns;
  j["pod"] = n.pod;
  if (!n.user_agent.empty()) j["user_agent"] = n.user_agent;
  return j;
}

void SetIfNotEmpty(Json& j, std::string_view key, const std::string& value) {
  if (!value.empty()) j[key] = value;
}

struct Encoder {
  Json operator()(const DiscoveryRequest& m) const {
    Json j = Json::MakeObject();
    if (m.node) j["node"] = NodeJson(*m.node);
    j["version_info"] = m.version_info;
    j["resource_names"] = NamesJson(m.resource_names);
    j["type_url"] = m.type_url;
    SetIfNotEmpty(j, "response_nonce", m.response_nonce);
    if (m.error_detail) j["error_detail"] = StatusJson(*m.error_detail);
    return Wrap("discovery_request", std::move(j));
  }
  Json operator()(const DiscoveryResponse& m) const {
    Json j = Json::MakeObject();
    j["version_info"] = m.version_info;
    j["resources"] = ResourcesJson(m.resources);
    j["type_url"] = m.type_url;
    j["nonce"] = m.nonce;
    SetIfNotEmpty(j, "control_plane", m.control_plane);
    return Wrap("discovery_response", std::move(j));
  }
  Json operator()(const DeltaDiscoveryRequest& m) const {
    Json j = Json::MakeObject();
    if (m.node) j["node"] = NodeJson(*m.node);
    j["type_url"] = m.type_url;
    if (!m.resource_names_subscribe.empty()) {
      j["resource_names_subscribe"] = NamesJson(m.resource_names_subscribe);
    }
    if (!m.resource_names_unsubscribe.empty()) {
      j["resource_names_unsubscribe"] = NamesJson(m.resource_names_unsubscribe);
    }
    if (!m.initial_resource_versions.empty()) {
      Json versions = Json::MakeObject();
      for (const auto& [name, version] : m.initial_resource_versions) versions[name] = version;
      j["initial_resource_versions"] = std::move(versions);
    }
    SetIfNotEmpty(j, "response_nonce", m.response_nonce);
    if (m.error_detail) j["error_detail"] = StatusJson(*m.error_detail);
    return Wrap("delta_discovery_request", std::move(j));
  }
  Json operator()(const DeltaDiscoveryResponse& m) const {
    Json j = Json::MakeObject();
    SetIfNotEmpty(j, "system_version_info", m.system_version_info);
    j["resources"] = ResourcesJson(m.resources);
    j["type_url"] = m.type_url;
    if (!m.removed_resources.empty()) j["removed_resources"] = NamesJson(m.removed_resources);
    j["nonce"] = m.nonce;
    SetIfNotEmpty(j, "control_plane", m.control_plane);
    return Wrap("delta_discovery_response", std::move(j));
  }
  Json operator()(const StreamStatus& m) const { return Wrap("status", StatusJson(m.status)); }
  Json operator()(const Keepalive&) const { return Wrap("keepalive", Json::MakeObject()); }

  static Json Wrap(std::string_view key, Json body) {
    Json j = Json::MakeObject();
    j[key] = std::move(body);
    return j;
  }
};

template <typename T>
std::expected<Message, std::string> Done(Reader& r, T message) {
  r.Finish();
  if (!r.ok()) return std::unexpected(r.error());
  return Message(std::move(message));
}

std::expected<Message, std::string> DecodeBody(std::string_view kind, Json& body) {
  const std::string path(kind);
  if (!body.is_object()) return std::unexpected(path + ": expected an object");
  Reader r(body, path);
  if (kind == "discovery_request") {
    DiscoveryRequest m;
    r.NodeField(m.node);
    r.String("version_info", m.version_info, false, kMaxNameLength);
    r.Names("resource_names", m.resource_names);
    r.String("type_url", m.type_url, true, kMaxNameLength);
    r.String("response_nonce", m.response_nonce, false, kMaxNameLength);
    r.StatusField("error_detail", m.error_detail);
    return Done(r, std::move(m));
  }
  if (kind == "discovery_response") {
    DiscoveryResponse m;
    r.String("version_info", m.version_info, true, kMaxNameLength);
    r.Resources(m.resources);
    r.String("type_url", m.type_url, true, kMaxNameLength);
    r.String("nonce", m.nonce, true, kMaxNameLength);
    r.String("control_plane", m.control_plane, false, kMaxNameLength);
    if (r.ok() && m.nonce.empty()) r.Fail("nonce", "must not be empty");
    return Done(r, std::move(m));
  }
  if (kind == "delta_discovery_request") {
    DeltaDiscoveryRequest m;
    r.NodeField(m.node);
    r.String("type_url", m.type_url, true, kMaxNameLength);
    r.Names("resource_names_subscribe", m.resource_names_subscribe);
    r.Names("resource_names_unsubscribe", m.resource_names_unsubscribe);
    if (const Json* v = r.Get("initial_resource_versions")) {
      if (!v->is_object()) {
        r.Fail("initial_resource_versions", "expected an object of name: version");
      } else {
        for (const auto& [name, version] : v->as_object()) {
          if (!version.is_string() || name.empty() || name.size() > kMaxNameLength) {
            r.Fail("initial_resource_versions." + name, "expected a string version");
            break;
          }
          m.initial_resource_versions.emplace(name, version.as_string());
        }
      }
    }
    r.String("response_nonce", m.response_nonce, false, kMaxNameLength);
    r.StatusField("error_detail", m.error_detail);
    return Done(r, std::move(m));
  }
  if (kind == "delta_discovery_response") {
    DeltaDiscoveryResponse m;
    r.String("system_version_info", m.system_version_info, false, kMaxNameLength);
    r.Resources(m.resources);
    r.String("type_url", m.type_url, true, kMaxNameLength);
    r.Names("removed_resources", m.removed_resources);
    r.String("nonce", m.nonce, true, kMaxNameLength);
    r.String("control_plane", m.control_plane, false, kMaxNameLength);
    if (r.ok() && m.nonce.empty()) r.Fail("nonce", "must not be empty");
    return Done(r, std::move(m));
  }
  if (kind == "status") {
    StreamStatus m;
    const Json* code = r.Get("code");
    if (code == nullptr) {
      r.Fail("code", "required field is missing");
    } else if (auto c = code->as_int(0, 16); !c) {
      r.Fail("code", "expected an integer status code 0..16");
    } else {
      m.status.code = static_cast<int>(*c);
    }
    r.String("message", m.status.message);
    return Done(r, std::move(m));
  }
  if (kind == "keepalive") return Done(r, Keepalive{});
  return std::unexpected("unknown message \"" + path + "\"");
}

}  // namespace

std::expected<Message, std::string> DecodeMessage(std::string_view body) {
  auto json = ParseJson(body);
  if (!json) return std::unexpected("invalid JSON: " + json.error());
  if (!json->is_object() || json->as_object().size() != 1) {
    return std::unexpected(
        std::string("a message must be a JSON object with exactly one member naming its kind"));
  }
  auto& [kind, inner] = *json->as_object().begin();
  return DecodeBody(kind, inner);
}

std::string EncodeMessage(const Message& message) {
  return std::visit(Encoder{}, message).Serialize();
}

std::string_view MessageName(const Message& message) {
  static constexpr std::string_view kNames[] = {"discovery_request",
                                                "discovery_response",
                                                "delta_discovery_request",
                                                "delta_discovery_response",
                                                "status",
                                                "keepalive"};
  return kNames[message.index()];
}

}  // namespace picket::net
