// inject/injector.cc — see injector.h.
#include "inject/injector.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "config/bootstrap.h"

namespace picket::inject {

using base::Error;

namespace {

// An error about one object (`what`, e.g. "Deployment shop/web"), at `field` when given.
Error ObjectError(std::string_view what, std::string field, std::string reason) {
  Error e = Error::At(std::move(field), std::move(reason));
  e.object = std::string(what);
  return e;
}

}  // namespace
namespace {

using config::Node;

Node Str(std::string s) { return Node::String(std::move(s)); }

Node Map(std::initializer_list<std::pair<const char*, Node>> members) {
  Node n = Node::Mapping();
  for (const auto& [k, v] : members) n.Set(k, v);
  return n;
}

Node Seq(std::initializer_list<Node> items) { return Node::Sequence(std::vector<Node>(items)); }

Node StrSeq(const std::vector<std::string>& items) {
  Node n = Node::Sequence();
  for (const std::string& s : items) n.Append(Str(s));
  return n;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Istio's truthy set (istio pkg/kube/inject/inject.go, injectRequired): y|yes|true|on,
// case-insensitive.
bool Truthy(const std::string& v) {
  const std::string l = Lower(v);
  return l == "y" || l == "yes" || l == "true" || l == "on";
}

// A label or annotation value as text (a YAML `false` arrives as a bool).
std::string ScalarText(const Node* n) {
  if (n == nullptr) return "";
  if (n->IsString()) return n->AsString();
  if (n->IsBool()) return n->AsBool() ? "true" : "false";
  if (n->IsInt()) return std::to_string(n->AsInt());
  return "";
}

constexpr char kRunMountPath[] = "/etc/picket/run";
constexpr char kCertsMountPath[] = "/etc/picket/certs";

// Pod annotations that tune capture for one pod, and the picket-init flag each becomes.
constexpr std::pair<const char*, const char*> kTrafficAnnotations[] = {
    {"picket.dev/include-outbound-cidrs", "--include-outbound-cidrs="},
    {"picket.dev/exclude-outbound-cidrs", "--exclude-outbound-cidrs="},
    {"picket.dev/exclude-outbound-ports", "--exclude-outbound-ports="},
    {"picket.dev/exclude-inbound-ports", "--exclude-inbound-ports="},
};

// UDP and SCTP enforcement (a verdict per new flow in the sidecar, which needs NET_ADMIN): on
// unless the pod's picket.dev/udp-sctp annotation is falsy.
bool UdpSctpEnforced(const Node& annotations) {
  const std::string v = ScalarText(annotations.Find(kUdpSctpAnnotation));
  return v.empty() || Truthy(v);
}

// TCP verdict mode (picket.dev/capture: verdict). Anything but "verdict" is relay here; InjectPod
// refuses other values first (CheckCapture).
bool VerdictCapture(const Node& annotations) {
  return ScalarText(annotations.Find(kCaptureAnnotation)) ==
         config::CaptureModeName(config::CaptureMode::kVerdict);
}

// The sidecar needs NET_ADMIN for its verdict queue: UDP/SCTP enforcement or TCP verdict mode.
bool ProxyNeedsNetAdmin(const Node& annotations) {
  return UdpSctpEnforced(annotations) || VerdictCapture(annotations);
}

// The metrics listener's port for this pod: 0 when there is none (options or a falsy
// picket.dev/metrics annotation).
uint16_t MetricsPort(const InjectOptions& o, const Node& annotations) {
  const std::string v = ScalarText(annotations.Find(kMetricsAnnotation));
  return v.empty() || Truthy(v) ? o.metrics_port : 0;
}

constexpr const char* kPrometheusAnnotations[] = {"prometheus.io/scrape", "prometheus.io/port",
                                                  "prometheus.io/path"};

// Over the admin Unix socket, not 127.0.0.1:admin_port: an app that binds the admin port while
// its sidecar restarts cannot answer the probe in the sidecar's place. The kubelet runs an exec
// probe as the container's user, root without CAP_DAC_OVERRIDE when the sidecar has NET_ADMIN
// (UDP/SCTP enforced or TCP verdict mode), and the socket's directory is the proxy uid's (0700):
// the probe switches to it.
Node ProbeCommand(const InjectOptions& o) {
  const std::string id = std::to_string(o.proxy_uid);
  return Map(
      {{"exec", Map({{"command",
                      StrSeq({"picket-inject", "probe", std::string("--socket=") + kAdminSocketPath,
                              "--path=/ready", "--user=" + id, "--group=" + id})}})}});
}

Node InitContainer(const InjectOptions& o, const Node& annotations) {
  std::vector<std::string> args{
      "--outbound-port=" + std::to_string(o.outbound_port),
      "--inbound-port=" + std::to_string(o.inbound_port),
      "--proxy-uid=" + std::to_string(o.proxy_uid),
      "--admin-port=" + std::to_string(o.admin_port),
      "--readiness-port=" + std::to_string(o.readiness_port),
  };
  for (const auto& [annotation, flag] : kTrafficAnnotations) {
    std::string v = ScalarText(annotations.Find(annotation));
    if (!v.empty()) args.push_back(flag + v);
  }
  if (!UdpSctpEnforced(annotations)) args.push_back("--udp-sctp=false");
  if (o.nfqueue_count > 1 && UdpSctpEnforced(annotations)) {
    args.push_back("--nfqueue-count=" + std::to_string(o.nfqueue_count));
  }
  if (VerdictCapture(annotations)) {
    args.push_back("--capture=verdict");
    if (!o.service_cidrs.empty()) {
      std::string list;
      for (const std::string& cidr : o.service_cidrs) list += (list.empty() ? "" : ",") + cidr;
      args.push_back("--service-cidrs=" + list);
    }
  }
  if (const uint16_t metrics = MetricsPort(o, annotations); metrics != 0) {
    args.push_back("--metrics-port=" + std::to_string(metrics));
  }
  return Map({
      {"name", Str(kInitContainerName)},
      {"image", Str(o.image)},
      {"imagePullPolicy", Str(o.image_pull_policy)},
      {"command", StrSeq({"picket-init"})},
      {"args", StrSeq(args)},
      {"resources", Map({{"requests", Map({{"cpu", Str("10m")}, {"memory", Str("16Mi")}})}})},
      {"securityContext", Map({{"allowPrivilegeEscalation", Node::Bool(false)},
                               {"capabilities", Map({{"add", StrSeq({"NET_ADMIN", "NET_RAW"})},
                                                     {"drop", StrSeq({"ALL"})}})},
                               {"privileged", Node::Bool(false)},
                               {"readOnlyRootFilesystem", Node::Bool(false)},
                               {"runAsGroup", Node::Int(0)},
                               {"runAsNonRoot", Node::Bool(false)},
                               {"runAsUser", Node::Int(0)}})},
  });
}

Node EnvFromField(const char* name, const char* path) {
  return Map(
      {{"name", Str(name)}, {"valueFrom", Map({{"fieldRef", Map({{"fieldPath", Str(path)}})}})}});
}

Node ProxyContainer(const InjectOptions& o, const Node& annotations) {
  // NET_ADMIN to the sidecar only (never the app): the verdict queue (UDP/SCTP, and TCP in
  // verdict mode) and conntrack.
  const bool net_admin = ProxyNeedsNetAdmin(annotations);
  std::vector<std::string> args = ProxyArgs(o);
  if (VerdictCapture(annotations)) args.insert(args.begin() + 1, "--capture=verdict");
  if (!UdpSctpEnforced(annotations)) args.insert(args.begin() + 1, "--udp-sctp=false");
  if (o.nfqueue_count > 1 && UdpSctpEnforced(annotations)) {
    args.insert(args.begin() + 1, "--nfqueue-count=" + std::to_string(o.nfqueue_count));
  }
  const uint16_t metrics = MetricsPort(o, annotations);
  if (metrics != 0) args.insert(args.end() - 2, "--metrics-port=" + std::to_string(metrics));
  // A capability added to a non-root container does not survive its first exec (no ambient
  // capabilities in Kubernetes; no_new_privs ignores file capabilities). So with NET_ADMIN the
  // container starts as root with NET_ADMIN, SETGID and SETUID only, and `picket-inject
  // bootstrap --user --group` switches to the proxy uid keeping NET_ADMIN alone before it execs
  // picket-proxy (inject/switch_user.h). Without it (no UDP/SCTP, relay) it simply runs as the
  // proxy uid.
  const std::string id = std::to_string(o.proxy_uid);
  if (net_admin) args.insert(args.end() - 1, {"--user=" + id, "--group=" + id});
  // Verdict mode: NET_BIND_SERVICE too, for its listeners on Service ports below 1024.
  std::vector<std::string> added{"NET_ADMIN", "SETGID", "SETUID"};
  if (VerdictCapture(annotations)) added.insert(added.begin() + 1, "NET_BIND_SERVICE");
  Node caps = net_admin ? Map({{"add", StrSeq(added)}, {"drop", StrSeq({"ALL"})}})
                        : Map({{"drop", StrSeq({"ALL"})}});
  const int run_as = net_admin ? 0 : static_cast<int>(o.proxy_uid);
  Node c = Map({
      {"name", Str(kProxyContainerName)},
      {"image", Str(o.image)},
      {"imagePullPolicy", Str(o.image_pull_policy)},
      {"command", StrSeq({"picket-inject"})},
      {"args", StrSeq(args)},
      {"env",
       Seq({EnvFromField("POD_NAME", "metadata.name"),
            EnvFromField("POD_NAMESPACE", "metadata.namespace"),
            EnvFromField("POD_IPS", "status.podIPs"), EnvFromField("NODE_NAME", "spec.nodeName")})},
      {"readinessProbe", ProbeCommand(o)},
      {"resources",
       Map({{"requests", Map({{"cpu", Str(o.cpu_request)}, {"memory", Str(o.memory_request)}})},
            {"limits", Map({{"memory", Str(o.memory_limit)}})}})},
      {"securityContext", Map({{"allowPrivilegeEscalation", Node::Bool(false)},
                               {"capabilities", std::move(caps)},
                               {"privileged", Node::Bool(false)},
                               {"readOnlyRootFilesystem", Node::Bool(true)},
                               {"runAsGroup", Node::Int(run_as)},
                               {"runAsNonRoot", Node::Bool(run_as != 0)},
                               {"runAsUser", Node::Int(run_as)}})},
      {"volumeMounts", Seq({Map({{"name", Str(kRunVolumeName)}, {"mountPath", Str(kRunMountPath)}}),
                            Map({{"name", Str(kCertsVolumeName)},
                                 {"mountPath", Str(kCertsMountPath)},
                                 {"readOnly", Node::Bool(true)}})})},
  });
  if (metrics != 0) {
    c.Set("ports", Seq({Map({{"name", Str(kMetricsPortName)},
                             {"containerPort", Node::Int(metrics)},
                             {"protocol", Str("TCP")}})}));
  }
  Node& probe = *c.Find("readinessProbe");
  probe.Set("periodSeconds", Node::Int(2));
  probe.Set("failureThreshold", Node::Int(3));
  if (o.native_sidecar) {
    // Kubernetes >= 1.28: an init container that keeps running. The next init container (and
    // the app) starts only once the startup probe passes, i.e. the proxy has its policy.
    c.Set("restartPolicy", Str("Always"));
    Node startup = ProbeCommand(o);
    startup.Set("periodSeconds", Node::Int(1));
    startup.Set("failureThreshold", Node::Int(120));
    c.Set("startupProbe", std::move(startup));
  }
  return c;
}

Node Volumes(const InjectOptions& o) {
  return Seq({
      Map({{"name", Str(kRunVolumeName)}, {"emptyDir", Map({{"medium", Str("Memory")}})}}),
      // The pod's own token (kubelet rotates it) and the public CA bundle: no Secret. Mounted
      // into the sidecar only; 0444 because kubelet writes it as root and the sidecar runs as
      // its own uid (the app containers have no mount of it).
      Map({{"name", Str(kCertsVolumeName)},
           {"projected",
            Map({{"defaultMode", Node::Int(0444)},
                 {"sources",
                  Seq({Map({{"serviceAccountToken", Map({{"audience", Str("picket")},
                                                         {"expirationSeconds", Node::Int(3600)},
                                                         {"path", Str("token")}})}}),
                       Map({{"configMap",
                             Map({{"name", Str(o.ca_configmap)},
                                  {"items", Seq({Map({{"key", Str("ca.crt")},
                                                      {"path", Str("ca.crt")}})})}})}})})}})}}),
  });
}

Node StatusJson(const InjectOptions& o) {
  Node s =
      Map({{"version", Node::Int(1)},
           {"initContainers", o.native_sidecar ? StrSeq({kInitContainerName, kProxyContainerName})
                                               : StrSeq({kInitContainerName})},
           {"containers", o.native_sidecar ? Node::Sequence() : StrSeq({kProxyContainerName})},
           {"volumes", StrSeq({kRunVolumeName, kCertsVolumeName})}});
  return Str(config::EmitJson(s));
}

bool HasNamed(const Node* list, std::string_view name) {
  if (list == nullptr) return false;
  for (const Node& item : list->items()) {
    if (item.StringAt("name") == name) return true;
  }
  return false;
}

std::string ObjectName(const Node& object, const std::string& kind) {
  const Node* md = object.Find("metadata");
  std::string name, ns;
  if (md != nullptr) {
    name = md->StringAt("name");
    if (name.empty() && !md->StringAt("generateName").empty()) {
      name = md->StringAt("generateName") + "*";
    }
    ns = md->StringAt("namespace");
  }
  return kind + " \"" + (ns.empty() ? name : ns + "/" + name) + "\"";
}

std::string Group(const std::string& api_version) {
  size_t slash = api_version.find('/');
  return slash == std::string::npos ? "" : api_version.substr(0, slash);
}

// --- Capabilities and strict enforcement -----------------------------------------------------

constexpr const char* kNetCapabilities[] = {"NET_ADMIN", "NET_RAW"};
constexpr char kStrictSuffix[] = " (the namespace is labelled picket.dev/enforcement=strict)";

// "cap_net_raw", "NET_RAW" -> "NET_RAW": the runtime upper-cases and adds the CAP_ prefix.
std::string CapabilityName(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (s.starts_with("CAP_")) s = s.substr(4);
  return s;
}

bool ListHas(const Node* list, std::string_view capability) {
  if (list == nullptr || !list->IsSequence()) return false;
  for (const Node& item : list->items()) {
    if (!item.IsString()) continue;
    const std::string name = CapabilityName(item.AsString());
    if (name == capability || name == "ALL") return true;
  }
  return false;
}

const Node* Capabilities(const Node& container, const char* list) {
  const Node* sc = container.Find("securityContext");
  const Node* caps = sc != nullptr && sc->IsMapping() ? sc->Find("capabilities") : nullptr;
  return caps != nullptr && caps->IsMapping() ? caps->Find(list) : nullptr;
}

std::string AnnotationField(const char* key) {
  return std::string("metadata.annotations[") + key + "]";
}

// The capabilities named by picket.dev/keep-capabilities (NET_RAW and/or NET_ADMIN).
base::Result<std::vector<std::string>> KeptCapabilities(std::string_view what,
                                                        const Node* annotations) {
  std::vector<std::string> kept;
  const std::string value =
      ScalarText(annotations != nullptr ? annotations->Find(kKeepCapabilitiesAnnotation) : nullptr);
  size_t start = 0;
  while (start <= value.size() && !value.empty()) {
    size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    std::string item = value.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    const std::string name = CapabilityName(item);
    if (name != "NET_RAW" && name != "NET_ADMIN") {
      return std::unexpected(ObjectError(
          what, AnnotationField(kKeepCapabilitiesAnnotation),
          "Unsupported value: \"" + item + "\": supported values: \"NET_ADMIN\", \"NET_RAW\""));
    }
    kept.push_back(name);
    start = comma + 1;
  }
  return kept;
}

// picket.dev/capture: absent, "relay" or "verdict"; anything else is an error at its field path.
base::Result<void> CheckCapture(std::string_view what, const Node* annotations) {
  const Node* value = annotations != nullptr ? annotations->Find(kCaptureAnnotation) : nullptr;
  if (value == nullptr) return {};
  const std::string v = ScalarText(value);
  if (v == config::CaptureModeName(config::CaptureMode::kRelay) ||
      v == config::CaptureModeName(config::CaptureMode::kVerdict)) {
    return {};
  }
  return std::unexpected(
      ObjectError(what, AnnotationField(kCaptureAnnotation),
                  "Unsupported value: \"" + v + "\": supported values: \"relay\", \"verdict\""));
}

// Picket's own containers in an already-injected pod: the name, image, command and args these
// options make (env, mounts and the rest are not compared).
bool IsPicketContainer(const Node& c, const Node& annotations, const InjectOptions& o) {
  const std::string name = c.StringAt("name");
  if (name != kInitContainerName && name != kProxyContainerName) return false;
  const Node ours =
      name == kInitContainerName ? InitContainer(o, annotations) : ProxyContainer(o, annotations);
  for (const char* key : {"image", "command", "args"}) {
    const Node* theirs = c.Find(key);
    if (theirs == nullptr || !(*theirs == *ours.Find(key))) return false;
  }
  return true;
}

// Merges NET_RAW and NET_ADMIN into each app container's capabilities.drop, unless kept.
base::Result<void> DropNetCapabilities(Node& spec, std::string_view what,
                                       const std::vector<std::string>& kept,
                                       std::vector<std::string>& warnings) {
  for (const char* list : {"initContainers", "containers"}) {
    Node* containers = spec.Find(list);
    if (containers == nullptr || !containers->IsSequence()) continue;
    for (size_t i = 0; i < containers->items().size(); ++i) {
      Node& c = containers->items()[i];
      const std::string path = "spec." + std::string(list) + "[" + std::to_string(i) + "]";
      if (!c.IsMapping()) return std::unexpected(ObjectError(what, path, "must be a mapping"));
      const std::string name = c.StringAt("name");
      Node& sc = c.MappingAt("securityContext");
      if (!sc.IsMapping()) {
        return std::unexpected(ObjectError(what, path + ".securityContext", "must be a mapping"));
      }
      if (const Node* p = sc.Find("privileged"); p != nullptr && p->AsBool()) {
        warnings.push_back(std::string(what) + ": container \"" + name +
                           "\" is privileged: it has every capability, raw sockets included, "
                           "and can bypass capture");
      }
      Node& caps = sc.MappingAt("capabilities");
      if (!caps.IsMapping()) {
        return std::unexpected(
            ObjectError(what, path + ".securityContext.capabilities", "must be a mapping"));
      }
      for (const char* cap : kNetCapabilities) {
        if (std::find(kept.begin(), kept.end(), cap) != kept.end()) continue;
        // Looked up each time: setting `drop` may move the mapping's members.
        if (ListHas(caps.Find("add"), cap)) {
          warnings.push_back(std::string(what) + ": container \"" + name + "\" adds " + cap + " (" +
                             path + ".securityContext.capabilities.add): kept; it can " +
                             "bypass capture");
          continue;
        }
        Node* drop = caps.Find("drop");
        if (drop != nullptr && !drop->IsNull() && !drop->IsSequence()) {
          return std::unexpected(
              ObjectError(what, path + ".securityContext.capabilities.drop", "must be a list"));
        }
        if (ListHas(drop, cap)) continue;
        if (drop == nullptr || drop->IsNull()) caps.Set("drop", Node::Sequence());
        caps.Find("drop")->Append(Str(cap));
      }
    }
  }
  if (!kept.empty()) {
    std::string names;
    for (const std::string& k : kept) names += (names.empty() ? "" : ",") + k;
    warnings.push_back(std::string(what) + ": " + kKeepCapabilitiesAnnotation + " keeps " + names +
                       " for every container: raw sockets can bypass capture");
  }
  return {};
}

}  // namespace

std::vector<Error> StrictViolations(const Node& metadata, const Node& spec,
                                    const InjectOptions& o) {
  std::vector<Error> out;
  auto refuse = [&](std::string field, std::string reason) {
    out.push_back(Error::At(std::move(field), "Forbidden: " + std::move(reason) + kStrictSuffix));
  };
  const Node* annotations = metadata.IsMapping() ? metadata.Find("annotations") : nullptr;
  const Node* labels = metadata.IsMapping() ? metadata.Find("labels") : nullptr;
  if (annotations != nullptr && !annotations->IsMapping()) annotations = nullptr;
  if (labels != nullptr && !labels->IsMapping()) labels = nullptr;
  for (const auto& [set, where] :
       {std::pair{labels, "labels"}, std::pair{annotations, "annotations"}}) {
    std::string v = ScalarText(set != nullptr ? set->Find(kInjectAnnotation) : nullptr);
    if (!v.empty() && !Truthy(v)) {
      refuse(std::string("metadata.") + where + "[" + kInjectAnnotation + "]",
             "opting out of sidecar injection (\"" + v + "\") is not allowed");
    }
  }
  for (const auto& [annotation, flag] : kTrafficAnnotations) {
    std::string v = ScalarText(annotations != nullptr ? annotations->Find(annotation) : nullptr);
    if (v.empty() ||
        (std::string_view(annotation) == "picket.dev/include-outbound-cidrs" && v == "*")) {
      continue;
    }
    refuse(AnnotationField(annotation),
           "removing addresses or ports from capture (\"" + v + "\") is not allowed");
  }
  if (annotations != nullptr && !UdpSctpEnforced(*annotations)) {
    refuse(AnnotationField(kUdpSctpAnnotation), "leaving UDP and SCTP unenforced is not allowed");
  }
  if (annotations != nullptr && annotations->Find(kKeepCapabilitiesAnnotation) != nullptr) {
    refuse(AnnotationField(kKeepCapabilitiesAnnotation),
           "keeping NET_RAW or NET_ADMIN (raw sockets bypass capture) is not allowed");
  }
  if (const Node* host = spec.Find("hostNetwork"); host != nullptr && host->AsBool()) {
    refuse("spec.hostNetwork", "host networking bypasses the sidecar and is not allowed");
  }
  auto check_ids = [&](const Node* sc, const std::string& path) {
    if (sc == nullptr || !sc->IsMapping()) return;
    for (const char* key : {"runAsUser", "runAsGroup"}) {
      const Node* id = sc->Find(key);
      if (id != nullptr && id->IsInt() && id->AsInt() == static_cast<int64_t>(o.proxy_uid)) {
        refuse(path + "." + key,
               std::to_string(o.proxy_uid) + " is the proxy's id, whose traffic is never captured");
      }
    }
  };
  check_ids(spec.Find("securityContext"), "spec.securityContext");
  bool has_proxy = false;
  for (const char* list : {"initContainers", "containers"}) {
    const Node* containers = spec.Find(list);
    if (containers == nullptr || !containers->IsSequence()) continue;
    for (size_t i = 0; i < containers->items().size(); ++i) {
      const Node& c = containers->items()[i];
      if (!c.IsMapping()) continue;
      if (IsPicketContainer(c, annotations != nullptr ? *annotations : Node::Mapping(), o)) {
        has_proxy = has_proxy || c.StringAt("name") == kProxyContainerName;
        continue;
      }
      const std::string path = "spec." + std::string(list) + "[" + std::to_string(i) + "]";
      check_ids(c.Find("securityContext"), path + ".securityContext");
      const Node* sc = c.Find("securityContext");
      if (const Node* p = sc != nullptr && sc->IsMapping() ? sc->Find("privileged") : nullptr;
          p != nullptr && p->AsBool()) {
        refuse(path + ".securityContext.privileged",
               "a privileged container can bypass capture and is not allowed");
      }
      const Node* add = Capabilities(c, "add");
      for (const char* cap : kNetCapabilities) {
        if (ListHas(add, cap)) {
          refuse(path + ".securityContext.capabilities.add",
                 std::string("adding ") + cap + " (raw sockets bypass capture) is not allowed");
        }
      }
    }
  }
  if (annotations != nullptr && annotations->Find(kStatusAnnotation) != nullptr && !has_proxy) {
    refuse(AnnotationField(kStatusAnnotation),
           "the pod is marked as injected but has no picket-proxy container running " + o.image);
  }
  return out;
}

base::Result<bool> NativeSidecarsByDefault(std::string_view v) {
  if (v.empty()) return false;
  const std::string given(v);
  if (v.front() == 'v') v.remove_prefix(1);
  // MAJOR.MINOR, then anything that does not continue the minor (".3", "-gke.1", "+").
  auto number = [&v](uint32_t* out) {
    size_t n = 0;
    uint64_t value = 0;
    while (n < v.size() && n < 4 && v[n] >= '0' && v[n] <= '9') value = value * 10 + (v[n++] - '0');
    if (n == 0 || (n < v.size() && v[n] >= '0' && v[n] <= '9')) return false;
    *out = static_cast<uint32_t>(value);
    v.remove_prefix(n);
    return true;
  };
  uint32_t major = 0, minor = 0;
  if (!number(&major) || v.empty() || v.front() != '.' || (v.remove_prefix(1), !number(&minor)) ||
      (!v.empty() && v.front() != '.' && v.front() != '-' && v.front() != '+')) {
    return std::unexpected(Error::At(
        "--kubernetes-version",
        "\"" + given + "\" is not a Kubernetes version (e.g. v1.29.3 or 1.30, as `kubectl " +
            "version` prints the server's)"));
  }
  return major > 1 || (major == 1 && minor >= 29);
}

std::vector<std::string> ProxyArgs(const InjectOptions& o) {
  return {
      "bootstrap",
      "--namespace=$(POD_NAMESPACE)",
      "--pod=$(POD_NAME)",
      "--node-name=$(NODE_NAME)",
      "--ip=$(POD_IPS)",
      "--xds-address=" + o.xds_address,
      std::string("--xds-token-file=") + kCertsMountPath + "/token",
      "--xds-csr-address=" + o.csr_address,
      std::string("--xds-ca=") + kCertsMountPath + "/ca.crt",
      "--outbound-port=" + std::to_string(o.outbound_port),
      "--inbound-port=" + std::to_string(o.inbound_port),
      "--admin-port=" + std::to_string(o.admin_port),
      std::string("--admin-socket=") + kAdminSocketPath,
      std::string("--output=") + kRunMountPath + "/bootstrap.yaml",
      "--exec=picket-proxy",
  };
}

base::Result<PodResult> InjectPod(Node& metadata, Node& spec, std::string_view what,
                                  const InjectOptions& o) {
  if (!spec.IsMapping()) return std::unexpected(ObjectError(what, "", "spec must be a mapping"));
  if (metadata.IsNull()) metadata = Node::Mapping();
  if (!metadata.IsMapping()) {
    return std::unexpected(ObjectError(what, "", "metadata must be a mapping"));
  }
  if (o.enforcement == Enforcement::kStrict) {
    std::vector<Error> violations = StrictViolations(metadata, spec, o);
    if (!violations.empty()) {
      Error e = violations[0];
      e.object = std::string(what);
      for (size_t i = 1; i < violations.size(); ++i) {
        e.reason += "; " + violations[i].field + ": " + violations[i].reason;
      }
      return std::unexpected(std::move(e));
    }
  }
  const Node* annotations = metadata.Find("annotations");
  const Node* labels = metadata.Find("labels");
  if (annotations != nullptr && annotations->Find(kStatusAnnotation) != nullptr) {
    return PodResult{PodOutcome::kAlreadyInjected,
                     "Skipping injection because " + std::string(what) + " is already injected (" +
                         kStatusAnnotation + " is set)",
                     {}};
  }
  if (const Node* host = spec.Find("hostNetwork"); host != nullptr && host->AsBool()) {
    return PodResult{
        PodOutcome::kHostNetwork,
        "Skipping injection because " + std::string(what) + " has host networking enabled",
        {}};
  }
  // The label wins over the annotation (objectSelector sees labels only).
  std::string choice = ScalarText(labels != nullptr ? labels->Find(kInjectAnnotation) : nullptr);
  if (choice.empty()) {
    choice = ScalarText(annotations != nullptr ? annotations->Find(kInjectAnnotation) : nullptr);
  }
  if (!choice.empty() && !Truthy(choice)) {
    return PodResult{PodOutcome::kOptedOut,
                     "Skipping injection because " + std::string(what) +
                         " has sidecar injection disabled (" + kInjectAnnotation + "=" + choice +
                         ")",
                     {}};
  }
  const Node* containers = spec.Find("containers");
  if (containers == nullptr || !containers->IsSequence() || containers->items().empty()) {
    return std::unexpected(ObjectError(what, "spec.containers", "Required value"));
  }
  for (const char* name : {kInitContainerName, kProxyContainerName}) {
    if (HasNamed(spec.Find("containers"), name) || HasNamed(spec.Find("initContainers"), name)) {
      return std::unexpected(ObjectError(what, "",
                                         "a container is already named \"" + std::string(name) +
                                             "\" but " + kStatusAnnotation +
                                             " is not set; rename it"));
    }
  }
  for (const char* name : {kRunVolumeName, kCertsVolumeName}) {
    if (HasNamed(spec.Find("volumes"), name)) {
      return std::unexpected(
          ObjectError(what, "", "a volume is already named \"" + std::string(name) + "\""));
    }
  }
  for (const char* list : {"initContainers", "volumes"}) {
    const Node* n = spec.Find(list);
    if (n != nullptr && !n->IsNull() && !n->IsSequence()) {
      return std::unexpected(
          ObjectError(what, "", "spec." + std::string(list) + " must be a list"));
    }
  }
  auto kept = KeptCapabilities(what, annotations);
  if (!kept) return std::unexpected(std::move(kept.error()));
  if (auto capture = CheckCapture(what, annotations); !capture) {
    return std::unexpected(std::move(capture.error()));
  }
  PodResult result;
  // Before Picket's containers go in: picket-init needs NET_ADMIN and NET_RAW.
  if (auto dropped = DropNetCapabilities(spec, what, *kept, result.warnings); !dropped) {
    return std::unexpected(std::move(dropped.error()));
  }
  const std::string first_app = containers->items()[0].StringAt("name");

  Node& ann = metadata.MappingAt("annotations");
  if (!ann.IsMapping()) {
    return std::unexpected(ObjectError(what, "", "metadata.annotations must be a mapping"));
  }
  const Node init = InitContainer(o, ann);
  if (ann.Find("kubectl.kubernetes.io/default-container") == nullptr && !first_app.empty()) {
    ann.Set("kubectl.kubernetes.io/default-container", Str(first_app));
  }
  ann.Set(kStatusAnnotation, StatusJson(o));
  if (const uint16_t metrics = MetricsPort(o, ann); metrics != 0 && o.scrape_annotations) {
    // The app's own scrape annotations win: Prometheus keeps scraping the app (one target per
    // pod under this convention), and the sidecar's metrics stay reachable on the named port.
    bool app_has = false;
    for (const char* key : kPrometheusAnnotations) app_has = app_has || ann.Find(key) != nullptr;
    if (app_has) {
      result.warnings.push_back(
          std::string(what) + ": has prometheus.io annotations of its own: kept, none added; " +
          "the sidecar's metrics are on port " + kMetricsPortName + " (" + std::to_string(metrics) +
          ") at /stats/prometheus, not merged into the app's");
    } else {
      ann.Set("prometheus.io/scrape", Str("true"));
      ann.Set("prometheus.io/port", Str(std::to_string(metrics)));
      ann.Set("prometheus.io/path", Str("/stats/prometheus"));
    }
  }

  // picket-init first (capture is in place before anything else runs), then the native
  // sidecar, then the app's own init containers.
  Node& inits = spec.Find("initContainers") != nullptr && !spec.Find("initContainers")->IsNull()
                    ? *spec.Find("initContainers")
                    : spec.Set("initContainers", Node::Sequence());
  std::vector<Node> front{init};
  if (o.native_sidecar) front.push_back(ProxyContainer(o, ann));
  inits.items().insert(inits.items().begin(), front.begin(), front.end());
  if (!o.native_sidecar) {
    Node& cs = *spec.Find("containers");
    cs.items().insert(cs.items().begin(), ProxyContainer(o, ann));
  }
  Node& vols = spec.Find("volumes") != nullptr && !spec.Find("volumes")->IsNull()
                   ? *spec.Find("volumes")
                   : spec.Set("volumes", Node::Sequence());
  const Node volumes = Volumes(o);
  for (const Node& v : volumes.items()) vols.Append(v);
  return result;
}

base::Result<void> InjectObject(Node& object, const InjectOptions& o,
                                std::vector<std::string>& notes) {
  if (!object.IsMapping()) return {};
  const std::string kind = object.StringAt("kind");
  const std::string group = Group(object.StringAt("apiVersion"));
  const std::string what = ObjectName(object, kind);

  auto record = [&](const base::Result<PodResult>& r) -> base::Result<void> {
    if (!r) return std::unexpected(r.error());
    if (!r->note.empty()) notes.push_back(r->note);
    notes.insert(notes.end(), r->warnings.begin(), r->warnings.end());
    return {};
  };

  if (group.empty() && kind == "List") {
    Node* items = object.Find("items");
    if (items == nullptr || !items->IsSequence()) return {};
    for (Node& item : items->items()) {
      if (auto r = InjectObject(item, o, notes); !r) return r;
    }
    return {};
  }
  if (group.empty() && kind == "Pod") {
    Node& md = object.MappingAt("metadata");
    Node* spec = object.Find("spec");
    if (spec == nullptr) return std::unexpected(ObjectError(what, "spec", "Required value"));
    return record(InjectPod(md, *spec, what, o));
  }
  Node* template_owner = nullptr;  // the mapping holding `template`
  std::string template_path;
  const bool workload = (group.empty() && kind == "ReplicationController") ||
                        (group == "apps" && (kind == "Deployment" || kind == "StatefulSet" ||
                                             kind == "DaemonSet" || kind == "ReplicaSet")) ||
                        (group == "batch" && kind == "Job");
  if (workload) {
    template_owner = object.Find("spec");
    template_path = "spec.template";
  } else if (group == "batch" && kind == "CronJob") {
    Node* spec = object.Find("spec");
    Node* job = spec != nullptr ? spec->Find("jobTemplate") : nullptr;
    template_owner = job != nullptr ? job->Find("spec") : nullptr;
    template_path = "spec.jobTemplate.spec.template";
  } else {
    return {};  // not a workload: passes through unchanged
  }
  Node* tmpl = template_owner != nullptr ? template_owner->Find("template") : nullptr;
  if (tmpl == nullptr || !tmpl->IsMapping()) {
    return std::unexpected(ObjectError(what, "", template_path + " is required value"));
  }
  Node& md = tmpl->MappingAt("metadata");
  Node* spec = tmpl->Find("spec");
  if (spec == nullptr)
    return std::unexpected(ObjectError(what, template_path + ".spec", "Required value"));
  return record(InjectPod(md, *spec, what, o));
}

base::Result<InjectTextResult> InjectYamlText(std::string_view text, std::string_view file_name,
                                              const InjectOptions& o) {
  std::vector<Node> docs;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    auto doc = config::ParseJson(text, file_name);
    if (!doc) return std::unexpected(std::move(doc.error()));
    docs.push_back(std::move(*doc));
  } else {
    auto parsed = config::ParseYamlDocuments(text, file_name);
    if (!parsed) return std::unexpected(std::move(parsed.error()));
    docs = std::move(*parsed);
  }
  InjectTextResult result;
  std::vector<Node> out;
  for (Node& doc : docs) {
    if (doc.IsNull()) continue;  // empty documents between `---` markers
    if (auto r = InjectObject(doc, o, result.notes); !r) {
      Error e = std::move(r.error());
      e.file = std::string(file_name);
      e.line = doc.line();
      return std::unexpected(std::move(e));
    }
    out.push_back(std::move(doc));
  }
  result.yaml = config::EmitYamlDocuments(out);
  return result;
}

}  // namespace picket::inject
