// config/document.cc — see document.h: Node, plain-scalar resolution and the YAML reader (the
// only part that includes yaml-cpp; every yaml-cpp exception is caught in ParseYamlDocuments).
// The JSON reader is in document_json.cc, the writers in document_emit.cc.
// Why ~570 lines: the YAML reader is one event handler whose states (document, mapping key,
// value, sequence, alias budget) only make sense together; splitting it would spread one state
// machine over files.
#include "config/document.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
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
    // Structural equality: NaN equals NaN (the same value read twice).
    if (std::isnan(a.AsDouble()) && std::isnan(b.AsDouble())) return true;
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

size_t Utf8SequenceLength(std::string_view s) {
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

}  // namespace document_internal

namespace {

// ---------------------------------------------------------------------------------------------
// yaml-cpp events → Node
//
// The tree is built from yaml-cpp's parser events rather than from YAML::Node: it keeps the
// scalar style (plain scalars are resolved, quoted and block scalars stay strings), counts nodes
// as they are made (aliases included, so an alias bomb stops at the limit instead of exhausting
// memory), and lets ParseYamlDocuments notice yaml-cpp 0.7.0 producing documents without
// consuming input (it does so forever on a stray ',' at document level, e.g. ", a" or
// "\"a\"\n,"; found by test/fuzz/document_fuzz).

class TreeBuilder final : public YAML::EventHandler {
 public:
  TreeBuilder(const ParseLimits& limits, std::string_view file) : limits_(limits), file_(file) {}

  // Per document.
  void OnDocumentStart(const YAML::Mark& mark) override {
    stack_.clear();
    root_ = Node();
    doc_start_ = mark.pos;
    doc_line_ = LineOf(mark);
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Node n;
    n.set_line(LineOf(mark));
    Add(std::move(n), "", /*is_key_text=*/false, anchor, 1);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) return Fail(LineOf(mark), "alias of an unknown anchor");
    nodes_ += it->second.size - 1;  // Add counts one
    if (nodes_ > limits_.max_nodes) return TooLarge(LineOf(mark));
    Add(it->second.node, it->second.key_text, it->second.is_scalar, 0, it->second.size);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    // The text was checked to be UTF-8, but yaml-cpp decodes the escapes \N and \_ to the
    // single bytes 0x85 and 0xA0 (Latin-1, not UTF-8): such a value could not be written back
    // (found by the document fuzzer).
    for (size_t i = 0; i < value.size();) {
      const size_t n = document_internal::Utf8SequenceLength(std::string_view(value).substr(i));
      if (n == 0) {
        return Fail(LineOf(mark),
                    "invalid YAML: an escape decodes to bytes that are not UTF-8 (\\N, \\_): "
                    "write the character itself");
      }
      i += n;
    }
    Node n;
    if (tag == "!" || tag == "tag:yaml.org,2002:str") {
      n = Node::String(value);
    } else if (tag == "?" || tag.rfind("tag:yaml.org,2002:", 0) == 0) {
      n = ResolvePlain(value);
    } else {
      return Fail(LineOf(mark), "unsupported YAML tag \"" + tag + "\"");
    }
    n.set_line(LineOf(mark));
    Add(std::move(n), value, /*is_key_text=*/true, anchor, 1);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(Node::Sequence(), mark, anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(Node::Mapping(), mark, anchor);
  }
  void OnMapEnd() override { Close(); }

  const std::optional<Error>& error() const { return error_; }
  size_t doc_start() const { return doc_start_; }
  int doc_line() const { return doc_line_; }
  Node TakeRoot() { return std::move(root_); }

 private:
  struct Frame {
    Node node;
    YAML::anchor_t anchor = 0;
    size_t size = 1;
    bool has_key = false;
    std::string key;
    int key_line = 0;
  };
  struct Anchored {
    Node node;
    std::string key_text;
    bool is_scalar = false;
    size_t size = 1;
  };

  static int LineOf(const YAML::Mark& m) { return m.line >= 0 ? m.line + 1 : 0; }

  void Fail(int line, std::string reason) {
    if (!error_) error_ = Error{std::string(file_), line, "", "", std::move(reason)};
  }
  void TooLarge(int line) {
    Fail(line, "document too large (more than " + std::to_string(limits_.max_nodes) +
                   " nodes, counting alias expansions)");
  }

  void Open(Node n, const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (error_) return;
    if (stack_.size() >= limits_.max_depth) {
      return Fail(LineOf(mark), "nesting deeper than " + std::to_string(limits_.max_depth));
    }
    if (++nodes_ > limits_.max_nodes) return TooLarge(LineOf(mark));
    n.set_line(LineOf(mark));
    stack_.push_back(Frame{std::move(n), anchor, 1, false, "", 0});
  }

  void Close() {
    if (error_ || stack_.empty()) return;
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.has_key) return Fail(f.key_line, "mapping key without a value");
    --nodes_;  // counted in Open; Add counts it again
    Add(std::move(f.node), "", /*is_key_text=*/false, f.anchor, f.size);
  }

  // Places a finished node (of `size` nodes) into its parent, or makes it the root.
  void Add(Node n, const std::string& key_text, bool is_key_text, YAML::anchor_t anchor,
           size_t size) {
    if (error_) return;
    if (size == 1 && ++nodes_ > limits_.max_nodes) return TooLarge(n.line());
    if (anchor != 0) anchors_[anchor] = Anchored{n, key_text, is_key_text, size};
    if (stack_.empty()) {
      root_ = std::move(n);
      return;
    }
    Frame& parent = stack_.back();
    parent.size += size;
    if (parent.node.IsSequence()) {
      parent.node.Append(std::move(n));
      return;
    }
    if (!parent.has_key) {
      if (!is_key_text) return Fail(n.line(), "mapping keys must be non-null scalars");
      if (parent.node.Find(key_text) != nullptr) {
        return Fail(n.line(), "duplicate key \"" + key_text + "\"");
      }
      parent.has_key = true;
      parent.key = key_text;
      parent.key_line = n.line();
      return;
    }
    parent.node.members().push_back(Member{std::move(parent.key), std::move(n)});
    parent.has_key = false;
  }

