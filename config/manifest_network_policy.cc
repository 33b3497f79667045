// config/manifest_network_policy.cc — see manifest_network_policy.h.
//
// Each function first collects the nodes of the fields it knows (reporting unknown ones), then
// decodes and validates them in the order kube-apiserver's validation.go does, so a run lists
// errors in the API server's order.
#include "config/manifest_network_policy.h"

#include <optional>
#include <vector>

#include "config/label_validation.h"
#include "config/manifest_cidr.h"
#include "config/manifest_defaults.h"

namespace picket::config {
namespace {

std::string Invalid(const std::string& quoted_or_number, const std::string& detail) {
  return "Invalid value: " + quoted_or_number + ": " + detail;
}

// Iterates a list node (null is empty), calling fn(item, index).
template <typename Fn>
void ForEachItem(const YAML::Node& list, const std::string& path, FieldReader& r, Fn&& fn) {
  if (IsNullish(list) || !r.ExpectList(list, path)) return;
  size_t i = 0;
  for (const YAML::Node& item : list) {
    if (!r.Spend()) return;
    fn(item, i++);
  }
}

void DecodeRequirement(const YAML::Node& node, const std::string& path, FieldReader& r,
                       LabelSelector* out) {
  // A null list item decodes to the zero requirement (key "", operator ""), as in Go.
  if (!IsNullish(node) && !r.ExpectMap(node, path)) return;
  YAML::Node key_node, op_node, values_node;
  if (!IsNullish(node)) {
    r.Capture(node, path, /*strict=*/true,
              {{"key", &key_node}, {"operator", &op_node}, {"values", &values_node}});
  }
  std::string key, op;
  if (!IsNullish(key_node)) key = r.String(key_node, Child(path, "key")).value_or("");
  if (!IsNullish(op_node)) op = r.String(op_node, Child(path, "operator")).value_or("");
  std::vector<std::string> values;
  std::vector<int> value_lines;
  std::string values_path = Child(path, "values");
  ForEachItem(values_node, values_path, r, [&](const YAML::Node& item, size_t i) {
    std::optional<std::string> v =
        IsNullish(item) ? std::optional<std::string>("") : r.String(item, Index(values_path, i));
    if (v) {
      values.push_back(std::move(*v));
      value_lines.push_back(LineOf(item));
    }
  });
  int line = LineOf(node);
  int op_line = IsNullish(op_node) ? line : LineOf(op_node);
  int values_line = IsNullish(values_node) ? line : LineOf(values_node);

  std::optional<SelectorOperator> parsed;
  if (op == "In" || op == "NotIn") {
    parsed = op == "In" ? SelectorOperator::kIn : SelectorOperator::kNotIn;
    if (values.empty()) {
      r.Report(values_line, values_path,
               "Required value: must be specified when `operator` is 'In' or 'NotIn'");
    }
  } else if (op == "Exists" || op == "DoesNotExist") {
    parsed = op == "Exists" ? SelectorOperator::kExists : SelectorOperator::kDoesNotExist;
    if (!values.empty()) {
      r.Report(values_line, values_path,
               "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
    }
  } else {
    r.Report(op_line, Child(path, "operator"),
             Invalid(GoQuote(op), "not a valid selector operator"));
  }
  for (const std::string& msg : IsQualifiedName(key)) {
    r.Report(IsNullish(key_node) ? line : LineOf(key_node), Child(path, "key"),
             Invalid(GoQuote(key), msg));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    for (const std::string& msg : IsValidLabelValue(values[i])) {
      r.Report(value_lines[i], Index(values_path, i), Invalid(GoQuote(values[i]), msg));
    }
  }
  if (parsed) out->requirements.push_back({key, *parsed, std::move(values)});
}

void DecodePort(const YAML::Node& node, const std::string& path, FieldReader& r,
                NetworkPolicyPort* out) {
  YAML::Node protocol_node, port_node, end_port_node;
  if (!IsNullish(node)) {
    if (!r.ExpectMap(node, path)) return;
    r.Capture(node, path, /*strict=*/true,
              {{"protocol", &protocol_node}, {"port", &port_node}, {"endPort", &end_port_node}});
  }
  // protocol: defaulted to TCP ("If not specified, this field defaults to TCP").
  if (!IsNullish(protocol_node)) {
    std::optional<std::string> p = r.String(protocol_node, Child(path, "protocol"));
    if (std::optional<Protocol> protocol = p ? ParseProtocol(*p) : std::nullopt) {
      out->protocol = *protocol;
    } else if (p) {
      r.Report(
          protocol_node, Child(path, "protocol"),
          "Unsupported value: " + GoQuote(*p) + ": supported values: \"TCP\", \"UDP\", \"SCTP\"");
    }
  }
  std::optional<int64_t> end_port;
  if (!IsNullish(end_port_node)) end_port = r.Int(end_port_node, Child(path, "endPort"));
  std::string end_path = Child(path, "endPort");
  std::string port_path = Child(path, "port");
  if (!IsNullish(port_node)) {
    ScalarType type = port_node.IsScalar() ? ClassifyScalar(port_node) : ScalarType::kNull;
    if (type == ScalarType::kInt) {
      std::optional<int64_t> port = r.Int(port_node, port_path);
      if (!port) return;
      bool ok = true;
      for (const std::string& msg : IsValidPortNum(*port)) {
        r.Report(port_node, port_path, Invalid(std::to_string(*port), msg));
        ok = false;
      }
      if (end_port) {
        // kube-apiserver reports `port`'s value here, not endPort's.
        if (*end_port < *port) {
          r.Report(end_port_node, end_path,
                   Invalid(std::to_string(*port), "must be greater than or equal to `port`"));
          ok = false;
        }
        for (const std::string& msg : IsValidPortNum(*end_port)) {
          r.Report(end_port_node, end_path, Invalid(std::to_string(*end_port), msg));
          ok = false;
        }
      }
      if (ok) {
        out->port = static_cast<uint16_t>(*port);
        if (end_port) out->end_port = static_cast<uint16_t>(*end_port);
      }
    } else if (type == ScalarType::kString) {
      const std::string& name = port_node.Scalar();
      if (end_port) {
        r.Report(
            end_port_node, end_path,
            Invalid(std::to_string(*end_port), "may not be specified when `port` is non-numeric"));
      }
      for (const std::string& msg : IsValidPortName(name)) {
        r.Report(port_node, port_path, Invalid(GoQuote(name), msg));
      }
      out->port = name;
    } else {
      r.TypeError(port_node, port_path, "an integer or a string");
    }
  } else if (end_port) {
    r.Report(
        end_port_node, end_path,
        Invalid(std::to_string(*end_port), "may not be specified when `port` is not specified"));
  }
}

void DecodeIpBlock(const YAML::Node& node, const std::string& path, const LoadOptions& options,
                   FieldReader& r, IpBlock* out) {
  YAML::Node cidr_node, except_node;
  r.Capture(node, path, /*strict=*/true, {{"cidr", &cidr_node}, {"except", &except_node}});
  std::string cidr_path = Child(path, "cidr");
  if (!IsNullish(cidr_node)) out->cidr = r.String(cidr_node, cidr_path).value_or("");
  std::vector<std::string> except;
  std::vector<YAML::Node> except_nodes;
  std::string except_path = Child(path, "except");
  ForEachItem(except_node, except_path, r, [&](const YAML::Node& item, size_t i) {
    std::optional<std::string> v =
        IsNullish(item) ? std::optional<std::string>("") : r.String(item, Index(except_path, i));
    if (v) {
      except.push_back(std::move(*v));
      except_nodes.push_back(item);
    }
  });
  if (out->cidr.empty()) {
    r.Report(IsNullish(cidr_node) ? LineOf(node) : LineOf(cidr_node), cidr_path, "Required value");
    return;
  }
  for (const std::string& msg : CidrErrors(out->cidr, options.strict_cidr)) {
    r.Report(cidr_node, cidr_path, Invalid(GoQuote(out->cidr), msg));
  }
  std::optional<ParsedCidr> cidr = ParseCidrSloppy(out->cidr);
  if (!cidr) return;
  for (size_t i = 0; i < except.size(); ++i) {
    std::string p = Index(except_path, i);
    for (const std::string& msg : CidrErrors(except[i], options.strict_cidr)) {
      r.Report(except_nodes[i], p, Invalid(GoQuote(except[i]), msg));
    }
    std::optional<ParsedCidr> e = ParseCidrSloppy(except[i]);
    if (e && !IsStrictSubset(*cidr, *e)) {
      r.Report(except_nodes[i], p,
               Invalid(GoQuote(except[i]), "must be a strict subset of `cidr`"));
    }
  }
  out->except = std::move(except);
}

void DecodePeer(const YAML::Node& node, const std::string& path, const LoadOptions& options,
                FieldReader& r, NetworkPolicyPeer* out) {
  YAML::Node pod_node, ns_node, ip_node;
  if (!IsNullish(node)) {
    if (!r.ExpectMap(node, path)) return;
    r.Capture(node, path, /*strict=*/true,
              {{"podSelector", &pod_node}, {"namespaceSelector", &ns_node}, {"ipBlock", &ip_node}});
  }
  // A null selector is an absent one ("this peer kind is not used"); `{}` matches everything.
  int peers = 0;
  if (!IsNullish(pod_node)) {
    ++peers;
    std::string p = Child(path, "podSelector");
    if (r.ExpectMap(pod_node, p)) out->pod_selector = DecodeLabelSelector(pod_node, p, r);
  }
  if (!IsNullish(ns_node)) {
    ++peers;
    std::string p = Child(path, "namespaceSelector");
    if (r.ExpectMap(ns_node, p)) out->namespace_selector = DecodeLabelSelector(ns_node, p, r);
  }
  if (!IsNullish(ip_node)) {
    ++peers;
    std::string p = Child(path, "ipBlock");
    if (r.ExpectMap(ip_node, p)) {
      out->ip_block.emplace();
      DecodeIpBlock(ip_node, p, options, r, &*out->ip_block);
    }
  }
  if (peers == 0) {
    r.Report(node, path, "Required value: must specify a peer");
  } else if (peers > 1 && !IsNullish(ip_node)) {
    r.Report(node, path, "Forbidden: may not specify both ipBlock and another peer");
  }
}

void DecodeRule(const YAML::Node& node, const std::string& path, std::string_view peers_key,
                const LoadOptions& options, FieldReader& r, NetworkPolicyRule* out) {
  YAML::Node ports_node, peers_node;
  if (!IsNullish(node)) {
    if (!r.ExpectMap(node, path)) return;
    r.Capture(node, path, /*strict=*/true, {{"ports", &ports_node}, {peers_key, &peers_node}});
  }
  std::string ports_path = Child(path, "ports");
  ForEachItem(ports_node, ports_path, r, [&](const YAML::Node& item, size_t i) {
    DecodePort(item, Index(ports_path, i), r, &out->ports.emplace_back());
  });
  std::string peers_path = Child(path, peers_key);
  ForEachItem(peers_node, peers_path, r, [&](const YAML::Node& item, size_t i) {
    DecodePeer(item, Index(peers_path, i), options, r, &out->peers.emplace_back());
  });
}

}  // namespace

void ValidateLabels(const Labels& labels, const std::map<std::string, int>& lines,
                    int fallback_line, const std::string& path, FieldReader& r) {
  for (const auto& [key, value] : labels) {
    auto it = lines.find(key);
    int line = it == lines.end() ? fallback_line : it->second;
    for (const std::string& msg : IsQualifiedName(key)) {
      r.Report(line, path, Invalid(GoQuote(key), msg));
    }
    for (const std::string& msg : IsValidLabelValue(value)) {
      r.Report(line, path, Invalid(GoQuote(value), msg));
    }
  }
}

LabelSelector DecodeLabelSelector(const YAML::Node& node, const std::string& path, FieldReader& r) {
  LabelSelector out;
  YAML::Node labels_node, exprs_node;
  r.Capture(node, path, /*strict=*/true,
            {{"matchLabels", &labels_node}, {"matchExpressions", &exprs_node}});
  std::string labels_path = Child(path, "matchLabels");
  std::map<std::string, int> lines;
  Labels labels = r.StringMap(labels_node, labels_path, &lines);
  ValidateLabels(labels, lines, LineOf(labels_node), labels_path, r);
  // "matchLabels ... {key,value} is equivalent to an element of matchExpressions, whose key field
  // is "key", the operator is "In", and the values array contains only "value"."
  for (auto& [key, value] : labels) {
    out.requirements.push_back({key, SelectorOperator::kIn, {value}});
  }
  std::string exprs_path = Child(path, "matchExpressions");
  ForEachItem(exprs_node, exprs_path, r, [&](const YAML::Node& item, size_t i) {
    DecodeRequirement(item, Index(exprs_path, i), r, &out);
  });
  return out;
}

void DecodeNetworkPolicySpec(const YAML::Node& spec, const LoadOptions& options, FieldReader& r,
                             NetworkPolicy* out) {
  YAML::Node selector_node, ingress_node, egress_node, types_node;
  if (!IsNullish(spec)) {
    if (!r.ExpectMap(spec, "spec")) return;
    r.Capture(spec, "spec", /*strict=*/true,
              {{"podSelector", &selector_node},
               {"ingress", &ingress_node},
               {"egress", &egress_node},
               {"policyTypes", &types_node}});
  }
  // spec.podSelector is not a pointer: absent and null are the empty selector (all pods).
  if (!IsNullish(selector_node) && r.ExpectMap(selector_node, "spec.podSelector")) {
    out->pod_selector = DecodeLabelSelector(selector_node, "spec.podSelector", r);
  }
  ForEachItem(ingress_node, "spec.ingress", r, [&](const YAML::Node& item, size_t i) {
    DecodeRule(item, Index("spec.ingress", i), "from", options, r, &out->ingress.emplace_back());
  });
  ForEachItem(egress_node, "spec.egress", r, [&](const YAML::Node& item, size_t i) {
    DecodeRule(item, Index("spec.egress", i), "to", options, r, &out->egress.emplace_back());
  });

  struct TypeEntry {
    std::string value;
    size_t index;
    YAML::Node node;
  };
  std::vector<TypeEntry> entries;
  std::vector<std::string> types;
  ForEachItem(types_node, "spec.policyTypes", r, [&](const YAML::Node& item, size_t i) {
    std::optional<std::string> t = IsNullish(item) ? std::optional<std::string>("")
                                                   : r.String(item, Index("spec.policyTypes", i));
    if (t) {
      entries.push_back({*t, i, item});
      types.push_back(std::move(*t));
    }
  });
  if (types.size() > 2) {
    // The API server prints &spec.PolicyTypes with %#v.
    std::string value = "&[]networking.PolicyType{";
    for (size_t i = 0; i < types.size(); ++i) value += (i > 0 ? ", " : "") + GoQuote(types[i]);
    value += "}";
    r.Report(types_node, "spec.policyTypes",
             Invalid(value, "may not specify more than two policyTypes"));
  } else {
    for (const TypeEntry& e : entries) {
      if (e.value != "Ingress" && e.value != "Egress") {
        r.Report(e.node, Index("spec.policyTypes", e.index),
                 "Unsupported value: " + GoQuote(e.value) +
                     ": supported values: \"Ingress\", \"Egress\"");
      }
    }
  }
  DefaultPolicyTypes(types, out);
}

}  // namespace picket::config
