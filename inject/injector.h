// inject/injector.h — adding Picket's init container, sidecar and volumes to pod templates.
//
// Owns: `InjectOptions` (images, ports, uid, control address, native or classic sidecar), the
// per-pod decision (already injected, opted out, hostNetwork) and mutation, and the walk over
// Kubernetes objects (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController, Job, CronJob, List; anything else passes through unchanged) used by
// both doors: the kube-inject style CLI and the admission webhook (which diffs the result into a
// JSON Patch). Works on config::Node trees; never sees YAML text.
//
// Capabilities: raw sockets (NET_RAW) and interface/netfilter changes (NET_ADMIN) bypass the
// capture rules, so every app container (and app init container) gets NET_RAW and NET_ADMIN
// merged into `securityContext.capabilities.drop`; nothing is ever added to `add`. Two
// exceptions, each reported as a warning: the pod annotation
// `picket.dev/keep-capabilities: "NET_RAW[,NET_ADMIN]"`, and a container whose author lists the
// capability (or ALL) in its own `capabilities.add` — dropping what the author explicitly added
// would only move the failure to run time. Under strict enforcement both are refused instead.
//
// Enforcement: `Enforcement::kStrict` (the webhook's /inject-strict path, for namespaces labelled
// `picket.dev/enforcement: strict`; `--enforcement strict` on the CLI) refuses every pod whose
// author takes it out of enforcement: see StrictViolations.
//
// Metrics: the sidecar serves GET /stats/prometheus on the pod's IPs at `metrics_port` (a
// container port named picket-metrics; picket-init leaves it out of capture), and the pod gets
// Prometheus's prometheus.io/scrape|port|path annotations — unless it has prometheus.io
// annotations of its own (kept untouched, a warning says so; no Istio-style merged endpoint) or
// `picket.dev/metrics: "false"` (no listener at all).
//
// The sidecar builds its bootstrap at start from the downward API (inject/README.md): its
// command is `picket-inject bootstrap --namespace=$(POD_NAMESPACE) --pod=$(POD_NAME)
// --ip=$(POD_IPS) ... --output=/etc/picket/run/bootstrap.yaml --exec=picket-proxy`.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "config/document.h"

