// net/x509.h — PEM text and v3 extensions for the code that makes keys, CSRs and certificates
// (control/certs: `picket-control certs`; control/ca: per-pod issuance; proxy/xds/cert_client:
// the sidecar's key and CSR).
//
// Owns: reading a memory BIO out as text, a certificate or a private key as PEM, and adding one
// X.509 v3 extension from its OpenSSL config string. Handles are BoringSSL's own
// `bssl::UniquePtr<T>`. Pure functions; any thread.
#pragma once

#include <openssl/base.h>

#include <string>

namespace picket::net {

// Everything written to a memory BIO (BIO_s_mem), as one string.
std::string MemBioText(BIO* bio);
// "-----BEGIN CERTIFICATE-----…"; empty if BoringSSL fails to encode it.
std::string CertificatePem(X509* cert);
// "-----BEGIN PRIVATE KEY-----…" (unencrypted PKCS#8); empty if encoding fails.
std::string PrivateKeyPem(EVP_PKEY* key);
// Adds the extension `nid` = `value` (e.g. NID_key_usage, "critical,keyCertSign") to `cert`,
// issued by `issuer` (the same certificate when self-signed). False if BoringSSL refuses it.
bool AddV3Extension(X509* cert, X509* issuer, int nid, const std::string& value);

}  // namespace picket::net
