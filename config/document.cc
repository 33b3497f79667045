// config/document.cc — see document.h. The only file outside config's loaders that includes
// yaml-cpp; every yaml-cpp exception is caught in ParseYamlDocuments.
#include "config/document.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

namespace picket::config {

// ---------------------------------------------------------------------------------------------
// Node

Node Node::Null() { return Node(); }

Node Node::Bool(bool v) {
  Node n;
  n.type_ = Type::kBool;
  n.bool_ = v;
  return n;
}
Node Node::Int(int64_t v) {
  Node n;
  n.type_ = Type::kInt;
  n.int_ = v;
  return n;
}
Node Node::Double(double v) {
  Node n;
  n.type_ = Type::kDouble;
  n.double_ = v;
  return n;
}
Node Node::String(std::string v) {
  Node n;
  n.type_ = Type::kString;
  n.string_ = std::move(v);
  return n;
}
Node Node::Sequence() { return Sequence(std::vector<Node>()); }

Node Node::Sequence(std::vector<Node> items) {
  Node n;
  n.type_ = Type::kSequence;
  n.items_ = std::move(items);
  return n;
}
Node Node::Mapping() {
  Node n;
  n.type_ = Type::kMapping;
  return n;
}

double Node::AsDouble() const {
  if (type_ == Type::kDouble) return double_;
  if (type_ == Type::kInt) return static_cast<double>(int_);
  return 0;
}

const std::string& Node::AsString() const {
  static const std::string kEmpty;
  return type_ == Type::kString ? string_ : kEmpty;
}

const Node* Node::Find(std::string_view key) const {
  for (const Member& m : members_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

Node* Node::Find(std::string_view key) {
  for (Member& m : members_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

const std::string& Node::StringAt(std::string_view key) const {
  const Node* n = Find(key);
  return n != nullptr ? n->AsString() : Node().AsString();
}

Node& Node::Set(std::string key, Node value) {
  if (type_ == Type::kNull) type_ = Type::kMapping;
  if (Node* existing = Find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  members_.push_back(Member{std::move(key), std::move(value)});
  return members_.back().value;
}

Node& Node::MappingAt(std::string key) {
  Node* existing = Find(key);
  if (existing != nullptr && !existing->IsNull()) return *existing;
  return Set(std::move(key), Node::Mapping());
}

bool Node::Erase(std::string_view key) {
  for (auto it = members_.begin(); it != members_.end(); ++it) {
    if (it->key == key) {
      members_.erase(it);
      return true;
    }
  }
  return false;
}

Node& Node::Append(Node value) {
  if (type_ == Type::kNull) type_ = Type::kSequence;
  items_.push_back(std::move(value));
  return items_.back();
}

bool operator==(const Node& a, const Node& b) {
  const bool a_num = a.IsInt() || a.IsDouble();
  const bool b_num = b.IsInt() || b.IsDouble();
  if (a_num && b_num) {
    if (a.IsInt() && b.IsInt()) return a.int_ == b.int_;
    return a.AsDouble() == b.AsDouble();
  }
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case Node::Type::kNull:
      return true;
    case Node::Type::kBool:
      return a.bool_ == b.bool_;
    case Node::Type::kString:
      return a.string_ == b.string_;
    case Node::Type::kSequence:
      return a.items_ == b.items_;
    case Node::Type::kMapping: {
      // Mappings are unordered: compare by key (keys are unique in a parsed tree).
      if (a.members_.size() != b.members_.size()) return false;
      std::vector<const Member*> x, y;
      for (const Member& m : a.members_) x.push_back(&m);
      for (const Member& m : b.members_) y.push_back(&m);
      auto by_key = [](const Member* l, const Member* r) { return l->key < r->key; };
      std::sort(x.begin(), x.end(), by_key);
      std::sort(y.begin(), y.end(), by_key);
      for (size_t i = 0; i < x.size(); ++i) {
        if (x[i]->key != y[i]->key || !(x[i]->value == y[i]->value)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// YAML 1.1 plain-scalar resolution, as go-yaml v2 (sigs.k8s.io/yaml, hence kubectl) reads it.

namespace {

bool OneOf(std::string_view s, std::initializer_list<std::string_view> set) {
  for (std::string_view c : set) {
    if (s == c) return true;
  }
  return false;
}

bool IsNullWord(std::string_view s) { return OneOf(s, {"", "~", "null", "Null", "NULL"}); }

std::optional<bool> BoolWord(std::string_view s) {
  if (OneOf(s, {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})) {
    return true;
  }
  if (OneOf(s, {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})) {
    return false;
  }
  return std::nullopt;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
bool MatchesFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
  } else {
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && IsDigit(s[i])) ++i;
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
  }
  return i == s.size();
}

std::optional<double> SpecialFloat(std::string_view s) {
  if (OneOf(s, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) {
    return std::numeric_limits<double>::infinity();
  }
  if (OneOf(s, {"-.inf", "-.Inf", "-.INF"})) return -std::numeric_limits<double>::infinity();
  if (OneOf(s, {".nan", ".NaN", ".NAN"})) return std::numeric_limits<double>::quiet_NaN();
  return std::nullopt;
}

// Go's strconv.ParseInt(s, 0, 64) after removing underscores.
std::optional<int64_t> ParseYamlInt(std::string_view in) {
  std::string s;
  for (char c : in) {
    if (c != '_') s.push_back(c);
  }
  if (s.empty()) return std::nullopt;
  bool negative = false;
  size_t i = 0;
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    i = 1;
  }
  int base = 10;
  if (s.size() - i >= 2 && s[i] == '0') {
    char p = s[i + 1];
    if (p == 'x' || p == 'X') {
      base = 16;
      i += 2;
    } else if (p == 'o' || p == 'O') {
      base = 8;
      i += 2;
    } else if (p == 'b' || p == 'B') {
      base = 2;
      i += 2;
    } else {
      base = 8;
      i += 1;
    }
  }
  if (i >= s.size()) return std::nullopt;
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(s.data() + i, s.data() + s.size(), magnitude, base);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (magnitude > kMax + 1) return std::nullopt;
    return magnitude == kMax + 1 ? std::numeric_limits<int64_t>::min()
                                 : -static_cast<int64_t>(magnitude);
  }
  if (magnitude > kMax) return std::nullopt;
  return static_cast<int64_t>(magnitude);
}

std::optional<double> ParseDouble(std::string_view s) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) {
    return (!s.empty() && s[0] == '-') ? -std::numeric_limits<double>::infinity()
                                       : std::numeric_limits<double>::infinity();
  }
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

Node ResolvePlain(const std::string& s) {
  if (IsNullWord(s)) return Node::Null();
  if (auto b = BoolWord(s)) return Node::Bool(*b);
  if (!s.empty() && (IsDigit(s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.')) {
    if (auto i = ParseYamlInt(s)) return Node::Int(*i);
    if (MatchesFloat(s)) {
      if (auto d = ParseDouble(s)) return Node::Double(*d);
    }
    if (auto d = SpecialFloat(s)) return Node::Double(*d);
  }
  return Node::String(s);
}

// ---------------------------------------------------------------------------------------------
// yaml-cpp → Node

struct YamlConverter {
  const ParseLimits& limits;
  std::string_view file;
  size_t nodes = 0;

  static int LineOf(const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    return m.line >= 0 ? m.line + 1 : 0;
  }

  std::expected<Node, Error> Convert(const YAML::Node& in, size_t depth) {
    if (++nodes > limits.max_nodes) {
      return std::unexpected(Error{std::string(file), LineOf(in), "", "",
                                   "document too large (more than " +
                                       std::to_string(limits.max_nodes) +
                                       " nodes, counting alias expansions)"});
    }
    if (depth > limits.max_depth) {
      return std::unexpected(Error{std::string(file), LineOf(in), "", "",
                                   "nesting deeper than " + std::to_string(limits.max_depth)});
    }
    Node out;
    switch (in.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out = Node::Null();
        break;
      case YAML::NodeType::Scalar: {
        const std::string& tag = in.Tag();
        if (tag == "!" || tag == "tag:yaml.org,2002:str") {
          out = Node::String(in.Scalar());
        } else if (tag == "?" || tag.rfind("tag:yaml.org,2002:", 0) == 0) {
          out = ResolvePlain(in.Scalar());
        } else {
          return std::unexpected(
              Error{std::string(file), LineOf(in), "", "", "unsupported YAML tag \"" + tag + "\""});
        }
        break;
      }
      case YAML::NodeType::Sequence: {
        out = Node::Sequence();
        for (const YAML::Node& item : in) {
          auto v = Convert(item, depth + 1);
          if (!v) return v;
          out.Append(std::move(*v));
        }
        break;
      }
      case YAML::NodeType::Map: {
        out = Node::Mapping();
        for (const auto& kv : in) {
          if (!kv.first.IsScalar()) {
            return std::unexpected(
                Error{std::string(file), LineOf(kv.first), "", "", "mapping keys must be scalars"});
          }
          const std::string& key = kv.first.Scalar();
          if (out.Find(key) != nullptr) {
            return std::unexpected(Error{std::string(file), LineOf(kv.first), "", "",
                                         "duplicate key \"" + key + "\""});
          }
          auto v = Convert(kv.second, depth + 1);
          if (!v) return v;
          out.Set(key, std::move(*v));
        }
        break;
      }
    }
    out.set_line(LineOf(in));
    return out;
  }
};

// yaml-cpp recurses once per nesting level while parsing; bound flow nesting before handing the
// text over so hostile input cannot exhaust the stack inside the library.
bool FlowNestingWithin(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  for (char c : text) {
    if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

// yaml-cpp 0.7.0 loops forever when a document's first token is ',' (e.g. the text ", a" or
// "a\n--- ,"). A ',' cannot start a YAML document anyway, so such input is rejected here before
// yaml-cpp sees it. Returns the 1-based line of the offending ',' or 0.
int DocumentStartingWithComma(std::string_view text) {
  bool at_document_start = true;
  int line = 1;
  size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // BOM
  while (i < text.size()) {
    const size_t eol = text.find('\n', i);
    std::string_view l = text.substr(i, eol == std::string_view::npos ? eol : eol - i);
    std::string_view rest = l;
    if (l.substr(0, 3) == "---" || l.substr(0, 3) == "...") {
      at_document_start = true;
      rest = l.substr(3);
    } else if (at_document_start && !l.empty() && l[0] == '%') {
      rest = {};  // a directive
    }
    if (at_document_start) {
      size_t k = rest.find_first_not_of(" \t\r");
      if (k != std::string_view::npos && rest[k] != '#') {
        if (rest[k] == ',') return line;
        at_document_start = false;
      }
    }
    if (eol == std::string_view::npos) break;
    i = eol + 1;
    ++line;
  }
  return 0;
}

}  // namespace

std::expected<std::vector<Node>, Error> ParseYamlDocuments(std::string_view text,
                                                           std::string_view file_name,
                                                           const ParseLimits& limits) {
  if (!FlowNestingWithin(text, limits.max_depth)) {
    return std::unexpected(Error{std::string(file_name), 0, "", "",
                                 "flow nesting deeper than " + std::to_string(limits.max_depth)});
  }
  if (int line = DocumentStartingWithComma(text); line > 0) {
    return std::unexpected(Error{std::string(file_name), line, "", "",
                                 "invalid YAML: a document cannot start with ','"});
  }
  std::vector<YAML::Node> raw;
  try {
    raw = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return std::unexpected(Error{std::string(file_name), e.mark.line >= 0 ? e.mark.line + 1 : 0, "",
                                 "", "invalid YAML: " + e.msg});
  } catch (const std::exception& e) {
    return std::unexpected(
        Error{std::string(file_name), 0, "", "", std::string("invalid YAML: ") + e.what()});
  }
  std::vector<Node> docs;
  docs.reserve(raw.size());
  YamlConverter conv{limits, file_name};
  try {
    for (const YAML::Node& doc : raw) {
      auto n = conv.Convert(doc, 0);
      if (!n) return std::unexpected(std::move(n.error()));
      docs.push_back(std::move(*n));
    }
  } catch (const std::exception& e) {
    return std::unexpected(
        Error{std::string(file_name), 0, "", "", std::string("invalid YAML: ") + e.what()});
  }
  return docs;
}

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

  // Length of the valid UTF-8 sequence starting at `s`, or 0.
  static size_t Utf8Length(std::string_view s) {
    const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
    unsigned char c = b(0);
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
      if (!cont(1) || !cont(2)) return 0;
      if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
      if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
      return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
      if (!cont(1) || !cont(2) || !cont(3)) return 0;
      if (c == 0xF0 && b(1) < 0x90) return 0;
      if (c == 0xF4 && b(1) >= 0x90) return 0;
      return 4;
    }
    return 0;
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
        size_t n = Utf8Length(text_.substr(pos_));
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

// ---------------------------------------------------------------------------------------------
// Writers

namespace {

std::string FormatDouble(double d) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, ec == std::errc() ? ptr : buf);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // stays a float when read back
  return s;
}

std::string YamlDouble(double d) {
  if (std::isnan(d)) return ".nan";
  if (std::isinf(d)) return d > 0 ? ".inf" : "-.inf";
  return FormatDouble(d);
}

std::string DoubleQuoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\0':
        out += "\\0";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\x%02x", u);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out += '"';
  return out;
}

// A literal block (`|`) reads best for multi-line text (scripts, config files in ConfigMaps).
// Used only when it round-trips exactly.
bool LiteralBlockFits(std::string_view s) {
  if (s.find('\n') == std::string_view::npos) return false;
  if (s.empty() || s[0] == ' ' || s[0] == '\t' || s[0] == '\n') return false;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) return false;
  }
  // A BOM or other oddities would also need care; plain printable UTF-8 is what we accept.
  return true;
}

void EmitLiteralBlock(std::string_view s, size_t indent, std::string& out) {
  size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
  out += trailing == 0 ? "|-" : (trailing == 1 ? "|" : "|+");
  out += '\n';
  std::string_view body = s.substr(0, s.size() - trailing);
  size_t start = 0;
  while (true) {
    size_t nl = body.find('\n', start);
    std::string_view line = body.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (!line.empty()) out.append(indent, ' ').append(line);
    out += '\n';
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  for (size_t i = 1; i < trailing; ++i) out += '\n';
}

std::string ScalarText(const Node& n) {
  switch (n.type()) {
    case Node::Type::kNull:
      return "null";
    case Node::Type::kBool:
      return n.AsBool() ? "true" : "false";
    case Node::Type::kInt:
      return std::to_string(n.AsInt());
    case Node::Type::kDouble:
      return YamlDouble(n.AsDouble());
    case Node::Type::kString:
      return IsPlainSafeYamlString(n.AsString()) ? n.AsString() : DoubleQuoted(n.AsString());
    default:
      return "";
  }
}

bool IsBlockCollection(const Node& n) {
  return (n.IsMapping() && !n.members().empty()) || (n.IsSequence() && !n.items().empty());
}

void EmitBlock(const Node& n, size_t indent, std::string& out);

// The text after "key:" or "-" for a scalar or an empty collection, including the newline.
void EmitInline(const Node& n, size_t indent, std::string& out) {
  if (n.IsMapping()) {
    out += " {}\n";
  } else if (n.IsSequence()) {
    out += " []\n";
  } else if (n.IsString() && LiteralBlockFits(n.AsString())) {
    out += ' ';
    EmitLiteralBlock(n.AsString(), indent, out);
  } else {
    out += ' ';
    out += ScalarText(n);
    out += '\n';
  }
}

void EmitMapping(const Node& n, size_t indent, std::string& out) {
  for (const Member& m : n.members()) {
    out.append(indent, ' ');
    out += IsPlainSafeYamlString(m.key) ? m.key : DoubleQuoted(m.key);
    out += ':';
    if (m.value.IsMapping() && !m.value.members().empty()) {
      out += '\n';
      EmitMapping(m.value, indent + 2, out);
    } else if (m.value.IsSequence() && !m.value.items().empty()) {
      out += '\n';
      EmitBlock(m.value, indent, out);  // kubectl style: "- " at the key's indentation
    } else {
      EmitInline(m.value, indent + 2, out);
    }
  }
}

void EmitSequence(const Node& n, size_t indent, std::string& out) {
  for (const Node& item : n.items()) {
    if (IsBlockCollection(item)) {
      // Emit the item as if it were indented by two more, then put "- " over the first two
      // columns of its first line.
      std::string nested;
      if (item.IsMapping()) {
        EmitMapping(item, indent + 2, nested);
      } else {
        EmitSequence(item, indent + 2, nested);
      }
      nested.replace(indent, 2, "- ");
      out += nested;
    } else {
      out.append(indent, ' ');
      out += '-';
      EmitInline(item, indent + 2, out);
    }
  }
}

void EmitBlock(const Node& n, size_t indent, std::string& out) {
  if (n.IsMapping()) {
    EmitMapping(n, indent, out);
  } else {
    EmitSequence(n, indent, out);
  }
}

void JsonString(std::string_view s, std::string& out) {
  out += '"';
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out += '"';
}

void EmitJsonTo(const Node& n, std::string& out) {
  switch (n.type()) {
    case Node::Type::kNull:
      out += "null";
      break;
    case Node::Type::kBool:
      out += n.AsBool() ? "true" : "false";
      break;
    case Node::Type::kInt:
      out += std::to_string(n.AsInt());
      break;
    case Node::Type::kDouble:
      out += std::isfinite(n.AsDouble()) ? FormatDouble(n.AsDouble()) : "null";
      break;
    case Node::Type::kString:
      JsonString(n.AsString(), out);
      break;
    case Node::Type::kSequence: {
      out += '[';
      bool first = true;
      for (const Node& item : n.items()) {
        if (!first) out += ',';
        first = false;
        EmitJsonTo(item, out);
      }
      out += ']';
      break;
    }
    case Node::Type::kMapping: {
      out += '{';
      bool first = true;
      for (const Member& m : n.members()) {
        if (!first) out += ',';
        first = false;
        JsonString(m.key, out);
        out += ':';
        EmitJsonTo(m.value, out);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

bool IsPlainSafeYamlString(std::string_view s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.back() == ':') return false;
  // Indicators that start a non-plain node, and characters that start a number, a date or a
  // special float (quoting every digit-led string also keeps YAML 1.1 timestamps and
  // sexagesimals like 1:20 from being read as something else).
  // A leading '-' is fine when a non-space, non-number character follows ("--flag=x").
  const bool dash_ok =
      s.size() > 1 && s[0] == '-' && std::strchr(" \t.0123456789", s[1]) == nullptr;
  if (!dash_ok && std::strchr("-?:,[]{}#&*!|>'\"%@`0123456789+.=~<", s.front()) != nullptr) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char u = static_cast<unsigned char>(s[i]);
    if (u < 0x20 || u == 0x7f) return false;
    if (s[i] == ':' && i + 1 < s.size() && s[i + 1] == ' ') return false;
    if (s[i] == '#' && i > 0 && s[i - 1] == ' ') return false;
  }
  if (s.size() >= 3 && (s.substr(0, 3) == "---" || s.substr(0, 3) == "...")) return false;
  return ResolvePlain(std::string(s)).IsString();
}

std::string EmitYaml(const Node& node) {
  std::string out;
  if (IsBlockCollection(node)) {
    EmitBlock(node, 0, out);
  } else if (node.IsMapping()) {
    out = "{}\n";
  } else if (node.IsSequence()) {
    out = "[]\n";
  } else if (node.IsString() && LiteralBlockFits(node.AsString())) {
    EmitLiteralBlock(node.AsString(), 2, out);
  } else {
    out = ScalarText(node) + "\n";
  }
  return out;
}

std::string EmitYamlDocuments(const std::vector<Node>& documents) {
  std::string out;
  for (size_t i = 0; i < documents.size(); ++i) {
    if (i > 0) out += "---\n";
    out += EmitYaml(documents[i]);
  }
  return out;
}

std::string EmitJson(const Node& node) {
  std::string out;
  EmitJsonTo(node, out);
  return out;
}

}  // namespace picket::config
