// config/document.h — a small, generic, JSON-like document tree read from YAML or JSON.
//
// Owns: `Node` (null, bool, int, double, string, sequence, or mapping that keeps key order, each
// with the 1-based source line it came from), the readers `ParseYamlDocuments` (multi-document
// YAML, YAML 1.1 scalar resolution as Kubernetes' sigs.k8s.io/yaml reads it) and `ParseJson`
// (strict RFC 8259), and the writers `EmitYaml` (block style, stable, quoting every string that
// would otherwise read back as another type) and `EmitJson` (compact).
//
// Why it exists: code outside config/ (the injector, the admission webhook) must transform
// Kubernetes objects without seeing yaml-cpp. This tree is that seam: yaml-cpp is used only in
// document.cc and none of its exceptions escape. Every reader returns a value or an Error; none
// throws. Readers cap nesting depth and total node count so hostile input (alias bombs, deep
// nesting) is an error, not an exhausted stack or heap.
//
// Threading: plain values; thread-compatible. Functions are pure and callable from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.h"

namespace picket::config {

struct Member;

class Node {
 public:
  enum class Type : uint8_t { kNull, kBool, kInt, kDouble, kString, kSequence, kMapping };

  Node() = default;  // null
  static Node Null();
  static Node Bool(bool v);
  static Node Int(int64_t v);
  static Node Double(double v);
  static Node String(std::string v);
  static Node Sequence();
  static Node Sequence(std::vector<Node> items);
  static Node Mapping();

  Type type() const { return type_; }
  bool IsNull() const { return type_ == Type::kNull; }
  bool IsBool() const { return type_ == Type::kBool; }
  bool IsInt() const { return type_ == Type::kInt; }
  bool IsDouble() const { return type_ == Type::kDouble; }
  bool IsString() const { return type_ == Type::kString; }
  bool IsSequence() const { return type_ == Type::kSequence; }
  bool IsMapping() const { return type_ == Type::kMapping; }

  // Accessors for the matching type; on another type they return a neutral value.
  bool AsBool() const { return type_ == Type::kBool && bool_; }
  int64_t AsInt() const { return type_ == Type::kInt ? int_ : 0; }
  double AsDouble() const;  // ints widen
  const std::string& AsString() const;

  // Sequence items / mapping members; empty for other types.
  const std::vector<Node>& items() const { return items_; }
  std::vector<Node>& items() { return items_; }
  const std::vector<Member>& members() const { return members_; }
  std::vector<Member>& members() { return members_; }

  // Mapping lookup; nullptr when absent or when this is not a mapping.
  const Node* Find(std::string_view key) const;
  Node* Find(std::string_view key);
  // Returns the string at `key` or "" when absent or not a string.
  const std::string& StringAt(std::string_view key) const;

  // Mapping update: replaces the value of an existing key in place (keeping its position) or
  // appends the key. Turns a null node into a mapping first. Returns the stored value.
  Node& Set(std::string key, Node value);
  // Returns the value at `key`, inserting `Node::Mapping()` when absent or null.
  Node& MappingAt(std::string key);
  // Removes `key`; returns whether it was present.
  bool Erase(std::string_view key);
  // Sequence append; turns a null node into a sequence first.
  Node& Append(Node value);

  int line() const { return line_; }
  void set_line(int line) { line_ = line; }

  // Structural equality: ints and doubles compare by value, mappings regardless of key order
  // (YAML and JSON mappings are unordered), source lines are ignored.
  friend bool operator==(const Node& a, const Node& b);

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  int line_ = 0;
  std::string string_;
  std::vector<Node> items_;
  std::vector<Member> members_;
};

struct Member {
  std::string key;
  Node value;
};

struct ParseLimits {
  size_t max_depth = 128;
  size_t max_nodes = 1'000'000;
};

// Parses a YAML stream into its documents (an empty stream yields none; an explicitly empty
// document between `---` markers yields a null node). The text must be UTF-8 without control
// characters other than tab, LF and CR. Errors name `file_name` and the line.
[[nodiscard]] std::expected<std::vector<Node>, Error> ParseYamlDocuments(
    std::string_view text, std::string_view file_name, const ParseLimits& limits = {});

// Parses exactly one JSON value (RFC 8259; surrounding whitespace allowed, nothing else).
[[nodiscard]] std::expected<Node, Error> ParseJson(std::string_view text,
                                                   std::string_view file_name,
                                                   const ParseLimits& limits = {});

// One document as block-style YAML, ending in a newline. Stable: the same tree always gives the
// same text, keys in their stored order.
std::string EmitYaml(const Node& node);
// Documents joined by `---` lines, for a multi-document file.
std::string EmitYamlDocuments(const std::vector<Node>& documents);
// Compact JSON (no spaces). Non-finite doubles become null, as JSON has no spelling for them.
std::string EmitJson(const Node& node);

// Whether `s`, written as a plain (unquoted) YAML scalar, would read back as the same string.
bool IsPlainSafeYamlString(std::string_view s);

}  // namespace picket::config
