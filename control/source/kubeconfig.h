// control/source/kubeconfig.h — how to reach and authenticate to the Kubernetes API.
//
// Owns: `KubeConfig` (the server, the CA that must have signed it, the client certificate and the
// bearer token), read from a kubeconfig file (`LoadKubeconfig`: the current-context's cluster and
// user, as client-go's clientcmd reads them: `certificate-authority` / `-data`,
// `insecure-skip-tls-verify`, `tls-server-name`, `token` / `tokenFile`,
// `client-certificate` / `-data`, `client-key` / `-data`; relative file names against the
// kubeconfig's folder) or from the pod's service account (`LoadInCluster`, as client-go's
// rest.InClusterConfig: KUBERNETES_SERVICE_HOST / _PORT and
// /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt}); and `BearerToken`, the token as
// sent, re-read from its file when the file changes and after the server answered 401.
//
// Errors name the file and the field (`~/.kube/config: users[0].user.token: ...`). Authentication
// the client cannot do (exec and auth-provider plugins, basic auth) is an error, not a silent
// anonymous request; so is `insecure-skip-tls-verify` unless the caller allows it explicitly.
//
// Pure functions over files and the environment; BearerToken is thread-compatible (one owner).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/error.h"

namespace picket::control::source {

struct KubeConfig {
  std::string host;  // DNS name or IP literal (IPv6 without brackets)
  uint16_t port = 443;
  std::string path_prefix;      // a server URL's path (e.g. a proxy's), "" or "/a/b"
  std::string tls_server_name;  // the name to verify instead of `host`; may be empty
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;       // a static token (may be empty)
  std::string token_file;  // read (and re-read) when not empty; wins over `token`
  std::string describe;    // "kubeconfig /root/.kube/config (context kind-a)" or "in-cluster"
};

struct KubeconfigOptions {
  // Use this context instead of current-context (empty: current-context).
  std::string context;
  // Accept `insecure-skip-tls-verify: true` (the server is then not authenticated at all).
  bool allow_insecure = false;
};

[[nodiscard]] base::Result<KubeConfig> LoadKubeconfig(const std::string& path,
                                                      const KubeconfigOptions& options = {});

struct InClusterPaths {
  std::string dir = "/var/run/secrets/kubernetes.io/serviceaccount";  // token and ca.crt
  // The environment is read when these are empty.
  std::string host;
  std::string port;
};

[[nodiscard]] base::Result<KubeConfig> LoadInCluster(const InClusterPaths& paths = {});

// The bearer token to send. With a file, Get() re-reads it when its size, mtime or inode changed
// (kubelet rotates projected service-account tokens by replacing the file), and Invalidate()
// forces a re-read on the next Get() (after a 401).
class BearerToken {
 public:
  BearerToken() = default;
  BearerToken(std::string token, std::string file)
      : token_(std::move(token)), file_(std::move(file)) {}

  // The current token; "" when there is none (anonymous). An error when the file cannot be read
  // or is empty.
  [[nodiscard]] base::Result<std::string> Get();
  void Invalidate() { stamp_.reset(); }
  size_t reads() const { return reads_; }

 private:
  struct Stamp {
    ino_t inode;
    off_t size;
    int64_t mtime_ns;
    bool operator==(const Stamp&) const = default;
  };
  std::string token_;
  std::string file_;
  std::optional<Stamp> stamp_;
  size_t reads_ = 0;
};

}  // namespace picket::control::source
