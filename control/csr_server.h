// control/csr_server.h — per-pod certificate issuance: a sidecar's service-account token and CSR
// in, its pod's SPIFFE certificate out (control/PROTOCOL.md, "Certificate issuance").
//
// Owns: `CsrServer`, one HTTPS listener (server-authenticated TLS only: sidecars hold no
// certificate yet; net/http_server.h) serving `POST /picket.v1.Certificates/Sign`, and one HTTPS
// client to the Kubernetes API (net/http_client.h, the kubeconfig's or in-cluster credentials;
// control/source/kubeconfig.h) for TokenReviews. A request: `Authorization: Bearer <token>`,
// body `{"csr": "<PEM>"}`. In order:
//   1. a token bucket (`rate_per_s`, `burst`)                    → 503 RateLimited
//   2. a bearer token present                                     → 401 MissingToken
//   3. the body: JSON with a string "csr" (`max_body_bytes`)      → 400 BadRequest
//   4. the CSR parses, is self-signed, holds an ECDSA P-256 key   → 400 MalformedCsr,
//      (control/ca.h)                                               BadCsrSignature, WeakKey,
//                                                                   UnsupportedKey
//   5. at most `max_concurrent_reviews` TokenReviews in flight    → 503 TooManyReviews
//   6. TokenReview (authentication.k8s.io/v1, spec.audiences [`audience`]) answered 201
//                                                                 → 503 TokenReviewFailed
//   7. status.authenticated and `audience` in status.audiences    → 401 Unauthenticated
//   8. user system:serviceaccount:NS:SA with the extras authentication.kubernetes.io/pod-name
//      and /pod-uid (a pod-bound projected token)                 → 403 NoBoundPod
//   9. the pod NS/NAME in the control server's watched state      → 503 PodNotSynced
//  10. with the same uid (not a pod deleted and re-created)       → 403 PodUidMismatch
//  11. signed: the only URI SAN is spiffe://TD/ns/NS/pod/NAME, valid `validity` → 200
//      {"certificate_chain", "expires_at"}.
// Errors: {"code": HTTP status, "reason", "message"}; 503s carry Retry-After. Every refusal is
// counted by reason and logged (warn) with the pod when known; issuance is logged at debug.
// The certificate names whoever the token's pod is, never what the CSR asks for.
//
// Loop-thread only. Close() and run the loop until `done` before destroying.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/error.h"
#include "control/ca.h"
#include "control/source/kubeconfig.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/tls.h"

namespace picket::control {

inline constexpr std::string_view kSignPath = "/picket.v1.Certificates/Sign";

struct CsrServerOptions {
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 15014;
  std::string trust_domain = "cluster.local";
  std::string audience = "picket";
  std::chrono::seconds validity{24 * 3600};  // at most 24 h
  size_t max_body_bytes = 16 << 10;          // a P-256 CSR is under 1 KiB
  size_t max_concurrent_reviews = 64;
  double rate_per_s = 200;  // issuances admitted per second, sustained
  double burst = 400;       // ... and at once
  uint64_t review_timeout_ms = 10'000;
  size_t max_connections = 1024;
};

struct CsrCounters {
  uint64_t issued = 0;
  std::map<std::string, uint64_t> refused;  // by reason
  uint64_t reviews = 0;                     // TokenReviews sent
  size_t reviews_in_flight = 0;
};

class CsrServer {
 public:
  // The uid of pod NS/NAME in the watched state, or nullopt when it is not there.
  using PodUid =
      std::function<std::optional<std::string>(const std::string& ns, const std::string& name)>;

  // `server_tls`: a server-only context (net::TlsContext::CreateServerOnly) with the control
  // server's certificate. `api`: how to reach the Kubernetes API for TokenReviews.
  [[nodiscard]] static base::Result<std::unique_ptr<CsrServer>> Create(
      uv_loop_t* loop, CsrServerOptions options, std::shared_ptr<net::TlsContext> server_tls,
      std::shared_ptr<const CertificateAuthority> ca, source::KubeConfig api, PodUid pod_uid);
  ~CsrServer();
  CsrServer(const CsrServer&) = delete;
  CsrServer& operator=(const CsrServer&) = delete;

  uint16_t port() const { return http_->port(); }
  const CsrCounters& counters() const { return counters_; }
  const CsrServerOptions& options() const { return options_; }
  void Close(std::function<void()> done);

 private:
  CsrServer(uv_loop_t* loop, CsrServerOptions options,
            std::shared_ptr<const CertificateAuthority> ca, source::KubeConfig api, PodUid pod_uid);
  void OnSign(const net::HttpRequest& request, net::HttpResponder respond);
  void OnReview(base::Result<net::HttpClientResponse> result,
                std::shared_ptr<const VerifiedCsr> csr, const net::HttpResponder& respond);
  net::HttpResponse Refuse(int code, const std::string& reason, const std::string& message,
                           const std::string& pod = {});
  bool TakeRateToken();

  uv_loop_t* loop_;
  CsrServerOptions options_;
  std::shared_ptr<const CertificateAuthority> ca_;
  source::KubeConfig api_;
  source::BearerToken api_token_;
  PodUid pod_uid_;
  std::unique_ptr<net::HttpServer> http_;
  std::unique_ptr<net::HttpClient> client_;
  CsrCounters counters_;
  double bucket_ = 0;
  uint64_t bucket_at_ms_ = 0;
  bool closed_ = false;
};

}  // namespace picket::control
