// policy/endpoint_codec.cc — THE codec of the per-pod resources (policy/endpoint_policy.h).
//
// Encoding writes straight from the policy values with base::JsonWriter (members in a fixed
// order, so equal values give equal bytes and equal versions). Decoding is one pass over a
// parsed base::JsonValue: config/endpoint_resource (shape and scalars) → here (addresses,
// prefixes, indexes), so local files and pushed resources take one path.
#include "policy/endpoint_codec.h"

#include <algorithm>
#include <string>
#include <utility>

#include "base/json.h"
#include "config/endpoint_resource.h"
#include "policy/endpoint_policy.h"

namespace picket::policy {
namespace {

void WriteDirection(base::JsonWriter& w, const DirectionRules& rules) {
  w.BeginObject().Member("isolated", rules.isolated).Key("policies").BeginArray();
  for (const std::string& p : rules.policies) w.String(p);
  w.EndArray().Key("rules").BeginArray();
  for (const RuleEntry& e : rules.entries) {
    w.BeginObject().Member("policy", e.policy).Member("rule", e.rule);
    switch (e.peer.kind) {
      case PeerMatch::Kind::kAny:
        break;
      case PeerMatch::Kind::kIdentities:
        w.Key("peer").BeginObject().Member("identity_set", e.peer.identity_set);
        if (!e.peer.description.empty()) w.Member("description", e.peer.description);
        w.EndObject();
        break;
      case PeerMatch::Kind::kCidr:
        w.Key("peer").BeginObject().Member("cidr", e.peer.cidr.ToString());
        if (!e.peer.except.empty()) {
          w.Key("except").BeginArray();
          for (const IpPrefix& p : e.peer.except) w.String(p.ToString());
          w.EndArray();
        }
        w.EndObject();
        break;
    }
    if (e.port.kind != PortMatch::Kind::kAll) {
      w.Key("port").BeginObject().Member("protocol", config::ProtocolName(e.port.protocol));
      if (e.port.kind == PortMatch::Kind::kNamed) {
        w.Member("name", e.port.name);
      } else if (!(e.port.first == 0 && e.port.last == 65535)) {
        w.Member("port", e.port.first);
        if (e.port.last != e.port.first) w.Member("end_port", e.port.last);
      }
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray().EndObject();
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

void EncodeAddressEntry(const AddressEntry& entry, base::JsonWriter& w) {
  w.BeginObject()
      .Member("identity", entry.identity)
      .Member("namespace", entry.ns)
      .Member("pod", entry.pod)
      .Key("ips")
      .BeginArray();
  for (const IpAddress& ip : entry.ips) w.String(ip.ToString());
  w.EndArray().Key("labels").BeginObject();
  for (const auto& [k, v] : entry.labels) w.Member(k, v);
  // Named ports in their compact form, "name:port" for TCP and "name:port/PROTOCOL" otherwise
  // (a third of an entry's bytes as objects; the reader takes both forms).
  w.EndObject().Key("named_ports").BeginArray();
  for (const NamedPort& p : entry.named_ports) {
    if (p.name.find_first_of(":/") != std::string::npos) {  // not a Kubernetes port name
      w.BeginObject()
          .Member("name", p.name)
          .Member("port", p.port)
          .Member("protocol", config::ProtocolName(p.protocol))
          .EndObject();
      continue;
    }
    std::string text = p.name + ":" + std::to_string(p.port);
    if (p.protocol != config::Protocol::kTCP) {
      text.append("/").append(config::ProtocolName(p.protocol));
    }
    w.String(text);
  }
  w.EndArray().EndObject();
}

void EncodePodPolicy(const PodPolicy& policy, base::JsonWriter& w) {
  w.BeginObject().Member("namespace", policy.ns).Member("pod", policy.pod);
  if (!policy.host_ips.empty()) {
    // Only when known, so resources of pods without them keep their old bytes (and versions).
    w.Key("host_ips").BeginArray();
    for (const IpAddress& ip : policy.host_ips) w.String(ip.ToString());
    w.EndArray();
  }
  // Each set ascending; a run of three or more consecutive ids is written [first, last]
  // (identity ids are handed out in pod order, so a namespace's identities are mostly one run).
  w.Key("identity_sets").BeginArray();
  for (const std::vector<IdentityId>& set : policy.identity_sets) {
    w.BeginArray();
    for (size_t i = 0; i < set.size();) {
      size_t j = i;
      while (j + 1 < set.size() && set[j + 1] == set[j] + 1) ++j;
      if (j - i >= 2) {
        w.BeginArray().Uint(set[i]).Uint(set[j]).EndArray();
      } else {
        for (size_t k = i; k <= j; ++k) w.Uint(set[k]);
      }
      i = j + 1;
    }
    w.EndArray();
  }
  w.EndArray().Key("ingress");
  WriteDirection(w, policy.ingress);
  w.Key("egress");
  WriteDirection(w, policy.egress);
  w.EndObject();
}

std::string EncodeAddressEntry(const AddressEntry& entry) {
  base::JsonWriter w;
  EncodeAddressEntry(entry, w);
  return w.Take();
}

std::string EncodePodPolicy(const PodPolicy& policy) {
  base::JsonWriter w;
  EncodePodPolicy(policy, w);
  return w.Take();
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

std::expected<AddressEntry, config::Errors> DecodeAddressEntry(const base::JsonValue& value,
                                                               std::string_view file_name) {
  auto resource = config::DecodeAddressEntryResource(value, file_name);
  if (!resource) return std::unexpected(std::move(resource.error()));
  return ConvertAddressEntry(*resource, file_name, "");
}

std::expected<PodPolicy, config::Errors> DecodePodPolicy(const base::JsonValue& value,
                                                         std::string_view file_name) {
  auto resource = config::DecodePodPolicyResource(value, file_name);
  if (!resource) return std::unexpected(std::move(resource.error()));
  return ConvertPodPolicy(*resource, file_name, "");
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
