// config/service.cc — see service.h. Field paths and messages follow kube-apiserver's
// ValidateService / validateServicePort (pkg/apis/core/validation).
#include "config/service.h"

#include <set>
#include <string>
#include <utility>

#include "config/label_validation.h"
#include "config/manifest_cidr.h"

namespace picket::config {
namespace {

std::string Invalid(const std::string& value, const std::string& detail) {
  return "Invalid value: " + value + ": " + detail;
}

// "must be empty, 'None', or a valid IP address" (clusterIP) vs the list form.
bool IsV6Text(std::string_view ip) { return ip.find(':') != std::string_view::npos; }

void DecodeClusterIps(const YAML::Node& spec, bool strict_ip, FieldReader& r, Service* out) {
  YAML::Node ip_node = Get(spec, "clusterIP");
  YAML::Node ips_node = Get(spec, "clusterIPs");
  std::optional<std::string> ip;
  if (!IsNullish(ip_node)) ip = r.String(ip_node, "spec.clusterIP");
  if (ip && !ip->empty() && *ip != "None" && !IpErrors(*ip, strict_ip).empty()) {
    r.Report(ip_node, "spec.clusterIP",
             Invalid(GoQuote(*ip), "must be empty, 'None', or a valid IP address"));
    return;
  }
  std::vector<std::string> ips;
  if (!IsNullish(ips_node)) ips = r.StringList(ips_node, "spec.clusterIPs");
  if (ips.size() > 2) {
    r.Report(ips_node, "spec.clusterIPs",
             Invalid("[" + GoQuote(ips[0]) + ", ...]", "may only hold up to 2 values"));
    return;
  }
  bool ok = true;
  for (size_t i = 0; i < ips.size(); ++i) {
    const std::string path = Index("spec.clusterIPs", i);
    if (i == 0 && ip && !ip->empty() && ips[0] != *ip) {
      r.Report(ips_node, path,
               Invalid(GoQuote(ips[0]), "must match clusterIP when both are specified"));
      ok = false;
    } else if (ips[i] == "None") {
      if (i > 0 || ips.size() > 1) {
        r.Report(ips_node, path, Invalid(GoQuote(ips[i]), "must be a valid IP address"));
        ok = false;
      }
    } else if (!IpErrors(ips[i], strict_ip).empty()) {
      r.Report(ips_node, path, Invalid(GoQuote(ips[i]), "must be a valid IP address"));
      ok = false;
    } else if (i == 1 && ips[0] != "None" && IsV6Text(ips[0]) == IsV6Text(ips[1])) {
      r.Report(ips_node, path,
               Invalid(GoQuote(ips[i]), "may specify no more than one IP for each IP family"));
      ok = false;
    }
  }
  if (!ok) return;
  if (ips.empty() && ip && !ip->empty()) ips.push_back(*ip);
  if (ips.size() == 1 && ips[0] == "None") ips.clear();  // headless: no virtual address
  out->cluster_ips = std::move(ips);
}

// targetPort: an int-or-string; absent or 0 defaults to `port` (SetDefaults_Service).
void DecodeTargetPort(const YAML::Node& node, const std::string& path, FieldReader& r,
                      ServicePort* port) {
  port->target_port = port->port;
  if (IsNullish(node)) return;
  if (ClassifyScalar(node) == ScalarType::kInt) {
    std::optional<int64_t> v = r.Int(node, path);
    if (!v || *v == 0) return;
    for (const std::string& msg : IsValidPortNum(*v)) {
      r.Report(node, path, Invalid(std::to_string(*v), msg));
    }
    if (*v >= 1 && *v <= 65535) port->target_port = static_cast<uint16_t>(*v);
    return;
  }
  if (!node.IsScalar() || ClassifyScalar(node) != ScalarType::kString) {
    r.TypeError(node, path, "an integer or a string");
    return;
  }
  const std::string name = node.Scalar();
  if (name.empty()) return;
  for (const std::string& msg : IsValidPortName(name)) {
    r.Report(node, path, Invalid(GoQuote(name), msg));
  }
  port->target_port = name;
}

void DecodePorts(const YAML::Node& ports, bool headless, bool external_name, FieldReader& r,
                 Service* out) {
  if (IsNullish(ports) || ports.size() == 0) {
    if (!headless && !external_name) {
      r.Report(IsNullish(ports) ? 0 : LineOf(ports), "spec.ports", "Required value");
    }
    return;
  }
  if (!r.ExpectList(ports, "spec.ports")) return;
  const bool require_name = ports.size() > 1;
  std::set<std::string> names;
  std::set<std::pair<uint16_t, Protocol>> keys;
  size_t i = 0;
  for (const YAML::Node& node : ports) {
    const std::string path = Index("spec.ports", i++);
    if (!r.Spend()) return;
    if (IsNullish(node)) {
      r.Report(node, Child(path, "port"), Invalid("0", "must be between 1 and 65535, inclusive"));
      continue;
    }
    if (!r.ExpectMap(node, path)) continue;
    YAML::Node name, number, protocol, target;
    r.Capture(
        node, path, /*strict=*/false,
        {{"name", &name}, {"port", &number}, {"protocol", &protocol}, {"targetPort", &target}});
    ServicePort sp;
    bool ok = true;
    if (!IsNullish(name)) {
      std::optional<std::string> n = r.String(name, Child(path, "name"));
      ok = ok && n.has_value();
      sp.name = n.value_or("");
    }
    if (require_name && sp.name.empty()) {
      if (ok)
        r.Report(IsNullish(name) ? LineOf(node) : LineOf(name), Child(path, "name"),
                 "Required value");
      ok = false;
    } else if (!sp.name.empty()) {
      for (const std::string& msg : IsDns1123Label(sp.name)) {
        r.Report(name, Child(path, "name"), Invalid(GoQuote(sp.name), msg));
        ok = false;
      }
      if (!names.insert(sp.name).second) {
        r.Report(name, Child(path, "name"), "Duplicate value: " + GoQuote(sp.name));
        ok = false;
      }
    }
    int64_t value = 0;
    if (!IsNullish(number)) {
      std::optional<int64_t> v = r.Int(number, Child(path, "port"));
      ok = ok && v.has_value();
      value = v.value_or(0);
    }
    if (ok || !IsNullish(number)) {
      for (const std::string& msg : IsValidPortNum(value)) {
        r.Report(IsNullish(number) ? LineOf(node) : LineOf(number), Child(path, "port"),
                 Invalid(std::to_string(value), msg));
        ok = false;
      }
    }
    if (value >= 1 && value <= 65535) sp.port = static_cast<uint16_t>(value);
    if (!IsNullish(protocol)) {
      std::optional<std::string> p = r.String(protocol, Child(path, "protocol"));
      if (std::optional<Protocol> parsed = p ? ParseProtocol(*p) : std::nullopt) {
        sp.protocol = *parsed;
      } else {
        if (p) {
          r.Report(protocol, Child(path, "protocol"),
                   "Unsupported value: " + GoQuote(*p) +
                       ": supported values: \"SCTP\", \"TCP\", \"UDP\"");
        }
        ok = false;
      }
    }
    DecodeTargetPort(target, Child(path, "targetPort"), r, &sp);
    if (ok && !keys.emplace(sp.port, sp.protocol).second) {
      // Go renders the duplicate key with %#v; we name the port and protocol instead.
      r.Report(
          node, path,
          "Duplicate value: " + GoQuote(std::to_string(sp.port) + "/" + ProtocolName(sp.protocol)));
    }
    out->ports.push_back(std::move(sp));
  }
}

void DecodeSelector(const YAML::Node& node, FieldReader& r, Service* out) {
  if (IsNullish(node)) return;
  std::map<std::string, int> lines;
  out->selector = r.StringMap(node, "spec.selector", &lines);
  for (const auto& [key, value] : out->selector) {
    auto line = lines.find(key);
    const int at = line != lines.end() ? line->second : LineOf(node);
    for (const std::string& msg : IsQualifiedName(key)) {
      r.Report(at, "spec.selector", Invalid(GoQuote(key), msg));
    }
    for (const std::string& msg : IsValidLabelValue(value)) {
      r.Report(at, "spec.selector", Invalid(GoQuote(value), msg));
    }
  }
}

}  // namespace

void DecodeServiceSpec(const YAML::Node& spec, bool strict_ip, FieldReader& r, Service* out) {
  if (IsNullish(spec)) {
    r.Report(0, "spec.ports", "Required value");
    return;
  }
  if (!r.ExpectMap(spec, "spec")) return;
  bool external_name = false;
  YAML::Node type = Get(spec, "type");
  if (!IsNullish(type)) {
    std::optional<std::string> t = r.String(type, "spec.type");
    if (t && *t != "ClusterIP" && *t != "ExternalName" && *t != "LoadBalancer" &&
        *t != "NodePort") {
      r.Report(type, "spec.type",
               "Unsupported value: " + GoQuote(*t) +
                   ": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", "
                   "\"NodePort\"");
    }
    external_name = t && *t == "ExternalName";
  }
  YAML::Node ip = Get(spec, "clusterIP");
  const bool headless = !IsNullish(ip) && ip.IsScalar() && ip.Scalar() == "None";
  if (!external_name) DecodeClusterIps(spec, strict_ip, r, out);
  DecodePorts(Get(spec, "ports"), headless, external_name, r, out);
  DecodeSelector(Get(spec, "selector"), r, out);
}

}  // namespace picket::config
