// control/ca.cc — see ca.h.
#include "control/ca.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "net/tls.h"
#include "net/x509.h"

namespace picket::control {
namespace {

using PkeyPtr = bssl::UniquePtr<EVP_PKEY>;
using X509Ptr = bssl::UniquePtr<X509>;
using ReqPtr = bssl::UniquePtr<X509_REQ>;
using BioPtr = bssl::UniquePtr<BIO>;

constexpr long kBackdateSeconds = 300;  // tolerate this much clock skew at the peer

std::unexpected<CsrRefusal> Refuse(std::string reason, std::string message) {
  ERR_clear_error();
  return std::unexpected(CsrRefusal{std::move(reason), std::move(message)});
}

// The key check: ECDSA P-256 only.
std::expected<void, CsrRefusal> CheckKey(EVP_PKEY* key) {
  switch (EVP_PKEY_id(key)) {
    case EVP_PKEY_EC: {
      const EC_GROUP* group = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key));
      const int nid = group != nullptr ? EC_GROUP_get_curve_name(group) : NID_undef;
      if (nid == NID_X9_62_prime256v1) return {};
      return Refuse("UnsupportedKey", std::string("csr: key: the curve ") +
                                          (nid == NID_undef ? "(unnamed)" : OBJ_nid2sn(nid)) +
                                          " is not supported; use ECDSA P-256 (prime256v1)");
    }
    case EVP_PKEY_RSA: {
      const unsigned bits = EVP_PKEY_bits(key);
      if (bits < 2048) {
        return Refuse("WeakKey", "csr: key: RSA " + std::to_string(bits) +
                                     " bits is too weak; use ECDSA P-256");
      }
      return Refuse("UnsupportedKey", "csr: key: RSA " + std::to_string(bits) +
                                          " bits is not supported; use ECDSA P-256");
    }
    default:
      return Refuse("UnsupportedKey", "csr: key: type " + std::to_string(EVP_PKEY_id(key)) +
                                          " is not supported; use ECDSA P-256");
  }
}

}  // namespace

struct VerifiedCsr::Key {
  PkeyPtr key;
};

VerifiedCsr::VerifiedCsr(std::unique_ptr<Key> key) : key_(std::move(key)) {}
VerifiedCsr::~VerifiedCsr() = default;

struct CertificateAuthority::Impl {
  X509Ptr cert;
  PkeyPtr key;
  time_t not_after = 0;
};

CertificateAuthority::CertificateAuthority(std::unique_ptr<Impl> impl, std::string chain_pem)
    : impl_(std::move(impl)), chain_pem_(std::move(chain_pem)) {}

CertificateAuthority::~CertificateAuthority() = default;

base::Result<std::shared_ptr<const CertificateAuthority>> CertificateAuthority::Load(
    const std::string& cert_file, const std::string& key_file) {
  auto cert = net::ReadPemFile(cert_file);
  if (!cert) return std::unexpected(cert.error());
  auto key = net::ReadPemFile(key_file);
  if (!key) return std::unexpected(key.error());
  auto ca = FromPem(*cert, *key);
  if (!ca) {
    base::Error e = ca.error();
    e.file = cert_file + " / " + key_file;
    return std::unexpected(std::move(e));
  }
  return ca;
}

base::Result<std::shared_ptr<const CertificateAuthority>> CertificateAuthority::FromPem(
    std::string_view cert_pem, std::string_view key_pem) {
  auto impl = std::make_unique<Impl>();
  BioPtr cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  impl->cert.reset(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!impl->cert) {
    return std::unexpected(base::Error::Of(net::TlsErrorString("CA certificate (PEM)")));
  }
  BioPtr key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  impl->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!impl->key) return std::unexpected(base::Error::Of(net::TlsErrorString("CA key (PEM)")));
  if (X509_check_private_key(impl->cert.get(), impl->key.get()) != 1) {
    return std::unexpected(
        base::Error::Of(net::TlsErrorString("the CA key does not match the CA certificate")));
  }
  if (X509_check_ca(impl->cert.get()) == 0) {
    return std::unexpected(base::Error::Of("the CA certificate is not a CA (basicConstraints)"));
  }
  int days = 0, seconds = 0;  // notAfter - now
  if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(impl->cert.get())) != 1) {
    return std::unexpected(base::Error::Of("the CA certificate's notAfter does not parse"));
  }
  impl->not_after = time(nullptr) + static_cast<time_t>(days) * 86400 + seconds;
  std::string chain(cert_pem);
  if (!chain.empty() && chain.back() != '\n') chain += '\n';
  return std::shared_ptr<const CertificateAuthority>(
      new CertificateAuthority(std::move(impl), std::move(chain)));
}

