// net/tls.cc — see tls.h.
#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

namespace picket::net {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr MemBio(std::string_view pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

base::Result<std::vector<X509*>> ReadCerts(std::string_view pem, std::string_view what) {
  BioPtr bio = MemBio(pem);
  std::vector<X509*> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.push_back(cert);
  }
  // The loop ends with a "no start line" error at end of input; that one is expected.
  ERR_clear_error();
  if (certs.empty()) {
    return std::unexpected(base::Error::Of(std::string(what) + ": no PEM certificate found"));
  }
  return certs;
}

bool IsIpLiteral(std::string_view name) {
  std::string s(name);
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

base::Error TlsError(std::string_view what) { return base::Error::Of(TlsErrorString(what)); }

// Our certificate chain (leaf first) and its private key.
base::Result<void> UseCertificateAndKey(SSL_CTX* ctx, std::string_view chain_pem,
                                        std::string_view key_pem) {
  auto chain = ReadCerts(chain_pem, "certificate");
  if (!chain) return std::unexpected(chain.error());
  bool ok = SSL_CTX_use_certificate(ctx, (*chain)[0]) == 1;
  for (size_t i = 1; ok && i < chain->size(); ++i) {
    ok = SSL_CTX_add1_chain_cert(ctx, (*chain)[i]) == 1;
  }
  for (X509* c : *chain) X509_free(c);
  if (!ok) return std::unexpected(TlsError("certificate"));

  BioPtr key_bio = MemBio(key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) return std::unexpected(TlsError("private key"));
  ok = SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  if (!ok || SSL_CTX_check_private_key(ctx) != 1) {
    return std::unexpected(TlsError("private key does not match the certificate"));
  }

  return {};
}

}  // namespace

std::string TlsErrorString(std::string_view what) {
  std::string out(what);
  bool first = true;
  while (uint32_t e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += first ? ": " : "; ";
    out += buf;
    first = false;
  }
  return out;
}

base::Result<std::string> ReadPemFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  auto at_file = [&](std::string reason) {
    base::Error e = base::Error::Of(std::move(reason));
    e.file = path;
    return std::unexpected(std::move(e));
  };
  if (!in) return at_file("cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return at_file("read error");
  return ss.str();
}

base::Result<TlsCredentials> LoadTlsCredentials(const std::string& cert_file,
                                                const std::string& key_file,
                                                const std::string& ca_file) {
  TlsCredentials c;
  auto cert = ReadPemFile(cert_file);
  if (!cert) return std::unexpected(cert.error());
  auto key = ReadPemFile(key_file);
  if (!key) return std::unexpected(key.error());
  auto ca = ReadPemFile(ca_file);
  if (!ca) return std::unexpected(ca.error());
  c.cert_chain_pem = std::move(*cert);
  c.private_key_pem = std::move(*key);
  c.ca_pem = std::move(*ca);
  return c;
}

base::Result<std::shared_ptr<TlsContext>> TlsContext::Create(TlsRole role,
                                                             const TlsCredentials& credentials) {
  SSL_CTX* raw = SSL_CTX_new(TLS_method());
  if (raw == nullptr) return std::unexpected(TlsError("SSL_CTX_new"));
  std::shared_ptr<TlsContext> context(new TlsContext(raw, role));
  SSL_CTX* ctx = context->ctx();
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
    return std::unexpected(TlsError("setting TLS 1.3"));
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);

  if (auto ok = UseCertificateAndKey(ctx, credentials.cert_chain_pem, credentials.private_key_pem);
      !ok) {
    return std::unexpected(ok.error());
  }
  bool ok = true;
  auto cas = ReadCerts(credentials.ca_pem, "CA");
  if (!cas) return std::unexpected(cas.error());
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (X509* c : *cas) {
    ok = ok && X509_STORE_add_cert(store, c) == 1;
    X509_free(c);
  }
  if (!ok) return std::unexpected(TlsError("CA"));
  // Mutual authentication: both sides must present a certificate that chains to the CA.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return context;
}

base::Result<std::shared_ptr<TlsContext>> TlsContext::CreateServerOnly(
    std::string_view cert_chain_pem, std::string_view private_key_pem) {
  SSL_CTX* raw = SSL_CTX_new(TLS_method());
  if (raw == nullptr) return std::unexpected(TlsError("SSL_CTX_new"));
  std::shared_ptr<TlsContext> context(new TlsContext(raw, TlsRole::kServer));
  if (!SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION)) {
    return std::unexpected(TlsError("setting TLS 1.2"));
  }
  SSL_CTX_set_options(raw, SSL_OP_NO_TICKET);
  if (auto ok = UseCertificateAndKey(raw, cert_chain_pem, private_key_pem); !ok) {
    return std::unexpected(ok.error());
  }
  SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  return context;
}

