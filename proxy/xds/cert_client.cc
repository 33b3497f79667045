// proxy/xds/cert_client.cc — see cert_client.h.
#include "proxy/xds/cert_client.h"

#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include "base/json.h"
#include "net/host_port.h"
#include "net/tls.h"
#include "net/x509.h"
#include "proxy/xds/xds_client.h"

namespace picket::proxy::xds {
namespace {

constexpr std::string_view kSignPath = "/picket.v1.Certificates/Sign";

base::Result<std::string> ReadToken(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected(base::Error::Of("token file " + path + ": cannot open"));
  std::string token(max_bytes + 1, '\0');
  in.read(token.data(), static_cast<std::streamsize>(token.size()));
  token.resize(static_cast<size_t>(in.gcount()));
  if (token.size() > max_bytes) {
    return std::unexpected(base::Error::Of("token file " + path + ": larger than " +
                                           std::to_string(max_bytes) + " bytes"));
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
    token.pop_back();
  if (token.empty()) return std::unexpected(base::Error::Of("token file " + path + ": empty"));
  return token;
}

}  // namespace

base::Result<std::pair<std::string, std::string>> MakeKeyAndCsr() {
  EC_KEY* ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  EVP_PKEY* key = EVP_PKEY_new();
  X509_REQ* req = X509_REQ_new();
  BIO* key_bio = BIO_new(BIO_s_mem());
  BIO* req_bio = BIO_new(BIO_s_mem());
  const bool ok = ec != nullptr && key != nullptr && req != nullptr && key_bio != nullptr &&
                  req_bio != nullptr && EC_KEY_generate_key(ec) &&
                  EVP_PKEY_assign_EC_KEY(key, ec) && (ec = nullptr, true) &&
                  X509_REQ_set_version(req, 0) && X509_REQ_set_pubkey(req, key) &&
                  X509_REQ_sign(req, key, EVP_sha256()) != 0 &&
                  PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr) &&
                  PEM_write_bio_X509_REQ(req_bio, req);
  std::pair<std::string, std::string> out;
  if (ok) out = {net::MemBioText(key_bio), net::MemBioText(req_bio)};
  EC_KEY_free(ec);
  EVP_PKEY_free(key);
  X509_REQ_free(req);
  BIO_free(key_bio);
  BIO_free(req_bio);
  if (!ok) return std::unexpected(base::Error::Of(net::TlsErrorString("key and CSR")));
  return out;
}

std::optional<std::chrono::system_clock::time_point> ParseRfc3339Utc(std::string_view text) {
  if (text.size() != 20 || text[19] != 'Z') return std::nullopt;
  struct tm tm {};
  const std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

base::Result<std::unique_ptr<CertClient>> CertClient::Create(uv_loop_t* loop,
                                                             CertClientOptions options,
                                                             OnIdentity on_identity) {
  auto hp = net::SplitHostPort(options.address);
  if (!hp) return std::unexpected(base::Error::Of(hp.error()).Context("csr address"));
  if (options.token_file.empty()) {
    return std::unexpected(base::Error::Of("a token file is required"));
  }
  auto tls = net::TlsContext::CreateClient(options.ca_pem);
  if (!tls) return std::unexpected(std::move(tls.error()).Context("csr CA bundle"));
  std::unique_ptr<CertClient> c(new CertClient(loop, std::move(options), std::move(on_identity)));
  net::HttpClientOptions http;
  http.host = hp->first;
  http.port = hp->second;
  http.tls = std::move(*tls);
  http.verify_name = c->options_.server_name;
  http.response_timeout_ms = c->options_.request_timeout_ms;
  http.connect_timeout_ms = std::min<uint64_t>(c->options_.request_timeout_ms, 10'000);
  http.max_idle_connections = 1;
  http.max_body_bytes = 1 << 20;  // a chain of a few certificates
  c->client_ = std::make_unique<net::HttpClient>(loop, std::move(http));
  return c;
}

CertClient::CertClient(uv_loop_t* loop, CertClientOptions options, OnIdentity on_identity)
    : loop_(loop),
      options_(std::move(options)),
      on_identity_(std::move(on_identity)),
      random_(std::random_device{}()) {
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

CertClient::~CertClient() { Close(); }

void CertClient::Close() {
  if (closed_) return;
  closed_ = true;
  if (client_) client_->Close();
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void CertClient::Start() {
  if (!closed_) Attempt();
}

void CertClient::Schedule(uint64_t delay_ms) {
  status_.next_attempt_in_ms = delay_ms;
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<CertClient*>(t->data)->Attempt(); }, delay_ms, 0);
}

void CertClient::Fail(std::string error, uint64_t floor_ms) {
  ++status_.failures;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const uint64_t delay =
      std::max(floor_ms, BackoffDelayMs(failed_attempts_++, options_.initial_backoff_ms,
                                        options_.max_backoff_ms, u(random_)));
  spdlog::warn("certificate: {}; retrying in {} ms", error, delay);
  status_.last_error = std::move(error);
  Schedule(delay);
}

void CertClient::Attempt() {
  if (closed_) return;
  auto token = ReadToken(options_.token_file, options_.max_token_bytes);
  if (!token) return Fail(token.error().ToString());
  auto made = MakeKeyAndCsr();
  if (!made) return Fail(made.error().ToString());
  base::JsonWriter w;
  w.BeginObject().Member("csr", made->second).EndObject();
  net::HttpClientRequest request;
  request.method = "POST";
  request.target = std::string(kSignPath);
  request.headers = {{"Authorization", "Bearer " + *token},
                     {"Content-Type", "application/json"},
                     {"Accept", "application/json"}};
  request.body = w.Take();
  client_->Send(std::move(request),
                [this, key = std::move(made->first)](base::Result<net::HttpClientResponse> r) {
                  OnResponse(std::move(r), key);
                });
}

void CertClient::OnResponse(base::Result<net::HttpClientResponse> result, std::string key_pem) {
  if (closed_) return;
  if (!result) return Fail(result.error().ToString());
  auto doc = base::ParseJson(result->body);
  auto member = [&](const char* key) {
    if (!doc) return std::string();
    auto v = doc->root().Find(key);
    return v ? std::string(v->AsString().value_or("")) : std::string();
  };
  if (result->status != 200) {
    uint64_t floor_ms = 0;
    if (auto retry = result->Header("retry-after")) {
      uint64_t s = 0;
      for (char ch : *retry) s = ch >= '0' && ch <= '9' && s < 3600 ? s * 10 + (ch - '0') : s;
      floor_ms = s * 1000;
    }
    return Fail("HTTP " + std::to_string(result->status) + " " + member("reason") + ": " +
                    member("message"),
                floor_ms);
  }
  const std::string chain = member("certificate_chain");
  const auto expires_at = ParseRfc3339Utc(member("expires_at"));
  if (chain.empty() || !expires_at) {
    return Fail("the response has no certificate_chain or expires_at (RFC 3339)");
  }
  // Usable as a client identity? (chain parses, the key matches it)
  if (auto ctx = net::TlsContext::Create(net::TlsRole::kClient, {chain, key_pem, options_.ca_pem});
      !ctx) {
    return Fail("the issued certificate is not usable: " + ctx.error().ToString());
  }
  failed_attempts_ = 0;
  ++status_.issued;
  status_.expires_at = *expires_at;
  status_.last_error.clear();
  const auto now = std::chrono::system_clock::now();
  const auto life_ms = std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(*expires_at - now).count());
  Schedule(static_cast<uint64_t>(life_ms) * 2 / 3);  // renew at two thirds of its life
  spdlog::info("certificate: issued, valid until {} s from now; renewing in {} ms", life_ms / 1000,
               status_.next_attempt_in_ms);
  on_identity_(IssuedIdentity{chain, std::move(key_pem), *expires_at});
}

}  // namespace picket::proxy::xds
