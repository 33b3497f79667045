// test/e2e/sidecar.h — the control server, certificates and picket-proxy sidecars of the xDS
// end-to-end tests, started the way a cluster starts them. Needs root (uid changes, namespaces).
//
// Owns: the ports and uid those tests share, a temporary directory uid kProxyUid can reach,
// `picket-control certs` and `picket-control serve` runs, a copy of picket-proxy uid kProxyUid can
// execute, and a sidecar started from the bootstrap `picket-inject bootstrap` writes for its pod.
// Helpers returning void report gtest failures: call them through ASSERT_NO_FATAL_FAILURE.
//
// Blocking helpers for a test's main thread, built on test/e2e/pod_network.h.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "test/e2e/netns.h"

namespace picket::e2e {

constexpr uid_t kProxyUid = 1337;     // the sidecar's uid: the capture rules let it through
constexpr uint16_t kXdsPort = 15012;  // `picket-control serve --listen 0.0.0.0:kXdsPort`
constexpr uint16_t kAppPort = 9000;   // the test application in a pod

// Fails the test unless it runs as root; `test` names it in the message.
void RequireRoot(const std::string& test);

// A fresh /tmp/<prefix>-XXXXXX (mode 0755, with manifests/ in it) in *dir: under /tmp, not
// TEST_TMPDIR, because uid kProxyUid must reach its binary, certificates and logs.
void MakeSharedDir(const std::string& prefix, std::filesystem::path* dir);

// One `--server-ip IP --pod NS/NAME` pair of `picket-control certs`.
struct CertFor {
  std::string server_ip;
  std::string pod;
};

// `picket-control certs --out <out>` for `pods`.
void MakeCerts(const std::filesystem::path& out, const std::vector<CertFor>& pods);

// Starts `picket-control serve` inside `node`: manifests from <dir>/manifests, TLS material from
// MakeCerts(<dir>/certs), xDS on 0.0.0.0:kXdsPort, log <dir>/control.log; `extra` appended.
void StartControl(Child& server, const Netns& node, const std::filesystem::path& dir,
                  const std::vector<std::string>& extra = {});

// Copies picket-proxy from the runfiles into `dir` (mode 0755) and returns the copy's path:
// uid kProxyUid cannot read Bazel's runfiles under /root.
std::string CopyProxy(const std::filesystem::path& dir);

// A sidecar as the injector sets it up for pod `ns`/`name` at `ip`.
struct Sidecar {
  std::string ns;
  std::string name;
  std::string ip;
  std::string xds_address;  // host:port of the control server
  std::string dir;          // certificates, bootstrap.yaml and proxy.log
  // `capture: verdict` (picket-inject bootstrap --capture=verdict), and the sidecar gets
  // CAP_NET_ADMIN as the injector grants it; the pod's rules must be picket-init's
  // --capture=verdict ones.
  bool verdict = false;
  std::string log() const { return dir + "/proxy.log"; }
};

// Creates sidecar.dir with the pod's certificate, key and CA from `certs` (MakeCerts' output) and
// the bootstrap `picket-inject bootstrap --xds-address …` writes (the xds section is its only
// policy source), hands the directory to kProxyUid and starts `proxy_bin --config
// <dir>/bootstrap.yaml` as kProxyUid inside `pod` (with CAP_NET_ADMIN when sidecar.verdict),
// logging to sidecar.log().
void StartSidecar(Child& child, const Netns& pod, const std::filesystem::path& certs,
                  const std::string& proxy_bin, const Sidecar& sidecar);

// Polls the admin endpoint (127.0.0.1:15000) in `pod` until /ready answers 200; a failure shows
// the sidecar's log.
void WaitReady(const Netns& pod, const Sidecar& sidecar);

}  // namespace picket::e2e
