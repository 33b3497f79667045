// control/serve_flags.cc — the command line of `picket-control serve` (see serve.h): its flags,
// ParseServeFlags and the command-table row.
#include <CLI/CLI.hpp>
#include <iostream>

#include "control/serve.h"

namespace picket::control {

void AddServeFlags(CLI::App& sub, ServeOptions* o) {
  // One source: a manifest directory, or the Kubernetes API (list+watch).
  CLI::Option* manifests =
      sub.add_option("--manifests", o->manifests_dir, "Directory of manifests to watch and serve")
          ->type_name("DIR");
  CLI::Option* kubeconfig =
      sub.add_option("--kubeconfig", o->kubeconfig,
                     "Read the cluster from the Kubernetes API (list+watch) with this kubeconfig")
          ->type_name("PATH")
          ->excludes(manifests);
  CLI::Option* in_cluster =
      sub.add_flag("--in-cluster", o->in_cluster,
                   "Read the cluster from the Kubernetes API with the pod's service account")
          ->excludes(manifests)
          ->excludes(kubeconfig);
  manifests->excludes(kubeconfig)->excludes(in_cluster);
  kubeconfig->excludes(in_cluster);
  sub.add_option("--kube-context", o->kube_context,
                 "The kubeconfig context to use instead of its current-context")
      ->type_name("NAME")
      ->needs(kubeconfig);
  sub.add_flag("--kube-insecure-skip-tls-verify", o->kube_insecure_skip_tls_verify,
               "Accept a kubeconfig cluster with insecure-skip-tls-verify (the API server is not "
               "authenticated)")
      ->needs(kubeconfig);
  sub.add_option("--listen", o->listen, "xDS address (mutual TLS)")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  sub.add_option("--admin", o->admin,
                 "Admin endpoint (/status, /stats/prometheus, /ready); empty: none")
      ->type_name("HOST:PORT")
      ->capture_default_str();
  sub.add_option("--tls-cert", o->tls_cert, "Server certificate (PEM)")
      ->type_name("FILE")
      ->required();
  sub.add_option("--tls-key", o->tls_key, "Server private key (PEM)")
      ->type_name("FILE")
      ->required();
  sub.add_option("--tls-ca", o->tls_ca, "CA that signs the sidecars' certificates (PEM)")
      ->type_name("FILE")
      ->required();
  sub.add_option("--trust-domain", o->trust_domain, "SPIFFE trust domain of the sidecars")
      ->capture_default_str();
  sub.add_option("--debounce-ms", o->debounce_ms, "Wait this long after a change before reloading")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  sub.add_option("--max-manifest-bytes", o->max_manifest_bytes,
                 "Refuse (unread) a manifest file larger than this; its last good objects stay")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  sub.add_option("--max-frame-bytes", o->max_frame_bytes,
                 "Close a sidecar stream whose frame header announces more than this")
      ->check(CLI::Range(uint32_t{64}, uint32_t{1} << 30))
      ->capture_default_str();
  sub.add_option("--max-buffered-bytes", o->max_buffered_bytes,
                 "Close the stream that would take the partial frames of all streams past this")
      ->check(CLI::Range(uint64_t{1} << 10, uint64_t{1} << 40))
      ->capture_default_str();
  sub.add_option("--frame-timeout-ms", o->frame_timeout_ms,
                 "Close a stream whose frame stays incomplete this long")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3600000}))
      ->capture_default_str();
  sub.add_option("--max-streams-per-identity", o->max_streams_per_identity,
                 "Streams one sidecar identity may hold; another closes its oldest")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1000}))
      ->capture_default_str();
  CLI::Option* csr_listen =
      sub.add_option("--csr-listen", o->csr_listen,
                     "Issue sidecars their pod certificates here (HTTPS with --tls-cert; "
                     "POST /picket.v1.Certificates/Sign); needs --kubeconfig or --in-cluster "
                     "and --ca-key; empty: off")
          ->type_name("HOST:PORT");
  sub.add_option("--ca-cert", o->ca_cert,
                 "CA certificate to sign sidecar certificates with, then its chain (PEM); "
                 "default: --tls-ca")
      ->type_name("FILE")
      ->needs(csr_listen);
  sub.add_option("--ca-key", o->ca_key, "The signing CA's private key (PEM)")
      ->type_name("FILE")
      ->needs(csr_listen);
  sub.add_option("--cert-validity-s", o->cert_validity_s,
                 "Lifetime of an issued sidecar certificate, in seconds")
      ->check(CLI::Range(uint64_t{1}, uint64_t{86400}))
      ->capture_default_str();
  sub.add_option("--csr-rate", o->csr_rate, "Certificate requests admitted per second, sustained")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  sub.add_option("--csr-burst", o->csr_burst, "... and at once")
      ->check(CLI::Range(1.0, 1e6))
      ->capture_default_str();
  sub.add_option("--csr-max-reviews", o->csr_max_reviews,
                 "TokenReviews in flight at once; more requests get 503")
      ->check(CLI::Range(uint64_t{1}, uint64_t{10000}))
      ->capture_default_str();
  sub.add_option("--unprotected-grace-ms", o->unprotected_grace_ms,
                 "A selected pod without a connected sidecar counts as unprotected after this")
      ->check(CLI::Range(uint64_t{0}, uint64_t{3600000}))
      ->capture_default_str();
}

base::Result<ServeOptions> ParseServeFlags(const std::vector<std::string>& args) {
  ServeOptions options;
  CLI::App app("picket-control serve", "serve");
  AddServeFlags(app, &options);
  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));
  } catch (const CLI::ParseError& e) {
    return std::unexpected(base::Error::Of(e.what()));
  }
  return options;
}

CommandRun AddServe(CLI::App& sub) {
  auto options = std::make_shared<ServeOptions>();
  AddServeFlags(sub, options.get());
  return [options](std::ostream& out, std::ostream& err) { return RunServe(*options, out, err); };
}

}  // namespace picket::control
