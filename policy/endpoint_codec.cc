// policy/endpoint_codec.cc — text form of the snapshot resources (policy/endpoint_policy.h).
//
// Encoding is hand-written deterministic JSON; decoding goes text → config/endpoint_resource
// (shape and scalars) → here (addresses, prefixes, indexes) so that local files and pushed
// resources take one path.
#include "policy/endpoint_codec.h"

#include <algorithm>
#include <string>
#include <utility>

#include "config/endpoint_resource.h"
#include "policy/endpoint_policy.h"
#include "policy/json_writer.h"

namespace picket::policy {
namespace {

void AppendStringList(std::string& out, const std::vector<std::string>& list) {
  out += '[';
  for (size_t i = 0; i < list.size(); ++i) {
    if (i) out += ',';
    AppendJsonString(out, list[i]);
  }
  out += ']';
}

void AppendDirection(std::string& out, const DirectionRules& rules) {
  out += "{\"isolated\":";
  out += rules.isolated ? "true" : "false";
  out += ",\"policies\":";
  AppendStringList(out, rules.policies);
  out += ",\"rules\":[";
  for (size_t i = 0; i < rules.entries.size(); ++i) {
    const RuleEntry& e = rules.entries[i];
    if (i) out += ',';
    out += "{\"policy\":" + std::to_string(e.policy) + ",\"rule\":" + std::to_string(e.rule);
    switch (e.peer.kind) {
      case PeerMatch::Kind::kAny:
        break;
      case PeerMatch::Kind::kIdentities:
        out += ",\"peer\":{\"identity_set\":" + std::to_string(e.peer.identity_set);
        if (!e.peer.description.empty()) {
          out += ",\"description\":";
          AppendJsonString(out, e.peer.description);
        }
        out += '}';
        break;
      case PeerMatch::Kind::kCidr: {
        out += ",\"peer\":{\"cidr\":";
        AppendJsonString(out, e.peer.cidr.ToString());
        if (!e.peer.except.empty()) {
          std::vector<std::string> except;
          for (const IpPrefix& p : e.peer.except) except.push_back(p.ToString());
          out += ",\"except\":";
          AppendStringList(out, except);
        }
        out += '}';
        break;
      }
    }
    if (e.port.kind != PortMatch::Kind::kAll) {
      out += ",\"port\":{\"protocol\":";
      AppendJsonString(out, config::ProtocolName(e.port.protocol));
      if (e.port.kind == PortMatch::Kind::kNamed) {
        out += ",\"name\":";
        AppendJsonString(out, e.port.name);
      } else if (!(e.port.first == 0 && e.port.last == 65535)) {
        out += ",\"port\":" + std::to_string(e.port.first);
        if (e.port.last != e.port.first) out += ",\"end_port\":" + std::to_string(e.port.last);
      }
      out += '}';
    }
    out += '}';
  }
  out += "]}";
}

config::Error FieldError(std::string_view file, const std::string& field, std::string reason) {
  return config::Error{std::string(file), 0, "", field, std::move(reason)};
}

std::string Join(const std::string& prefix, const std::string& field) {
  return prefix.empty() ? field : prefix + "." + field;
}

DirectionRules ConvertDirection(const config::DirectionResource& in, size_t identity_sets,
                                std::string_view file, const std::string& field,
                                config::Errors& errors) {
  DirectionRules out;
  out.isolated = in.isolated;
  out.policies = in.policies;
  for (size_t i = 0; i < in.rules.size(); ++i) {
    const config::RuleEntryResource& r = in.rules[i];
    const std::string f = field + ".rules[" + std::to_string(i) + "]";
    RuleEntry e;
    e.policy = r.policy;
    e.rule = r.rule;
    if (r.policy >= in.policies.size()) {
      errors.push_back(FieldError(file, f + ".policy",
                                  "Invalid value: " + std::to_string(r.policy) +
                                      ": must index `policies` (size " +
                                      std::to_string(in.policies.size()) + ")"));
    }
    if (r.peer) {
      e.peer.description = r.peer->description;
      if (r.peer->identity_set) {
        e.peer.kind = PeerMatch::Kind::kIdentities;
        e.peer.identity_set = *r.peer->identity_set;
        if (*r.peer->identity_set >= identity_sets) {
          errors.push_back(FieldError(file, f + ".peer.identity_set",
                                      "Invalid value: " + std::to_string(e.peer.identity_set) +
                                          ": must index `identity_sets` (size " +
                                          std::to_string(identity_sets) + ")"));
        }
      } else if (r.peer->cidr) {
        e.peer.kind = PeerMatch::Kind::kCidr;
        if (auto p = IpPrefix::Parse(*r.peer->cidr)) {
          e.peer.cidr = *p;
        } else {
          errors.push_back(
              FieldError(file, f + ".peer.cidr",
                         "Invalid value: \"" + *r.peer->cidr + "\": must be a valid CIDR value"));
        }
        for (size_t k = 0; k < r.peer->except.size(); ++k) {
          if (auto p = IpPrefix::Parse(r.peer->except[k])) {
            e.peer.except.push_back(*p);
          } else {
            errors.push_back(FieldError(
                file, f + ".peer.except[" + std::to_string(k) + "]",
                "Invalid value: \"" + r.peer->except[k] + "\": must be a valid CIDR value"));
          }
        }
      }
    }
    if (r.port) {
      e.port.protocol = r.port->protocol;
      if (r.port->name) {
        e.port.kind = PortMatch::Kind::kNamed;
        e.port.name = *r.port->name;
      } else {
        e.port.kind = PortMatch::Kind::kRange;
        e.port.first = r.port->port.value_or(0);
        e.port.last = r.port->port ? r.port->end_port.value_or(*r.port->port) : 65535;
      }
    }
    out.entries.push_back(std::move(e));
  }
  return out;
}

}  // namespace

std::string EncodeAddressEntry(const AddressEntry& entry) {
  std::string out = "{\"identity\":" + std::to_string(entry.identity) + ",\"namespace\":";
  AppendJsonString(out, entry.ns);
  out += ",\"pod\":";
  AppendJsonString(out, entry.pod);
  std::vector<std::string> ips;
  for (const IpAddress& ip : entry.ips) ips.push_back(ip.ToString());
  out += ",\"ips\":";
  AppendStringList(out, ips);
  out += ",\"labels\":{";
  bool first = true;
  for (const auto& [k, v] : entry.labels) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(out, k);
    out += ':';
    AppendJsonString(out, v);
  }
  out += "},\"named_ports\":[";
  for (size_t i = 0; i < entry.named_ports.size(); ++i) {
    const NamedPort& p = entry.named_ports[i];
    if (i) out += ',';
    out += "{\"name\":";
    AppendJsonString(out, p.name);
    out += ",\"port\":" + std::to_string(p.port) + ",\"protocol\":";
    AppendJsonString(out, config::ProtocolName(p.protocol));
    out += '}';
  }
  out += "]}";
  return out;
}

