// proxy/xds/cert_client.h — the sidecar's side of per-pod certificate issuance
// (control/PROTOCOL.md §7.1): its pod's projected service-account token in, its certificate out,
// renewed before it expires.
//
// Owns: `CertClient`: one HTTPS client (net/http_client.h; the control server verified with the
// CA bundle, no client certificate) to the control server's --csr-listen address. Each attempt
// re-reads the token file (kubelet rotates it), makes a fresh ECDSA P-256 key in memory (it
// never leaves the process), sends `POST /picket.v1.Certificates/Sign` with a CSR for it, and
// hands the chain and key to `on_identity`. The next attempt is due at two thirds of the
// certificate's life (counted from when it arrived); a failed attempt is retried with jittered
// exponential backoff (`initial_backoff_ms` .. `max_backoff_ms`), for as long as it takes: the
// caller keeps what it has meanwhile (an expired certificate still holds an established stream;
// new connections fail until a new one arrives). A 503's Retry-After is honoured as a floor.
//
// Loop-thread only. Close() before destroying; no callback runs after Close().
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "base/error.h"
#include "net/http_client.h"

namespace picket::proxy::xds {

struct CertClientOptions {
  std::string address;      // "host:port" of the control server's --csr-listen
  std::string server_name;  // the name its certificate must carry; default: the host
  std::string ca_pem;       // the control server's CA bundle
  std::string token_file;   // the projected service-account token (audience "picket")
  uint64_t initial_backoff_ms = 500;
  uint64_t max_backoff_ms = 30'000;
  uint64_t request_timeout_ms = 15'000;
  size_t max_token_bytes = 64 << 10;
};

struct IssuedIdentity {
  std::string chain_pem;  // leaf first
  std::string key_pem;
  std::chrono::system_clock::time_point expires_at;
};

struct CertClientStatus {
  uint64_t issued = 0;
  uint64_t failures = 0;
  std::string last_error;
  std::chrono::system_clock::time_point expires_at{};  // of the current certificate
  uint64_t next_attempt_in_ms = 0;
};

class CertClient {
 public:
  using OnIdentity = std::function<void(const IssuedIdentity&)>;

  [[nodiscard]] static base::Result<std::unique_ptr<CertClient>> Create(uv_loop_t* loop,
                                                                        CertClientOptions options,
                                                                        OnIdentity on_identity);
  ~CertClient();
  CertClient(const CertClient&) = delete;
  CertClient& operator=(const CertClient&) = delete;

  void Start();  // the first attempt, now
  void Close();
  const CertClientStatus& status() const { return status_; }

 private:
  CertClient(uv_loop_t* loop, CertClientOptions options, OnIdentity on_identity);
  void Attempt();
  void OnResponse(base::Result<net::HttpClientResponse> result, std::string key_pem);
  void Fail(std::string error, uint64_t floor_ms = 0);
  void Schedule(uint64_t delay_ms);

  uv_loop_t* loop_;
  CertClientOptions options_;
  OnIdentity on_identity_;
  std::unique_ptr<net::HttpClient> client_;
  uv_timer_t* timer_ = nullptr;
  uint32_t failed_attempts_ = 0;
  std::mt19937_64 random_;
  CertClientStatus status_;
  bool closed_ = false;
};

// A new ECDSA P-256 key (PKCS#8 PEM) and a CSR for it (PEM), subject empty.
[[nodiscard]] base::Result<std::pair<std::string, std::string>> MakeKeyAndCsr();

// "2026-12-07T12:00:00Z" (RFC 3339, UTC, whole seconds) → time point; nullopt otherwise.
std::optional<std::chrono::system_clock::time_point> ParseRfc3339Utc(std::string_view text);

}  // namespace picket::proxy::xds
