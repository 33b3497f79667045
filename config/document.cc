// config/document.cc — see document.h: Node, plain-scalar resolution and the YAML reader (the
// only part that includes yaml-cpp; every yaml-cpp exception is caught in ParseYamlDocuments).
// The JSON reader is in document_json.cc, the writers in document_emit.cc.
#include "config/document.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "config/document_scalar.h"

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

}  // namespace

namespace document_internal {

Node ResolvePlainScalar(const std::string& s) { return ResolvePlain(s); }

std::optional<double> ParseDoubleText(std::string_view s) { return ParseDouble(s); }

}  // namespace document_internal

namespace {

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

// Input yaml-cpp 0.7.0 must never see. YAML allows no C0 control characters other than tab, LF
// and CR, nor DEL (YAML 1.2 §5.1, c-printable); yaml-cpp mis-scans some of them (NUL ends its
// stream early). And yaml-cpp loops forever when a document's first token is ',' (e.g. ", a" or
// "a\n--- ,"), which cannot start a YAML document anyway (found by test/fuzz/document_fuzz).
// Returns the reason and 1-based line, or an empty reason.
std::pair<std::string, int> RejectBeforeYamlCpp(std::string_view text) {
  int line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') ++line;
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      char buf[64];
      snprintf(buf, sizeof buf, "control character 0x%02x is not allowed in YAML", c);
      return {buf, line};
    }
  }
  bool at_document_start = true;
  line = 1;
  size_t i = 0;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // BOM
  while (i < text.size()) {
    // yaml-cpp breaks lines at LF, CR and CRLF alike.
    const size_t eol = text.find_first_of("\r\n", i);
    std::string_view l = text.substr(i, eol == std::string_view::npos ? eol : eol - i);
    std::string_view rest = l;
    if (l.substr(0, 3) == "---" || l.substr(0, 3) == "...") {
      at_document_start = true;
      rest = l.substr(3);
    } else if (at_document_start && !l.empty() && l[0] == '%') {
      rest = {};  // a directive
    }
    if (at_document_start) {
      size_t k = rest.find_first_not_of(" \t");
      if (k != std::string_view::npos && rest[k] != '#') {
        if (rest[k] == ',') return {"a document cannot start with ','", line};
        at_document_start = false;
      }
    }
    if (eol == std::string_view::npos) break;
    if (text[eol] == '\n') ++line;
    i = eol + 1;
  }
  return {"", 0};
}

}  // namespace

std::expected<std::vector<Node>, Error> ParseYamlDocuments(std::string_view text,
                                                           std::string_view file_name,
                                                           const ParseLimits& limits) {
  if (!FlowNestingWithin(text, limits.max_depth)) {
    return std::unexpected(Error{std::string(file_name), 0, "", "",
                                 "flow nesting deeper than " + std::to_string(limits.max_depth)});
  }
  if (auto [reason, line] = RejectBeforeYamlCpp(text); !reason.empty()) {
    return std::unexpected(Error{std::string(file_name), line, "", "", "invalid YAML: " + reason});
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

}  // namespace picket::config
