// proxy/xds/service_map.cc — see service_map.h. The payload comes from the network: every field
// is type-checked, unknown fields are errors, and nothing is trusted to be consistent.
#include "proxy/xds/service_map.h"

#include <set>
#include <utility>

#include "base/json_fields.h"

namespace picket::proxy::xds {
namespace {

using base::JsonFields;
using base::JsonValue;
using base::Need;

// A list of 1..max IP addresses at `key`.
std::vector<policy::IpAddress> DecodeIps(JsonFields& r, std::string_view key, size_t max) {
  std::vector<policy::IpAddress> out;
  const size_t errors = r.errors()->size();
  const bool present = r.Array(key, Need::kRequired, [&](JsonValue v, const std::string& path) {
    std::optional<std::string_view> s = base::JsonString(v, path, r.errors());
    if (!s) return;
    std::optional<policy::IpAddress> ip = policy::IpAddress::Parse(*s);
    if (!ip) {
      r.errors()->push_back(
          base::Error::At(path, base::InvalidValue(base::ShowJson(v), "not an IP address")));
      return;
    }
    out.push_back(*ip);
  });
  if (!present || r.errors()->size() != errors) return out;
  if (out.empty()) r.Report(key, "Required value: at least one address");
  if (out.size() > max) {
    r.Report(key, "Too many: " + std::to_string(out.size()) + ": must have at most " +
                      std::to_string(max) + " addresses");
  }
  return out;
}

std::optional<uint16_t> DecodePortNumber(JsonFields& r) {
  return r.Int<uint16_t>("port", Need::kRequired, 1, 65535);
}

ServiceEntry::BackendPod DecodeBackend(JsonValue v, const std::string& path, base::Errors* errors) {
  JsonFields r(v, path, errors);
  ServiceEntry::BackendPod backend;
  if (auto pod = r.String("pod", Need::kRequired)) {
    if (pod->empty()) r.Report("pod", "Required value: must not be empty");
    backend.pod = *pod;
  }
  // A pod has at most one address per family; a few spare slots cost nothing.
  backend.ips = DecodeIps(r, "ips", 8);
  backend.port = DecodePortNumber(r).value_or(0);
  r.Finish();
  return backend;
}

ServiceEntry::Port DecodePort(JsonValue v, const std::string& path, base::Errors* errors) {
  JsonFields r(v, path, errors);
  ServiceEntry::Port port;
  port.name = r.String("name", Need::kRequired).value_or("");
  port.port = DecodePortNumber(r).value_or(0);
  if (auto protocol = r.String("protocol", Need::kRequired)) {
    if (*protocol == "TCP") {
      port.protocol = config::Protocol::kTCP;
    } else if (*protocol == "UDP") {
      port.protocol = config::Protocol::kUDP;
    } else if (*protocol == "SCTP") {
      port.protocol = config::Protocol::kSCTP;
    } else {
      r.Report("protocol", "Unsupported value: " + base::ShowJson(*r.Value("protocol")) +
                               ": supported values: \"SCTP\", \"TCP\", \"UDP\"");
    }
  }
  r.Array("backends", Need::kRequired, [&](JsonValue b, const std::string& b_path) {
    port.backends.push_back(DecodeBackend(b, b_path, errors));
  });
  r.Finish();
  return port;
}

}  // namespace

base::Result<ServiceEntry> DecodeServiceEntry(const base::JsonValue& payload,
                                              std::string_view resource_name) {
  base::Errors errors;
  JsonFields r(payload, "", &errors);
  ServiceEntry entry;
  entry.ns = r.String("namespace", Need::kRequired).value_or("");
  entry.name = r.String("name", Need::kRequired).value_or("");
  if (errors.empty() &&
      (entry.ns.empty() || entry.name.empty() || entry.ns + "/" + entry.name != resource_name)) {
    r.Report("name",
             "Invalid value: the entry names Service \"" + entry.ns + "/" + entry.name + "\"");
  }
  const size_t before_ips = errors.size();
  entry.cluster_ips = DecodeIps(r, "cluster_ips", 2);
  if (errors.size() == before_ips && entry.cluster_ips.size() == 2 &&
      entry.cluster_ips[0].v6 == entry.cluster_ips[1].v6) {
    r.Report("cluster_ips", "Invalid value: holds two addresses of one family");
  }
  std::set<std::pair<uint16_t, config::Protocol>> seen;
  std::set<std::string> names;
  r.Array("ports", Need::kRequired, [&](JsonValue v, const std::string& path) {
    const size_t before = errors.size();
    ServiceEntry::Port port = DecodePort(v, path, &errors);
    if (errors.size() != before) return;
    if (!seen.emplace(port.port, port.protocol).second) {
      errors.push_back(base::Error::At(path, "Duplicate value: " + std::to_string(port.port) + "/" +
                                                 config::ProtocolName(port.protocol)));
    } else if (!port.name.empty() && !names.insert(port.name).second) {
      errors.push_back(
          base::Error::At(base::Child(path, "name"), "Duplicate value: \"" + port.name + "\""));
    }
    entry.ports.push_back(std::move(port));
  });
  r.Finish();
  if (!errors.empty()) {
    base::Error first = std::move(errors.front());
    first.object = std::string(resource_name);
    return std::unexpected(std::move(first));
  }
  return entry;
}

base::Result<std::shared_ptr<const ServiceMap>> ServiceMap::Build(
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
          base::Error e =
              base::Error::Of(vip.ToString() + ":" + std::to_string(port.port) + "/" +
                              config::ProtocolName(port.protocol) +
                              " is already the address of Service " + it->second.service);
          e.object = key;
          return std::unexpected(std::move(e));
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

}  // namespace picket::proxy::xds
