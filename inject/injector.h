// inject/injector.h — adding Picket's init container, sidecar and volumes to pod templates.
//
// Owns: `InjectOptions` (images, ports, uid, control address, native or classic sidecar), the
// per-pod decision (already injected, opted out, hostNetwork) and mutation, and the walk over
// Kubernetes objects (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController, Job, CronJob, List; anything else passes through unchanged) used by
// both doors: the kube-inject style CLI and the admission webhook (which diffs the result into a
// JSON Patch). Works on config::Node trees; never sees YAML text.
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
inline constexpr char kInitContainerName[] = "picket-init";
inline constexpr char kProxyContainerName[] = "picket-proxy";
inline constexpr char kRunVolumeName[] = "picket-run";
inline constexpr char kCertsVolumeName[] = "picket-certs";

struct InjectOptions {
  std::string image = "picket/picket:latest";  // holds picket-init, picket-proxy, picket-inject
  std::string image_pull_policy = "IfNotPresent";
  std::string xds_address = "picket-control.picket-system.svc:15012";
  std::string certs_secret = "picket-sidecar-tls";  // tls.crt, tls.key, ca.crt
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;
  uint16_t admin_port = 15000;
  uint16_t readiness_port = 15021;
  uint32_t proxy_uid = 1337;
  bool native_sidecar = false;  // sidecar in initContainers with restartPolicy: Always
  std::string cpu_request = "50m";
  std::string memory_request = "64Mi";
  std::string memory_limit = "256Mi";
};

enum class PodOutcome : uint8_t { kInjected, kAlreadyInjected, kOptedOut, kHostNetwork };

// Injects into one pod (or pod template): `metadata` may be null (it becomes a mapping),
// `spec` is the PodSpec. `what` names the object in notes and errors, e.g. `Pod "ns/web"`.
// A note explains every outcome other than kInjected.
struct PodResult {
  PodOutcome outcome = PodOutcome::kInjected;
  std::string note;
};
[[nodiscard]] base::Result<PodResult> InjectPod(config::Node& metadata, config::Node& spec,
                                                std::string_view what,
                                                const InjectOptions& options);

// Injects into every pod template of one object (recursing into List items). Objects of other
// kinds are left untouched. Notes are appended to `notes`.
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

// The sidecar's args (the `bootstrap ... --exec` command) for these options; exposed for tests
// and docs.
std::vector<std::string> ProxyArgs(const InjectOptions& options);

}  // namespace picket::inject
