// control/ca.h — the control server's certificate authority: a sidecar's CSR in, its pod
// certificate out (BoringSSL X509 APIs).
//
// Owns: `CertificateAuthority`, the signing key and certificate (PEM files: what `picket-control
// certs` writes as ca.pem / ca-key.pem, or a user's own intermediate with its chain), and
// `Sign`: parses a PEM certificate signing request, verifies its self-signature, requires an
// ECDSA P-256 key, and signs a leaf for that key whose only subjectAltName is the URI it is given
// (the CSR's own subject and extensions are ignored: the caller decides who the key belongs to).
// The leaf: X.509 v3, a random 127-bit serial, an empty subject with a critical subjectAltName,
// basicConstraints CA:FALSE, keyUsage digitalSignature, extendedKeyUsage serverAuth+clientAuth,
// authorityKeyIdentifier; notBefore 5 minutes in the past (clock skew), notAfter = now +
// validity, never past the CA certificate's own notAfter.
//
// Refusals carry a stable reason (`CsrRefusal::reason`) for metrics and the client:
// "MalformedCsr" (not one PEM CERTIFICATE REQUEST, or not DER), "BadCsrSignature" (the CSR is not
// signed by its own key), "WeakKey" (RSA below 2048 bits), "UnsupportedKey" (any other key type or
// curve than ECDSA P-256).
//
// Immutable after Load(); Sign() is const and safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"

namespace picket::control {

struct CsrRefusal {
  std::string reason;   // "MalformedCsr", "BadCsrSignature", "WeakKey", "UnsupportedKey"
  std::string message;  // one line for the client and the log
};

// A parsed CSR whose self-signature and key passed: what Sign() certifies.
class VerifiedCsr {
 public:
  ~VerifiedCsr();
  VerifiedCsr(const VerifiedCsr&) = delete;
  VerifiedCsr& operator=(const VerifiedCsr&) = delete;

 private:
  friend class CertificateAuthority;
  struct Key;
  explicit VerifiedCsr(std::unique_ptr<Key> key);
  std::unique_ptr<Key> key_;
};

struct IssuedCertificate {
  std::string chain_pem;  // the leaf, then the CA file's certificates
  std::chrono::system_clock::time_point not_after;
};

class CertificateAuthority {
 public:
  // The CA certificate (its file may hold the chain above it: sent after the leaf) and key.
  // Errors name the file. The key must match the first certificate.
  [[nodiscard]] static base::Result<std::shared_ptr<const CertificateAuthority>> Load(
      const std::string& cert_file, const std::string& key_file);
  [[nodiscard]] static base::Result<std::shared_ptr<const CertificateAuthority>> FromPem(
      std::string_view cert_pem, std::string_view key_pem);
  ~CertificateAuthority();
  CertificateAuthority(const CertificateAuthority&) = delete;
  CertificateAuthority& operator=(const CertificateAuthority&) = delete;

  // Parse and check a CSR (before spending anything on who asks for it).
  [[nodiscard]] static std::expected<std::unique_ptr<VerifiedCsr>, CsrRefusal> VerifyCsr(
      std::string_view csr_pem);
  [[nodiscard]] std::expected<IssuedCertificate, CsrRefusal> Sign(
      const VerifiedCsr& csr, std::string_view uri, std::chrono::seconds validity) const;
  // Both.
  [[nodiscard]] std::expected<IssuedCertificate, CsrRefusal> Sign(
      std::string_view csr_pem, std::string_view uri, std::chrono::seconds validity) const;

  const std::string& chain_pem() const { return chain_pem_; }

 private:
  struct Impl;
  explicit CertificateAuthority(std::unique_ptr<Impl> impl, std::string chain_pem);
  std::unique_ptr<Impl> impl_;
  std::string chain_pem_;
};

// RFC 3339 UTC with seconds: "2026-12-07T12:00:00Z".
std::string Rfc3339(std::chrono::system_clock::time_point t);

}  // namespace picket::control
