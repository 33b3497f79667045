// net/http_client.cc — see http_client.h.
#include "net/http_client.h"

#include <arpa/inet.h>
#include <strings.h>

#include <algorithm>
#include <cstring>

#include "net/tls_stream.h"
#include "net/uv_error.h"

namespace picket::net {

std::optional<std::string_view> HttpClientResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

struct HttpClient::Pending {
  RequestId id = 0;
  HttpClientRequest request;
  Done done;
  HttpClientResponse response;
  std::string line;  // a streamed line not complete yet
  bool streaming = false;
  bool retried = false;  // already re-sent once after a stale pooled connection
};

namespace {

void DeleteTimer(uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); }

uv_timer_t* NewTimer(uv_loop_t* loop, void* data) {
  auto* timer = new uv_timer_t;
  uv_timer_init(loop, timer);
  timer->data = data;
  return timer;
}

void CloseTimer(uv_timer_t* timer) {
  uv_timer_stop(timer);
  timer->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(timer), DeleteTimer);
}

bool ParseLiteral(const std::string& host, uint16_t port, sockaddr_storage* out) {
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(out)) == 0) return true;
  return uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(out)) == 0;
}

}  // namespace

// One TLS connection to the server; carries at most one request at a time.
class HttpClient::Connection final : public TlsStream::Handler {
 public:
  enum class State { kResolving, kConnecting, kBusy, kIdle, kClosed };

  Connection(HttpClient* client, uint64_t id)
      : client_(client),
        id_(id),
        parser_(client->options_.limits),
        timer_(NewTimer(client->loop_, this)) {}
  ~Connection() override {
    if (stream_ != nullptr) stream_->Close();
    CloseTimer(timer_);
  }

  uint64_t id() const { return id_; }
  State state() const { return state_; }
  const Pending* pending() const { return pending_.get(); }
  bool reused() const { return requests_ > 0; }

  void Open(std::unique_ptr<Pending> pending);
  void Start(std::unique_ptr<Pending> pending);  // on an idle connection
  void Idle();
  // Closes the connection; the request in flight (if any) is dropped without its callback.
  void Abandon();

  void OnTlsReady(TlsStream& stream) override;
  void OnTlsData(TlsStream& stream, std::string_view plaintext) override;
  void OnTlsClosed(TlsStream& stream, const std::string& reason) override;

 private:
  const HttpClientOptions& options() const { return client_->options_; }
  void Connect(const sockaddr* address);
  void OnResolved(int status, addrinfo* result);
  void WriteRequest();
  void Arm(uint64_t ms);
  void OnTimer();
  // Hands the finished request to its callback and the connection back to the client.
  void Finish(base::Result<HttpClientResponse> result, bool reusable);
  void Fail(const std::string& reason) { Finish(std::unexpected(Error(reason)), false); }
  base::Error Error(const std::string& reason) const;
  // Body bytes of a streamed response; false when the request went away meanwhile.
  bool StreamLines(std::string_view data);

  HttpClient* client_;
  const uint64_t id_;
  HttpResponseParser parser_;
  uv_timer_t* timer_;
  TlsStream* stream_ = nullptr;
  State state_ = State::kResolving;
  std::unique_ptr<Pending> pending_;
  std::string failure_;  // a failure found inside Send(), reported from the timer
  bool got_response_bytes_ = false;
  bool got_head_ = false;
  int requests_ = 0;  // requests started on this connection
};

base::Error HttpClient::Connection::Error(const std::string& reason) const {
  std::string what =
      pending_ ? pending_->request.method + " " + client_->origin_ + pending_->request.target
               : client_->origin_;
  return base::Error::Of(what + ": " + reason);
}

