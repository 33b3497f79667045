// control/serve.h — `picket-control serve`: manifests in, policy pushed to every sidecar.
//
// Owns: the composition of the control server: a ManifestSource (control/source/: a directory
// today) → XdsSnapshot (control/xds_snapshot.h) → XdsServer (control/xds_server.h), plus the
// admin endpoint (control/serve_admin.h), which also lists the pods NetworkPolicies select but
// no sidecar enforces (control/unprotected.h) and the pods whose policies name UDP or SCTP ports
// while their sidecar does not enforce them (control/udp_sctp_unenforced.h). An update that fails
// (an object that does not validate, or a cluster that does not compile) is logged and shown on
// /status; the last good state keeps being served. Ready (/ready) once the first state from the
// source is applied. With --csr-listen, it also issues each sidecar its pod certificate
// (control/csr_server.h), checking pods against the source's latest state.
//
// Loop-thread only. Close() and run the loop until `done` before destroying.
#pragma once

#include <uv.h>

#include <expected>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/json.h"
#include "config/error.h"
#include "control/csr_server.h"
#include "control/flags.h"
#include "control/serve_admin.h"
#include "control/source/manifest_source.h"
#include "control/udp_sctp_unenforced.h"
#include "control/unprotected.h"
#include "control/xds_server.h"
#include "control/xds_snapshot.h"

namespace picket::control {

struct ServeOptions {
  std::string manifests_dir;
  // Or the Kubernetes API (control/source/from_flags.h): exactly one source.
  std::string kubeconfig;
  bool in_cluster = false;
  std::string kube_context;
  bool kube_insecure_skip_tls_verify = false;
  std::string listen = "0.0.0.0:15012";
  std::string admin = "127.0.0.1:15013";  // empty: no admin endpoint
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  std::string trust_domain = "cluster.local";
  uint64_t debounce_ms = 20;
  uint64_t max_manifest_bytes = 64u << 20;  // a larger manifest file is refused unread
  // Sidecar stream bounds (XdsServerOptions says what each limits).
  uint32_t max_frame_bytes = XdsServerOptions{}.max_frame_size;
  uint64_t max_buffered_bytes = XdsServerOptions{}.max_buffered_bytes;
  uint64_t frame_timeout_ms = XdsServerOptions{}.frame_timeout_ms;
  uint64_t max_streams_per_identity = XdsServerOptions{}.max_streams_per_identity;
  // A selected pod without a connected sidecar is listed as unprotected only after this long
  // (control/unprotected.h): a reconnecting sidecar or a starting pod is not a gap.
  uint64_t unprotected_grace_ms = 10000;
  // Per-pod certificate issuance (control/csr_server.h): on when `csr_listen` is set; needs a
  // Kubernetes source (TokenReview) and the CA's key. The listener serves with --tls-cert.
  std::string csr_listen;  // e.g. "0.0.0.0:15014"
  std::string ca_cert;     // default: --tls-ca
  std::string ca_key;
  uint64_t cert_validity_s = 24 * 3600;  // at most 24 h
  double csr_rate = CsrServerOptions{}.rate_per_s;
  double csr_burst = CsrServerOptions{}.burst;
  uint64_t csr_max_reviews = CsrServerOptions{}.max_concurrent_reviews;
};

// Declares the `serve` flags on `sub`, bound to `options` (control/serve_flags.cc).
void AddServeFlags(CLI::App& sub, ServeOptions* options);
// Parses `serve` flags (without the command name). Errors name the flag.
[[nodiscard]] base::Result<ServeOptions> ParseServeFlags(const std::vector<std::string>& args);

class ControlServer {
 public:
  // Serves what `source` delivers (options.manifests_dir is not read here: the source is built
  // by source::MakeManifestSource). The server owns and starts the source.
  [[nodiscard]] static base::Result<std::unique_ptr<ControlServer>> Create(
      uv_loop_t* loop, const ServeOptions& options, std::unique_ptr<source::ManifestSource> source);
  ~ControlServer();

  uint16_t xds_port() const { return xds_->port(); }
  uint16_t admin_port() const { return admin_ ? admin_->port() : 0; }
  uint16_t csr_port() const { return csr_ ? csr_->port() : 0; }
  const CsrServer* csr() const { return csr_.get(); }
  // The first state from the source has been applied.
  bool ready() const { return loaded_once_; }
  std::string StatusJson() const;
  // /stats/prometheus (control/serve_metrics.cc): sidecars, streams, pushes, ACKs and NACKs per
  // type, unprotected and UDP/SCTP-unenforced pods, the source's errors and, for a Kubernetes
  // source, per kind: lists, watches, events, bookmarks, 410 relists, API errors by code, lag.
  std::string PrometheusText() const;
  XdsServer& xds() { return *xds_; }
  void Close(std::function<void()> done);

 private:
  ControlServer(uv_loop_t* loop, ServeOptions options,
                std::unique_ptr<source::ManifestSource> source)
      : loop_(loop),
        options_(std::move(options)),
        source_(std::move(source)),
        unprotected_(options_.unprotected_grace_ms) {}
  void Apply(source::SourceUpdate update);
  void WriteUnprotected(base::JsonWriter& w) const;
  void WriteUdpSctpUnenforced(base::JsonWriter& w) const;
  // Recomputes the UDP/SCTP-unenforced pods (a stream or the published rules changed).
  void RefreshUdpSctp();
  void OneClosed();

  uv_loop_t* loop_;
  ServeOptions options_;
  std::unique_ptr<source::ManifestSource> source_;
  std::unique_ptr<XdsServer> xds_;
  std::unique_ptr<XdsSnapshot> snapshot_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<CsrServer> csr_;
  // "ns/name" -> metadata.uid of every pod in the source's latest state (issuance checks it).
  std::unordered_map<std::string, std::string> pod_uids_;
  UnprotectedPods unprotected_;
  UdpSctpUnenforced udp_sctp_;
  config::Errors source_errors_;   // the source's current problems (last good objects in use)
  config::Errors compile_errors_;  // the last reload's cluster-level errors
  bool loaded_once_ = false;
  uint64_t reloads_ = 0;
  int closing_parts_ = 0;
  std::function<void()> on_closed_;
};

// picket-control serve --manifests DIR --listen ADDR --tls-cert F --tls-key F --tls-ca F
//                      [--admin ADDR] [--trust-domain TD] [--debounce-ms N]
// Runs until SIGINT/SIGTERM.
int RunServe(const ServeOptions& options, std::ostream& out, std::ostream& err);
// The `serve` row of picket-control's command table (control/flags.h).
CommandRun AddServe(CLI::App& sub);

}  // namespace picket::control
