// test/control/source/fake_apiserver_process.h — the Kubernetes API test server
// (test/k8s/apiserver/fake_apiserver.py) as a child process of a C++ test.
//
// Owns: one server process on 127.0.0.1 port 0 with its directory (certificates, token,
// kubeconfig, ready file; see the server's header). Start() waits (bounded) for the ready file
// and tries again a few times when the server exits early (a busy machine may be out of ephemeral
// ports for a moment); Stop() sends SIGTERM and, after 5 s, SIGKILL. Main thread of a test.
#pragma once

#include <sys/types.h>

#include <string>

namespace picket::testing {

class FakeApiServer {
 public:
  FakeApiServer() = default;
  ~FakeApiServer() { Stop(); }
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // `dir` is created afresh; `seed` (a workspace-relative path, may be empty) is passed as --seed.
  // False when the server never became ready (its log is in log()).
  [[nodiscard]] bool Start(const std::string& dir, const std::string& seed);
  void Stop();

  const std::string& dir() const { return dir_; }
  std::string kubeconfig() const { return dir_ + "/kubeconfig"; }
  std::string log() const;  // the server's output so far

 private:
  bool StartOnce(const std::string& seed);

  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace picket::testing