void HttpClient::Connection::Open(std::unique_ptr<Pending> pending) {
  pending_ = std::move(pending);
  Arm(options().connect_timeout_ms);
  sockaddr_storage address{};
  if (ParseLiteral(options().host, options().port, &address)) {
    Connect(reinterpret_cast<const sockaddr*>(&address));
    return;
  }
  struct Resolve {
    uv_getaddrinfo_t req;
    std::weak_ptr<bool> alive;
    HttpClient* client;
    uint64_t connection;
  };
  auto* resolve = new Resolve{{}, client_->alive_, client_, id_};
  resolve->req.data = resolve;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string port = std::to_string(options().port);
  const int rc = uv_getaddrinfo(
      client_->loop_, &resolve->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* result) {
        std::unique_ptr<Resolve> r(static_cast<Resolve*>(req->data));
        std::shared_ptr<bool> alive = r->alive.lock();
        if (alive && *alive) {
          auto it = r->client->connections_.find(r->connection);
          if (it != r->client->connections_.end()) {
            it->second->OnResolved(status, result);
            return;
          }
        }
        uv_freeaddrinfo(result);
      },
      options().host.c_str(), port.c_str(), &hints);
  if (rc < 0) {
    delete resolve;
    // Deferred: `done` never runs inside Send().
    failure_ = UvError("resolve " + options().host, rc).reason;
    Arm(0);
  }
}

void HttpClient::Connection::OnResolved(int status, addrinfo* result) {
  if (state_ != State::kResolving) {
    uv_freeaddrinfo(result);
    return;
  }
  if (status < 0 || result == nullptr) {
    uv_freeaddrinfo(result);
    Fail(UvError("resolve " + options().host, status).reason);
    return;
  }
  sockaddr_storage address{};
  memcpy(&address, result->ai_addr, result->ai_addrlen);
  uv_freeaddrinfo(result);
  Connect(reinterpret_cast<const sockaddr*>(&address));
}

void HttpClient::Connection::Connect(const sockaddr* address) {
  state_ = State::kConnecting;
  const std::string& name = options().verify_name.empty() ? options().host : options().verify_name;
  auto stream = TlsStream::Connect(client_->loop_, address, options().tls, name, this);
  if (!stream) {
    failure_ = stream.error().ToString();
    Arm(0);
    return;
  }
  stream_ = *stream;
}

void HttpClient::Connection::Start(std::unique_ptr<Pending> pending) {
  pending_ = std::move(pending);
  WriteRequest();
}

void HttpClient::Connection::Idle() {
  state_ = State::kIdle;
  Arm(options().pool_idle_timeout_ms);
}

void HttpClient::Connection::Abandon() {
  pending_.reset();
  state_ = State::kClosed;
  uv_timer_stop(timer_);
  if (stream_ != nullptr) std::exchange(stream_, nullptr)->Close();
}

void HttpClient::Connection::OnTlsReady(TlsStream&) {
  if (pending_ != nullptr) WriteRequest();
}

void HttpClient::Connection::WriteRequest() {
  state_ = State::kBusy;
  ++requests_;
  got_response_bytes_ = false;
  got_head_ = false;
  const HttpClientRequest& r = pending_->request;
  std::string text = r.method + " " + r.target + " HTTP/1.1\r\nHost: " + client_->host_header_ +
                     "\r\nUser-Agent: picket\r\n";
  bool has_accept = false;
  for (const auto& [name, value] : r.headers) {
    text += name + ": " + value + "\r\n";
    has_accept = has_accept || strcasecmp(name.c_str(), "accept") == 0;
  }
  if (!has_accept) text += "Accept: application/json\r\n";
  if (!r.body.empty()) text += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  text += "\r\n";
  text += r.body;
  parser_.Begin(r.method == "HEAD");
  Arm(options().response_timeout_ms);
  if (auto ok = stream_->Write(text); !ok) Fail("write: " + ok.error().ToString());
}

void HttpClient::Connection::Arm(uint64_t ms) {
  uv_timer_stop(timer_);
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->OnTimer(); }, ms, 0);
}

void HttpClient::Connection::OnTimer() {
  if (!failure_.empty()) {
    Fail(std::exchange(failure_, {}));
    return;
  }
  switch (state_) {
    case State::kResolving:
    case State::kConnecting:
      Fail("connect timeout: no TLS connection within " +
           std::to_string(options().connect_timeout_ms) + " ms");
      return;
    case State::kBusy:
      if (pending_ != nullptr && pending_->streaming) {
        Fail("stream idle timeout: no bytes for " +
             std::to_string(options().stream_idle_timeout_ms) + " ms");
      } else {
        Fail((got_head_ ? "response timeout: body not complete within "
                        : "response timeout: no response within ") +
             std::to_string(options().response_timeout_ms) + " ms");
      }
      return;
    case State::kIdle:
      state_ = State::kClosed;
      client_->Release(this, false);
      return;
    case State::kClosed:
      return;
  }
}