  const ParseLimits& limits_;
  std::string_view file_;
  std::optional<Error> error_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Anchored> anchors_;
  Node root_;
  size_t nodes_ = 0;
  size_t doc_start_ = 0;
  int doc_line_ = 0;
};

// yaml-cpp recurses once per nesting level while parsing; bound flow nesting before handing the
// text over so hostile input cannot exhaust the stack inside the library.
bool FlowNestingWithin(std::string_view text, size_t max_depth) {
  // Brackets inside a quoted scalar are text, not nesting (what we emit quotes such strings, and
  // an alias repeats them: found by the document fuzzer). A quote opens a scalar only where a
  // node can start — after indentation, after `[`, `{` or `,`, or after `:`, `-` or `?` and a
  // space — so a quote inside a plain scalar is never mistaken for one (that could hide real
  // nesting from this check); anywhere else brackets are counted, which errs on the safe side.
  size_t depth = 0;
  bool line_start = true;    // only spaces since the last newline
  char prev = '\n';          // the last character that is not a space
  bool space_after = false;  // a space since `prev`
  bool space_before = true;  // `prev` came after a space or a line start
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      // `-` and `?` are indicators only as a token of their own (`foo- "x` is a plain scalar).
      const bool indicator =
          space_after && (prev == ':' || ((prev == '-' || prev == '?') && space_before));
      if (line_start || prev == '[' || prev == '{' || prev == ',' || indicator) {
        // Skip to the closing quote: `\"` escapes in double quotes, `''` in single ones.
        size_t j = i + 1;
        for (; j < text.size(); ++j) {
          if (c == '"' && text[j] == '\\') {
            ++j;
          } else if (text[j] == c) {
            if (c == '\'' && j + 1 < text.size() && text[j + 1] == '\'') {
              ++j;
            } else {
              break;
            }
          }
        }
        i = j;
        prev = c;
        line_start = false;
        space_after = false;
        space_before = false;
        continue;
      }
    }
    if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
    if (c == '\n') {
      line_start = true;
      prev = '\n';
      space_after = false;
      space_before = true;
    } else if (c == ' ' || c == '\t') {
      space_after = true;
    } else {
      space_before = line_start || space_after;
      line_start = false;
      prev = c;
      space_after = false;
    }
  }
  return true;
}

// YAML allows no C0 control characters other than tab, LF and CR, nor DEL (YAML 1.2 §5.1,
// c-printable); yaml-cpp mis-scans some of them (NUL ends its stream early). Returns the 1-based
// line of the first one, or 0.
std::pair<int, unsigned char> ControlCharacter(std::string_view text) {
  int line = 1;
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '\n') ++line;
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return {line, c};
  }
  return {0, 0};
}

// YAML streams are Unicode; we accept UTF-8 only (yaml-cpp would guess UTF-16/32 from a
// byte-order mark, and re-emitting undecodable bytes could not round-trip). Returns the 1-based
// line of the first invalid sequence, or 0.
int InvalidUtf8Line(std::string_view text) {
  int line = 1;
  for (size_t i = 0; i < text.size();) {
    const size_t n = document_internal::Utf8SequenceLength(text.substr(i));
    if (n == 0) return line;
    if (text[i] == '\n') ++line;
    i += n;
  }
  return 0;
}

}  // namespace

std::expected<std::vector<Node>, Error> ParseYamlDocuments(std::string_view text,
                                                           std::string_view file_name,
                                                           const ParseLimits& limits) {
  const std::string file(file_name);
  if (!FlowNestingWithin(text, limits.max_depth)) {
    return std::unexpected(
        Error{file, 0, "", "", "flow nesting deeper than " + std::to_string(limits.max_depth)});
  }
  if (int line = InvalidUtf8Line(text); line > 0) {
    return std::unexpected(Error{file, line, "", "", "invalid YAML: not valid UTF-8"});
  }
  if (auto [line, c] = ControlCharacter(text); line > 0) {
    char reason[80];
    snprintf(reason, sizeof reason, "invalid YAML: control character 0x%02x is not allowed", c);
    return std::unexpected(Error{file, line, "", "", reason});
  }
  std::vector<Node> docs;
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    TreeBuilder builder(limits, file_name);
    size_t previous_start = std::string_view::npos;
    while (parser.HandleNextDocument(builder)) {
      if (builder.error()) return std::unexpected(*builder.error());
      if (builder.doc_start() == previous_start) {
        // yaml-cpp made a document without consuming anything: it is stuck on a token that
        // cannot start a node (see TreeBuilder).
        return std::unexpected(Error{file, builder.doc_line(), "", "",
                                     "invalid YAML: unexpected ',' where a document or node "
                                     "should start"});
      }
      previous_start = builder.doc_start();
      docs.push_back(builder.TakeRoot());
    }
  } catch (const YAML::Exception& e) {
    return std::unexpected(
        Error{file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "", "invalid YAML: " + e.msg});
  } catch (const std::exception& e) {
    return std::unexpected(Error{file, 0, "", "", std::string("invalid YAML: ") + e.what()});
  }
  return docs;
}

}  // namespace picket::config
