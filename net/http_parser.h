// net/http_parser.h — HTTP/1.1 request framing: bytes in, whole requests or a typed refusal out.
//
// Owns: `HttpRequest` (one request as a handler sees it), `HttpParseError` (the status a server
// answers a bad request with, and why) and `HttpRequestParser` (an incremental parser over one
// connection's byte stream). Pure: no sockets, no clock, no allocation beyond its buffer, so the
// fuzzer drives it directly (test/fuzz/http_fuzz.cc).
//
// What it accepts (RFC 9112): `method SP origin-form SP HTTP/1.0|HTTP/1.1 CRLF`, header fields
// `name ":" OWS value OWS CRLF`, an empty line, then a body framed by Content-Length only.
// What it refuses, and with which status:
//   400  a malformed request line or header field, obs-fold, a bare CR or LF in a field, an
//        invalid or conflicting Content-Length, a HTTP/1.1 request without Host (RFC 9112 §3.2)
//   413  a Content-Length above `max_body_bytes` (refused before the body is read)
//   431  a request line plus header fields above `max_header_bytes`
//   501  any Transfer-Encoding (chunked requests are not supported: send Content-Length;
//        RFC 9112 §6.1 — a server that does not understand a transfer coding answers 501)
//   505  an HTTP version other than 1.0 and 1.1
// After an error the parser is dead (the stream cannot be re-synchronised): the server answers
// with the status and closes the connection.
//
// `HttpResponseParser` is the client side of the same grammar (RFC 9112 §4, §6.3, §7.1): a
// status line, header fields, and a body framed by Content-Length, chunked transfer coding (any
// chunk and line boundaries), or the end of the connection; it hands body bytes out as they
// arrive so a client can stream (Kubernetes watches). Its refusals are reasons (the client turns
// them into errors), and its bounds are explicit: header section, chunk-size line, trailers.
//
// Thread-compatible: one parser per connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace picket::net {

struct HttpRequest {
  std::string method;  // as sent (methods are case-sensitive)
  std::string path;    // the target up to '?'
  std::string query;   // after '?', without it; may be empty
  int version_minor = 1;
  // Field names lower-cased, values with surrounding whitespace removed, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;        // HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive
  bool expect_continue = false;  // "Expect: 100-continue"

  // The first value of `name` (lower-case), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct HttpParseError {
  int status = 400;
  std::string reason;  // one line, no newline; sent as the response body
};

struct HttpParserLimits {
  size_t max_header_bytes = 16 << 10;  // request line + fields + the empty line
  size_t max_body_bytes = 1 << 20;
};

class HttpRequestParser {
 public:
  enum class Phase {
    kIdle,    // nothing buffered: between requests
    kHead,    // part of a request line or header section buffered
    kBody,    // the head is complete; waiting for Content-Length bytes
    kFailed,  // a parse error was returned; feed nothing more
  };

  explicit HttpRequestParser(HttpParserLimits limits) : limits_(limits) {}

  // Appends bytes read from the connection.
  void Feed(std::string_view bytes);
  struct Result {
    std::optional<HttpRequest> request;   // set when a whole request is ready
    std::optional<HttpParseError> error;  // set when the stream is bad (phase is then kFailed)
  };
  // The next complete request, nothing (more bytes needed), or the error to answer with. Call
  // until it returns neither; pipelined requests come out in order.
  [[nodiscard]] Result Next();

  Phase phase() const { return phase_; }
  // The head just completed asks for "100 Continue" and its body is not here yet; reading this
  // clears it (the server sends the interim response once).
  bool TakeContinueRequest();
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  HttpParseError Fail(int status, std::string reason);
  [[nodiscard]] std::optional<HttpParseError> ParseHead(std::string_view head);
  void Compact();

  HttpParserLimits limits_;
  Phase phase_ = Phase::kIdle;
  std::string buffer_;
  size_t consumed_ = 0;   // bytes of buffer_ already handed out
  size_t scan_from_ = 0;  // where to resume looking for the end of the head
  HttpRequest pending_;   // the head of the request whose body is awaited
  size_t body_length_ = 0;
  bool continue_requested_ = false;
};

struct HttpResponseHead {
  int status = 0;
  std::string reason;  // the reason phrase, possibly empty
  int version_minor = 1;
  // Field names lower-cased, values trimmed, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; 1.0 only with keep-alive

  std::optional<std::string_view> Header(std::string_view name) const;
};

struct HttpResponseLimits {
  size_t max_header_bytes = 64 << 10;     // status line + fields + the empty line; also trailers
  size_t max_chunk_line_bytes = 4 << 10;  // one chunk-size line with its extensions
};

class HttpResponseParser {
 public:
  enum class Framing { kNone, kLength, kChunked, kUntilClose };
  struct Event {
    enum class Type {
      kNeedMore,  // feed more bytes (or call Eof())
      kHead,      // head() is complete
      kData,      // `data` is body bytes, valid until the next Feed()
      kDone,      // the response is complete; Begin() the next one
      kError,     // `error` says why; the connection cannot be used again
    };
    Type type = Type::kNeedMore;
    std::string_view data;
    std::string error;
  };

  explicit HttpResponseParser(HttpResponseLimits limits = {}) : limits_(limits) {}

  // Expects the next response; bytes already buffered beyond the previous one are kept.
  // `head_request`: the response answers HEAD and has no body (RFC 9112 §6.3).
  void Begin(bool head_request = false);
  void Feed(std::string_view bytes);
  // The next event. Call until kNeedMore, kDone or kError.
  [[nodiscard]] Event Next();
  // The peer closed the connection: kDone for a body delimited by the close, else kError (a
  // truncated response). Call after Next() returned kNeedMore.
  [[nodiscard]] Event Eof();

  const HttpResponseHead& head() const { return head_; }
  Framing framing() const { return framing_; }
  bool failed() const { return state_ == State::kFailed; }
  // Bytes received and not yet handed out (after kDone: bytes of a response nobody asked for).
  size_t buffered_bytes() const { return buffer_.size() - consumed_; }

 private:
  enum class State {
    kHead,
    kLengthBody,
    kUntilClose,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kDone,
    kFailed
  };
  Event Fail(std::string reason);
  [[nodiscard]] std::optional<std::string> ParseHead(std::string_view head);
  Event TakeData(size_t limit);
  std::string_view Unread() const { return std::string_view(buffer_).substr(consumed_); }

  HttpResponseLimits limits_;
  State state_ = State::kHead;
  bool head_request_ = false;
  HttpResponseHead head_;
  Framing framing_ = Framing::kNone;
  std::string buffer_;
  size_t consumed_ = 0;
  size_t remaining_ = 0;  // of a Content-Length body or of the current chunk
};

// "OK", "Not Found", ... ("Unknown" for codes not listed).
std::string_view HttpStatusText(int status);

}  // namespace picket::net