void HttpClient::Connection::OnTlsData(TlsStream&, std::string_view plaintext) {
  if (state_ != State::kBusy || pending_ == nullptr) {
    // Bytes nobody asked for: the connection cannot be trusted for another request.
    state_ = State::kClosed;
    client_->Release(this, false);
    return;
  }
  got_response_bytes_ = true;
  parser_.Feed(plaintext);
  const RequestId id = pending_->id;
  while (pending_ != nullptr && pending_->id == id) {
    HttpResponseParser::Event event = parser_.Next();
    using Type = HttpResponseParser::Event::Type;
    switch (event.type) {
      case Type::kNeedMore:
        return;
      case Type::kError:
        Fail("malformed response: " + event.error);
        return;
      case Type::kHead: {
        got_head_ = true;
        const HttpResponseHead& head = parser_.head();
        pending_->response.status = head.status;
        pending_->response.headers = head.headers;
        pending_->streaming = pending_->request.on_line && head.status >= 200 && head.status < 300;
        if (pending_->streaming) {
          if (options().stream_idle_timeout_ms > 0) {
            Arm(options().stream_idle_timeout_ms);
          } else {
            uv_timer_stop(timer_);
          }
        } else if (auto length = head.Header("content-length");
                   parser_.framing() == HttpResponseParser::Framing::kLength &&
                   length.has_value() && length->size() > 0) {
          if (std::stoull(std::string(*length)) > options().max_body_bytes) {
            Fail("response body of " + std::string(*length) + " bytes exceeds the limit of " +
                 std::to_string(options().max_body_bytes) + " bytes");
            return;
          }
        }
        break;
      }
      case Type::kData:
        if (pending_->streaming) {
          if (options().stream_idle_timeout_ms > 0) Arm(options().stream_idle_timeout_ms);
          if (!StreamLines(event.data)) return;
        } else {
          if (pending_->response.body.size() + event.data.size() > options().max_body_bytes) {
            Fail("response body exceeds the limit of " + std::to_string(options().max_body_bytes) +
                 " bytes");
            return;
          }
          pending_->response.body.append(event.data);
        }
        break;
      case Type::kDone: {
        if (pending_->streaming && !pending_->line.empty()) {
          std::string last = std::move(pending_->line);
          pending_->line.clear();
          if (!last.empty() && last.back() == '\r') last.pop_back();
          pending_->request.on_line(last);
          if (pending_ == nullptr || pending_->id != id) return;
        }
        const bool reusable = parser_.head().keep_alive && parser_.buffered_bytes() == 0;
        HttpClientResponse response = std::move(pending_->response);
        Finish(std::move(response), reusable);
        return;
      }
    }
  }
}