namespace picket::inject {

inline constexpr char kStatusAnnotation[] = "picket.dev/status";
inline constexpr char kInjectAnnotation[] = "picket.dev/inject";  // also honoured as a label
inline constexpr char kKeepCapabilitiesAnnotation[] = "picket.dev/keep-capabilities";
// `"false"`: UDP and SCTP are not captured (picket-init --udp-sctp=false) nor enforced (the
// bootstrap's udp_sctp.enforce: false), and the sidecar does not get NET_ADMIN. By default the
// sidecar container (never an app container) gets NET_ADMIN for its verdict queue and conntrack.
inline constexpr char kUdpSctpAnnotation[] = "picket.dev/udp-sctp";
// `"relay"` (the default) or `"verdict"`: how the pod's TCP reaches the policy (config/bootstrap.h
// CaptureMode). Verdict: picket-init gets --capture=verdict, the bootstrap `capture: verdict`,
// and the sidecar NET_ADMIN for the verdict queue even with picket.dev/udp-sctp: "false". Any
// other value is an error naming the annotation.
inline constexpr char kCaptureAnnotation[] = "picket.dev/capture";
// `"false"`: no metrics listener for this pod (no container port, no capture exclusion, no
// prometheus.io annotations). By default the sidecar serves GET /stats/prometheus on the pod's
// IPs at InjectOptions::metrics_port (Istio's 15090), left out of capture by picket-init.
inline constexpr char kMetricsAnnotation[] = "picket.dev/metrics";
inline constexpr char kMetricsPortName[] = "picket-metrics";
inline constexpr char kEnforcementLabel[] = "picket.dev/enforcement";  // on the Namespace
inline constexpr char kInitContainerName[] = "picket-init";
inline constexpr char kProxyContainerName[] = "picket-proxy";
inline constexpr char kRunVolumeName[] = "picket-run";
inline constexpr char kCertsVolumeName[] = "picket-certs";
// The sidecar's admin Unix socket, on the run emptyDir that only the sidecar mounts; the proxy
// makes its directory 0700. The readiness (and startup) probe asks it for /ready, and the
// operator drains through it: `kubectl exec POD -c picket-proxy -- picket-inject probe
// --socket=/etc/picket/run/admin/admin.sock --method=POST --path=/drain --user=1337 --group=1337`
// (the container's user may be root without CAP_DAC_OVERRIDE: the probe becomes the proxy uid).
inline constexpr char kAdminSocketPath[] = "/etc/picket/run/admin/admin.sock";

enum class Enforcement : uint8_t {
  kPermissive,  // the author may opt out, exclude traffic or keep raw sockets (with a warning)
  kStrict,      // any of those refuses the pod
};

struct InjectOptions {
  std::string image = "picket/picket:latest";  // holds picket-init, picket-proxy, picket-inject
  std::string image_pull_policy = "IfNotPresent";
  std::string xds_address = "picket-control.picket-system.svc:15012";
  // The sidecar's identity: a projected service-account token (audience picket, 1 h, rotated
  // by kubelet) exchanged at `csr_address` for its certificate; `ca_configmap` holds ca.crt.
  std::string csr_address = "picket-control.picket-system.svc:15014";
  std::string ca_configmap = "picket-ca";
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;
  uint16_t admin_port = 15000;
  uint16_t readiness_port = 15021;
  // The sidecar's read-only metrics listener on the pod's IPs (GET /stats/prometheus): a
  // container port named picket-metrics, excluded from capture. 0: none.
  uint16_t metrics_port = 15090;
  // Add prometheus.io/scrape: "true", prometheus.io/port and prometheus.io/path to the pod
  // (unless the app has prometheus.io annotations of its own: those are kept, nothing is added,
  // and a warning says so — the two sets are not merged, see inject/README.md).
  bool scrape_annotations = true;
  uint32_t proxy_uid = 1337;
  // The cluster's Service ClusterIP ranges (kube-apiserver --service-cluster-ip-range), passed
  // to picket-init of verdict-mode pods (--service-cidrs): TCP to anything else is then not
  // connection-tracked in the pod. Empty: every flow is tracked (always correct, costlier).
  std::vector<std::string> service_cidrs;
  // UDP/SCTP verdict queues per pod (picket-init --nfqueue-count, the bootstrap's
  // udp_sctp.queues): one per CPU the sidecar's workers run on. 1: one queue.
  uint16_t nfqueue_count = 1;
  // The sidecar in initContainers with restartPolicy: Always (a native sidecar) instead of first
  // in containers. picket-inject sets it from --native-sidecar when given, else from
  // --kubernetes-version (NativeSidecarsByDefault); without either: classic.
  bool native_sidecar = false;
  std::string cpu_request = "50m";
  std::string memory_request = "64Mi";
  std::string memory_limit = "256Mi";
  Enforcement enforcement = Enforcement::kPermissive;
};

enum class PodOutcome : uint8_t { kInjected, kAlreadyInjected, kOptedOut, kHostNetwork };

// Injects into one pod (or pod template): `metadata` may be null (it becomes a mapping),
// `spec` is the PodSpec. `what` names the object in notes and errors, e.g. `Pod "ns/web"`.
// A note explains every outcome other than kInjected. Warnings name capabilities left to the
// app (kept by annotation or by the container's own `add`, or a privileged container).
// Under strict enforcement a pod with StrictViolations is an error listing all of them.
struct PodResult {
  PodOutcome outcome = PodOutcome::kInjected;
  std::string note;
  std::vector<std::string> warnings;
};
[[nodiscard]] base::Result<PodResult> InjectPod(config::Node& metadata, config::Node& spec,
                                                std::string_view what,
                                                const InjectOptions& options);

// Every way this pod's author removes it from enforcement, each at its field path: a falsy
// picket.dev/inject label or annotation, capture-narrowing annotations (exclude-*,
// include-outbound-cidrs other than "*"), picket.dev/keep-capabilities, hostNetwork, runAsUser or
// runAsGroup equal to the proxy's uid (pod or container securityContext; fsGroup and
// supplementalGroups are not matched by the capture rules), NET_RAW/NET_ADMIN/ALL in a
// container's capabilities.add, privileged containers, and picket.dev/status on a pod without a
// picket-proxy container. Containers named picket-init/picket-proxy with the image, command and
// args these options make are Picket's own (an already-injected pod) and are not checked.
// Empty when the pod is fine.
std::vector<base::Error> StrictViolations(const config::Node& metadata, const config::Node& spec,
                                          const InjectOptions& options);

// Injects into every pod template of one object (recursing into List items). Objects of other
// kinds are left untouched. Notes and warnings are appended to `notes`.
[[nodiscard]] base::Result<void> InjectObject(config::Node& object, const InjectOptions& options,
                                              std::vector<std::string>& notes);

struct InjectTextResult {
  std::string yaml;
  std::vector<std::string> notes;
};

// The CLI: a multi-document YAML (or JSON) stream in, the injected stream out.
[[nodiscard]] base::Result<InjectTextResult> InjectYamlText(std::string_view text,
                                                            std::string_view file_name,
                                                            const InjectOptions& options);

// Whether a cluster whose API server is `kubernetes_version` ("v1.29.3", "1.30",
// "v1.29.1-gke.1589000", "1.31+"; "" = unknown) runs native sidecars by default: Kubernetes 1.29
// and later (the SidecarContainers feature gate is beta, on by default, from 1.29; alpha and off
// by default in 1.28, where an API server without the gate drops `restartPolicy` from init
// containers and the pod would wait forever for a sidecar that never exits — so 1.28 needs an
// explicit --native-sidecar). Unknown: false (classic). An unparsable version is an error
// naming --kubernetes-version. AdmissionReview carries no server version, hence the flag.
[[nodiscard]] base::Result<bool> NativeSidecarsByDefault(std::string_view kubernetes_version);

// The sidecar's args (the `bootstrap ... --exec` command) for these options; exposed for tests
// and docs.
std::vector<std::string> ProxyArgs(const InjectOptions& options);

}  // namespace picket::inject
