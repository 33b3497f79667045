// control/csr_server.cc — see csr_server.h.
#include "control/csr_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/json.h"
#include "control/certs.h"

namespace picket::control {
namespace {

constexpr std::string_view kExtraPodName = "authentication.kubernetes.io/pod-name";
constexpr std::string_view kExtraPodUid = "authentication.kubernetes.io/pod-uid";
constexpr std::string_view kUserPrefix = "system:serviceaccount:";

net::HttpResponse Json(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

// The first string of extra[key] (extra values are lists of strings).
std::optional<std::string> FirstExtra(const std::optional<base::JsonValue>& extra,
                                      std::string_view key) {
  if (!extra) return std::nullopt;
  auto values = extra->Find(key);
  if (!values) return std::nullopt;
  auto first = values->At(0);
  if (!first) return std::nullopt;
  auto s = first->AsString();
  if (!s || s->empty()) return std::nullopt;
  return std::string(*s);
}

}  // namespace

base::Result<std::unique_ptr<CsrServer>> CsrServer::Create(
    uv_loop_t* loop, CsrServerOptions options, std::shared_ptr<net::TlsContext> server_tls,
    std::shared_ptr<const CertificateAuthority> ca, source::KubeConfig api, PodUid pod_uid) {
  auto client_tls = net::TlsContext::CreateClient(api.ca_pem, api.client_cert_pem,
                                                  api.client_key_pem, api.insecure_skip_tls_verify);
  if (!client_tls) return std::unexpected(std::move(client_tls.error()).Context(api.describe));
  std::unique_ptr<CsrServer> s(
      new CsrServer(loop, std::move(options), std::move(ca), std::move(api), std::move(pod_uid)));
  net::HttpClientOptions http;
  http.host = s->api_.host;
  http.port = s->api_.port;
  http.tls = *client_tls;
  http.verify_name = s->api_.tls_server_name;
  http.response_timeout_ms = s->options_.review_timeout_ms;
  http.connect_timeout_ms = std::min<uint64_t>(s->options_.review_timeout_ms, 10'000);
  http.max_idle_connections = 16;
  http.max_body_bytes = 1 << 20;  // a TokenReview is a few KiB
  s->client_ = std::make_unique<net::HttpClient>(loop, std::move(http));

  net::HttpServerOptions server;
  server.tls = std::move(server_tls);
  server.limits.max_body_bytes = s->options_.max_body_bytes;
  server.limits.max_header_bytes = 16 << 10;  // a projected token is ~1 KiB
  server.max_connections = s->options_.max_connections;
  server.async_timeout_ms = s->options_.review_timeout_ms + 5'000;
  s->http_ = net::HttpServer::Create(loop, std::move(server));
  CsrServer* self = s.get();
  s->http_->HandleAsync(std::string(kSignPath), {"POST"},
                        [self](const net::HttpRequest& r, net::HttpResponder respond) {
                          self->OnSign(r, std::move(respond));
                        });
  if (auto listening = s->http_->Listen(s->options_.listen_host, s->options_.listen_port);
      !listening) {
    return std::unexpected(std::move(listening.error()).Context("--csr-listen"));
  }
  return s;
}

CsrServer::CsrServer(uv_loop_t* loop, CsrServerOptions options,
                     std::shared_ptr<const CertificateAuthority> ca, source::KubeConfig api,
                     PodUid pod_uid)
    : loop_(loop),
      options_(std::move(options)),
      ca_(std::move(ca)),
      api_(std::move(api)),
      api_token_(api_.token, api_.token_file),
      pod_uid_(std::move(pod_uid)),
      bucket_(options_.burst),
      bucket_at_ms_(uv_now(loop)) {}

CsrServer::~CsrServer() {
  if (client_) client_->Close();
}

void CsrServer::Close(std::function<void()> done) {
  closed_ = true;
  if (client_) client_->Close();  // pending reviews: their callbacks never run
  http_->Close(std::move(done));
}

bool CsrServer::TakeRateToken() {
  const uint64_t now = uv_now(loop_);
  bucket_ = std::min(options_.burst, bucket_ + static_cast<double>(now - bucket_at_ms_) *
                                                   options_.rate_per_s / 1e3);
  bucket_at_ms_ = now;
  if (bucket_ < 1) return false;
  bucket_ -= 1;
  return true;
}

net::HttpResponse CsrServer::Refuse(int code, const std::string& reason, const std::string& message,
                                    const std::string& pod) {
  ++counters_.refused[reason];
  spdlog::warn("certificate refused{}: {} {}: {}", pod.empty() ? "" : " for pod " + pod, code,
               reason, message);
  base::JsonWriter w;
  w.BeginObject().Member("code", code).Member("reason", reason).Member("message", message);
  w.EndObject();
  net::HttpResponse r = Json(code, w.Take());
  if (code == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

void CsrServer::OnSign(const net::HttpRequest& request, net::HttpResponder respond) {
  if (closed_) return;
  if (!TakeRateToken()) {
    return respond(Refuse(503, "RateLimited", "too many certificate requests; retry later"));
  }
  const std::string_view auth = request.Header("authorization").value_or("");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() || auth.substr(0, kBearer.size()) != kBearer) {
    return respond(Refuse(401, "MissingToken",
                          "Authorization: Bearer <service-account token> "
                          "is required"));
  }
  const std::string token(auth.substr(kBearer.size()));
  auto doc = base::ParseJson(request.body, {.max_bytes = options_.max_body_bytes, .max_depth = 4});
  if (!doc) {
    return respond(Refuse(400, "BadRequest", "body: " + doc.error().ToString()));
  }
  auto csr_value = doc->root().Find("csr");
  auto csr_text = csr_value ? csr_value->AsString() : std::nullopt;
  if (!doc->root().IsObject() || !csr_text) {
    return respond(Refuse(400, "BadRequest", "body: expected {\"csr\": \"<PEM>\"}"));
  }
  auto csr = CertificateAuthority::VerifyCsr(*csr_text);
  if (!csr) return respond(Refuse(400, csr.error().reason, csr.error().message));
  if (counters_.reviews_in_flight >= options_.max_concurrent_reviews) {
    return respond(Refuse(503, "TooManyReviews",
                          "too many token reviews in flight (" +
                              std::to_string(options_.max_concurrent_reviews) + "); retry later"));
  }
  auto api_token = api_token_.Get();
  if (!api_token) {
    return respond(
        Refuse(503, "TokenReviewFailed", "the API credentials: " + api_token.error().ToString()));
  }
  base::JsonWriter w;
  w.BeginObject()
      .Member("apiVersion", "authentication.k8s.io/v1")
      .Member("kind", "TokenReview")
      .Key("spec")
      .BeginObject()
      .Member("token", token)
      .Key("audiences")
      .BeginArray()
      .String(options_.audience)
      .EndArray()
      .EndObject()
      .EndObject();
  net::HttpClientRequest review;
  review.method = "POST";
  review.target = api_.path_prefix + "/apis/authentication.k8s.io/v1/tokenreviews";
  review.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  if (!api_token->empty()) review.headers.emplace_back("Authorization", "Bearer " + *api_token);
  review.body = w.Take();
  ++counters_.reviews;
  ++counters_.reviews_in_flight;
  std::shared_ptr<const VerifiedCsr> verified = std::move(*csr);
  client_->Send(std::move(review), [this, verified, respond = std::move(respond)](
                                       base::Result<net::HttpClientResponse> result) {
    --counters_.reviews_in_flight;
    OnReview(std::move(result), verified, respond);
  });
}

void CsrServer::OnReview(base::Result<net::HttpClientResponse> result,
                         std::shared_ptr<const VerifiedCsr> csr,
                         const net::HttpResponder& respond) {
  if (!result) {
    return respond(Refuse(503, "TokenReviewFailed", result.error().ToString()));
  }
  if (result->status == 401) api_token_.Invalidate();  // our API token may have rotated
  if (result->status != 201 && result->status != 200) {
    return respond(Refuse(503, "TokenReviewFailed",
                          "TokenReview: HTTP " + std::to_string(result->status) + ": " +
                              result->body.substr(0, 200)));
  }
  auto doc = base::ParseJson(result->body);
  if (!doc) {
    return respond(Refuse(503, "TokenReviewFailed", "TokenReview: " + doc.error().ToString()));
  }
  const auto status = doc->root().Find("status");
  const auto authenticated = status ? status->Find("authenticated") : std::nullopt;
  if (!authenticated || authenticated->AsBool() != true) {
    const auto error = status ? status->Find("error") : std::nullopt;
    const auto text = error ? error->AsString() : std::nullopt;
    return respond(
        Refuse(401, "Unauthenticated",
               "the token was not accepted: " + std::string(text.value_or("(no error given)"))));
  }
  bool audience_ok = false;
  if (auto audiences = status->Find("audiences")) {
    for (base::JsonValue a : audiences->Elements())
      audience_ok |= a.AsString() == options_.audience;
  }
  if (!audience_ok) {
    return respond(Refuse(401, "Unauthenticated",
                          "the token is not for audience \"" + options_.audience + "\""));
  }
  const auto user = status->Find("user");
  const auto username_value = user ? user->Find("username") : std::nullopt;
  const std::string username(username_value ? username_value->AsString().value_or("")
                                            : std::string_view());
  const auto extra = user ? user->Find("extra") : std::nullopt;
  const auto pod_name = FirstExtra(extra, kExtraPodName);
  const auto pod_uid = FirstExtra(extra, kExtraPodUid);
  std::string ns;
  if (username.starts_with(kUserPrefix)) {
    const std::string rest = username.substr(kUserPrefix.size());
    const size_t colon = rest.find(':');
    if (colon != std::string::npos && colon > 0) ns = rest.substr(0, colon);
  }
  if (ns.empty() || !pod_name || !pod_uid) {
    return respond(Refuse(403, "NoBoundPod",
                          "the token of \"" + username +
                              "\" is not a pod-bound service-account token (projected volume)"));
  }
  const std::string pod = ns + "/" + *pod_name;
  const std::optional<std::string> known_uid = pod_uid_(ns, *pod_name);
  if (!known_uid) {
    return respond(Refuse(503, "PodNotSynced",
                          "pod " + pod + " is not in the control server's state yet", pod));
  }
  if (*known_uid != *pod_uid) {
    return respond(Refuse(403, "PodUidMismatch",
                          "the token's pod " + pod + " (uid " + *pod_uid +
                              ") is not the pod of that name now (uid " + *known_uid + ")",
                          pod));
  }
  auto issued =
      ca_->Sign(*csr, SpiffePodUri(options_.trust_domain, ns, *pod_name), options_.validity);
  if (!issued) return respond(Refuse(503, issued.error().reason, issued.error().message, pod));
  ++counters_.issued;
  spdlog::debug("certificate issued for pod {} until {}", pod, Rfc3339(issued->not_after));
  base::JsonWriter w;
  w.BeginObject()
      .Member("certificate_chain", issued->chain_pem)
      .Member("expires_at", Rfc3339(issued->not_after))
      .EndObject();
  respond(Json(200, w.Take()));
}

}  // namespace picket::control
