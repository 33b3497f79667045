// inject/webhook_server.cc — see webhook_server.h.
#include "inject/webhook_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

#include "inject/admission.h"

namespace picket::inject {
namespace {

std::string SslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// host:port, [v6]:port, :port.
std::expected<sockaddr_in6, std::string> ParseListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return std::unexpected("--listen: expected host:port");
  std::string host = listen.substr(0, colon);
  std::string port_text = listen.substr(colon + 1);
  uint16_t port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size()) {
    return std::unexpected("--listen: invalid port \"" + port_text + "\"");
  }
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(port);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0" || host == "::") {
    addr.sin6_addr = in6addr_any;
  } else if (in_addr v4; inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    // IPv4-mapped address on a dual-stack socket.
    addr.sin6_addr.s6_addr[10] = 0xff;
    addr.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&addr.sin6_addr.s6_addr[12], &v4, 4);
  } else if (inet_pton(AF_INET6, host.c_str(), &addr.sin6_addr) != 1) {
    return std::unexpected("--listen: \"" + host + "\" is not an IP address");
  }
  return addr;
}

struct Request {
  std::string method;
  std::string target;
  std::string body;
  bool close = false;
};

struct Reply {
  int status;
  std::string content_type;
  std::string body;
  bool close = false;
};

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    default:
      return "Error";
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// Reads and writes one TLS connection with a deadline per request.
class TlsConn {
 public:
  TlsConn(SSL* ssl, std::chrono::steady_clock::time_point deadline)
      : ssl_(ssl), deadline_(deadline) {}
  void set_deadline(std::chrono::steady_clock::time_point d) { deadline_ = d; }

  // Appends up to `max` more bytes to buffer_; false on EOF, error or deadline.
  bool Fill() {
    if (std::chrono::steady_clock::now() > deadline_) return false;
    char buf[16384];
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }
  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      int n =
          SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 20)));
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  std::string& buffer() { return buffer_; }

 private:
  SSL* ssl_;
  std::chrono::steady_clock::time_point deadline_;
  std::string buffer_;
};

// Parses one request from `conn`. Returns a Reply to send instead when the request is bad;
// `eof` is set when the peer closed cleanly between requests.
std::expected<Request, Reply> ReadRequest(TlsConn& conn, const WebhookConfig& cfg, bool* eof) {
  *eof = false;
  size_t header_end;
  while ((header_end = conn.buffer().find("\r\n\r\n")) == std::string::npos) {
    if (conn.buffer().size() > cfg.max_header_bytes) {
      return std::unexpected(Reply{400, "text/plain", "request headers too large\n", true});
    }
    if (!conn.Fill()) {
      *eof = conn.buffer().empty();
      return std::unexpected(Reply{408, "text/plain", "incomplete request\n", true});
    }
  }
  if (header_end > cfg.max_header_bytes) {
    return std::unexpected(Reply{400, "text/plain", "request headers too large\n", true});
  }
  std::string head = conn.buffer().substr(0, header_end);
  conn.buffer().erase(0, header_end + 4);

  Request req;
  size_t line_end = head.find("\r\n");
  std::string request_line = head.substr(0, line_end);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos ||
      (request_line.compare(sp2 + 1, std::string::npos, "HTTP/1.1") != 0 &&
       request_line.compare(sp2 + 1, std::string::npos, "HTTP/1.0") != 0)) {
    return std::unexpected(Reply{400, "text/plain", "malformed HTTP request line\n", true});
  }
  req.method = request_line.substr(0, sp1);
  req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  req.close = request_line.compare(sp2 + 1, std::string::npos, "HTTP/1.0") == 0;

  std::optional<size_t> content_length;
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      return std::unexpected(Reply{400, "text/plain", "malformed HTTP header line\n", true});
    }
    std::string name = Lower(Trim(line.substr(0, colon)));
    std::string value = Trim(line.substr(colon + 1));
    if (name == "content-length") {
      size_t v = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || ptr != value.data() + value.size() ||
          (content_length && *content_length != v)) {
        return std::unexpected(Reply{400, "text/plain", "invalid Content-Length\n", true});
      }
      content_length = v;
    } else if (name == "transfer-encoding") {
      return std::unexpected(Reply{
          400, "text/plain", "Transfer-Encoding is not supported; send Content-Length\n", true});
    } else if (name == "connection") {
      std::string v = Lower(value);
      if (v == "close") req.close = true;
      if (v == "keep-alive") req.close = false;
    }
  }
  const size_t length = content_length.value_or(0);
  if (length > cfg.max_body_bytes) {
    return std::unexpected(Reply{400, "text/plain",
                                 "request body of " + std::to_string(length) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(cfg.max_body_bytes) + " bytes\n",
                                 true});
  }
  while (conn.buffer().size() < length) {
    if (!conn.Fill()) {
      return std::unexpected(Reply{408, "text/plain", "incomplete request body\n", true});
    }
  }
  req.body = conn.buffer().substr(0, length);
  conn.buffer().erase(0, length);
  return req;
}

