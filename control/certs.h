// control/certs.h — a small certificate authority for the demo and tests (BoringSSL X509 APIs).
//
// Owns: making an EC P-256 CA, and leaf certificates signed by it for the control server (DNS
// and IP subjectAltNames) and for sidecars (a URI SAN naming the pod:
// spiffe://<trust-domain>/ns/<ns>/pod/<name>), as PEM text; and `AddCerts`, the
// `picket-control certs` command that writes them to a directory.
//
// Pure functions (apart from the certs command's file writes); any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "control/flags.h"

namespace picket::control {

struct PemPair {
  std::string cert_pem;
  std::string key_pem;
};

struct LeafSpec {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::vector<std::string> uris;
  int valid_days = 365;
};

[[nodiscard]] base::Result<PemPair> MakeCa(std::string_view common_name, int valid_days = 3650);
[[nodiscard]] base::Result<PemPair> MakeLeaf(const PemPair& ca, const LeafSpec& spec);

// "spiffe://<trust_domain>/ns/<ns>/pod/<pod>"
std::string SpiffePodUri(std::string_view trust_domain, std::string_view ns, std::string_view pod);

// picket-control certs --out DIR [--trust-domain TD] [--server-name NAME]... [--server-ip IP]...
//                      [--pod NS/NAME]... [--ca-cert FILE --ca-key FILE]
// Declares its flags on `sub` (control/flags.h).
CommandRun AddCerts(CLI::App& sub);

}  // namespace picket::control
