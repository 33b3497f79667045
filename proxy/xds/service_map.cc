// proxy/xds/service_map.cc — see service_map.h. The payload comes from the network: every field
// is type-checked, unknown fields are errors, and nothing is trusted to be consistent.
#include "proxy/xds/service_map.h"

#include <initializer_list>
#include <set>
#include <utility>

namespace picket::proxy::xds {
namespace {

// Errors carry the path of the offending field inside the resource.
class Decoder {
 public:
  explicit Decoder(std::string_view resource) : resource_(resource) {}

  std::unexpected<std::string> Fail(const std::string& path, const std::string& reason) const {
    return std::unexpected(resource_ + ": " + path + ": " + reason);
  }

  // The object at `path`, with exactly the members `keys`.
  std::expected<const net::Json::Object*, std::string> Object(
      const net::Json& json, const std::string& path,
      std::initializer_list<std::string_view> keys) const {
    if (!json.is_object()) return Fail(path, "must be an object");
    for (const auto& [key, value] : json.as_object()) {
      bool known = false;
      for (std::string_view k : keys) known = known || k == key;
      if (!known) return Fail(Join(path, key), "unknown field");
    }
    for (std::string_view k : keys) {
      if (!json.as_object().contains(k)) return Fail(Join(path, k), "required");
    }
    return &json.as_object();
  }

  std::expected<std::string, std::string> String(const net::Json& json,
                                                 const std::string& path) const {
    if (!json.is_string()) return Fail(path, "must be a string");
    return json.as_string();
  }

  std::expected<uint16_t, std::string> Port(const net::Json& json, const std::string& path) const {
    std::optional<int64_t> v = json.is_number() ? json.as_int(1, 65535) : std::nullopt;
    if (!v) return Fail(path, "must be an integer in 1..65535");
    return static_cast<uint16_t>(*v);
  }

  std::expected<policy::IpAddress, std::string> Ip(const net::Json& json,
                                                   const std::string& path) const {
    if (!json.is_string()) return Fail(path, "must be a string");
    std::optional<policy::IpAddress> ip = policy::IpAddress::Parse(json.as_string());
    if (!ip) return Fail(path, "not an IP address: \"" + json.as_string() + "\"");
    return *ip;
  }

  std::expected<const net::Json::Array*, std::string> Array(const net::Json& json,
                                                            const std::string& path) const {
    if (!json.is_array()) return Fail(path, "must be an array");
    return &json.as_array();
  }

