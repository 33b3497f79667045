// net/json.cc — strict RFC 8259 parser and deterministic writer. See json.h.
#include "net/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "policy/json_writer.h"

namespace picket::net {
namespace {

class Parser {
 public:
  Parser(std::string_view text, const JsonLimits& limits) : text_(text), limits_(limits) {}

  std::expected<Json, std::string> ParseDocument() {
    SkipSpace();
    Json value;
    if (!ParseValue(value, 0)) return std::unexpected(error_);
    SkipSpace();
    if (pos_ != text_.size()) {
      Fail("unexpected trailing data after the JSON value");
      return std::unexpected(error_);
    }
    return value;
  }

 private:
  bool Fail(std::string_view reason) {
    if (error_.empty()) error_ = "offset " + std::to_string(pos_) + ": " + std::string(reason);
    return false;
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  void SkipSpace() {
    while (!AtEnd()) {
      const char c = Peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
      ++pos_;
    }
  }

  bool Literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return Fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool ParseValue(Json& out, int depth) {
    if (AtEnd()) return Fail("unexpected end of input, expected a value");
    switch (Peek()) {
      case '{':
        return ParseObject(out, depth + 1);
      case '[':
        return ParseArray(out, depth + 1);
      case '"': {
        std::string s;
        if (!ParseString(s)) return false;
        out = Json(std::move(s));
        return true;
      }
      case 't':
        if (!Literal("true")) return false;
        out = Json(true);
        return true;
      case 'f':
        if (!Literal("false")) return false;
        out = Json(false);
        return true;
      case 'n':
        if (!Literal("null")) return false;
        out = Json(nullptr);
        return true;
      default:
        if (Peek() == '-' || (Peek() >= '0' && Peek() <= '9')) return ParseNumber(out);
        return Fail("unexpected character, expected a value");
    }
  }

  bool ParseObject(Json& out, int depth) {
    if (depth > limits_.max_depth) return Fail("nesting too deep");
    const size_t object_pos = pos_;
    ++pos_;  // '{'
    JsonObject::Items items;
    SkipSpace();
    if (!AtEnd() && Peek() == '}') {
      ++pos_;
      out = Json(JsonObject());
      return true;
    }
    while (true) {
      SkipSpace();
      if (AtEnd() || Peek() != '"') return Fail("expected a string key");
      std::string key;
      if (!ParseString(key)) return false;
      SkipSpace();
      if (AtEnd() || Peek() != ':') return Fail("expected ':' after object key");
      ++pos_;
      SkipSpace();
      Json value;
      if (!ParseValue(value, depth)) return false;
      items.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (AtEnd()) return Fail("unexpected end of input inside an object");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == '}') {
        ++pos_;
        JsonObject object;
        std::string duplicate;
        if (!object.AssignUnsorted(std::move(items), &duplicate)) {
          pos_ = object_pos;
          return Fail("duplicate object key \"" + duplicate + "\"");
        }
        out = Json(std::move(object));
        return true;
      }
      return Fail("expected ',' or '}' in an object");
    }
  }

  bool ParseArray(Json& out, int depth) {
    if (depth > limits_.max_depth) return Fail("nesting too deep");
    ++pos_;  // '['
    Json::Array array;
    SkipSpace();
    if (!AtEnd() && Peek() == ']') {
      ++pos_;
      out = Json(std::move(array));
      return true;
    }
    while (true) {
      SkipSpace();
      Json value;
      if (!ParseValue(value, depth)) return false;
      array.push_back(std::move(value));
      SkipSpace();
      if (AtEnd()) return Fail("unexpected end of input inside an array");
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() == ']') {
        ++pos_;
        out = Json(std::move(array));
        return true;
      }
      return Fail("expected ',' or ']' in an array");
    }
  }

  bool ParseNumber(Json& out) {
    const size_t start = pos_;
    if (Peek() == '-') ++pos_;
    if (AtEnd()) return Fail("truncated number");
    if (Peek() == '0') {
      ++pos_;
    } else if (Peek() >= '1' && Peek() <= '9') {
      while (!AtEnd() && Peek() >= '0' && Peek() <= '9') ++pos_;
    } else {
      return Fail("invalid number");
    }
    if (!AtEnd() && Peek() == '.') {
      ++pos_;
      if (AtEnd() || Peek() < '0' || Peek() > '9') return Fail("expected a digit after '.'");
      while (!AtEnd() && Peek() >= '0' && Peek() <= '9') ++pos_;
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      ++pos_;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
      if (AtEnd() || Peek() < '0' || Peek() > '9') return Fail("expected a digit in exponent");
      while (!AtEnd() && Peek() >= '0' && Peek() <= '9') ++pos_;
    }
    double value = 0;
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    auto [ptr, ec] = std::from_chars(first, last, value);
    if (ec == std::errc::result_out_of_range || !std::isfinite(value)) {
      pos_ = start;
      return Fail("number out of range");
    }
    if (ec != std::errc() || ptr != last) {
      pos_ = start;
      return Fail("invalid number");
    }
    out = Json(value);
    return true;
  }

  bool ParseHex4(uint32_t& out) {
    if (text_.size() - pos_ < 4) return Fail("truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_ + i];
      out <<= 4;
      if (c >= '0' && c <= '9') {
        out |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        out |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        out |= c - 'A' + 10;
      } else {
        return Fail("invalid hex digit in \\u escape");
      }
    }
    pos_ += 4;
    return true;
  }

