// inject/command.cc — see command.h.
#include "inject/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace picket::inject {
namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  void Close(int i) {
    if (fd[i] >= 0) close(fd[i]);
    fd[i] = -1;
  }
};

}  // namespace

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    if (a.empty() || a.find_first_of(" \t'\"\\$") != std::string::npos) {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    } else {
      out += a;
    }
  }
  return out;
}

base::Result<CommandResult> ProcessRunner::Run(const std::vector<std::string>& argv,
                                               const std::string& input) {
  if (argv.empty()) return std::unexpected(base::Error::Of("empty command"));
  Pipe in, out, err, exec_status;
  if (pipe2(in.fd, O_CLOEXEC) != 0 || pipe2(out.fd, O_CLOEXEC) != 0 ||
      pipe2(err.fd, O_CLOEXEC) != 0 || pipe2(exec_status.fd, O_CLOEXEC) != 0) {
    return std::unexpected(base::Error::Of(std::string("pipe: ") + strerror(errno)));
  }
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  // A child that exits before reading all of its input must surface as EPIPE on our write, not
  // kill this process with SIGPIPE: ignore SIGPIPE here (process-wide, idempotent) and give the
  // child the default disposition back, since ignored signals survive exec.
  signal(SIGPIPE, SIG_IGN);
  pid_t pid = fork();
  if (pid < 0) return std::unexpected(base::Error::Of(std::string("fork: ") + strerror(errno)));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    signal(SIGPIPE, SIG_DFL);
    dup2(in.fd[0], 0);
    dup2(out.fd[1], 1);
    dup2(err.fd[1], 2);
    execvp(cargv[0], cargv.data());
    int e = errno;
    (void)!write(exec_status.fd[1], &e, sizeof e);
    _exit(127);
  }
  in.Close(0);
  out.Close(1);
  err.Close(1);
  exec_status.Close(1);

  int exec_errno = 0;
  ssize_t n = read(exec_status.fd[0], &exec_errno, sizeof exec_errno);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    int status = 0;
    waitpid(pid, &status, 0);
    return std::unexpected(base::Error::Of("cannot run " + argv[0] + ": " + strerror(exec_errno)));
  }

  // Feed stdin and drain stdout/stderr together so neither side can block the other.
  CommandResult result;
  size_t written = 0;
  fcntl(in.fd[1], F_SETFL, O_NONBLOCK);
  if (input.empty()) in.Close(1);
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    pollfd fds[3];
    int count = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (in.fd[1] >= 0) {
      idx_in = count;
      fds[count++] = {in.fd[1], POLLOUT, 0};
    }
    if (out.fd[0] >= 0) {
      idx_out = count;
      fds[count++] = {out.fd[0], POLLIN, 0};
    }
    if (err.fd[0] >= 0) {
      idx_err = count;
      fds[count++] = {err.fd[0], POLLIN, 0};
    }
    if (poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (idx_in >= 0 && fds[idx_in].revents != 0) {
      ssize_t w = write(in.fd[1], input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written == input.size()) in.Close(1);
    }
    auto drain = [&](int idx, Pipe& p, std::string& sink) {
      if (idx < 0 || fds[idx].revents == 0) return;
      char buf[4096];
      ssize_t r = read(p.fd[0], buf, sizeof buf);
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        p.Close(0);
      }
    };
    drain(idx_out, out, result.out);
    drain(idx_err, err, result.err);
  }
  in.Close(1);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace picket::inject
