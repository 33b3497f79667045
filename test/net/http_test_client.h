// test/net/http_test_client.h — a blocking HTTP/1.1 test client (plain or TLS) for loopback tests.
//
// Owns one socket (and its BoringSSL session). Every read has a receive timeout, so a server that
// never answers fails the test instead of hanging it. Test threads only; the server under test
// runs on its own loop thread.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace picket::testing {

struct HttpReply {
  int status = 0;
  std::string head;  // status line and fields, without the blank line
  std::string body;
  bool Has(std::string_view field_line) const { return head.find(field_line) != std::string::npos; }
};

class HttpTestClient {
 public:
  // Connects to 127.0.0.1:port; with `tls`, performs the TLS handshake (verifying 127.0.0.1).
  static std::unique_ptr<HttpTestClient> Connect(uint16_t port, SSL_CTX* tls = nullptr,
                                                 int timeout_ms = 10'000);
  ~HttpTestClient();

  bool Send(std::string_view bytes);
  // One response framed by Content-Length (no body for `head_request`); nullopt on EOF, error or
  // timeout.
  std::optional<HttpReply> Read(bool head_request = false);
  // Reads until the server closes; true on EOF (or reset), false on timeout.
  bool WaitClosed();
  int fd() const { return fd_; }

 private:
  HttpTestClient(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  long Recv(char* buf, size_t size);  // >0 bytes, 0 EOF, <0 error or timeout

  int fd_;
  SSL* ssl_;
  std::string buffer_;
};

// "METHOD target HTTP/1.1" with Host and, when `body` is given, Content-Length.
std::string HttpRequestText(std::string_view method, std::string_view target,
                            std::string_view body = {}, std::string_view extra_fields = {});

}  // namespace picket::testing
