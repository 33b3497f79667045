// config/document_json.cc — the strict RFC 8259 reader of document.h (ParseJson).
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "config/document.h"
#include "config/document_scalar.h"

namespace picket::config {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
std::optional<double> ParseDouble(std::string_view s) {
  return document_internal::ParseDoubleText(s);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// JSON reader

namespace {

class JsonReader {
 public:
  JsonReader(std::string_view text, std::string_view file, const ParseLimits& limits)
      : text_(text), file_(file), limits_(limits) {}

  std::expected<Node, Error> ParseDocument() {
    SkipSpace();
    auto v = ParseValue(0);
    if (!v) return v;
    SkipSpace();
    if (pos_ != text_.size()) return Fail("unexpected trailing characters after the JSON value");
    return v;
  }

 private:
  std::unexpected<Error> Fail(std::string reason) const {
    return std::unexpected(Error{std::string(file_), line_, "", "", std::move(reason)});
  }

  void SkipSpace() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\n') {
        ++line_;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        break;
      }
      ++pos_;
    }
  }

  bool Consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  std::expected<Node, Error> ParseValue(size_t depth) {
    if (++nodes_ > limits_.max_nodes) return Fail("JSON document too large");
    if (depth > limits_.max_depth) {
      return Fail("nesting deeper than " + std::to_string(limits_.max_depth));
    }
    if (pos_ >= text_.size()) return Fail("unexpected end of JSON input");
    const int line = line_;
    std::expected<Node, Error> out;
    char c = text_[pos_];
    if (c == '{') {
      out = ParseObject(depth);
    } else if (c == '[') {
      out = ParseArray(depth);
    } else if (c == '"') {
      auto s = ParseString();
      if (!s) return std::unexpected(std::move(s.error()));
      out = Node::String(std::move(*s));
    } else if (c == '-' || IsDigit(c)) {
      out = ParseNumber();
    } else if (Consume("true")) {
      out = Node::Bool(true);
    } else if (Consume("false")) {
      out = Node::Bool(false);
    } else if (Consume("null")) {
      out = Node::Null();
    } else {
      return Fail(std::string("unexpected character '") + Printable(c) + "'");
    }
    if (out) out->set_line(line);
    return out;
  }

  static std::string Printable(char c) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      return buf;
    }
    return std::string(1, c);
  }

  std::expected<Node, Error> ParseObject(size_t depth) {
    ++pos_;  // '{'
    Node out = Node::Mapping();
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return out;
    }
    while (true) {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Fail("expected a string key");
      auto key = ParseString();
      if (!key) return std::unexpected(std::move(key.error()));
      if (out.Find(*key) != nullptr) return Fail("duplicate key \"" + *key + "\"");
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return Fail("expected ':' after a key");
      ++pos_;
      SkipSpace();
      auto v = ParseValue(depth + 1);
      if (!v) return v;
      out.members().push_back(Member{std::move(*key), std::move(*v)});
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return out;
      }
      return Fail("expected ',' or '}' in an object");
    }
  }

  std::expected<Node, Error> ParseArray(size_t depth) {
    ++pos_;  // '['
    Node out = Node::Sequence();
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return out;
    }
    while (true) {
      SkipSpace();
      auto v = ParseValue(depth + 1);
      if (!v) return v;
      out.Append(std::move(*v));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return out;
      }
      return Fail("expected ',' or ']' in an array");
    }
  }

  std::expected<Node, Error> ParseNumber() {
    const size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    if (pos_ >= text_.size() || !IsDigit(text_[pos_])) return Fail("invalid number");
    if (text_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    }
    bool integral = true;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= text_.size() || !IsDigit(text_[pos_])) return Fail("invalid number");
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (pos_ >= text_.size() || !IsDigit(text_[pos_])) return Fail("invalid number");
      while (pos_ < text_.size() && IsDigit(text_[pos_])) ++pos_;
    }
    std::string_view num = text_.substr(start, pos_ - start);
    if (integral) {
      int64_t v = 0;
      auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
      if (ec == std::errc() && ptr == num.data() + num.size()) return Node::Int(v);
    }
    auto d = ParseDouble(num);
    if (!d) return Fail("invalid number");
    if (std::isinf(*d)) return Fail("number " + std::string(num) + " is out of range");
    return Node::Double(*d);
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::expected<uint32_t, Error> ParseHex4() {
    if (text_.size() - pos_ < 4) return Fail("truncated \\u escape");
    uint32_t v = 0;
    auto [ptr, ec] = std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, v, 16);
    if (ec != std::errc() || ptr != text_.data() + pos_ + 4) return Fail("invalid \\u escape");
    pos_ += 4;
    return v;
  }

  std::expected<std::string, Error> ParseString() {
    ++pos_;  // '"'
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) return Fail("unterminated string");
      char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        return Fail("control character " + Printable(c) + " in a string must be escaped");
      }
      if (c != '\\') {
        size_t n = document_internal::Utf8SequenceLength(text_.substr(pos_));
        if (n == 0) return Fail("invalid UTF-8 in a string");
        out.append(text_.substr(pos_, n));
        pos_ += n;
        continue;
      }
      ++pos_;
      if (pos_ >= text_.size()) return Fail("unterminated escape");
      char e = text_[pos_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          auto hi = ParseHex4();
          if (!hi) return std::unexpected(std::move(hi.error()));
          uint32_t cp = *hi;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!Consume("\\u")) return Fail("unpaired UTF-16 surrogate in \\u escape");
            auto lo = ParseHex4();
            if (!lo) return std::unexpected(std::move(lo.error()));
            if (*lo < 0xDC00 || *lo > 0xDFFF) return Fail("invalid UTF-16 surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (*lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Fail("unpaired UTF-16 surrogate in \\u escape");
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Fail(std::string("invalid escape '\\") + Printable(e) + "'");
      }
    }
  }

  std::string_view text_;
  std::string_view file_;
  const ParseLimits& limits_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t nodes_ = 0;
};

}  // namespace

std::expected<Node, Error> ParseJson(std::string_view text, std::string_view file_name,
                                     const ParseLimits& limits) {
  return JsonReader(text, file_name, limits).ParseDocument();
}

}  // namespace picket::config
