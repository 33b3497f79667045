// config/document_json.cc — the JSON reader of document.h (ParseJson), over base/json.h.
//
// base::ParseJson (simdjson) validates the text: strict RFC 8259, UTF-8, depth. This file turns
// the parsed tape into a `Node` tree, rejecting what RFC 8259 leaves open but a Kubernetes
// object may not have (duplicate keys), charging the node budget, and giving each value the
// line it starts on. simdjson keeps no source positions, so a second, trivial walk over the
// (now known valid) text finds where each value starts, in the same document order.
#include <cmath>
#include <string>

#include "base/json.h"
#include "config/document.h"

namespace picket::config {
namespace {

// Walks valid JSON text value by value, counting lines.
class LineCursor {
 public:
  explicit LineCursor(std::string_view text) : text_(text) {}

  // Skips whitespace; the line the next token starts on.
  int Next() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '\n') {
        ++line_;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        break;
      }
      ++pos_;
    }
    return line_;
  }
  // Steps over one structural character (`{`, `[`, `:`, `,`, `}`, `]`).
  void Step() {
    Next();
    ++pos_;
  }
  // Steps over a string token (escapes cannot hide a quote; strings hold no raw newline).
  void SkipString() {
    Next();
    ++pos_;  // opening quote
    while (pos_ < text_.size() && text_[pos_] != '"') pos_ += text_[pos_] == '\\' ? 2 : 1;
    ++pos_;
  }
  // Steps over a number or a literal.
  void SkipAtom() {
    Next();
    while (pos_ < text_.size() &&
           std::string_view(",]} \t\r\n").find(text_[pos_]) == std::string_view::npos) {
      ++pos_;
    }
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
};

class Converter {
 public:
  Converter(std::string_view text, std::string_view file, const ParseLimits& limits)
      : cursor_(text), file_(file), limits_(limits) {}

  std::expected<Node, Error> Convert(const base::JsonValue& v) {
    if (++nodes_ > limits_.max_nodes) return Fail(cursor_.Next(), "JSON document too large");
    const int line = cursor_.Next();
    Node out;
    switch (v.type()) {
      case base::JsonType::kObject: {
        out = Node::Mapping();
        cursor_.Step();  // '{'
        for (const base::JsonMember& m : v.Members()) {
          const int key_line = cursor_.Next();
          cursor_.SkipString();
          cursor_.Step();  // ':'
          if (out.Find(m.key) != nullptr) {
            return Fail(key_line, "duplicate key \"" + std::string(m.key) + "\"");
          }
          auto value = Convert(m.value);
          if (!value) return value;
          out.members().push_back(Member{std::string(m.key), std::move(*value)});
          cursor_.Step();  // ',' or '}'
        }
        if (v.size() == 0) cursor_.Step();  // '}'
        break;
      }
      case base::JsonType::kArray: {
        out = Node::Sequence();
        cursor_.Step();  // '['
        for (const base::JsonValue& item : v.Elements()) {
          auto value = Convert(item);
          if (!value) return value;
          out.Append(std::move(*value));
          cursor_.Step();  // ',' or ']'
        }
        if (v.size() == 0) cursor_.Step();  // ']'
        break;
      }
      case base::JsonType::kString:
        cursor_.SkipString();
        out = Node::String(std::string(*v.AsString()));
        break;
      case base::JsonType::kInt64:
        cursor_.SkipAtom();
        out = Node::Int(*v.AsInt64());
        break;
      case base::JsonType::kUint64:  // beyond int64: as a number, as Kubernetes' decoder reads it
      case base::JsonType::kDouble:
        cursor_.SkipAtom();
        out = Node::Double(*v.AsDouble());
        break;
      case base::JsonType::kBool:
        cursor_.SkipAtom();
        out = Node::Bool(*v.AsBool());
        break;
      case base::JsonType::kNull:
        cursor_.SkipAtom();
        out = Node::Null();
        break;
    }
    out.set_line(line);
    return out;
  }

  std::unexpected<Error> Fail(int line, std::string reason) const {
    return std::unexpected(Error{std::string(file_), line, "", "", std::move(reason)});
  }

 private:
  LineCursor cursor_;
  std::string_view file_;
  const ParseLimits& limits_;
  size_t nodes_ = 0;
};

}  // namespace

std::expected<Node, Error> ParseJson(std::string_view text, std::string_view file_name,
                                     const ParseLimits& limits) {
  // The root value is at depth 0 here and at depth 1 for base::JsonLimits.
  auto doc = base::ParseJson(text, {.max_depth = limits.max_depth + 1});
  if (!doc) {
    // simdjson reports no position for a syntax error.
    return std::unexpected(Error{std::string(file_name), 0, "", "", std::move(doc.error().reason)});
  }
  return Converter(text, file_name, limits).Convert(doc->root());
}

}  // namespace picket::config
