// control/certs.cc — see certs.h.
#include "control/certs.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "net/tls.h"
#include "net/x509.h"

namespace picket::control {
namespace {

using PkeyPtr = bssl::UniquePtr<EVP_PKEY>;
using X509Ptr = bssl::UniquePtr<X509>;
using BioPtr = bssl::UniquePtr<BIO>;

std::unexpected<base::Error> SslError(std::string_view what) {
  return std::unexpected(base::Error::Of(net::TlsErrorString(what)));
}

PkeyPtr NewKey() {
  EC_KEY* ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  if (ec == nullptr || !EC_KEY_generate_key(ec)) {
    EC_KEY_free(ec);
    return nullptr;
  }
  PkeyPtr key(EVP_PKEY_new());
  if (!key || !EVP_PKEY_assign_EC_KEY(key.get(), ec)) {
    EC_KEY_free(ec);
    return nullptr;
  }
  return key;
}

// A certificate with a random serial, the given subject CN, validity and public key.
X509Ptr NewCert(std::string_view common_name, int valid_days, EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3)) return nullptr;
  uint8_t serial_bytes[16];
  RAND_bytes(serial_bytes, sizeof serial_bytes);
  serial_bytes[0] &= 0x7F;  // positive
  BIGNUM* bn = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, nullptr);
  BN_free(bn);
  const bool serial_ok = serial != nullptr && X509_set_serialNumber(cert.get(), serial);
  ASN1_INTEGER_free(serial);
  if (!serial_ok) return nullptr;
  // Back-date by an hour to tolerate clock skew between machines.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(valid_days) * 86400);
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn(common_name);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const uint8_t*>(cn.data()),
                                  static_cast<int>(cn.size()), -1, 0) ||
      !X509_set_pubkey(cert.get(), key)) {
    return nullptr;
  }
  return cert;
}

