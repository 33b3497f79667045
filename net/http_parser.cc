// net/http_parser.cc — see http_parser.h.
#include "net/http_parser.h"

#include <algorithm>

namespace picket::net {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kHeadEnd = "\r\n\r\n";

// RFC 9110 §5.6.2 tchar.
bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return IsTokenChar(static_cast<unsigned char>(c));
  });
}

// field-vchar / SP / HTAB (RFC 9110 §5.5): no control characters other than HTAB.
bool IsFieldValue(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Calls `f(token)` for each lower-cased, trimmed element of a comma-separated list.
template <typename F>
void ForEachListElement(std::string_view value, F f) {
  while (true) {
    const size_t comma = value.find(',');
    const std::string_view element = TrimOws(value.substr(0, comma));
    if (!element.empty()) f(Lower(element));
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

HttpResponseParser::Event MakeEvent(HttpResponseParser::Event::Type type) {
  HttpResponseParser::Event e;
  e.type = type;
  return e;
}

}  // namespace

std::optional<std::string_view> HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

void HttpRequestParser::Feed(std::string_view bytes) {
  if (phase_ == Phase::kFailed) return;
  buffer_.append(bytes);
}

HttpParseError HttpRequestParser::Fail(int status, std::string reason) {
  phase_ = Phase::kFailed;
  buffer_.clear();
  consumed_ = 0;
  scan_from_ = 0;
  return HttpParseError{status, std::move(reason)};
}

bool HttpRequestParser::TakeContinueRequest() { return std::exchange(continue_requested_, false); }

void HttpRequestParser::Compact() {
  if (consumed_ == 0) return;
  if (consumed_ < buffer_.size() / 2 && consumed_ < (64u << 10)) return;
  buffer_.erase(0, consumed_);
  scan_from_ = scan_from_ > consumed_ ? scan_from_ - consumed_ : 0;
  consumed_ = 0;
}

HttpRequestParser::Result HttpRequestParser::Next() {
  if (phase_ == Phase::kFailed) return {};
  if (phase_ != Phase::kBody) {
    // RFC 9112 §2.2: a server SHOULD ignore empty lines received before the request line.
    if (phase_ == Phase::kIdle) {
      while (std::string_view(buffer_).substr(consumed_).starts_with(kCrlf)) consumed_ += 2;
      scan_from_ = std::max(scan_from_, consumed_);
    }
    if (buffered_bytes() == 0 ||
        (phase_ == Phase::kIdle && buffered_bytes() == 1 && buffer_[consumed_] == '\r')) {
      Compact();
      return {};
    }
    phase_ = Phase::kHead;
    const size_t end = buffer_.find(kHeadEnd, scan_from_);
    if (end == std::string::npos) {
      if (buffered_bytes() > limits_.max_header_bytes) {
        return {.request = std::nullopt, .error = Fail(431, "request header fields too large")};
      }
      scan_from_ = std::max(consumed_, buffer_.size() >= 3 ? buffer_.size() - 3 : 0);
      return {};
    }
    if (end + kHeadEnd.size() - consumed_ > limits_.max_header_bytes) {
      return {.request = std::nullopt, .error = Fail(431, "request header fields too large")};
    }
    if (auto error = ParseHead(std::string_view(buffer_).substr(consumed_, end - consumed_))) {
      return {.request = std::nullopt, .error = Fail(error->status, std::move(error->reason))};
    }
    consumed_ = end + kHeadEnd.size();
    scan_from_ = consumed_;
    if (body_length_ > limits_.max_body_bytes) {
      return {.request = std::nullopt,
              .error = Fail(413, "request body of " + std::to_string(body_length_) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(limits_.max_body_bytes) + " bytes")};
    }
    phase_ = Phase::kBody;
    continue_requested_ = pending_.expect_continue && buffered_bytes() < body_length_;
  }
  if (buffered_bytes() < body_length_) return {};
  pending_.body = buffer_.substr(consumed_, body_length_);
  consumed_ += body_length_;
  scan_from_ = consumed_;
  continue_requested_ = false;
  phase_ = Phase::kIdle;
  Result result{.request = std::move(pending_), .error = std::nullopt};
  pending_ = HttpRequest{};
  Compact();
  return result;
}

std::optional<HttpParseError> HttpRequestParser::ParseHead(std::string_view head) {
  pending_ = HttpRequest{};
  body_length_ = 0;
  const size_t line_end = head.find(kCrlf);
  const std::string_view line = head.substr(0, line_end);
  std::string_view fields =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);

  // Request line: method SP request-target SP HTTP-version (RFC 9112 §3).
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return HttpParseError{400, "malformed request line"};
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return HttpParseError{400, "malformed request method"};
  const bool target_ok = !target.empty() && IsFieldValue(target) &&
                         target.find_first_of(" \t") == std::string_view::npos &&
                         (target.front() == '/' || (target == "*" && method == "OPTIONS"));
  if (!target_ok) return HttpParseError{400, "malformed request target (expected /path)"};
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return HttpParseError{400, "malformed HTTP version"};
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return HttpParseError{505, "HTTP version not supported (use HTTP/1.1)"};
  }
  pending_.method = std::string(method);
  const size_t q = target.find('?');
  pending_.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) pending_.query = std::string(target.substr(q + 1));
  pending_.version_minor = version[7] - '0';

  bool close = false;
  bool keep_alive = false;
  int hosts = 0;
  std::optional<size_t> content_length;
  while (!fields.empty()) {
    const size_t end = fields.find(kCrlf);
    const std::string_view field = fields.substr(0, end);
    fields = end == std::string_view::npos ? std::string_view() : fields.substr(end + 2);
    if (field.empty()) return HttpParseError{400, "malformed header field"};
    if (field.front() == ' ' || field.front() == '\t') {
      return HttpParseError{400, "obsolete line folding in a header field"};
    }
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon))) {
      return HttpParseError{400, "malformed header field"};
    }
    const std::string_view value = TrimOws(field.substr(colon + 1));
    if (!IsFieldValue(value)) return HttpParseError{400, "invalid character in a header field"};
    std::string name = Lower(field.substr(0, colon));
    if (name == "content-length") {
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return HttpParseError{400, "invalid Content-Length"};
      }
      size_t length = 0;
      for (char c : value) length = length * 10 + static_cast<size_t>(c - '0');
      if (content_length && *content_length != length) {
        return HttpParseError{400, "conflicting Content-Length fields"};
      }
      content_length = length;
    } else if (name == "transfer-encoding") {
      return HttpParseError{501, "Transfer-Encoding is not supported; send Content-Length"};
    } else if (name == "connection") {
      ForEachListElement(value, [&](const std::string& token) {
        if (token == "close") close = true;
        if (token == "keep-alive") keep_alive = true;
      });
    } else if (name == "expect") {
      pending_.expect_continue = Lower(value) == "100-continue";
    } else if (name == "host") {
      ++hosts;
    }
    pending_.headers.emplace_back(std::move(name), std::string(value));
  }
  if (hosts > 1) return HttpParseError{400, "more than one Host field"};
  if (hosts == 0 && pending_.version_minor == 1) {
    return HttpParseError{400, "HTTP/1.1 request without Host"};
  }
  pending_.keep_alive = !close && (pending_.version_minor == 1 || keep_alive);
  body_length_ = content_length.value_or(0);
  return std::nullopt;
}

