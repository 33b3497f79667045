// config/yaml_fields.h — typed, error-reporting access to yaml-cpp nodes (config-internal).
//
// Owns: the YAML → value rules of a Kubernetes-style decode (quoted scalars are always strings;
// plain `true`/`false` are booleans, decimal digits integers, `~`/`null`/empty null, and a null
// field means "absent"; YAML 1.1's `y`/`n`/`yes`/`no`/`on`/`off` are read as strings so the
// namespaces `y` and `n` work), and `FieldReader`, which reports every
// type error, unknown field and duplicate key of one object into an `Errors` list as
// `file:line: Kind ns/name: field.path: reason`.
// Only config/*.cc include this header (yaml-cpp never leaves config/). Not thread-safe: one
// FieldReader per object being decoded, on one thread.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/field_path.h"
#include "config/error.h"
#include "config/model.h"

namespace picket::config {

enum class ScalarType : uint8_t { kNull, kBool, kInt, kFloat, kString };

// Type of a scalar node under YAML 1.1 resolution (what Kubernetes' decoder sees).
[[nodiscard]] ScalarType ClassifyScalar(const YAML::Node& node);

// True for an undefined node, a null node and a plain null scalar (`~`, `null`, empty).
[[nodiscard]] bool IsNullish(const YAML::Node& node);

// "a map", "a list", "a string", "an integer", "a number", "a boolean", "null".
[[nodiscard]] std::string DescribeNode(const YAML::Node& node);

// `map[key]`, or a null node when `map` is not a map or has no such key. Unlike yaml-cpp's
// operator[], never yields an "invalid" (zombie) node whose use throws.
[[nodiscard]] YAML::Node Get(const YAML::Node& map, const char* key);

// 1-based line of a node; 0 when yaml-cpp has no mark for it.
[[nodiscard]] int LineOf(const YAML::Node& node);

// `parent.child` and `parent[i]`, as field.Path renders them.
using base::Child;
using base::Index;

// Limits the work one load may do, whatever YAML aliases expand to (`&a [*b, *b]` chains make a
// small file name exponentially many nodes). Without aliases a text of N bytes has fewer than N
// nodes, so 16 visits per byte never stops a real manifest.
struct NodeBudget {
  static NodeBudget ForText(size_t text_size) {
    size_t limit = std::max<size_t>(100'000, 16 * text_size);
    return NodeBudget{limit, limit, false};
  }
  size_t limit = 100'000;
  size_t remaining = 100'000;
  bool exhausted_reported = false;
};

class FieldReader {
 public:
  // `object` names the object in every error (e.g. "NetworkPolicy x/deny"); `errors` and
  // `budget` must outlive the reader.
  // `line_offset` is added to every line: documents are parsed one at a time, and yaml-cpp's
  // marks count from the start of the document.
  FieldReader(std::string file, std::string object, Errors* errors, NodeBudget* budget,
              int line_offset = 0)
      : file_(std::move(file)),
        object_(std::move(object)),
        errors_(errors),
        budget_(budget),
        line_offset_(line_offset) {}

  // The file line of `node` (0 when unknown).
  [[nodiscard]] int Line(const YAML::Node& node) const {
    int line = LineOf(node);
    return line > 0 ? line + line_offset_ : 0;
  }

  void Report(int line, const std::string& field, std::string reason);
  void Report(const YAML::Node& at, const std::string& field, std::string reason) {
    Report(LineOf(at), field, std::move(reason));
  }
  // `Invalid type: expected <what>, got <node kind>`.
  void TypeError(const YAML::Node& at, const std::string& field, std::string_view expected);

  // Each returns nullopt after reporting a type error; callers skip null nodes first.
  [[nodiscard]] std::optional<std::string> String(const YAML::Node& node, const std::string& field);
  [[nodiscard]] std::optional<int64_t> Int(const YAML::Node& node, const std::string& field);
  [[nodiscard]] std::optional<bool> Bool(const YAML::Node& node, const std::string& field);
  [[nodiscard]] bool ExpectMap(const YAML::Node& node, const std::string& field);
  [[nodiscard]] bool ExpectList(const YAML::Node& node, const std::string& field);

  // A map of strings (labels, matchLabels); null is empty. Values must be strings. When
  // `lines` is given it receives each key's line, for validation errors.
  [[nodiscard]] Labels StringMap(const YAML::Node& node, const std::string& field,
                                 std::map<std::string, int>* lines = nullptr);

  // A list of strings; null is empty.
  [[nodiscard]] std::vector<std::string> StringList(const YAML::Node& node,
                                                    const std::string& field);

  // Calls `fn(key, value, key_line)` for each entry of the map `node` (which the caller checked).
  // `fn` returns false for a key it does not know: with `strict`, that is an
  // `unknown field "key"` error at `field.key`. Duplicate keys are always errors.
  template <typename Fn>
  void Fields(const YAML::Node& node, const std::string& field, bool strict, Fn&& fn);

  struct Slot {
    std::string_view key;
    YAML::Node* node;  // receives the field's value node when present
  };
  // Stores each listed field of the map `node` into its slot. With `strict`, any other key is
  // an `unknown field "key"` error at `field.key`; duplicate keys are always errors.
  void Capture(const YAML::Node& node, const std::string& field, bool strict,
               std::initializer_list<Slot> slots);

  // Charges one node against the budget; false (reported once) when exhausted.
  [[nodiscard]] bool Spend();

  const std::string& file() const { return file_; }
  const std::string& object() const { return object_; }

 private:
  [[nodiscard]] std::optional<std::string> KeyOf(const YAML::Node& key, const std::string& field);

  std::string file_;
  std::string object_;
  Errors* errors_;
  NodeBudget* budget_;
  int line_offset_;
};

template <typename Fn>
void FieldReader::Fields(const YAML::Node& node, const std::string& field, bool strict, Fn&& fn) {
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!Spend()) return;
    std::optional<std::string> key = KeyOf(it->first, field);
    if (!key) continue;
    std::string path = Child(field, *key);
    if (!seen.insert(*key).second) {
      Report(it->first, path, "duplicate field \"" + *key + "\"");
      continue;
    }
    if (!fn(*key, it->second, LineOf(it->first)) && strict) {
      Report(it->first, path, "unknown field \"" + *key + "\"");
    }
  }
}

}  // namespace picket::config
