// config/manifest_decode.cc — see manifest_decode.h. Documents, kinds, metadata, Namespaces and
// Pods live here; the NetworkPolicy spec is in manifest_network_policy.cc.
#include "config/manifest_decode.h"

#include <map>
#include <tuple>

#include "config/endpoint_slice.h"
#include "config/label_validation.h"
#include "config/manifest_cidr.h"
#include "config/manifest_defaults.h"
#include "config/manifest_network_policy.h"
#include "config/service.h"

namespace picket::config {
namespace {

std::string Invalid(const std::string& value, const std::string& detail) {
  return "Invalid value: " + value + ": " + detail;
}

// A scalar string field read without reporting (for naming objects before decoding them).
std::string PeekString(const YAML::Node& map, const char* key) {
  if (!map.IsMap()) return "";
  YAML::Node v = Get(map, key);
  if (v.IsDefined() && v.IsScalar() && ClassifyScalar(v) == ScalarType::kString) return v.Scalar();
  return "";
}

struct Metadata {
  std::string name;
  std::string ns;
  Labels labels;
};

// ObjectMeta: reads name, namespace and labels (other metadata fields are normal Kubernetes and
// ignored), validating as ValidateObjectMeta does. `name_check` is IsDns1123Subdomain or
// IsDns1123Label. Returns false when the object is unusable.
bool DecodeMetadata(const YAML::Node& root, bool namespaced,
                    std::vector<std::string> (*name_check)(std::string_view), FieldReader& r,
                    Metadata* out) {
  YAML::Node meta = Get(root, "metadata");
  if (IsNullish(meta)) {
    r.Report(root, "metadata.name", "Required value: name or generateName is required");
    return false;
  }
  if (!r.ExpectMap(meta, "metadata")) return false;
  YAML::Node name_node, ns_node, labels_node;
  r.Capture(meta, "metadata", /*strict=*/false,
            {{"name", &name_node}, {"namespace", &ns_node}, {"labels", &labels_node}});
  bool ok = true;
  if (!IsNullish(name_node)) {
    std::optional<std::string> name = r.String(name_node, "metadata.name");
    ok = ok && name.has_value();
    out->name = name.value_or("");
  }
  if (out->name.empty()) {
    if (ok) {
      r.Report(IsNullish(name_node) ? LineOf(meta) : LineOf(name_node), "metadata.name",
               "Required value: name or generateName is required");
    }
    ok = false;
  } else {
    for (const std::string& msg : name_check(out->name)) {
      r.Report(name_node, "metadata.name", Invalid(GoQuote(out->name), msg));
      ok = false;
    }
  }
  if (namespaced) {
    if (!IsNullish(ns_node)) {
      std::optional<std::string> ns = r.String(ns_node, "metadata.namespace");
      ok = ok && ns.has_value();
      out->ns = ns.value_or("");
    }
    if (out->ns.empty()) out->ns = "default";  // what kubectl apply does without -n
    for (const std::string& msg : IsDns1123Label(out->ns)) {
      r.Report(ns_node, "metadata.namespace", Invalid(GoQuote(out->ns), msg));
      ok = false;
    }
  }
  std::map<std::string, int> lines;
  out->labels = r.StringMap(labels_node, "metadata.labels", &lines);
  ValidateLabels(out->labels, lines, LineOf(labels_node), "metadata.labels", r);
  return ok;
}

void CheckApiVersion(const YAML::Node& root, const char* want, FieldReader& r) {
  YAML::Node v = Get(root, "apiVersion");
  if (IsNullish(v)) return;  // hand-written fixtures often omit it; kind is what matters
  std::optional<std::string> s = r.String(v, "apiVersion");
  if (s && *s != want) {
    r.Report(v, "apiVersion",
             "Unsupported value: " + GoQuote(*s) + ": supported values: " + GoQuote(want));
  }
}

std::string ObjectName(std::string_view kind, const std::string& ns, const std::string& name) {
  std::string out(kind);
  if (ns.empty() && name.empty()) return out;  // a cluster-scoped object without a name
  out += ' ';
  if (!ns.empty()) out += ns + "/";
  out += name;
  return out;
}

void DecodeNamespace(const YAML::Node& root, const DecodeContext& ctx, Cluster* out) {
  std::string name = PeekString(Get(root, "metadata"), "name");
  size_t before = ctx.errors->size();
  FieldReader r(ctx.file, ObjectName("Namespace", "", name), ctx.errors, ctx.budget,
                ctx.line_offset);
  CheckApiVersion(root, "v1", r);
  Metadata meta;
  bool ok = DecodeMetadata(root, /*namespaced=*/false, &IsDns1123Label, r, &meta);
  if (!ok || ctx.errors->size() != before) return;
  Namespace ns{meta.name, std::move(meta.labels), {ctx.file, r.Line(root)}};
  DefaultNamespaceLabels(&ns);
  out->namespaces.push_back(std::move(ns));
}

void DecodeContainerPorts(const YAML::Node& containers, const std::string& path, FieldReader& r,
                          std::vector<ContainerPort>* out) {
  if (IsNullish(containers) || !r.ExpectList(containers, path)) return;
  size_t ci = 0;
  for (const YAML::Node& container : containers) {
    std::string cpath = Index(path, ci++);
    if (!r.Spend() || IsNullish(container) || !r.ExpectMap(container, cpath)) continue;
    YAML::Node ports = Get(container, "ports");
    std::string ppath = Child(cpath, "ports");
    if (IsNullish(ports) || !r.ExpectList(ports, ppath)) continue;
    size_t pi = 0;
    for (const YAML::Node& port : ports) {
      std::string path_i = Index(ppath, pi++);
      if (!r.Spend()) return;
      ContainerPort cp;
      YAML::Node number, name, protocol;
      if (!IsNullish(port)) {
        if (!r.ExpectMap(port, path_i)) continue;
        number.reset(Get(port, "containerPort"));
        name.reset(Get(port, "name"));
        protocol.reset(Get(port, "protocol"));
      }
      bool ok = true;
      int64_t value = 0;
      if (!IsNullish(number)) {
        std::optional<int64_t> v = r.Int(number, Child(path_i, "containerPort"));
        ok = v.has_value();
        value = v.value_or(0);
      }
      if (ok) {
        for (const std::string& msg : IsValidPortNum(value)) {
          r.Report(IsNullish(number) ? LineOf(port) : LineOf(number),
                   Child(path_i, "containerPort"), Invalid(std::to_string(value), msg));
          ok = false;
        }
      }
      if (!IsNullish(name)) {
        std::optional<std::string> n = r.String(name, Child(path_i, "name"));
        if (n && !n->empty()) {
          for (const std::string& msg : IsValidPortName(*n)) {
            r.Report(name, Child(path_i, "name"), Invalid(GoQuote(*n), msg));
            ok = false;
          }
        }
        cp.name = n.value_or("");
      }
      if (!IsNullish(protocol)) {
        std::optional<std::string> p = r.String(protocol, Child(path_i, "protocol"));
        // Pod validation lists the supported values sorted (sets.List).
        if (std::optional<Protocol> parsed = p ? ParseProtocol(*p) : std::nullopt) {
          cp.protocol = *parsed;
        } else if (p) {
          r.Report(protocol, Child(path_i, "protocol"),
                   "Unsupported value: " + GoQuote(*p) +
                       ": supported values: \"SCTP\", \"TCP\", \"UDP\"");
        }
      }
      if (ok) {
        cp.container_port = static_cast<uint16_t>(value);
        out->push_back(std::move(cp));
      }
    }
  }
}

// One address list of a PodStatus: `list` ([{ip: ...}], e.g. podIPs) and its older singular
// form `single` (e.g. podIP), which is list[0] when both are present and alone is the only
// address. Each address is validated as the API server validates IP fields.
void DecodeStatusIps(const YAML::Node& status, const char* single, const char* list,
                     const LoadOptions& options, FieldReader& r, std::vector<std::string>* out) {
  const std::string list_path = Child("status", list);
  YAML::Node single_node = Get(status, single);
  YAML::Node list_node = Get(status, list);
  auto add_ip = [&](const YAML::Node& node, const std::string& path) {
    std::optional<std::string> ip = r.String(node, path);
    if (!ip) return;
    std::vector<std::string> errs = IpErrors(*ip, options.strict_cidr);
    for (const std::string& msg : errs) r.Report(node, path, Invalid(GoQuote(*ip), msg));
    if (errs.empty()) out->push_back(*ip);
  };
  if (!IsNullish(list_node) && r.ExpectList(list_node, list_path)) {
    size_t i = 0;
    for (const YAML::Node& entry : list_node) {
      std::string path = Index(list_path, i++);
      if (!r.Spend() || IsNullish(entry) || !r.ExpectMap(entry, path)) continue;
      YAML::Node ip = Get(entry, "ip");
      if (IsNullish(ip)) {
        r.Report(entry, Child(path, "ip"), "Required value");
      } else {
        add_ip(ip, Child(path, "ip"));
      }
    }
  }
  if (out->empty() && !IsNullish(single_node) && (IsNullish(list_node) || list_node.size() == 0)) {
    add_ip(single_node, Child("status", single));
  }
}

void DecodePodStatus(const YAML::Node& status, const LoadOptions& options, FieldReader& r,
                     Pod* pod) {
  if (IsNullish(status) || !r.ExpectMap(status, "status")) return;
  DecodeStatusIps(status, "podIP", "podIPs", options, r, &pod->ips);
  DecodeStatusIps(status, "hostIP", "hostIPs", options, r, &pod->host_ips);
}

void DecodePod(const YAML::Node& root, const DecodeContext& ctx, Cluster* out) {
  YAML::Node meta_peek = Get(root, "metadata");
  std::string ns = PeekString(meta_peek, "namespace");
  FieldReader r(ctx.file,
                ObjectName("Pod", ns.empty() ? "default" : ns, PeekString(meta_peek, "name")),
                ctx.errors, ctx.budget, ctx.line_offset);
  size_t before = ctx.errors->size();
  CheckApiVersion(root, "v1", r);
  Metadata meta;
  bool ok = DecodeMetadata(root, /*namespaced=*/true, &IsDns1123Subdomain, r, &meta);
  Pod pod;
  pod.ns = meta.ns;
  pod.name = meta.name;
  pod.uid = PeekString(meta_peek, "uid");
  pod.labels = std::move(meta.labels);
  pod.source = {ctx.file, r.Line(root)};
  YAML::Node spec = Get(root, "spec");
  if (!IsNullish(spec) && r.ExpectMap(spec, "spec")) {
    DecodeContainerPorts(Get(spec, "initContainers"), "spec.initContainers", r, &pod.ports);
    DecodeContainerPorts(Get(spec, "containers"), "spec.containers", r, &pod.ports);
    YAML::Node host_network = Get(spec, "hostNetwork");
    if (!IsNullish(host_network)) {
      pod.host_network = r.Bool(host_network, "spec.hostNetwork").value_or(false);
    }
  }
  DecodePodStatus(Get(root, "status"), ctx.options, r, &pod);
  if (!ok || ctx.errors->size() != before) return;
  out->pods.push_back(std::move(pod));
}

void DecodeNetworkPolicy(const YAML::Node& root, const DecodeContext& ctx, Cluster* out) {
  YAML::Node meta_peek = Get(root, "metadata");
  std::string ns = PeekString(meta_peek, "namespace");
  FieldReader r(
      ctx.file,
      ObjectName("NetworkPolicy", ns.empty() ? "default" : ns, PeekString(meta_peek, "name")),
      ctx.errors, ctx.budget, ctx.line_offset);
  size_t before = ctx.errors->size();
  // NetworkPolicy has no status: everything but these four top-level fields is unknown.
  r.Fields(root, "", /*strict=*/true, [](const std::string& key, const YAML::Node&, int) {
    return key == "apiVersion" || key == "kind" || key == "metadata" || key == "spec";
  });
  CheckApiVersion(root, "networking.k8s.io/v1", r);
  Metadata meta;
  bool ok = DecodeMetadata(root, /*namespaced=*/true, &IsDns1123Subdomain, r, &meta);
  NetworkPolicy policy;
  policy.ns = meta.ns;
  policy.name = meta.name;
  policy.source = {ctx.file, r.Line(root)};
  DecodeNetworkPolicySpec(Get(root, "spec"), ctx.options, r, &policy);
  if (!ok || ctx.errors->size() != before) return;
  out->policies.push_back(std::move(policy));
}

void DecodeService(const YAML::Node& root, const DecodeContext& ctx, Cluster* out) {
  YAML::Node meta_peek = Get(root, "metadata");
  std::string ns = PeekString(meta_peek, "namespace");
  FieldReader r(ctx.file,
                ObjectName("Service", ns.empty() ? "default" : ns, PeekString(meta_peek, "name")),
                ctx.errors, ctx.budget, ctx.line_offset);
  size_t before = ctx.errors->size();
  CheckApiVersion(root, "v1", r);
  Metadata meta;
  // Service names are DNS-1035 labels; IsDns1123Label is the closest check we have.
  bool ok = DecodeMetadata(root, /*namespaced=*/true, &IsDns1123Label, r, &meta);
  Service service;
  service.ns = meta.ns;
  service.name = meta.name;
  service.source = {ctx.file, r.Line(root)};
  DecodeServiceSpec(Get(root, "spec"), ctx.options.strict_cidr, r, &service);
  if (!ok || ctx.errors->size() != before) return;
  out->services.push_back(std::move(service));
}

void DecodeEndpointSlice(const YAML::Node& root, const DecodeContext& ctx, Cluster* out) {
  YAML::Node meta_peek = Get(root, "metadata");
  std::string ns = PeekString(meta_peek, "namespace");
  FieldReader r(
      ctx.file,
      ObjectName("EndpointSlice", ns.empty() ? "default" : ns, PeekString(meta_peek, "name")),
      ctx.errors, ctx.budget, ctx.line_offset);
  size_t before = ctx.errors->size();
  CheckApiVersion(root, "discovery.k8s.io/v1", r);
  Metadata meta;
  bool ok = DecodeMetadata(root, /*namespaced=*/true, &IsDns1123Subdomain, r, &meta);
  EndpointSlice slice;
  slice.ns = meta.ns;
  slice.name = meta.name;
  if (auto it = meta.labels.find("kubernetes.io/service-name"); it != meta.labels.end()) {
    slice.service_name = it->second;
  }
  slice.source = {ctx.file, r.Line(root)};
  DecodeEndpointSliceBody(root, ctx.options.strict_cidr, r, &slice);
  if (!ok || ctx.errors->size() != before) return;
  out->endpoint_slices.push_back(std::move(slice));
}

// LoadOptions::workload_templates: a workload's pod template as one Pod (see manifest_loader.h).
void DecodeWorkload(const YAML::Node& root, const std::string& kind, const DecodeContext& ctx,
                    Cluster* out) {
  YAML::Node meta_peek = Get(root, "metadata");
  std::string ns = PeekString(meta_peek, "namespace");
  FieldReader r(ctx.file,
                ObjectName(kind, ns.empty() ? "default" : ns, PeekString(meta_peek, "name")),
                ctx.errors, ctx.budget, ctx.line_offset);
  size_t before = ctx.errors->size();
  Metadata meta;
  bool ok = DecodeMetadata(root, /*namespaced=*/true, &IsDns1123Subdomain, r, &meta);
  const std::string path = kind == "CronJob" ? "spec.jobTemplate.spec.template" : "spec.template";
  YAML::Node tmpl = root;
  std::string at;
  for (const char* step : kind == "CronJob"
                              ? std::vector<const char*>{"spec", "jobTemplate", "spec", "template"}
                              : std::vector<const char*>{"spec", "template"}) {
    at = Child(at, step);
    YAML::Node next = tmpl.IsMap() ? Get(tmpl, step) : YAML::Node();
    if (IsNullish(next)) {
      r.Report(tmpl, at, "Required value");
      return;
    }
    if (!r.ExpectMap(next, at)) return;
    tmpl.reset(next);
  }
  Pod pod;
  pod.ns = meta.ns;
  pod.name = meta.name + "-template";
  pod.template_of = kind + " " + meta.ns + "/" + meta.name;
  pod.source = {ctx.file, r.Line(root)};
  YAML::Node tmeta = Get(tmpl, "metadata");
  if (!IsNullish(tmeta) && r.ExpectMap(tmeta, Child(path, "metadata"))) {
    std::map<std::string, int> lines;
    YAML::Node labels = Get(tmeta, "labels");
    pod.labels = r.StringMap(labels, Child(path, "metadata.labels"), &lines);
    ValidateLabels(pod.labels, lines, LineOf(labels), Child(path, "metadata.labels"), r);
  }
  YAML::Node spec = Get(tmpl, "spec");
  const std::string spec_path = Child(path, "spec");
  if (!IsNullish(spec) && r.ExpectMap(spec, spec_path)) {
    DecodeContainerPorts(Get(spec, "initContainers"), Child(spec_path, "initContainers"), r,
                         &pod.ports);
    DecodeContainerPorts(Get(spec, "containers"), Child(spec_path, "containers"), r, &pod.ports);
    YAML::Node host_network = Get(spec, "hostNetwork");
    if (!IsNullish(host_network)) {
      pod.host_network = r.Bool(host_network, Child(spec_path, "hostNetwork")).value_or(false);
    }
  }
  if (!ok || ctx.errors->size() != before) return;
  out->pods.push_back(std::move(pod));
}

bool IsWorkloadKind(std::string_view kind) {
  return kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
         kind == "ReplicaSet" || kind == "Job" || kind == "CronJob";
}

void DecodeObject(const YAML::Node& root, std::string_view default_kind, int depth,
                  const DecodeContext& ctx, Cluster* out) {
  FieldReader doc(ctx.file, "", ctx.errors, ctx.budget, ctx.line_offset);
  if (!doc.Spend()) return;
  if (!root.IsMap()) {
    doc.Report(root, "",
               "Invalid type: expected a Kubernetes object (a map with apiVersion and kind), got " +
                   DescribeNode(root));
    return;
  }
  YAML::Node kind_node = Get(root, "kind");
  std::string kind(default_kind);
  if (!IsNullish(kind_node)) {
    std::optional<std::string> k = doc.String(kind_node, "kind");
    if (!k) return;
    kind = *k;
  }
  if (kind.empty()) {
    doc.Report(root, "kind", "Required value");
    return;
  }
  if (kind == "Namespace") return DecodeNamespace(root, ctx, out);
  if (kind == "Pod") return DecodePod(root, ctx, out);
  if (kind == "NetworkPolicy") return DecodeNetworkPolicy(root, ctx, out);
  if (kind == "Service") return DecodeService(root, ctx, out);
  if (kind == "EndpointSlice") return DecodeEndpointSlice(root, ctx, out);
  if (ctx.options.workload_templates && IsWorkloadKind(kind)) {
    return DecodeWorkload(root, kind, ctx, out);
  }
  if (kind == "List" ||
      (kind.size() > 4 && kind.ends_with("List") && !IsNullish(Get(root, "items")))) {
    // `kind: List` (kubectl get -o yaml) or a typed list such as `PodList`, whose items may
    // omit their kind.
    if (depth > 4) {
      doc.Report(root, "items", "lists nested more than 4 deep");
      return;
    }
    YAML::Node items = Get(root, "items");
    std::string item_kind = kind == "List" ? "" : kind.substr(0, kind.size() - 4);
    if (IsNullish(items) || !doc.ExpectList(items, "items")) return;
    for (const YAML::Node& item : items) {
      if (IsNullish(item)) continue;
      DecodeObject(item, item_kind, depth + 1, ctx, out);
    }
    return;
  }
  YAML::Node meta = Get(root, "metadata");
  std::string ns = PeekString(meta, "namespace");
  ctx.notices->push_back(ctx.file + ":" + std::to_string(doc.Line(root)) + ": skipping " +
                         ObjectName(kind, ns, PeekString(meta, "name")) +
                         " (not used by the policy engine)");
}

}  // namespace

void DecodeDocument(const YAML::Node& doc, const DecodeContext& ctx, Cluster* out) {
  if (IsNullish(doc)) return;  // an empty document (`---` with nothing after it)
  try {
    DecodeObject(doc, "", 0, ctx, out);
  } catch (const std::exception& e) {
    // yaml-cpp may throw on malformed node graphs; never let it escape config/.
    ctx.errors->push_back(Error{ctx.file, LineOf(doc) + ctx.line_offset, "", "",
                                std::string("internal YAML error: ") + e.what()});
  }
}

void CheckDuplicates(const Cluster& cluster, Errors* errors) {
  std::map<std::tuple<std::string_view, std::string_view, std::string_view>, const SourceLocation*>
      seen;
  auto check = [&](std::string_view kind, const std::string& ns, const std::string& name,
                   const SourceLocation& where) {
    auto [it, inserted] =
        seen.emplace(std::make_tuple(kind, std::string_view(ns), std::string_view(name)), &where);
    if (inserted) return;
    const SourceLocation& first = *it->second;
    errors->push_back(Error{
        where.file, where.line, ObjectName(kind, ns, name), "",
        "duplicate object: already defined at " + first.file + ":" + std::to_string(first.line)});
  };
  for (const Namespace& ns : cluster.namespaces) check("Namespace", "", ns.name, ns.source);
  for (const Pod& pod : cluster.pods) check("Pod", pod.ns, pod.name, pod.source);
  for (const NetworkPolicy& p : cluster.policies) check("NetworkPolicy", p.ns, p.name, p.source);
  for (const Service& s : cluster.services) check("Service", s.ns, s.name, s.source);
  for (const EndpointSlice& s : cluster.endpoint_slices) {
    check("EndpointSlice", s.ns, s.name, s.source);
  }
}

}  // namespace picket::config
