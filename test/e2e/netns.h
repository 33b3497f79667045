// test/e2e/netns.h — pods as network namespaces, for end-to-end tests that need root.
//
// Owns: running commands (RunCommand), a network namespace made and removed by the test (Netns),
// a veth link between two of them (Link), sockets created inside a namespace (setns on a
// short-lived thread: the socket keeps its namespace), and a child process started inside a
// namespace as another uid or as a container runtime starts it (Child, ContainerSecurity: stopped
// by PID, never by name). Everything created carries the test's PID in its name and is removed
// in destructors, also when a test fails.
//
// Blocking helpers for a test's main thread. Reusable by any e2e test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace picket::e2e {

struct CommandResult {
  int status = -1;     // exit status, or -1 when it could not run / was killed
  std::string output;  // stdout and stderr
};

// Runs argv (PATH lookup) and waits; bounded by `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A unique name for this process: `prefix` + pid + a counter, at most 15 characters.
std::string UniqueName(const std::string& prefix);

class Netns {
 public:
  // Creates the namespace (`ip netns add`) and brings its loopback up; ok() says whether it worked.
  explicit Netns(std::string name);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  // argv inside this namespace (`ip netns exec NAME argv...`).
  CommandResult Exec(std::vector<std::string> argv);
  // Runs `fn` on a thread that joined this namespace.
  int InNetns(const std::function<int()>& fn) const;

 private:
  std::string name_;
  bool ok_ = false;
};

// A veth pair between two namespaces with an IPv4 /24 and an IPv6 /64 address on each end
// (IPv6 without duplicate address detection, so it is usable at once).
bool LinkNamespaces(const Netns& a, const std::string& a_v4, const std::string& a_v6,
                    const Netns& b, const std::string& b_v4, const std::string& b_v6,
                    std::string* error);
// The name of LinkNamespaces' veth end in namespace `a` (side 'a') or `b` (side 'b').
std::string LinkEnd(char side);

// A TCP listening socket bound inside `ns` to addr:port (port 0: any); -1 on failure.
int ListenIn(const Netns& ns, const std::string& addr, uint16_t port);
// A blocking TCP connection from inside `ns` (from `source` when given); -1 and errno on failure.
// SO_RCVTIMEO/SNDTIMEO bound every later read and write by `io_timeout`.
int ConnectFrom(const Netns& ns, const std::string& addr, uint16_t port,
                std::chrono::milliseconds io_timeout = std::chrono::seconds(20),
                const std::string& source = "");

// What a container runtime (runc) makes of a container's securityContext for every process it
// starts in the container — its command, an exec probe, `kubectl exec`: that uid and gid with no
// supplementary groups; as root, `capabilities` (CAP_* numbers) as the bounding, permitted and
// effective sets and nothing inheritable or ambient (a non-root uid keeps none across its exec);
// no_new_privs for `allowPrivilegeEscalation: false`.
struct ContainerSecurity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<int> capabilities;
  bool no_new_privs = true;
};

// A process started inside a namespace (optionally as another uid/gid, with no supplementary
// groups, or as a container runtime starts it), its output appended to `log_file`. The
// destructor kills it (SIGKILL, by PID) if it is still running.
class Child {
 public:
  Child() = default;
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool Start(const Netns& ns, const std::vector<std::string>& argv, std::optional<uid_t> uid,
             const std::string& log_file);
  bool Start(const Netns& ns, const std::vector<std::string>& argv,
             const ContainerSecurity& security, const std::string& log_file);
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  void Signal(int signum);
  // Waits for exit up to `timeout` (blocked on a pidfd); the exit status (128 + the signal when
  // killed by one), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

 private:
  bool Start(const Netns& ns, const std::vector<std::string>& argv, std::optional<uid_t> uid,
             const ContainerSecurity* security, const std::string& log_file);

  pid_t pid_ = -1;
};

// Reads a whole file ("" if missing).
std::string ReadFile(const std::string& path);
bool WriteFile(const std::string& path, const std::string& content);

}  // namespace picket::e2e