  static std::string Join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  static std::string Index(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

 private:
  std::string resource_;
};

// Unwraps an expected into `var` or returns its error from the enclosing function.
#define PICKET_ASSIGN_OR_RETURN(var, expr)                         \
  auto var##_result = (expr);                                      \
  if (!var##_result) return std::unexpected(var##_result.error()); \
  auto var = std::move(*var##_result)

std::expected<std::vector<policy::IpAddress>, std::string> DecodeIps(const Decoder& d,
                                                                     const net::Json& json,
                                                                     const std::string& path,
                                                                     size_t max) {
  PICKET_ASSIGN_OR_RETURN(array, d.Array(json, path));
  if (array->empty()) return d.Fail(path, "must hold at least one address");
  if (array->size() > max) {
    return d.Fail(path, "may hold at most " + std::to_string(max) + " addresses");
  }
  std::vector<policy::IpAddress> out;
  for (size_t i = 0; i < array->size(); ++i) {
    PICKET_ASSIGN_OR_RETURN(ip, d.Ip((*array)[i], Decoder::Index(path, i)));
    out.push_back(ip);
  }
  return out;
}

std::expected<ServiceEntry::BackendPod, std::string> DecodeBackend(const Decoder& d,
                                                                   const net::Json& json,
                                                                   const std::string& path) {
  PICKET_ASSIGN_OR_RETURN(obj, d.Object(json, path, {"pod", "ips", "port"}));
  ServiceEntry::BackendPod backend;
  PICKET_ASSIGN_OR_RETURN(pod, d.String(obj->find("pod")->second, Decoder::Join(path, "pod")));
  if (pod.empty()) return d.Fail(Decoder::Join(path, "pod"), "must not be empty");
  backend.pod = std::move(pod);
  // A pod has at most one address per family; a few spare slots cost nothing.
  PICKET_ASSIGN_OR_RETURN(ips,
                          DecodeIps(d, obj->find("ips")->second, Decoder::Join(path, "ips"), 8));
  backend.ips = std::move(ips);
  PICKET_ASSIGN_OR_RETURN(port, d.Port(obj->find("port")->second, Decoder::Join(path, "port")));
  backend.port = port;
  return backend;
}

std::expected<ServiceEntry::Port, std::string> DecodePort(const Decoder& d, const net::Json& json,
                                                          const std::string& path) {
  PICKET_ASSIGN_OR_RETURN(obj, d.Object(json, path, {"name", "port", "protocol", "backends"}));
  ServiceEntry::Port port;
  PICKET_ASSIGN_OR_RETURN(name, d.String(obj->find("name")->second, Decoder::Join(path, "name")));
  port.name = std::move(name);
  PICKET_ASSIGN_OR_RETURN(number, d.Port(obj->find("port")->second, Decoder::Join(path, "port")));
  port.port = number;
  const std::string protocol_path = Decoder::Join(path, "protocol");
  PICKET_ASSIGN_OR_RETURN(protocol, d.String(obj->find("protocol")->second, protocol_path));
  if (protocol == "TCP") {
    port.protocol = config::Protocol::kTCP;
  } else if (protocol == "UDP") {
    port.protocol = config::Protocol::kUDP;
  } else if (protocol == "SCTP") {
    port.protocol = config::Protocol::kSCTP;
  } else {
    return d.Fail(protocol_path, "must be TCP, UDP or SCTP, not \"" + protocol + "\"");
  }
  const std::string backends_path = Decoder::Join(path, "backends");
  PICKET_ASSIGN_OR_RETURN(backends, d.Array(obj->find("backends")->second, backends_path));
  port.backends.reserve(backends->size());
  for (size_t i = 0; i < backends->size(); ++i) {
    PICKET_ASSIGN_OR_RETURN(backend,
                            DecodeBackend(d, (*backends)[i], Decoder::Index(backends_path, i)));
    port.backends.push_back(std::move(backend));
  }
  return port;
}

}  // namespace

std::expected<ServiceEntry, std::string> DecodeServiceEntry(const net::Json& payload,
                                                            std::string_view resource_name) {
  Decoder d(resource_name);
  PICKET_ASSIGN_OR_RETURN(obj,
                          d.Object(payload, "", {"namespace", "name", "cluster_ips", "ports"}));
  ServiceEntry entry;
  PICKET_ASSIGN_OR_RETURN(ns, d.String(obj->find("namespace")->second, "namespace"));
  PICKET_ASSIGN_OR_RETURN(name, d.String(obj->find("name")->second, "name"));
  if (ns.empty() || name.empty() || ns + "/" + name != resource_name) {
    return d.Fail("name", "the entry names Service \"" + ns + "/" + name + "\"");
  }
  entry.ns = std::move(ns);
  entry.name = std::move(name);
  PICKET_ASSIGN_OR_RETURN(ips, DecodeIps(d, obj->find("cluster_ips")->second, "cluster_ips", 2));
  if (ips.size() == 2 && ips[0].v6 == ips[1].v6) {
    return d.Fail("cluster_ips", "holds two addresses of one family");
  }
  entry.cluster_ips = std::move(ips);
  PICKET_ASSIGN_OR_RETURN(ports, d.Array(obj->find("ports")->second, "ports"));
  std::set<std::pair<uint16_t, config::Protocol>> seen;
  std::set<std::string> names;
  for (size_t i = 0; i < ports->size(); ++i) {
    const std::string path = Decoder::Index("ports", i);
    PICKET_ASSIGN_OR_RETURN(port, DecodePort(d, (*ports)[i], path));
    if (!seen.emplace(port.port, port.protocol).second) {
      return d.Fail(path, "duplicate port " + std::to_string(port.port) + "/" +
                              config::ProtocolName(port.protocol));
    }
    if (!port.name.empty() && !names.insert(port.name).second) {
      return d.Fail(Decoder::Join(path, "name"), "duplicate name \"" + port.name + "\"");
    }
    entry.ports.push_back(std::move(port));
  }
  return entry;
}

std::expected<std::shared_ptr<const ServiceMap>, std::string> ServiceMap::Build(
    const std::map<std::string, ServiceEntry>& entries) {
  auto map = std::make_shared<ServiceMap>();
  for (const auto& [key, entry] : entries) {
    for (const policy::IpAddress& vip : entry.cluster_ips) {
      for (const ServiceEntry::Port& port : entry.ports) {
        Target target{key, {}};
        for (const ServiceEntry::BackendPod& pod : port.backends) {
          for (const policy::IpAddress& ip : pod.ips) {
            // Connections keep their family: a v4 ClusterIP is served by v4 pod addresses.
            if (ip.v6 == vip.v6)
              target.backends.push_back({ip, pod.port, entry.ns + "/" + pod.pod});
          }
        }
        auto [it, inserted] =
            map->by_address_.emplace(Key{vip, port.port, port.protocol}, std::move(target));
        if (!inserted) {
          return std::unexpected(key + ": " + vip.ToString() + ":" + std::to_string(port.port) +
                                 "/" + config::ProtocolName(port.protocol) +
                                 " is already the address of Service " + it->second.service);
        }
      }
    }
  }
  map->services_ = entries.size();
  map->entries_ = entries;
  return map;
}

const std::vector<ServiceMap::Backend>* ServiceMap::Find(const policy::IpAddress& vip,
                                                         uint16_t port,
                                                         config::Protocol protocol) const {
  auto it = by_address_.find(Key{vip, port, protocol});
  return it == by_address_.end() ? nullptr : &it->second.backends;
}

const std::string* ServiceMap::ServiceName(const policy::IpAddress& vip, uint16_t port,
                                           config::Protocol protocol) const {
  auto it = by_address_.find(Key{vip, port, protocol});
  return it == by_address_.end() ? nullptr : &it->second.service;
}

#undef PICKET_ASSIGN_OR_RETURN

}  // namespace picket::proxy::xds