std::string Serialize(const Reply& r) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + StatusText(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (r.close) out += "Connection: close\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

Reply Route(const Request& req, const WebhookConfig& cfg) {
  std::string path = req.target.substr(0, req.target.find('?'));
  if (path == "/healthz") {
    if (req.method != "GET") return Reply{405, "text/plain", "use GET\n"};
    return Reply{200, "text/plain", "ok\n"};
  }
  if (path == "/inject") {
    if (req.method != "POST") return Reply{405, "text/plain", "use POST\n"};
    AdmissionReply a = HandleAdmissionReview(req.body, cfg.inject);
    return Reply{a.status, a.status == 200 ? "application/json" : "text/plain", a.body};
  }
  return Reply{404, "text/plain", "not found: " + path + "\n"};
}

// After an error reply on a request whose body we did not read: stop sending, then read and drop
// what the client is still sending for a little while, so our reply is not destroyed by the RST
// that closing a socket with unread data provokes.
void LingeringClose(int fd) {
  shutdown(fd, SHUT_WR);
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[65536];
  size_t total = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (total < (64u << 20) && std::chrono::steady_clock::now() < deadline) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
}

}  // namespace

std::expected<std::unique_ptr<WebhookServer>, std::string> WebhookServer::Start(
    WebhookConfig config) {
  auto addr = ParseListen(config.listen);
  if (!addr) return std::unexpected(addr.error());
  std::unique_ptr<WebhookServer> s(new WebhookServer(std::move(config)));

  s->ctx_ = SSL_CTX_new(TLS_server_method());
  if (s->ctx_ == nullptr) return std::unexpected("TLS: " + SslError());
  SSL_CTX_set_min_proto_version(s->ctx_, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(s->ctx_, s->config_.tls_cert_file.c_str()) != 1) {
    return std::unexpected("--tls-cert " + s->config_.tls_cert_file + ": " + SslError());
  }
  if (SSL_CTX_use_PrivateKey_file(s->ctx_, s->config_.tls_key_file.c_str(), SSL_FILETYPE_PEM) !=
      1) {
    return std::unexpected("--tls-key " + s->config_.tls_key_file + ": " + SslError());
  }
  if (SSL_CTX_check_private_key(s->ctx_) != 1) {
    return std::unexpected("--tls-key does not match --tls-cert: " + SslError());
  }

  s->listen_fd_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return std::unexpected(std::string("socket: ") + strerror(errno));
  int off = 0, on = 1;
  setsockopt(s->listen_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(s->listen_fd_, reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0) {
    return std::unexpected("bind " + s->config_.listen + ": " + strerror(errno));
  }
  if (listen(s->listen_fd_, 128) != 0)
    return std::unexpected(std::string("listen: ") + strerror(errno));
  sockaddr_in6 bound{};
  socklen_t len = sizeof bound;
  getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  s->port_ = ntohs(bound.sin6_port);
  s->acceptor_ = std::thread([raw = s.get()] { raw->AcceptLoop(); });
  return s;
}

WebhookServer::~WebhookServer() {
  Stop();
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (listen_fd_ >= 0) close(listen_fd_);
}

void WebhookServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Connection& c : connections_) {
      if (c.fd >= 0) shutdown(c.fd, SHUT_RDWR);  // wakes SSL_read/SSL_write
    }
  }
  for (Connection& c : connections_) {
    if (c.thread.joinable()) c.thread.join();
  }
  connections_.clear();
}

void WebhookServer::Log(const std::string& line) const {
  if (config_.log) config_.log(line);
}

void WebhookServer::AcceptLoop() {
  while (!stopping_.load()) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load()) break;
      if (errno == EMFILE || errno == ENFILE) {
        Log("accept: out of file descriptors; backing off");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      Log(std::string("accept: ") + strerror(errno));
      break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    // Reap finished connections.
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (it->done.load()) {
        it->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    if (stopping_.load() || connections_.size() >= config_.max_connections) {
      Log("connection refused: " + std::to_string(connections_.size()) + " connections open");
      close(fd);
      continue;
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(config_.io_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((config_.io_timeout.count() % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    Connection& c = connections_.emplace_back();
    c.fd = fd;
    c.thread = std::thread([this, conn = &c] { Serve(conn); });
  }
}

void WebhookServer::Serve(Connection* conn) {
  int fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd = conn->fd;
  }
  SSL* ssl = SSL_new(ctx_);
  if (ssl != nullptr && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
    TlsConn tls(ssl, std::chrono::steady_clock::now() + config_.request_timeout);
    bool half_closed = false;
    while (!stopping_.load()) {
      tls.set_deadline(std::chrono::steady_clock::now() + config_.request_timeout);
      bool eof = false;
      auto req = ReadRequest(tls, config_, &eof);
      if (!req) {
        if (eof) break;  // idle keep-alive connection closed by the peer
        Log("rejected request: " + std::to_string(req.error().status) + " " + req.error().body);
        tls.WriteAll(Serialize(req.error()));
        LingeringClose(fd);
        half_closed = true;
        break;
      }
      Reply reply = Route(*req, config_);
      reply.close = req->close;
      Log(req->method + " " + req->target + " -> " + std::to_string(reply.status) +
          (reply.status == 200 ? "" : ": " + reply.body.substr(0, reply.body.find('\n'))));
      if (!tls.WriteAll(Serialize(reply)) || reply.close) break;
    }
    if (!half_closed) SSL_shutdown(ssl);
  } else {
    Log("TLS handshake failed: " + SslError());
  }
  if (ssl != nullptr) SSL_free(ssl);
  ERR_clear_error();
  {
    std::lock_guard<std::mutex> lock(mu_);
    close(conn->fd);
    conn->fd = -1;
  }
  conn->done.store(true);
}

}  // namespace picket::inject
