// inject/probe.cc — see probe.h.
#include "inject/probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace picket::inject {
namespace {

using base::Error;

std::unexpected<ProbeError> Usage(std::string field, std::string reason) {
  return std::unexpected(ProbeError{Error::At(std::move(field), std::move(reason)), true});
}
std::unexpected<ProbeError> Failed(std::string reason) {
  return std::unexpected(ProbeError{Error::Of(std::move(reason)), false});
}

}  // namespace

std::expected<int, ProbeError> Probe(const ProbeRequest& r) {
  if (r.method != "GET" && r.method != "POST") return Usage("--method", "must be GET or POST");
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string path;
  if (!r.socket.empty()) {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    if (r.socket.size() >= sizeof un->sun_path) {
      return Usage("--socket", "longer than " + std::to_string(sizeof un->sun_path - 1) + " bytes");
    }
    if (r.path.empty() || r.path[0] != '/') return Usage("--path", "must start with '/'");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, r.socket.data(), r.socket.size());
    len = sizeof(sockaddr_un);
    path = r.path;
  } else {
    // Loopback only: the admin TCP endpoint is never exposed beyond the pod.
    const std::string prefix = "http://127.0.0.1:";
    if (!r.url.starts_with(prefix)) return Usage("--url", "only http://127.0.0.1:PORT/... URLs");
    const std::string rest = r.url.substr(prefix.size());
    const size_t slash = rest.find('/');
    const std::string port_text = rest.substr(0, slash);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
        port < 1 || port > 65535) {
      return Usage("--url", "\"" + port_text + "\" is not a port");
    }
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
    path = slash == std::string::npos ? "/" : rest.substr(slash);
  }
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Failed(std::string("socket: ") + std::strerror(errno));
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const std::string where = r.socket.empty() ? r.url : r.socket;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int e = errno;
    close(fd);
    std::string hint;
    struct stat dir {};
    const std::string socket_dir = r.socket.substr(0, r.socket.rfind('/') + 1);
    if (e == EACCES && !r.socket.empty() && stat(socket_dir.c_str(), &dir) == 0 &&
        dir.st_uid != geteuid()) {
      // Root without CAP_DAC_OVERRIDE (the injected sidecar container) is refused as any uid.
      hint = " (its directory is uid " + std::to_string(dir.st_uid) + "'s: run the probe as it, " +
             "--user=" + std::to_string(dir.st_uid) + ")";
    }
    return Failed("connect " + where + ": " + std::strerror(e) + hint);
  }
  const std::string req =
      r.method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return Failed("write " + where + ": " + std::strerror(errno));
  }
  char buf[64] = {};
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  const std::string head(buf, n > 0 ? static_cast<size_t>(n) : 0);
  // "HTTP/1.x NNN ..."
  if (head.size() < 12 || !head.starts_with("HTTP/1.") || head[8] != ' ') {
    return Failed(where + ": no HTTP answer");
  }
  int code = 0;
  auto [end, ec] = std::from_chars(head.data() + 9, head.data() + 12, code);
  if (ec != std::errc() || end != head.data() + 12) return Failed(where + ": no HTTP status");
  return code;
}

}  // namespace picket::inject
