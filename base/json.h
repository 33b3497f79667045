// base/json.h — the one JSON reader and writer of Picket.
//
// Owns: `ParseJson` (strict RFC 8259 over simdjson's DOM: one value, no trailing content,
// valid UTF-8, bounded size and nesting), `JsonDocument` (the parsed tape, move-only) and
// `JsonValue` (a cheap view into a document), `JsonWriter` (a streaming, deterministic writer
// that handles commas itself and splices pre-encoded values) and `AppendJsonString`, the one
// JSON string escaper.
//
// Input to `ParseJson` is untrusted (frames, AdmissionReview bodies, Kubernetes API lists):
// every failure is an `Error` naming what is wrong, never a crash or an exception. Numbers keep
// their exact kind: an integer token is an int64 or a uint64 (never rounded through a double);
// only a token with a fraction or exponent is a double. Duplicate object keys are kept as
// written (simdjson does not reject them); `base/json_fields.h` reports them.
//
// Lifetimes: a `JsonValue` (and every string_view it hands out) is valid while the
// `JsonDocument` it came from lives; moving the document keeps them valid. Depends on nothing
// of ours but base/error.h; simdjson stays inside json.cc. Thread-compatible: a document may be
// read from many threads at once.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/error.h"

namespace picket::base {

struct JsonLimits {
  size_t max_bytes = 64 << 20;  // a Kubernetes pod list of ~20k pods
  size_t max_depth = 64;        // nesting of arrays and objects; the root value is depth 1
};

enum class JsonType : uint8_t { kNull, kBool, kInt64, kUint64, kDouble, kString, kArray, kObject };

// "null", "a boolean", "an integer", "a number", "a string", "an array", "an object".
std::string_view DescribeJsonType(JsonType type);

class JsonValue;
struct JsonMember;
class JsonDocument;

// Forward iteration over an array's elements or an object's members (simdjson's iterators,
// held opaquely so that simdjson.h stays out of this header).
template <typename Item>
class JsonIterator {
 public:
  using value_type = Item;
  using difference_type = std::ptrdiff_t;
  Item operator*() const;
  JsonIterator& operator++();
  JsonIterator operator++(int) {
    JsonIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const JsonIterator& other) const;

 private:
  friend class JsonValue;
  alignas(8) unsigned char bytes_[16] = {};
};

template <typename Item>
struct JsonRange {
  JsonIterator<Item> b, e;
  JsonIterator<Item> begin() const { return b; }
  JsonIterator<Item> end() const { return e; }
};

class JsonValue {
 public:
  JsonValue() = default;  // a null that belongs to no document

  JsonType type() const;
  bool IsNull() const { return type() == JsonType::kNull; }
  bool IsBool() const { return type() == JsonType::kBool; }
  bool IsNumber() const;   // int64, uint64 or double
  bool IsInteger() const;  // an integer token (int64 or uint64)
  bool IsString() const { return type() == JsonType::kString; }
  bool IsArray() const { return type() == JsonType::kArray; }
  bool IsObject() const { return type() == JsonType::kObject; }

  // Each is nullopt when the value is not of that kind. Integers are exact: AsInt64 of an
  // integer token that fits int64, AsUint64 of one that is >= 0 and fits uint64; a double
  // (even 3.0 or 1e3) is not an integer, as Kubernetes' decoder sees it.
  std::optional<bool> AsBool() const;
  std::optional<int64_t> AsInt64() const;
  std::optional<uint64_t> AsUint64() const;
  std::optional<int64_t> AsInt(int64_t min, int64_t max) const;  // an integer in [min, max]
  std::optional<double> AsDouble() const;                        // any number
  std::optional<std::string_view> AsString() const;

  // Elements of an array, members of an object; 0 for anything else.
  size_t size() const;
  // Empty ranges when this is not an array / object. Members come in document order,
  // duplicates included.
  JsonRange<JsonValue> Elements() const;
  JsonRange<JsonMember> Members() const;
  // The first member named `key`, or nullopt (also when this is not an object).
  std::optional<JsonValue> Find(std::string_view key) const;
  // The element at `index` of an array (a linear walk), or nullopt.
  std::optional<JsonValue> At(size_t index) const;

  // Compact JSON text of this value (members in document order), e.g. for logs and tests.
  std::string ToJson() const;

 private:
  friend Result<JsonDocument> ParseJson(std::string_view text, const JsonLimits& limits);
  template <typename Item>
  friend class JsonIterator;
  alignas(8) unsigned char bytes_[16] = {};  // a simdjson::dom::element; all zero when null
};

struct JsonMember {
  std::string_view key;
  JsonValue value;
};

class JsonDocument {
 public:
  JsonDocument(JsonDocument&&) noexcept;
  JsonDocument& operator=(JsonDocument&&) noexcept;
  ~JsonDocument();

  JsonValue root() const { return root_; }

 private:
  friend Result<JsonDocument> ParseJson(std::string_view text, const JsonLimits& limits);
  struct State;
  JsonDocument();
  std::unique_ptr<State> state_;  // the simdjson parser that owns the tape and strings
  JsonValue root_;
};

// Parses exactly one JSON value (surrounding whitespace allowed). Errors read e.g.
// "invalid JSON: the input is not valid UTF-8" or "invalid JSON: nested deeper than 64 levels".
[[nodiscard]] Result<JsonDocument> ParseJson(std::string_view text, const JsonLimits& limits = {});

// Appends `s` as a JSON string literal: quoted, with `"`, `\` and the control characters
// U+0000..U+001F escaped, every other byte copied. The output is valid JSON for any bytes
// whose UTF-8 is valid; callers hand in text that was validated as UTF-8 on the way in (parsed
// JSON, validated manifests), so this does not check it again.
void AppendJsonString(std::string& out, std::string_view s);

// Streaming, deterministic JSON writer: members come out in the order written, numbers exactly
// (64-bit integers as integers; doubles as the shortest text that reads back the same).
// Commas are the writer's business. Misuse (a value where a key is due, an unbalanced End) is
// a programming error, checked by assert in debug builds.
class JsonWriter {
 public:
  JsonWriter() = default;
  explicit JsonWriter(std::string initial) : out_(std::move(initial)) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Double(double v);  // NaN and infinities have no JSON form: written as null
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  // Splices one already-encoded JSON value verbatim (the caller vouches that it is valid).
  JsonWriter& Raw(std::string_view json);
  // Writes a parsed value (e.g. a payload decoded from another frame).
  JsonWriter& Value(const JsonValue& v);

  // Shorthands for one member: Key(key) then the value.
  JsonWriter& Member(std::string_view key, std::string_view s) { return Key(key).String(s); }
  JsonWriter& Member(std::string_view key, const char* s) { return Key(key).String(s); }
  JsonWriter& Member(std::string_view key, bool v) { return Key(key).Bool(v); }
  template <std::integral T>
  JsonWriter& Member(std::string_view key, T v) {
    Key(key);
    if constexpr (std::is_signed_v<T>) return Int(v);
    return Uint(v);
  }

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Separate();  // a comma before the second and later items of the open container

  std::string out_;
  // One bit per open container: whether it already holds an item. 64 levels are plenty for
  // what we write; deeper nesting is a programming error.
  uint64_t has_items_ = 0;
  int depth_ = 0;
  bool after_key_ = false;
};

}  // namespace picket::base
