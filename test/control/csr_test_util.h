// test/control/csr_test_util.h — certificate signing requests for tests of control/csr_server.h
// and control/ca.h: the keys a sidecar would use (ECDSA P-256) and the ones it must not (RSA 1024,
// RSA 2048, P-384), with a chosen subject URI, and a request whose signature does not match its
// key. BoringSSL APIs; any thread.
#pragma once

#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

namespace picket::testing {

enum class CsrKey { kP256, kP384, kRsa1024, kRsa2048 };

struct TestCsr {
  std::string pem;
  std::string key_pem;         // the private key (PKCS#8 PEM), for the TLS identity
  std::string public_key_der;  // SubjectPublicKeyInfo, to compare with the issued leaf's
};

inline std::string PublicKeyDer(EVP_PKEY* key) {
  uint8_t* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  std::string out(reinterpret_cast<char*>(der), len > 0 ? static_cast<size_t>(len) : 0);
  OPENSSL_free(der);
  return out;
}

inline EVP_PKEY* NewTestKey(CsrKey type) {
  EVP_PKEY* key = EVP_PKEY_new();
  if (type == CsrKey::kP256 || type == CsrKey::kP384) {
    EC_KEY* ec =
        EC_KEY_new_by_curve_name(type == CsrKey::kP256 ? NID_X9_62_prime256v1 : NID_secp384r1);
    EC_KEY_generate_key(ec);
    EVP_PKEY_assign_EC_KEY(key, ec);
  } else {
    RSA* rsa = RSA_new();
    BIGNUM* e = BN_new();
    BN_set_word(e, RSA_F4);
    RSA_generate_key_ex(rsa, type == CsrKey::kRsa1024 ? 1024 : 2048, e, nullptr);
    BN_free(e);
    EVP_PKEY_assign_RSA(key, rsa);
  }
  return key;
}

// A CSR for a new key of `type` asking (in its subject and SAN) for `uri`. With `forge`, the
// request's key is replaced after signing: its signature no longer verifies.
inline TestCsr MakeTestCsr(CsrKey type, const std::string& uri, bool forge = false) {
  EVP_PKEY* key = NewTestKey(type);
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_version(req, 0);
  const std::string cn = "asks-for-" + uri;
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "O", MBSTRING_UTF8,
                             reinterpret_cast<const uint8_t*>(cn.data()),
                             static_cast<int>(cn.size()), -1, 0);
  X509_REQ_set_pubkey(req, key);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  const std::string san = "URI:" + uri;
  sk_X509_EXTENSION_push(exts,
                         X509V3_EXT_nconf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str()));
  X509_REQ_add_extensions(req, exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_sign(req, key, EVP_sha256());
  TestCsr out;
  out.public_key_der = PublicKeyDer(key);
  {
    BIO* kbio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(kbio, key, nullptr, nullptr, 0, nullptr, nullptr);
    const uint8_t* kdata = nullptr;
    size_t klen = 0;
    BIO_mem_contents(kbio, &kdata, &klen);
    out.key_pem.assign(reinterpret_cast<const char*>(kdata), klen);
    BIO_free(kbio);
  }
  EVP_PKEY* other = nullptr;
  if (forge) {
    other = NewTestKey(type);
    X509_REQ_set_pubkey(req, other);
  }
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(bio, req);
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio, &data, &len);
  out.pem.assign(reinterpret_cast<const char*>(data), len);
  BIO_free(bio);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  EVP_PKEY_free(other);
  return out;
}

// The URI SANs and the public key of the first certificate of a PEM chain.
struct LeafInfo {
  std::vector<std::string> uris;
  std::string public_key_der;
  bool ok = false;
};

inline LeafInfo ReadLeaf(const std::string& chain_pem) {
  LeafInfo info;
  BIO* bio = BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return info;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (size_t i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_URI) {
      info.uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.ia5)),
                             ASN1_STRING_length(n->d.ia5));
    } else {
      info.uris.push_back("(another kind of name)");
    }
  }
  GENERAL_NAMES_free(names);
  EVP_PKEY* key = X509_get_pubkey(cert);
  info.public_key_der = PublicKeyDer(key);
  EVP_PKEY_free(key);
  X509_free(cert);
  info.ok = true;
  return info;
}

}  // namespace picket::testing
