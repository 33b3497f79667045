// config/endpoint_resource.cc — yaml-cpp → plain resource structs, every error collected.
#include "config/endpoint_resource.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <exception>
#include <initializer_list>
#include <limits>
#include <utility>

namespace picket::config {
namespace {

// Walks one document, collecting errors with their field paths. Never throws: every yaml-cpp
// call that could throw is confined to Decode*'s try block, and node access here only uses
// non-throwing queries on nodes already known to be of the right type.
class Reader {
 public:
  explicit Reader(std::string_view file) : file_(file) {}

  Errors& errors() { return errors_; }

  void Fail(const YAML::Node& node, const std::string& field, std::string reason) {
    int line = node.IsDefined() ? node.Mark().line + 1 : 0;
    errors_.push_back(Error{file_, line > 0 ? line : 0, "", field, std::move(reason)});
  }

  // Checks `node` is a map whose keys are all in `known`.
  bool Map(const YAML::Node& node, const std::string& field,
           std::initializer_list<std::string_view> known) {
    if (!node.IsMap()) {
      Fail(node, field, "Invalid value: must be an object");
      return false;
    }
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        Fail(kv.first, field, "Invalid value: keys must be strings");
        continue;
      }
      const std::string& key = kv.first.Scalar();
      bool found = false;
      for (std::string_view k : known) found = found || k == key;
      if (!found) Fail(kv.first, Join(field, key), "Unknown field: \"" + key + "\"");
    }
    return true;
  }

  static std::string Join(const std::string& field, std::string_view key) {
    return field.empty() ? std::string(key) : field + "." + std::string(key);
  }
  static std::string Index(const std::string& field, size_t i) {
    return field + "[" + std::to_string(i) + "]";
  }

  bool String(const YAML::Node& node, const std::string& field, std::string* out) {
    if (!node.IsScalar()) {
      Fail(node, field, "Invalid value: must be a string");
      return false;
    }
    // Every string of these resources (Kubernetes names, label keys and values, addresses,
    // policy names, our own descriptions) is printable ASCII; anything else is corrupt input,
    // and rejecting it keeps decode(encode(x)) == x.
    for (unsigned char c : node.Scalar()) {
      if (c < 0x20 || c > 0x7e) {
        Fail(node, field, "Invalid value: must be printable ASCII");
        return false;
      }
    }
    *out = node.Scalar();
    return true;
  }