std::optional<std::string_view> HttpResponseHead::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

void HttpResponseParser::Begin(bool head_request) {
  if (state_ == State::kFailed) return;
  state_ = State::kHead;
  head_request_ = head_request;
  head_ = HttpResponseHead{};
  framing_ = Framing::kNone;
  remaining_ = 0;
}

void HttpResponseParser::Feed(std::string_view bytes) {
  if (state_ == State::kFailed) return;
  // Data views handed out before are invalid from here on, so this is where space is reclaimed.
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

HttpResponseParser::Event HttpResponseParser::Fail(std::string reason) {
  state_ = State::kFailed;
  buffer_.clear();
  consumed_ = 0;
  return Event{.type = Event::Type::kError, .data = {}, .error = std::move(reason)};
}

HttpResponseParser::Event HttpResponseParser::TakeData(size_t limit) {
  const size_t n = std::min(limit, buffered_bytes());
  if (n == 0) return Event{};
  Event e{.type = Event::Type::kData,
          .data = std::string_view(buffer_).substr(consumed_, n),
          .error = {}};
  consumed_ += n;
  return e;
}

HttpResponseParser::Event HttpResponseParser::Next() {
  using Type = Event::Type;
  while (true) {
    switch (state_) {
      case State::kFailed:
        return Event{.type = Type::kError, .data = {}, .error = "the response stream failed"};
      case State::kDone:
        return MakeEvent(HttpResponseParser::Event::Type::kDone);
      case State::kHead: {
        const size_t end = buffer_.find(kHeadEnd, consumed_);
        if (end == std::string::npos) {
          if (buffered_bytes() > limits_.max_header_bytes) {
            return Fail("response header section exceeds " +
                        std::to_string(limits_.max_header_bytes) + " bytes");
          }
          return Event{};
        }
        if (end + kHeadEnd.size() - consumed_ > limits_.max_header_bytes) {
          return Fail("response header section exceeds " +
                      std::to_string(limits_.max_header_bytes) + " bytes");
        }
        if (auto error = ParseHead(std::string_view(buffer_).substr(consumed_, end - consumed_))) {
          return Fail(std::move(*error));
        }
        consumed_ = end + kHeadEnd.size();
        // RFC 9112 §4: interim 1xx responses precede the final one; skip them (101 is an
        // upgrade, which we never ask for).
        if (head_.status >= 100 && head_.status < 200) {
          if (head_.status == 101) return Fail("unexpected 101 Switching Protocols");
          head_ = HttpResponseHead{};
          continue;
        }
        switch (framing_) {
          case Framing::kNone:
            state_ = State::kDone;
            break;
          case Framing::kLength:
            state_ = remaining_ == 0 ? State::kDone : State::kLengthBody;
            break;
          case Framing::kChunked:
            state_ = State::kChunkSize;
            break;
          case Framing::kUntilClose:
            state_ = State::kUntilClose;
            break;
        }
        return MakeEvent(HttpResponseParser::Event::Type::kHead);
      }
      case State::kLengthBody: {
        Event e = TakeData(remaining_);
        if (e.type == Type::kNeedMore) return e;
        remaining_ -= e.data.size();
        if (remaining_ == 0) state_ = State::kDone;
        return e;
      }
      case State::kUntilClose:
        return TakeData(buffered_bytes());
      case State::kChunkSize: {
        const size_t end = buffer_.find(kCrlf, consumed_);
        if (end == std::string::npos) {
          if (buffered_bytes() > limits_.max_chunk_line_bytes) {
            return Fail("chunk-size line exceeds " + std::to_string(limits_.max_chunk_line_bytes) +
                        " bytes");
          }
          return Event{};
        }
        if (end - consumed_ > limits_.max_chunk_line_bytes) {
          return Fail("chunk-size line exceeds " + std::to_string(limits_.max_chunk_line_bytes) +
                      " bytes");
        }
        std::string_view line = std::string_view(buffer_).substr(consumed_, end - consumed_);
        // chunk-size [ chunk-ext ] (RFC 9112 §7.1.1); extensions are ignored.
        const size_t ext = line.find_first_of("; \t");
        const std::string_view digits = line.substr(0, ext);
        if (digits.empty() || digits.size() > 15) return Fail("malformed chunk size");
        size_t size = 0;
        for (char c : digits) {
          int v = -1;
          if (c >= '0' && c <= '9') v = c - '0';
          if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') v = (c | 0x20) - 'a' + 10;
          if (v < 0) return Fail("malformed chunk size");
          size = size * 16 + static_cast<size_t>(v);
        }
        if (ext != std::string_view::npos && !IsFieldValue(line.substr(ext))) {
          return Fail("malformed chunk extension");
        }
        consumed_ = end + kCrlf.size();
        remaining_ = size;
        state_ = size == 0 ? State::kTrailers : State::kChunkData;
        continue;
      }
      case State::kChunkData: {
        Event e = TakeData(remaining_);
        if (e.type == Type::kNeedMore) return e;
        remaining_ -= e.data.size();
        if (remaining_ == 0) state_ = State::kChunkDataEnd;
        return e;
      }
      case State::kChunkDataEnd: {
        if (buffered_bytes() < kCrlf.size()) return Event{};
        if (!Unread().starts_with(kCrlf)) return Fail("chunk data not followed by CRLF");
        consumed_ += kCrlf.size();
        state_ = State::kChunkSize;
        continue;
      }
      case State::kTrailers: {
        // trailer-section CRLF: nothing, or fields ending in an empty line; fields are dropped.
        if (buffered_bytes() >= kCrlf.size() && Unread().starts_with(kCrlf)) {
          consumed_ += kCrlf.size();
          state_ = State::kDone;
          return MakeEvent(HttpResponseParser::Event::Type::kDone);
        }
        const size_t end = buffer_.find(kHeadEnd, consumed_);
        if (end == std::string::npos) {
          if (buffered_bytes() > limits_.max_header_bytes) {
            return Fail("trailer section exceeds " + std::to_string(limits_.max_header_bytes) +
                        " bytes");
          }
          return Event{};
        }
        if (end + kHeadEnd.size() - consumed_ > limits_.max_header_bytes) {
          return Fail("trailer section exceeds " + std::to_string(limits_.max_header_bytes) +
                      " bytes");
        }
        consumed_ = end + kHeadEnd.size();
        state_ = State::kDone;
        return MakeEvent(HttpResponseParser::Event::Type::kDone);
      }
    }
  }
}

HttpResponseParser::Event HttpResponseParser::Eof() {
  if (state_ == State::kUntilClose && buffered_bytes() == 0) {
    state_ = State::kDone;
    return MakeEvent(HttpResponseParser::Event::Type::kDone);
  }
  if (state_ == State::kDone) return MakeEvent(HttpResponseParser::Event::Type::kDone);
  if (state_ == State::kHead && buffered_bytes() == 0) {
    return Fail("the connection closed before a response");
  }
  return Fail("the connection closed in the middle of a response");
}

std::optional<std::string> HttpResponseParser::ParseHead(std::string_view head) {
  head_ = HttpResponseHead{};
  framing_ = Framing::kNone;
  remaining_ = 0;
  const size_t line_end = head.find(kCrlf);
  const std::string_view line = head.substr(0, line_end);
  std::string_view fields =
      line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);

  // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4).
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    return "malformed status line";
  }
  if (line[7] != '0' && line[7] != '1') return "unsupported HTTP version";
  head_.version_minor = line[7] - '0';
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return "malformed status code";
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return "malformed status code";
  head_.status = status;
  if (line.size() > 13) {
    const std::string_view reason = line.substr(13);
    if (!IsFieldValue(reason)) return "invalid character in the reason phrase";
    head_.reason = std::string(reason);
  }

  bool close = false;
  bool keep_alive = false;
  bool chunked = false;
  std::optional<size_t> content_length;
  while (!fields.empty()) {
    const size_t end = fields.find(kCrlf);
    const std::string_view field = fields.substr(0, end);
    fields = end == std::string_view::npos ? std::string_view() : fields.substr(end + 2);
    if (field.empty()) return "malformed header field";
    if (field.front() == ' ' || field.front() == '\t') {
      return "obsolete line folding in a header field";
    }
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon))) {
      return "malformed header field";
    }
    const std::string_view value = TrimOws(field.substr(colon + 1));
    if (!IsFieldValue(value)) return "invalid character in a header field";
    std::string name = Lower(field.substr(0, colon));
    if (name == "content-length") {
      if (value.empty() || value.size() > 18 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return "invalid Content-Length";
      }
      size_t length = 0;
      for (char c : value) length = length * 10 + static_cast<size_t>(c - '0');
      if (content_length && *content_length != length) return "conflicting Content-Length fields";
      content_length = length;
    } else if (name == "transfer-encoding") {
      // Only chunked is understood (we never send TE or Accept-Encoding), and it must be last.
      std::vector<std::string> codings;
      ForEachListElement(value, [&](const std::string& token) { codings.push_back(token); });
      for (size_t i = 0; i < codings.size(); ++i) {
        if (codings[i] != "chunked" || chunked || i + 1 != codings.size()) {
          return "unsupported Transfer-Encoding \"" + std::string(value) + "\"";
        }
        chunked = true;
      }
    } else if (name == "connection") {
      ForEachListElement(value, [&](const std::string& token) {
        if (token == "close") close = true;
        if (token == "keep-alive") keep_alive = true;
      });
    }
    head_.headers.emplace_back(std::move(name), std::string(value));
  }
  // RFC 9112 §6.1: a message with both is a smuggling attempt or an error; refuse it.
  if (chunked && content_length) return "both Transfer-Encoding and Content-Length";
  head_.keep_alive = !close && (head_.version_minor == 1 || keep_alive);
  // RFC 9112 §6.3: HEAD, 1xx, 204 and 304 responses have no body; then chunked, then
  // Content-Length, else the body runs to the end of the connection.
  if (head_request_ || status < 200 || status == 204 || status == 304) {
    framing_ = Framing::kNone;
  } else if (chunked) {
    framing_ = Framing::kChunked;
  } else if (content_length) {
    framing_ = Framing::kLength;
    remaining_ = *content_length;
  } else {
    framing_ = Framing::kUntilClose;
    head_.keep_alive = false;
  }
  return std::nullopt;
}

std::string_view HttpStatusText(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

}  // namespace picket::net