std::string EncodePodPolicy(const PodPolicy& policy) {
  std::string out = "{\"namespace\":";
  AppendJsonString(out, policy.ns);
  out += ",\"pod\":";
  AppendJsonString(out, policy.pod);
  if (!policy.host_ips.empty()) {
    // Only when known, so resources of pods without them keep their old bytes (and versions).
    std::vector<std::string> host_ips;
    for (const IpAddress& ip : policy.host_ips) host_ips.push_back(ip.ToString());
    out += ",\"host_ips\":";
    AppendStringList(out, host_ips);
  }
  out += ",\"identity_sets\":[";
  for (size_t i = 0; i < policy.identity_sets.size(); ++i) {
    if (i) out += ',';
    out += '[';
    for (size_t j = 0; j < policy.identity_sets[i].size(); ++j) {
      if (j) out += ',';
      out += std::to_string(policy.identity_sets[i][j]);
    }
    out += ']';
  }
  out += "],\"ingress\":";
  AppendDirection(out, policy.ingress);
  out += ",\"egress\":";
  AppendDirection(out, policy.egress);
  out += '}';
  return out;
}

std::expected<AddressEntry, config::Errors> ConvertAddressEntry(
    const config::AddressEntryResource& in, std::string_view file, const std::string& field) {
  config::Errors errors;
  AddressEntry out;
  out.identity = in.identity;
  out.ns = in.ns;
  out.pod = in.pod;
  out.labels = in.labels;
  for (size_t i = 0; i < in.ips.size(); ++i) {
    if (auto ip = IpAddress::Parse(in.ips[i])) {
      out.ips.push_back(*ip);
    } else {
      errors.push_back(FieldError(file, Join(field, "ips[" + std::to_string(i) + "]"),
                                  "Invalid value: \"" + in.ips[i] + "\": must be an IP address"));
    }
  }
  for (const config::NamedPortResource& p : in.named_ports) {
    out.named_ports.push_back(NamedPort{p.name, p.port, p.protocol});
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return out;
}

std::expected<PodPolicy, config::Errors> ConvertPodPolicy(const config::PodPolicyResource& in,
                                                          std::string_view file,
                                                          const std::string& field) {
  config::Errors errors;
  PodPolicy out;
  out.ns = in.ns;
  out.pod = in.pod;
  for (size_t i = 0; i < in.host_ips.size(); ++i) {
    const std::string f = Join(field, "host_ips[" + std::to_string(i) + "]");
    auto ip = IpAddress::Parse(in.host_ips[i]);
    if (!ip) {
      errors.push_back(
          FieldError(file, f, "Invalid value: \"" + in.host_ips[i] + "\": must be an IP address"));
    } else if (std::find(out.host_ips.begin(), out.host_ips.end(), *ip) != out.host_ips.end()) {
      errors.push_back(FieldError(file, f, "Duplicate value: \"" + in.host_ips[i] + "\""));
    } else {
      out.host_ips.push_back(*ip);
    }
  }
  out.identity_sets = in.identity_sets;
  for (auto& set : out.identity_sets) std::sort(set.begin(), set.end());
  out.ingress =
      ConvertDirection(in.ingress, in.identity_sets.size(), file, Join(field, "ingress"), errors);
  out.egress =
      ConvertDirection(in.egress, in.identity_sets.size(), file, Join(field, "egress"), errors);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return out;
}

std::expected<AddressEntry, config::Errors> DecodeAddressEntry(std::string_view text,
                                                               std::string_view file_name) {
  auto resource = config::DecodeAddressEntryResource(text, file_name);
  if (!resource) return std::unexpected(std::move(resource.error()));
  return ConvertAddressEntry(*resource, file_name, "");
}

std::expected<PodPolicy, config::Errors> DecodePodPolicy(std::string_view text,
                                                         std::string_view file_name) {
  auto resource = config::DecodePodPolicyResource(text, file_name);
  if (!resource) return std::unexpected(std::move(resource.error()));
  return ConvertPodPolicy(*resource, file_name, "");
}

std::expected<EndpointPolicyPtr, config::Errors> DecodeEndpointPolicy(std::string_view text,
                                                                      std::string_view file_name) {
  auto resource = config::DecodeEndpointPolicyResource(text, file_name);
  if (!resource) return std::unexpected(std::move(resource.error()));
  config::Errors errors;
  std::vector<AddressEntry> entries;
  for (size_t i = 0; i < resource->address_map.size(); ++i) {
    auto e = ConvertAddressEntry(resource->address_map[i], file_name,
                                 "address_map[" + std::to_string(i) + "]");
    if (e) {
      entries.push_back(std::move(*e));
    } else {
      errors.insert(errors.end(), e.error().begin(), e.error().end());
    }
  }
  auto policy = ConvertPodPolicy(resource->pod_policy, file_name, "pod_policy");
  if (!policy) errors.insert(errors.end(), policy.error().begin(), policy.error().end());
  if (policy && (policy->ns != resource->ns || policy->pod != resource->pod)) {
    errors.push_back(FieldError(file_name, "pod_policy",
                                "Invalid value: policy of " + policy->ns + "/" + policy->pod +
                                    " in the snapshot of " + resource->ns + "/" + resource->pod));
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  auto built = BuildEndpointPolicy(std::move(entries), std::move(*policy), resource->version);
  if (!built) {
    for (config::Error& e : built.error()) {
      if (e.file.empty()) e.file = std::string(file_name);
    }
  }
  return built;
}

}  // namespace picket::policy