  bool Unsigned(const YAML::Node& node, const std::string& field, uint64_t max, uint64_t* out) {
    if (!node.IsScalar()) {
      Fail(node, field, "Invalid value: must be a number");
      return false;
    }
    const std::string& s = node.Scalar();
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max) {
      Fail(node, field,
           "Invalid value: \"" + s + "\": must be an integer between 0 and " + std::to_string(max));
      return false;
    }
    *out = v;
    return true;
  }

  bool U32(const YAML::Node& node, const std::string& field, uint32_t* out) {
    uint64_t v = 0;
    if (!Unsigned(node, field, std::numeric_limits<uint32_t>::max(), &v)) return false;
    *out = static_cast<uint32_t>(v);
    return true;
  }

  bool Port(const YAML::Node& node, const std::string& field, uint16_t* out) {
    uint64_t v = 0;
    if (!Unsigned(node, field, 65535, &v)) return false;
    if (v == 0) {
      Fail(node, field, "Invalid value: 0: must be between 1 and 65535, inclusive");
      return false;
    }
    *out = static_cast<uint16_t>(v);
    return true;
  }

  bool Bool(const YAML::Node& node, const std::string& field, bool* out) {
    if (node.IsScalar() && (node.Scalar() == "true" || node.Scalar() == "false")) {
      *out = node.Scalar() == "true";
      return true;
    }
    Fail(node, field, "Invalid value: must be true or false");
    return false;
  }

  bool Proto(const YAML::Node& node, const std::string& field, Protocol* out) {
    std::string s;
    if (!String(node, field, &s)) return false;
    if (s == "TCP") {
      *out = Protocol::kTCP;
    } else if (s == "UDP") {
      *out = Protocol::kUDP;
    } else if (s == "SCTP") {
      *out = Protocol::kSCTP;
    } else {
      Fail(node, field,
           "Unsupported value: \"" + s + "\": supported values: \"TCP\", \"UDP\", \"SCTP\"");
      return false;
    }
    return true;
  }

  // Calls fn(element, field_of_element, index) for each element of a sequence.
  template <typename Fn>
  void List(const YAML::Node& node, const std::string& field, Fn fn) {
    if (!node.IsSequence()) {
      Fail(node, field, "Invalid value: must be a list");
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) fn(node[i], Index(field, i));
  }

  void Required(const YAML::Node& parent, const std::string& field, std::string_view key) {
    if (!parent[std::string(key)]) Fail(parent, Join(field, key), "Required value");
  }

  void StringList(const YAML::Node& node, const std::string& field, std::vector<std::string>* out) {
    List(node, field, [&](const YAML::Node& n, const std::string& f) {
      std::string s;
      if (String(n, f, &s)) out->push_back(std::move(s));
    });
  }

  AddressEntryResource AddressEntry(const YAML::Node& node, const std::string& field) {
    AddressEntryResource out;
    if (!Map(node, field, {"identity", "namespace", "pod", "ips", "labels", "named_ports"}))
      return out;
    for (std::string_view k : {"identity", "namespace", "pod"}) Required(node, field, k);
    if (auto n = node["identity"]) U32(n, Join(field, "identity"), &out.identity);
    if (auto n = node["namespace"]) String(n, Join(field, "namespace"), &out.ns);
    if (auto n = node["pod"]) String(n, Join(field, "pod"), &out.pod);
    if (auto n = node["ips"]) StringList(n, Join(field, "ips"), &out.ips);
    if (auto n = node["labels"]) {
      const std::string f = Join(field, "labels");
      if (!n.IsMap()) {
        Fail(n, f, "Invalid value: must be an object");
      } else {
        for (const auto& kv : n) {
          std::string k, v;
          if (String(kv.first, f, &k) && String(kv.second, Join(f, k), &v)) out.labels[k] = v;
        }
      }
    }
    if (auto n = node["named_ports"]) {
      List(n, Join(field, "named_ports"), [&](const YAML::Node& p, const std::string& f) {
        NamedPortResource np;
        if (!Map(p, f, {"name", "port", "protocol"})) return;
        for (std::string_view k : {"name", "port", "protocol"}) Required(p, f, k);
        bool ok = true;
        if (auto x = p["name"]) ok = String(x, Join(f, "name"), &np.name) && ok;
        if (auto x = p["port"]) ok = Port(x, Join(f, "port"), &np.port) && ok;
        if (auto x = p["protocol"]) ok = Proto(x, Join(f, "protocol"), &np.protocol) && ok;
        if (ok) out.named_ports.push_back(std::move(np));
      });
    }
    return out;
  }

  DirectionResource Direction(const YAML::Node& node, const std::string& field) {
    DirectionResource out;
    if (!Map(node, field, {"isolated", "policies", "rules"})) return out;
    if (auto n = node["isolated"]) Bool(n, Join(field, "isolated"), &out.isolated);
    if (auto n = node["policies"]) StringList(n, Join(field, "policies"), &out.policies);
    if (auto n = node["rules"]) {
      List(n, Join(field, "rules"), [&](const YAML::Node& r, const std::string& f) {
        RuleEntryResource rule;
        if (!Map(r, f, {"policy", "rule", "peer", "port"})) return;
        Required(r, f, "policy");
        if (auto x = r["policy"]) U32(x, Join(f, "policy"), &rule.policy);
        if (auto x = r["rule"]) U32(x, Join(f, "rule"), &rule.rule);
        if (auto x = r["peer"]) rule.peer = Peer(x, Join(f, "peer"));
        if (auto x = r["port"]) rule.port = PortSpec(x, Join(f, "port"));
        out.rules.push_back(std::move(rule));
      });
    }
    return out;
  }

  PeerResource Peer(const YAML::Node& node, const std::string& field) {
    PeerResource out;
    if (!Map(node, field, {"identity_set", "cidr", "except", "description"})) return out;
    if (auto n = node["description"]) String(n, Join(field, "description"), &out.description);
    if (auto n = node["identity_set"]) {
      uint32_t v = 0;
      if (U32(n, Join(field, "identity_set"), &v)) out.identity_set = v;
    }
    if (auto n = node["cidr"]) {
      std::string s;
      if (String(n, Join(field, "cidr"), &s)) out.cidr = std::move(s);
    }
    if (auto n = node["except"]) StringList(n, Join(field, "except"), &out.except);
    const bool has_set = static_cast<bool>(node["identity_set"]);
    const bool has_cidr = static_cast<bool>(node["cidr"]);
    if (has_set == has_cidr) {
      Fail(node, field, "Invalid value: must specify exactly one of identity_set, cidr");
    } else if (has_set && node["except"]) {
      Fail(node, Join(field, "except"), "Forbidden: may only be specified with cidr");
    }
    return out;
  }

  PortResource PortSpec(const YAML::Node& node, const std::string& field) {
    PortResource out;
    if (!Map(node, field, {"protocol", "port", "end_port", "name"})) return out;
    Required(node, field, "protocol");
    if (auto n = node["protocol"]) Proto(n, Join(field, "protocol"), &out.protocol);
    uint16_t v = 0;
    if (auto n = node["port"]; n && Port(n, Join(field, "port"), &v)) out.port = v;
    if (auto n = node["end_port"]; n && Port(n, Join(field, "end_port"), &v)) out.end_port = v;
    if (auto n = node["name"]) {
      std::string s;
      if (String(n, Join(field, "name"), &s)) out.name = std::move(s);
    }
    if (node["name"] && (node["port"] || node["end_port"])) {
      Fail(node, Join(field, "name"), "Forbidden: may not be specified with port or end_port");
    }
    if (node["end_port"] && !node["port"]) {
      Fail(node, Join(field, "end_port"), "Forbidden: may not be specified without port");
    }
    if (out.port && out.end_port && *out.end_port < *out.port) {
      Fail(node, Join(field, "end_port"),
           "Invalid value: " + std::to_string(*out.end_port) +
               ": must be greater than or equal to `port`");
    }
    return out;
  }

  PodPolicyResource PodPolicy(const YAML::Node& node, const std::string& field) {
    PodPolicyResource out;
    if (!Map(node, field, {"namespace", "pod", "host_ips", "identity_sets", "ingress", "egress"}))
      return out;
    for (std::string_view k : {"namespace", "pod"}) Required(node, field, k);
    if (auto n = node["namespace"]) String(n, Join(field, "namespace"), &out.ns);
    if (auto n = node["pod"]) String(n, Join(field, "pod"), &out.pod);
    if (auto n = node["host_ips"]) StringList(n, Join(field, "host_ips"), &out.host_ips);
    if (auto n = node["identity_sets"]) {
      List(n, Join(field, "identity_sets"), [&](const YAML::Node& s, const std::string& f) {
        std::vector<uint32_t> ids;
        List(s, f, [&](const YAML::Node& id, const std::string& fi) {
          uint32_t v = 0;
          if (U32(id, fi, &v)) ids.push_back(v);
        });
        out.identity_sets.push_back(std::move(ids));
      });
    }
    if (auto n = node["ingress"]) out.ingress = Direction(n, Join(field, "ingress"));
    if (auto n = node["egress"]) out.egress = Direction(n, Join(field, "egress"));
    return out;
  }

  EndpointPolicyResource Snapshot(const YAML::Node& node) {
    EndpointPolicyResource out;
    if (!Map(node, "", {"version", "namespace", "pod", "address_map", "pod_policy"})) return out;
    for (std::string_view k : {"namespace", "pod", "pod_policy"}) Required(node, "", k);
    if (auto n = node["version"]) String(n, "version", &out.version);
    if (auto n = node["namespace"]) String(n, "namespace", &out.ns);
    if (auto n = node["pod"]) String(n, "pod", &out.pod);
    if (auto n = node["address_map"]) {
      List(n, "address_map", [&](const YAML::Node& e, const std::string& f) {
        out.address_map.push_back(AddressEntry(e, f));
      });
    }
    if (auto n = node["pod_policy"]) out.pod_policy = PodPolicy(n, "pod_policy");
    return out;
  }

 private:
  std::string file_;
  Errors errors_;
};