bool HttpClient::Connection::StreamLines(std::string_view data) {
  const RequestId id = pending_->id;
  while (!data.empty()) {
    const size_t newline = data.find('\n');
    const std::string_view piece = data.substr(0, newline);
    if (pending_->line.size() + piece.size() > options().max_line_bytes) {
      Fail("a streamed line exceeds the limit of " + std::to_string(options().max_line_bytes) +
           " bytes");
      return false;
    }
    if (newline == std::string_view::npos) {
      pending_->line.append(piece);
      return true;
    }
    data.remove_prefix(newline + 1);
    std::string_view line = piece;
    if (!pending_->line.empty()) {
      pending_->line.append(piece);
      line = pending_->line;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // Copy out: the callback may cancel the request, which frees the buffer.
    std::string owned(line);
    pending_->line.clear();
    pending_->request.on_line(owned);
    if (pending_ == nullptr || pending_->id != id) return false;
  }
  return true;
}

void HttpClient::Connection::OnTlsClosed(TlsStream&, const std::string& reason) {
  stream_ = nullptr;
  if (state_ == State::kIdle || state_ == State::kClosed || pending_ == nullptr) {
    state_ = State::kClosed;
    client_->Release(this, false);
    return;
  }
  if (state_ == State::kBusy && got_response_bytes_) {
    HttpResponseParser::Event event = parser_.Eof();
    if (event.type == HttpResponseParser::Event::Type::kDone) {
      if (pending_->streaming && !pending_->line.empty()) {
        const RequestId id = pending_->id;
        std::string last = std::move(pending_->line);
        pending_->line.clear();
        pending_->request.on_line(last);
        if (pending_ == nullptr || pending_->id != id) return;
      }
      HttpClientResponse response = std::move(pending_->response);
      Finish(std::move(response), false);
      return;
    }
    Fail(event.error + " (" + reason + ")");
    return;
  }
  if (state_ == State::kBusy && requests_ > 1 && !pending_->retried) {
    // The server closed a pooled connection as we reused it (RFC 9112 §9.3.1): send again.
    std::unique_ptr<Pending> again = std::move(pending_);
    again->retried = true;
    state_ = State::kClosed;
    client_->Release(this, false);
    client_->Dispatch(std::move(again), /*allow_reuse=*/false);
    return;
  }
  Fail(state_ == State::kBusy ? "connection closed before a response: " + reason : reason);
}

void HttpClient::Connection::Finish(base::Result<HttpClientResponse> result, bool reusable) {
  std::unique_ptr<Pending> pending = std::move(pending_);
  state_ = reusable ? State::kIdle : State::kClosed;
  uv_timer_stop(timer_);
  client_->Release(this, reusable);
  if (pending != nullptr && pending->done) pending->done(std::move(result));
}

HttpClient::HttpClient(uv_loop_t* loop, HttpClientOptions options)
    : loop_(loop),
      options_(std::move(options)),
      reap_timer_(NewTimer(loop, this)),
      alive_(std::make_shared<bool>(true)) {
  const bool v6 = options_.host.find(':') != std::string::npos;
  const std::string host = v6 ? "[" + options_.host + "]" : options_.host;
  host_header_ = options_.port == 443 ? host : host + ":" + std::to_string(options_.port);
  origin_ = "https://" + host + ":" + std::to_string(options_.port);
}

HttpClient::~HttpClient() {
  Close();
  dead_.clear();
  CloseTimer(reap_timer_);
}

HttpClient::RequestId HttpClient::Send(HttpClientRequest request, Done done) {
  if (closed_) return 0;
  auto pending = std::make_unique<Pending>();
  pending->id = next_request_id_++;
  pending->request = std::move(request);
  pending->done = std::move(done);
  const RequestId id = pending->id;
  Dispatch(std::move(pending), /*allow_reuse=*/true);
  return id;
}

void HttpClient::Dispatch(std::unique_ptr<Pending> pending, bool allow_reuse) {
  if (allow_reuse && !idle_.empty()) {
    Connection* connection = idle_.back();
    idle_.pop_back();
    connection->Start(std::move(pending));
    return;
  }
  NewConnection()->Open(std::move(pending));
}

HttpClient::Connection* HttpClient::NewConnection() {
  const uint64_t id = next_connection_id_++;
  auto connection = std::make_unique<Connection>(this, id);
  Connection* raw = connection.get();
  connections_.emplace(id, std::move(connection));
  ++connections_opened_;
  return raw;
}

void HttpClient::Cancel(RequestId id) {
  for (auto& [_, connection] : connections_) {
    if (connection->pending() != nullptr && connection->pending()->id == id) {
      connection->Abandon();
      Release(connection.get(), false);
      return;
    }
  }
}

void HttpClient::Release(Connection* connection, bool reusable) {
  std::erase(idle_, connection);
  if (reusable && !closed_ && idle_.size() < options_.max_idle_connections) {
    connection->Idle();
    idle_.push_back(connection);
    return;
  }
  connection->Abandon();
  Bury(connection);
}

void HttpClient::Bury(Connection* connection) {
  auto it = connections_.find(connection->id());
  if (it == connections_.end()) return;
  dead_.push_back(std::move(it->second));
  connections_.erase(it);
  uv_timer_start(
      reap_timer_, [](uv_timer_t* t) { static_cast<HttpClient*>(t->data)->Reap(); }, 0, 0);
}

void HttpClient::Reap() { dead_.clear(); }

void HttpClient::Close() {
  if (closed_) return;
  closed_ = true;
  *alive_ = false;
  idle_.clear();
  while (!connections_.empty()) {
    Connection* connection = connections_.begin()->second.get();
    connection->Abandon();
    Bury(connection);
  }
}

}  // namespace picket::net
