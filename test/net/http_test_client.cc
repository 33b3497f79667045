// test/net/http_test_client.cc — see http_test_client.h.
#include "test/net/http_test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace picket::testing {

std::unique_ptr<HttpTestClient> HttpTestClient::Connect(uint16_t port, SSL_CTX* tls,
                                                        int timeout_ms) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const int on = 1;  // as HTTP clients do (Go's net/http among them): no Nagle delay
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return nullptr;
  }
  SSL* ssl = nullptr;
  if (tls != nullptr) {
    ssl = SSL_new(tls);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
      SSL_free(ssl);
      close(fd);
      return nullptr;
    }
  }
  return std::unique_ptr<HttpTestClient>(new HttpTestClient(fd, ssl));
}

HttpTestClient::~HttpTestClient() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  close(fd_);
}

bool HttpTestClient::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const long n = ssl_ != nullptr ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                                   : send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

long HttpTestClient::Recv(char* buf, size_t size) {
  if (ssl_ != nullptr) {
    const int n = SSL_read(ssl_, buf, static_cast<int>(size));
    if (n > 0) return n;
    return SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
  }
  return recv(fd_, buf, size, 0);
}

std::optional<HttpReply> HttpTestClient::Read(bool head_request) {
  char chunk[16384];
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    const long n = Recv(chunk, sizeof chunk);
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
  HttpReply r;
  r.head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  if (r.head.size() < 12) return std::nullopt;
  r.status = std::atoi(r.head.substr(9, 3).c_str());
  size_t length = 0;
  if (const size_t cl = r.head.find("Content-Length: "); cl != std::string::npos) {
    length = std::strtoul(r.head.c_str() + cl + 16, nullptr, 10);
  }
  if (head_request || r.status < 200) length = 0;
  while (buffer_.size() < length) {
    const long n = Recv(chunk, sizeof chunk);
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
  r.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return r;
}

bool HttpTestClient::WaitClosed() {
  char chunk[16384];
  while (true) {
    const long n = Recv(chunk, sizeof chunk);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

std::string HttpRequestText(std::string_view method, std::string_view target, std::string_view body,
                            std::string_view extra_fields) {
  std::string out = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n";
  out += extra_fields;
  if (!body.empty() || method == "POST") {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out += body;
  return out;
}

}  // namespace picket::testing