template <typename T, typename Fn>
std::expected<T, Errors> Decode(std::string_view text, std::string_view file_name, Fn fn) {
  Reader reader(file_name);
  try {
    YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsDefined() || root.IsNull()) {
      reader.errors().push_back(Error{std::string(file_name), 0, "", "", "empty document"});
      return std::unexpected(std::move(reader.errors()));
    }
    T out = fn(reader, root);
    if (!reader.errors().empty()) return std::unexpected(std::move(reader.errors()));
    return out;
  } catch (const YAML::Exception& e) {
    reader.errors().push_back(
        Error{std::string(file_name), e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "", e.msg});
  } catch (const std::exception& e) {
    reader.errors().push_back(Error{std::string(file_name), 0, "", "", e.what()});
  }
  return std::unexpected(std::move(reader.errors()));
}

}  // namespace

std::expected<AddressEntryResource, Errors> DecodeAddressEntryResource(std::string_view text,
                                                                       std::string_view file_name) {
  return Decode<AddressEntryResource>(
      text, file_name, [](Reader& r, const YAML::Node& n) { return r.AddressEntry(n, ""); });
}

std::expected<PodPolicyResource, Errors> DecodePodPolicyResource(std::string_view text,
                                                                 std::string_view file_name) {
  return Decode<PodPolicyResource>(
      text, file_name, [](Reader& r, const YAML::Node& n) { return r.PodPolicy(n, ""); });
}

std::expected<EndpointPolicyResource, Errors> DecodeEndpointPolicyResource(
    std::string_view text, std::string_view file_name) {
  return Decode<EndpointPolicyResource>(
      text, file_name, [](Reader& r, const YAML::Node& n) { return r.Snapshot(n); });
}

}  // namespace picket::config
