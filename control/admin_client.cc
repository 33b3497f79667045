// control/admin_client.cc — see admin_client.h.
#include "control/admin_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "net/http_parser.h"

namespace picket::control {
namespace {

using Clock = std::chrono::steady_clock;

// Closes the socket on every path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Milliseconds left before `deadline` (0 once past it).
int Left(Clock::time_point deadline) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms > 0 ? static_cast<int>(ms) : 0;
}

// Waits for `events` on `fd` until `deadline`. False: timed out or failed.
bool Wait(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  while (true) {
    const int left = Left(deadline);
    if (left == 0) return false;
    const int n = ::poll(&p, 1, left);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

base::Result<AdminResponse> AdminGet(const std::string& host, uint16_t port,
                                     const std::string& path, uint64_t timeout_ms,
                                     size_t max_body_bytes) {
  const std::string where = "GET http://" +
                            (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                            std::to_string(port) + path;
  auto fail = [&where](std::string reason) -> base::Result<AdminResponse> {
    return std::unexpected(base::Error::Of(where + ": " + reason));
  };
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found); rc != 0) {
    return fail(std::string("cannot resolve: ") + ::gai_strerror(rc));
  }
  Fd sock;
  std::string connect_error = "no address";
  for (addrinfo* a = found; a != nullptr && sock.fd < 0; a = a->ai_next) {
    Fd s;
    s.fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (s.fd < 0) continue;
    int rc = ::connect(s.fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      int err = ETIMEDOUT;
      socklen_t len = sizeof err;
      if (Wait(s.fd, POLLOUT, deadline)) ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      connect_error = std::string("connect: ") + std::strerror(errno);
      continue;
    }
    std::swap(sock.fd, s.fd);
  }
  ::freeaddrinfo(found);
  if (sock.fd < 0) return fail(connect_error);

  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  for (size_t sent = 0; sent < request.size();) {
    if (!Wait(sock.fd, POLLOUT, deadline)) return fail("timed out sending");
    const ssize_t n = ::send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return fail(std::strerror(errno));
    if (n > 0) sent += static_cast<size_t>(n);
  }

  net::HttpResponseParser parser;
  parser.Begin();
  AdminResponse response;
  char buf[16384];
  while (true) {
    net::HttpResponseParser::Event e = parser.Next();
    while (e.type == net::HttpResponseParser::Event::Type::kHead ||
           e.type == net::HttpResponseParser::Event::Type::kData) {
      if (e.type == net::HttpResponseParser::Event::Type::kHead) {
        response.status = parser.head().status;
      } else {
        if (response.body.size() + e.data.size() > max_body_bytes) {
          return fail("response body over " + std::to_string(max_body_bytes) + " bytes");
        }
        response.body.append(e.data);
      }
      e = parser.Next();
    }
    if (e.type == net::HttpResponseParser::Event::Type::kDone) return response;
    if (e.type == net::HttpResponseParser::Event::Type::kError) return fail(e.error);
    if (!Wait(sock.fd, POLLIN, deadline)) return fail("timed out waiting for the response");
    const ssize_t n = ::recv(sock.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail(std::strerror(errno));
    }
    if (n == 0) {  // Next() said kNeedMore: only a body delimited by the close may end here
      e = parser.Eof();
      if (e.type == net::HttpResponseParser::Event::Type::kDone) return response;
      return fail(e.error);
    }
    parser.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace picket::control
