#include "test/e2e/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace picket::e2e {
namespace {

bool ToSockaddr(const std::string& addr, uint16_t port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  auto* sin = reinterpret_cast<sockaddr_in*>(ss);
  if (inet_pton(AF_INET, addr.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof(*sin);
    return true;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET6, addr.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    *len = sizeof(*sin6);
    return true;
  }
  return false;
}

// ContainerSecurity applied in a forked child before its exec (async-signal-safe calls only).
bool ApplySecurity(const ContainerSecurity& s) {
  uint64_t keep = 0;
  for (int cap : s.capabilities) keep |= uint64_t{1} << cap;
  for (int cap = 0; cap < 64; ++cap) {
    if ((keep & (uint64_t{1} << cap)) == 0 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 &&
        errno != EINVAL) {  // EINVAL: past the kernel's last capability
      return false;
    }
  }
  if (setgroups(0, nullptr) != 0 || setresgid(s.gid, s.gid, s.gid) != 0 ||
      setresuid(s.uid, s.uid, s.uid) != 0) {
    return false;
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (s.uid == 0) {  // a non-root uid lost them at setresuid and would at its exec anyway
    for (int cap : s.capabilities) {
      data[cap / 32].permitted |= 1u << (cap % 32);
      data[cap / 32].effective |= 1u << (cap % 32);
    }
  }
  if (syscall(SYS_capset, &header, data) != 0 ||
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return false;
  }
  return !s.no_new_privs || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

// fork + exec with stdout/stderr to `out_fd`; in the child: optional setns, then a uid change or
// a container's security context.
pid_t Spawn(const std::vector<std::string>& argv, int out_fd, int netns_fd,
            std::optional<uid_t> uid, const ContainerSecurity* security = nullptr) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: async-signal-safe calls only.
  setpgid(0, 0);
  if (out_fd >= 0) {
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
  }
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) _exit(126);
  if (uid) {
    if (setgroups(0, nullptr) != 0 || setgid(*uid) != 0 || setuid(*uid) != 0) _exit(126);
  }
  if (security != nullptr && !ApplySecurity(*security)) _exit(126);
  execvp(args[0], args.data());
  _exit(127);
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandResult result;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return result;
  pid_t pid = Spawn(argv, pipe_fds[1], -1, std::nullopt);
  close(pipe_fds[1]);
  if (pid < 0) {
    close(pipe_fds[0]);
    return result;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      result.output += "\n[timed out]";
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = read(pipe_fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::string name = prefix + std::to_string(getpid() % 100000) + "-" + std::to_string(counter++);
  return name.substr(0, 15);
}

Netns::Netns(std::string name) : name_(std::move(name)) {
  RunCommand({"ip", "netns", "del", name_});  // a leftover of a killed run
  ok_ = RunCommand({"ip", "netns", "add", name_}).status == 0 &&
        Exec({"ip", "link", "set", "lo", "up"}).status == 0;
}

Netns::~Netns() { RunCommand({"ip", "netns", "del", name_}); }

CommandResult Netns::Exec(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"ip", "netns", "exec", name_});
  return RunCommand(argv);
}

int Netns::InNetns(const std::function<int()>& fn) const {
  int result = -1;
  int saved_errno = 0;
  std::thread t([&] {
    int fd = open(("/var/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      saved_errno = errno;
      if (fd >= 0) close(fd);
      return;
    }
    close(fd);
    result = fn();
    saved_errno = errno;
  });
  t.join();
  errno = saved_errno;
  return result;
}

std::string LinkEnd(char side) {
  return std::string(side == 'a' ? "va" : "vb") + std::to_string(getpid() % 1000000);
}

bool LinkNamespaces(const Netns& a, const std::string& a_v4, const std::string& a_v6,
                    const Netns& b, const std::string& b_v4, const std::string& b_v6,
                    std::string* error) {
  const std::string ia = LinkEnd('a');
  const std::string ib = LinkEnd('b');
  std::vector<std::vector<std::string>> steps = {
      {"ip", "link", "add", ia, "type", "veth", "peer", "name", ib},
      {"ip", "link", "set", ia, "netns", a.name()},
      {"ip", "link", "set", ib, "netns", b.name()},
      {"ip", "-n", a.name(), "addr", "add", a_v4 + "/24", "dev", ia},
      {"ip", "-n", b.name(), "addr", "add", b_v4 + "/24", "dev", ib},
      {"ip", "-n", a.name(), "-6", "addr", "add", a_v6 + "/64", "dev", ia, "nodad"},
      {"ip", "-n", b.name(), "-6", "addr", "add", b_v6 + "/64", "dev", ib, "nodad"},
      {"ip", "-n", a.name(), "link", "set", ia, "up"},
      {"ip", "-n", b.name(), "link", "set", ib, "up"},
  };
  for (const auto& step : steps) {
    CommandResult r = RunCommand(step);
    if (r.status != 0) {
      *error = step[0];
      for (size_t i = 1; i < step.size(); ++i) *error += " " + step[i];
      *error += ": " + r.output;
      RunCommand({"ip", "link", "del", ia});
      return false;
    }
  }
  return true;
}

int ListenIn(const Netns& ns, const std::string& addr, uint16_t port) {
  return ns.InNetns([&] {
    sockaddr_storage ss;
    socklen_t len;
    if (!ToSockaddr(addr, port, &ss, &len)) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 128) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  });
}

int ConnectFrom(const Netns& ns, const std::string& addr, uint16_t port,
                std::chrono::milliseconds io_timeout, const std::string& source) {
  sockaddr_storage ss;
  socklen_t len;
  if (!ToSockaddr(addr, port, &ss, &len)) return -1;
  int fd = ns.InNetns([&] { return socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0); });
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(io_timeout.count() / 1000),
             static_cast<suseconds_t>((io_timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (!source.empty()) {
    sockaddr_storage from;
    socklen_t from_len;
    if (!ToSockaddr(source, 0, &from, &from_len) ||
        bind(fd, reinterpret_cast<sockaddr*>(&from), from_len) != 0) {
      int saved = errno;
      close(fd);
      errno = saved;
      return -1;
    }
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

Child::~Child() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
}

bool Child::Start(const Netns& ns, const std::vector<std::string>& argv, std::optional<uid_t> uid,
                  const std::string& log_file) {
  return Start(ns, argv, uid, nullptr, log_file);
}

bool Child::Start(const Netns& ns, const std::vector<std::string>& argv,
                  const ContainerSecurity& security, const std::string& log_file) {
  return Start(ns, argv, std::nullopt, &security, log_file);
}

bool Child::Start(const Netns& ns, const std::vector<std::string>& argv, std::optional<uid_t> uid,
                  const ContainerSecurity* security, const std::string& log_file) {
  int out = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int netns = open(("/var/run/netns/" + ns.name()).c_str(), O_RDONLY | O_CLOEXEC);
  if (netns < 0) {
    if (out >= 0) close(out);
    return false;
  }
  pid_ = Spawn(argv, out, netns, uid, security);
  if (out >= 0) close(out);
  close(netns);
  return pid_ > 0;
}

void Child::Signal(int signum) {
  if (pid_ > 0) kill(pid_, signum);
}

std::optional<int> Child::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // Blocked until it exits or the time is up; the loop below reaps it (and is the fallback on a
  // kernel without pidfd_open).
  if (const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)); pidfd >= 0) {
    int ready;
    do {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{pidfd, POLLIN, 0};
      ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    } while (ready < 0 && errno == EINTR);
    close(pidfd);
    if (ready == 0) return std::nullopt;
  }
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return static_cast<bool>(out);
}

}  // namespace picket::e2e
