// config/endpoint_slice.cc — see endpoint_slice.h. Field paths and messages follow
// kube-apiserver's ValidateEndpointSlice / validateEndpoints / validatePorts.
#include "config/endpoint_slice.h"

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

std::string TooMany(size_t have, size_t most) {
  return "Too many: " + std::to_string(have) + ": must have at most " + std::to_string(most) +
         " items";
}

// IsValidIPv4Address / IsValidIPv6Address; FQDN addresses are kept but never a backend.
void CheckAddress(const std::string& type, const std::string& address, bool strict_ip,
                  const YAML::Node& at, const std::string& path, FieldReader& r) {
  const bool v6 = address.find(':') != std::string::npos;
  if (type == "IPv4" && (v6 || !IpErrors(address, strict_ip).empty())) {
    r.Report(at, path, Invalid(GoQuote(address), "must be a valid IPv4 address"));
  } else if (type == "IPv6" && (!v6 || !IpErrors(address, strict_ip).empty())) {
    r.Report(at, path, Invalid(GoQuote(address), "must be a valid IPv6 address"));
  }
}

void DecodeEndpoint(const YAML::Node& node, const std::string& path, const std::string& type,
                    bool strict_ip, FieldReader& r, SliceEndpoint* out) {
  YAML::Node addresses, conditions, target_ref;
  if (!IsNullish(node) && r.ExpectMap(node, path)) {
    r.Capture(node, path, /*strict=*/false,
              {{"addresses", &addresses}, {"conditions", &conditions}, {"targetRef", &target_ref}});
  }
  const std::string apath = Child(path, "addresses");
  if (!IsNullish(addresses)) out->addresses = r.StringList(addresses, apath);
  if (out->addresses.empty()) {
    r.Report(IsNullish(addresses) ? LineOf(node) : LineOf(addresses), apath,
             "Required value: must contain at least 1 address");
  } else if (out->addresses.size() > kMaxSliceAddresses) {
    r.Report(addresses, apath, TooMany(out->addresses.size(), kMaxSliceAddresses));
  } else {
    for (size_t i = 0; i < out->addresses.size(); ++i) {
      CheckAddress(type, out->addresses[i], strict_ip, addresses, Index(apath, i), r);
    }
  }
  if (!IsNullish(conditions) && r.ExpectMap(conditions, Child(path, "conditions"))) {
    YAML::Node ready = Get(conditions, "ready");
    if (!IsNullish(ready)) {
      out->ready = r.Bool(ready, Child(path, "conditions.ready")).value_or(false);
    }
  }
  if (!IsNullish(target_ref) && r.ExpectMap(target_ref, Child(path, "targetRef"))) {
    YAML::Node kind = Get(target_ref, "kind");
    YAML::Node name = Get(target_ref, "name");
    std::string k =
        IsNullish(kind) ? "Pod" : r.String(kind, Child(path, "targetRef.kind")).value_or("");
    if (k == "Pod" && !IsNullish(name)) {
      out->target_pod = r.String(name, Child(path, "targetRef.name")).value_or("");
    }
  }
}

void DecodePorts(const YAML::Node& ports, FieldReader& r, EndpointSlice* out) {
  if (IsNullish(ports) || !r.ExpectList(ports, "ports")) return;
  if (ports.size() > kMaxSlicePorts) {
    r.Report(ports, "ports", TooMany(ports.size(), kMaxSlicePorts));
    return;
  }
  std::set<std::string> names;
  size_t i = 0;
  for (const YAML::Node& node : ports) {
    const std::string path = Index("ports", i++);
    if (!r.Spend()) return;
    EndpointSlicePort port;
    YAML::Node name, number, protocol;
    if (!IsNullish(node) && r.ExpectMap(node, path)) {
      r.Capture(node, path, /*strict=*/false,
                {{"name", &name}, {"port", &number}, {"protocol", &protocol}});
    }
    if (!IsNullish(name)) port.name = r.String(name, Child(path, "name")).value_or("");
    if (!port.name.empty()) {
      for (const std::string& msg : IsDns1123Label(port.name)) {
        r.Report(name, Child(path, "name"), Invalid(GoQuote(port.name), msg));
      }
    }
    if (!names.insert(port.name).second) {
      r.Report(IsNullish(name) ? LineOf(node) : LineOf(name), Child(path, "name"),
               "Duplicate value: " + GoQuote(port.name));
    }
    if (!IsNullish(number)) {
      std::optional<int64_t> v = r.Int(number, Child(path, "port"));
      if (v) {
        for (const std::string& msg : IsValidPortNum(*v)) {
          r.Report(number, Child(path, "port"), Invalid(std::to_string(*v), msg));
        }
        if (*v >= 1 && *v <= 65535) port.port = static_cast<uint16_t>(*v);
      }
    }
    if (!IsNullish(protocol)) {
      std::optional<std::string> p = r.String(protocol, Child(path, "protocol"));
      if (std::optional<Protocol> parsed = p ? ParseProtocol(*p) : std::nullopt) {
        port.protocol = *parsed;
      } else if (p) {
        r.Report(
            protocol, Child(path, "protocol"),
            "Unsupported value: " + GoQuote(*p) + ": supported values: \"SCTP\", \"TCP\", \"UDP\"");
      }
    }
    out->ports.push_back(std::move(port));
  }
}

}  // namespace

void DecodeEndpointSliceBody(const YAML::Node& root, bool strict_ip, FieldReader& r,
                             EndpointSlice* out) {
  YAML::Node type = Get(root, "addressType");
  if (IsNullish(type)) {
    r.Report(root, "addressType", "Required value");
  } else if (std::optional<std::string> t = r.String(type, "addressType")) {
    if (*t != "IPv4" && *t != "IPv6" && *t != "FQDN") {
      r.Report(
          type, "addressType",
          "Unsupported value: " + GoQuote(*t) + ": supported values: \"FQDN\", \"IPv4\", \"IPv6\"");
    } else {
      out->address_type = *t;
    }
  }
  YAML::Node endpoints = Get(root, "endpoints");
  if (!IsNullish(endpoints) && r.ExpectList(endpoints, "endpoints")) {
    if (endpoints.size() > kMaxSliceEndpoints) {
      r.Report(endpoints, "endpoints", TooMany(endpoints.size(), kMaxSliceEndpoints));
    } else {
      size_t i = 0;
      for (const YAML::Node& node : endpoints) {
        if (!r.Spend()) return;
        SliceEndpoint endpoint;
        DecodeEndpoint(node, Index("endpoints", i++), out->address_type, strict_ip, r, &endpoint);
        out->endpoints.push_back(std::move(endpoint));
      }
    }
  }
  DecodePorts(Get(root, "ports"), r, out);
}

}  // namespace picket::config
