// Unit tests of net/http_parser.h's HttpResponseParser: framing (Content-Length, chunked at any
// byte boundary, to the end of the connection, no body), interim responses, keep-alive
// sequences, and every bound and refusal.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/http_parser.h"

namespace picket::net {
namespace {

using Type = HttpResponseParser::Event::Type;

struct Parsed {
  std::vector<int> statuses;
  std::vector<std::string> bodies;
  std::string error;
  bool done = false;  // the last response completed
};

// Feeds `input` in pieces of `step` bytes; expects `count` responses in a row; calls Eof() at
// the end when `eof`.
Parsed ParseAll(const std::string& input, size_t step, int count = 1, bool eof = false,
                HttpResponseLimits limits = {}, bool head_request = false) {
  HttpResponseParser parser(limits);
  parser.Begin(head_request);
  Parsed out;
  auto drain = [&](HttpResponseParser::Event e) {
    while (true) {
      switch (e.type) {
        case Type::kNeedMore:
          return true;
        case Type::kError:
          out.error = e.error;
          return false;
        case Type::kHead:
          out.statuses.push_back(parser.head().status);
          out.bodies.emplace_back();
          out.done = false;
          break;
        case Type::kData:
          out.bodies.back().append(e.data);
          break;
        case Type::kDone:
          out.done = true;
          if (static_cast<int>(out.statuses.size()) == count) return false;
          parser.Begin(head_request);
          break;
      }
      e = parser.Next();
    }
  };
  for (size_t i = 0; i < input.size(); i += step) {
    parser.Feed(std::string_view(input).substr(i, step));
    if (!drain(parser.Next())) return out;
  }
  if (input.empty() && !drain(parser.Next())) return out;
  if (eof) drain(parser.Eof());
  return out;
}

const std::string kChunked =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\n{\"a\":\r\n"
    "1B;name=value\r\n1}\n{\"type\":\"ADDED\",\"n\":22}\n\r\n"
    "0\r\nX-Trailer: t\r\n\r\n";

TEST(HttpResponseParserTest, ChunkedBodyAtEveryByteBoundary) {
  for (size_t step = 1; step <= kChunked.size(); ++step) {
    Parsed p = ParseAll(kChunked, step);
    ASSERT_EQ(p.error, "") << step;
    ASSERT_TRUE(p.done) << step;
    ASSERT_EQ(p.statuses, std::vector<int>{200});
    EXPECT_EQ(p.bodies[0], "{\"a\":1}\n{\"type\":\"ADDED\",\"n\":22}\n") << step;
  }
}

TEST(HttpResponseParserTest, ContentLengthAndKeepAliveSequence) {
  const std::string input =
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
      "HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
  for (size_t step : {1u, 3u, 7u, 1000u}) {
    Parsed p = ParseAll(input, step, 3);
    ASSERT_EQ(p.error, "") << step;
    EXPECT_EQ(p.statuses, (std::vector<int>{200, 404, 410})) << step;
    EXPECT_EQ(p.bodies, (std::vector<std::string>{"abc", "", "hi"})) << step;
  }
}

TEST(HttpResponseParserTest, BodyUntilCloseEndsAtEof) {
  Parsed p = ParseAll("HTTP/1.0 200 OK\r\n\r\nall of it", 4, 1, /*eof=*/true);
  EXPECT_EQ(p.error, "");
  EXPECT_TRUE(p.done);
  EXPECT_EQ(p.bodies.at(0), "all of it");
}

TEST(HttpResponseParserTest, NoBodyFor204And304AndHead) {
  EXPECT_TRUE(ParseAll("HTTP/1.1 204 No Content\r\n\r\n", 1).done);
  EXPECT_TRUE(ParseAll("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 1).done);
  Parsed head = ParseAll("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 1, 1, false, {}, true);
  EXPECT_TRUE(head.done);
  EXPECT_EQ(head.bodies.at(0), "");
}

TEST(HttpResponseParserTest, HeadFieldsAndConnectionSemantics) {
  HttpResponseParser parser;
  parser.Begin();
  parser.Feed(
      "HTTP/1.1 429 Too Many Requests\r\nRetry-After:  3 \r\nConnection: close\r\n"
      "Content-Length: 0\r\n\r\n");
  ASSERT_EQ(parser.Next().type, Type::kHead);
  EXPECT_EQ(parser.head().status, 429);
  EXPECT_EQ(parser.head().reason, "Too Many Requests");
  EXPECT_EQ(parser.head().Header("retry-after"), "3");
  EXPECT_FALSE(parser.head().keep_alive);
  EXPECT_EQ(parser.Next().type, Type::kDone);
}

TEST(HttpResponseParserTest, TruncatedResponsesAreErrorsAtEof) {
  EXPECT_NE(ParseAll("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 100, 1, true).error, "");
  EXPECT_NE(ParseAll(kChunked.substr(0, 60), 100, 1, true).error, "");
  EXPECT_EQ(ParseAll("", 1, 1, true).error, "the connection closed before a response");
}

TEST(HttpResponseParserTest, RefusesMalformedResponses) {
  auto error = [](const std::string& text) { return ParseAll(text, text.size()).error; };
  EXPECT_EQ(error("HTTP/2 200 OK\r\n\r\n"), "malformed status line");
  EXPECT_EQ(error("HTTP/1.1 2x0 OK\r\n\r\n"), "malformed status code");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\nBad Field: x\r\n\r\n"), "malformed header field");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\n folded\r\n\r\n"), "obsolete line folding in a header field");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), "invalid Content-Length");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            "conflicting Content-Length fields");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            "unsupported Transfer-Encoding \"gzip\"");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            "both Transfer-Encoding and Content-Length");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            "malformed chunk size");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n"),
            "malformed chunk size");
  EXPECT_EQ(error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY"),
            "chunk data not followed by CRLF");
  EXPECT_EQ(error("HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            "unexpected 101 Switching Protocols");
}

TEST(HttpResponseParserTest, BoundsAreEnforcedWhetherOrNotTheEndHasArrived) {
  HttpResponseLimits limits{.max_header_bytes = 64, .max_chunk_line_bytes = 8};
  const std::string big_head = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(60, 'x') + "\r\n\r\n";
  EXPECT_EQ(ParseAll(big_head, 1, 1, false, limits).error,
            "response header section exceeds 64 bytes");
  EXPECT_EQ(ParseAll(big_head, big_head.size(), 1, false, limits).error,
            "response header section exceeds 64 bytes");
  const std::string long_line =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + std::string(20, 'e');
  EXPECT_EQ(ParseAll(long_line, 1, 1, false, limits).error, "chunk-size line exceeds 8 bytes");
  EXPECT_EQ(ParseAll(long_line + "\r\n", 1000, 1, false, limits).error,
            "chunk-size line exceeds 8 bytes");
  const std::string trailers =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: " + std::string(80, 't') +
      "\r\n\r\n";
  EXPECT_EQ(ParseAll(trailers, 5, 1, false, limits).error, "trailer section exceeds 64 bytes");
}

}  // namespace
}  // namespace picket::net