base::Result<std::pair<X509Ptr, PkeyPtr>> ParsePair(const PemPair& pair) {
  BioPtr cert_bio(BIO_new_mem_buf(pair.cert_pem.data(), static_cast<int>(pair.cert_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return SslError("CA certificate");
  BioPtr key_bio(BIO_new_mem_buf(pair.key_pem.data(), static_cast<int>(pair.key_pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslError("CA key");
  return std::make_pair(std::move(cert), std::move(key));
}

}  // namespace

std::string SpiffePodUri(std::string_view trust_domain, std::string_view ns, std::string_view pod) {
  return "spiffe://" + std::string(trust_domain) + "/ns/" + std::string(ns) + "/pod/" +
         std::string(pod);
}

base::Result<PemPair> MakeCa(std::string_view common_name, int valid_days) {
  PkeyPtr key = NewKey();
  if (!key) return SslError("CA key generation");
  X509Ptr cert = NewCert(common_name, valid_days, key.get());
  if (!cert) return SslError("CA certificate");
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  if (!net::AddV3Extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE") ||
      !net::AddV3Extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !net::AddV3Extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash") ||
      !X509_sign(cert.get(), key.get(), EVP_sha256())) {
    return SslError("CA certificate");
  }
  return PemPair{net::CertificatePem(cert.get()), net::PrivateKeyPem(key.get())};
}

base::Result<PemPair> MakeLeaf(const PemPair& ca, const LeafSpec& spec) {
  auto issuer = ParsePair(ca);
  if (!issuer) return std::unexpected(issuer.error());
  auto& [ca_cert, ca_key] = *issuer;
  PkeyPtr key = NewKey();
  if (!key) return SslError("key generation");
  X509Ptr cert = NewCert(spec.common_name, spec.valid_days, key.get());
  if (!cert) return SslError("certificate");
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get()));
  std::string san;
  auto add = [&san](std::string_view kind, const std::string& value) {
    if (!san.empty()) san += ',';
    san.append(kind).append(":").append(value);
  };
  for (const auto& d : spec.dns_names) add("DNS", d);
  for (const auto& ip : spec.ip_addresses) add("IP", ip);
  for (const auto& u : spec.uris) add("URI", u);
  if (san.empty()) return std::unexpected(base::Error::Of("a leaf certificate needs a SAN"));
  if (!net::AddV3Extension(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !net::AddV3Extension(cert.get(), ca_cert.get(), NID_key_usage,
                           "critical,digitalSignature,keyEncipherment") ||
      !net::AddV3Extension(cert.get(), ca_cert.get(), NID_ext_key_usage, "serverAuth,clientAuth") ||
      !net::AddV3Extension(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid") ||
      !net::AddV3Extension(cert.get(), ca_cert.get(), NID_subject_alt_name, san) ||
      !X509_sign(cert.get(), ca_key.get(), EVP_sha256())) {
    return SslError("certificate for " + spec.common_name);
  }
  return PemPair{net::CertificatePem(cert.get()), net::PrivateKeyPem(key.get())};
}

namespace {

bool WriteFile(const std::filesystem::path& path, const std::string& data, bool secret,
               std::ostream& err) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  out.close();
  if (!out) {
    err << "picket-control certs: cannot write " << path << "\n";
    return false;
  }
  if (secret) {
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  return true;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr const char* kFooter =
    "Writes DIR/ca.pem, ca-key.pem (unless given), server.pem, server-key.pem and\n"
    "DIR/pods/NS.NAME.pem, NS.NAME-key.pem with URI SAN spiffe://TD/ns/NS/pod/NAME.";

struct CertsOptions {
  std::string out_dir, trust_domain = "cluster.local", ca_cert_file, ca_key_file;
  std::vector<std::string> server_names, server_ips, pods;
};

int RunCerts(CertsOptions o, std::ostream& out, std::ostream& err) {
  auto& [out_dir, trust_domain, ca_cert_file, ca_key_file, server_names, server_ips, pods] = o;
  if (server_names.empty() && server_ips.empty()) {
    server_names = {"localhost", "picket-control.picket-system.svc"};
    server_ips = {"127.0.0.1", "::1"};
  }
  const std::filesystem::path dir(out_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir / "pods", ec);
  if (ec) {
    err << "picket-control certs: " << dir << ": " << ec.message() << "\n";
    return 1;
  }
  PemPair ca;
  if (!ca_cert_file.empty()) {
    ca = {ReadAll(ca_cert_file), ReadAll(ca_key_file)};
  } else {
    auto made = MakeCa("picket CA " + trust_domain);
    if (!made) {
      err << "picket-control certs: " << made.error().ToString() << "\n";
      return 1;
    }
    ca = *made;
    if (!WriteFile(dir / "ca.pem", ca.cert_pem, false, err) ||
        !WriteFile(dir / "ca-key.pem", ca.key_pem, true, err)) {
      return 1;
    }
  }
  auto server = MakeLeaf(ca, {"picket-control", server_names, server_ips, {}, 365});
  if (!server) {
    err << "picket-control certs: " << server.error().ToString() << "\n";
    return 1;
  }
  if (!WriteFile(dir / "server.pem", server->cert_pem, false, err) ||
      !WriteFile(dir / "server-key.pem", server->key_pem, true, err)) {
    return 1;
  }
  for (const std::string& p : pods) {
    const size_t slash = p.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == p.size()) {
      err << "picket-control certs: --pod \"" << p << "\": expected NAMESPACE/NAME\n";
      return 2;
    }
    const std::string ns = p.substr(0, slash), name = p.substr(slash + 1);
    auto leaf = MakeLeaf(ca, {name + "." + ns, {}, {}, {SpiffePodUri(trust_domain, ns, name)}});
    if (!leaf) {
      err << "picket-control certs: " << leaf.error().ToString() << "\n";
      return 1;
    }
    const std::string base = ns + "." + name;
    if (!WriteFile(dir / "pods" / (base + ".pem"), leaf->cert_pem, false, err) ||
        !WriteFile(dir / "pods" / (base + "-key.pem"), leaf->key_pem, true, err)) {
      return 1;
    }
  }
  out << "wrote certificates to " << dir.string() << "\n";
  return 0;
}

}  // namespace

CommandRun AddCerts(CLI::App& sub) {
  auto o = std::make_shared<CertsOptions>();
  sub.footer(kFooter);
  sub.add_option("--out", o->out_dir, "Directory to write to")->type_name("DIR")->required();
  sub.add_option("--trust-domain", o->trust_domain, "SPIFFE trust domain")->capture_default_str();
  sub.add_option("--server-name", o->server_names, "DNS name of the control server (repeatable)")
      ->type_name("DNS")
      ->allow_extra_args(false);
  sub.add_option("--server-ip", o->server_ips, "IP address of the control server (repeatable)")
      ->type_name("IP")
      ->allow_extra_args(false);
  sub.add_option("--pod", o->pods, "A sidecar certificate for this pod (repeatable)")
      ->type_name("NS/NAME")
      ->allow_extra_args(false);
  auto* ca_cert = sub.add_option("--ca-cert", o->ca_cert_file, "Sign with this CA certificate")
                      ->type_name("FILE");
  auto* ca_key =
      sub.add_option("--ca-key", o->ca_key_file, "The CA's private key")->type_name("FILE");
  ca_cert->needs(ca_key);
  ca_key->needs(ca_cert);
  return [o](std::ostream& out, std::ostream& err) { return RunCerts(*o, out, err); };
}

}  // namespace picket::control