base::Result<std::shared_ptr<TlsContext>> TlsContext::CreateClient(std::string_view ca_pem,
                                                                   std::string_view cert_chain_pem,
                                                                   std::string_view private_key_pem,
                                                                   bool insecure_skip_verify) {
  SSL_CTX* raw = SSL_CTX_new(TLS_method());
  if (raw == nullptr) return std::unexpected(TlsError("SSL_CTX_new"));
  std::shared_ptr<TlsContext> context(new TlsContext(raw, TlsRole::kClient));
  if (!SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION)) {
    return std::unexpected(TlsError("setting TLS 1.2"));
  }
  if (!cert_chain_pem.empty()) {
    if (auto ok = UseCertificateAndKey(raw, cert_chain_pem, private_key_pem); !ok) {
      return std::unexpected(ok.error());
    }
  }
  if (insecure_skip_verify) {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
    return context;
  }
  auto cas = ReadCerts(ca_pem, "CA");
  if (!cas) return std::unexpected(cas.error());
  bool ok = true;
  X509_STORE* store = SSL_CTX_get_cert_store(raw);
  for (X509* c : *cas) {
    ok = ok && X509_STORE_add_cert(store, c) == 1;
    X509_free(c);
  }
  if (!ok) return std::unexpected(TlsError("CA"));
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  return context;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

base::Result<std::unique_ptr<TlsEngine>> TlsEngine::Create(std::shared_ptr<TlsContext> context,
                                                           std::string_view verify_name) {
  SSL* ssl = SSL_new(context->ctx());
  if (ssl == nullptr) return std::unexpected(TlsError("SSL_new"));
  std::unique_ptr<TlsEngine> engine(new TlsEngine(context, ssl));
  if (context->role() == TlsRole::kClient) {
    SSL_set_connect_state(ssl);
    if (!verify_name.empty()) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      const std::string name(verify_name);
      const int rc = IsIpLiteral(name)
                         ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, name.data(), name.size());
      if (rc != 1) return std::unexpected(TlsError("server name " + name));
      if (!IsIpLiteral(name)) SSL_set_tlsext_host_name(ssl, name.c_str());
    }
  } else {
    SSL_set_accept_state(ssl);
  }
  return engine;
}

TlsEngine::TlsEngine(std::shared_ptr<TlsContext> context, SSL* ssl)
    : context_(std::move(context)), ssl_(ssl) {
  rbio_ = BIO_new(BIO_s_mem());
  wbio_ = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, rbio_, wbio_);
}

TlsEngine::~TlsEngine() { SSL_free(ssl_); }

void TlsEngine::FeedCiphertext(std::string_view bytes) {
  BIO_write(rbio_, bytes.data(), static_cast<int>(bytes.size()));
}

base::Result<void> TlsEngine::Process(std::string& plaintext, bool& peer_closed) {
  peer_closed = false;
  if (!handshake_done_) {
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      const int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return {};
      const long verify = SSL_get_verify_result(ssl_);
      std::string reason = TlsErrorString("TLS handshake failed");
      if (verify != X509_V_OK) {
        reason += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
      }
      return std::unexpected(base::Error::Of(reason));
    }
    handshake_done_ = true;
    if (auto ok = FlushPending(); !ok) return ok;
  }
  char buf[16384];
  while (true) {
    const int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      plaintext.append(buf, static_cast<size_t>(n));
      continue;
    }
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return {};
    if (err == SSL_ERROR_ZERO_RETURN) {
      peer_closed = true;
      return {};
    }
    return std::unexpected(TlsError("TLS read failed"));
  }
}

base::Result<void> TlsEngine::Write(std::string_view plaintext) {
  if (!handshake_done_ || !pending_plaintext_.empty()) {
    pending_plaintext_.append(plaintext);
    return handshake_done_ ? FlushPending() : base::Result<void>{};
  }
  // Common case: encrypt straight from the caller's buffer (no copy of large responses).
  return EncryptAll(plaintext);
}

base::Result<void> TlsEngine::EncryptAll(std::string_view plaintext) {
  constexpr size_t kRecord = 16 * 1024;  // TLS's maximum record plaintext
  if (plaintext.size() > kRecord) {
    ciphertext_.reserve(ciphertext_.size() + plaintext.size() + plaintext.size() / kRecord * 64 +
                        64);
  }
  size_t offset = 0;
  while (offset < plaintext.size()) {
    const size_t chunk = std::min(plaintext.size() - offset, kRecord);
    const int n = SSL_write(ssl_, plaintext.data() + offset, static_cast<int>(chunk));
    if (n <= 0) return std::unexpected(TlsError("TLS write failed"));
    offset += static_cast<size_t>(n);
    DrainWbio();
  }
  return {};
}

base::Result<void> TlsEngine::FlushPending() {
  std::string pending = std::exchange(pending_plaintext_, {});
  return EncryptAll(pending);
}

void TlsEngine::DrainWbio() {
  const size_t pending = BIO_ctrl_pending(wbio_);
  if (pending == 0) return;
  const size_t at = ciphertext_.size();
  ciphertext_.resize(at + pending);
  const int n = BIO_read(wbio_, ciphertext_.data() + at, static_cast<int>(pending));
  ciphertext_.resize(at + (n > 0 ? static_cast<size_t>(n) : 0));
}

void TlsEngine::Shutdown() {
  if (handshake_done_) SSL_shutdown(ssl_);
}

std::string TlsEngine::TakeCiphertext() {
  DrainWbio();
  return std::exchange(ciphertext_, {});
}

std::vector<std::string> TlsEngine::PeerUriSans() const {
  std::vector<std::string> uris;
  X509* cert = SSL_get_peer_certificate(ssl_);
  if (cert == nullptr) return uris;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (size_t i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type != GEN_URI) continue;
      const ASN1_STRING* s = name->d.uniformResourceIdentifier;
      uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                        static_cast<size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
  return uris;
}

}  // namespace picket::net