  static void AppendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Validates one UTF-8 sequence starting at pos_ (RFC 3629: no overlongs, no surrogates).
  bool CopyUtf8(std::string& out) {
    const auto b0 = static_cast<uint8_t>(Peek());
    int extra = 0;
    uint32_t cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      extra = 1;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      extra = 2;
      cp = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      extra = 3;
      cp = b0 & 0x07;
    } else {
      return Fail("invalid UTF-8 in string");
    }
    if (text_.size() - pos_ <= static_cast<size_t>(extra)) return Fail("truncated UTF-8 in string");
    for (int i = 1; i <= extra; ++i) {
      const auto b = static_cast<uint8_t>(text_[pos_ + i]);
      if ((b & 0xC0) != 0x80) return Fail("invalid UTF-8 in string");
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return Fail("invalid UTF-8 in string");
    }
    out.append(text_.substr(pos_, extra + 1));
    pos_ += extra + 1;
    return true;
  }

  bool ParseString(std::string& out) {
    ++pos_;  // opening quote
    while (true) {
      if (AtEnd()) return Fail("unterminated string");
      const char c = Peek();
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<uint8_t>(c) < 0x20) return Fail("control character in string");
      if (static_cast<uint8_t>(c) >= 0x80) {
        if (!CopyUtf8(out)) return false;
        continue;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (AtEnd()) return Fail("unterminated escape");
      const char e = Peek();
      ++pos_;
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ParseHex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("unpaired low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") return Fail("unpaired high surrogate");
            pos_ += 2;
            uint32_t low = 0;
            if (!ParseHex4(low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) return Fail("invalid low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          --pos_;
          return Fail("invalid escape character");
      }
    }
  }

  std::string_view text_;
  const JsonLimits& limits_;
  size_t pos_ = 0;
  std::string error_;
};

void AppendNumber(std::string& out, double v) {
  char buf[32];
  if (v == std::trunc(v) && std::fabs(v) < 9.007199254740992e15) {
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    out.append(buf, ptr);
    return;
  }
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ptr);
}

}  // namespace

JsonObject::JsonObject(std::initializer_list<value_type> items) {
  for (const auto& item : items) emplace(item.first, item.second);
}

JsonObject::iterator JsonObject::LowerBound(std::string_view key) {
  return std::lower_bound(
      items_.begin(), items_.end(), key,
      [](const value_type& item, std::string_view k) { return item.first < k; });
}

JsonObject::iterator JsonObject::find(std::string_view key) {
  auto it = LowerBound(key);
  return it != items_.end() && it->first == key ? it : items_.end();
}

JsonObject::const_iterator JsonObject::find(std::string_view key) const {
  return const_cast<JsonObject*>(this)->find(key);
}

std::pair<JsonObject::iterator, bool> JsonObject::emplace(std::string key, Json value) {
  auto it = LowerBound(key);
  if (it != items_.end() && it->first == key) return {it, false};
  it = items_.emplace(it, std::move(key), std::move(value));
  return {it, true};
}

bool JsonObject::AssignUnsorted(Items items, std::string* duplicate) {
  std::stable_sort(items.begin(), items.end(),
                   [](const value_type& a, const value_type& b) { return a.first < b.first; });
  for (size_t i = 1; i < items.size(); ++i) {
    if (items[i].first == items[i - 1].first) {
      *duplicate = items[i].first;
      return false;
    }
  }
  items_ = std::move(items);
  return true;
}

std::optional<int64_t> Json::as_int(int64_t min, int64_t max) const {
  if (!is_number()) return std::nullopt;
  const double v = as_number();
  if (v != std::trunc(v) || v < static_cast<double>(min) || v > static_cast<double>(max)) {
    return std::nullopt;
  }
  return static_cast<int64_t>(v);
}

const Json* Json::Find(std::string_view key) const {
  if (!is_object()) return nullptr;
  const auto& object = as_object();
  auto it = object.find(key);
  return it == object.end() ? nullptr : &it->second;
}

Json& Json::operator[](std::string_view key) {
  return as_object().emplace(std::string(key), Json()).first->second;
}

void AppendJsonString(std::string& out, std::string_view s) { policy::AppendJsonString(out, s); }

void Json::SerializeTo(std::string& out) const {
  switch (type()) {
    case Type::kNull:
      out += "null";
      return;
    case Type::kBool:
      out += as_bool() ? "true" : "false";
      return;
    case Type::kNumber:
      AppendNumber(out, as_number());
      return;
    case Type::kString:
      AppendJsonString(out, as_string());
      return;
    case Type::kArray: {
      out += '[';
      bool first = true;
      for (const auto& v : as_array()) {
        if (!first) out += ',';
        first = false;
        v.SerializeTo(out);
      }
      out += ']';
      return;
    }
    case Type::kObject: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : as_object()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, k);
        out += ':';
        v.SerializeTo(out);
      }
      out += '}';
      return;
    }
  }
}

std::string Json::Serialize() const {
  std::string out;
  SerializeTo(out);
  return out;
}

std::expected<Json, std::string> ParseJson(std::string_view text, const JsonLimits& limits) {
  return Parser(text, limits).ParseDocument();
}

}  // namespace picket::net
