// Unit tests of net/http_parser.h: framing, pipelining, byte-at-a-time input and every refusal.
#include "net/http_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace picket::net {
namespace {

// Feeds `input` in pieces of `step` bytes and collects the requests (and a final error, if any).
struct Parsed {
  std::vector<HttpRequest> requests;
  std::optional<HttpParseError> error;
};

Parsed ParseAll(const std::string& input, size_t step, HttpParserLimits limits = {}) {
  HttpRequestParser parser(limits);
  Parsed out;
  for (size_t i = 0; i < input.size() && !out.error; i += step) {
    parser.Feed(std::string_view(input).substr(i, step));
    while (true) {
      auto r = parser.Next();
      if (r.error) {
        out.error = r.error;
        break;
      }
      if (!r.request) break;
      out.requests.push_back(std::move(*r.request));
    }
  }
  return out;
}

int ErrorStatus(const std::string& input, HttpParserLimits limits = {}) {
  Parsed p = ParseAll(input, input.size(), limits);
  return p.error ? p.error->status : 0;
}

TEST(HttpParserTest, OneRequestWithFieldsQueryAndBody) {
  Parsed p = ParseAll(
      "POST /inject?timeout=10s HTTP/1.1\r\nHost: api\r\nContent-Type:application/json \r\n"
      "Content-Length: 2\r\n\r\n{}",
      1000);
  ASSERT_FALSE(p.error);
  ASSERT_EQ(p.requests.size(), 1u);
  const HttpRequest& r = p.requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/inject");
  EXPECT_EQ(r.query, "timeout=10s");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.body, "{}");
  EXPECT_TRUE(r.keep_alive);
}

TEST(HttpParserTest, ByteAtATimeEqualsAllAtOnceForPipelinedRequests) {
  std::string input = "\r\n";  // an empty line before a request is ignored (RFC 9112 §2.2)
  for (int i = 0; i < 5; ++i) {
    const std::string body(static_cast<size_t>(i * 3), 'x');
    input += "PUT /r" + std::to_string(i) +
             " HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
             body;
  }
  for (size_t step : {1u, 2u, 7u, 1000u}) {
    Parsed p = ParseAll(input, step);
    ASSERT_FALSE(p.error) << step;
    ASSERT_EQ(p.requests.size(), 5u) << step;
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(p.requests[i].path, "/r" + std::to_string(i));
      EXPECT_EQ(p.requests[i].body.size(), static_cast<size_t>(i * 3));
    }
  }
}

TEST(HttpParserTest, ConnectionSemantics) {
  auto one = [](const std::string& text) { return ParseAll(text, text.size()).requests.at(0); };
  EXPECT_FALSE(one("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n").keep_alive);
  EXPECT_TRUE(one("GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive);
  EXPECT_FALSE(one("GET / HTTP/1.0\r\n\r\n").keep_alive);
  EXPECT_TRUE(one("GET / HTTP/1.0\r\nConnection: foo, Keep-Alive\r\n\r\n").keep_alive);
  EXPECT_TRUE(one("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n").expect_continue);
}

TEST(HttpParserTest, ExpectContinueIsAskedOnceWhileTheBodyIsMissing) {
  HttpRequestParser parser({});
  parser.Feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  auto r = parser.Next();
  EXPECT_FALSE(r.request || r.error);
  EXPECT_EQ(parser.phase(), HttpRequestParser::Phase::kBody);
  EXPECT_TRUE(parser.TakeContinueRequest());
  EXPECT_FALSE(parser.TakeContinueRequest());
  parser.Feed("abc");
  r = parser.Next();
  ASSERT_TRUE(r.request);
  EXPECT_EQ(parser.phase(), HttpRequestParser::Phase::kIdle);
}

TEST(HttpParserTest, Refusals) {
  EXPECT_EQ(ErrorStatus("garbage\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("GET x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\n\r\n"), 400);                        // no Host
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);  // two Hosts
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nX\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nX: a\nY: b\r\n\r\n"), 400);  // bare LF
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), 400);     // bare CR
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\n  fold\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n"), 400);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n"
                        "\r\n"),
            400);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(ErrorStatus("GET / HTTPS/1.1\r\nHost: h\r\n\r\n"), 400);
  HttpParserLimits small{.max_header_bytes = 64, .max_body_bytes = 10};
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(100, 'a'), small), 431);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", small), 413);
  EXPECT_EQ(ErrorStatus("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", small), 0);
}

TEST(HttpParserTest, NothingMoreAfterAnError) {
  HttpRequestParser parser({});
  parser.Feed("BAD\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(parser.Next().error);
  EXPECT_EQ(parser.phase(), HttpRequestParser::Phase::kFailed);
  parser.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  auto r = parser.Next();
  EXPECT_FALSE(r.request || r.error);
}

}  // namespace
}  // namespace picket::net