std::expected<IssuedCertificate, CsrRefusal> CertificateAuthority::Sign(
    std::string_view csr_pem, std::string_view uri, std::chrono::seconds validity) const {
  auto csr = VerifyCsr(csr_pem);
  if (!csr) return std::unexpected(csr.error());
  return Sign(**csr, uri, validity);
}

std::expected<std::unique_ptr<VerifiedCsr>, CsrRefusal> CertificateAuthority::VerifyCsr(
    std::string_view csr_pem) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE REQUEST-----";
  const size_t begin = csr_pem.find(kBegin);
  if (begin == std::string_view::npos ||
      csr_pem.find(kBegin, begin + 1) != std::string_view::npos) {
    return Refuse("MalformedCsr", "csr: expected one PEM block \"CERTIFICATE REQUEST\"");
  }
  BioPtr bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) {
    return Refuse("MalformedCsr", "csr: " + net::TlsErrorString("not a PKCS#10 request"));
  }
  PkeyPtr key(X509_REQ_get_pubkey(req.get()));
  if (!key) return Refuse("MalformedCsr", "csr: key: " + net::TlsErrorString("unreadable"));
  if (auto ok = CheckKey(key.get()); !ok) return std::unexpected(ok.error());
  if (X509_REQ_verify(req.get(), key.get()) != 1) {
    return Refuse("BadCsrSignature", "csr: the request is not signed by its own key");
  }
  auto k = std::make_unique<VerifiedCsr::Key>();
  k->key = std::move(key);
  return std::unique_ptr<VerifiedCsr>(new VerifiedCsr(std::move(k)));
}

std::expected<IssuedCertificate, CsrRefusal> CertificateAuthority::Sign(
    const VerifiedCsr& csr, std::string_view uri, std::chrono::seconds validity) const {
  EVP_PKEY* key = csr.key_->key.get();

  time_t now = time(nullptr);
  time_t not_after = now + static_cast<time_t>(validity.count());
  if (not_after > impl_->not_after) not_after = impl_->not_after;  // never outlive the CA
  X509Ptr cert(X509_new());
  uint8_t serial_bytes[16];
  RAND_bytes(serial_bytes, sizeof serial_bytes);
  serial_bytes[0] &= 0x7F;  // positive
  BIGNUM* bn = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  const bool ok =
      cert && serial != nullptr && X509_set_version(cert.get(), X509_VERSION_3) &&
      X509_set_serialNumber(cert.get(), serial) &&
      X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, -kBackdateSeconds, &now) != nullptr &&
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after) != nullptr &&
      X509_set_issuer_name(cert.get(), X509_get_subject_name(impl_->cert.get())) &&
      X509_set_pubkey(cert.get(), key) &&
      net::AddV3Extension(cert.get(), impl_->cert.get(), NID_basic_constraints,
                          "critical,CA:FALSE") &&
      net::AddV3Extension(cert.get(), impl_->cert.get(), NID_key_usage,
                          "critical,digitalSignature") &&
      net::AddV3Extension(cert.get(), impl_->cert.get(), NID_ext_key_usage,
                          "serverAuth,clientAuth") &&
      net::AddV3Extension(cert.get(), impl_->cert.get(), NID_authority_key_identifier, "keyid") &&
      net::AddV3Extension(cert.get(), impl_->cert.get(), NID_subject_alt_name,
                          "critical,URI:" + std::string(uri)) &&
      X509_sign(cert.get(), impl_->key.get(), EVP_sha256()) != 0;
  ASN1_INTEGER_free(serial);
  if (!ok) return Refuse("SigningFailed", net::TlsErrorString("signing the certificate"));
  return IssuedCertificate{net::CertificatePem(cert.get()) + chain_pem_,
                           std::chrono::system_clock::from_time_t(not_after)};
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  const time_t secs = std::chrono::system_clock::to_time_t(t);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace picket::control
